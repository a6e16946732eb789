//! `symbi mcp`: the runtime as an MCP server — stdio by default (the local operator's
//! trust boundary), streamable HTTP with `--listen ADDR:PORT` (bearer-authenticated like the
//! REST API). The container image's default command.
//!
//! The server is the same assembled system as `symbi up` (signed audit log, Cedar policy
//! engine with hot reload, bus, sandbox, command and MCP tools) with the programs of the
//! agents directories loaded: `execute_agent` runs agents through the engine (policy,
//! sandbox, audit), `evaluate_policy` asks the real policy engine, `query_audit` /
//! `verify_audit` read the signed log. On exit the audit log is sealed.

use super::Globals;
use anyhow::Context;
use async_trait::async_trait;
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use symbi_mcp_server::{AgentExecutor, AuditService, McpServerContext};
use symbi_runtime::engine::assembly::{AssemblyOptions, Extensions, assemble};
use symbi_runtime::engine::{Engine, ExecuteOptions};

/// `symbi mcp`.
#[derive(Args, Debug)]
pub struct McpArgs {
    /// Serve streamable HTTP at http://ADDR:PORT/mcp instead of stdio. Needs an API token
    /// or key store (`SYMBI_API_TOKEN`, `[api] token_file`, `[api] key_store`).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
}

/// `execute_agent` over the engine: the caller is the initiator (an `Operator` on stdio, a
/// `Client` over HTTP), so the run is decided (`execute_agent`) and audited like any other.
struct EngineExecutor {
    engine: Engine,
    http: bool,
}

#[async_trait]
impl AgentExecutor for EngineExecutor {
    async fn execute(&self, agent: &str, input: Value, caller: &str) -> Result<Value, Value> {
        let id = match agent.parse::<symbi_types::AgentId>() {
            Ok(id) => id,
            Err(_) => self
                .engine
                .agent_named(agent)
                .ok_or_else(|| json!({"kind": "UnknownAgent", "message": format!("no agent named `{agent}` is registered")}))?,
        };
        let initiator = if self.http {
            symbi_policy::requests::client_principal(format!("mcp:{caller}"), Vec::<String>::new())
        } else {
            symbi_policy::requests::operator_principal(
                format!("mcp:{caller}"),
                Vec::<String>::new(),
            )
        };
        let opts = ExecuteOptions {
            trigger_kind: Some("mcp".into()),
            initiator: Some(initiator),
            ..ExecuteOptions::default()
        };
        self.engine
            .run(id, input, opts)
            .await
            .map(|r| r.result)
            .map_err(|e| json!({"kind": e.kind, "message": e.message, "execution_id": e.execution_id.to_string()}))
    }
}

/// `query_audit` / `verify_audit` over the signed log's files (read-only views; the
/// writer keeps appending).
struct LogService {
    dir: PathBuf,
    provider: Arc<dyn symbi_crypto::CryptoProvider>,
}

#[async_trait]
impl AuditService for LogService {
    async fn query(&self, filter: Value) -> Result<Value, String> {
        let (dir, p) = (self.dir.clone(), self.provider.clone());
        tokio::task::spawn_blocking(move || {
            let time = |k: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
                filter[k]
                    .as_str()
                    .map(|s| {
                        chrono::DateTime::parse_from_rfc3339(s)
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .map_err(|e| format!("{k}: {e}"))
                    })
                    .transpose()
            };
            let q = symbi_audit::Query {
                agent: None,
                event_type: filter["event_type"].as_str().map(str::to_string),
                since: time("since")?,
                until: time("until")?,
                limit: None,
                newest_first: true,
            };
            let limit = filter["limit"]
                .as_u64()
                .map_or(100, |l| l.min(10_000) as usize);
            let reader = symbi_audit::LogReader::open(&dir, p).map_err(|e| e.to_string())?;
            let events: Vec<Value> =
                super::audit::query_events(&reader, q, filter["agent"].as_str(), Some(limit))
                    .map_err(|e| e.to_string())?
                    .iter()
                    .map(|e| e.to_json())
                    .collect();
            Ok(json!({ "events": events }))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    async fn verify(&self) -> Result<Value, String> {
        let (dir, p) = (self.dir.clone(), self.provider.clone());
        tokio::task::spawn_blocking(move || {
            let rep = symbi_audit::verify::verify_log(
                &dir,
                &*p,
                &symbi_audit::verify::VerifyOptions::default(),
            )
            .map_err(|e| e.to_string())?;
            serde_json::to_value(&rep).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

pub fn run(g: &Globals, a: McpArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let cfg = Arc::new(loaded.config.clone());
    let data_dir = loaded.data_dir();
    let listen: Option<std::net::SocketAddr> = match &a.listen {
        None => None,
        Some(l) => Some(
            l.parse()
                .map_err(|_| crate::exit::usage(format!("--listen `{l}` is not ADDR:PORT")))?,
        ),
    };
    let authority = match listen {
        None => None,
        Some(_) => Some(Arc::new(
            symbi_api::auth::Authority::new(
                cfg.api.token.as_deref(),
                cfg.api.token_file.as_deref(),
                cfg.api.key_store.as_deref(),
            )
            .map_err(|e| crate::exit::usage(e.to_string()))?,
        )),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.runtime.scheduler_threads.max(2))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let system = assemble(
            cfg.clone(),
            data_dir.clone(),
            AssemblyOptions {
                bus: true,
                watch_policies: true,
            },
            Extensions::default(),
        )
        .await
        .context("symbi mcp: a required component could not start")?;
        super::up::load_agents(&system.engine, &super::up::agent_dirs(&cfg)).await;
        let dsl_mode = match cfg.runtime.mode {
            symbi_config::RuntimeMode::Development => symbi_dsl::Mode::Development,
            _ => symbi_dsl::Mode::Production,
        };
        let audit: Option<Arc<dyn AuditService>> = match &system.audit {
            Some(_) => Some(Arc::new(LogService {
                dir: symbi_audit::AuditOptions::from_config(&data_dir, &cfg.audit).dir,
                provider: symbi_crypto::provider(cfg.security.crypto_provider.as_str())
                    .map_err(|e| anyhow::anyhow!(e.to_string()))?,
            })),
            None => None,
        };
        let ctx = McpServerContext {
            runtime: Arc::new(system.engine.runtime().clone()),
            pdp: system.engine.pdp().clone(),
            sink: system.engine.sink().clone(),
            executor: Some(Arc::new(EngineExecutor {
                engine: system.engine.clone(),
                http: listen.is_some(),
            })),
            audit,
            dsl_mode,
        };
        let served = match (listen, authority) {
            (Some(addr), Some(authority)) => {
                let shutdown = tokio_util::sync::CancellationToken::new();
                let s2 = shutdown.clone();
                tokio::spawn(async move {
                    let _ = tokio::signal::ctrl_c().await;
                    s2.cancel();
                });
                symbi_mcp_server::serve_http(ctx, authority, addr, shutdown).await
            }
            _ => symbi_mcp_server::serve_stdio(ctx).await,
        };
        // Drain and seal the audit log whatever ended the session.
        system
            .shutdown(Duration::from_secs(
                cfg.runtime.shutdown_grace.0.as_secs().max(1),
            ))
            .await;
        served.map_err(anyhow::Error::from)
    })?;
    Ok(ExitCode::SUCCESS)
}
