//! `symbi bench gateway`: what one action costs on the way DSL call → action gateway →
//! policy decision → executor → audit, measured from a DSL agent on the assembled system.
//!
//! Agents run a loop of `n` iterations in the same run:
//! * `spin` — the loop body is plain arithmetic (the **baseline**: interpreter only);
//! * `calls<i>` — the body also calls `recall("k")` (an action: resolved by the gateway,
//!   decided by the Cedar engine plus the agent's DSL rules, executed on the ephemeral
//!   state store, recorded twice — decision and outcome);
//!
//! once with audit disabled (the records go nowhere: gateway + policy) and once with the
//! signed audit log (every record durable before the action proceeds). The cost of one
//! action is `(calls − spin) / n`. With the durable log, `--concurrency` executions (of as
//! many agents) run at once so that group commit can batch their records; figures are then
//! per action of the whole run (wall time ÷ all actions).

use crate::cli::Format;
use crate::commands::Globals;
use clap::Args;
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_runtime::engine::ExecuteOptions;
use symbi_runtime::engine::assembly::{AssemblyOptions, Extensions, assemble};

/// `symbi bench gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Loop iterations (actions) per execution.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: u64,
    /// Executions run at once in the durable-audit case.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

const SPIN: &str = r#"
agent spin(n: int) -> int {
    with timeout = 600s, max_steps = 100000000 {
        let x = 0;
        for i in range(n) {
            x = x + 1;
        }
        x
    }
}
"#;

/// The action loop as agent `calls{i}` (one agent per concurrent execution: an agent runs
/// one execution at a time).
fn calls_agent(i: usize) -> String {
    format!(
        r#"
agent calls{i}(n: int) -> int {{
    capabilities = ["memory_read"]
    policy own_state {{
        allow: ["memory_read"]
    }}
    with timeout = 600s, max_steps = 100000000 {{
        let x = 0;
        for i in range(n) {{
            let v = recall("k");
            x = x + 1;
        }}
        x
    }}
}}
"#
    )
}

/// One measured configuration.
struct Row {
    label: &'static str,
    spin_ns: f64,
    calls_ns: f64,
    concurrency: usize,
}

async fn measure(
    cfg: &symbi_config::Config,
    audit: bool,
    n: u64,
    concurrency: usize,
) -> anyhow::Result<(f64, f64)> {
    let tmp = tempfile::tempdir()?;
    let mut cfg = cfg.clone();
    cfg.runtime.data_dir = Some(tmp.path().to_path_buf());
    cfg.security.audit_enabled = audit;
    let sys = assemble(
        Arc::new(cfg),
        tmp.path().to_path_buf(),
        AssemblyOptions {
            bus: false,
            watch_policies: false,
        },
        Extensions::default(),
    )
    .await?;
    let mut source = SPIN.to_string();
    for i in 0..concurrency {
        source.push_str(&calls_agent(i));
    }
    let agents = sys
        .engine
        .load_source("bench-gateway.symbi", &source)
        .await?;
    let id = |name: &str| {
        agents
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
            .expect("agent loaded")
    };
    let spin = vec![id("spin"); concurrency];
    let calls: Vec<_> = (0..concurrency).map(|i| id(&format!("calls{i}"))).collect();
    let mut per = Vec::new();
    for group in [spin, calls] {
        // Warm-up (policy cache, allocator), then the measured runs.
        for agent in &group {
            sys.engine
                .run(*agent, json!({ "n": 100 }), ExecuteOptions::default())
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
        }
        let started = Instant::now();
        let runs: Vec<_> = group
            .iter()
            .map(|&agent| {
                let engine = sys.engine.clone();
                tokio::spawn(async move {
                    engine
                        .run(agent, json!({ "n": n }), ExecuteOptions::default())
                        .await
                })
            })
            .collect();
        for r in runs {
            r.await?
                .map_err(|e| anyhow::anyhow!("{}: {}", e.kind, e.message))?;
        }
        per.push(started.elapsed().as_nanos() as f64 / (n as f64 * concurrency as f64));
    }
    sys.shutdown(Duration::from_secs(10)).await;
    Ok((per[0], per[1]))
}

pub fn bench_gateway(g: &Globals, a: GatewayArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    crate::logging::init(&loaded.config.log, "warn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let load_before = super::load_average();
    let rows = rt.block_on(async {
        let mut rows = Vec::new();
        let (s, c) = measure(&loaded.config, false, a.iterations, 1).await?;
        rows.push(Row {
            label: "gateway + policy (audit off)",
            spin_ns: s,
            calls_ns: c,
            concurrency: 1,
        });
        let (s, c) = measure(&loaded.config, true, a.iterations / 10, 1).await?;
        rows.push(Row {
            label: "gateway + policy + durable audit",
            spin_ns: s,
            calls_ns: c,
            concurrency: 1,
        });
        let (s, c) = measure(&loaded.config, true, a.iterations / 10, a.concurrency).await?;
        rows.push(Row {
            label: "gateway + policy + durable audit",
            spin_ns: s,
            calls_ns: c,
            concurrency: a.concurrency,
        });
        anyhow::Ok(rows)
    })?;
    let load_after = super::load_average();
    match a.format {
        Format::Json => {
            let v: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({"path": r.label, "concurrency": r.concurrency, "interpreter_ns_per_iteration": r.spin_ns,
                           "with_action_ns_per_iteration": r.calls_ns, "action_ns": r.calls_ns - r.spin_ns})
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"rows": v, "load_before": load_before, "load_after": load_after})
                )?
            );
        }
        _ => {
            println!(
                "symbi bench gateway — one `recall` action per loop iteration; load average {load_before}"
            );
            println!(
                "{:<36} {:>5} {:>16} {:>18} {:>14} {:>12}",
                "path", "conc", "baseline ns/it", "with action ns/it", "action µs", "actions/s"
            );
            for r in &rows {
                let action = (r.calls_ns - r.spin_ns).max(0.0);
                println!(
                    "{:<36} {:>5} {:>16.0} {:>18.0} {:>14.2} {:>12.0}",
                    r.label,
                    r.concurrency,
                    r.spin_ns,
                    r.calls_ns,
                    action / 1000.0,
                    1e9 / r.calls_ns
                );
            }
            println!(
                "baseline: the same loop without the action (interpreter only), same run; load average at the end {load_after}"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
