//! The scheduler: a priority queue with aging and preemption ([`core`]), worker shards that
//! run task futures ([`shard`]), and the operations that tie them to the lifecycle.
//!
//! A decision (pick the head of the queue, check it fits, choose a shard, hand it over) is
//! made synchronously under one lock wherever work appears — on submit, when a task ends,
//! when a suspended task may resume — so an idle runtime runs no timers and no loops and
//! uses no CPU, however many agents are registered.

pub mod core;
mod shard;
pub mod task;

use self::core::{Action, CoreConfig, QueuedTask, Rejection, SchedCore};
use self::shard::ShardMsg;
use self::task::{Factory, TaskControl, TaskHandle, TaskId, TaskOutcome};
use crate::errors::{ErrorHandler, RetryPolicy, TaskError};
use crate::lifecycle::{Lifecycle, LifecycleError};
use crate::metrics::RuntimeMetrics;
use crate::registry::{AgentEntry, Registry};
use crate::resources::{Amount, ResourceError, ResourcePool};
use crate::spec::Priority;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use symbi_types::state::TransitionCause;
use symbi_types::{AgentId, AgentState, ErrorClass, ExecutionId};
use tokio::sync::{mpsc, oneshot};

/// Why the scheduler refused or could not do something.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No such agent.
    #[error("agent {0} not found")]
    AgentNotFound(AgentId),
    /// The agent's state does not take tasks (Initializing, Failed, Terminated).
    #[error("agent {agent} is {state} and does not accept tasks")]
    NotRunnable {
        /// The agent.
        agent: AgentId,
        /// Its state.
        state: AgentState,
    },
    /// Admission control refused the task.
    #[error("task refused by admission control: {0}")]
    Admission(#[from] ResourceError),
    /// The runtime is shutting down.
    #[error("the runtime is shutting down and accepts no new work")]
    ShuttingDown,
    /// A lifecycle transition failed.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The operation does not apply to the agent's current situation.
    #[error("agent {agent}: {message}")]
    NotApplicable {
        /// The agent.
        agent: AgentId,
        /// What is wrong.
        message: String,
    },
}

/// What a queued task carries besides its scheduling data.
pub(crate) struct Payload {
    factory: Factory,
    execution: ExecutionId,
    reply: oneshot::Sender<TaskOutcome>,
    attempt: u32,
    record: bool,
    trigger: Option<String>,
    retry: RetryPolicy,
}

/// Scheduler settings beyond the core's.
#[derive(Clone, Copy, Debug)]
pub struct SchedulerConfig {
    /// Core settings (shards, strategy, admission, aging).
    pub core: CoreConfig,
}

pub(crate) struct Shared {
    this: Weak<Shared>,
    core: Mutex<SchedCore<Payload>>,
    senders: Mutex<Vec<mpsc::UnboundedSender<ShardMsg>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) errors: Arc<ErrorHandler>,
    pub(crate) metrics: Arc<RuntimeMetrics>,
    accepting: AtomicBool,
    next_id: AtomicU64,
}

/// The scheduler handle (one per runtime).
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl Shared {
    fn arc(&self) -> Arc<Shared> {
        self.this.upgrade().expect("scheduler alive while used")
    }

    /// Runs a decision round and carries out its actions, under the core lock (so a freeze
    /// and a later unfreeze of one task can never be applied out of order).
    fn pump_locked(&self, core: &mut SchedCore<Payload>) {
        let mut out = Vec::new();
        let m = &self.metrics;
        core.decide(Instant::now(), &mut out, |d| {
            m.scheduling_decision.record(d)
        });
        self.apply(out);
    }

    fn apply(&self, out: Vec<Action<Payload>>) {
        for a in out {
            match a {
                Action::Dispatch { shard, task } => {
                    self.metrics.queue_wait.record(task.submitted.elapsed());
                    let senders = self.senders.lock();
                    match senders.get(shard) {
                        Some(tx) => {
                            if let Err(mpsc::error::SendError(ShardMsg::Run(task, _))) =
                                tx.send(ShardMsg::Run(task, self.arc()))
                            {
                                // The shard is gone (shutdown completed): report, do not lose it.
                                let _ = task.payload.reply.send(TaskOutcome::Cancelled {
                                    reason: "runtime stopped".into(),
                                });
                            }
                        }
                        None => {
                            let _ = task.payload.reply.send(TaskOutcome::Cancelled {
                                reason: "runtime stopped".into(),
                            });
                        }
                    }
                }
                Action::Freeze { control, cause } => control.freeze(cause),
                Action::Unfreeze { control } => control.unfreeze(),
                Action::Dropped { task } => {
                    RuntimeMetrics::inc(&self.metrics.tasks_cancelled);
                    let reason = task.control.cancel_reason();
                    let _ = task.payload.reply.send(TaskOutcome::Cancelled { reason });
                }
            }
        }
    }

    /// A task ended: return its resources and start what can start.
    pub(crate) fn finish(&self, agent: AgentId, task: TaskId, block: bool) {
        let mut core = self.core.lock();
        core.finish(agent, task, block, Instant::now());
        self.pump_locked(&mut core);
    }

    /// Puts a retry attempt back in the queue.
    fn requeue(
        &self,
        agent: AgentId,
        id: TaskId,
        control: Arc<TaskControl>,
        payload: Payload,
        priority: Option<Priority>,
    ) -> Result<(), Box<(oneshot::Sender<TaskOutcome>, TaskError)>> {
        let Some(entry) = self.registry.get(agent) else {
            return Err(Box::new((
                payload.reply,
                TaskError::new(ErrorClass::Permanent, "AgentNotFound", "agent was deleted"),
            )));
        };
        let task = QueuedTask {
            id,
            agent,
            priority: priority.unwrap_or(entry.priority()),
            budget: entry.budget(),
            submitted: Instant::now(),
            control,
            payload,
        };
        self.enqueue(&entry, task).map_err(|(e, t)| {
            Box::new((
                t.payload.reply,
                TaskError::new(ErrorClass::Permanent, "NotRunnable", e.to_string()),
            ))
        })
    }

    fn enqueue(
        &self,
        entry: &AgentEntry,
        task: QueuedTask<Payload>,
    ) -> Result<(), (ScheduleError, Box<QueuedTask<Payload>>)> {
        let mut core = self.core.lock();
        // Checked under the core lock: terminate changes the state first and purges the
        // queue under this lock after, so no task can slip in behind a terminated agent.
        if !self.accepting.load(Ordering::Acquire) {
            return Err((ScheduleError::ShuttingDown, Box::new(task)));
        }
        let state = entry.state();
        if !matches!(
            state,
            AgentState::Ready | AgentState::Running | AgentState::Suspended
        ) {
            return Err((
                ScheduleError::NotRunnable {
                    agent: entry.id(),
                    state,
                },
                Box::new(task),
            ));
        }
        match core.submit(task, Instant::now()) {
            Ok(()) => {}
            Err(Rejection::Resources(e, task)) => {
                RuntimeMetrics::inc(&self.metrics.admissions_rejected);
                return Err((ScheduleError::Admission(e), task));
            }
        }
        self.pump_locked(&mut core);
        Ok(())
    }

    /// Cancels what the agent has queued and running, waits for its running task to end,
    /// and moves it to Terminated along the edge its state allows.
    /// Cancels every task of `agent` that has not started and keeps the agent blocked (a
    /// Failed agent takes no more work).
    pub(crate) fn cancel_queued(&self, agent: AgentId, reason: &str) {
        let purged = self.core.lock().purge_agent(agent);
        for t in purged {
            RuntimeMetrics::inc(&self.metrics.tasks_cancelled);
            let _ = t.payload.reply.send(TaskOutcome::Cancelled {
                reason: reason.into(),
            });
        }
    }

    pub(crate) async fn terminate_agent(
        &self,
        entry: &AgentEntry,
        extra: Option<Value>,
    ) -> Result<(), ScheduleError> {
        let agent = entry.id();
        let (purged, current) = {
            let mut core = self.core.lock();
            (core.purge_agent(agent), core.current_task(agent))
        };
        for t in purged {
            RuntimeMetrics::inc(&self.metrics.tasks_cancelled);
            let _ = t.payload.reply.send(TaskOutcome::Cancelled {
                reason: "agent terminated".into(),
            });
        }
        if let Some((_, control, _)) = current {
            control.cancel("agent terminated");
            // The driver drops the future at once; it then records the task's end.
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.core.lock().current_task(agent).is_some() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let (to, cause) = match entry.state() {
            AgentState::Ready => (AgentState::Terminated, TransitionCause::Shutdown),
            AgentState::Suspended => (AgentState::Terminated, TransitionCause::ManualOverride),
            AgentState::Failed => (AgentState::Terminated, TransitionCause::Cleanup),
            // Let the lifecycle controller produce the typed error for the others.
            _ => (AgentState::Terminated, TransitionCause::Shutdown),
        };
        let r = self.lifecycle.transition(entry, to, cause, extra).await;
        self.core.lock().forget(agent);
        r.map(|_| ()).map_err(Into::into)
    }
}

/// What `Scheduler::submit` needs to know about a task.
pub(crate) struct Submission {
    pub spec: task::TaskSpec,
    pub factory: Factory,
}

impl Scheduler {
    /// Starts `config.core.shards` shard threads.
    pub(crate) fn start(
        config: SchedulerConfig,
        pool: ResourcePool,
        registry: Arc<Registry>,
        lifecycle: Arc<Lifecycle>,
        errors: Arc<ErrorHandler>,
        metrics: Arc<RuntimeMetrics>,
    ) -> std::io::Result<Scheduler> {
        let n = config.core.shards.max(1);
        let mut senders = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, th) = shard::spawn(i)?;
            senders.push(tx);
            threads.push(th);
        }
        let shared = Arc::new_cyclic(|this| Shared {
            this: this.clone(),
            core: Mutex::new(SchedCore::new(config.core, pool)),
            senders: Mutex::new(senders),
            threads: Mutex::new(threads),
            registry,
            lifecycle,
            errors,
            metrics,
            accepting: AtomicBool::new(true),
            next_id: AtomicU64::new(1),
        });
        Ok(Scheduler { shared })
    }

    pub(crate) fn submit(
        &self,
        agent: AgentId,
        s: Submission,
    ) -> Result<TaskHandle, ScheduleError> {
        let sh = &self.shared;
        let entry = sh
            .registry
            .get(agent)
            .ok_or(ScheduleError::AgentNotFound(agent))?;
        let id = TaskId(sh.next_id.fetch_add(1, Ordering::Relaxed));
        let execution = s.spec.execution.unwrap_or_default();
        let control = Arc::new(TaskControl::default());
        let (tx, rx) = oneshot::channel();
        let task = QueuedTask {
            id,
            agent,
            priority: s.spec.priority.unwrap_or(entry.priority()),
            budget: s.spec.budget.unwrap_or(entry.budget()),
            submitted: Instant::now(),
            control: control.clone(),
            payload: Payload {
                factory: s.factory,
                execution,
                reply: tx,
                attempt: 1,
                record: s.spec.record_execution.unwrap_or(true),
                trigger: s.spec.trigger,
                retry: s.spec.retry,
            },
        };
        sh.enqueue(&entry, task).map_err(|(e, _)| e)?;
        RuntimeMetrics::inc(&sh.metrics.tasks_submitted);
        Ok(TaskHandle {
            id,
            agent,
            execution,
            control,
            rx,
        })
    }

    /// Suspends the agent's running task (it is frozen, not dropped) for `cause`, and waits
    /// until the suspension is recorded.
    pub(crate) async fn suspend(
        &self,
        entry: &AgentEntry,
        cause: TransitionCause,
    ) -> Result<(), ScheduleError> {
        let agent = entry.id();
        let ok = {
            let mut core = self.shared.core.lock();
            let mut out = Vec::new();
            let ok = core.suspend(agent, cause, Instant::now(), &mut out);
            self.shared.apply(out);
            self.shared.pump_locked(&mut core);
            ok
        };
        if !ok {
            return Err(ScheduleError::NotApplicable {
                agent,
                message: format!("has no running task to suspend (state {})", entry.state()),
            });
        }
        self.wait_state(entry, |s| s != AgentState::Running).await;
        Ok(())
    }

    async fn wait_state(&self, entry: &AgentEntry, done: impl Fn(AgentState) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(entry.state())
            && self.shared.core.lock().current_task(entry.id()).is_some()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Resumes a suspended agent: a frozen task is queued to resume when it fits; an agent
    /// suspended by a policy violation (its execution already ended) is cleared:
    /// Suspended → Running (`policy_cleared`) → Ready (`task_complete`).
    pub(crate) async fn resume(&self, entry: &AgentEntry) -> Result<(), ScheduleError> {
        let agent = entry.id();
        if entry.state() != AgentState::Suspended {
            return Err(ScheduleError::NotApplicable {
                agent,
                message: format!("is {}, not Suspended", entry.state()),
            });
        }
        {
            let mut core = self.shared.core.lock();
            match core.current_task(agent) {
                // Frozen by an operator: queue it to resume when it fits.
                Some((_, _, true)) if core.resume(agent, Instant::now()) => {
                    self.shared.pump_locked(&mut core);
                    return Ok(());
                }
                // Frozen by the scheduler: it is already queued to resume.
                Some((_, _, true)) => return Ok(()),
                Some((_, _, false)) => {
                    return Err(ScheduleError::NotApplicable {
                        agent,
                        message: "its task is not suspended".into(),
                    });
                }
                None => {}
            }
        }
        let lc = &self.shared.lifecycle;
        let extra = Some(json!({"reason": "operator cleared the violation"}));
        lc.transition_from(
            entry,
            AgentState::Suspended,
            AgentState::Running,
            TransitionCause::PolicyCleared,
            extra.clone(),
        )
        .await?;
        lc.transition_from(
            entry,
            AgentState::Running,
            AgentState::Ready,
            TransitionCause::TaskComplete,
            extra,
        )
        .await?;
        let mut core = self.shared.core.lock();
        core.unblock(agent, Instant::now());
        self.shared.pump_locked(&mut core);
        Ok(())
    }

    pub(crate) async fn terminate(&self, entry: &AgentEntry) -> Result<(), ScheduleError> {
        self.shared.terminate_agent(entry, None).await
    }

    /// Changes the capacity; suspends lowest-priority work if it no longer fits. Returns the
    /// number of tasks suspended.
    pub(crate) fn set_capacity(&self, capacity: Amount) -> usize {
        let mut core = self.shared.core.lock();
        let mut out = Vec::new();
        let n = core.set_capacity(capacity, Instant::now(), &mut out);
        self.shared.apply(out);
        self.shared.pump_locked(&mut core);
        n
    }

    /// Tasks of one agent (queued, waiting, running, suspended), and its current task's
    /// control block.
    pub(crate) fn agent_tasks(&self, agent: AgentId) -> (u32, Option<Arc<TaskControl>>) {
        let core = self.shared.core.lock();
        (
            core.agent_tasks(agent),
            core.current_task(agent).map(|c| c.1),
        )
    }

    /// Queue and running counts.
    pub(crate) fn counts(&self) -> self::core::CoreCounts {
        self.shared.core.lock().counts()
    }

    /// Capacity and allocation.
    pub(crate) fn pool_usage(&self) -> crate::resources::PoolUsage {
        self.shared.core.lock().pool().usage()
    }

    /// What the agent holds.
    pub(crate) fn holding(&self, agent: AgentId) -> Option<crate::resources::Holding> {
        self.shared.core.lock().pool().holding(agent)
    }

    /// Stops accepting work and cancels everything queued that has not started.
    pub(crate) fn close(&self) -> usize {
        self.shared.accepting.store(false, Ordering::Release);
        let purged = self.shared.core.lock().purge_all();
        let n = purged.len();
        for t in purged {
            RuntimeMetrics::inc(&self.shared.metrics.tasks_cancelled);
            let _ = t.payload.reply.send(TaskOutcome::Cancelled {
                reason: "runtime shutting down".into(),
            });
        }
        n
    }

    /// Whether new work is accepted.
    pub(crate) fn accepting(&self) -> bool {
        self.shared.accepting.load(Ordering::Acquire)
    }

    /// Waits until no task runs or is suspended, or `until` passes. Returns whether idle.
    pub(crate) async fn wait_idle(&self, until: Instant) -> bool {
        loop {
            if self.shared.core.lock().is_idle() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Cancels every running and suspended task. Returns how many.
    pub(crate) fn cancel_all(&self, reason: &str) -> usize {
        let all = self.shared.core.lock().all_current();
        for c in &all {
            c.cancel(reason);
        }
        all.len()
    }

    /// Stops the shard threads (after their tasks ended) and joins them.
    pub(crate) async fn stop_shards(&self) {
        self.shared.senders.lock().clear();
        let threads: Vec<_> = std::mem::take(&mut *self.shared.threads.lock());
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }

    /// Forgets an agent's scheduler state (after deletion).
    pub(crate) fn forget(&self, agent: AgentId) {
        self.shared.core.lock().forget(agent);
    }
}
