//! The symbi DSL: lexer, parser, diagnostics, formatter, static checker and metered interpreter
//!
//! The syntax half (this file's first block of modules) turns source text into an
//! [`ast::Program`] plus [`diagnostic::Diagnostic`]s, and formats programs canonically.
//! GRAMMAR.md (`shared/dsl/GRAMMAR.md`) is the reference for every rule cited as §n / Dn.

#![warn(missing_docs)]

// --- syntax: spans, diagnostics, tokens, tree, parser, formatter -----------------------
pub mod ast;
pub mod diagnostic;
pub mod fmt;
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

pub use check::{check, CheckOptions, Mode};
pub use host::{ActionError, ActionHost, ActionRequest, ExecutionContext};
pub use interp::{execute, ExecutionFailure, ExecutionOutcome, ExecutionPool};
pub use program::{load, LoadError, LoadedProgram};
pub use value::Value;
