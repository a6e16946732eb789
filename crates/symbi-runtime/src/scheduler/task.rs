//! Tasks: what a caller submits, what the task's future sees, and what comes back.

use crate::errors::{RetryPolicy, TaskError};
use crate::spec::Priority;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use symbi_types::state::TransitionCause;
use symbi_types::{AgentId, ExecutionId, ResourceBudget};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

/// Runtime-unique id of a submitted task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task-{}", self.0)
    }
}

/// What a task returns: a JSON value or a classified error.
pub type TaskResult = Result<Value, TaskError>;

/// A task's future. It need not be `Send`: it is created on the worker shard that runs it
/// and never leaves that thread.
pub type LocalTaskFuture = Pin<Box<dyn Future<Output = TaskResult>>>;

/// Builds a task's future on its shard.
pub(crate) enum Factory {
    /// Called once.
    Once(Box<dyn FnOnce(TaskContext) -> LocalTaskFuture + Send>),
    /// Called once per attempt (retrying tasks).
    Many(Arc<dyn Fn(TaskContext) -> LocalTaskFuture + Send + Sync>),
}

/// How to run one task.
///
/// ```
/// use symbi_runtime::{TaskSpec, Priority};
/// let spec = TaskSpec::default().priority(Priority::HIGH).trigger("http");
/// assert_eq!(spec.priority, Some(Priority::HIGH));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TaskSpec {
    /// Priority; default: the agent's.
    pub priority: Option<Priority>,
    /// Budget; default: the agent's.
    pub budget: Option<ResourceBudget>,
    /// Execution id for the audit trail; default: a new one.
    pub execution: Option<ExecutionId>,
    /// What started it (`http`, `schedule`, `message`, …), recorded in execution events.
    pub trigger: Option<String>,
    /// Whether the runtime records `execution_started` / `execution_completed` /
    /// `execution_failed` events for it (default true). Set false when the task records its
    /// own (e.g. the interpreter with step counts).
    pub record_execution: Option<bool>,
    /// Retries of retryable failures (only for tasks submitted with a reusable factory).
    pub retry: RetryPolicy,
}

impl TaskSpec {
    /// Sets the priority.
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = Some(p);
        self
    }

    /// Sets the budget.
    pub fn budget(mut self, b: ResourceBudget) -> Self {
        self.budget = Some(b);
        self
    }

    /// Sets the execution id.
    pub fn execution(mut self, e: ExecutionId) -> Self {
        self.execution = Some(e);
        self
    }

    /// Sets the trigger.
    pub fn trigger(mut self, t: impl Into<String>) -> Self {
        self.trigger = Some(t.into());
        self
    }

    /// Turns the runtime's execution events on or off.
    pub fn record_execution(mut self, on: bool) -> Self {
        self.record_execution = Some(on);
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TaskOutcome {
    /// It returned a value.
    Completed {
        /// The value.
        value: Value,
    },
    /// It failed (including timeouts, panics and policy violations).
    Failed {
        /// The error.
        error: TaskError,
    },
    /// It was cancelled before it finished (terminate, delete, shutdown, cancel).
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl TaskOutcome {
    /// The value, if completed.
    pub fn value(&self) -> Option<&Value> {
        match self {
            TaskOutcome::Completed { value } => Some(value),
            _ => None,
        }
    }

    /// The error, if failed.
    pub fn error(&self) -> Option<&TaskError> {
        match self {
            TaskOutcome::Failed { error } => Some(error),
            _ => None,
        }
    }
}

pub(crate) const RUN: u8 = 0;
pub(crate) const FREEZE: u8 = 1;
pub(crate) const CANCEL: u8 = 2;

/// Shared control block of one task: the scheduler writes, the task's driver reads.
pub struct TaskControl {
    state: AtomicU8,
    freeze_cause: AtomicU8,
    notify: Notify,
    cancel: CancellationToken,
    reported_memory: AtomicU64,
    cpu_ns: AtomicU64,
    active_ns: AtomicU64,
    cancel_reason: parking_lot::Mutex<Option<String>>,
}

impl Default for TaskControl {
    fn default() -> Self {
        TaskControl {
            state: AtomicU8::new(RUN),
            freeze_cause: AtomicU8::new(0),
            notify: Notify::new(),
            cancel: CancellationToken::new(),
            reported_memory: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            active_ns: AtomicU64::new(0),
            cancel_reason: parking_lot::Mutex::new(None),
        }
    }
}

fn cause_code(c: TransitionCause) -> u8 {
    match c {
        TransitionCause::PolicyViolation => 1,
        TransitionCause::ResourcePressure => 2,
        _ => 0,
    }
}

impl TaskControl {
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Asks the driver to freeze the task (stop polling it) for `cause`.
    pub(crate) fn freeze(&self, cause: TransitionCause) {
        self.freeze_cause
            .store(cause_code(cause), Ordering::Release);
        if self
            .state
            .compare_exchange(RUN, FREEZE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// The cause of the current freeze.
    pub(crate) fn freeze_cause(&self) -> TransitionCause {
        match self.freeze_cause.load(Ordering::Acquire) {
            1 => TransitionCause::PolicyViolation,
            2 => TransitionCause::ResourcePressure,
            _ => TransitionCause::Preempted,
        }
    }

    /// Lets a frozen task run again.
    pub(crate) fn unfreeze(&self) {
        if self
            .state
            .compare_exchange(FREEZE, RUN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// Cancels the task: it is dropped at its next suspension point (or never started).
    pub(crate) fn cancel(&self, reason: &str) {
        {
            let mut r = self.cancel_reason.lock();
            if r.is_none() {
                *r = Some(reason.to_string());
            }
        }
        self.state.store(CANCEL, Ordering::Release);
        self.cancel.cancel();
        self.notify.notify_one();
    }

    pub(crate) fn cancel_reason(&self) -> String {
        self.cancel_reason
            .lock()
            .clone()
            .unwrap_or_else(|| "cancelled".into())
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state() == CANCEL
    }

    /// Resolves when the state is no longer `RUN`.
    pub(crate) async fn left_run(&self) {
        while self.state() == RUN {
            self.notify.notified().await;
        }
    }

    /// Resolves when the state is no longer `FREEZE`.
    pub(crate) async fn left_freeze(&self) {
        while self.state() == FREEZE {
            self.notify.notified().await;
        }
    }

    /// Memory the task reported as in use (bytes).
    pub fn reported_memory(&self) -> u64 {
        self.reported_memory.load(Ordering::Relaxed)
    }

    pub(crate) fn add_cpu(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub(crate) fn set_active(&self, ns: u64) {
        self.active_ns.store(ns, Ordering::Relaxed);
    }

    /// Share of one core the task used while it was active, in percent.
    pub fn cpu_percent(&self) -> f64 {
        let active = self.active_ns.load(Ordering::Relaxed);
        if active == 0 {
            return 0.0;
        }
        (self.cpu_ns.load(Ordering::Relaxed) as f64 / active as f64 * 100.0).min(100.0)
    }
}

/// What a task's future is given: its identity, its budget and a cancellation token.
///
/// Preemption and suspension need no cooperation — a suspended task is simply not polled
/// until it resumes — but a task that runs long without awaiting cannot be suspended
/// before it awaits, so long computations should yield now and then
/// (`tokio::task::yield_now`), as the interpreter does between steps.
#[derive(Clone)]
pub struct TaskContext {
    /// The task.
    pub task: TaskId,
    /// Its agent.
    pub agent: AgentId,
    /// Its execution id (audit).
    pub execution: ExecutionId,
    /// Its budget (the wall time is enforced by the runtime; memory and CPU are for the
    /// interpreter's heap limit and for sandbox cgroups).
    pub budget: ResourceBudget,
    /// Attempt number, from 1.
    pub attempt: u32,
    pub(crate) control: Arc<TaskControl>,
}

impl TaskContext {
    /// Cancelled when the runtime cancels the task (it is dropped right after, so this is
    /// for work the task hands to other threads or processes).
    pub fn cancellation(&self) -> CancellationToken {
        self.control.cancel.clone()
    }

    /// Reports how much memory the task currently uses (shown in status; kept reserved
    /// while the task is suspended).
    pub fn report_memory(&self, bytes: u64) {
        self.control.reported_memory.store(bytes, Ordering::Relaxed);
    }
}

/// A submitted task: wait for its outcome or cancel it.
pub struct TaskHandle {
    /// The task.
    pub id: TaskId,
    /// Its agent.
    pub agent: AgentId,
    /// Its execution id.
    pub execution: ExecutionId,
    pub(crate) control: Arc<TaskControl>,
    pub(crate) rx: oneshot::Receiver<TaskOutcome>,
}

impl fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("agent", &self.agent)
            .finish()
    }
}

impl TaskHandle {
    /// Waits for the outcome.
    pub async fn wait(self) -> TaskOutcome {
        self.rx.await.unwrap_or_else(|_| TaskOutcome::Cancelled {
            reason: "runtime stopped".into(),
        })
    }

    /// Cancels the task (queued: it never starts; running or suspended: it is dropped).
    pub fn cancel(&self) {
        self.control.cancel("cancelled by caller");
    }
}
