//! HTTP API: Symbiont-compatible REST API, MCP server endpoint, webhooks, metrics, OpenAPI
