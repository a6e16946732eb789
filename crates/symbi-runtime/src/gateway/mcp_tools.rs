//! MCP tools as gateway tools: a [`ToolProvider`] over a [`symbi_mcp::McpManager`].
//!
//! Register it after the command-tool provider so a bare name resolves command tool → MCP
//! tool → agent (GRAMMAR §4.6):
//!
//! ```ignore
//! let mcp = symbi_mcp::McpManager::new(settings, audit_sink.clone())?;
//! mcp.start().await;                       // connect, list, verify (log failures)
//! let gateway = Gateway::builder(pdp, audit_sink, approvals)
//!     .tools(command_tools)
//!     .tools(Arc::new(McpToolProvider::new(mcp.clone())))
//!     .build();
//! ```
//!
//! The descriptor carries the subject attributes policies see: `kind = "mcp"`, `server`,
//! `schema_verified` (SchemaPin status at the last listing). Verification is enforced twice:
//! the gateway's hard limit denies unverified tools under `security = high|maximum`, and
//! [`McpToolProvider::invoke`] refuses tools the server's mode — or a stricter mode demanded
//! by the decision (`ExecOptions::schema_mode`) — does not accept.

use super::core::{ActionOutput, Call, ToolDescriptor, ToolProvider};
use super::error::ActionError;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use symbi_mcp::{CallOptions, McpError, McpManager, McpSettings};
use symbi_types::{ActionCategory, EventSink};

/// Starts the MCP servers the configuration declares (`[[mcp.servers]]`, and
/// `MCP_SERVER_DISCOVERY` when `discovery_enabled`): connects each, lists and verifies its
/// tools (every verification is an audit event on `sink`). `None` when no server is
/// declared. The start-up assembly calls it and registers an [`McpToolProvider`] over the
/// result.
///
/// A server that cannot be reached is logged (with the reason) and left out of the tool
/// catalogue — the runtime still starts, and a call to one of its tools fails as an unknown
/// action. Invalid settings (bad discovery value, duplicate names, an unreadable pin store)
/// are an error: the operator asked for something that cannot be honoured.
pub async fn start_from_config(
    config: &symbi_config::Config,
    data_dir: &Path,
    sink: Arc<dyn EventSink>,
) -> Result<Option<McpManager>, McpError> {
    let settings = McpSettings::from_config(&config.mcp, data_dir)?;
    if settings.discovery_ignored > 0 {
        tracing::warn!(
            ignored = settings.discovery_ignored,
            "MCP_SERVER_DISCOVERY entries ignored: [mcp] discovery_enabled = false"
        );
    }
    if settings.servers.is_empty() {
        return Ok(None);
    }
    let mcp = McpManager::new(settings, sink)?;
    for (server, outcome) in mcp.start().await {
        match outcome {
            Ok(tools) => tracing::info!(server, tools, "MCP server connected"),
            Err(e) => {
                tracing::warn!(server, error = %e, "MCP server unavailable; its tools are not offered")
            }
        }
    }
    Ok(Some(mcp))
}

/// The MCP tool provider.
#[derive(Clone)]
pub struct McpToolProvider {
    mcp: McpManager,
}

impl McpToolProvider {
    /// A provider over `mcp` (which should have been started).
    pub fn new(mcp: McpManager) -> Self {
        Self { mcp }
    }
}

/// Maps an MCP failure to the DSL error it raises.
pub fn action_error(e: McpError) -> ActionError {
    match e {
        McpError::Refused { tool, reason } => ActionError::PolicyDenied {
            reason: format!("MCP tool `{tool}` refused: {reason}"),
        },
        McpError::Timeout { timeout, .. } => ActionError::Timeout(timeout),
        McpError::UnknownTool(name) => ActionError::UnknownAction { name },
        McpError::SandboxUnavailable { .. } => ActionError::SandboxUnavailable(e.to_string()),
        McpError::ToolFailed {
            tool,
            message,
            result,
        } => ActionError::Failed {
            kind: None,
            message: format!("MCP tool `{tool}` failed: {message}"),
            details: Some(result),
        },
        other => ActionError::Failed {
            kind: None,
            message: other.to_string(),
            details: None,
        },
    }
}

#[async_trait]
impl ToolProvider for McpToolProvider {
    fn lookup(&self, name: &str) -> Option<ToolDescriptor> {
        match self.mcp.resolve(name) {
            // The canonical `SERVER.TOOL` name, however the agent wrote it: policies and
            // audit records name one subject, so a bare alias cannot slip past a rule
            // written for the qualified name (or the other way round).
            Ok(t) => Some(ToolDescriptor {
                name: t.qualified.clone(),
                kind: "mcp".into(),
                server: Some(t.server.clone()),
                category: ActionCategory::InvokeTool,
                schema_verified: Some(t.verification.is_verified()),
                tier: None,
                required_capabilities: Vec::new(),
                input_schema: Some(t.input_schema.clone()),
            }),
            // Several servers offer it: resolve it (so the call is decided and audited as
            // an MCP tool call) and let invoke explain which qualified names exist.
            Err(McpError::AmbiguousTool { .. }) => Some(ToolDescriptor {
                name: name.to_string(),
                kind: "mcp".into(),
                server: None,
                category: ActionCategory::InvokeTool,
                schema_verified: Some(false),
                tier: None,
                required_capabilities: Vec::new(),
                input_schema: None,
            }),
            Err(_) => None,
        }
    }

    async fn invoke(
        &self,
        tool: &ToolDescriptor,
        input: Value,
        call: Call<'_>,
    ) -> Result<ActionOutput, ActionError> {
        let Value::Object(input) = input else {
            return Err(ActionError::failed(format!(
                "MCP tool `{}` takes an object of named arguments",
                tool.name
            )));
        };
        let opts = CallOptions {
            timeout: call.options.timeout,
            required_mode: call.options.schema_mode,
            ..CallOptions::default()
        };
        let out = self
            .mcp
            .call_tool(&tool.name, input, opts)
            .await
            .map_err(action_error)?;
        // Recorded with the outcome whatever the agent's audit level: which server and
        // tool ran, under which verification, and how long it took (not the output).
        let record = json!({
            "mcp_server": out.tool.server,
            "mcp_tool": out.tool.name,
            "verification": out.tool.verification.word(),
            "verification_mode": format!("{:?}", out.tool.mode).to_lowercase(),
            "mcp_duration_ms": out.duration.as_millis() as u64,
        });
        Ok(ActionOutput {
            value: out.value,
            record: Some(record),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::core::ExecOptions;
    use crate::gateway::request::{ActionRequest, BlockEnv, ExecutionScope};
    use std::sync::Arc;
    use symbi_config::McpSection;
    use symbi_config::sections::mcp::McpServer;
    use symbi_types::decision::VerificationMode;
    use symbi_types::{AgentId, ExecutionId, MemoryEventLog, Subject, SubjectKind};

    fn everything() -> McpServer {
        let deps = std::env::var("SYMBI_TEST_DEPS")
            .unwrap_or_else(|_| "/var/cache/symbi/test-deps".into());
        let js = std::path::Path::new(&deps)
            .join("mcp-node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        assert!(
            js.exists(),
            "missing {} — run scripts/setup-test-deps.sh",
            js.display()
        );
        McpServer {
            name: "ev".into(),
            command: Some("node".into()),
            args: vec![js.display().to_string(), "stdio".into()],
            ..McpServer::default()
        }
    }

    fn scope() -> ExecutionScope {
        ExecutionScope {
            agent_id: AgentId::new(),
            agent_name: "a".into(),
            capabilities: vec![],
            execution: ExecutionId::new(),
            principal: Default::default(),
            trigger: Value::Null,
            session: None,
            delegation_depth: 0,
            rules: None,
            audit: Default::default(),
            full_detail: None,
            budget: None,
        }
    }

    /// The provider against the real npm reference server: descriptor attributes, values,
    /// tool errors, and strictness demanded by the decision.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mcp_tools_through_the_provider() {
        let data = tempfile::tempdir().unwrap();
        let section = McpSection {
            servers: vec![everything()],
            tool_verification: VerificationMode::Warn,
            ..McpSection::default()
        };
        let settings = symbi_mcp::McpSettings::from_config(&section, data.path()).unwrap();
        let mcp = McpManager::new(settings, Arc::new(MemoryEventLog::default())).unwrap();
        mcp.start().await[0].1.as_ref().expect("server-everything");
        let p = McpToolProvider::new(mcp.clone());

        let d = p.lookup("ev.get-sum").expect("qualified name resolves");
        assert_eq!(
            (d.kind.as_str(), d.server.as_deref(), d.schema_verified),
            ("mcp", Some("ev"), Some(false))
        );
        assert!(p.lookup("echo").is_some(), "bare name resolves");
        assert!(p.lookup("no-such-tool").is_none());

        let sc = scope();
        let req = ActionRequest {
            name: "echo".into(),
            category: None,
            args: vec![],
            named: vec![],
            env: BlockEnv::default().into(),
            location: None,
        };
        let subject = Subject::named(SubjectKind::Tool, "echo");
        let opts = ExecOptions::default();
        let call = || Call {
            scope: &sc,
            request: &req,
            category: ActionCategory::InvokeTool,
            subject: &subject,
            options: &opts,
        };
        let echo = p.lookup("echo").unwrap();
        let out = p
            .invoke(&echo, json!({"message": "hi"}), call())
            .await
            .unwrap();
        assert_eq!(out.value, json!("Echo: hi"));
        assert_eq!(out.record.as_ref().unwrap()["mcp_server"], "ev");

        let e = p
            .invoke(&echo, json!("not an object"), call())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "ActionFailed");

        // A decision demanding strict verification refuses the unsigned tool.
        let strict = ExecOptions {
            schema_mode: Some(VerificationMode::Strict),
            ..ExecOptions::default()
        };
        let call = Call {
            scope: &sc,
            request: &req,
            category: ActionCategory::InvokeTool,
            subject: &subject,
            options: &strict,
        };
        let e = p
            .invoke(&echo, json!({"message": "hi"}), call)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "PolicyDenied");
        assert!(e.to_string().contains("unsigned"), "{e}");
        mcp.shutdown().await;
    }
}
