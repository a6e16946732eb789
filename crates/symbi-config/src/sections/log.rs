//! `[log]`: logging and tracing.

use serde::{Deserialize, Serialize};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal, pretty otherwise.
    #[default]
    Auto,
    /// JSON lines (ELK-friendly).
    Json,
    /// Human-readable.
    Pretty,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `error`, `warn`, `info` (default), `debug`, `trace`, or a tracing filter
    /// (`SYMBI_LOG_LEVEL`).
    pub level: String,
    /// Output format.
    pub format: LogFormat,
    /// OTLP endpoint for traces (e.g. `http://127.0.0.1:4317`); unset: no export.
    pub otlp_endpoint: Option<String>,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Auto,
            otlp_endpoint: None,
        }
    }
}
