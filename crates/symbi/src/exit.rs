//! Exit codes: 0 success, 1 the operation failed or found problems, 2 usage or
//! configuration error.

use std::fmt;
use std::process::ExitCode;

/// A usage or configuration error (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// The operation found problems that were already printed (exit code 1, no extra output).
#[derive(Debug)]
pub struct AlreadyReported;

impl fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for AlreadyReported {}

/// Prints an error and maps it to its exit code.
pub fn report(e: &anyhow::Error) -> ExitCode {
    if e.downcast_ref::<AlreadyReported>().is_some() {
        return ExitCode::from(1);
    }
    let code = if e.downcast_ref::<UsageError>().is_some()
        || e.downcast_ref::<symbi_config::ConfigError>().is_some()
    {
        2
    } else {
        1
    };
    // Configuration errors already carry `file:line:col: error:`.
    if e.downcast_ref::<symbi_config::ConfigError>().is_some() {
        eprintln!("{e}");
    } else {
        eprintln!("error: {e:#}");
    }
    ExitCode::from(code)
}
