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
    /// Sandboxed tool latency per tier against a bare `docker run`, concurrent throughput,
    /// memory per running sandbox.
    Sandbox(SandboxBenchArgs),
    /// MCP tool-call round trips over stdio and HTTP against the Python `mcp` client on the
    /// same server, and SchemaPin verification latency with a pinned key.
    Mcp(McpBenchArgs),
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
        BenchCommand::Agents(_a) => Err(crate::exit::usage(
            "the agents load test arrives with the runtime core; rebuild from a newer checkout",
        )),
        BenchCommand::Sandbox(a) => sandbox_bench(_g, a),
        BenchCommand::Mcp(a) => mcp_bench(a),
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

/// `symbi bench mcp`.
#[derive(Args, Debug)]
pub struct McpBenchArgs {
    /// Measured calls per transport and per client.
    #[arg(long, default_value_t = 500)]
    pub iterations: usize,
    /// Unmeasured calls first.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Measured SchemaPin verifications.
    #[arg(long, default_value_t = 2000)]
    pub verify_iterations: usize,
    /// Python with the `mcp` and `schemapin` packages (default: the test venv of
    /// scripts/setup-test-deps.sh).
    #[arg(long, value_name = "PATH")]
    pub python: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

fn mcp_bench(a: McpBenchArgs) -> anyhow::Result<ExitCode> {
    let python = a.python.unwrap_or_else(|| {
        let deps = std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into());
        std::path::Path::new(&deps).join("mcp-venv/bin/python")
    });
    let opts = symbi_mcp::bench::BenchOptions {
        python,
        iterations: a.iterations.max(1),
        warmup: a.warmup,
        verify_iterations: a.verify_iterations.max(1),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let r = rt.block_on(symbi_mcp::bench::run(&opts)).map_err(anyhow::Error::msg)?;
    match a.format {
        crate::cli::Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        crate::cli::Format::Text => {
            println!("mcp load test (load average before {}, after {})", r.load_before, r.load_after);
            for t in &r.transports {
                println!(
                    "{:<5} tool call: symbi p50 {:.0} µs p99 {:.0} µs | python mcp client p50 {:.0} µs p99 {:.0} µs | ratio p50 {:.2} p99 {:.2}",
                    t.transport, t.symbi.p50_us, t.symbi.p99_us, t.python_client.p50_us, t.python_client.p99_us, t.ratio_p50, t.ratio_p99
                );
            }
            println!(
                "schemapin verify (pinned key): p50 {:.1} µs p99 {:.1} µs (goal < 500 µs) | bare ECDSA p50 {:.1} µs | ratio {:.2} | first use (pin written) {:.0} µs",
                r.verify_pinned.p50_us, r.verify_pinned.p99_us, r.verify_bare_ecdsa.p50_us, r.verify_ratio_p50, r.verify_first_use_us
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
