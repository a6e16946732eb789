//! The HTTP client: chat completions (plain and SSE-streamed, with tool calls) and
//! embeddings against any OpenAI-compatible server, with retries and timeouts.

use crate::error::LlmError;
use crate::types::*;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use symbi_config::LlmSection;

/// Settings of a [`LlmClient`].
#[derive(Clone, Debug, PartialEq)]
pub struct LlmClientConfig {
    /// Base URL including the version prefix, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1`. Paths `/chat/completions` and `/embeddings` are appended.
    pub base_url: String,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
    /// Default chat model (used when a request names none).
    pub model: String,
    /// Embedding model.
    pub embedding_model: String,
    /// Limit for one non-streamed request, and the longest silence inside a stream.
    pub timeout: Duration,
    /// Retries after the first attempt, on transient failures only.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry (with full jitter), capped at 8 s.
    pub backoff_base: Duration,
}

impl LlmClientConfig {
    /// Settings from the `[llm]` section.
    pub fn from_section(s: &LlmSection) -> Self {
        Self {
            base_url: s.base_url.trim_end_matches('/').to_string(),
            api_key: s.api_key.clone().filter(|k| !k.is_empty()),
            model: s.model.clone(),
            embedding_model: s.embedding_model.clone(),
            timeout: Duration::from_secs(s.timeout_s.max(1)),
            max_retries: s.max_retries,
            backoff_base: Duration::from_millis(s.retry_backoff_ms),
        }
    }
}

/// Running totals of every call made through one client (all clones share them).
#[derive(Debug, Default)]
pub struct TokenMeter {
    calls: AtomicU64,
    prompt: AtomicU64,
    completion: AtomicU64,
    total: AtomicU64,
}

impl TokenMeter {
    fn add(&self, u: Usage) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.prompt.fetch_add(u.prompt_tokens, Ordering::Relaxed);
        self.completion
            .fetch_add(u.completion_tokens, Ordering::Relaxed);
        self.total.fetch_add(u.total_tokens, Ordering::Relaxed);
    }

    /// Successful calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Token totals so far.
    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt.load(Ordering::Relaxed),
            completion_tokens: self.completion.load(Ordering::Relaxed),
            total_tokens: self.total.load(Ordering::Relaxed),
        }
    }
}

/// An OpenAI-compatible model provider. Cheap to clone (shares the connection pool and the
/// token meter).
///
/// ```no_run
/// # async fn f() -> Result<(), symbi_llm::LlmError> {
/// use symbi_llm::{ChatRequest, LlmClient, LlmClientConfig};
/// let cfg = LlmClientConfig::from_section(&symbi_config::LlmSection::default());
/// let client = LlmClient::new(cfg)?;
/// let out = client.chat(ChatRequest::simple(Some("Be brief."), "Say hi")).await?;
/// println!("{} ({} tokens)", out.text(), out.usage.total_tokens);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LlmClient {
    cfg: Arc<LlmClientConfig>,
    http: reqwest::Client,
    meter: Arc<TokenMeter>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the API key.
        f.debug_struct("LlmClient")
            .field("base_url", &self.cfg.base_url)
            .field("model", &self.cfg.model)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client for these settings.
    pub fn new(cfg: LlmClientConfig) -> Result<Self, LlmError> {
        if !(cfg.base_url.starts_with("http://") || cfg.base_url.starts_with("https://")) {
            return Err(LlmError::Config(format!(
                "llm.base_url `{}` must be an http:// or https:// URL",
                cfg.base_url
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("symbi/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            cfg: Arc::new(cfg),
            http,
            meter: Arc::new(TokenMeter::default()),
        })
    }

    /// The client the `[llm]` section describes, or `None` when no provider is configured:
    /// the base URL is OpenAI's and no API key is set, so no call could succeed. A
    /// self-hosted server (any other base URL) needs no key.
    pub fn from_section(s: &LlmSection) -> Result<Option<Self>, LlmError> {
        let default_url = LlmSection::default().base_url;
        let has_key = s.api_key.as_deref().is_some_and(|k| !k.is_empty());
        if !has_key && s.base_url.trim_end_matches('/') == default_url {
            return Ok(None);
        }
        Self::new(LlmClientConfig::from_section(s)).map(Some)
    }

    /// The settings.
    pub fn config(&self) -> &LlmClientConfig {
        &self.cfg
    }

    /// Token totals of every call made through this client and its clones.
    pub fn meter(&self) -> &TokenMeter {
        &self.meter
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.cfg.base_url)
    }

    fn model_of(&self, req: &ChatRequest) -> String {
        if req.model.is_empty() {
            self.cfg.model.clone()
        } else {
            req.model.clone()
        }
    }

    /// One chat completion (not streamed).
    pub async fn chat(&self, req: ChatRequest) -> Result<ChatOutcome, LlmError> {
        let started = Instant::now();
        let model = self.model_of(&req);
        let mut body = serde_json::to_value(&req).map_err(|e| LlmError::Decode(e.to_string()))?;
        body["model"] = json!(model);
        let (resp, attempts) = self.send_with_retries("chat/completions", &body).await?;
        let bytes = tokio::time::timeout(self.cfg.timeout, resp.bytes())
            .await
            .map_err(|_| LlmError::Timeout(self.cfg.timeout))?
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let parsed: ChatCompletionResponse = serde_json::from_slice(&bytes)
            .map_err(|e| LlmError::Decode(format!("chat completion response: {e}")))?;
        let choice =
            parsed.choices.into_iter().next().ok_or_else(|| {
                LlmError::Decode("chat completion response has no choices".into())
            })?;
        let usage = parsed.usage.unwrap_or_default();
        self.meter.add(usage);
        let record = CallRecord {
            operation: "chat".into(),
            model,
            usage,
            latency_ms: started.elapsed().as_millis() as u64,
            attempts,
            prompt_sha256: digest(&req.messages),
            answer_sha256: digest(&choice.message),
            streamed: false,
        };
        Ok(ChatOutcome {
            message: choice.message,
            finish_reason: choice.finish_reason,
            usage,
            record,
        })
    }

    /// A streamed chat completion (`"stream": true`, server-sent events). Text arrives as
    /// [`StreamEvent::Text`]; tool calls, whose arguments arrive in fragments, are emitted
    /// whole as [`StreamEvent::ToolCall`] when the stream ends; the last item is
    /// [`StreamEvent::Done`] with the assembled outcome. Retries happen only before the
    /// first byte of the answer; a stream silent for longer than the timeout fails with
    /// [`LlmError::Timeout`].
    pub async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream, LlmError> {
        let started = Instant::now();
        let model = self.model_of(&req);
        let mut body = serde_json::to_value(&req).map_err(|e| LlmError::Decode(e.to_string()))?;
        body["model"] = json!(model);
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let (resp, attempts) = self.send_with_retries("chat/completions", &body).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let idle = self.cfg.timeout;
        let meter = self.meter.clone();
        let prompt_sha256 = digest(&req.messages);
        tokio::spawn(async move {
            let mut events = Box::pin(resp.bytes_stream().eventsource());
            let mut text = String::new();
            let mut calls: Vec<(String, String, String)> = Vec::new();
            let mut finish = None;
            let mut usage = Usage::default();
            loop {
                let next = match tokio::time::timeout(idle, events.next()).await {
                    Err(_) => {
                        let _ = tx.send(Err(LlmError::Timeout(idle))).await;
                        return;
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => {
                        let _ = tx
                            .send(Err(LlmError::Transport(format!("event stream: {e}"))))
                            .await;
                        return;
                    }
                    Ok(Some(Ok(ev))) => ev,
                };
                if next.data.trim() == "[DONE]" {
                    break;
                }
                // An error can also arrive inside the stream.
                if let Ok(err) = serde_json::from_str::<ErrorBody>(&next.data) {
                    let _ = tx
                        .send(Err(LlmError::Api {
                            status: 200,
                            kind: err.error.kind,
                            message: err.error.message,
                        }))
                        .await;
                    return;
                }
                let chunk: ChatChunk = match serde_json::from_str(&next.data) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx
                            .send(Err(LlmError::Decode(format!("stream chunk: {e}"))))
                            .await;
                        return;
                    }
                };
                if let Some(u) = chunk.usage {
                    usage = u;
                }
                for choice in chunk.choices {
                    if let Some(t) = choice.delta.content.filter(|t| !t.is_empty()) {
                        text.push_str(&t);
                        if tx.send(Ok(StreamEvent::Text(t))).await.is_err() {
                            return; // the reader went away
                        }
                    }
                    for d in choice.delta.tool_calls {
                        if calls.len() <= d.index {
                            calls.resize(d.index + 1, Default::default());
                        }
                        let slot = &mut calls[d.index];
                        if let Some(id) = d.id {
                            slot.0 = id;
                        }
                        if let Some(f) = d.function {
                            if let Some(n) = f.name {
                                slot.1.push_str(&n);
                            }
                            if let Some(a) = f.arguments {
                                slot.2.push_str(&a);
                            }
                        }
                    }
                    if choice.finish_reason.is_some() {
                        finish = choice.finish_reason;
                    }
                }
            }
            let tool_calls: Vec<ToolCall> = calls
                .into_iter()
                .map(|(id, name, arguments)| ToolCall {
                    id,
                    kind: "function".into(),
                    function: FunctionCall { name, arguments },
                })
                .collect();
            for c in &tool_calls {
                if tx.send(Ok(StreamEvent::ToolCall(c.clone()))).await.is_err() {
                    return;
                }
            }
            let message = ChatMessage {
                role: Role::Assistant,
                content: if text.is_empty() && !tool_calls.is_empty() {
                    None
                } else {
                    Some(text)
                },
                tool_calls,
                tool_call_id: None,
            };
            meter.add(usage);
            let record = CallRecord {
                operation: "chat".into(),
                model,
                usage,
                latency_ms: started.elapsed().as_millis() as u64,
                attempts,
                prompt_sha256,
                answer_sha256: digest(&message),
                streamed: true,
            };
            let outcome = ChatOutcome {
                message,
                finish_reason: finish,
                usage,
                record,
            };
            let _ = tx.send(Ok(StreamEvent::Done(Box::new(outcome)))).await;
        });
        Ok(ChatStream { rx })
    }

    /// Embeds `inputs` with the configured embedding model. Returns one vector per input,
    /// in input order, and the call's audit record.
    pub async fn embed(&self, inputs: &[String]) -> Result<(Vec<Vec<f32>>, CallRecord), LlmError> {
        let started = Instant::now();
        if inputs.is_empty() {
            return Err(LlmError::Config("embeddings request with no input".into()));
        }
        let model = self.cfg.embedding_model.clone();
        let body = json!({"model": model, "input": inputs, "encoding_format": "float"});
        let (resp, attempts) = self.send_with_retries("embeddings", &body).await?;
        let bytes = tokio::time::timeout(self.cfg.timeout, resp.bytes())
            .await
            .map_err(|_| LlmError::Timeout(self.cfg.timeout))?
            .map_err(|e| LlmError::Transport(e.to_string()))?;
        let parsed: EmbeddingResponse = serde_json::from_slice(&bytes)
            .map_err(|e| LlmError::Decode(format!("embeddings response: {e}")))?;
        if parsed.data.len() != inputs.len() {
            return Err(LlmError::Decode(format!(
                "embeddings response has {} vectors for {} inputs",
                parsed.data.len(),
                inputs.len()
            )));
        }
        let mut data = parsed.data;
        data.sort_by_key(|d| d.index);
        let vectors: Vec<Vec<f32>> = data.into_iter().map(|d| d.embedding).collect();
        let usage = parsed.usage.unwrap_or_default();
        self.meter.add(usage);
        let record = CallRecord {
            operation: "embeddings".into(),
            model,
            usage,
            latency_ms: started.elapsed().as_millis() as u64,
            attempts,
            prompt_sha256: digest(&inputs),
            answer_sha256: digest(&vectors),
            streamed: false,
        };
        Ok((vectors, record))
    }

    /// POSTs `body`, retrying transient failures with exponential backoff and full jitter
    /// (a `Retry-After` header wins when present). Returns the successful response and the
    /// number of attempts.
    async fn send_with_retries(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<(reqwest::Response, u32), LlmError> {
        let url = self.url(path);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut rb = self.http.post(&url).json(body);
            if let Some(key) = &self.cfg.api_key {
                rb = rb.bearer_auth(key);
            }
            // The timeout covers the response head here; bodies have their own timeout.
            let result = tokio::time::timeout(self.cfg.timeout, rb.send()).await;
            let (err, retry_after) = match result {
                Err(_) => (LlmError::Timeout(self.cfg.timeout), None),
                Ok(Err(e)) => (LlmError::Transport(e.to_string()), None),
                Ok(Ok(resp)) if resp.status().is_success() => return Ok((resp, attempt)),
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = tokio::time::timeout(self.cfg.timeout, resp.text())
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .unwrap_or_default();
                    let (kind, message) = match serde_json::from_str::<ErrorBody>(&text) {
                        Ok(b) => (
                            b.error.kind.or_else(|| b.error.code.map(|c| c.to_string())),
                            b.error.message,
                        ),
                        Err(_) => (None, text.chars().take(500).collect()),
                    };
                    (
                        LlmError::Api {
                            status,
                            kind,
                            message,
                        },
                        retry_after,
                    )
                }
            };
            if !err.is_transient() || attempt > self.cfg.max_retries {
                return Err(if attempt > 1 {
                    LlmError::RetriesExhausted {
                        attempts: attempt,
                        last: Box::new(err),
                    }
                } else {
                    err
                });
            }
            let delay = retry_after
                .map(|d| d.min(Duration::from_secs(30)))
                .unwrap_or_else(|| {
                    let cap = Duration::from_secs(8);
                    let exp = self
                        .cfg
                        .backoff_base
                        .saturating_mul(1u32 << (attempt - 1).min(16))
                        .min(cap);
                    let ms = exp.as_millis() as u64;
                    Duration::from_millis(if ms == 0 {
                        0
                    } else {
                        rand::rng().random_range(ms / 2..=ms)
                    })
                });
            tracing::debug!(%url, attempt, ?delay, error = %err, "retrying model provider call");
            tokio::time::sleep(delay).await;
        }
    }
}

/// Hex SHA-256 of the compact JSON of `v`.
pub fn digest<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// The events of [`LlmClient::chat_stream`].
pub struct ChatStream {
    rx: tokio::sync::mpsc::Receiver<Result<StreamEvent, LlmError>>,
}

impl ChatStream {
    /// Reads the stream to its end and returns the assembled outcome, calling `on_text`
    /// for each piece of text as it arrives.
    pub async fn collect_with(
        mut self,
        mut on_text: impl FnMut(&str),
    ) -> Result<ChatOutcome, LlmError> {
        while let Some(ev) = self.next().await {
            match ev? {
                StreamEvent::Text(t) => on_text(&t),
                StreamEvent::ToolCall(_) => {}
                StreamEvent::Done(o) => return Ok(*o),
            }
        }
        Err(LlmError::Transport(
            "stream ended without a final event".into(),
        ))
    }
}

impl Stream for ChatStream {
    type Item = Result<StreamEvent, LlmError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
