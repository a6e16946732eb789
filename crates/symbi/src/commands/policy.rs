//! `symbi policy check|eval|test`: validate policy files, evaluate one request, run a
//! table of expected decisions (docs/policies.md "Command line").

use super::Globals;
use crate::cli::Format;
use crate::exit::{AlreadyReported, usage};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use symbi_policy::table::{EntityRequest, TestTable, run_table};
use symbi_policy::{EngineOptions, PolicyEngine, PolicyError, PolicySource, Severity, defaults};
use symbi_types::{Decision, PolicyDecisionPoint};

/// `symbi policy …`.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Parse policy files and validate them against the schema; print positioned errors.
    Check(CheckArgs),
    /// Decide one request and print the decision with the deciding policies.
    Eval(EvalArgs),
    /// Run a table of expected decisions (TOML or JSON); exit 1 on any mismatch.
    Test(TestArgs),
}

/// `symbi policy check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Policy directory (every `*.cedar` below it) or one `.cedar` file.
    pub path: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi policy eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Policy directory (default: `[policy] dir`, else `<data dir>/policies`; the shipped
    /// defaults when that does not exist yet).
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// The principal, e.g. `Agent::"fetcher"`, `Client::"ci"`.
    #[arg(long)]
    pub principal: String,
    /// The action, e.g. `Action::"network_access"` (or just the word).
    #[arg(long)]
    pub action: String,
    /// The resource, e.g. `Host::"example.com"`, `Tool::"search"`.
    #[arg(long)]
    pub resource: String,
    /// Principal attributes as a JSON object (`{"capabilities": ["x"], "suspended": false}`).
    #[arg(long, value_name = "JSON")]
    pub principal_attrs: Option<String>,
    /// Resource attributes as a JSON object (`{"scheme": "https"}`).
    #[arg(long, value_name = "JSON")]
    pub resource_attrs: Option<String>,
    /// Request context as a JSON object (`{"has_human_approval": true}`).
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi policy test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// The decision table (`.toml`, or `.json`).
    pub file: PathBuf,
    /// Policy directory (overrides the table's `policies` and the configuration).
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(g: &Globals, cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Eval(a) => eval(g, a),
        PolicyCommand::Test(a) => test(g, a),
    }
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let sources = if a.path.is_file() {
        let text = std::fs::read_to_string(&a.path)
            .map_err(|e| usage(format!("{}: {e}", a.path.display())))?;
        let name = a
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        vec![PolicySource {
            name,
            display: a.path.display().to_string(),
            text,
        }]
    } else {
        symbi_policy::read_dir_sources(&a.path).map_err(|e| match e {
            PolicyError::MissingDirectory(_) => {
                usage(format!("{}: no such file or directory", a.path.display()))
            }
            other => other.into(),
        })?
    };
    let (ok, files, policies, diags) = match PolicyEngine::check(&sources) {
        Ok(r) => (true, r.files, r.policies, r.warnings),
        Err(PolicyError::Invalid(d)) => (
            false,
            sources.iter().map(|s| s.name.clone()).collect(),
            0,
            d,
        ),
        Err(e) => return Err(e.into()),
    };
    match a.format {
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({ "ok": ok, "files": files, "policies": policies, "diagnostics": diags })
                )?
            );
        }
        Format::Text => {
            for d in &diags {
                eprintln!("{}", d.render());
            }
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            let warnings = diags.len() - errors;
            if ok {
                if files.is_empty() {
                    eprintln!(
                        "warning: no *.cedar files in {}: every action not granted by DSL rules is denied",
                        a.path.display()
                    );
                }
                println!(
                    "{}: ok ({} files, {policies} policies, {warnings} warnings)",
                    a.path.display(),
                    files.len()
                );
            } else {
                println!(
                    "{}: {errors} errors, {warnings} warnings; the policy set is rejected",
                    a.path.display()
                );
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The engine for `eval`/`test`: an explicit directory, else the configured one, else
/// (not created yet) the shipped defaults.
fn engine_for(g: &Globals, explicit: Option<&Path>) -> anyhow::Result<PolicyEngine> {
    let opts = EngineOptions::enforcing();
    let dir = match explicit {
        Some(d) => d.to_path_buf(),
        None => {
            let loaded = g.load(None)?;
            let c = &loaded.config;
            let dir = c.under_data_dir(c.policy.dir.as_deref(), "policies");
            if !dir.exists() {
                eprintln!(
                    "note: policy directory {} does not exist yet; using the shipped defaults",
                    dir.display()
                );
                return Ok(PolicyEngine::from_sources(
                    defaults::default_sources(),
                    opts,
                )?);
            }
            dir
        }
    };
    match PolicyEngine::from_dir(&dir, opts) {
        Ok(e) => Ok(e),
        Err(PolicyError::MissingDirectory(d)) => Err(usage(format!(
            "policy directory {} does not exist",
            d.display()
        ))),
        Err(PolicyError::Invalid(diags)) => {
            for d in diags.iter().filter(|d| d.severity == Severity::Error) {
                eprintln!("{}", d.render());
            }
            Err(AlreadyReported.into())
        }
        Err(e) => Err(e.into()),
    }
}

fn json_object(flag: &str, s: &Option<String>) -> anyhow::Result<Option<Map<String, Value>>> {
    match s {
        None => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            Ok(other) => Err(usage(format!("{flag} must be a JSON object, got {other}"))),
            Err(e) => Err(usage(format!("{flag} is not valid JSON: {e}"))),
        },
    }
}

fn eval(g: &Globals, a: EvalArgs) -> anyhow::Result<ExitCode> {
    let req = EntityRequest {
        principal: a.principal.clone(),
        action: a.action.clone(),
        resource: a.resource.clone(),
        principal_attrs: json_object("--principal-attrs", &a.principal_attrs)?,
        resource_attrs: json_object("--resource-attrs", &a.resource_attrs)?,
        context: json_object("--context", &a.context)?,
    };
    for k in req.undeclared_context_keys() {
        eprintln!(
            "warning: context key `{k}` is not part of the Cedar model (see docs/policies.md); Cedar policies cannot see it"
        );
    }
    let request = req.to_request().map_err(usage)?;
    let engine = engine_for(g, a.policies.as_deref())?;
    let decision = engine.decide(&request, None);
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&decision)?),
        Format::Text => print_decision(&decision),
    }
    Ok(if decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_decision(d: &Decision) {
    println!("{}", d.outcome());
    let reasons = match d {
        Decision::Allow { reasons }
        | Decision::Deny { reasons }
        | Decision::AllowWithConditions { reasons, .. } => reasons,
    };
    for r in reasons {
        println!("  reason: {r}");
    }
    for c in d.conditions() {
        println!(
            "  condition: {}",
            serde_json::to_string(c).unwrap_or_default()
        );
    }
}

fn test(g: &Globals, a: TestArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| usage(format!("{}: {e}", a.file.display())))?;
    let table =
        TestTable::parse(&a.file.display().to_string(), &text).map_err(|e| usage(e.to_string()))?;
    let dir = a.policies.clone().or_else(|| {
        table
            .policies
            .as_ref()
            .map(|p| a.file.parent().unwrap_or(Path::new(".")).join(p))
    });
    let engine = engine_for(g, dir.as_deref())?;
    let results = run_table(&engine, &table);
    let failed = results.iter().filter(|r| !r.passed()).count();
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "passed": results.len() - failed,
                "failed": failed,
                "cases": results.iter().map(|r| json!({
                    "name": r.name,
                    "passed": r.passed(),
                    "expected": r.expected,
                    "decision": r.decision,
                    "problems": r.problems,
                })).collect::<Vec<_>>(),
            }))?
        ),
        Format::Text => {
            for r in &results {
                if r.passed() {
                    println!("ok   {}", r.name);
                } else {
                    println!("FAIL {}", r.name);
                    for p in &r.problems {
                        println!("       {p}");
                    }
                }
            }
            println!("{} passed, {failed} failed", results.len() - failed);
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
