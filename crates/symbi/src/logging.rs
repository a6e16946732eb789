//! Logging: JSON lines (ELK-friendly) when stderr is not a terminal or when asked,
//! pretty otherwise. The level comes from `[log] level` / `SYMBI_LOG_LEVEL`.

use std::io::IsTerminal;
use symbi_config::sections::log::{LogFormat, LogSection};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call once per process.
pub fn init(log: &LogSection, default_level: &str) {
    let level = if log.level.is_empty() { default_level } else { log.level.as_str() };
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
