//! How schedules, webhooks and the HTTP handlers start agent executions.
//!
//! [`AgentInvoker`] is the one seam between the API crate's triggers and the runtime's
//! engine: `symbi up` passes the engine (through [`crate::EngineInvoker`]); the triggers
//! never build executions themselves.

use futures::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

/// One execution to start.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The agent, by name.
    pub agent: String,
    /// JSON input bound to its parameters (GRAMMAR §4.7).
    pub input: Value,
    /// What `trigger()` returns inside the execution.
    pub trigger: Value,
    /// Who started it (a principal name for policy guards), if anyone.
    pub initiator: Option<String>,
    /// A top-level policy of the program applied in addition (schedules' `policy`).
    pub schedule_policy: Option<String>,
}

/// Why an execution failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RunFailure {
    /// The DSL error kind (`Timeout`, `PolicyDenied`, `InputError`, …) or a runtime kind.
    pub kind: String,
    /// Message.
    pub message: String,
}

impl RunFailure {
    /// A failure of the given kind.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// Whether a time budget ran out.
    pub fn is_timeout(&self) -> bool {
        self.kind == "Timeout"
    }
}

/// A started execution.
pub struct Started {
    /// Its id.
    pub execution_id: Uuid,
    /// Resolves when it ends.
    pub completion: BoxFuture<'static, Result<Value, RunFailure>>,
}

/// Starts executions of named agents.
#[async_trait::async_trait]
pub trait AgentInvoker: Send + Sync + 'static {
    /// Whether an agent with this name is loaded.
    fn agent_exists(&self, name: &str) -> bool;
    /// Starts an execution; fails at once when it cannot start (unknown agent, shutting
    /// down, admission refused).
    async fn invoke(&self, inv: Invocation) -> Result<Started, RunFailure>;
}
