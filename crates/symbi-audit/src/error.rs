//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong opening, writing or reading the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// File-system failure on a named file.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The log on disk is damaged in a way that is not a torn tail (which is repaired
    /// automatically). Nothing is cut: run `symbi audit verify` for the diagnosis.
    #[error("audit log is corrupt: {0} (run `symbi audit verify` for a full diagnosis)")]
    Corrupt(String),
    /// Key files missing, unreadable or not matching the log.
    #[error("audit key: {0}")]
    Key(String),
    /// Another process holds the log open for writing.
    #[error(
        "audit log {0} is already open for writing by another process (is `symbi up` running?)"
    )]
    Locked(PathBuf),
    /// A cryptographic operation failed.
    #[error("crypto: {0}")]
    Crypto(#[from] symbi_crypto::CryptoError),
    /// The log writer stopped after a failure; no event can be made durable.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    /// A request that cannot be served (unknown event, no checkpoint, bad sizes...).
    #[error("{0}")]
    Invalid(String),
    /// A proof or checkpoint did not verify.
    #[error("verification failed: {0}")]
    Verification(String),
}

impl AuditError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// Result alias.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;
