//! The symbi DSL: lexer, parser, diagnostics, formatter, static checker and metered interpreter
//!
//! GRAMMAR.md (`shared/dsl/GRAMMAR.md`) is the reference for every rule cited as §n / Dn.
//!
//! # Syntax
//!
//! * [`parse`] / [`parse_bytes`] / [`parse_source`] → [`Parsed`]: the (possibly partial)
//!   [`ast::Program`], the lexical and syntax [`diagnostic::Diagnostic`]s (L00x, P00x, at
//!   most 50) and the [`diagnostic::SourceFile`] that maps spans to `file:line:col`.
//! * [`ast`] — the tree; every node has a byte [`span::Span`]; comments and the facts the
//!   checker needs for W229/W230 are in [`ast::Program`].
//! * [`diagnostic`] — one diagnostic type for every stage, rendered in the human form of
//!   GRAMMAR §6.1 ([`diagnostic::SourceFile::render`]) or as JSON Lines
//!   ([`diagnostic::SourceFile::to_json_line`]).
//! * [`fmt::format_source`] — the canonical formatter (GRAMMAR §6.4).
//! * [`lexer`] — tokens (logos), exposed for tools and the benchmark baseline.
//!
//! ```
//! let parsed = symbi_dsl::parse("agent a { with { return 1; } }", "a.symbi");
//! assert!(!parsed.has_errors());
//! let symbi_dsl::ast::Item::Agent(agent) = &parsed.program.items[0] else { unreachable!() };
//! assert_eq!(agent.name.name, "a");
//!
//! let bad = symbi_dsl::parse("agent a { with { return 1 } }", "a.symbi");
//! assert_eq!(bad.render_diagnostics().lines().next().unwrap(),
//!            "a.symbi:1:26: error: expected `;` after the `return` statement [P002]");
//! ```

#![warn(missing_docs)]

// --- syntax: spans, diagnostics, tokens, tree, parser, formatter -----------------------
pub mod ast;
pub mod diagnostic;
pub mod fmt;
pub mod generate;
pub mod lexer;
pub mod parser;
pub mod span;

pub use parser::{Parsed, parse, parse_bytes, parse_source};

// --- semantics: values, builtins, checker, program, interpreter, policy rules ----------
pub mod builtins;
pub mod check;
mod compile;
pub mod error;
pub mod host;
pub mod interp;
pub mod program;
pub mod rules;
pub mod types;
pub mod value;

pub use check::{CheckOptions, Mode, check};
pub use host::{ActionError, ActionHost, ActionRequest, ExecutionContext};
pub use interp::{ExecutionFailure, ExecutionOutcome, ExecutionPool, execute};
pub use program::{LoadError, LoadedProgram, load};
pub use value::Value;
