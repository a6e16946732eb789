//! `symbi config show`: the effective configuration and where each value came from.

use super::Globals;
use crate::cli::Format;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// `symbi config …`.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration with the source of every value.
    Show(ShowArgs),
    /// Validate the configuration and exit 0, or print the error and exit 2.
    Check,
}

/// `symbi config show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(g: &Globals, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    match cmd {
        ConfigCommand::Check => match &loaded.file {
            Some(f) => println!("{}: ok", f.display()),
            None => println!("no configuration file; embedded defaults and environment are valid"),
        },
        ConfigCommand::Show(a) => match a.format {
            Format::Json => {
                let mut out = serde_json::Map::new();
                for (key, value, source) in loaded.entries() {
                    out.insert(
                        key,
                        serde_json::json!({ "value": value, "source": source.to_string() }),
                    );
                }
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
            Format::Text => {
                match &loaded.file {
                    Some(f) => println!("# configuration file: {}", f.display()),
                    None => println!("# no configuration file (embedded defaults)"),
                }
                let mut section = String::new();
                let rows: Vec<(String, String, String)> = loaded
                    .entries()
                    .into_iter()
                    .map(|(k, v, s)| (k, render(&v), s.to_string()))
                    .collect();
                let width = rows
                    .iter()
                    .map(|(k, v, _)| k.len() + v.len())
                    .max()
                    .unwrap_or(0)
                    + 4;
                for (key, value, source) in rows {
                    let (sect, name) = key.split_once('.').unwrap_or(("", &key));
                    if sect != section {
                        println!("\n[{sect}]");
                        section = sect.to_string();
                    }
                    let lhs = format!("{name} = {value}");
                    println!("{lhs:<width$} # {source}");
                }
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// TOML-like rendering of a value; unset options show as `(unset)`.
fn render(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "(unset)".into(),
        other => other.to_string(),
    }
}
