//! How an action fails. Each variant maps to one error kind of GRAMMAR.md §4.9.

use serde_json::Value;
use std::time::Duration;

/// An action's failure, as the interpreter will raise it.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ActionError {
    /// Denied by policy (`PolicyDenied`); the message carries the reason.
    #[error("{reason}")]
    PolicyDenied {
        /// The decision's reason.
        reason: String,
    },
    /// A required approval was refused or expired (`ApprovalDenied`).
    #[error("{reason}")]
    ApprovalDenied {
        /// Why.
        reason: String,
    },
    /// Nothing resolves this name (`UnknownAction`).
    #[error("no tool, agent or service is named `{name}`")]
    UnknownAction {
        /// The callee.
        name: String,
    },
    /// The tool, service or agent reported failure (`ActionFailed`, or a tool-supplied kind).
    #[error("{message}")]
    Failed {
        /// A tool-supplied kind (`APIError`), if any.
        kind: Option<String>,
        /// Message.
        message: String,
        /// Details.
        details: Option<Value>,
    },
    /// The action exceeded its own limit (`ActionTimeout`).
    #[error("action timed out after {0:?}")]
    Timeout(Duration),
    /// The demanded sandbox tier is not available (`SandboxUnavailable`).
    #[error("{0}")]
    SandboxUnavailable(String),
    /// The component that implements this action is not available in this runtime.
    #[error("`{action}` needs the {component} component, which is not available: {hint}")]
    ComponentMissing {
        /// The action.
        action: String,
        /// The component.
        component: String,
        /// What to configure or install.
        hint: String,
    },
    /// The audit trail could not record the action; it did not proceed (fail closed). Not
    /// catchable by agent code.
    #[error("audit trail unavailable, action not performed: {0}")]
    AuditUnavailable(String),
}

impl ActionError {
    /// The §4.9 error kind this failure raises.
    pub fn kind(&self) -> &str {
        match self {
            Self::PolicyDenied { .. } => "PolicyDenied",
            Self::ApprovalDenied { .. } => "ApprovalDenied",
            Self::UnknownAction { .. } => "UnknownAction",
            Self::Failed { .. } | Self::ComponentMissing { .. } => "ActionFailed",
            Self::Timeout(_) => "ActionTimeout",
            Self::SandboxUnavailable(_) => "SandboxUnavailable",
            Self::AuditUnavailable(_) => "InternalFault",
        }
    }

    /// A generic failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            kind: None,
            message: message.into(),
            details: None,
        }
    }
}
