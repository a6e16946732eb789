//! Command-line grammar (clap). Each subcommand's own options live in its module.

use crate::commands;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// symbi — a runtime for autonomous AI agents: DSL agents whose every action passes through
/// policy, isolation and a signed audit trail.
#[derive(Parser, Debug)]
#[command(name = "symbi", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Also `SYMBI_CONFIG_PATH`.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of all state (audit log, keys, memory, vectors, schedules). Also
    /// `SYMBI_DATA_DIR`; default `$XDG_DATA_HOME/symbi` or `~/.local/share/symbi`.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of structured output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Human-readable.
    #[default]
    Text,
    /// JSON.
    Json,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the runtime daemon: every available component, the HTTP API, loaded agents.
    Up(commands::up::UpArgs),
    /// Report what this host has and lacks, with the command that fixes each gap.
    Doctor(commands::doctor::DoctorArgs),
    /// Configuration.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// The signed audit log: verify, query, prove, report, tail, keys.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Command tools and their sandbox images.
    #[command(subcommand)]
    Tools(commands::tools::ToolsCommand),
    /// DSL tools: parse, check and format `.symbi` files.
    #[command(subcommand)]
    Dsl(commands::dsl::DslCommand),
    /// Policies: check files, evaluate a request, run a decision table.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Load tests that print medians, p99, throughput and a baseline ratio.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}
