//! Errors of the context subsystem.

use std::path::Path;
use symbi_types::error::{Classify, ErrorClass};

/// A context, knowledge, vector-store or RAG failure.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The policy engine denied the operation (the message carries its reasons).
    #[error("policy denied {action}: {reason}")]
    PolicyDenied {
        /// The action category word (`knowledge_read`, …).
        action: String,
        /// The decision's reasons.
        reason: String,
    },
    /// The audit sink could not record the decision, so the operation did not run.
    #[error("audit: {0}")]
    Audit(String),
    /// A file or directory could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// The vector database failed.
    #[error("vector store: {0}")]
    Vector(String),
    /// An embedder failed.
    #[error("embedder: {0}")]
    Embedding(String),
    /// The model provider failed.
    #[error(transparent)]
    Llm(#[from] symbi_llm::LlmError),
    /// Something named does not exist (a memory store, a collection).
    #[error("not found: {0}")]
    NotFound(String),
    /// Bad input (with the position, for documents: `file:line:column: message`).
    #[error("{0}")]
    InvalidArgument(String),
    /// The configuration asks for something this build or host cannot provide.
    #[error("{0}")]
    Unavailable(String),
    /// Stored data is damaged.
    #[error("{path}: corrupt: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ContextError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        ContextError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

impl Classify for ContextError {
    fn class(&self) -> ErrorClass {
        match self {
            ContextError::PolicyDenied { .. } => ErrorClass::Policy,
            ContextError::Llm(e) => e.class(),
            ContextError::Vector(_) | ContextError::Audit(_) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}
