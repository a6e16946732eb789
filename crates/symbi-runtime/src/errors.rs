//! The error handler: failure classes, retries with exponential backoff and jitter, and a
//! circuit breaker per dependency.
//!
//! * Every failure that reaches the runtime is a [`TaskError`] with an
//!   [`ErrorClass`] — transient, permanent, policy, resource or panic.
//! * [`RetryPolicy`] retries retryable classes (transient, resource) with exponential
//!   backoff and full jitter; policy denials, permanent errors and panics are never retried.
//! * [`CircuitBreaker`] (closed → open → half-open → closed) stops calling a dependency
//!   (a tool, an MCP server, a model endpoint) that keeps failing transiently, and lets one
//!   probe through after a cool-down. [`ErrorHandler::breaker`] keeps one per dependency.
//!
//! What happens to the *agent* after a failure is decided by the scheduler with
//! [`PanicAction`] and the lifecycle table (see `docs/runtime.md`).

use dashmap::DashMap;
use parking_lot::Mutex;
use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_types::ErrorClass;

/// A failed task or action, classified.
///
/// ```
/// use symbi_runtime::TaskError;
/// use symbi_types::ErrorClass;
/// let e = TaskError::new(ErrorClass::Transient, "ConnectionReset", "peer reset the connection");
/// assert!(e.class.is_retryable());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TaskError {
    /// How the error handler treats it.
    pub class: ErrorClass,
    /// The error's kind (`Timeout`, `Panic`, `PolicyDenied`, a DSL error kind, …).
    pub kind: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details (JSON), or null.
    pub details: Value,
}

impl TaskError {
    /// A new error without details.
    pub fn new(class: ErrorClass, kind: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError {
            class,
            kind: kind.into(),
            message: message.into(),
            details: Value::Null,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// A panic, with the panic payload as message.
    pub fn panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        TaskError::new(ErrorClass::Panic, "Panic", msg)
    }

    /// The wall-time budget ran out.
    pub fn timeout(limit: Duration) -> Self {
        TaskError::new(
            ErrorClass::Resource,
            "Timeout",
            format!("wall-time budget of {limit:?} exhausted"),
        )
        .with_details(
            serde_json::json!({"budget": "wall_time", "limit_ms": limit.as_millis() as u64}),
        )
    }
}

/// Retries with exponential backoff and full jitter: attempt *n* (1-based, after the
/// first failure) waits a uniformly random time in `[0, min(max_delay, base · 2ⁿ⁻¹)]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay scale of the first retry.
    pub base_delay: Duration,
    /// Upper bound of any delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// No retries.
    fn default() -> Self {
        RetryPolicy::NONE
    }
}

impl RetryPolicy {
    /// A single attempt.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// `attempts` attempts, delays from `base` doubling up to `max`.
    pub fn exponential(attempts: u32, base: Duration, max: Duration) -> Self {
        RetryPolicy {
            max_attempts: attempts.max(1),
            base_delay: base,
            max_delay: max,
        }
    }

    /// Whether attempt number `attempt` (1-based) that failed with `class` may be retried.
    pub fn should_retry(&self, attempt: u32, class: ErrorClass) -> bool {
        class.is_retryable() && attempt < self.max_attempts
    }

    /// The backoff ceiling before retry `retry` (1-based): `min(max, base · 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1).min(31))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// A jittered delay before retry `retry` (1-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        if ceiling.is_zero() {
            return ceiling;
        }
        let nanos = rand::rng().random_range(0..=ceiling.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }

    /// Runs `op` until it succeeds, fails with a class that is not retryable, or the
    /// attempts run out. Returns the last error. `op` receives the attempt number.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T, TaskError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, TaskError>>,
    {
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if self.should_retry(attempt, e.class) => {
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// What the runtime does with an agent whose task panicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PanicAction {
    /// The execution fails (class `panic`) and the agent goes Running → Failed (cause
    /// `task_panicked`): it takes no more work, its queued tasks are cancelled, and only
    /// cleanup (Failed → Terminated, e.g. deleting it) remains. The default.
    #[default]
    Fail,
    /// The execution fails (class `panic`) and the agent returns to Ready and stays there.
    KeepReady,
}

/// Circuit breaker states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused until the cool-down passes.
    Open,
    /// One probe call passes; its outcome closes or re-opens the breaker.
    HalfOpen,
}

/// Breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before a probe is allowed.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    /// 5 failures, 30 s.
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
struct BreakerInner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
}

/// The breaker refused a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "circuit open for `{dependency}`: it failed {failures} times in a row; retry after {retry_after:?}"
)]
pub struct CircuitOpen {
    /// The dependency.
    pub dependency: String,
    /// Consecutive failures that opened it.
    pub failures: u32,
    /// Time left in the cool-down.
    pub retry_after: Duration,
}

impl From<CircuitOpen> for TaskError {
    fn from(e: CircuitOpen) -> Self {
        TaskError::new(ErrorClass::Transient, "CircuitOpen", e.to_string())
    }
}

/// A circuit breaker for one dependency. Only transient failures count against it —
/// policy denials, bad input and panics say nothing about the dependency's health.
#[derive(Debug)]
pub struct CircuitBreaker {
    dependency: String,
    config: BreakerConfig,
    inner: Mutex<BreakerInner>,
}

/// Permission to make one call; report its outcome with [`CircuitBreaker::record`].
#[derive(Debug)]
#[must_use = "report the call's outcome with CircuitBreaker::record"]
pub struct Permit {
    probe: bool,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(dependency: impl Into<String>, config: BreakerConfig) -> Self {
        CircuitBreaker {
            dependency: dependency.into(),
            config,
            inner: Mutex::new(BreakerInner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                probe_in_flight: false,
            }),
        }
    }

    /// Current state (an open breaker whose cool-down passed reports half-open).
    pub fn state(&self) -> BreakerState {
        let i = self.inner.lock();
        match i.state {
            BreakerState::Open
                if i.opened_at
                    .is_some_and(|t| t.elapsed() >= self.config.cool_down) =>
            {
                BreakerState::HalfOpen
            }
            s => s,
        }
    }

    /// Asks to make a call.
    pub fn acquire(&self) -> Result<Permit, CircuitOpen> {
        let mut i = self.inner.lock();
        match i.state {
            BreakerState::Closed => Ok(Permit { probe: false }),
            BreakerState::Open => {
                let since = i.opened_at.map(|t| t.elapsed()).unwrap_or_default();
                if since >= self.config.cool_down {
                    i.state = BreakerState::HalfOpen;
                    i.probe_in_flight = true;
                    Ok(Permit { probe: true })
                } else {
                    Err(self.open_error(&i, self.config.cool_down - since))
                }
            }
            BreakerState::HalfOpen if !i.probe_in_flight => {
                i.probe_in_flight = true;
                Ok(Permit { probe: true })
            }
            BreakerState::HalfOpen => Err(self.open_error(&i, Duration::ZERO)),
        }
    }

    fn open_error(&self, i: &BreakerInner, retry_after: Duration) -> CircuitOpen {
        CircuitOpen {
            dependency: self.dependency.clone(),
            failures: i.consecutive_failures,
            retry_after,
        }
    }

    /// Reports the outcome of a permitted call: `None` for success, or the failure's class.
    pub fn record(&self, permit: Permit, failure: Option<ErrorClass>) {
        let mut i = self.inner.lock();
        if permit.probe {
            i.probe_in_flight = false;
        }
        match failure {
            Some(ErrorClass::Transient) => {
                i.consecutive_failures += 1;
                if permit.probe || i.consecutive_failures >= self.config.failure_threshold {
                    if i.state != BreakerState::Open {
                        tracing::warn!(dependency = %self.dependency, failures = i.consecutive_failures, "circuit opened");
                    }
                    i.state = BreakerState::Open;
                    i.opened_at = Some(Instant::now());
                }
            }
            // Other classes are not the dependency's fault: they neither count nor reset.
            Some(_) => {
                if permit.probe && i.state == BreakerState::HalfOpen {
                    // The probe reached the dependency and got an answer: it is alive.
                    i.state = BreakerState::Closed;
                    i.consecutive_failures = 0;
                }
            }
            None => {
                i.state = BreakerState::Closed;
                i.consecutive_failures = 0;
                i.opened_at = None;
            }
        }
    }

    /// Runs `f` under the breaker.
    pub async fn call<T, Fut>(&self, f: impl FnOnce() -> Fut) -> Result<T, TaskError>
    where
        Fut: Future<Output = Result<T, TaskError>>,
    {
        let permit = self.acquire()?;
        let r = f().await;
        self.record(permit, r.as_ref().err().map(|e| e.class));
        r
    }
}

/// Error-handling settings of a runtime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErrorHandlerConfig {
    /// Breaker settings for every dependency.
    pub breaker: BreakerConfig,
    /// What happens to an agent whose task panics.
    pub on_panic: PanicAction,
}

/// Breakers per dependency, and the runtime's failure policy.
#[derive(Default)]
pub struct ErrorHandler {
    config: ErrorHandlerConfig,
    breakers: DashMap<String, Arc<CircuitBreaker>>,
}

impl ErrorHandler {
    /// A handler with these settings.
    pub fn new(config: ErrorHandlerConfig) -> Self {
        ErrorHandler {
            config,
            breakers: DashMap::new(),
        }
    }

    /// Settings.
    pub fn config(&self) -> &ErrorHandlerConfig {
        &self.config
    }

    /// The breaker of `dependency` (created closed on first use).
    pub fn breaker(&self, dependency: &str) -> Arc<CircuitBreaker> {
        if let Some(b) = self.breakers.get(dependency) {
            return b.clone();
        }
        self.breakers
            .entry(dependency.to_string())
            .or_insert_with(|| Arc::new(CircuitBreaker::new(dependency, self.config.breaker)))
            .clone()
    }

    /// Every breaker that is not closed, for health reports.
    pub fn open_breakers(&self) -> Vec<(String, BreakerState)> {
        self.breakers
            .iter()
            .map(|b| (b.key().clone(), b.value().state()))
            .filter(|(_, s)| *s != BreakerState::Closed)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_grows_exponentially_and_is_capped_with_jitter_below_the_ceiling() {
        let p = RetryPolicy::exponential(10, Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(6), Duration::from_secs(2));
        assert_eq!(p.ceiling(60), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..200).map(|_| p.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        // Full jitter spreads the delays; they are not all equal.
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    #[test]
    fn only_retryable_classes_are_retried() {
        let p = RetryPolicy::exponential(3, Duration::ZERO, Duration::ZERO);
        assert!(p.should_retry(1, ErrorClass::Transient));
        assert!(p.should_retry(2, ErrorClass::Resource));
        assert!(!p.should_retry(3, ErrorClass::Transient));
        for c in [ErrorClass::Permanent, ErrorClass::Policy, ErrorClass::Panic] {
            assert!(!p.should_retry(1, c));
        }
    }

    #[tokio::test]
    async fn retry_runs_until_success() {
        let p = RetryPolicy::exponential(5, Duration::from_millis(1), Duration::from_millis(4));
        let n = AtomicU32::new(0);
        let r: Result<u32, TaskError> = p
            .run(|attempt| {
                n.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt < 3 {
                        Err(TaskError::new(ErrorClass::Transient, "Busy", "busy"))
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await;
        assert_eq!(r, Ok(3));
        assert_eq!(n.load(Ordering::SeqCst), 3);
        let r: Result<(), TaskError> = p
            .run(|_| async { Err(TaskError::new(ErrorClass::Policy, "PolicyDenied", "no")) })
            .await;
        assert_eq!(r.unwrap_err().kind, "PolicyDenied");
    }

    #[test]
    fn breaker_opens_half_opens_and_closes() {
        let b = CircuitBreaker::new(
            "tool:x",
            BreakerConfig {
                failure_threshold: 3,
                cool_down: Duration::from_millis(30),
            },
        );
        for _ in 0..2 {
            let p = b.acquire().unwrap();
            b.record(p, Some(ErrorClass::Transient));
        }
        // Non-transient failures do not count.
        let p = b.acquire().unwrap();
        b.record(p, Some(ErrorClass::Permanent));
        assert_eq!(b.state(), BreakerState::Closed);
        let p = b.acquire().unwrap();
        b.record(p, Some(ErrorClass::Transient));
        assert_eq!(b.state(), BreakerState::Open);
        let e = b.acquire().unwrap_err();
        assert_eq!(e.failures, 3);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = b.acquire().unwrap();
        // Only one probe at a time.
        assert!(b.acquire().is_err());
        // A failed probe re-opens at once.
        b.record(probe, Some(ErrorClass::Transient));
        assert!(b.acquire().is_err());
        std::thread::sleep(Duration::from_millis(40));
        let probe = b.acquire().unwrap();
        b.record(probe, None);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.acquire().is_ok());
    }

    #[tokio::test]
    async fn handler_keeps_one_breaker_per_dependency() {
        let h = ErrorHandler::new(ErrorHandlerConfig {
            breaker: BreakerConfig {
                failure_threshold: 1,
                cool_down: Duration::from_secs(60),
            },
            ..Default::default()
        });
        let r: Result<(), _> = h
            .breaker("a")
            .call(|| async { Err(TaskError::new(ErrorClass::Transient, "Reset", "reset")) })
            .await;
        assert!(r.is_err());
        let r = h
            .breaker("a")
            .call(|| async { Ok::<_, TaskError>(()) })
            .await;
        assert_eq!(r.unwrap_err().kind, "CircuitOpen");
        assert!(
            h.breaker("b")
                .call(|| async { Ok::<_, TaskError>(()) })
                .await
                .is_ok()
        );
        assert_eq!(
            h.open_breakers(),
            vec![("a".to_string(), BreakerState::Open)]
        );
    }

    #[test]
    fn panic_payloads_become_messages() {
        let r = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        let e = TaskError::panic(&*r);
        assert_eq!(
            (e.class, e.kind.as_str(), e.message.as_str()),
            (ErrorClass::Panic, "Panic", "boom 1")
        );
    }
}
