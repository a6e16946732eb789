//! `[mcp]`: MCP servers, discovery and tool verification.

use crate::validate::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use symbi_types::decision::VerificationMode;

/// `[mcp]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpSection {
    /// Whether servers from `MCP_SERVER_DISCOVERY` are used.
    pub discovery_enabled: bool,
    /// SchemaPin mode: `strict` (default), `warn`, `disabled`.
    pub tool_verification: VerificationMode,
    /// Connect / initialize timeout in seconds.
    #[serde(deserialize_with = "u64_in::<1, 3600, _>")]
    pub connection_timeout_s: u64,
    /// Cap on simultaneous server connections.
    #[serde(deserialize_with = "usize_in::<1, 100_000, _>")]
    pub max_concurrent_connections: usize,
    /// Configured servers (`[[mcp.servers]]`).
    pub servers: Vec<McpServer>,
    /// Discovery source (`MCP_SERVER_DISCOVERY`): a JSON array of server entries (the
    /// fields of `[[mcp.servers]]`) or a comma-separated list of streamable-HTTP URLs.
    pub discovery: Option<String>,
}

/// Transport of an MCP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum McpTransport {
    /// A child process speaking JSON-RPC on stdin/stdout.
    #[default]
    Stdio,
    /// Streamable HTTP.
    Http,
}

/// One `[[mcp.servers]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct McpServer {
    /// Name tools are qualified with.
    pub name: String,
    /// `stdio` or `http`.
    pub transport: McpTransport,
    /// Command (stdio).
    pub command: Option<String>,
    /// Arguments (stdio).
    pub args: Vec<String>,
    /// Environment (stdio).
    pub env: BTreeMap<String, String>,
    /// URL (http).
    pub url: Option<String>,
    /// Publisher domain whose `.well-known` SchemaPin key signs this server's tools.
    pub publisher: Option<String>,
    /// A configured publisher public key (PEM) instead of discovery.
    pub publisher_key: Option<String>,
    /// Per-server override of `tool_verification`.
    pub tool_verification: Option<VerificationMode>,
    /// Start the stdio server inside this sandbox tier.
    pub sandbox: Option<String>,
}

impl Default for McpSection {
    fn default() -> Self {
        Self {
            discovery_enabled: true,
            tool_verification: VerificationMode::Strict,
            connection_timeout_s: 30,
            max_concurrent_connections: 100,
            servers: Vec::new(),
            discovery: None,
        }
    }
}
