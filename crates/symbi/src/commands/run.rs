//! `symbi run FILE [--agent NAME] [--input JSON]`: loads a program, creates the agent
//! through the runtime lifecycle, executes it with every action going through policy,
//! sandbox and the audit log, prints the JSON result.
//!
//! Exit codes (GRAMMAR §6.3): 0 the execution succeeded; 1 it failed (uncaught error,
//! `InputError`, a program that fails its checks); 2 usage or configuration errors (for
//! example `--input` that is not JSON).

use super::Globals;
use crate::cli::Format;
use crate::exit::{AlreadyReported, usage};
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use symbi_runtime::engine::assembly::{AssemblyOptions, Extensions, assemble};
use symbi_runtime::engine::{EngineError, ExecuteOptions};

/// `symbi run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The `.symbi` program.
    pub file: PathBuf,
    /// The agent to run (required when the program defines several).
    #[arg(long)]
    pub agent: Option<String>,
    /// The input as JSON (default `{}`).
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Output format: the result alone (text) or `{status, result | error, execution_id, steps, duration_ms}` (json).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(g: &Globals, a: RunArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    crate::logging::init(&loaded.config.log, "warn");
    let input: Value = serde_json::from_str(&a.input).map_err(|e| {
        usage(format!(
            "--input is not valid JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let source = std::fs::read_to_string(&a.file)
        .map_err(|e| usage(format!("{}: cannot read: {e}", a.file.display())))?;
    let file_name = a.file.display().to_string();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let data_dir = loaded.data_dir();
        let system = assemble(
            Arc::new(loaded.config.clone()),
            data_dir,
            AssemblyOptions { bus: true, watch_policies: false },
            Extensions::default(),
        )
        .await?;
        let engine = system.engine.clone();
        let outcome = async {
            // Every agent of the file is registered (siblings are callable by `delegate` and
            // the like); `--agent` only chooses which one runs.
            let agents = match engine.load_source(&file_name, &source).await {
                Ok(agents) => agents,
                Err(EngineError::Program { rendered, diagnostics, .. }) => {
                    match a.format {
                        Format::Json => println!("{}", json!({ "status": "failed", "error": { "kind": "ProgramError", "diagnostics": diagnostics } })),
                        Format::Text => eprint!("{rendered}"),
                    }
                    return Err(anyhow::Error::new(AlreadyReported));
                }
                Err(e) => return Err(e.into()),
            };
            let chosen: Vec<(String, _)> = match a.agent.as_deref() {
                Some(want) => {
                    let hit: Vec<_> = agents.iter().filter(|(n, _)| n == want).cloned().collect();
                    if hit.is_empty() {
                        return Err(usage(format!("{file_name} has no agent named `{want}`")));
                    }
                    hit
                }
                None => agents,
            };
            let (name, id) = match chosen.as_slice() {
                [one] => one.clone(),
                [] => return Err(usage(format!("{file_name} defines no agent"))),
                many => {
                    let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(usage(format!(
                        "{file_name} defines several agents ({}); choose one with --agent NAME",
                        names.join(", ")
                    )));
                }
            };
            let opts = ExecuteOptions {
                trigger_kind: Some("cli".into()),
                // The local user, as an operator of this runtime (Cedar `Operator`).
                initiator: Some(symbi_policy::requests::operator_principal(
                    std::env::var("USER").unwrap_or_else(|_| "cli".into()),
                    Vec::<String>::new(),
                )),
                ..ExecuteOptions::default()
            };
            match engine.run(id, input, opts).await {
                Ok(report) => {
                    match a.format {
                        Format::Json => println!(
                            "{}",
                            json!({
                                "status": "ok", "agent": name, "execution_id": report.execution_id.to_string(),
                                "result": report.result, "steps": report.steps, "duration_ms": report.duration_ms,
                            })
                        ),
                        Format::Text => println!("{}", symbi_dsl::value::json_to_string(&report.result, true)),
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    match a.format {
                        Format::Json => println!(
                            "{}",
                            json!({
                                "status": "failed", "agent": name, "execution_id": e.execution_id.to_string(),
                                "error": { "kind": e.kind, "message": e.message, "location": e.location },
                            })
                        ),
                        Format::Text => eprintln!("{}", e.rendered.trim_end()),
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        .await;
        system.shutdown(Duration::from_secs(5)).await;
        outcome
    })
}
