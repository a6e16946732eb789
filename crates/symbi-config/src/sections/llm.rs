//! `[llm]`: the OpenAI-compatible model provider.

use serde::{Deserialize, Serialize};

/// `[llm]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSection {
    /// Base URL of an OpenAI-compatible API (`OPENAI_BASE_URL`).
    pub base_url: String,
    /// API key (`OPENAI_API_KEY`). Never printed.
    pub api_key: Option<String>,
    /// Default chat model.
    pub model: String,
    /// Embedding model for dense embeddings.
    pub embedding_model: String,
    /// Per-request timeout in seconds.
    pub timeout_s: u64,
    /// Retries on transient failures (timeouts, connection errors, 408/409/429/5xx).
    pub max_retries: u32,
    /// First retry delay in milliseconds; doubles per retry with jitter (capped at 8 s).
    /// A `Retry-After` header from the server takes precedence.
    pub retry_backoff_ms: u64,
}

impl Default for LlmSection {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".into(),
            api_key: None,
            model: "gpt-4o-mini".into(),
            embedding_model: "text-embedding-3-small".into(),
            timeout_s: 60,
            max_retries: 3,
            retry_backoff_ms: 500,
        }
    }
}
