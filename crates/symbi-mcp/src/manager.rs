//! [`McpManager`]: the servers, their connections, the tool catalogue and its verification.
//!
//! ## Tool names
//!
//! Every tool has a **qualified name** `SERVER.TOOL` (server names contain no dots; the
//! tool part may). A **bare name** `TOOL` resolves when exactly one server offers a tool of
//! that name; when several do, the call fails with a message listing the qualified names.
//! `a.b` is read as server `a`, tool `b` when a server `a` exists and offers `b`, and
//! otherwise as the bare tool name `a.b`. This fits the DSL (GRAMMAR §4.6): `fs.read_file(p)`
//! is a qualified name, `read_file(p)`… is a builtin service first, and only then a tool.
//!
//! ## Lifecycle
//!
//! [`McpManager::start`] connects every server (concurrently), lists its tools (all pages)
//! and verifies them; a server that fails is reported and retried on the next call that
//! needs it. A connection whose server crashed or whose HTTP session ended is replaced on
//! the next call (the call that was in flight fails with [`McpError::ServerGone`]: tool
//! calls are not assumed idempotent, so they are never retried). After every (re)connect,
//! and after the server announces `notifications/tools/list_changed`, the tools are listed
//! and verified again before the next call — a server cannot swap a schema behind a
//! restart.

use crate::client::{Connection, Progress, RequestOptions, SandboxLauncher};
use crate::error::McpError;
use crate::output;
use crate::pins::PinStore;
use crate::settings::{McpSettings, ServerSpec};
use crate::verify::{self, PublisherKeys, VerificationStatus};
use parking_lot::RwLock;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_types::decision::VerificationMode;
use symbi_types::{EventDraft, EventSink};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// Audit event type of a tool verification (`details`: `server`, `tool`, `qualified`,
/// `mode`, `status`, `accepted`, and `domain`/`fingerprint`/`pin` or `code`/`reason`).
pub const TOOL_VERIFICATION_EVENT: &str = "tool_verification";

/// One tool of one server, with its verification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolEntry {
    /// Server.
    pub server: String,
    /// The tool's own name.
    pub name: String,
    /// `SERVER.TOOL`.
    pub qualified: String,
    /// Description.
    pub description: Option<String>,
    /// Input JSON schema.
    pub input_schema: Value,
    /// Output JSON schema, if declared.
    pub output_schema: Option<Value>,
    /// The verification mode that applied (server override, else global).
    pub mode: VerificationMode,
    /// The verification outcome.
    pub verification: VerificationStatus,
    /// Whether the tool may be called under `mode` (strict: only verified tools).
    pub accepted: bool,
}

/// What a server looks like from the outside.
#[derive(Clone, Debug, Serialize)]
pub struct ServerStatus {
    /// Name.
    pub name: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// Command line or URL.
    pub target: String,
    /// `config` or `discovery`.
    pub origin: crate::settings::Origin,
    /// Effective verification mode.
    pub mode: VerificationMode,
    /// Publisher domain, if any.
    pub publisher: Option<String>,
    /// Whether a session is open.
    pub connected: bool,
    /// Tools listed at the last refresh.
    pub tools: usize,
    /// Connections made so far (more than one: it was reconnected).
    pub connects: u64,
    /// The last connection or listing error.
    pub last_error: Option<String>,
    /// `initialize` result of the current session.
    pub server_info: Value,
}

/// Options of one tool call.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Give up (cancelling on the server) after this long.
    pub timeout: Option<Duration>,
    /// Cancel (on the server too) when this fires.
    pub cancel: Option<CancellationToken>,
    /// Receives the call's progress notifications.
    pub progress: Option<mpsc::UnboundedSender<Progress>>,
    /// A verification mode demanded on top of the server's (policy
    /// `Condition::SchemaVerification`, or `security = high` → strict). The stricter wins.
    pub required_mode: Option<VerificationMode>,
}

/// A successful tool call.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    /// The tool that ran.
    pub tool: ToolEntry,
    /// The agent-facing value ([`output::result_value`]).
    pub value: Value,
    /// The raw `CallToolResult`.
    pub raw: Value,
    /// Round-trip time.
    pub duration: Duration,
}

struct ServerSlot {
    spec: ServerSpec,
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    info: parking_lot::Mutex<SlotInfo>,
}

#[derive(Default)]
struct SlotInfo {
    connects: u64,
    last_error: Option<String>,
    server_info: Value,
    tools: usize,
}

struct Inner {
    settings: McpSettings,
    sink: Arc<dyn EventSink>,
    pins: PinStore,
    http: reqwest::Client,
    slots: Arc<Semaphore>,
    launcher: Option<Arc<dyn SandboxLauncher>>,
    servers: Vec<ServerSlot>,
    catalog: RwLock<HashMap<String, Vec<ToolEntry>>>,
}

/// Owns the MCP servers of a runtime: connections, tool catalogue, verification. Cheap to
/// clone (an `Arc`).
#[derive(Clone)]
pub struct McpManager {
    inner: Arc<Inner>,
}

fn strictness(m: VerificationMode) -> u8 {
    match m {
        VerificationMode::Disabled => 0,
        VerificationMode::Warn => 1,
        VerificationMode::Strict => 2,
    }
}

fn mode_str(m: VerificationMode) -> &'static str {
    match m {
        VerificationMode::Strict => "strict",
        VerificationMode::Warn => "warn",
        VerificationMode::Disabled => "disabled",
    }
}

/// The HTTP client for streamable-HTTP servers and SchemaPin discovery: rustls with the
/// `ring` provider and the system's roots, no redirects (a trust anchor must come from
/// where it was asked for).
pub fn http_client() -> Result<reqwest::Client, McpError> {
    // reqwest is built without a bundled crypto provider (no aws-lc build); install ring as
    // the process default once. Failing means another provider is already installed, which
    // is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| McpError::Config(format!("cannot build the HTTP client: {e}")))
}

impl McpManager {
    /// A manager for `settings`, recording verifications to `sink`. Opens the pin store;
    /// connects nothing yet (see [`McpManager::start`]).
    pub fn new(settings: McpSettings, sink: Arc<dyn EventSink>) -> Result<Self, McpError> {
        Self::with_launcher(settings, sink, None)
    }

    /// As [`McpManager::new`], with a launcher for servers that ask for a sandbox tier.
    pub fn with_launcher(
        settings: McpSettings,
        sink: Arc<dyn EventSink>,
        launcher: Option<Arc<dyn SandboxLauncher>>,
    ) -> Result<Self, McpError> {
        let pins = PinStore::open(&settings.pins_dir)?;
        let servers = settings
            .servers
            .iter()
            .map(|s| ServerSlot {
                spec: s.clone(),
                conn: tokio::sync::Mutex::new(None),
                info: Default::default(),
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(settings.max_concurrent_connections)),
                http: http_client()?,
                settings,
                sink,
                pins,
                launcher,
                servers,
                catalog: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &McpSettings {
        &self.inner.settings
    }

    /// The key store.
    pub fn pins(&self) -> &PinStore {
        &self.inner.pins
    }

    fn slot(&self, server: &str) -> Result<&ServerSlot, McpError> {
        self.inner
            .servers
            .iter()
            .find(|s| s.spec.name == server)
            .ok_or_else(|| McpError::UnknownServer(server.into()))
    }

    fn mode_of(&self, spec: &ServerSpec) -> VerificationMode {
        spec.verification
            .unwrap_or(self.inner.settings.verification)
    }

    /// Connects every server, lists and verifies its tools. Returns each server's outcome;
    /// failures are kept in [`McpManager::servers`] and retried on demand.
    pub async fn start(&self) -> Vec<(String, Result<usize, McpError>)> {
        let futs = self.inner.servers.iter().map(|s| async move {
            let r = self
                .connection(&s.spec.name)
                .await
                .map(|_| s.info.lock().tools);
            (s.spec.name.clone(), r)
        });
        futures::future::join_all(futs).await
    }

    /// Status of every server.
    pub fn servers(&self) -> Vec<ServerStatus> {
        self.inner
            .servers
            .iter()
            .map(|s| {
                let info = s.info.lock();
                let connected = s
                    .conn
                    .try_lock()
                    .map(|c| c.as_ref().is_some_and(|c| !c.is_closed()))
                    .unwrap_or(true);
                ServerStatus {
                    name: s.spec.name.clone(),
                    transport: s.spec.transport_name(),
                    target: s.spec.target(),
                    origin: s.spec.origin,
                    mode: self.mode_of(&s.spec),
                    publisher: s.spec.publisher.as_ref().map(|p| p.domain.clone()),
                    connected,
                    tools: info.tools,
                    connects: info.connects,
                    last_error: info.last_error.clone(),
                    server_info: info.server_info.clone(),
                }
            })
            .collect()
    }

    /// Every tool of every server (accepted or not), servers in configuration order.
    pub fn tools(&self) -> Vec<ToolEntry> {
        let cat = self.inner.catalog.read();
        self.inner
            .servers
            .iter()
            .flat_map(|s| cat.get(&s.spec.name).cloned().unwrap_or_default())
            .collect()
    }

    /// The tools of one server.
    pub fn server_tools(&self, server: &str) -> Vec<ToolEntry> {
        self.inner
            .catalog
            .read()
            .get(server)
            .cloned()
            .unwrap_or_default()
    }

    /// Resolves a tool name (qualified or bare, see the module documentation) against the
    /// current catalogue. Synchronous: the gateway resolves names without awaiting.
    pub fn resolve(&self, name: &str) -> Result<ToolEntry, McpError> {
        let cat = self.inner.catalog.read();
        if let Some((server, tool)) = name.split_once('.') {
            if let Some(t) = cat
                .get(server)
                .and_then(|ts| ts.iter().find(|t| t.name == tool))
            {
                return Ok(t.clone());
            }
        }
        let mut found: Vec<&ToolEntry> = Vec::new();
        for s in &self.inner.servers {
            if let Some(t) = cat
                .get(&s.spec.name)
                .and_then(|ts| ts.iter().find(|t| t.name == name))
            {
                found.push(t);
            }
        }
        match found.len() {
            0 => Err(McpError::UnknownTool(name.into())),
            1 => Ok(found[0].clone()),
            _ => Err(McpError::AmbiguousTool {
                name: name.into(),
                servers: found.iter().map(|t| t.server.clone()).collect(),
            }),
        }
    }

    /// The live connection of `server`, connecting (and listing + verifying its tools)
    /// when there is none or the last one ended; re-verifying when the server changed its
    /// tool list.
    async fn connection(&self, server: &str) -> Result<Arc<Connection>, McpError> {
        let slot = self.slot(server)?;
        let mut guard = slot.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            if !c.is_closed() {
                let c = c.clone();
                if c.take_tools_changed() {
                    drop(guard);
                    self.refresh_with(slot, &c).await?;
                }
                return Ok(c);
            }
            tracing::warn!(
                server,
                "MCP session ended (server exited or closed the session); reconnecting"
            );
            // Dropping the old connection frees its slot.
            *guard = None;
        }
        let timeout = self.inner.settings.connection_timeout;
        let started = Instant::now();
        let permit =
            match tokio::time::timeout(timeout, self.inner.slots.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    let e = McpError::ConnectionLimit {
                        server: server.into(),
                        limit: self.inner.settings.max_concurrent_connections,
                        waited: started.elapsed(),
                    };
                    slot.info.lock().last_error = Some(e.to_string());
                    return Err(e);
                }
            };
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let conn = match Connection::connect(
            &slot.spec,
            remaining,
            permit,
            &self.inner.http,
            self.inner.launcher.as_deref(),
        )
        .await
        {
            Ok(c) => Arc::new(c),
            Err(e) => {
                slot.info.lock().last_error = Some(e.to_string());
                self.inner.catalog.write().remove(server);
                return Err(e);
            }
        };
        {
            let mut info = slot.info.lock();
            info.connects += 1;
            info.server_info = conn.server_info.clone();
        }
        conn.take_tools_changed();
        if let Err(e) = self.refresh_with(slot, &conn).await {
            slot.info.lock().last_error = Some(e.to_string());
            conn.close().await;
            return Err(e);
        }
        slot.info.lock().last_error = None;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    /// Lists and verifies the tools of `server` again (connecting if needed) and returns
    /// them. `symbi tools verify` uses it.
    pub async fn refresh(&self, server: &str) -> Result<Vec<ToolEntry>, McpError> {
        let slot = self.slot(server)?;
        let conn = self.connection(server).await?;
        self.refresh_with(slot, &conn).await?;
        Ok(self.server_tools(server))
    }

    async fn publisher_keys(&self, spec: &ServerSpec) -> Option<PublisherKeys> {
        let p = spec.publisher.as_ref()?;
        let fetched = match &p.base_url {
            Some(base) => Some(verify::fetch_publisher(&self.inner.http, base).await),
            None => None,
        };
        let (doc, revocation) = match fetched {
            Some(Ok((d, r))) => (Some(Ok(d)), r),
            Some(Err(e)) => (Some(Err(e)), None),
            None => (None, None),
        };
        Some(PublisherKeys::new(
            p.domain.clone(),
            p.key_pem.as_deref(),
            doc,
            revocation,
        ))
    }

    async fn refresh_with(&self, slot: &ServerSlot, conn: &Connection) -> Result<(), McpError> {
        let spec = &slot.spec;
        let tools = conn
            .list_tools(self.inner.settings.connection_timeout)
            .await?;
        let mode = self.mode_of(spec);
        let keys = if mode == VerificationMode::Disabled {
            None
        } else {
            self.publisher_keys(spec).await
        };
        let mut entries = Vec::with_capacity(tools.len());
        for t in &tools {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                continue;
            };
            let status = if mode == VerificationMode::Disabled {
                VerificationStatus::Skipped
            } else {
                verify::verify_tool(t, keys.as_ref(), &self.inner.pins)?
            };
            let accepted = verify::accepted(mode, &status);
            entries.push(ToolEntry {
                server: spec.name.clone(),
                name: name.to_string(),
                qualified: format!("{}.{name}", spec.name),
                description: t
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                input_schema: t
                    .get("inputSchema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
                output_schema: t.get("outputSchema").cloned().filter(|v| !v.is_null()),
                mode,
                verification: status,
                accepted,
            });
        }
        // Record before offering: a tool whose verification cannot be audited is not offered.
        if mode == VerificationMode::Disabled {
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            self.record(json!({"server": spec.name, "mode": "disabled", "status": "skipped", "accepted": true, "tools": names})).await?;
        } else {
            for e in &entries {
                let mut d = json!({
                    "server": e.server, "tool": e.name, "qualified": e.qualified,
                    "mode": mode_str(mode), "status": e.verification.word(), "accepted": e.accepted,
                });
                match &e.verification {
                    VerificationStatus::Verified {
                        domain,
                        fingerprint,
                        pin,
                        ..
                    } => {
                        d["domain"] = json!(domain);
                        d["fingerprint"] = json!(fingerprint);
                        d["pin"] = json!(pin);
                    }
                    VerificationStatus::Invalid { code, reason } => {
                        d["code"] = json!(code);
                        d["reason"] = json!(reason);
                    }
                    _ => {}
                }
                if !e.accepted || !e.verification.is_verified() {
                    tracing::warn!(server = %e.server, tool = %e.name, mode = mode_str(mode), accepted = e.accepted, "MCP tool not verified: {}", e.verification.reason());
                }
                self.record(d).await?;
            }
        }
        slot.info.lock().tools = entries.len();
        self.inner
            .catalog
            .write()
            .insert(spec.name.clone(), entries);
        Ok(())
    }

    async fn record(&self, details: Value) -> Result<(), McpError> {
        self.inner
            .sink
            .record(EventDraft::new(TOOL_VERIFICATION_EVENT, details))
            .await
            .map(|_| ())
            .map_err(|e| McpError::Audit(e.0))
    }

    /// Calls a tool by name with its input object.
    ///
    /// Refuses tools that verification does not accept under the stricter of the server's
    /// mode and `opts.required_mode`; reports `isError` results as
    /// [`McpError::ToolFailed`].
    pub async fn call_tool(
        &self,
        name: &str,
        input: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<CallOutcome, McpError> {
        let first = self.resolve(name)?;
        let conn = self.connection(&first.server).await?;
        // The connection step may have re-verified: judge the tool as it is now.
        let tool = self.resolve(&first.qualified)?;
        let mode = match opts.required_mode {
            Some(r) if strictness(r) > strictness(tool.mode) => r,
            _ => tool.mode,
        };
        if !verify::accepted(mode, &tool.verification) {
            let why = if tool.mode == VerificationMode::Disabled
                && mode != VerificationMode::Disabled
            {
                format!(
                    "the policy demands {} verification but verification is disabled for server `{}`",
                    mode_str(mode),
                    tool.server
                )
            } else {
                format!("{} (mode {})", tool.verification.reason(), mode_str(mode))
            };
            return Err(McpError::Refused {
                tool: tool.qualified.clone(),
                reason: why,
            });
        }
        let started = Instant::now();
        let ropts = RequestOptions {
            timeout: opts.timeout,
            cancel: opts.cancel,
            progress: opts.progress,
        };
        let raw = conn.call_tool(&tool.name, input, &ropts).await?;
        let duration = started.elapsed();
        if output::is_error(&raw) {
            return Err(McpError::ToolFailed {
                tool: tool.qualified.clone(),
                message: output::error_message(&raw),
                result: raw,
            });
        }
        Ok(CallOutcome {
            value: output::result_value(&raw),
            raw,
            tool,
            duration,
        })
    }

    /// Every resource of a server.
    pub async fn list_resources(&self, server: &str) -> Result<Vec<Value>, McpError> {
        let c = self.connection(server).await?;
        c.list_resources(self.inner.settings.connection_timeout)
            .await
    }

    /// Reads a resource of a server: its `contents`.
    pub async fn read_resource(
        &self,
        server: &str,
        uri: &str,
        opts: RequestOptions,
    ) -> Result<Value, McpError> {
        self.connection(server)
            .await?
            .read_resource(uri, &opts)
            .await
    }

    /// Every prompt of a server.
    pub async fn list_prompts(&self, server: &str) -> Result<Vec<Value>, McpError> {
        let c = self.connection(server).await?;
        c.list_prompts(self.inner.settings.connection_timeout).await
    }

    /// Gets a prompt of a server with its arguments.
    pub async fn get_prompt(
        &self,
        server: &str,
        name: &str,
        args: Map<String, Value>,
        opts: RequestOptions,
    ) -> Result<Value, McpError> {
        self.connection(server)
            .await?
            .get_prompt(name, args, &opts)
            .await
    }

    /// Forgets the pinned key of `server`'s publisher (an operator's consent to a new key)
    /// and verifies its tools again, pinning the key they now verify with.
    pub async fn repin(&self, server: &str) -> Result<Vec<ToolEntry>, McpError> {
        let slot = self.slot(server)?;
        if let Some(p) = &slot.spec.publisher {
            self.inner.pins.forget(&p.domain)?;
        }
        self.refresh(server).await
    }

    /// Closes the session of one server (a later call reconnects).
    pub async fn disconnect(&self, server: &str) -> Result<(), McpError> {
        let slot = self.slot(server)?;
        let conn = slot.conn.lock().await.take();
        if let Some(c) = conn {
            c.close().await;
        }
        Ok(())
    }

    /// Closes every session.
    pub async fn shutdown(&self) {
        for s in &self.inner.servers {
            let _ = self.disconnect(&s.spec.name).await;
        }
    }
}
