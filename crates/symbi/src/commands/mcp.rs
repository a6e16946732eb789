//! `symbi mcp`: the runtime as an MCP server — stdio by default (the local operator's
//! trust boundary), streamable HTTP with `--listen ADDR:PORT` (bearer-authenticated like the
//! REST API). The container image's default command.

use super::Globals;
use anyhow::Context;
use clap::Args;
use std::process::ExitCode;
use std::sync::Arc;
use symbi_mcp_server::McpServerContext;
use symbi_types::event::NullSink;
use symbi_types::{EventSink, MemoryEventLog};

/// `symbi mcp`.
#[derive(Args, Debug)]
pub struct McpArgs {
    /// Serve streamable HTTP at http://ADDR:PORT/mcp instead of stdio. Needs an API token
    /// or key store (`SYMBI_API_TOKEN`, `[api] token_file`, `[api] key_store`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
}

pub fn run(g: &Globals, a: McpArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let cfg = &loaded.config;
    // The audit log arrives with the audit crate; until the assembly passes it here, the
    // runtime's own in-memory sink is used, as in `symbi up`.
    let sink: Arc<dyn EventSink> =
        if cfg.security.audit_enabled { Arc::new(MemoryEventLog::default()) } else { Arc::new(NullSink) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting the async runtime")?;
    let _guard = rt.enter();
    let runtime = Arc::new(symbi_runtime::Runtime::new(cfg, sink.clone())?);
    let dsl_mode = match cfg.runtime.mode {
        symbi_config::RuntimeMode::Development => symbi_dsl::Mode::Development,
        _ => symbi_dsl::Mode::Production,
    };
    let ctx = McpServerContext {
        runtime,
        // Fail closed until the policy engine is assembled in: every request is denied.
        pdp: Arc::new(symbi_types::policy::DenyAll),
        sink,
        executor: None,
        audit: None,
        dsl_mode,
    };
    match a.listen {
        None => {
            rt.block_on(symbi_mcp_server::serve_stdio(ctx))?;
        }
        Some(l) => {
            let addr: std::net::SocketAddr =
                l.parse().map_err(|_| crate::exit::usage(format!("--listen `{l}` is not ADDR:PORT")))?;
            let authority = symbi_api::auth::Authority::new(
                cfg.api.token.as_deref(),
                cfg.api.token_file.as_deref(),
                cfg.api.key_store.as_deref(),
            )
            .map_err(|e| crate::exit::usage(e.to_string()))?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            let s2 = shutdown.clone();
            rt.spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                s2.cancel();
            });
            rt.block_on(symbi_mcp_server::serve_http(ctx, Arc::new(authority), addr, shutdown))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
