//! The crate's error type and its mapping onto the DSL's error kinds (GRAMMAR.md §4.9).

use std::path::PathBuf;
use std::time::Duration;
use symbi_types::SandboxTier;
use symbi_types::error::{Classify, ErrorClass};

/// A resource limit a sandboxed call ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// The memory cgroup limit (the kernel's or gVisor's OOM killer ended the call).
    Memory,
    /// The process-count limit.
    Pids,
}

impl LimitKind {
    /// The kind reported to the DSL inside `ActionFailed` (`details.reported_kind`).
    pub fn reported_kind(self) -> &'static str {
        match self {
            Self::Memory => "MemoryLimitExceeded",
            Self::Pids => "PidsLimitExceeded",
        }
    }
}

/// Errors of the sandbox orchestrator.
///
/// [`SandboxError::dsl_kind`] gives the DSL error kind each variant raises in an agent;
/// [`SandboxError::reported_kind`] the tool- or sandbox-supplied kind carried by
/// `ActionFailed`.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The demanded tier cannot run on this host (no daemon, runtime not registered,
    /// image missing or not matching its record, Tier3). Never falls back to a weaker tier.
    #[error("sandbox tier {tier} is unavailable: {reason}; fix: {fix}")]
    Unavailable {
        /// The tier that was demanded.
        tier: SandboxTier,
        /// What is wrong.
        reason: String,
        /// What to run or install.
        fix: String,
    },
    /// The call ran past its wall-clock limit and was killed.
    #[error("tool `{tool}` exceeded its time limit of {}ms and was killed", limit.as_millis())]
    Timeout {
        /// Tool name.
        tool: String,
        /// The limit that applied.
        limit: Duration,
    },
    /// The call hit a resource limit (memory, process count) and was stopped.
    #[error("tool `{tool}` exceeded its {} limit ({detail})", match limit { LimitKind::Memory => "memory", LimitKind::Pids => "process-count" })]
    LimitExceeded {
        /// Tool name.
        tool: String,
        /// Which limit.
        limit: LimitKind,
        /// The limit's value and what happened.
        detail: String,
    },
    /// The tool ran and reported failure: a non-zero exit status, or output that does not
    /// match its declared format. `kind` is the tool's own error kind when it printed a JSON
    /// error object (`{"error": {"kind": "…", "message": "…"}}`).
    #[error("tool `{tool}` failed{}: {message}", exit_code.map(|c| format!(" (exit status {c})")).unwrap_or_default())]
    ToolFailed {
        /// Tool name.
        tool: String,
        /// Exit status, when the process exited.
        exit_code: Option<i64>,
        /// Tool-supplied error kind, if any.
        kind: Option<String>,
        /// Human-readable message (the tool's, or the tail of its stderr).
        message: String,
    },
    /// The input does not satisfy the tool's schema or the template's argument rules.
    #[error("invalid input for tool `{tool}`: {}", problems.join("; "))]
    InvalidInput {
        /// Tool name.
        tool: String,
        /// Each problem, with its JSON pointer.
        problems: Vec<String>,
    },
    /// No tool of that name is registered.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// A manifest could not be loaded (file:line:column).
    #[error("{0}")]
    Manifest(#[from] crate::manifest::ManifestErrors),
    /// Building or recording a sandbox image failed.
    #[error("image {image}: {message}")]
    Image {
        /// Image name (`busybox`, `debian`).
        image: String,
        /// What went wrong.
        message: String,
    },
    /// A call to the container engine failed unexpectedly (not an unavailable tier).
    #[error("container engine error: {0}")]
    Engine(String),
    /// File-system error with the path concerned.
    #[error("{}: {source}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

impl SandboxError {
    /// The DSL error kind an agent sees (GRAMMAR.md §4.9): `SandboxUnavailable`,
    /// `ActionTimeout` or `ActionFailed`.
    pub fn dsl_kind(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "SandboxUnavailable",
            Self::Timeout { .. } => "ActionTimeout",
            Self::UnknownTool(_) => "UnknownAction",
            _ => "ActionFailed",
        }
    }

    /// The kind carried inside `ActionFailed`: the tool's own (`APIError`), or the
    /// sandbox's (`MemoryLimitExceeded`, `PidsLimitExceeded`, `InvalidInput`,
    /// `InvalidToolOutput`). The runtime applies GRAMMAR.md's rule that a reported kind
    /// naming a language kind (`PolicyDenied`, `Timeout`, …) stays `ActionFailed` with the
    /// kind kept in `details.reported_kind`.
    pub fn reported_kind(&self) -> Option<&str> {
        match self {
            Self::ToolFailed { kind, .. } => kind.as_deref(),
            Self::LimitExceeded { limit, .. } => Some(limit.reported_kind()),
            Self::InvalidInput { .. } => Some("InvalidInput"),
            _ => None,
        }
    }

    /// Structured details for the audit record and the DSL error's `details` map:
    /// `{"reported_kind", "exit_code", "tier", "fix", "limit", "problems"}` as applicable.
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Unavailable { tier, reason, fix } => {
                json!({"tier": tier.as_str(), "reason": reason, "fix": fix})
            }
            Self::Timeout { tool, limit } => {
                json!({"tool": tool, "limit_ms": limit.as_millis() as u64})
            }
            Self::LimitExceeded {
                tool,
                limit,
                detail,
            } => {
                json!({"tool": tool, "reported_kind": limit.reported_kind(), "detail": detail})
            }
            Self::ToolFailed {
                tool,
                exit_code,
                kind,
                ..
            } => json!({"tool": tool, "exit_code": exit_code, "reported_kind": kind}),
            Self::InvalidInput { tool, problems } => {
                json!({"tool": tool, "reported_kind": "InvalidInput", "problems": problems})
            }
            other => json!({"message": other.to_string()}),
        }
    }

    pub(crate) fn unavailable(
        tier: SandboxTier,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::Unavailable {
            tier,
            reason: reason.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

impl Classify for SandboxError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable { .. } | Self::Engine(_) | Self::Io { .. } => ErrorClass::Transient,
            Self::Timeout { .. } | Self::LimitExceeded { .. } => ErrorClass::Resource,
            _ => ErrorClass::Permanent,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = SandboxError> = std::result::Result<T, E>;
