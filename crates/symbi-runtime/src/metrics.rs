//! Runtime metrics: plain atomic counters and HDR histograms behind one typed struct.
//!
//! The runtime records; exporters (the HTTP API's Prometheus endpoint, `symbi bench`) read
//! a [`MetricsSnapshot`]. Recording is a relaxed atomic add or one short mutex-protected
//! histogram insert, so it is cheap enough for the scheduling hot path.

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use symbi_types::ErrorClass;

/// A latency histogram in nanoseconds (1 ns … 1 h, 3 significant digits).
pub struct LatencyHistogram {
    inner: Mutex<Histogram<u64>>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            inner: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                    .expect("static histogram bounds"),
            ),
        }
    }
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn record(&self, d: Duration) {
        let ns = (d.as_nanos() as u64).clamp(1, 3_600_000_000_000);
        // `saturating_record` cannot fail for values inside the bounds.
        self.inner.lock().saturating_record(ns);
    }

    /// Count, mean and percentiles so far.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.inner.lock())
    }

    /// Prometheus-style buckets: `(count, sum_ns, per_bucket)` where `per_bucket[i]` counts
    /// the observations in `(bounds_ns[i-1], bounds_ns[i]]` (not cumulative; the last bound
    /// should be `u64::MAX` for +Inf). Values are the HDR histogram's (3 significant digits).
    pub fn buckets(&self, bounds_ns: &[u64]) -> (u64, f64, Vec<u64>) {
        let h = self.inner.lock();
        let mut per = vec![0u64; bounds_ns.len()];
        let mut sum = 0f64;
        for v in h.iter_recorded() {
            let value = h.highest_equivalent(v.value_iterated_to());
            let n = v.count_at_value();
            sum += value as f64 * n as f64;
            if let Some(i) = bounds_ns.iter().position(|b| value <= *b) {
                per[i] += n;
            }
        }
        (h.len(), sum, per)
    }

    /// Forgets every observation (benchmarks measure one phase at a time).
    pub fn reset(&self) {
        self.inner.lock().reset();
    }
}

/// Percentiles of a [`LatencyHistogram`], in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Observations.
    pub count: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest observation.
    pub max_ns: u64,
}

impl LatencySummary {
    /// Summarises a histogram.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            mean_ns: h.mean(),
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

/// Counters and histograms of one runtime.
#[derive(Default)]
pub struct RuntimeMetrics {
    /// Agents created (including those that ended in Failed).
    pub agents_created: AtomicU64,
    /// Agents removed from the registry.
    pub agents_deleted: AtomicU64,
    /// State transitions recorded.
    pub transitions: AtomicU64,
    /// Events the sink refused (the change they record did not happen).
    pub sink_failures: AtomicU64,
    /// Tasks accepted by `submit`.
    pub tasks_submitted: AtomicU64,
    /// Tasks that returned a value.
    pub tasks_completed: AtomicU64,
    /// Tasks that ended with an error, by [`ErrorClass`] (index = [`class_index`]).
    pub tasks_failed: [AtomicU64; 5],
    /// Tasks cancelled (terminate, delete, shutdown).
    pub tasks_cancelled: AtomicU64,
    /// Tasks refused by admission control.
    pub admissions_rejected: AtomicU64,
    /// Running tasks suspended to make room for higher-priority work.
    pub preemptions: AtomicU64,
    /// Running tasks suspended because capacity shrank.
    pub pressure_suspensions: AtomicU64,
    /// Suspended tasks resumed.
    pub resumptions: AtomicU64,
    /// Task attempts re-queued by a retry policy.
    pub retries: AtomicU64,
    /// Tasks whose future panicked.
    pub panics: AtomicU64,
    /// Latency of one scheduling decision (pick, fit, place, hand to a shard).
    pub scheduling_decision: LatencyHistogram,
    /// Latency of `create_agent` (registration and both lifecycle events).
    pub agent_creation: LatencyHistogram,
    /// Time a task waited in the queue before it was dispatched.
    pub queue_wait: LatencyHistogram,
}

/// Index of an error class in [`RuntimeMetrics::tasks_failed`].
pub fn class_index(c: ErrorClass) -> usize {
    match c {
        ErrorClass::Transient => 0,
        ErrorClass::Permanent => 1,
        ErrorClass::Policy => 2,
        ErrorClass::Resource => 3,
        ErrorClass::Panic => 4,
    }
}

/// Failed tasks by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailuresByClass {
    /// Transient failures.
    pub transient: u64,
    /// Permanent failures.
    pub permanent: u64,
    /// Policy denials that ended a task.
    pub policy: u64,
    /// Budget or capacity exhaustion (including timeouts).
    pub resource: u64,
    /// Panics.
    pub panic: u64,
}

/// A point-in-time copy of [`RuntimeMetrics`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// See [`RuntimeMetrics::agents_created`].
    pub agents_created: u64,
    /// See [`RuntimeMetrics::agents_deleted`].
    pub agents_deleted: u64,
    /// See [`RuntimeMetrics::transitions`].
    pub transitions: u64,
    /// See [`RuntimeMetrics::sink_failures`].
    pub sink_failures: u64,
    /// See [`RuntimeMetrics::tasks_submitted`].
    pub tasks_submitted: u64,
    /// See [`RuntimeMetrics::tasks_completed`].
    pub tasks_completed: u64,
    /// See [`RuntimeMetrics::tasks_failed`].
    pub tasks_failed: FailuresByClass,
    /// See [`RuntimeMetrics::tasks_cancelled`].
    pub tasks_cancelled: u64,
    /// See [`RuntimeMetrics::admissions_rejected`].
    pub admissions_rejected: u64,
    /// See [`RuntimeMetrics::preemptions`].
    pub preemptions: u64,
    /// See [`RuntimeMetrics::pressure_suspensions`].
    pub pressure_suspensions: u64,
    /// See [`RuntimeMetrics::resumptions`].
    pub resumptions: u64,
    /// See [`RuntimeMetrics::retries`].
    pub retries: u64,
    /// See [`RuntimeMetrics::panics`].
    pub panics: u64,
    /// See [`RuntimeMetrics::scheduling_decision`].
    pub scheduling_decision: LatencySummary,
    /// See [`RuntimeMetrics::agent_creation`].
    pub agent_creation: LatencySummary,
    /// See [`RuntimeMetrics::queue_wait`].
    pub queue_wait: LatencySummary,
}

impl RuntimeMetrics {
    /// Adds one to a counter.
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    /// Failed tasks by error class (the counters of [`Self::snapshot`] without its
    /// histogram summaries).
    pub fn failures(&self) -> FailuresByClass {
        let f = |i: usize| self.tasks_failed[i].load(Relaxed);
        FailuresByClass {
            transient: f(0),
            permanent: f(1),
            policy: f(2),
            resource: f(3),
            panic: f(4),
        }
    }

    /// Copies every value.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            agents_created: self.agents_created.load(Relaxed),
            agents_deleted: self.agents_deleted.load(Relaxed),
            transitions: self.transitions.load(Relaxed),
            sink_failures: self.sink_failures.load(Relaxed),
            tasks_submitted: self.tasks_submitted.load(Relaxed),
            tasks_completed: self.tasks_completed.load(Relaxed),
            tasks_failed: self.failures(),
            tasks_cancelled: self.tasks_cancelled.load(Relaxed),
            admissions_rejected: self.admissions_rejected.load(Relaxed),
            preemptions: self.preemptions.load(Relaxed),
            pressure_suspensions: self.pressure_suspensions.load(Relaxed),
            resumptions: self.resumptions.load(Relaxed),
            retries: self.retries.load(Relaxed),
            panics: self.panics.load(Relaxed),
            scheduling_decision: self.scheduling_decision.summary(),
            agent_creation: self.agent_creation.summary(),
            queue_wait: self.queue_wait.summary(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles() {
        let h = LatencyHistogram::default();
        for i in 1..=100u64 {
            h.record(Duration::from_micros(i));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert!((49_000..=51_000).contains(&s.p50_ns), "{s:?}");
        assert!((98_000..=100_100).contains(&s.p99_ns), "{s:?}");
        h.reset();
        assert_eq!(h.summary().count, 0);
    }
}
