//! MCP client (rmcp) with SchemaPin tool verification and trust-on-first-use key pinning
