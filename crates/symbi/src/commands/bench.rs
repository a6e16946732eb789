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
    /// Bus throughput and latency per backend, security mode, payload and fan-out, against
    /// a bare tokio mpsc baseline and the raw crypto cost.
    Bus(BusArgs),
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
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// `symbi bench agents`.
#[derive(Args, Debug)]
pub struct AgentsArgs {
    /// Number of agents.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
}

pub fn run(g: &Globals, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Bus(a) => bench_bus(g, a),
        BenchCommand::Agents(_a) => Err(crate::exit::usage(
            "the agents load test arrives with the runtime core; rebuild from a newer checkout",
        )),
    }
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
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let json = a.format == "json";
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
        println!("load average during the run: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    }
    Ok(ExitCode::SUCCESS)
}
