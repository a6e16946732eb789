//! `symbi bench …`: whole-system load tests. Each prints medians, p99, throughput and the
//! ratio to a baseline measured in the same run.

use super::Globals;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `symbi bench …`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Create many agents and measure creation latency, memory and idle CPU.
    Agents(AgentsArgs),
    /// Durable audit appends (group commit vs one fsync per event), verification, proofs.
    Audit(super::audit::BenchArgs),
    /// Sandboxed tool latency per tier against a bare `docker run`, concurrent throughput,
    /// memory per running sandbox.
    Sandbox(SandboxBenchArgs),
}

/// `symbi bench agents`.
#[derive(Args, Debug)]
pub struct AgentsArgs {
    /// Number of agents.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
}

pub fn run(_g: &Globals, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Audit(a) => super::audit::bench(_g, a),
        BenchCommand::Agents(_a) => Err(crate::exit::usage(
            "the agents load test arrives with the runtime core; rebuild from a newer checkout",
        )),
        BenchCommand::Sandbox(a) => sandbox_bench(_g, a),
    }
}

/// `symbi bench sandbox`.
#[derive(Args, Debug)]
pub struct SandboxBenchArgs {
    /// Sequential calls per tier (each side: sandbox and bare `docker run`).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Concurrent calls for the throughput figure.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// Running sandboxes for the memory figure.
    #[arg(long, default_value_t = 10)]
    pub memory_sandboxes: usize,
    /// Only this tier (Tier1 or Tier2).
    #[arg(long)]
    pub tier: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

fn sandbox_bench(g: &Globals, a: SandboxBenchArgs) -> anyhow::Result<ExitCode> {
    use symbi_sandbox::{Sandbox, SandboxConfig, bench};
    use symbi_types::SandboxTier;
    let loaded = g.load(None)?;
    let mut config = SandboxConfig::from_config(&loaded.config, loaded.data_dir());
    config.default_floor = None; // each tier is demanded explicitly
    config.max_concurrent = config.max_concurrent.max(a.concurrency).max(a.memory_sandboxes);
    let tiers = match a.tier.as_deref() {
        None => vec![SandboxTier::Tier1, SandboxTier::Tier2],
        Some(t) => vec![t.parse::<SandboxTier>().map_err(crate::exit::usage)?],
    };
    let opts = bench::BenchOptions { iterations: a.iterations.max(1), concurrency: a.concurrency.max(1), memory_sandboxes: a.memory_sandboxes, tiers };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let sandbox = std::sync::Arc::new(Sandbox::new(config)?);
    let report = rt.block_on(bench::run(sandbox, &opts)).map_err(anyhow::Error::msg)?;
    match a.format {
        crate::cli::Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        crate::cli::Format::Text => {
            println!("sandbox load test (load average before {}, after {})", report.load_before, report.load_after);
            for t in &report.tiers {
                println!(
                    "{}: sandbox p50 {:.1} ms p99 {:.1} ms | bare docker run p50 {:.1} ms p99 {:.1} ms | ratio p50 {:.2} (goal <= 1.10)",
                    t.tier, t.sandbox.p50_ms, t.sandbox.p99_ms, t.bare_docker_run.p50_ms, t.bare_docker_run.p99_ms, t.ratio_p50
                );
                println!(
                    "{}: bare Engine API run p50 {:.1} ms p99 {:.1} ms | hardening+checks ratio p50 {:.2}",
                    t.tier, t.bare_api_run.p50_ms, t.bare_api_run.p99_ms, t.ratio_p50_vs_api
                );
                println!(
                    "{}: {} concurrent calls in {:.0} ms ({:.1} calls/s); per running sandbox: memory cgroup {:.1} MiB, RSS {:.1} MiB",
                    t.tier, a.concurrency, t.concurrent_wall_ms, t.concurrent_calls_per_s, t.memory_per_sandbox_mib, t.rss_per_sandbox_mib
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
