//! `symbi` — the command-line interface and daemon.
//!
//! A thin binary: it parses arguments (clap), loads the configuration, wires the runtime
//! together and hands each subcommand to its module under [`commands`]. Conventions
//! (SPEC §11): global `--config FILE` and `--data-dir DIR`; exit code 0 on success, 1 when
//! the operation failed or found problems, 2 for usage or configuration errors;
//! `--format json` wherever output is structured.

mod cli;
mod commands;
mod exit;
mod logging;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}
