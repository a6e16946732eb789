//! One module per configuration section. Each section owns its keys, defaults and
//! validation; the subsystem that reads a section is the one that documents its meaning.

pub mod api;
pub mod audit;
pub mod bus;
pub mod context;
pub mod llm;
pub mod log;
pub mod mcp;
pub mod policy;
pub mod runtime;
pub mod sandbox;
pub mod security;
