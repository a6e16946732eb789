//! Failure classes. Every crate has its own error enum; at the runtime's edge each error is
//! classified so the error handler knows whether to retry, suspend or fail.

use serde::{Deserialize, Serialize};

/// How the error handler treats a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// May succeed if retried (timeouts, connection resets, busy).
    Transient,
    /// Will fail again (bad input, program errors).
    Permanent,
    /// Denied by policy; never retried.
    Policy,
    /// Out of a budget or capacity; may succeed once resources free up.
    Resource,
    /// A bug: a task panicked. The agent fails, the runtime carries on.
    Panic,
}

impl ErrorClass {
    /// Whether a retry can help.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::Resource)
    }
}

/// Implemented by error types that know their class.
pub trait Classify {
    /// The class of this error.
    fn class(&self) -> ErrorClass;
}
