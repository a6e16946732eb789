//! Diagnostics (GRAMMAR §6): one type for lexical (L…), syntax (P…), check (E…, W…) and
//! note (N…) findings, with the two output forms of §6.1.
//!
//! * [`Diagnostic`] — severity, code, message, primary span (+ optional caret text),
//!   secondary labels, optional help line. Spans are byte offsets into one file.
//! * [`SourceFile`] — a file's name, text and line index; it turns spans into
//!   `line:column` and renders diagnostics.
//! * [`SourceFile::render`] — the human form, by hand so that the first line is exactly
//!   `path:line:col: severity: message [CODE]` (the crates that draw snippets put their
//!   own header first, which §6.1 does not allow);
//!   [`SourceFile::to_json_line`] — one JSON Lines object.
//!
//! ```
//! use symbi_dsl::diagnostic::{Diagnostic, SourceFile};
//! use symbi_dsl::span::Span;
//! let file = SourceFile::new("probe.symbi", "let r = 1\n");
//! let d = Diagnostic::error("P002", "expected `;` after the `let` statement", Span::point(9))
//!     .with_primary_label("add `;` here")
//!     .with_help("statements other than if/for/while/match/try end with a semicolon");
//! let text = file.render(&d);
//! assert!(text.starts_with("probe.symbi:1:10: error: expected `;` after the `let` statement [P002]\n"));
//! ```

use crate::span::{LineIndex, Span};
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// How serious a diagnostic is. Only errors make a file invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is invalid.
    Error,
    /// The file stays valid.
    Warning,
    /// Information (e.g. N301 unknown type treated as Any).
    Note,
}

impl Severity {
    /// `"error"`, `"warning"` or `"note"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A secondary label: another place in the same file, with a short text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What it says there (lower-case, no trailing period).
    pub message: String,
}

/// One finding about a source file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// error, warning or note.
    pub severity: Severity,
    /// The stable code of GRAMMAR §6.2 (`"P002"`, `"E101"`, `"W201"`, …).
    pub code: &'static str,
    /// One line, lower-case start, no trailing period, no code in it.
    pub message: String,
    /// The primary position (empty span = a point, e.g. a missing token).
    pub span: Span,
    /// Optional text next to the primary caret (`add `;` here`).
    pub primary_label: Option<String>,
    /// Secondary labels (`unclosed `{` opened here`).
    pub labels: Vec<Label>,
    /// Optional `help:` line.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with the given severity.
    pub fn new(
        severity: Severity,
        code: &'static str,
        message: impl Into<String>,
        span: Span,
    ) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            span,
            primary_label: None,
            labels: Vec::new(),
            help: None,
        }
    }

    /// An error.
    pub fn error(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Error, code, message, span)
    }

    /// A warning.
    pub fn warning(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Warning, code, message, span)
    }

    /// A note.
    pub fn note(code: &'static str, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Note, code, message, span)
    }

    /// Sets the text shown next to the primary caret.
    pub fn with_primary_label(mut self, text: impl Into<String>) -> Self {
        self.primary_label = Some(text.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: text.into(),
        });
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A named source text with its line index: the "source map" of one file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    name: Arc<str>,
    text: Arc<str>,
    lines: LineIndex,
}

/// A resolved position, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Line, from 1.
    pub line: u32,
    /// Column in Unicode scalar values, from 1.
    pub column: u32,
}

impl SourceFile {
    /// A file named `name` (as it should appear in diagnostics) with `text`.
    pub fn new(name: impl Into<Arc<str>>, text: impl Into<Arc<str>>) -> SourceFile {
        let text = text.into();
        let lines = LineIndex::new(&text);
        SourceFile {
            name: name.into(),
            text,
            lines,
        }
    }

    /// The file name shown in diagnostics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The shared text (cheap clone).
    pub fn text_arc(&self) -> Arc<str> {
        self.text.clone()
    }

    /// The line index.
    pub fn lines(&self) -> &LineIndex {
        &self.lines
    }

    /// Line and column of a byte offset.
    pub fn position(&self, offset: u32) -> Position {
        let (line, column) = self.lines.line_col(&self.text, offset);
        Position { line, column }
    }

    /// `"name:line:col"` of a byte offset (the `location` of run-time errors, GRAMMAR 4.9).
    pub fn location(&self, offset: u32) -> String {
        let p = self.position(offset);
        format!("{}:{}:{}", self.name, p.line, p.column)
    }

    /// The human-readable form of GRAMMAR §6.1, ending with a newline.
    pub fn render(&self, d: &Diagnostic) -> String {
        let mut out = String::new();
        let p = self.position(d.span.start);
        let _ = writeln!(
            out,
            "{}:{}:{}: {}: {} [{}]",
            self.name, p.line, p.column, d.severity, d.message, d.code
        );
        // Snippet lines: the primary caret and each secondary label, in line order.
        let mut marks: Vec<(usize, Span, char, Option<&str>)> =
            Vec::with_capacity(1 + d.labels.len());
        marks.push((
            self.lines.line_of(d.span.start),
            d.span,
            '^',
            d.primary_label.as_deref(),
        ));
        for l in &d.labels {
            marks.push((
                self.lines.line_of(l.span.start),
                l.span,
                '-',
                Some(l.message.as_str()),
            ));
        }
        marks.sort_by_key(|m| (m.0, m.1.start));
        let width = marks.iter().map(|m| digits(m.0 + 1)).max().unwrap_or(1);
        let _ = writeln!(out, "{:w$} |", "", w = width);
        let mut last_line = None;
        for (line, span, ch, text) in marks {
            let range = self.lines.line_range(&self.text, line);
            let src_line = &self.text[range.clone()];
            if last_line.is_some_and(|prev| line > prev + 1) {
                let _ = writeln!(out, "{:w$} ...", "", w = width);
            }
            if last_line != Some(line) {
                let _ = writeln!(out, "{:>w$} | {}", line + 1, src_line, w = width);
            }
            last_line = Some(line);
            // Pad with the line's own tabs so the caret lines up whatever the tab width.
            let start = (span.start as usize).clamp(range.start, range.end);
            let start = floor_boundary(&self.text, start);
            let mut pad = String::new();
            for c in self.text[range.start..start].chars() {
                pad.push(if c == '\t' { '\t' } else { ' ' });
            }
            let end = (span.end as usize).clamp(start, range.end);
            let end = floor_boundary(&self.text, end);
            let n = self.text[start..end].chars().count().max(1);
            let marker: String = std::iter::repeat_n(ch, n).collect();
            match text {
                Some(t) if !t.is_empty() => {
                    let _ = writeln!(out, "{:w$} | {}{} {}", "", pad, marker, t, w = width);
                }
                _ => {
                    let _ = writeln!(out, "{:w$} | {}{}", "", pad, marker, w = width);
                }
            }
        }
        if let Some(h) = &d.help {
            let _ = writeln!(out, "help: {h}");
        }
        out
    }

    /// The JSON object of GRAMMAR §6.1 (`--format json`), as a value.
    pub fn to_json(&self, d: &Diagnostic) -> serde_json::Value {
        let p = self.position(d.span.start);
        let e = self.position(d.span.end);
        let labels: Vec<serde_json::Value> = d
            .labels
            .iter()
            .map(|l| {
                let s = self.position(l.span.start);
                let e = self.position(l.span.end);
                serde_json::json!({
                    "line": s.line, "column": s.column,
                    "end_line": e.line, "end_column": e.column,
                    "message": l.message,
                })
            })
            .collect();
        serde_json::json!({
            "severity": d.severity.as_str(),
            "code": d.code,
            "message": d.message,
            "file": &*self.name,
            "line": p.line,
            "column": p.column,
            "end_line": e.line,
            "end_column": e.column,
            "labels": labels,
            "help": d.help,
        })
    }

    /// One JSON Lines record (no trailing newline).
    pub fn to_json_line(&self, d: &Diagnostic) -> String {
        self.to_json(d).to_string()
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Counts the errors in a list of diagnostics.
pub fn error_count(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exact_grammar_example() {
        let src = "\n".repeat(11) + "        let r = http.get(url)\n        x;\n";
        let file = SourceFile::new("probe.symbi", src.as_str());
        let off = src.find("url)").unwrap() as u32 + 4;
        let d = Diagnostic::error(
            "P002",
            "expected `;` after the `let` statement",
            Span::point(off),
        )
        .with_primary_label("add `;` here")
        .with_help("statements other than if/for/while/match/try end with a semicolon");
        let expected = "probe.symbi:12:30: error: expected `;` after the `let` statement [P002]\n   |\n12 |         let r = http.get(url)\n   |                              ^ add `;` here\nhelp: statements other than if/for/while/match/try end with a semicolon\n";
        assert_eq!(file.render(&d), expected);
    }

    #[test]
    fn secondary_labels_and_json() {
        let src = "agent a {\n  with {\n";
        let file = SourceFile::new("a.symbi", src);
        let d = Diagnostic::error("P003", "unclosed `{`", Span::point(src.len() as u32))
            .with_label(Span::new(8, 9), "unclosed `{` opened here");
        let text = file.render(&d);
        assert!(
            text.starts_with("a.symbi:3:1: error: unclosed `{` [P003]\n"),
            "{text}"
        );
        assert!(
            text.contains("1 | agent a {\n  |         - unclosed `{` opened here\n"),
            "{text}"
        );
        let j = file.to_json(&d);
        assert_eq!(j["line"], 3);
        assert_eq!(j["column"], 1);
        assert_eq!(j["labels"][0]["line"], 1);
        assert_eq!(j["labels"][0]["column"], 9);
        assert_eq!(j["severity"], "error");
        assert!(j["help"].is_null());
    }

    #[test]
    fn tabs_are_copied_into_the_caret_padding() {
        let src = "\tx y";
        let file = SourceFile::new("t", src);
        let d = Diagnostic::warning("W201", "m", Span::new(3, 4));
        assert!(file.render(&d).contains("1 | \tx y\n  | \t  ^\n"));
    }
}
