//! OpenAI-compatible model provider for symbi.
//!
//! * [`LlmClient`] — chat completions (plain and SSE-streamed, with tool calling) and
//!   embeddings against any server that speaks OpenAI's `/v1/chat/completions` and
//!   `/v1/embeddings` wire format (OpenAI, Azure-style proxies, vLLM, llama.cpp, Ollama …).
//!   Transient failures (timeouts, connection errors, 408/409/429/5xx) are retried with
//!   exponential backoff and full jitter, honouring `Retry-After`; every call has a timeout
//!   (for streams: the longest silence between events). A shared [`TokenMeter`] counts
//!   tokens across clones.
//! * [`CallRecord`] — what the runtime's action gateway writes to the audit log for each
//!   model call: model, token counts, latency, attempts and SHA-256 digests of the prompt
//!   and of the answer (never their text).
//! * [`Engines`] — the DSL builtins `llm_call`, `reason`, `chain`, `debate`, `map_reduce`
//!   and `director` (GRAMMAR.md §5.3) with their result shapes; tool calls inside `reason`
//!   go through a [`ToolHost`] the gateway implements, so each is an audited action.
//!
//! The policy decision for a model call (which agent may use which model) is the gateway's:
//! this crate does no I/O besides talking to the configured provider.

pub mod client;
pub mod engines;
pub mod error;
#[cfg(feature = "test-server")]
pub mod testing;
pub mod types;

pub use client::{ChatStream, LlmClient, LlmClientConfig, TokenMeter, digest};
pub use engines::{
    EngineOutput, Engines, LlmCallArgs, MAX_DEBATE_ROUNDS, NoTools, ToolFailure, ToolHost,
};
pub use error::LlmError;
pub use types::{
    CallRecord, ChatMessage, ChatOutcome, ChatRequest, FunctionCall, FunctionDefinition, Role,
    StreamEvent, ToolCall, ToolDefinition, Usage,
};
