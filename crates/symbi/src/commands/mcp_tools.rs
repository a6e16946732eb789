//! The MCP half of `symbi tools`: the configured MCP servers' tools in `symbi tools list`,
//! and `symbi tools verify SERVER`.

use super::Globals;
use super::tools::VerifyArgs;
use crate::cli::Format;
use anyhow::Context;
use serde_json::{Value, json};
use std::process::ExitCode;
use std::sync::Arc;
use symbi_mcp::{McpManager, McpSettings, ToolEntry, VerificationStatus};
use symbi_types::decision::VerificationMode;

/// The MCP servers of the effective configuration, with the audit sink verifications are
/// recorded to.
pub fn manager(
    loaded: &symbi_config::LoadedConfig,
    sink: Arc<dyn symbi_types::EventSink>,
) -> anyhow::Result<McpManager> {
    let settings = McpSettings::from_config(&loaded.config.mcp, &loaded.data_dir())
        .map_err(|e| crate::exit::usage(e.to_string()))?;
    Ok(McpManager::new(settings, sink)?)
}

/// Where CLI inspection commands record verification events. (`symbi up`/`symbi run`
/// pass the runtime's audit log to [`manager`].)
fn cli_sink() -> Arc<dyn symbi_types::EventSink> {
    Arc::new(symbi_types::MemoryEventLog::default())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// What `symbi tools list` shows about MCP servers.
pub struct McpListing {
    tools: Vec<ToolEntry>,
    errors: Vec<(String, String)>,
    discovery_ignored: usize,
}

/// Connects to every configured MCP server and collects its verified tools; `None` when no
/// server is configured.
pub fn collect(g: &Globals) -> anyhow::Result<Option<McpListing>> {
    let loaded = g.load(None)?;
    let mcp = manager(&loaded, cli_sink())?;
    let ignored = mcp.settings().discovery_ignored;
    if mcp.settings().servers.is_empty() && ignored == 0 {
        return Ok(None);
    }
    let rt = runtime()?;
    let results = rt.block_on(mcp.start());
    let tools = mcp.tools();
    rt.block_on(mcp.shutdown());
    let errors = results
        .into_iter()
        .filter_map(|(s, r)| r.err().map(|e| (s, e.to_string())))
        .collect();
    Ok(Some(McpListing {
        tools,
        errors,
        discovery_ignored: ignored,
    }))
}

fn status_json(t: &ToolEntry) -> Value {
    let mut v = serde_json::to_value(&t.verification).unwrap_or(Value::Null);
    v["accepted"] = json!(t.accepted);
    v
}

fn mode_word(m: VerificationMode) -> &'static str {
    match m {
        VerificationMode::Strict => "strict",
        VerificationMode::Warn => "warn",
        VerificationMode::Disabled => "disabled",
    }
}

impl McpListing {
    /// `symbi tools list --format json` items.
    pub fn json_items(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.qualified, "kind": "mcp", "server": t.server, "tool": t.name,
                    "description": t.description, "mode": mode_word(t.mode),
                    "verification": status_json(t),
                })
            })
            .collect();
        for (s, e) in &self.errors {
            out.push(json!({"kind": "mcp", "server": s, "error": e}));
        }
        out
    }

    /// `symbi tools list` text lines.
    pub fn print_text(&self) {
        for t in &self.tools {
            let status = match &t.verification {
                VerificationStatus::Verified { pin, .. } => format!("verified ({pin})"),
                VerificationStatus::Invalid { code, .. } => format!("invalid: {code}"),
                other => other.word().to_string(),
            };
            let refused = if t.accepted { "" } else { " [refused]" };
            let desc = t
                .description
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            println!("{:<20} mcp      {}  [{status}{refused}]", t.qualified, desc);
        }
        for (s, e) in &self.errors {
            eprintln!("mcp server `{s}` unavailable: {e}");
        }
        if self.discovery_ignored > 0 {
            eprintln!(
                "{} server(s) from MCP_SERVER_DISCOVERY ignored because [mcp] discovery_enabled = false",
                self.discovery_ignored
            );
        }
    }
}

/// `symbi tools verify SERVER`.
pub fn verify(g: &Globals, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let mcp = manager(&loaded, cli_sink())?;
    let Some(spec) = mcp.settings().server(&a.server).cloned() else {
        let known: Vec<&str> = mcp
            .settings()
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        return Err(crate::exit::usage(format!(
            "no MCP server named `{}` (configured: {})",
            a.server,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let r = if a.repin {
            mcp.repin(&a.server).await
        } else {
            mcp.refresh(&a.server).await
        };
        mcp.shutdown().await;
        r
    });
    let tools = match result {
        Ok(t) => t,
        Err(e) => {
            match a.format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"server": a.server, "error": e.to_string()})
                    )?
                ),
                Format::Text => eprintln!("error: {e}"),
            }
            return Ok(ExitCode::from(1));
        }
    };
    let mode = spec.verification.unwrap_or(mcp.settings().verification);
    let failed =
        mode != VerificationMode::Disabled && tools.iter().any(|t| !t.verification.is_verified());
    match a.format {
        Format::Json => {
            let items: Vec<Value> = tools
                .iter()
                .map(|t| {
                    let mut v = status_json(t);
                    v["name"] = json!(t.name);
                    v["qualified"] = json!(t.qualified);
                    v
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "server": spec.name, "transport": spec.transport_name(), "target": spec.target(),
                    "mode": mode_word(mode), "publisher": spec.publisher.as_ref().map(|p| p.domain.clone()),
                    "ok": !failed, "tools": items,
                }))?
            );
        }
        Format::Text => {
            println!(
                "server {} ({} {}), mode {}, publisher {}",
                spec.name,
                spec.transport_name(),
                spec.target(),
                mode_word(mode),
                spec.publisher
                    .as_ref()
                    .map(|p| p.domain.as_str())
                    .unwrap_or("(none configured)")
            );
            let width = tools.iter().map(|t| t.name.len()).max().unwrap_or(0);
            for t in &tools {
                let detail = match &t.verification {
                    VerificationStatus::Verified {
                        fingerprint,
                        pin,
                        domain,
                        ..
                    } => format!("{fingerprint} of {domain} ({pin})"),
                    other => other.reason(),
                };
                let refused = if t.accepted { "" } else { "  [refused]" };
                println!(
                    "  {:<width$}  {:<9} {detail}{refused}",
                    t.name,
                    t.verification.word()
                );
            }
            let count = |w: &str| tools.iter().filter(|t| t.verification.word() == w).count();
            println!(
                "{} verified, {} invalid, {} unsigned, {} skipped",
                count("verified"),
                count("invalid"),
                count("unsigned"),
                count("skipped")
            );
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
