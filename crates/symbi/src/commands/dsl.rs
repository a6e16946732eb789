//! `symbi dsl parse|check|fmt`: syntax checking, static checking and formatting of DSL
//! files (GRAMMAR §6). Exit codes (§6.1): 0 no errors, 1 at least one error (or, for
//! `fmt --check`, a file that would change), 2 usage errors and unreadable files.
//!
//! Diagnostics go to standard error in the human form, or to standard output as JSON
//! Lines with `--format json`.

use crate::cli::Format;
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use symbi_dsl::diagnostic::{Diagnostic, SourceFile};

/// `symbi dsl …`.
#[derive(Subcommand, Debug)]
pub enum DslCommand {
    /// Parse files and report lexical and syntax errors (no static checks).
    Parse(ParseArgs),
    /// Parse and statically check files (GRAMMAR 4.12): names, calls, `with` attributes,
    /// schedules, channels, memory stores, webhooks, policies, types and hygiene.
    Check(CheckArgs),
    /// Format files in place (atomically), or check that they are formatted.
    Fmt(FmtArgs),
}

/// `symbi dsl parse`.
#[derive(Args, Debug)]
pub struct ParseArgs {
    /// `.symbi` / `.dsl` files, or directories to search for them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Diagnostics format (`json`: one JSON object per line on standard output).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Also print each file's syntax tree (JSON, without positions) on standard output.
    #[arg(long)]
    pub ast: bool,
}

/// `symbi dsl check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// `.symbi` / `.dsl` files, or directories to search for them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Diagnostics format (`json`: one JSON object per line on standard output).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Report every use of a symbi extension (W230) to keep files portable to Symbiont.
    #[arg(long)]
    pub compat: bool,
    /// Treat calls that resolve to nothing static (W201) as errors.
    #[arg(long)]
    pub deny_unresolved: bool,
}

/// `symbi dsl fmt`.
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// Files or directories to format; `-` formats standard input to standard output.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Do not write; report files that would change and exit 1 if any would.
    #[arg(long)]
    pub check: bool,
    /// Diagnostics format (`json`: one JSON object per line on standard output).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Runs a `symbi dsl` subcommand.
pub fn run(cmd: DslCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DslCommand::Parse(a) => parse_files(&a.files, a.format, a.ast),
        DslCommand::Check(a) => check_files(&a),
        DslCommand::Fmt(a) => fmt_files(&a),
    }
}

/// Outcome counters → exit code.
#[derive(Default)]
struct Outcome {
    errors: bool,
    unreadable: bool,
}

impl Outcome {
    fn code(&self) -> ExitCode {
        if self.unreadable {
            ExitCode::from(2)
        } else if self.errors {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Expands directories into the `.symbi` / `.dsl` files below them (sorted).
fn expand(paths: &[PathBuf], out: &mut Outcome) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, out);
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    files
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, out: &mut Outcome) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{}: error: cannot read directory: {e}", dir.display());
            out.unreadable = true;
            return;
        }
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            walk(&p, found, out);
        } else if p.extension().is_some_and(|e| e == "symbi" || e == "dsl") {
            found.push(p);
        }
    }
}

fn read(path: &Path, out: &mut Outcome) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("{}: error: cannot read file: {e}", path.display());
            out.unreadable = true;
            None
        }
    }
}

fn emit(source: &SourceFile, diags: &[Diagnostic], format: Format) {
    match format {
        Format::Json => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            for d in diags {
                let _ = writeln!(lock, "{}", source.to_json_line(d));
            }
        }
        Format::Text => {
            let stderr = std::io::stderr();
            let mut lock = stderr.lock();
            for d in diags {
                let _ = write!(lock, "{}", source.render(d));
            }
        }
    }
}

fn parse_files(paths: &[PathBuf], format: Format, ast: bool) -> anyhow::Result<ExitCode> {
    let mut out = Outcome::default();
    for path in expand(paths, &mut out) {
        let Some(bytes) = read(&path, &mut out) else {
            continue;
        };
        let parsed = symbi_dsl::parse_bytes(&bytes, &path.display().to_string());
        emit(&parsed.source, &parsed.diagnostics, format);
        out.errors |= parsed.has_errors();
        if ast {
            println!(
                "{}",
                serde_json::to_string(&parsed.program.without_spans())?
            );
        }
    }
    Ok(out.code())
}

/// `symbi dsl check`: syntax errors stop a file; otherwise every check diagnostic is
/// printed. The mode (W219, `sandbox = "none"`) follows `SYMBI_RUNTIME_MODE`
/// (production unless it says `development`).
fn check_files(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mode = match std::env::var("SYMBI_RUNTIME_MODE")
        .ok()
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("development") | Some("dev") => symbi_dsl::Mode::Development,
        _ => symbi_dsl::Mode::Production,
    };
    let opts = symbi_dsl::CheckOptions {
        mode,
        compat: a.compat,
        deny_unresolved: a.deny_unresolved,
        ..Default::default()
    };
    let mut out = Outcome::default();
    for path in expand(&a.files, &mut out) {
        let Some(bytes) = read(&path, &mut out) else {
            continue;
        };
        let parsed = symbi_dsl::parse_bytes(&bytes, &path.display().to_string());
        let mut diags = parsed.diagnostics.clone();
        if !parsed.has_errors() {
            diags.extend(symbi_dsl::check(&parsed, &opts));
        }
        emit(&parsed.source, &diags, a.format);
        out.errors |= diags.iter().any(Diagnostic::is_error);
    }
    Ok(out.code())
}

fn fmt_files(a: &FmtArgs) -> anyhow::Result<ExitCode> {
    let mut out = Outcome::default();
    if a.files.iter().any(|p| p.as_os_str() == "-") {
        if a.files.len() != 1 {
            return Err(crate::exit::usage(
                "`-` (standard input) cannot be combined with file names",
            ));
        }
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        let Some(formatted) = format_one("<stdin>", &bytes, a.format, &mut out) else {
            return Ok(out.code());
        };
        if a.check {
            if formatted.as_bytes() != bytes.as_slice() {
                eprintln!("<stdin>: would be reformatted");
                out.errors = true;
            }
        } else {
            std::io::stdout().write_all(formatted.as_bytes())?;
        }
        return Ok(out.code());
    }
    for path in expand(&a.files, &mut out) {
        let Some(bytes) = read(&path, &mut out) else {
            continue;
        };
        let name = path.display().to_string();
        let Some(formatted) = format_one(&name, &bytes, a.format, &mut out) else {
            continue;
        };
        if formatted.as_bytes() == bytes.as_slice() {
            continue;
        }
        if a.check {
            eprintln!("{name}: would be reformatted");
            out.errors = true;
        } else if let Err(e) = write_atomically(&path, formatted.as_bytes()) {
            eprintln!("{name}: error: cannot write the formatted file: {e}");
            out.unreadable = true;
        }
    }
    Ok(out.code())
}

/// Formats one file's bytes; prints its diagnostics and returns `None` when it cannot be
/// formatted.
fn format_one(name: &str, bytes: &[u8], format: Format, out: &mut Outcome) -> Option<String> {
    let parsed = symbi_dsl::parse_bytes(bytes, name);
    if parsed.has_errors() {
        emit(&parsed.source, &parsed.diagnostics, format);
        out.errors = true;
        return None;
    }
    match symbi_dsl::fmt::format_source(parsed.source.text()) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("{name}: error: {e}");
            out.errors = true;
            None
        }
    }
}

/// Replaces `path` with `data` atomically: a temporary file in the same directory with
/// the original permissions, flushed to disk, then renamed over the original.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let perms = std::fs::metadata(path)?.permissions();
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    std::fs::set_permissions(tmp.path(), perms)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
