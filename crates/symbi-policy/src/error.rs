//! Errors and positioned diagnostics of the policy crate.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy set is rejected.
    Error,
    /// Accepted, but probably not what was meant (an impossible policy, an unknown
    /// requirement annotation that becomes an opaque condition).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A problem found in a policy file, with its position (1-based line and column, the
/// column counted in characters).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file as it was named when loading (directory joined with the relative path, or
    /// the name given to [`crate::PolicySource`]).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong (and, where Cedar says it, how to fix it).
    pub message: String,
    /// The source line the position points into, for caret rendering.
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// An error at the given byte offset of `text`.
    pub(crate) fn at(
        file: &str,
        text: &str,
        offset: usize,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = line_col(text, offset);
        Self {
            file: file.to_string(),
            line,
            column,
            severity,
            message: message.into(),
            source_line: text.lines().nth(line - 1).map(str::to_string),
        }
    }

    /// The `file:line:column: severity: message` line followed by the source line and a
    /// caret under the column (SPEC §11 diagnostic format).
    pub fn render(&self) -> String {
        let mut out = self.to_string();
        if let Some(src) = &self.source_line {
            let caret_pad: String = src
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("\n    {src}\n    {caret_pad}^"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, self.severity, self.message
        )
    }
}

/// 1-based line and character column of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..at].chars().count() + 1)
}

/// Errors of the policy crate.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy files do not parse or do not validate against the schema. Every problem
    /// is listed with its position; the previous policy set (if any) stays active.
    #[error("{}", render_all(.0))]
    Invalid(Vec<Diagnostic>),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The policy directory does not exist.
    #[error(
        "policy directory {0} does not exist (create it, or let `symbi up` seed it with the shipped defaults)"
    )]
    MissingDirectory(PathBuf),
    /// The built-in schema (policies/symbi.cedarschema) failed to load — a build defect.
    #[error("the built-in Cedar schema is invalid: {0}")]
    Schema(String),
    /// The directory watcher could not be started.
    #[error("cannot watch policy directory {path}: {source}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: notify::Error,
    },
    /// The operation needs a policy directory, and this engine was built from texts.
    #[error("this policy engine was not loaded from a directory")]
    NoDirectory,
    /// A policy file name given to an API update is not a plain relative `*.cedar` path.
    #[error(
        "invalid policy file name {0:?}: expected a relative path ending in .cedar, without `..`"
    )]
    InvalidFileName(String),
    /// A test table (for `symbi policy test`) is malformed.
    #[error("{0}")]
    TestTable(String),
}

impl PolicyError {
    /// The positioned diagnostics, when the error is [`PolicyError::Invalid`].
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Invalid(d) => d,
            _ => &[],
        }
    }
}

fn render_all(diags: &[Diagnostic]) -> String {
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    if errors.is_empty() {
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        errors.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "ab\nçd\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        // 'd' is after a two-byte character.
        assert_eq!(line_col(text, 5), (2, 2));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn render_has_caret() {
        let d = Diagnostic::at("f.cedar", "permit(\n  oops\n);", 10, Severity::Error, "bad");
        assert_eq!(d.to_string(), "f.cedar:2:3: error: bad");
        assert!(
            d.render().ends_with("      oops\n      ^"),
            "{}",
            d.render()
        );
    }
}
