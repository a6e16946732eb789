//! The [`Runtime`] handle: registry, lifecycle, scheduler, resources and error handler
//! assembled from the configuration.

use crate::errors::{ErrorHandler, ErrorHandlerConfig};
use crate::lifecycle::{Lifecycle, LifecycleError};
use crate::metrics::{MetricsSnapshot, RuntimeMetrics};
use crate::registry::{AgentEntry, LastFailure, Registry, RegistryFull, StateCounts};
use crate::resources::{Amount, Holding, PoolUsage, ResourcePool};
use crate::scheduler::core::{CoreConfig, CoreCounts};
use crate::scheduler::task::{
    Factory, LocalTaskFuture, TaskContext, TaskHandle, TaskOutcome, TaskResult, TaskSpec,
};
use crate::scheduler::{ScheduleError, Scheduler, SchedulerConfig, Submission};
use crate::spec::{AgentSpec, Persistence, Priority, Validation};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_config::sections::runtime::{AdmissionPolicy, AllocationStrategy};
use symbi_types::state::TransitionCause;
use symbi_types::{AgentId, AgentState, EventSink, ResourceBudget};

/// A runtime operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No agent with this id.
    #[error("agent {0} not found")]
    AgentNotFound(AgentId),
    /// `[runtime] max_concurrent_agents` reached.
    #[error(transparent)]
    RegistryFull(#[from] RegistryFull),
    /// A state change was invalid or could not be recorded.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The scheduler refused (admission, state, shutdown).
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// The runtime is shutting down.
    #[error("the runtime is shutting down and accepts no new work")]
    ShuttingDown,
    /// The agent spec is unusable.
    #[error("invalid agent: {0}")]
    InvalidSpec(String),
    /// Worker threads could not be started.
    #[error("could not start scheduler shards: {0}")]
    Io(#[from] std::io::Error),
}

/// Settings of a runtime (normally from `[runtime]`).
#[derive(Clone, Copy, Debug)]
pub struct RuntimeOptions {
    /// Maximum registered agents.
    pub max_agents: usize,
    /// Scheduler settings.
    pub scheduler: CoreConfig,
    /// Capacity handed out to running tasks.
    pub capacity: Amount,
    /// Error handling.
    pub errors: ErrorHandlerConfig,
    /// Wall time of a task when nothing else says (`default_execution_timeout`).
    pub default_execution_timeout: Duration,
    /// How long `symbi up` waits for running work on shutdown.
    pub shutdown_grace: Duration,
}

impl RuntimeOptions {
    /// Settings from the configuration.
    pub fn from_config(cfg: &symbi_config::Config) -> Self {
        let rt = &cfg.runtime;
        RuntimeOptions {
            max_agents: rt.max_concurrent_agents,
            scheduler: CoreConfig {
                shards: rt.scheduler_threads,
                strategy: rt.allocation_strategy,
                admission: rt.admission,
                aging_step: Duration::from_millis(100),
            },
            capacity: ResourcePool::from_config(rt).capacity(),
            errors: ErrorHandlerConfig::default(),
            default_execution_timeout: rt.default_execution_timeout.0,
            shutdown_grace: rt.shutdown_grace.0,
        }
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self::from_config(&symbi_config::Config::default())
    }
}

/// Why an operator suspends a running agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuspendReason {
    /// A policy violation found outside the task (e.g. by a security monitor).
    PolicyViolation,
    /// Resources must be reclaimed.
    ResourcePressure,
}

/// What the HTTP API reports as `resource_usage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ResourceUsage {
    /// Memory the running task reported as in use (0 when idle or not reported).
    pub memory_bytes: u64,
    /// Share of one core the running task used while active, percent.
    pub cpu_percent: f64,
    /// Tasks of the agent that are queued, running or suspended.
    pub active_tasks: u32,
}

/// One agent's status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentStatus {
    /// The agent.
    pub agent_id: AgentId,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: AgentState,
    /// Last state change, task start or task end.
    pub last_activity: DateTime<Utc>,
    /// Resource use.
    pub resource_usage: ResourceUsage,
    /// What it holds from the capacity (while a task runs or is suspended).
    pub reserved: Option<Amount>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Executions started.
    pub executions: u64,
    /// Executions failed.
    pub failures: u64,
    /// The last failure.
    pub last_failure: Option<LastFailure>,
    /// Default priority.
    pub priority: Priority,
    /// Persistence.
    pub persistence: Persistence,
    /// Diagnostics that made it Failed.
    pub diagnostics: Vec<String>,
}

/// One line of the agent list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentSummary {
    /// The agent.
    pub id: AgentId,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: AgentState,
}

/// What a shutdown did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShutdownReport {
    /// Queued tasks cancelled before they started.
    pub queued_cancelled: usize,
    /// Whether every running task finished within the grace period.
    pub drained: bool,
    /// Running or suspended tasks cancelled after the grace period.
    pub running_cancelled: usize,
    /// Agents moved Ready → Terminated.
    pub agents_terminated: usize,
    /// How long it took, milliseconds.
    pub elapsed_ms: u64,
}

struct Inner {
    options: RuntimeOptions,
    registry: Arc<Registry>,
    lifecycle: Arc<Lifecycle>,
    scheduler: Scheduler,
    errors: Arc<ErrorHandler>,
    metrics: Arc<RuntimeMetrics>,
    started: Instant,
}

/// The runtime. Cheap to clone (an `Arc` inside).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use symbi_runtime::{AgentSpec, Runtime, TaskSpec, Validation};
/// use symbi_types::{AgentState, MemoryEventLog};
///
/// let log = MemoryEventLog::default();
/// let rt = Runtime::new(&symbi_config::Config::default(), Arc::new(log.clone())).unwrap();
/// let id = rt.create_agent(AgentSpec::new("greeter"), Validation::Valid).await.unwrap();
/// assert_eq!(rt.status(id).unwrap().state, AgentState::Ready);
///
/// // The closure is Send; the future it returns may be !Send (it is built on the shard).
/// let handle = rt.submit(id, TaskSpec::default(), |_ctx| async { Ok(serde_json::json!("hi")) }).unwrap();
/// assert_eq!(handle.wait().await.value(), Some(&serde_json::json!("hi")));
///
/// let report = rt.shutdown(std::time::Duration::from_secs(1)).await;
/// assert_eq!(report.agents_terminated, 1);
/// assert_eq!(rt.status(id).unwrap().state, AgentState::Terminated);
/// # });
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// A runtime configured by `config`, publishing events to `sink`. Starts the scheduler's
    /// shard threads; needs no tokio context.
    pub fn new(
        config: &symbi_config::Config,
        sink: Arc<dyn EventSink>,
    ) -> Result<Runtime, RuntimeError> {
        Self::with_options(RuntimeOptions::from_config(config), sink)
    }

    /// A runtime with explicit options.
    pub fn with_options(
        options: RuntimeOptions,
        sink: Arc<dyn EventSink>,
    ) -> Result<Runtime, RuntimeError> {
        let metrics = Arc::new(RuntimeMetrics::default());
        let registry = Arc::new(Registry::new(options.max_agents));
        let lifecycle = Arc::new(Lifecycle::new(sink, metrics.clone()));
        let errors = Arc::new(ErrorHandler::new(options.errors));
        let scheduler = Scheduler::start(
            SchedulerConfig {
                core: options.scheduler,
            },
            ResourcePool::new(options.capacity),
            registry.clone(),
            lifecycle.clone(),
            errors.clone(),
            metrics.clone(),
        )?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                options,
                registry,
                lifecycle,
                scheduler,
                errors,
                metrics,
                started: Instant::now(),
            }),
        })
    }

    /// The options in force.
    pub fn options(&self) -> &RuntimeOptions {
        &self.inner.options
    }

    /// A budget with the crate defaults and the configured default execution timeout.
    pub fn default_budget(&self) -> ResourceBudget {
        ResourceBudget {
            wall_time: self.inner.options.default_execution_timeout,
            ..ResourceBudget::default()
        }
    }

    /// Registers an agent: `(new) → Initializing`, then `→ Ready` or `→ Failed` by
    /// `validation`. Returns its id (also when it ended Failed: its status then carries the
    /// diagnostics until it is deleted).
    pub async fn create_agent(
        &self,
        spec: AgentSpec,
        validation: Validation,
    ) -> Result<AgentId, RuntimeError> {
        let t0 = Instant::now();
        let id = self.begin_agent(spec).await?;
        self.complete_initialization(id, validation).await?;
        self.inner.metrics.agent_creation.record(t0.elapsed());
        Ok(id)
    }

    /// Registers an agent in `Initializing` (for callers that validate after registering).
    pub async fn begin_agent(&self, spec: AgentSpec) -> Result<AgentId, RuntimeError> {
        if !self.inner.scheduler.accepting() {
            return Err(RuntimeError::ShuttingDown);
        }
        if spec.name.trim().is_empty() {
            return Err(RuntimeError::InvalidSpec("the agent name is empty".into()));
        }
        let reg = &self.inner.registry;
        reg.reserve()?;
        let entry = Arc::new(AgentEntry::new(AgentId::new(), spec));
        if let Err(e) = self.inner.lifecycle.enter(&entry).await {
            reg.unreserve();
            return Err(e.into());
        }
        reg.insert(entry.clone());
        RuntimeMetrics::inc(&self.inner.metrics.agents_created);
        Ok(entry.id())
    }

    /// `Initializing → Ready` (valid) or `→ Failed` (invalid, diagnostics kept and
    /// recorded). Returns the new state.
    pub async fn complete_initialization(
        &self,
        id: AgentId,
        validation: Validation,
    ) -> Result<AgentState, RuntimeError> {
        let entry = self.entry(id)?;
        let lc = &self.inner.lifecycle;
        match validation {
            Validation::Valid => {
                lc.transition_from(
                    &entry,
                    AgentState::Initializing,
                    AgentState::Ready,
                    TransitionCause::ConfigurationValid,
                    None,
                )
                .await?;
                Ok(AgentState::Ready)
            }
            Validation::Invalid(diagnostics) => {
                let extra = json!({ "diagnostics": diagnostics });
                lc.transition_from(
                    &entry,
                    AgentState::Initializing,
                    AgentState::Failed,
                    TransitionCause::ConfigurationInvalid,
                    Some(extra),
                )
                .await?;
                entry.set_diagnostics(diagnostics);
                Ok(AgentState::Failed)
            }
        }
    }

    fn entry(&self, id: AgentId) -> Result<Arc<AgentEntry>, RuntimeError> {
        self.inner
            .registry
            .get(id)
            .ok_or(RuntimeError::AgentNotFound(id))
    }

    /// Submits a task for `agent`. `make` runs on the worker shard and builds the task's
    /// future there, so the future may be `!Send`; `make` itself must be `Send`.
    ///
    /// The agent goes Ready → Running when the task starts and back when it ends; tasks of
    /// one agent run one at a time, in submission order.
    pub fn submit<F, Fut>(
        &self,
        agent: AgentId,
        spec: TaskSpec,
        make: F,
    ) -> Result<TaskHandle, RuntimeError>
    where
        F: FnOnce(TaskContext) -> Fut + Send + 'static,
        Fut: Future<Output = TaskResult> + 'static,
    {
        let factory = Factory::Once(Box::new(move |ctx| Box::pin(make(ctx)) as LocalTaskFuture));
        self.submit_factory(agent, spec, factory)
    }

    /// Like [`Runtime::submit`] with a factory that can build the future again, so that
    /// `spec.retry` can retry transient failures (each attempt gets a fresh future).
    pub fn submit_retrying<F, Fut>(
        &self,
        agent: AgentId,
        spec: TaskSpec,
        make: F,
    ) -> Result<TaskHandle, RuntimeError>
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TaskResult> + 'static,
    {
        let factory = Factory::Many(Arc::new(move |ctx| Box::pin(make(ctx)) as LocalTaskFuture));
        self.submit_factory(agent, spec, factory)
    }

    fn submit_factory(
        &self,
        agent: AgentId,
        spec: TaskSpec,
        factory: Factory,
    ) -> Result<TaskHandle, RuntimeError> {
        match self
            .inner
            .scheduler
            .submit(agent, Submission { spec, factory })
        {
            Ok(h) => Ok(h),
            Err(ScheduleError::AgentNotFound(a)) => Err(RuntimeError::AgentNotFound(a)),
            Err(ScheduleError::ShuttingDown) => Err(RuntimeError::ShuttingDown),
            Err(e) => Err(e.into()),
        }
    }

    /// Submits and waits for the outcome.
    pub async fn execute<F, Fut>(
        &self,
        agent: AgentId,
        spec: TaskSpec,
        make: F,
    ) -> Result<TaskOutcome, RuntimeError>
    where
        F: FnOnce(TaskContext) -> Fut + Send + 'static,
        Fut: Future<Output = TaskResult> + 'static,
    {
        Ok(self.submit(agent, spec, make)?.wait().await)
    }

    /// Suspends a Running agent: its task is frozen (kept, not polled) and its CPU and I/O
    /// return to the pool. Returns once the suspension is recorded.
    pub async fn suspend(&self, agent: AgentId, reason: SuspendReason) -> Result<(), RuntimeError> {
        let entry = self.entry(agent)?;
        let cause = match reason {
            SuspendReason::PolicyViolation => TransitionCause::PolicyViolation,
            SuspendReason::ResourcePressure => TransitionCause::ResourcePressure,
        };
        Ok(self.inner.scheduler.suspend(&entry, cause).await?)
    }

    /// Resumes a Suspended agent (see `docs/runtime.md` for the two cases).
    pub async fn resume(&self, agent: AgentId) -> Result<(), RuntimeError> {
        let entry = self.entry(agent)?;
        Ok(self.inner.scheduler.resume(&entry).await?)
    }

    /// Terminates an agent: its queued tasks are cancelled, its running or suspended task is
    /// dropped, and it moves to Terminated along the edge its state allows
    /// (Ready: `shutdown`, Suspended: `manual_override`, Failed: `cleanup`).
    pub async fn terminate(&self, agent: AgentId) -> Result<(), RuntimeError> {
        let entry = self.entry(agent)?;
        Ok(self.inner.scheduler.terminate(&entry).await?)
    }

    /// Terminates the agent (unless it already is) and removes it from the registry.
    pub async fn delete(&self, agent: AgentId) -> Result<(), RuntimeError> {
        let entry = self.entry(agent)?;
        if entry.state() != AgentState::Terminated {
            self.inner.scheduler.terminate(&entry).await?;
        }
        self.inner.registry.remove(agent);
        self.inner.scheduler.forget(agent);
        RuntimeMetrics::inc(&self.inner.metrics.agents_deleted);
        Ok(())
    }

    /// The agent's record (program slot, metadata, counters).
    pub fn get(&self, agent: AgentId) -> Option<Arc<AgentEntry>> {
        self.inner.registry.get(agent)
    }

    /// Renames an agent (HTTP API `PUT /agents/{id}`). Returns `false` for an unknown agent.
    pub fn rename(&self, agent: AgentId, name: &str) -> bool {
        self.inner.registry.rename(agent, name)
    }

    /// Ids of the agents with this name.
    pub fn find_by_name(&self, name: &str) -> Vec<AgentId> {
        self.inner.registry.find_by_name(name)
    }

    /// The agent's status.
    pub fn status(&self, agent: AgentId) -> Option<AgentStatus> {
        let e = self.inner.registry.get(agent)?;
        let (active_tasks, control) = self.inner.scheduler.agent_tasks(agent);
        let (memory_bytes, cpu_percent) =
            control.map_or((0, 0.0), |c| (c.reported_memory(), c.cpu_percent()));
        Some(AgentStatus {
            agent_id: agent,
            name: e.name().to_string(),
            state: e.state(),
            last_activity: e.last_activity(),
            resource_usage: ResourceUsage {
                memory_bytes,
                cpu_percent,
                active_tasks,
            },
            reserved: self.inner.scheduler.holding(agent).map(|h: Holding| h.held),
            created_at: e.created_at(),
            executions: e.executions(),
            failures: e.failures(),
            last_failure: e.last_failure(),
            priority: e.priority(),
            persistence: e.persistence(),
            diagnostics: e.diagnostics(),
        })
    }

    /// Every agent, in no particular order.
    pub fn list(&self) -> Vec<AgentSummary> {
        let mut v = Vec::with_capacity(self.inner.registry.len());
        self.inner.registry.for_each(|e| {
            v.push(AgentSummary {
                id: e.id(),
                name: e.name().to_string(),
                state: e.state(),
            })
        });
        v
    }

    /// Agents per state.
    pub fn counts(&self) -> StateCounts {
        self.inner.registry.counts()
    }

    /// Registered agents.
    pub fn agent_count(&self) -> usize {
        self.inner.registry.len()
    }

    /// Queue and task counts.
    pub fn scheduler_counts(&self) -> CoreCounts {
        self.inner.scheduler.counts()
    }

    /// Capacity and allocation.
    pub fn resources(&self) -> PoolUsage {
        self.inner.scheduler.pool_usage()
    }

    /// Changes the capacity at run time; if the running work no longer fits, the
    /// lowest-priority tasks are suspended (`resource_pressure`) until it does. Returns how
    /// many were suspended.
    pub fn set_capacity(&self, capacity: Amount) -> usize {
        self.inner.scheduler.set_capacity(capacity)
    }

    /// Metrics.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// The live metrics (for exporters that read histograms directly).
    pub fn metrics_handle(&self) -> &Arc<RuntimeMetrics> {
        &self.inner.metrics
    }

    /// Retry policies and circuit breakers (for the action gateway).
    pub fn errors(&self) -> &Arc<ErrorHandler> {
        &self.inner.errors
    }

    /// The event sink the runtime publishes to.
    pub fn sink(&self) -> &Arc<dyn EventSink> {
        self.inner.lifecycle.sink()
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Whether new agents and tasks are accepted.
    pub fn is_accepting(&self) -> bool {
        self.inner.scheduler.accepting()
    }

    /// Graceful shutdown: stop accepting work, cancel what has not started, let running
    /// and suspended tasks finish for up to `grace`, cancel the rest, move every Ready agent
    /// to Terminated (`shutdown`), and stop the worker shards. Suspended and Failed agents
    /// keep their state: it records why an operator must look at them.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let t0 = Instant::now();
        let s = &self.inner.scheduler;
        let queued_cancelled = s.close();
        let drained = s.wait_idle(t0 + grace).await;
        let mut running_cancelled = 0;
        if !drained {
            running_cancelled = s.cancel_all("runtime shutdown: grace period over");
            s.wait_idle(Instant::now() + Duration::from_secs(5)).await;
        }
        let mut ready = Vec::new();
        self.inner.registry.for_each(|e| {
            if e.state() == AgentState::Ready {
                ready.push(e.clone());
            }
        });
        let mut agents_terminated = 0;
        for e in ready {
            let r = self
                .inner
                .lifecycle
                .transition_from(
                    &e,
                    AgentState::Ready,
                    AgentState::Terminated,
                    TransitionCause::Shutdown,
                    None,
                )
                .await;
            agents_terminated += r.is_ok() as usize;
        }
        s.stop_shards().await;
        ShutdownReport {
            queued_cancelled,
            drained,
            running_cancelled,
            agents_terminated,
            elapsed_ms: t0.elapsed().as_millis() as u64,
        }
    }
}

/// Convenience: options for tests and benchmarks.
impl RuntimeOptions {
    /// Sets the agent limit.
    pub fn max_agents(mut self, n: usize) -> Self {
        self.max_agents = n;
        self
    }

    /// Sets the number of shards.
    pub fn shards(mut self, n: usize) -> Self {
        self.scheduler.shards = n;
        self
    }

    /// Sets the placement strategy.
    pub fn strategy(mut self, s: AllocationStrategy) -> Self {
        self.scheduler.strategy = s;
        self
    }

    /// Sets the admission policy.
    pub fn admission(mut self, a: AdmissionPolicy) -> Self {
        self.scheduler.admission = a;
        self
    }

    /// Sets the aging step.
    pub fn aging_step(mut self, d: Duration) -> Self {
        self.scheduler.aging_step = d;
        self
    }

    /// Sets the capacity.
    pub fn capacity(mut self, c: Amount) -> Self {
        self.capacity = c;
        self
    }

    /// Sets the error handling.
    pub fn errors(mut self, e: ErrorHandlerConfig) -> Self {
        self.errors = e;
        self
    }
}
