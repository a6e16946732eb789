//! Errors of the model provider.

use std::time::Duration;
use symbi_types::error::{Classify, ErrorClass};

/// A model-provider failure.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No provider is configured, or the configuration is unusable.
    #[error("model provider: {0}")]
    Config(String),
    /// The server answered with an error status (`{"error": {...}}` body when it sent one).
    #[error("model provider returned HTTP {status}{}: {message}", kind.as_deref().map(|k| format!(" ({k})")).unwrap_or_default())]
    Api {
        /// HTTP status (200 for an error event inside a stream).
        status: u16,
        /// The error `type` (or `code`) the server gave.
        kind: Option<String>,
        /// The server's message.
        message: String,
    },
    /// No answer within the configured timeout.
    #[error("model provider did not answer within {0:?}")]
    Timeout(Duration),
    /// Connection-level failure.
    #[error("model provider unreachable: {0}")]
    Transport(String),
    /// The answer was not the expected JSON.
    #[error("model provider answer malformed: {0}")]
    Decode(String),
    /// Every retry failed; `last` is the final failure.
    #[error("model provider failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<LlmError>,
    },
    /// A tool called by the model (in `reason`) failed in a way that stops the loop.
    #[error("tool `{tool}` failed: {message}")]
    Tool {
        /// Tool name.
        tool: String,
        /// What went wrong.
        message: String,
    },
    /// A builtin was called with bad arguments (`debate` with 50 rounds, …).
    #[error("{0}")]
    InvalidArgument(String),
}

impl LlmError {
    /// Whether a retry may help: timeouts, connection failures, 408, 409, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Timeout(_) | LlmError::Transport(_) => true,
            LlmError::Api { status, .. } => {
                matches!(status, 408 | 409 | 429) || (500..600).contains(status)
            }
            LlmError::RetriesExhausted { last, .. } => last.is_transient(),
            _ => false,
        }
    }
}

impl Classify for LlmError {
    fn class(&self) -> ErrorClass {
        if self.is_transient() {
            ErrorClass::Transient
        } else {
            ErrorClass::Permanent
        }
    }
}
