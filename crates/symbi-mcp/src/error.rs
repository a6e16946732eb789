//! Errors of the MCP client and of tool verification.

use std::time::Duration;

/// Everything that can go wrong talking to MCP servers or verifying their tools.
///
/// Each variant says which server (and tool) it concerns, so a message printed on its own is
/// enough to act on.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum McpError {
    /// A server entry (config file or `MCP_SERVER_DISCOVERY`) is unusable.
    #[error("MCP server configuration: {0}")]
    Config(String),
    /// No configured server has this name.
    #[error("no MCP server named `{0}` is configured")]
    UnknownServer(String),
    /// No server offers a tool of this name.
    #[error("no MCP tool named `{0}`")]
    UnknownTool(String),
    /// A bare tool name that several servers offer.
    #[error("MCP tool `{name}` is offered by several servers ({}); call it by its qualified name, e.g. `{}.{name}`", servers.join(", "), servers[0])]
    AmbiguousTool {
        /// The bare name.
        name: String,
        /// Servers offering it.
        servers: Vec<String>,
    },
    /// Starting the server process or reaching its URL failed.
    #[error("MCP server `{server}`: cannot connect: {message}")]
    Connect {
        /// Server.
        server: String,
        /// Why.
        message: String,
    },
    /// The connection (or its initialization) took longer than `connection_timeout_s`.
    #[error(
        "MCP server `{server}`: no answer to initialize within {timeout:?} (connection_timeout_s)"
    )]
    ConnectTimeout {
        /// Server.
        server: String,
        /// The timeout.
        timeout: Duration,
    },
    /// `max_concurrent_connections` servers are already connected.
    #[error(
        "MCP server `{server}`: max_concurrent_connections ({limit}) reached; no connection slot became free within {waited:?}"
    )]
    ConnectionLimit {
        /// Server.
        server: String,
        /// The cap.
        limit: usize,
        /// How long we waited for a slot.
        waited: Duration,
    },
    /// The server process exited or the HTTP session ended while a request was in flight
    /// (the request is not retried: tool calls need not be idempotent).
    #[error(
        "MCP server `{server}` went away during `{operation}` (it crashed or closed the connection); the next call reconnects"
    )]
    ServerGone {
        /// Server.
        server: String,
        /// The request that was in flight.
        operation: String,
    },
    /// A request got no answer in time; a `notifications/cancelled` was sent to the server.
    #[error(
        "MCP server `{server}`: `{operation}` timed out after {timeout:?} (the request was cancelled on the server)"
    )]
    Timeout {
        /// Server.
        server: String,
        /// The request.
        operation: String,
        /// The limit.
        timeout: Duration,
    },
    /// The caller cancelled the request; a `notifications/cancelled` was sent to the server.
    #[error("MCP server `{server}`: `{operation}` was cancelled")]
    Cancelled {
        /// Server.
        server: String,
        /// The request.
        operation: String,
    },
    /// The server answered with a JSON-RPC error.
    #[error("MCP server `{server}`: `{operation}` failed: {message} (JSON-RPC error {code})")]
    Protocol {
        /// Server.
        server: String,
        /// The request.
        operation: String,
        /// JSON-RPC error code.
        code: i32,
        /// The server's message.
        message: String,
    },
    /// The tool ran and reported failure (`isError: true`).
    #[error("MCP tool `{tool}` failed: {message}")]
    ToolFailed {
        /// Qualified tool name.
        tool: String,
        /// The tool's own message (its text content).
        message: String,
        /// The whole result as JSON.
        result: serde_json::Value,
    },
    /// Tool verification refuses this tool (strict mode, or demanded by policy).
    #[error("MCP tool `{tool}` refused: {reason}")]
    Refused {
        /// Qualified tool name.
        tool: String,
        /// Why (the verification status).
        reason: String,
    },
    /// A stdio server asks for a sandbox tier and this runtime cannot provide one.
    #[error("MCP server `{server}` must run in sandbox tier `{tier}`: {message}")]
    SandboxUnavailable {
        /// Server.
        server: String,
        /// The tier asked for.
        tier: String,
        /// What is missing.
        message: String,
    },
    /// The pin store could not be read or written (fail closed: nothing is verified).
    #[error("SchemaPin key store {path}: {message}")]
    PinStore {
        /// The file or directory.
        path: String,
        /// The OS error or the content problem.
        message: String,
    },
    /// The audit sink refused a verification event (fail closed: the tool is not offered).
    #[error("audit trail unavailable: {0}")]
    Audit(String),
    /// Anything else the SDK reported.
    #[error("MCP server `{server}`: {message}")]
    Other {
        /// Server.
        server: String,
        /// Message.
        message: String,
    },
}

impl McpError {
    /// The DSL error kind (GRAMMAR §4.9) an action raises for this failure.
    pub fn dsl_kind(&self) -> &'static str {
        match self {
            McpError::UnknownTool(_) | McpError::UnknownServer(_) => "UnknownAction",
            McpError::Timeout { .. } => "ActionTimeout",
            McpError::Refused { .. } => "PolicyDenied",
            McpError::SandboxUnavailable { .. } => "SandboxUnavailable",
            _ => "ActionFailed",
        }
    }
}
