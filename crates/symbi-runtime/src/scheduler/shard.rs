//! Worker shards and the task driver.
//!
//! Each shard is one OS thread running a current-thread tokio runtime with a `LocalSet`.
//! A task arrives as a `Send` factory and its future is created *on the shard*, so it may
//! be `!Send` (the interpreter's coroutines) — it never leaves that thread. The driver
//! polls it, enforces the wall-time budget, freezes it when the scheduler asks (it is
//! simply not polled until unfrozen), isolates panics, and records every state change
//! through the lifecycle controller.

use super::task::{CANCEL, FREEZE, Factory, TaskContext, TaskOutcome};
use super::{Payload, Shared};
use crate::errors::{PanicAction, TaskError};
use crate::metrics::{RuntimeMetrics, class_index};
use crate::registry::{AgentEntry, LastFailure};
use crate::scheduler::core::QueuedTask;
use futures::FutureExt;
use serde_json::{Value, json};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use symbi_types::event::types::{EXECUTION_COMPLETED, EXECUTION_FAILED, EXECUTION_STARTED};
use symbi_types::state::TransitionCause;
use symbi_types::{AgentState, ErrorClass, EventDraft};
use tokio::sync::mpsc;

/// A message to a shard.
pub(crate) enum ShardMsg {
    /// Run this task.
    Run(QueuedTask<Payload>, Arc<Shared>),
}

/// Starts shard `index`; it runs until every sender is dropped.
pub(crate) fn spawn(
    index: usize,
) -> std::io::Result<(mpsc::UnboundedSender<ShardMsg>, std::thread::JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<ShardMsg>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = std::thread::Builder::new()
        .name(format!("symbi-shard-{index}"))
        .spawn(move || {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                while let Some(msg) = rx.recv().await {
                    match msg {
                        ShardMsg::Run(task, shared) => {
                            tokio::task::spawn_local(run_task(shared, task));
                        }
                    }
                }
            });
        })?;
    Ok((tx, handle))
}

/// Measures the time spent inside the task's `poll` (its CPU use on this thread).
struct Metered<'a> {
    inner: Pin<Box<dyn Future<Output = Result<Value, TaskError>>>>,
    control: &'a super::task::TaskControl,
}

impl Future for Metered<'_> {
    type Output = Result<Value, TaskError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let t = Instant::now();
        let r = self.inner.as_mut().poll(cx);
        self.control.add_cpu(t.elapsed().as_nanos() as u64);
        r
    }
}

enum Ended {
    Value(Value),
    Error(TaskError),
    Cancelled(String),
}

enum Step {
    Done(Result<Value, TaskError>),
    Control,
    Timeout,
}

async fn run_task(shared: Arc<Shared>, task: QueuedTask<Payload>) {
    let QueuedTask {
        id,
        agent,
        budget,
        control,
        payload,
        ..
    } = task;
    let Payload {
        factory,
        execution,
        reply,
        attempt,
        record,
        trigger,
        retry,
    } = payload;
    let entry = shared.registry.get(agent);
    let refuse = |reply: tokio::sync::oneshot::Sender<TaskOutcome>, reason: String| {
        shared.finish(agent, id, false);
        RuntimeMetrics::inc(&shared.metrics.tasks_cancelled);
        let _ = reply.send(TaskOutcome::Cancelled { reason });
    };
    let Some(entry) = entry else {
        return refuse(reply, "agent was deleted".into());
    };
    if control.is_cancelled() {
        return refuse(reply, control.cancel_reason());
    }
    let ids = json!({"execution_id": execution.to_string(), "task_id": id.0});
    if let Err(e) = shared
        .lifecycle
        .transition_from(
            &entry,
            AgentState::Ready,
            AgentState::Running,
            TransitionCause::TaskAssigned,
            Some(ids.clone()),
        )
        .await
    {
        return refuse(reply, format!("task not started: {e}"));
    }
    entry.count_execution();
    let name = entry.name();
    let event = |ty: &str, details: Value| {
        EventDraft::new(ty, details)
            .agent(agent, &*name)
            .execution(execution)
    };
    let started = Instant::now();

    let made = if record
        && let Err(e) = shared
            .lifecycle
            .sink()
            .record(event(EXECUTION_STARTED, json!({"execution_id": execution.to_string(), "trigger": trigger, "attempt": attempt})))
            .await
    {
        // Fail closed: what cannot be recorded does not run.
        Err(Ended::Error(TaskError::new(ErrorClass::Transient, "AuditUnavailable", e.to_string())))
    } else {
        let ctx = TaskContext { task: id, agent, execution, budget, attempt, control: control.clone() };
        // Building the future runs caller code too: a panic there is isolated the same way.
        let made = match factory {
            Factory::Once(f) => std::panic::catch_unwind(AssertUnwindSafe(move || f(ctx))).map(|fut| (fut, None)),
            Factory::Many(f) => {
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(ctx)));
                r.map(|fut| (fut, Some(Factory::Many(f))))
            }
        };
        made.map_err(|p| Ended::Error(TaskError::panic(&*p)))
    };
    let (ended, keep) = match made {
        Ok((fut, keep)) => (
            drive(&shared, &entry, &control, fut, budget.wall_time, &ids).await,
            keep,
        ),
        Err(ended) => (ended, None),
    };
    finish_task(
        shared, entry, id, control, ended, started, keep, retry, attempt, execution, reply, record,
        trigger,
    )
    .await;
}

async fn drive(
    shared: &Shared,
    entry: &AgentEntry,
    control: &Arc<super::task::TaskControl>,
    fut: Pin<Box<dyn Future<Output = Result<Value, TaskError>>>>,
    wall_time: Duration,
    ids: &Value,
) -> Ended {
    let mut fut = Metered {
        inner: fut,
        control,
    };
    let mut active = Duration::ZERO;
    loop {
        let remaining = wall_time.saturating_sub(active);
        let slice_start = Instant::now();
        let step = tokio::select! {
            biased;
            _ = control.left_run() => Step::Control,
            r = AssertUnwindSafe(&mut fut).catch_unwind() => match r {
                Ok(r) => Step::Done(r),
                Err(p) => Step::Done(Err(TaskError::panic(&*p))),
            },
            _ = tokio::time::sleep(remaining) => Step::Timeout,
        };
        active += slice_start.elapsed();
        control.set_active(active.as_nanos() as u64);
        match step {
            Step::Done(Ok(v)) => return Ended::Value(v),
            Step::Done(Err(e)) => return Ended::Error(e),
            Step::Timeout => return Ended::Error(TaskError::timeout(wall_time)),
            Step::Control => match control.state() {
                CANCEL => return Ended::Cancelled(control.cancel_reason()),
                FREEZE => {
                    let cause = control.freeze_cause();
                    if let Err(e) = shared
                        .lifecycle
                        .transition_from(
                            entry,
                            AgentState::Running,
                            AgentState::Suspended,
                            cause,
                            Some(ids.clone()),
                        )
                        .await
                    {
                        // A suspension that cannot be recorded does not happen; the task is
                        // stopped instead (its resources are already with another task).
                        return Ended::Error(TaskError::new(
                            ErrorClass::Transient,
                            "AuditUnavailable",
                            e.to_string(),
                        ));
                    }
                    match cause {
                        TransitionCause::Preempted => {
                            RuntimeMetrics::inc(&shared.metrics.preemptions)
                        }
                        TransitionCause::ResourcePressure => {
                            RuntimeMetrics::inc(&shared.metrics.pressure_suspensions)
                        }
                        _ => {}
                    }
                    control.left_freeze().await;
                    if control.is_cancelled() {
                        return Ended::Cancelled(control.cancel_reason());
                    }
                    let resume = if cause == TransitionCause::PolicyViolation {
                        TransitionCause::PolicyCleared
                    } else {
                        TransitionCause::ResourcesAvailable
                    };
                    if let Err(e) = shared
                        .lifecycle
                        .transition_from(
                            entry,
                            AgentState::Suspended,
                            AgentState::Running,
                            resume,
                            Some(ids.clone()),
                        )
                        .await
                    {
                        return Ended::Error(TaskError::new(
                            ErrorClass::Transient,
                            "AuditUnavailable",
                            e.to_string(),
                        ));
                    }
                    RuntimeMetrics::inc(&shared.metrics.resumptions);
                }
                _ => {}
            },
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn finish_task(
    shared: Arc<Shared>,
    entry: Arc<AgentEntry>,
    id: super::task::TaskId,
    control: Arc<super::task::TaskControl>,
    ended: Ended,
    started: Instant,
    factory: Option<Factory>,
    retry: crate::errors::RetryPolicy,
    attempt: u32,
    execution: symbi_types::ExecutionId,
    reply: tokio::sync::oneshot::Sender<TaskOutcome>,
    record: bool,
    trigger: Option<String>,
) {
    let agent = entry.id();
    let name = entry.name();
    let duration_ms = started.elapsed().as_millis() as u64;
    let exec = execution.to_string();
    let m = &shared.metrics;

    // 1. The execution's own record.
    let draft = match &ended {
        Ended::Value(_) => {
            RuntimeMetrics::inc(&m.tasks_completed);
            EventDraft::new(
                EXECUTION_COMPLETED,
                json!({"execution_id": exec, "duration_ms": duration_ms, "attempt": attempt}),
            )
        }
        Ended::Error(e) => {
            RuntimeMetrics::inc(&m.tasks_failed[class_index(e.class)]);
            if e.class == ErrorClass::Panic {
                RuntimeMetrics::inc(&m.panics);
                tracing::error!(agent = %agent, task = %id, message = %e.message, "agent task panicked; runtime continues");
            }
            entry.record_failure(LastFailure {
                class: e.class,
                kind: e.kind.clone(),
                message: e.message.clone(),
                at: chrono::Utc::now(),
            });
            EventDraft::new(
                EXECUTION_FAILED,
                json!({"execution_id": exec, "kind": e.kind, "class": e.class, "message": e.message,
                       "details": e.details, "duration_ms": duration_ms, "attempt": attempt}),
            )
        }
        Ended::Cancelled(reason) => {
            RuntimeMetrics::inc(&m.tasks_cancelled);
            EventDraft::new(
                EXECUTION_FAILED,
                json!({"execution_id": exec, "kind": "Cancelled", "class": null, "message": reason, "duration_ms": duration_ms}),
            )
        }
    };
    if record
        && let Err(e) = shared
            .lifecycle
            .sink()
            .record(draft.agent(agent, &*name).execution(execution))
            .await
    {
        tracing::error!(error = %e, agent = %agent, "execution event refused by the event sink");
    }

    // 2. The agent's state.
    let ids = json!({"execution_id": exec, "task_id": id.0});
    let mut block = false;
    let mut fail = false;
    let lc = &shared.lifecycle;
    match &ended {
        Ended::Error(e) if e.class == ErrorClass::Policy => {
            block = true;
            let extra = json!({"execution_id": exec, "task_id": id.0, "error": e.kind, "message": e.message});
            if let Err(err) = lc
                .transition_from(
                    &entry,
                    AgentState::Running,
                    AgentState::Suspended,
                    TransitionCause::PolicyViolation,
                    Some(extra),
                )
                .await
            {
                tracing::error!(error = %err, agent = %agent, "could not suspend agent after policy violation");
            }
        }
        Ended::Error(e) if e.class == ErrorClass::Panic => {
            let extra = json!({"execution_id": exec, "task_id": id.0, "reason": "panic", "message": e.message});
            if shared.errors.config().on_panic == PanicAction::Fail {
                block = true;
                fail = true;
                let _ = lc
                    .transition_from(
                        &entry,
                        AgentState::Running,
                        AgentState::Failed,
                        TransitionCause::TaskPanicked,
                        Some(extra),
                    )
                    .await;
            } else {
                let _ = lc
                    .transition_from(
                        &entry,
                        AgentState::Running,
                        AgentState::Ready,
                        TransitionCause::TaskComplete,
                        Some(extra),
                    )
                    .await;
            }
        }
        _ => {
            // A cancelled task of a suspended agent leaves the agent Suspended: whoever
            // cancelled it (terminate, shutdown) decides what happens to the agent.
            if entry.state() == AgentState::Running {
                let _ = lc
                    .transition_from(
                        &entry,
                        AgentState::Running,
                        AgentState::Ready,
                        TransitionCause::TaskComplete,
                        Some(ids),
                    )
                    .await;
            }
        }
    }

    // 3. Retry?
    let retrying = match (&ended, &factory) {
        (Ended::Error(e), Some(_)) => retry.should_retry(attempt, e.class) && !fail && !block,
        _ => false,
    };
    shared.finish(agent, id, block);
    if fail {
        shared.cancel_queued(agent, "agent failed: a task panicked");
    }
    if retrying {
        RuntimeMetrics::inc(&m.retries);
        tokio::time::sleep(retry.delay(attempt)).await;
        let payload = Payload {
            factory: factory.expect("checked"),
            execution,
            reply,
            attempt: attempt + 1,
            record,
            trigger,
            retry,
        };
        let priority = None;
        if let Err(failed) = shared.requeue(agent, id, control, payload, priority) {
            let (reply, error) = *failed;
            let _ = reply.send(TaskOutcome::Failed { error });
        }
        return;
    }
    let outcome = match ended {
        Ended::Value(value) => TaskOutcome::Completed { value },
        Ended::Error(error) => TaskOutcome::Failed { error },
        Ended::Cancelled(reason) => TaskOutcome::Cancelled { reason },
    };
    let _ = reply.send(outcome);
}
