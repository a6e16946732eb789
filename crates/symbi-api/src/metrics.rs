//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! Three sources, one registry ([`ApiMetrics`]):
//!
//! * **HTTP edge** — requests by route and status, latency histogram, authentication
//!   failures, rate-limited requests, webhook deliveries (recorded by this crate).
//! * **Runtime** — read on each scrape from the [`Runtime`] ([`RuntimeCollector`]): agents by
//!   state, task completions and failures by class, queue and running gauges, scheduling
//!   decision / queue wait / agent creation latency histograms (from the runtime's HDR
//!   histograms), capacity, allocation and efficiency, preemptions; schedule jobs and runs.
//! * **Audit stream** — every event the runtime records passes through [`MeteredSink`]
//!   (a transparent [`EventSink`] wrapper installed by `symbi up`): audit appends and sink
//!   failures by event type, policy decisions by outcome and category, action latency by
//!   category and outcome, security events by check, sandbox starts by tier, approvals by
//!   step, messages. Because every action is audited with its decision and outcome, these
//!   counters see exactly what the audit log sees.

use crate::schedules::Schedules;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::sync::Arc;
use symbi_runtime::Runtime;
use symbi_types::{EventDraft, EventReceipt, EventSink, SinkError};

type Labels = Vec<(&'static str, String)>;

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 50 µs … ~26 s.
    exponential_buckets(0.00005, 2.0, 20)
}

/// Metrics recorded by the API and the audit stream.
pub struct ApiMetrics {
    registry: parking_lot::Mutex<Registry>,
    /// Requests by method, route template and status.
    pub http_requests: Family<Labels, Counter>,
    /// Request latency by method and route template.
    pub http_latency: Family<Labels, Histogram>,
    /// Authentication failures by reason.
    pub auth_failures: Family<Labels, Counter>,
    /// Requests refused by the per-IP rate limit.
    pub rate_limited: Counter,
    /// Webhook requests by webhook and outcome.
    pub webhooks: Family<Labels, Counter>,
    /// Audit events appended, by type.
    pub audit_appends: Family<Labels, Counter>,
    /// Audit events the sink refused, by type.
    pub audit_failures: Family<Labels, Counter>,
    /// Policy decisions by outcome and category.
    pub policy_decisions: Family<Labels, Counter>,
    /// Action latency (decision to outcome) by category and outcome.
    pub action_latency: Family<Labels, Histogram>,
    /// Security events by check.
    pub security_events: Family<Labels, Counter>,
    /// Sandboxed executions by tier.
    pub sandbox_starts: Family<Labels, Counter>,
    /// Approval steps.
    pub approvals: Family<Labels, Counter>,
    /// Executions ended, by outcome (from the audit stream).
    pub executions: Family<Labels, Counter>,
    /// Execution failures by error kind.
    pub errors: Family<Labels, Counter>,
}

impl std::fmt::Debug for ApiMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiMetrics")
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiMetrics {
    /// A registry with every family registered (prefix `symbi_`).
    pub fn new() -> Self {
        let hist = || {
            Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(latency_buckets()))
        };
        let m = ApiMetrics {
            registry: parking_lot::Mutex::new(Registry::with_prefix("symbi")),
            http_requests: Family::default(),
            http_latency: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            auth_failures: Family::default(),
            rate_limited: Counter::default(),
            webhooks: Family::default(),
            audit_appends: Family::default(),
            audit_failures: Family::default(),
            policy_decisions: Family::default(),
            action_latency: hist(),
            security_events: Family::default(),
            sandbox_starts: Family::default(),
            approvals: Family::default(),
            executions: Family::default(),
            errors: Family::default(),
        };
        {
            let mut r = m.registry.lock();
            r.register(
                "http_requests",
                "HTTP requests by method, route and status",
                m.http_requests.clone(),
            );
            r.register(
                "http_request_duration_seconds",
                "HTTP request latency",
                m.http_latency.clone(),
            );
            r.register(
                "auth_failures",
                "API authentication failures by reason",
                m.auth_failures.clone(),
            );
            r.register(
                "http_rate_limited",
                "Requests refused by the per-IP rate limit",
                m.rate_limited.clone(),
            );
            r.register(
                "webhook_requests",
                "Webhook requests by webhook and outcome",
                m.webhooks.clone(),
            );
            r.register(
                "audit_appends",
                "Audit events recorded, by event type",
                m.audit_appends.clone(),
            );
            r.register(
                "audit_sink_failures",
                "Audit events the sink refused, by event type",
                m.audit_failures.clone(),
            );
            r.register(
                "policy_decisions",
                "Policy decisions on agent actions by outcome and category",
                m.policy_decisions.clone(),
            );
            r.register(
                "action_duration_seconds",
                "Action latency from decision to outcome, by category and outcome",
                m.action_latency.clone(),
            );
            r.register(
                "security_events",
                "Security events by check",
                m.security_events.clone(),
            );
            r.register(
                "sandbox_starts",
                "Sandboxed tool executions by isolation tier",
                m.sandbox_starts.clone(),
            );
            r.register(
                "approval_steps",
                "Human approval steps (requested, approved, denied, expired)",
                m.approvals.clone(),
            );
            r.register(
                "executions",
                "Agent executions ended, by outcome",
                m.executions.clone(),
            );
            r.register(
                "execution_errors",
                "Failed executions by error kind",
                m.errors.clone(),
            );
        }
        m
    }

    /// Adds a collector read on every scrape (the runtime's numbers).
    pub fn register_collector(&self, c: Box<dyn prometheus_client::collector::Collector>) {
        self.registry.lock().register_collector(c);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }

    /// Counts one audit event (called by [`MeteredSink`]).
    pub fn observe_event(&self, e: &EventDraft) {
        let t = e.event_type.as_str();
        self.audit_appends
            .get_or_create(&vec![("type", t.to_string())])
            .inc();
        let d = &e.details;
        let s = |k: &str| d.get(k).and_then(Value::as_str);
        match t {
            "security_violation" => {
                self.security_events
                    .get_or_create(&vec![(
                        "check",
                        s("check").unwrap_or("unknown").to_string(),
                    )])
                    .inc();
            }
            "auth_failure" => {
                self.security_events
                    .get_or_create(&vec![("check", "auth".to_string())])
                    .inc();
            }
            "approval" => {
                self.approvals
                    .get_or_create(&vec![("step", s("step").unwrap_or("unknown").to_string())])
                    .inc();
            }
            "execution_completed" => {
                self.executions
                    .get_or_create(&vec![("outcome", "completed".to_string())])
                    .inc();
            }
            "execution_failed" => {
                self.executions
                    .get_or_create(&vec![("outcome", "failed".to_string())])
                    .inc();
                self.errors
                    .get_or_create(&vec![("kind", s("kind").unwrap_or("unknown").to_string())])
                    .inc();
            }
            "policy_decision" => {
                self.policy_decisions
                    .get_or_create(&vec![
                        ("outcome", decision_word(d)),
                        ("category", s("category").unwrap_or("runtime").to_string()),
                    ])
                    .inc();
            }
            _ => match s("phase") {
                Some("decision") => {
                    self.policy_decisions
                        .get_or_create(&vec![
                            ("outcome", decision_word(d)),
                            ("category", t.to_string()),
                        ])
                        .inc();
                }
                Some("outcome") => {
                    let outcome = s("outcome").unwrap_or("unknown").to_string();
                    if let Some(ms) = d.get("duration_ms").and_then(Value::as_f64) {
                        self.action_latency
                            .get_or_create(&vec![("category", t.to_string()), ("outcome", outcome)])
                            .observe(ms / 1000.0);
                    }
                    if let Some(tier) = d
                        .get("execution")
                        .and_then(|x| x.get("tier"))
                        .and_then(Value::as_str)
                    {
                        self.sandbox_starts
                            .get_or_create(&vec![("tier", tier.to_string())])
                            .inc();
                    }
                }
                _ => {}
            },
        }
    }
}

fn decision_word(d: &Value) -> String {
    match d.get("decision") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(m)) => m.keys().next().cloned().unwrap_or_else(|| "unknown".into()),
        _ => "unknown".into(),
    }
}

/// An [`EventSink`] that counts what passes through it and forwards everything unchanged
/// (receipts and errors included). `symbi up` wraps the audit log with it.
pub struct MeteredSink {
    inner: Arc<dyn EventSink>,
    metrics: Arc<ApiMetrics>,
}

impl MeteredSink {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn EventSink>, metrics: Arc<ApiMetrics>) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait::async_trait]
impl EventSink for MeteredSink {
    async fn record(&self, event: EventDraft) -> Result<EventReceipt, SinkError> {
        let ty = event.event_type.clone();
        self.metrics.observe_event(&event);
        let r = self.inner.record(event).await;
        if r.is_err() {
            self.metrics
                .audit_failures
                .get_or_create(&vec![("type", ty)])
                .inc();
        }
        r
    }
}

/// Reads the runtime's and the schedule engine's numbers on every scrape.
#[derive(Clone)]
pub struct RuntimeCollector {
    runtime: Runtime,
    schedules: Option<Schedules>,
}

impl std::fmt::Debug for RuntimeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeCollector")
    }
}

impl RuntimeCollector {
    /// Over `runtime` (and the schedules, when the API runs them).
    pub fn new(runtime: Runtime, schedules: Option<Schedules>) -> Self {
        Self { runtime, schedules }
    }
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(&[(&str, &str)], f64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(&[(&str, &str)], u64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        m.encode_family(labels)?
            .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

/// Histogram bounds in nanoseconds: 1 µs … ~1 s doubling, then +Inf.
fn ns_bounds() -> Vec<u64> {
    let mut v: Vec<u64> = (0..21).map(|i| 1_000u64 << i).collect();
    v.push(u64::MAX);
    v
}

fn latency(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &symbi_runtime::metrics::LatencyHistogram,
) -> std::fmt::Result {
    let bounds = ns_bounds();
    let (count, sum_ns, per) = h.buckets(&bounds);
    let buckets: Vec<(f64, u64)> = bounds
        .iter()
        .zip(per)
        .map(|(b, n)| {
            (
                if *b == u64::MAX {
                    f64::INFINITY
                } else {
                    *b as f64 / 1e9
                },
                n,
            )
        })
        .collect();
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        sum_ns / 1e9,
        count,
        &buckets,
        None,
    )
}

impl prometheus_client::collector::Collector for RuntimeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rt = &self.runtime;
        let c = rt.counts();
        let states: [(&str, usize); 6] = [
            ("Initializing", c.initializing),
            ("Ready", c.ready),
            ("Running", c.running),
            ("Suspended", c.suspended),
            ("Terminated", c.terminated),
            ("Failed", c.failed),
        ];
        let series: Vec<([(&str, &str); 1], f64)> = states
            .iter()
            .map(|(s, n)| ([("state", *s)], *n as f64))
            .collect();
        let refs: Vec<(&[(&str, &str)], f64)> = series.iter().map(|(l, v)| (&l[..], *v)).collect();
        gauge(
            &mut enc,
            "agents",
            "Registered agents by lifecycle state",
            &refs,
        )?;

        let s = rt.metrics();
        counter(
            &mut enc,
            "agents_created",
            "Agents registered",
            &[(&[], s.agents_created)],
        )?;
        counter(
            &mut enc,
            "agents_deleted",
            "Agents removed",
            &[(&[], s.agents_deleted)],
        )?;
        counter(
            &mut enc,
            "lifecycle_transitions",
            "Agent state transitions recorded",
            &[(&[], s.transitions)],
        )?;
        counter(
            &mut enc,
            "tasks_submitted",
            "Tasks submitted to the scheduler",
            &[(&[], s.tasks_submitted)],
        )?;
        let f = s.tasks_failed;
        counter(
            &mut enc,
            "task_completions",
            "Tasks ended, by outcome (completed, failed, cancelled)",
            &[
                (&[("outcome", "completed")], s.tasks_completed),
                (
                    &[("outcome", "failed")],
                    f.transient + f.permanent + f.policy + f.resource + f.panic,
                ),
                (&[("outcome", "cancelled")], s.tasks_cancelled),
            ],
        )?;
        counter(
            &mut enc,
            "task_failures",
            "Failed tasks by error class",
            &[
                (&[("class", "transient")], f.transient),
                (&[("class", "permanent")], f.permanent),
                (&[("class", "policy")], f.policy),
                (&[("class", "resource")], f.resource),
                (&[("class", "panic")], f.panic),
            ],
        )?;
        counter(
            &mut enc,
            "admissions_rejected",
            "Tasks refused by admission control",
            &[(&[], s.admissions_rejected)],
        )?;
        counter(
            &mut enc,
            "preemptions",
            "Running tasks suspended for higher-priority work",
            &[(&[], s.preemptions)],
        )?;
        counter(
            &mut enc,
            "pressure_suspensions",
            "Tasks suspended under resource pressure",
            &[(&[], s.pressure_suspensions)],
        )?;
        counter(
            &mut enc,
            "task_retries",
            "Task attempts re-queued by a retry policy",
            &[(&[], s.retries)],
        )?;
        counter(
            &mut enc,
            "audit_sink_refusals",
            "Lifecycle events the audit sink refused",
            &[(&[], s.sink_failures)],
        )?;

        let q = rt.scheduler_counts();
        gauge(
            &mut enc,
            "scheduler_tasks",
            "Tasks by scheduler state",
            &[
                (&[("state", "queued")], q.queued as f64),
                (
                    &[("state", "waiting_behind_agent")],
                    q.waiting_behind_agent as f64,
                ),
                (&[("state", "running")], q.running as f64),
                (&[("state", "suspended")], q.suspended as f64),
            ],
        )?;
        let m = rt.metrics_handle();
        latency(
            &mut enc,
            "scheduling_decision_seconds",
            "Latency of one scheduling decision",
            &m.scheduling_decision,
        )?;
        latency(
            &mut enc,
            "queue_wait_seconds",
            "Time tasks waited in the queue",
            &m.queue_wait,
        )?;
        latency(
            &mut enc,
            "agent_creation_seconds",
            "Latency of agent registration",
            &m.agent_creation,
        )?;

        let r = rt.resources();
        let io = |v: u64| {
            if v == u64::MAX {
                f64::INFINITY
            } else {
                v as f64
            }
        };
        gauge(
            &mut enc,
            "resource_capacity",
            "Capacity handed out to running tasks (memory bytes, CPU cores, I/O bytes/s)",
            &[
                (
                    &[("resource", "memory_bytes")],
                    r.capacity.memory_bytes as f64,
                ),
                (
                    &[("resource", "cpu_cores")],
                    r.capacity.cpu_millicores as f64 / 1000.0,
                ),
                (&[("resource", "disk_io_bps")], io(r.capacity.disk_io_bps)),
                (
                    &[("resource", "network_io_bps")],
                    io(r.capacity.network_io_bps),
                ),
            ],
        )?;
        gauge(
            &mut enc,
            "resource_allocated",
            "Reserved by running and suspended tasks",
            &[
                (
                    &[("resource", "memory_bytes")],
                    r.allocated.memory_bytes as f64,
                ),
                (
                    &[("resource", "cpu_cores")],
                    r.allocated.cpu_millicores as f64 / 1000.0,
                ),
                (
                    &[("resource", "disk_io_bps")],
                    r.allocated.disk_io_bps as f64,
                ),
                (
                    &[("resource", "network_io_bps")],
                    r.allocated.network_io_bps as f64,
                ),
            ],
        )?;
        let ratio = |a: u64, c: u64| if c == 0 { 0.0 } else { a as f64 / c as f64 };
        gauge(
            &mut enc,
            "resource_efficiency",
            "Allocated share of capacity (0..1)",
            &[
                (
                    &[("resource", "memory")],
                    ratio(r.allocated.memory_bytes, r.capacity.memory_bytes),
                ),
                (
                    &[("resource", "cpu")],
                    ratio(r.allocated.cpu_millicores, r.capacity.cpu_millicores),
                ),
            ],
        )?;
        gauge(
            &mut enc,
            "resource_holders",
            "Tasks holding a reservation",
            &[(&[], r.holders as f64)],
        )?;
        gauge(
            &mut enc,
            "uptime_seconds",
            "Seconds since the runtime started",
            &[(&[], rt.uptime().as_secs_f64())],
        )?;
        gauge(
            &mut enc,
            "process_resident_memory_bytes",
            "Resident memory of the process",
            &[(&[], crate::sysinfo::rss_bytes() as f64)],
        )?;

        if let Some(sch) = &self.schedules {
            let h = sch.health();
            gauge(
                &mut enc,
                "schedule_jobs",
                "Schedule jobs by status",
                &[
                    (&[("status", "active")], h.jobs_active as f64),
                    (&[("status", "paused")], h.jobs_paused as f64),
                    (&[("status", "dead_letter")], h.jobs_dead_letter as f64),
                    (&[("status", "total")], h.jobs_total as f64),
                ],
            )?;
            counter(
                &mut enc,
                "schedule_runs",
                "Scheduled runs by outcome",
                &[
                    (&[("outcome", "succeeded")], h.runs_succeeded),
                    (&[("outcome", "failed")], h.runs_failed),
                ],
            )?;
            gauge(
                &mut enc,
                "schedule_active_runs",
                "Scheduled runs in progress",
                &[(&[], h.global_active_runs as f64)],
            )?;
        }
        Ok(())
    }
}
