//! `[api]`: the HTTP listener.

use crate::validate::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use symbi_types::{ByteSize, HumanDuration};

/// `[api]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Listen address (`symbi up --listen`). Default `127.0.0.1:8080`.
    pub listen: String,
    /// The API bearer token (`SYMBI_API_TOKEN`, alias `SYMBIONT_API_TOKEN`). Never printed;
    /// prefer the environment or `token_file` over writing it into the file.
    pub token: Option<String>,
    /// A file holding the API bearer token (alternative to `SYMBI_API_TOKEN`).
    pub token_file: Option<PathBuf>,
    /// A JSON key store of per-client keys (API-CONTRACT §2.2).
    pub key_store: Option<PathBuf>,
    /// Per-IP rate limit, requests per minute (0 disables).
    #[serde(deserialize_with = "u32_in::<0, 1_000_000, _>")]
    pub rate_limit_per_minute: u32,
    /// Burst of the per-IP rate limit (token bucket size); 0 = the per-minute rate.
    #[serde(deserialize_with = "u32_in::<0, 1_000_000, _>")]
    pub rate_limit_burst: u32,
    /// Request body limit.
    #[serde(deserialize_with = "size_at_least::<1024, _>")]
    pub body_limit: ByteSize,
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is trusted.
    pub trusted_proxies: Vec<String>,
    /// Serve the OpenAPI document at `/api-docs/openapi.json`.
    pub openapi: bool,
    /// Time a request may take before it is answered 408 `REQUEST_TIMEOUT`.
    #[serde(deserialize_with = "nonzero_duration")]
    pub request_timeout: HumanDuration,
    /// Listen address of the webhook listener (DSL `webhook` items); empty disables it.
    pub webhook_listen: String,
    /// Scheduled runs (of all schedules) that may run at the same time.
    #[serde(deserialize_with = "usize_in::<1, 100_000, _>")]
    pub schedule_max_concurrent: usize,
    /// Consecutive failed runs after which a recurring schedule moves to `DeadLetter`
    /// (0 = never).
    #[serde(deserialize_with = "u32_in::<0, 1_000_000, _>")]
    pub schedule_dead_letter_after: u32,
    /// Serve this Markdown file (the project's AGENTS.md) at `/agents.md` and
    /// `/.well-known/agents.md` (opt-in; unset = 404).
    pub agents_md: Option<PathBuf>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            token: None,
            token_file: None,
            key_store: None,
            rate_limit_per_minute: 100,
            rate_limit_burst: 100,
            body_limit: ByteSize(2 << 20),
            cors_origins: vec![
                "http://localhost:3000".into(),
                "http://localhost:3001".into(),
            ],
            trusted_proxies: Vec::new(),
            openapi: true,
            request_timeout: HumanDuration(Duration::from_secs(30)),
            webhook_listen: "127.0.0.1:8081".into(),
            schedule_max_concurrent: 10,
            schedule_dead_letter_after: 10,
            agents_md: None,
        }
    }
}
