//! The symbi runtime: agent registry, lifecycle controller, scheduler, resource manager,
//! error handler and the action gateway.
//!
//! * [`registry`] — every agent as a small record in a sharded map (100,000+ agents).
//! * [`lifecycle`] — the SPEC §3 state machine; every transition is an `agent_state` event,
//!   recorded by the [`EventSink`](symbi_types::EventSink) before it becomes visible.
//! * [`scheduler`] — priority queue with aging and preemption, worker shards (one thread
//!   each, able to run `!Send` futures), placement strategies first-fit / best-fit /
//!   priority.
//! * [`resources`] — capacity, per-agent reservations, admission and pressure.
//! * [`errors`] — failure classes, retries with backoff and jitter, circuit breakers.
//! * [`runtime`] — the [`Runtime`] handle that assembles them from the configuration.
//! * [`metrics`] — counters and latency histograms.
//! * [`gateway`] — the action gateway's conditions (approval holds, rate limits,
//!   sanitization).
//!
//! Decisions and their reasons are in `docs/runtime.md`.

pub mod engine;
pub mod errors;
pub mod gateway;
pub mod lifecycle;
pub mod metrics;
pub mod registry;
pub mod resources;
pub mod runtime;
pub mod scheduler;
pub mod spec;

pub use errors::{CircuitBreaker, ErrorHandler, PanicAction, RetryPolicy, TaskError};
pub use lifecycle::{Lifecycle, LifecycleError};
pub use metrics::{MetricsSnapshot, RuntimeMetrics};
pub use registry::{AgentEntry, Registry, StateCounts};
pub use resources::{Amount, ResourceError, ResourcePool};
pub use runtime::{
    AgentStatus, AgentSummary, ResourceUsage, Runtime, RuntimeError, RuntimeOptions,
    ShutdownReport, SuspendReason,
};
pub use scheduler::task::{TaskContext, TaskHandle, TaskId, TaskOutcome, TaskResult, TaskSpec};
pub use spec::{AgentSpec, Persistence, Priority, ProgramSlot, Validation};
