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
    }
}
