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
    /// Bus throughput and latency per backend, security mode, payload and fan-out, against
    /// a bare tokio mpsc baseline and the raw crypto cost.
    Bus(BusArgs),
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
        BenchCommand::Bus(a) => bench_bus(_g, a),
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

/// `symbi bench bus`.
#[derive(Args, Debug)]
pub struct BusArgs {
    /// Messages per 1-subscriber throughput case (1,000-subscriber cases send 1/100).
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    /// Round trips per latency case.
    #[arg(long, default_value_t = 2_000)]
    pub latency_samples: usize,
    /// Payload sizes in bytes (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "64,4096")]
    pub payload: Vec<usize>,
    /// Subscriber counts (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    pub subscribers: Vec<usize>,
    /// A NATS server with JetStream for the NATS cases (e.g. nats://127.0.0.1:4222);
    /// without it they are skipped.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

/// `symbi bench bus`: see `symbi_bus::loadtest`.
fn bench_bus(g: &Globals, a: BusArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let cfg = symbi_bus::loadtest::LoadTestConfig {
        messages: a.messages,
        latency_samples: a.latency_samples,
        payload_sizes: a.payload,
        subscriber_counts: a.subscribers,
        nats_url: a.nats_url,
        crypto_provider: loaded.config.security.crypto_provider.as_str().to_string(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let json = matches!(a.format, crate::cli::Format::Json);
    let rows = rt.block_on(symbi_bus::loadtest::run(&cfg, |r| {
        if !json {
            eprintln!("done: {} {} {} {}B x{}", r.backend, r.mode, r.pattern, r.payload, r.subscribers);
        }
    }))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!("{}", symbi_bus::loadtest::table(&rows));
        println!("load average after the run: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
