//! MCP client (on the official Rust SDK, `rmcp`) with SchemaPin tool verification and
//! trust-on-first-use key pinning.
//!
//! * [`McpSettings`] resolves the `[mcp]` configuration section and `MCP_SERVER_DISCOVERY`
//!   into validated server entries ([`settings`]).
//! * [`McpManager`] owns the servers: connections over stdio (child processes in their own
//!   process group, optionally inside a sandbox tier through a [`SandboxLauncher`]) and
//!   streamable HTTP, the `max_concurrent_connections` cap, reconnects after a crash, the
//!   tool catalogue with qualified (`SERVER.TOOL`) and bare names ([`manager`]), tool calls
//!   with timeouts, cancellation and progress, resources and prompts with pagination.
//! * [`verify`] checks each tool's SchemaPin signature against its publisher's key and pins
//!   the key in the [`PinStore`] on first use; `tool_verification = strict | warn |
//!   disabled` decides what is offered. Every verification is an audit event
//!   ([`TOOL_VERIFICATION_EVENT`]); tool calls are audited by the action gateway that makes
//!   them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), symbi_mcp::McpError> {
//! use std::sync::Arc;
//! let mut section = symbi_config::McpSection::default();
//! section.discovery = Some("search=http://127.0.0.1:9000/mcp".into());
//! let settings = symbi_mcp::McpSettings::from_config(&section, std::path::Path::new("/var/lib/symbi"))?;
//! let sink = Arc::new(symbi_types::MemoryEventLog::default());
//! let mcp = symbi_mcp::McpManager::new(settings, sink)?;
//! for (server, outcome) in mcp.start().await {
//!     println!("{server}: {outcome:?}");
//! }
//! let out = mcp.call_tool("search.find", serde_json::Map::new(), Default::default()).await?;
//! println!("{}", out.value);
//! # Ok(()) }
//! ```

pub mod bench;
pub mod client;
pub mod error;
pub mod manager;
pub mod output;
pub mod pins;
pub mod settings;
pub mod verify;

pub use client::{Progress, RequestOptions, SandboxLauncher};
pub use error::McpError;
pub use manager::{
    CallOptions, CallOutcome, McpManager, ServerStatus, TOOL_VERIFICATION_EVENT, ToolEntry,
};
pub use pins::PinStore;
pub use settings::{McpSettings, Origin, ServerSpec, Transport};
pub use verify::VerificationStatus;
