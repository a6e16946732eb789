//! Start-up assembly: from the configuration to a running [`Engine`] with every available
//! component — the signed audit log, the policy engine, the bus, the sandbox with its
//! command tools, and the in-process services. What cannot start fails here with an
//! error naming the component (fail closed); what is merely absent (no Docker daemon) is
//! reported by the component when an action needs it.

use super::{Engine, EngineError, EngineParts};
use crate::gateway::command_tools::CommandTools;
use crate::gateway::http::HttpExecutor;
use crate::gateway::local::{FilesExecutor, VaultExecutor};
use crate::gateway::{Component, Executor, ToolProvider};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use symbi_config::Config;
use symbi_types::event::{NullSink, types};
use symbi_types::{EventDraft, EventSink, PolicyDecisionPoint};

/// A component failed to start.
#[derive(Debug, thiserror::Error)]
pub enum AssemblyError {
    /// The data directory is unusable.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// Path.
        path: String,
        /// Error.
        message: String,
    },
    /// Crypto provider.
    #[error("crypto provider: {0}")]
    Crypto(String),
    /// The audit log could not be opened (audit is fail-closed: nothing runs without it).
    #[error("audit log: {0}")]
    Audit(String),
    /// The policy set is invalid or unreadable.
    #[error("policy engine: {0}")]
    Policy(String),
    /// The bus could not start.
    #[error("bus: {0}")]
    Bus(String),
    /// Tool manifests are invalid.
    #[error("tool manifests:\n{0}")]
    Tools(String),
    /// Sandbox configuration.
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// Engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Extra components supplied by the caller failed.
    #[error("{0}")]
    Other(String),
    /// The MCP settings are invalid or the SchemaPin key store cannot be opened.
    #[error("mcp: {0}")]
    Mcp(String),
}

/// Which optional parts to start.
#[derive(Clone, Debug)]
pub struct AssemblyOptions {
    /// Start the communication bus.
    pub bus: bool,
    /// Watch the policy directory for changes (hot reload).
    pub watch_policies: bool,
}

impl Default for AssemblyOptions {
    fn default() -> Self {
        Self {
            bus: true,
            watch_policies: true,
        }
    }
}

/// Tool providers and executors that come from components the runtime crate does not
/// build itself (MCP servers, the context manager, the model provider).
#[derive(Default)]
pub struct Extensions {
    /// Tool providers asked after the command tools.
    pub tools: Vec<Arc<dyn ToolProvider>>,
    /// Executors of further components.
    pub executors: Vec<(Component, Arc<dyn Executor>)>,
    /// Wraps the event sink before any component receives it (the API's metrics count
    /// every event this way). The wrapper must forward every event unchanged.
    pub sink_layer: Option<SinkLayer>,
}

/// A function that wraps the assembled event sink (see [`Extensions::sink_layer`]).
pub type SinkLayer = Box<dyn FnOnce(Arc<dyn EventSink>) -> Arc<dyn EventSink> + Send>;

/// The running system.
pub struct Assembled {
    /// The engine.
    pub engine: Engine,
    /// The audit log, when audit is enabled.
    pub audit: Option<Arc<symbi_audit::AuditLog>>,
    /// The policy engine.
    pub policy: Arc<symbi_policy::PolicyEngine>,
    /// The sandbox (containers are started lazily; Docker may be absent).
    pub sandbox: Arc<symbi_sandbox::Sandbox>,
    /// The command tools.
    pub tools: Arc<symbi_sandbox::ToolRegistry>,
    /// The MCP servers, when `[mcp]` or `MCP_SERVER_DISCOVERY` declares any (their tools are
    /// gateway tools after the command tools).
    pub mcp: Option<symbi_mcp::McpManager>,
    /// Memory, memory stores, knowledge and the model provider (the executor the gateway
    /// routes those actions to).
    pub context: Arc<crate::gateway::context_executors::ContextExecutor>,
}

/// Assembles the system described by `config` under `data_dir`.
pub async fn assemble(
    config: Arc<Config>,
    data_dir: PathBuf,
    opts: AssemblyOptions,
    ext: Extensions,
) -> Result<Assembled, AssemblyError> {
    std::fs::create_dir_all(&data_dir).map_err(|e| AssemblyError::DataDir {
        path: data_dir.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = symbi_crypto::provider(config.security.crypto_provider.as_str())
        .map_err(|e| AssemblyError::Crypto(e.to_string()))?;

    let (audit, sink): (Option<Arc<symbi_audit::AuditLog>>, Arc<dyn EventSink>) = if config
        .security
        .audit_enabled
    {
        let aopts = symbi_audit::AuditOptions::from_config(&data_dir, &config.audit);
        let p = provider.clone();
        let log = tokio::task::spawn_blocking(move || symbi_audit::AuditLog::open(aopts, p))
            .await
            .map_err(|e| AssemblyError::Audit(e.to_string()))?
            .map_err(|e| AssemblyError::Audit(e.to_string()))?;
        (Some(log.clone()), log)
    } else {
        tracing::warn!(
            "audit is disabled by configuration ([security] audit_enabled = false): events are discarded"
        );
        (None, Arc::new(NullSink))
    };
    let sink = match ext.sink_layer {
        Some(layer) => layer(sink),
        None => sink,
    };
    sink.record(EventDraft::new(
        types::RUNTIME,
        json!({ "event": "start", "version": env!("CARGO_PKG_VERSION") }),
    ))
    .await
    .map_err(|e| AssemblyError::Audit(e.to_string()))?;

    let mut pcfg = (*config).clone();
    pcfg.policy.watch = pcfg.policy.watch && opts.watch_policies;
    let policy = symbi_policy::PolicyEngine::from_config(&pcfg, Some(sink.clone()))
        .map_err(|e| AssemblyError::Policy(e.to_string()))?;
    let pdp: Arc<dyn PolicyDecisionPoint> = policy.clone();

    let bus = if opts.bus {
        Some(
            symbi_bus::Bus::from_config(&config, &data_dir, pdp.clone(), sink.clone())
                .await
                .map_err(|e| AssemblyError::Bus(e.to_string()))?,
        )
    } else {
        None
    };

    let sandbox = Arc::new(
        symbi_sandbox::Sandbox::new(symbi_sandbox::SandboxConfig::from_config(
            &config, &data_dir,
        ))
        .map_err(|e| AssemblyError::Sandbox(e.to_string()))?,
    );
    let tools_dir = config.under_data_dir(config.sandbox.tools_dir.as_deref(), "tools");
    let tools = Arc::new(
        symbi_sandbox::ToolRegistry::load(&tools_dir)
            .map_err(|e| AssemblyError::Tools(e.to_string()))?,
    );

    let mut executors: Vec<(Component, Arc<dyn Executor>)> = vec![
        (
            Component::Network,
            Arc::new(
                HttpExecutor::new(Duration::from_secs(30))
                    .map_err(|e| AssemblyError::Other(e.to_string()))?,
            ),
        ),
        (
            Component::Files,
            Arc::new(FilesExecutor::new(data_dir.join("workspaces"))),
        ),
        (
            Component::Vault,
            Arc::new(VaultExecutor::new(data_dir.join("vault"))),
        ),
    ];
    // Context (memory, memory stores, knowledge, RAG) and the model provider.
    let context = Arc::new(crate::gateway::context_executors::ContextExecutor::new(
        symbi_context::ContextManager::open_sections(
            &data_dir,
            &config.context,
            &config.llm,
            pdp.clone(),
            sink.clone(),
        )
        .await
        .map_err(|e| AssemblyError::Other(format!("context manager: {e}")))?,
        pdp.clone(),
        sink.clone(),
    ));
    executors.push((Component::Memory, context.clone()));
    executors.push((Component::Knowledge, context.clone()));
    if context.has_llm() {
        executors.push((Component::Llm, context.clone()));
    }
    executors.extend(ext.executors);
    let mut tool_providers: Vec<Arc<dyn ToolProvider>> = vec![Arc::new(CommandTools::new(
        sandbox.clone(),
        tools.clone(),
        None,
    ))];
    tool_providers.extend(ext.tools);
    let mcp = crate::gateway::mcp_tools::start_from_config(&config, &data_dir, sink.clone())
        .await
        .map_err(|e| AssemblyError::Mcp(e.to_string()))?;
    if let Some(m) = &mcp {
        tool_providers.push(Arc::new(crate::gateway::mcp_tools::McpToolProvider::new(
            m.clone(),
        )));
    }

    let engine = Engine::new(EngineParts {
        config: config.clone(),
        data_dir,
        sink,
        pdp,
        bus,
        tools: tool_providers,
        executors,
    })?;
    let weak = Arc::downgrade(&engine.inner);
    context.bind(
        Arc::new(move |agent, name| {
            let program = weak.upgrade()?.engine().program_of(agent).ok()?;
            let item = program.program.memories().iter().find(|m| m.name == name)?;
            crate::gateway::context_executors::store_spec(item).ok()
        }),
        Arc::downgrade(engine.gateway()),
    );
    Ok(Assembled {
        engine,
        audit,
        policy,
        sandbox,
        tools,
        mcp,
        context,
    })
}

impl Assembled {
    /// Graceful stop: drain running work within `grace`, record the stop, seal the audit log
    /// with a final checkpoint.
    pub async fn shutdown(&self, grace: Duration) -> crate::ShutdownReport {
        let report = self.engine.shutdown(grace).await;
        if let Some(m) = &self.mcp {
            m.shutdown().await;
        }
        let _ = self
            .engine
            .sink()
            .record(EventDraft::new(types::RUNTIME, json!({ "event": "stop" })))
            .await;
        if let Some(log) = &self.audit {
            if let Err(e) = log.close_async().await {
                tracing::error!(error = %e, "could not seal the audit log");
            }
        }
        report
    }
}
