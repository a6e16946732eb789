//! The action gateway: the one door every agent action goes through —
//! resolve → decide (policy) → satisfy conditions (approval, rate limit, sanitization, …)
//! → execute in the right place → record (audit).
//!
//! Ordering guarantees: the decision is recorded (durably, when the sink is the audit log)
//! **before** anything executes, and the outcome is recorded before the result returns to
//! the agent; if either record fails the action does not proceed / its result is withheld
//! and the execution stops (`AuditUnavailable`), so nothing happens unrecorded.

pub mod approvals;
pub mod command_tools;
pub mod context_executors;
mod core;
pub mod error;
pub mod http;
pub mod local;
pub mod mcp_tools;
pub mod rate_limit;
pub mod request;
pub mod sanitize;
pub mod services;

pub use self::core::{
    ActionOutput, AgentDirectory, Call, ExecOptions, Executor, Gateway, GatewayBuilder,
    ToolDescriptor, ToolProvider, digest, pack_tool_input,
};
pub use error::ActionError;
pub use request::{
    ActionRequest, Arg, AuditDetail, BlockEnv, ExecutionScope, NetworkPolicy, Privacy,
    SecurityLevel,
};
pub use services::Component;
