//! The HTTP edge of symbi: the Symbiont-compatible REST API (API-CONTRACT.md), bearer
//! authentication, the schedule engine, webhooks, Prometheus metrics and the OpenAPI
//! document.

pub mod auth;
pub mod backend;
pub mod bench;
pub mod error;
pub mod external;
pub mod extract;
pub mod headers;
pub mod invoke;
pub mod jsonpath;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod schedules;
pub mod serve;
pub mod server;
pub mod state;
pub mod sysinfo;
pub mod webhook;
pub mod webhook_server;

pub use backend::EngineInvoker;
pub use metrics::{ApiMetrics, MeteredSink};
pub use serve::{ApiHandle, ServeError, serve_api};
