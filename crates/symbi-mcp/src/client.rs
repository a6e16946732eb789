//! One live session with one MCP server, on the official Rust SDK (`rmcp`).
//!
//! A [`Connection`] owns the SDK's running client service plus a connection slot (a permit
//! of the `max_concurrent_connections` semaphore). Requests go through
//! [`Connection::request`], which adds what the SDK's one-line helpers do not: a timeout
//! that cancels the request on the server, caller cancellation, progress notifications
//! routed to the caller, and a guard that sends `notifications/cancelled` when the caller
//! drops the request half-way (for example when the gateway's own timeout fires).

use crate::error::McpError;
use crate::settings::{ServerSpec, Transport};
use parking_lot::Mutex;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientCapabilities,
    ClientConfig, ClientRequest, GetPromptRequest, GetPromptRequestParams, Implementation,
    ListPromptsRequest, ListResourcesRequest, ListToolsRequest, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ReadResourceRequest, ReadResourceRequestParams,
    RequestId, ServerResult,
};
use rmcp::service::{
    NotificationContext, Peer, PeerRequestOptions, RoleClient, RunningService, ServiceError,
};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;

/// A progress notification of a running request.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Progress {
    /// Progress so far.
    pub progress: f64,
    /// Total, if known.
    pub total: Option<f64>,
    /// Message, if any.
    pub message: Option<String>,
}

/// Per-request options.
#[derive(Clone, Debug, Default)]
pub struct RequestOptions {
    /// Give up (and cancel on the server) after this long.
    pub timeout: Option<Duration>,
    /// Cancel (on the server too) when this token fires.
    pub cancel: Option<CancellationToken>,
    /// Where progress notifications of this request go.
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
}

/// State shared between a connection and its SDK handler.
#[derive(Default)]
pub(crate) struct HandlerState {
    progress: Mutex<HashMap<ProgressToken, mpsc::UnboundedSender<Progress>>>,
    /// Set by `notifications/tools/list_changed`: the catalogue re-lists and re-verifies
    /// before the next call.
    pub(crate) tools_changed: AtomicBool,
}

/// The SDK-facing client handler: answers the server's requests (ping, roots: none) and
/// routes its notifications.
#[derive(Clone)]
pub(crate) struct Handler {
    state: Arc<HandlerState>,
    server: Arc<str>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("symbi", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let tx = self
            .state
            .progress
            .lock()
            .get(&params.progress_token)
            .cloned();
        if let Some(tx) = tx {
            let _ = tx.send(Progress {
                progress: params.progress,
                total: params.total,
                message: params.message,
            });
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::info!(server = %self.server, "MCP server changed its tool list; re-verifying before the next call");
        self.state.tools_changed.store(true, Ordering::SeqCst);
    }
}

/// Removes a progress route when the request ends.
struct ProgressRoute {
    state: Arc<HandlerState>,
    token: ProgressToken,
}

impl Drop for ProgressRoute {
    fn drop(&mut self) {
        // The SDK dispatches each notification on its own task, so a notification the
        // server sent just before the result can be delivered just after it: keep the
        // route a little longer so it still reaches the caller's channel.
        let token = self.token.clone();
        let state = self.state.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    state.progress.lock().remove(&token);
                });
            }
            Err(_) => {
                state.progress.lock().remove(&token);
            }
        }
    }
}

/// Sends `notifications/cancelled` for a request whose caller went away before the answer.
struct CancelOnDrop {
    peer: Peer<RoleClient>,
    id: Option<RequestId>,
}

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.id = None;
    }
    async fn fire(&mut self, reason: &str) {
        if let Some(id) = self.id.take() {
            let _ = self
                .peer
                .notify_cancelled(CancelledNotificationParam::new(
                    Some(id),
                    Some(reason.into()),
                ))
                .await;
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let peer = self.peer.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = peer
                        .notify_cancelled(CancelledNotificationParam::new(
                            Some(id),
                            Some("the caller stopped waiting".into()),
                        ))
                        .await;
                });
            }
        }
    }
}

/// Environment variables a stdio server inherits from us; everything else it gets only
/// from its `env` table (the runtime's own secrets never leak into tool processes).
pub const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"];

/// Builds the command of a stdio server (before sandboxing).
pub fn stdio_command(spec: &ServerSpec) -> Option<tokio::process::Command> {
    let Transport::Stdio { command, args, env } = &spec.transport else {
        return None;
    };
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).env_clear();
    for k in INHERITED_ENV {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.envs(env);
    Some(cmd)
}

/// Starts stdio servers that must run in a sandbox tier. The runtime implements it with the
/// sandbox subsystem (a subsystem may not depend on another, so this crate only declares
/// the seam): given the server and the tier, return the command that runs the server's
/// command inside that tier with stdin/stdout attached (e.g. `docker run -i --rm
/// --runtime=runsc --network=none --read-only --cap-drop=ALL IMAGE COMMAND ARGS…`). Without
/// a launcher a server with `sandbox = "…"` fails closed.
pub trait SandboxLauncher: Send + Sync {
    /// The command to spawn, or why the tier cannot be provided.
    fn command(
        &self,
        spec: &ServerSpec,
        tier: symbi_types::SandboxTier,
    ) -> Result<tokio::process::Command, String>;
}

/// A live session.
pub struct Connection {
    server: Arc<str>,
    peer: Peer<RoleClient>,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, Handler>>>,
    state: Arc<HandlerState>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    /// `initialize` result: server name/version, protocol version, capabilities.
    pub server_info: Value,
    _slot: OwnedSemaphorePermit,
}

const STDERR_TAIL_LINES: usize = 20;

impl Connection {
    /// Connects to `spec` and runs `initialize`, within `timeout`. `slot` is the
    /// connection's `max_concurrent_connections` permit, held for the connection's life.
    pub async fn connect(
        spec: &ServerSpec,
        timeout: Duration,
        slot: OwnedSemaphorePermit,
        http: &reqwest::Client,
        launcher: Option<&dyn SandboxLauncher>,
    ) -> Result<Self, McpError> {
        let state = Arc::new(HandlerState::default());
        let server: Arc<str> = spec.name.as_str().into();
        let handler = Handler {
            state: state.clone(),
            server: server.clone(),
        };
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let connect_err = |message: String| McpError::Connect {
            server: spec.name.clone(),
            message,
        };
        let fut = async {
            match &spec.transport {
                Transport::Stdio { .. } => {
                    let cmd = match spec
                        .sandbox
                        .filter(|t| *t != symbi_types::SandboxTier::None)
                    {
                        None => stdio_command(spec).expect("stdio transport"),
                        Some(tier) => match launcher {
                            Some(l) => l.command(spec, tier).map_err(|message| {
                                McpError::SandboxUnavailable {
                                    server: spec.name.clone(),
                                    tier: tier.to_string(),
                                    message,
                                }
                            })?,
                            None => {
                                return Err(McpError::SandboxUnavailable {
                                    server: spec.name.clone(),
                                    tier: tier.to_string(),
                                    message: "this runtime has no sandbox launcher for MCP servers (it is provided by `symbi up`/`symbi run` with Docker available; see docs/mcp.md)".into(),
                                });
                            }
                        },
                    };
                    let mut wrap = process_wrap::tokio::CommandWrap::from(cmd);
                    // Own process group: a crash, shutdown or drop takes the whole tree
                    // (npx → node, sh → server) down, not only the first child.
                    wrap.wrap(process_wrap::tokio::ProcessGroup::leader());
                    wrap.wrap(process_wrap::tokio::KillOnDrop);
                    let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(wrap)
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .map_err(|e| {
                            connect_err(format!("cannot start `{}`: {e}", spec.target()))
                        })?;
                    if let Some(stderr) = stderr {
                        spawn_stderr_reader(server.clone(), stderr, stderr_tail.clone());
                    }
                    handler
                        .clone()
                        .serve(transport)
                        .await
                        .map_err(|e| connect_err(e.to_string()))
                }
                Transport::Http { url } => {
                    let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.as_str());
                    let transport = rmcp::transport::StreamableHttpClientTransport::with_client(
                        http.clone(),
                        config,
                    );
                    handler
                        .clone()
                        .serve(transport)
                        .await
                        .map_err(|e| connect_err(e.to_string()))
                }
            }
        };
        let service = match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(with_stderr(e, &stderr_tail)),
            Err(_) => {
                // Give the reader a moment so the message can say why the server is silent.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let tail = stderr_tail
                    .lock()
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n");
                if !tail.is_empty() {
                    tracing::warn!(server = %spec.name, stderr = %tail, "MCP server did not initialize in time");
                }
                return Err(McpError::ConnectTimeout {
                    server: spec.name.clone(),
                    timeout,
                });
            }
        };
        let server_info = service
            .peer()
            .peer_info()
            .map(|i| serde_json::to_value(&*i).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        Ok(Self {
            server,
            peer: service.peer().clone(),
            service: tokio::sync::Mutex::new(Some(service)),
            state,
            stderr_tail,
            server_info,
            _slot: slot,
        })
    }

    /// Whether the session has ended (process exited, HTTP session gone, or closed).
    pub fn is_closed(&self) -> bool {
        self.peer.is_transport_closed()
    }

    /// Whether the server announced a changed tool list since the flag was last taken.
    pub(crate) fn take_tools_changed(&self) -> bool {
        self.state.tools_changed.swap(false, Ordering::SeqCst)
    }

    /// The last lines the server wrote to stderr (stdio servers).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail.lock().iter().cloned().collect()
    }

    /// Ends the session: closes stdin and waits for a stdio server to exit (then SIGTERM,
    /// then SIGKILL, as the MCP specification's shutdown sequence says), or ends the HTTP
    /// session.
    pub async fn close(&self) {
        if let Some(mut s) = self.service.lock().await.take() {
            let _ = s.close_with_timeout(Duration::from_secs(5)).await;
        }
    }

    fn map_err(&self, op: &str, e: ServiceError, timeout: Option<Duration>) -> McpError {
        let server = self.server.to_string();
        match e {
            ServiceError::McpError(d) => McpError::Protocol {
                server,
                operation: op.into(),
                code: d.code.0,
                message: d.message.to_string(),
            },
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                McpError::ServerGone {
                    server,
                    operation: op.into(),
                }
            }
            ServiceError::Timeout { timeout: t } => McpError::Timeout {
                server,
                operation: op.into(),
                timeout: timeout.unwrap_or(t),
            },
            ServiceError::Cancelled { .. } => McpError::Cancelled {
                server,
                operation: op.into(),
            },
            other => McpError::Other {
                server,
                message: format!("`{op}`: {other}"),
            },
        }
    }

    /// Sends one request and waits for its result (see the module documentation).
    pub async fn request(
        &self,
        op: &str,
        req: ClientRequest,
        opts: &RequestOptions,
    ) -> Result<ServerResult, McpError> {
        let options = match opts.timeout {
            Some(t) => PeerRequestOptions::with_timeout(t),
            None => PeerRequestOptions::no_options(),
        };
        let handle = self
            .peer
            .send_request_with_option(req, options)
            .await
            .map_err(|e| self.map_err(op, e, opts.timeout))?;
        let _route = opts.progress.as_ref().map(|tx| {
            self.state
                .progress
                .lock()
                .insert(handle.progress_token.clone(), tx.clone());
            ProgressRoute {
                state: self.state.clone(),
                token: handle.progress_token.clone(),
            }
        });
        let mut guard = CancelOnDrop {
            peer: self.peer.clone(),
            id: Some(handle.id.clone()),
        };
        let result = match &opts.cancel {
            Some(ct) => tokio::select! {
                r = handle.await_response() => r,
                _ = ct.cancelled() => {
                    guard.fire("cancelled by the caller").await;
                    return Err(McpError::Cancelled { server: self.server.to_string(), operation: op.into() });
                }
            },
            None => handle.await_response().await,
        };
        // Answered, timed out (the SDK already sent the cancellation) or transport gone.
        guard.disarm();
        let result = result.map_err(|e| self.map_err(op, e, opts.timeout))?;
        if let ServerResult::InputRequiredResult(_) = result {
            return Err(McpError::Other {
                server: self.server.to_string(),
                message: format!(
                    "`{op}`: the server asked for interactive input (MRTR), which symbi agents cannot give"
                ),
            });
        }
        Ok(result)
    }

    fn unexpected(&self, op: &str, r: &ServerResult) -> McpError {
        McpError::Other {
            server: self.server.to_string(),
            message: format!(
                "`{op}`: unexpected answer {}",
                serde_json::to_string(r)
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        }
    }

    /// Follows `nextCursor` until the last page. A cursor seen twice is an error (a server
    /// bug that would otherwise loop forever).
    async fn paginate<F>(
        &self,
        op: &str,
        timeout: Duration,
        mut page: F,
    ) -> Result<Vec<Value>, McpError>
    where
        F: FnMut(Option<PaginatedRequestParams>) -> (ClientRequest, &'static str),
    {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let params = cursor
                .clone()
                .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
            let (req, field) = page(params);
            let r = self
                .request(
                    op,
                    req,
                    &RequestOptions {
                        timeout: Some(timeout),
                        ..Default::default()
                    },
                )
                .await?;
            let v = serde_json::to_value(&r).map_err(|e| McpError::Other {
                server: self.server.to_string(),
                message: e.to_string(),
            })?;
            let Some(items) = v.get(field).and_then(Value::as_array) else {
                return Err(self.unexpected(op, &r));
            };
            out.extend(items.iter().cloned());
            match v
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
            {
                Some(c) => {
                    if !seen.insert(c.to_string()) {
                        return Err(McpError::Other {
                            server: self.server.to_string(),
                            message: format!("`{op}`: the server repeated pagination cursor `{c}`"),
                        });
                    }
                    cursor = Some(c.to_string());
                }
                None => return Ok(out),
            }
        }
    }

    /// Every tool (all pages), as the JSON the server sent.
    pub async fn list_tools(&self, timeout: Duration) -> Result<Vec<Value>, McpError> {
        self.paginate("tools/list", timeout, |p| {
            (
                ClientRequest::ListToolsRequest(ListToolsRequest::with_param(
                    p.unwrap_or_default(),
                )),
                "tools",
            )
        })
        .await
    }

    /// Every resource (all pages).
    pub async fn list_resources(&self, timeout: Duration) -> Result<Vec<Value>, McpError> {
        self.paginate("resources/list", timeout, |p| {
            (
                ClientRequest::ListResourcesRequest(ListResourcesRequest::with_param(
                    p.unwrap_or_default(),
                )),
                "resources",
            )
        })
        .await
    }

    /// Every prompt (all pages).
    pub async fn list_prompts(&self, timeout: Duration) -> Result<Vec<Value>, McpError> {
        self.paginate("prompts/list", timeout, |p| {
            (
                ClientRequest::ListPromptsRequest(ListPromptsRequest::with_param(
                    p.unwrap_or_default(),
                )),
                "prompts",
            )
        })
        .await
    }

    /// Reads a resource: the result's `contents` array.
    pub async fn read_resource(&self, uri: &str, opts: &RequestOptions) -> Result<Value, McpError> {
        let r = self
            .request(
                "resources/read",
                ClientRequest::ReadResourceRequest(ReadResourceRequest::new(
                    ReadResourceRequestParams::new(uri),
                )),
                opts,
            )
            .await?;
        let v = serde_json::to_value(&r).unwrap_or(Value::Null);
        v.get("contents")
            .cloned()
            .ok_or_else(|| self.unexpected("resources/read", &r))
    }

    /// Gets a prompt: `{description?, messages}`.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        opts: &RequestOptions,
    ) -> Result<Value, McpError> {
        let mut params = GetPromptRequestParams::new(name);
        if !arguments.is_empty() {
            params.arguments = Some(arguments);
        }
        let r = self
            .request(
                "prompts/get",
                ClientRequest::GetPromptRequest(GetPromptRequest::new(params)),
                opts,
            )
            .await?;
        let v = serde_json::to_value(&r).unwrap_or(Value::Null);
        if v.get("messages").is_none() {
            return Err(self.unexpected("prompts/get", &r));
        }
        Ok(v)
    }

    /// Calls a tool: the raw `CallToolResult` as JSON (`content`, `structuredContent`,
    /// `isError`).
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        opts: &RequestOptions,
    ) -> Result<Value, McpError> {
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = Some(arguments);
        let r = self
            .request(
                "tools/call",
                ClientRequest::CallToolRequest(CallToolRequest::new(params)),
                opts,
            )
            .await?;
        let v = serde_json::to_value(&r).unwrap_or(Value::Null);
        if v.get("content").is_none() && v.get("structuredContent").is_none() {
            return Err(self.unexpected("tools/call", &r));
        }
        Ok(v)
    }
}

fn with_stderr(e: McpError, tail: &Mutex<VecDeque<String>>) -> McpError {
    match e {
        McpError::Connect { server, message } => {
            let t = tail.lock().iter().cloned().collect::<Vec<_>>().join(" | ");
            let message = if t.is_empty() {
                message
            } else {
                format!("{message}; server stderr: {t}")
            };
            McpError::Connect { server, message }
        }
        other => other,
    }
}

fn spawn_stderr_reader(
    server: Arc<str>,
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    use tokio::io::AsyncBufReadExt;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(server = %server, "{line}");
            let mut t = tail.lock();
            if t.len() == STDERR_TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    });
}
