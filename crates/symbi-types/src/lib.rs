//! The shared vocabulary of symbi.
//!
//! Every other crate depends on this one and on nothing sideways: when two subsystems must
//! meet (the bus asks the policy engine, the interpreter's actions reach the audit log), the
//! trait they meet through lives here and the runtime connects the concrete pieces.
//!
//! * [`ids`] — `AgentId`, `ExecutionId`, `EventId` (UUIDs).
//! * [`state`] — the six agent states and the one transition table of SPEC §3.
//! * [`action`] — action categories (one vocabulary for DSL policies, Cedar and audit),
//!   principals, subjects and the [`PolicyRequest`](action::PolicyRequest).
//! * [`decision`] — `Decision`, its conditions and the sandbox tiers.
//! * [`policy`] — the [`PolicyDecisionPoint`](policy::PolicyDecisionPoint) trait.
//! * [`event`] — audit event drafts and the [`EventSink`](event::EventSink) trait.
//! * [`resources`] — resource budgets shared by the runtime, the interpreter and sandboxes.
//! * [`units`] — byte sizes and durations in their human spellings (`1GB`, `300s`).
//! * [`error`] — the error classes the error handler acts on.

pub mod action;
pub mod decision;
pub mod error;
pub mod event;
pub mod ids;
pub mod policy;
pub mod resources;
pub mod state;
pub mod units;

pub use action::{ActionCategory, PolicyRequest, Principal, Subject, SubjectKind};
pub use decision::{Condition, Decision, SandboxTier};
pub use error::ErrorClass;
pub use event::{EventDraft, EventReceipt, EventSink, MemoryEventLog, SinkError};
pub use ids::{AgentId, EventId, ExecutionId};
pub use policy::{AgentRuleSet, PolicyDecisionPoint, RuleOutcome};
pub use resources::ResourceBudget;
pub use state::{AgentState, InvalidTransition};
pub use units::{ByteSize, HumanDuration};
