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

use super::core::{Call, ToolDescriptor, ToolProvider};
use super::error::ActionError;
use async_trait::async_trait;
use serde_json::Value;
use symbi_mcp::{CallOptions, McpError, McpManager};
use symbi_types::ActionCategory;

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
        McpError::Refused { tool, reason } => ActionError::PolicyDenied { reason: format!("MCP tool `{tool}` refused: {reason}") },
        McpError::Timeout { timeout, .. } => ActionError::Timeout(timeout),
        McpError::UnknownTool(name) => ActionError::UnknownAction { name },
        McpError::SandboxUnavailable { .. } => ActionError::SandboxUnavailable(e.to_string()),
        McpError::ToolFailed { tool, message, result } => ActionError::Failed {
            kind: None,
            message: format!("MCP tool `{tool}` failed: {message}"),
            details: Some(result),
        },
        other => ActionError::Failed { kind: None, message: other.to_string(), details: None },
    }
}

#[async_trait]
impl ToolProvider for McpToolProvider {
    fn lookup(&self, name: &str) -> Option<ToolDescriptor> {
        match self.mcp.resolve(name) {
            Ok(t) => Some(ToolDescriptor {
                name: name.to_string(),
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

    async fn invoke(&self, tool: &ToolDescriptor, input: Value, call: Call<'_>) -> Result<Value, ActionError> {
        let Value::Object(input) = input else {
            return Err(ActionError::failed(format!("MCP tool `{}` takes an object of named arguments", tool.name)));
        };
        let opts = CallOptions { timeout: call.options.timeout, required_mode: call.options.schema_mode, ..CallOptions::default() };
        self.mcp.call_tool(&tool.name, input, opts).await.map(|o| o.value).map_err(action_error)
    }
}
