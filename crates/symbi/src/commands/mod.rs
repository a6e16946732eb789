//! One module per subcommand.

pub mod audit;
pub mod bench;
pub mod config;
pub mod doctor;
pub mod dsl;
pub mod knowledge;
pub mod mcp;
pub mod mcp_tools;
pub mod policy;
pub mod run;
pub mod tools;
pub mod up;

use crate::cli::{Cli, Command};
use std::process::ExitCode;
use symbi_config::{LoadOptions, LoadedConfig};

/// Global options every subcommand gets.
pub struct Globals {
    /// `--config`.
    pub config: Option<std::path::PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Globals {
    /// Loads the effective configuration (file, environment, these options).
    pub fn load(&self, listen: Option<String>) -> anyhow::Result<LoadedConfig> {
        let opts = LoadOptions {
            config_path: self.config.clone(),
            data_dir: self.data_dir.clone(),
            listen,
            ..LoadOptions::from_process()
        };
        Ok(symbi_config::load(&opts)?)
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = Globals {
        config: cli.config,
        data_dir: cli.data_dir,
    };
    match cli.command {
        Command::Up(a) => up::run(&g, a),
        Command::Run(a) => run::run(&g, a),
        Command::Doctor(a) => doctor::run(&g, a),
        Command::Config(c) => config::run(&g, c),
        Command::Dsl(c) => dsl::run(c),
        Command::Audit(c) => audit::run(&g, c),
        Command::Bench(c) => bench::run(&g, c),
        Command::Tools(c) => tools::run(&g, c),
        Command::Policy(c) => policy::run(&g, c),
        Command::Knowledge(c) => knowledge::run(&g, c),
        Command::Mcp(a) => mcp::run(&g, a),
    }
}
