//! The symbi runtime as an MCP server (`symbi mcp`), on the official Rust SDK (`rmcp`).
//!
//! Tools:
//!
//! | tool | what | who may call it |
//! |---|---|---|
//! | `list_agents` | the registered agents `{id, name, state}` | any identity (scoped keys see their agents only) |
//! | `get_agent_status` | one agent's status (by `id` or `name`) | an identity whose scope holds the agent |
//! | `check_dsl` | parse and statically check DSL source: `{ok, diagnostics}` (file, line, column, severity, code, message) | any identity |
//! | `evaluate_policy` | decide a `PolicyRequest` with the runtime's decision point: `{decision, reasons, conditions}` | admin |
//! | `execute_agent` | run an agent with a JSON input (when the runtime assembly provides an [`AgentExecutor`]) | an identity whose scope holds the agent |
//! | `query_audit`, `verify_audit` | query / verify the audit log (when an [`AuditService`] is provided) | admin |
//!
//! Tools whose back-end the embedding runtime did not provide are not listed (and calling
//! them is an error naming what is missing) — nothing answers as if it had worked.
//!
//! ## Authentication and authorization
//!
//! * **Streamable HTTP** (`symbi mcp --listen ADDR:PORT`): every request needs `Authorization:
//!   Bearer …`, checked by the same [`symbi_api::auth::Authority`] as the REST API (static
//!   token or key store; nothing configured ⇒ every request is refused). A refused request
//!   gets HTTP 401 and an `auth_failure` audit event (never the token).
//! * **stdio** (`symbi mcp`, the default): the client is the process that started us, on
//!   this host, with our user's rights — the local operator's trust boundary. It acts as the
//!   admin identity `stdio-operator`; nothing is reachable over the network.
//!
//! Every tool call is an audit event of type [`MCP_CALL_EVENT`] with the tool, the
//! identity, the outcome and the duration, recorded before the result is returned (if the
//! audit trail refuses it, the call fails: fail closed).

use async_trait::async_trait;
use rmcp::ErrorData;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use symbi_api::auth::{Authority, Identity};
use symbi_types::{EventDraft, EventSink, PolicyDecisionPoint, PolicyRequest};

/// Audit event type of a call to one of our tools: `{tool, identity, transport, outcome,
/// error?, duration_ms}`.
pub const MCP_CALL_EVENT: &str = "mcp_call";

/// Runs agents for `execute_agent`; implemented by the runtime assembly (interpreter +
/// action gateway) that `symbi up`/`symbi run` build.
#[async_trait]
pub trait AgentExecutor: Send + Sync {
    /// Executes the agent named or identified by `agent` with `input`; returns its JSON
    /// result or the error's `{kind, message}`.
    async fn execute(&self, agent: &str, input: Value, caller: &str) -> Result<Value, Value>;
}

/// The audit log's query and verification, for `query_audit` and `verify_audit`;
/// implemented over the audit crate by the runtime assembly.
#[async_trait]
pub trait AuditService: Send + Sync {
    /// Events matching `filter` (`{agent?, event_type?, since?, until?, limit?}`).
    async fn query(&self, filter: Value) -> Result<Value, String>;
    /// Verifies the log's signatures, chain and checkpoints: a report with `ok`.
    async fn verify(&self) -> Result<Value, String>;
}

/// Which transport a handler serves (decides the identity of callers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The local operator's process.
    Stdio,
    /// Bearer-authenticated HTTP.
    Http,
}

/// What the server exposes.
#[derive(Clone)]
pub struct McpServerContext {
    /// The runtime (agents, status).
    pub runtime: Arc<symbi_runtime::Runtime>,
    /// The decision point `evaluate_policy` asks.
    pub pdp: Arc<dyn PolicyDecisionPoint>,
    /// Where every call is recorded.
    pub sink: Arc<dyn EventSink>,
    /// `execute_agent`, when available.
    pub executor: Option<Arc<dyn AgentExecutor>>,
    /// `query_audit` / `verify_audit`, when available.
    pub audit: Option<Arc<dyn AuditService>>,
    /// Check mode for `check_dsl`.
    pub dsl_mode: symbi_dsl::Mode,
}

/// The MCP handler: one per connection/session (cheap clone).
#[derive(Clone)]
pub struct SymbiMcpServer {
    ctx: McpServerContext,
    transport: Transport,
}

fn schema(v: Value) -> Arc<Map<String, Value>> {
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

impl SymbiMcpServer {
    /// A handler for `transport`.
    pub fn new(ctx: McpServerContext, transport: Transport) -> Self {
        Self { ctx, transport }
    }

    /// The tools this server offers (those whose back-end is present).
    pub fn tools(&self) -> Vec<Tool> {
        let mut t = vec![
            Tool::new(
                "list_agents",
                "List the registered agents: id, name and lifecycle state.",
                schema(json!({"type": "object", "properties": {}})),
            ),
            Tool::new(
                "get_agent_status",
                "Status of one agent (state, last activity, resource use, executions, failures), by id or by name.",
                schema(
                    json!({"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}),
                ),
            ),
            Tool::new(
                "check_dsl",
                "Parse and statically check symbi DSL source; returns ok and the diagnostics (file, line, column, severity, code, message).",
                schema(
                    json!({"type": "object", "properties": {"source": {"type": "string"}, "file": {"type": "string"}}, "required": ["source"]}),
                ),
            ),
            Tool::new(
                "evaluate_policy",
                "Decide a policy request (principal, category, name, subject, args, named, context) with the runtime's policy engine: decision, reasons, conditions.",
                schema(
                    json!({"type": "object", "properties": {"request": {"type": "object"}}, "required": ["request"]}),
                ),
            ),
        ];
        if self.ctx.executor.is_some() {
            t.push(Tool::new(
                "execute_agent",
                "Execute an agent (by id or name) with a JSON input and return its result.",
                schema(json!({"type": "object", "properties": {"agent": {"type": "string"}, "input": {}}, "required": ["agent"]})),
            ));
        }
        if self.ctx.audit.is_some() {
            t.push(Tool::new(
                "query_audit",
                "Query the audit log by agent, event type and time range.",
                schema(json!({"type": "object", "properties": {"agent": {"type": "string"}, "event_type": {"type": "string"},
                    "since": {"type": "string"}, "until": {"type": "string"}, "limit": {"type": "integer"}}})),
            ));
            t.push(Tool::new(
                "verify_audit",
                "Verify the audit log's signatures, hash chain and checkpoints.",
                schema(json!({"type": "object", "properties": {}})),
            ));
        }
        t
    }

    fn identity(&self, context: &RequestContext<RoleServer>) -> Result<Identity, String> {
        match self.transport {
            Transport::Stdio => Ok(Identity {
                key_id: Some("stdio-operator".into()),
                scope: None,
            }),
            Transport::Http => context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<Identity>().cloned())
                .ok_or_else(|| "unauthenticated request".to_string()),
        }
    }

    fn find_agent(
        &self,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<symbi_types::AgentId, String> {
        if let Some(id) = id {
            let u = id
                .parse::<uuid::Uuid>()
                .map_err(|e| format!("`{id}` is not an agent id: {e}"))?;
            return Ok(symbi_types::AgentId(u));
        }
        let name = name.ok_or("give `id` or `name`")?;
        match self.ctx.runtime.find_by_name(name).as_slice() {
            [one] => Ok(*one),
            [] => Err(format!("no agent named `{name}`")),
            many => Err(format!(
                "{} agents are named `{name}`; give the id",
                many.len()
            )),
        }
    }

    /// Runs one tool for `who`; `Err` is the tool's error message (`isError`).
    pub async fn run_tool(
        &self,
        name: &str,
        args: &Map<String, Value>,
        who: &Identity,
    ) -> Result<Value, String> {
        let s = |k: &str| args.get(k).and_then(Value::as_str);
        match name {
            "list_agents" => {
                let list: Vec<Value> = self
                    .ctx
                    .runtime
                    .list()
                    .into_iter()
                    .filter(|a| who.may_access(a.id.as_uuid()))
                    .map(|a| json!({"id": a.id.to_string(), "name": a.name, "state": a.state}))
                    .collect();
                Ok(json!({ "agents": list }))
            }
            "get_agent_status" => {
                let id = self.find_agent(s("id"), s("name"))?;
                if !who.may_access(id.as_uuid()) {
                    return Err(format!(
                        "identity `{}` may not access agent {id}",
                        who.name()
                    ));
                }
                let st = self
                    .ctx
                    .runtime
                    .status(id)
                    .ok_or_else(|| format!("no agent {id}"))?;
                serde_json::to_value(st).map_err(|e| e.to_string())
            }
            "check_dsl" => {
                let source = s("source").ok_or("`source` (the DSL text) is required")?;
                let file = s("file").unwrap_or("<mcp>");
                let parsed = symbi_dsl::parse_bytes(source.as_bytes(), file);
                let mut diags = parsed.diagnostics.clone();
                if !parsed.has_errors() {
                    let opts = symbi_dsl::CheckOptions {
                        mode: self.ctx.dsl_mode,
                        ..Default::default()
                    };
                    diags.extend(symbi_dsl::check(&parsed, &opts));
                }
                let ok = !diags
                    .iter()
                    .any(symbi_dsl::diagnostic::Diagnostic::is_error);
                let list: Vec<Value> = diags.iter().map(|d| parsed.source.to_json(d)).collect();
                Ok(json!({"ok": ok, "diagnostics": list}))
            }
            "evaluate_policy" => {
                if !who.is_admin() {
                    return Err("evaluate_policy needs an admin identity".into());
                }
                let req: PolicyRequest =
                    serde_json::from_value(args.get("request").cloned().unwrap_or(Value::Null))
                        .map_err(|e| format!("`request` is not a policy request: {e}"))?;
                let d = self.ctx.pdp.decide(&req, None);
                let reasons = match &d {
                    symbi_types::Decision::Allow { reasons }
                    | symbi_types::Decision::Deny { reasons }
                    | symbi_types::Decision::AllowWithConditions { reasons, .. } => reasons.clone(),
                };
                Ok(
                    json!({"decision": d.outcome(), "reasons": reasons, "conditions": d.conditions()}),
                )
            }
            "execute_agent" => {
                let ex = self.ctx.executor.as_ref().ok_or("execute_agent is not available: this server was started without an agent executor")?;
                let agent = s("agent").ok_or("`agent` is required")?;
                let id =
                    self.find_agent(agent.parse::<uuid::Uuid>().ok().map(|_| agent), Some(agent))?;
                if !who.may_access(id.as_uuid()) {
                    return Err(format!(
                        "identity `{}` may not access agent {id}",
                        who.name()
                    ));
                }
                ex.execute(
                    &id.to_string(),
                    args.get("input").cloned().unwrap_or(Value::Null),
                    &who.name(),
                )
                .await
                .map_err(|e| e.to_string())
            }
            "query_audit" | "verify_audit" => {
                if !who.is_admin() {
                    return Err(format!("{name} needs an admin identity"));
                }
                let a = self.ctx.audit.as_ref().ok_or_else(|| {
                    format!(
                        "{name} is not available: this server was started without the audit log"
                    )
                })?;
                if name == "query_audit" {
                    a.query(Value::Object(args.clone())).await
                } else {
                    a.verify().await
                }
            }
            other => Err(format!("no tool `{other}`")),
        }
    }

    async fn record(
        &self,
        tool: &str,
        who: &str,
        outcome: &Result<Value, String>,
        started: Instant,
    ) -> Result<(), ErrorData> {
        let mut d = json!({
            "tool": tool, "identity": who,
            "transport": if self.transport == Transport::Stdio { "stdio" } else { "http" },
            "outcome": if outcome.is_ok() { "ok" } else { "error" },
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        if let Err(e) = outcome {
            d["error"] = json!(e);
        }
        self.ctx
            .sink
            .record(EventDraft::new(MCP_CALL_EVENT, d))
            .await
            .map(|_| ())
            .map_err(|e| {
                ErrorData::internal_error(
                    format!("audit trail unavailable, result withheld: {}", e.0),
                    None,
                )
            })
    }
}

impl ServerHandler for SymbiMcpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("symbi", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "The symbi agent runtime: list and inspect agents, check DSL, evaluate policy.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // The SDK constructor sets `resultType: "complete"`, which clients of protocol
        // 2026-07-28 require (the SDK strips it for older peers).
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let who = self
            .identity(&context)
            .map_err(|e| ErrorData::invalid_request(e, None))?;
        let name = request.name.to_string();
        if !self.tools().iter().any(|t| t.name == name) {
            let r = Err(format!("no tool `{name}`"));
            self.record(&name, &who.name(), &r, started).await?;
            return Err(ErrorData::invalid_params(format!("no tool `{name}`"), None));
        }
        let args = request.arguments.unwrap_or_default();
        let out = self.run_tool(&name, &args, &who).await;
        self.record(&name, &who.name(), &out, started).await?;
        // SDK constructors: they set `resultType` (see `list_tools`).
        let r = match out {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => CallToolResult::error(vec![rmcp::model::ContentBlock::text(e)]),
        };
        Ok(r.into())
    }
}

/// Errors of serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// Address.
        addr: String,
        /// OS error.
        message: String,
    },
    /// Refusing an unauthenticated network listener.
    #[error(
        "refusing to serve MCP on {0} without an API token or key store (set SYMBI_API_TOKEN, [api] token_file or a key store)"
    )]
    NoAuthority(String),
    /// The MCP session failed.
    #[error("MCP server: {0}")]
    Mcp(String),
}

/// Serves over stdin/stdout until the client disconnects.
pub async fn serve_stdio(ctx: McpServerContext) -> Result<(), ServeError> {
    use rmcp::ServiceExt;
    let server = SymbiMcpServer::new(ctx, Transport::Stdio);
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Mcp(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError::Mcp(e.to_string()))?;
    Ok(())
}

/// The axum router of the streamable-HTTP endpoint `/mcp`, behind bearer authentication.
pub fn http_router(
    ctx: McpServerContext,
    authority: Arc<Authority>,
    allowed_hosts: Vec<String>,
) -> axum::Router {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let sink = ctx.sink.clone();
    let server = SymbiMcpServer::new(ctx, Transport::Http);
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(allowed_hosts);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn(move |mut req: axum::extract::Request, next: axum::middleware::Next| {
        let authority = authority.clone();
        let sink = sink.clone();
        async move {
            let header = req.headers().get(http::header::AUTHORIZATION).and_then(|h| h.to_str().ok());
            match authority.authenticate(header) {
                Ok(id) => {
                    req.extensions_mut().insert(id);
                    next.run(req).await
                }
                Err(reason) => {
                    let _ = sink
                        .record(EventDraft::new(
                            symbi_types::event::types::AUTH_FAILURE,
                            json!({"path": req.uri().path(), "reason": reason.to_string(), "interface": "mcp"}),
                        ))
                        .await;
                    axum::response::IntoResponse::into_response((
                        http::StatusCode::UNAUTHORIZED,
                        [(http::header::WWW_AUTHENTICATE, "Bearer")],
                        "unauthorized",
                    ))
                }
            }
        }
    }))
}

/// Serves streamable HTTP on `addr` until `shutdown` fires.
pub async fn serve_http(
    ctx: McpServerContext,
    authority: Arc<Authority>,
    addr: std::net::SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), ServeError> {
    if !authority.is_configured() {
        return Err(ServeError::NoAuthority(addr.to_string()));
    }
    let hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".into(),
        "::1".into(),
        addr.ip().to_string(),
        addr.to_string(),
        format!("localhost:{}", addr.port()),
    ];
    let router = http_router(ctx, authority, hosts);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
    tracing::info!(%addr, "MCP server listening (streamable HTTP at /mcp)");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|e| ServeError::Mcp(e.to_string()))
}
