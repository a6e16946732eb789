//! A small local server speaking OpenAI's wire format, for tests only (feature
//! `test-server`). It stands in for the outside provider we cannot reach from here; the
//! client under test runs its real code path against it over loopback HTTP.
//!
//! Behaviour is chosen by the request's `model`:
//!
//! | model | answer |
//! |---|---|
//! | anything else | `"echo: <last user message>"` |
//! | `tool-user` | first a `tool_calls` answer calling `lookup` with `{"q": <user text>}`; once a tool result is in the conversation, `"final: <tool result>"` |
//! | `flaky` | HTTP 500 for the first two requests of the server's life, then as the default |
//! | `rate-limited` | always HTTP 429 with `Retry-After: 0` |
//! | `bad-request` | HTTP 400 with an OpenAI error body (`invalid_request_error`) |
//! | `slow` | answers after 3 s |
//! | `stall` | (streaming) sends one chunk, then nothing for 3 s |
//! | `scripted` | answers with the next text of [`TestServer::script`] (FIFO) |
//!
//! Streaming (`"stream": true`) sends real SSE `data:` chunks: the text word by word, tool
//! call arguments in fragments, a finish chunk, a usage chunk and `data: [DONE]`.
//! `/v1/embeddings` returns deterministic unit vectors (hashed bag of words, 64 dimensions)
//! so that texts sharing words are close.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Dimension of the test server's embeddings.
pub const TEST_EMBEDDING_DIM: usize = 64;

#[derive(Default)]
struct Shared {
    api_key: Option<String>,
    flaky_count: AtomicU64,
    requests: Mutex<Vec<Value>>,
    script: Mutex<VecDeque<String>>,
}

/// A running test server on `127.0.0.1:<random port>`; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server; when `api_key` is set, requests without `Authorization: Bearer
    /// <key>` get 401.
    pub async fn start(api_key: Option<&str>) -> Self {
        let shared = Arc::new(Shared {
            api_key: api_key.map(str::to_string),
            ..Shared::default()
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Request bodies received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().clone()
    }

    /// Queues answers for model `scripted`.
    pub fn script<I: IntoIterator<Item = S>, S: Into<String>>(&self, answers: I) {
        self.shared
            .script
            .lock()
            .extend(answers.into_iter().map(Into::into));
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": kind, "code": null}})),
    )
        .into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    match &shared.api_key {
        None => true,
        Some(k) => headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {k}")),
    }
}

fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    if !authorized(&shared, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Incorrect API key provided",
        );
    }
    let req: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("bad JSON: {e}"),
            );
        }
    };
    shared.requests.lock().push(req.clone());
    let model = req["model"].as_str().unwrap_or("").to_string();
    let stream = req["stream"].as_bool().unwrap_or(false);
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let prompt_tokens: u64 = messages
        .iter()
        .map(|m| words(m["content"].as_str().unwrap_or("")))
        .sum();

    match model.as_str() {
        "flaky" if shared.flaky_count.fetch_add(1, Ordering::SeqCst) < 2 => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "The server had an error",
            );
        }
        "rate-limited" => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "Rate limit reached",
            );
            r.headers_mut()
                .insert("retry-after", "0".parse().expect("header"));
            return r;
        }
        "bad-request" => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "This model's maximum context length is exceeded",
            );
        }
        "slow" => tokio::time::sleep(Duration::from_secs(3)).await,
        _ => {}
    }

    // The answer: text or tool calls.
    let tool_result = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .and_then(|m| m["content"].as_str());
    let (content, tool_calls): (Option<String>, Vec<Value>) = if model == "tool-user"
        && tool_result.is_none()
    {
        let args = json!({"q": last_user}).to_string();
        (
            None,
            vec![
                json!({"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": args}}),
            ],
        )
    } else if model == "tool-user" {
        (
            Some(format!("final: {}", tool_result.unwrap_or(""))),
            vec![],
        )
    } else if model == "scripted" {
        let next = shared
            .script
            .lock()
            .pop_front()
            .unwrap_or_else(|| "script exhausted".into());
        (Some(next), vec![])
    } else {
        (Some(format!("echo: {last_user}")), vec![])
    };
    let completion_tokens = content.as_deref().map(words).unwrap_or(1);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens
    });
    let finish = if tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };

    if !stream {
        let mut message = json!({"role": "assistant", "content": content});
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        return axum::Json(json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage
        }))
        .into_response();
    }

    // Server-sent events, as OpenAI sends them.
    let mut chunks: Vec<Value> =
        vec![json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})];
    if let Some(text) = &content {
        let mut first = true;
        for w in text.split(' ') {
            let piece = if first {
                w.to_string()
            } else {
                format!(" {w}")
            };
            first = false;
            chunks.push(json!({"choices": [{"index": 0, "delta": {"content": piece}}]}));
        }
    }
    for (i, call) in tool_calls.iter().enumerate() {
        let args = call["function"]["arguments"]
            .as_str()
            .unwrap_or("")
            .to_string();
        chunks.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{
            "index": i, "id": call["id"], "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""}}]}}]}));
        let mid = args.len() / 2;
        for part in [&args[..mid], &args[mid..]] {
            chunks.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [{
                "index": i, "function": {"arguments": part}}]}}]}));
        }
    }
    chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}));
    chunks.push(json!({"choices": [], "usage": usage}));
    let stall = model == "stall";
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(16);
    tokio::spawn(async move {
        for (i, c) in chunks.into_iter().enumerate() {
            if stall && i == 2 {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            if tx.send(Ok(format!("data: {c}\n\n"))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok("data: [DONE]\n\n".into())).await;
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(axum::body::Body::from_stream(stream))
        .expect("response")
}

/// The test server's embedding of `text`: a hashed bag of lower-cased words (FNV-1a into
/// 64 buckets), normalised to unit length. Public so tests can compute expectations.
pub fn test_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; TEST_EMBEDDING_DIM];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in w.to_lowercase().bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        v[(h % TEST_EMBEDDING_DIM as u64) as usize] += 1.0;
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    } else {
        v[0] = 1.0;
    }
    v
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&shared, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Incorrect API key provided",
        );
    }
    let req: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("bad JSON: {e}"),
            );
        }
    };
    shared.requests.lock().push(req.clone());
    let inputs: Vec<String> = match &req["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "input must be a string or an array",
            );
        }
    };
    let tokens: u64 = inputs.iter().map(|s| words(s)).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev() // out of order on purpose: clients must sort by `index`
        .map(|(i, s)| json!({"object": "embedding", "index": i, "embedding": test_embedding(s)}))
        .collect();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": req["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}
