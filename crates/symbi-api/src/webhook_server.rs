//! The webhook listener (GRAMMAR §4.11.4): DSL `webhook` items exposed on their own
//! listener (`[api] webhook_listen`, default `127.0.0.1:8081`) as `POST <path>`.
//!
//! Per request, in this order:
//! 1. the path names a webhook (else 404), the method is POST (else 405);
//! 2. the signature is verified ([`Verifier`]: HMAC-SHA256, constant-time, 5-minute
//!    timestamp tolerance where the provider signs one, replay window) — a missing, bad,
//!    stale or replayed signature is answered **401** and audited as `security_violation`;
//! 3. the filter (`json_path` + `equals`/`contains`) is applied — a signed request that does
//!    not pass is answered **202** and nothing runs;
//! 4. the agent is executed with the JSON body as input (a body that is not JSON is passed
//!    as a string) and the trigger `{kind: "webhook", name, provider, headers, raw_body,
//!    received_at}`; the answer is **200** `{execution_id, status: "execution_started"}`.
//!
//! Secrets are resolved once at start-up (`vault://…` through the runtime's vault); a
//! webhook without a usable secret is not exposed and the reason is logged.

use crate::error::ApiError;
use crate::invoke::{AgentInvoker, Invocation};
use crate::jsonpath::{Filter, JsonPath};
use crate::metrics::ApiMetrics;
use crate::webhook::{Provider, Verifier, WebhookError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use symbi_types::{EventDraft, EventSink};

/// Largest webhook body.
pub const WEBHOOK_BODY_LIMIT: usize = 2 << 20;

/// Headers never copied into `trigger().headers` (credentials of the sender).
const HIDDEN_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// One exposed webhook.
pub struct WebhookRoute {
    /// The item's name.
    pub name: String,
    /// URL path.
    pub path: String,
    /// Provider preset.
    pub provider: Provider,
    /// Provider name as written (for the trigger).
    pub provider_name: String,
    /// Agent to run.
    pub agent: String,
    verifier: Verifier,
    filter: Option<Filter>,
}

impl std::fmt::Debug for WebhookRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRoute")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("agent", &self.agent)
            .finish()
    }
}

/// A webhook that is not exposed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotExposed {
    /// The item's name.
    pub name: String,
    /// Why.
    pub reason: String,
}

impl WebhookRoute {
    /// Builds a route from a DSL item, resolving its secret with `resolve_secret`
    /// (`vault://…` references; other values are used as they are).
    pub fn from_spec(
        spec: &symbi_dsl::program::WebhookSpec,
        resolve_secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<WebhookRoute, NotExposed> {
        let fail = |reason: String| NotExposed {
            name: spec.name.clone(),
            reason,
        };
        let secret = if spec.secret.starts_with("vault://") {
            resolve_secret(&spec.secret)
                .map_err(|e| fail(format!("secret {}: {e}", spec.secret)))?
        } else {
            tracing::warn!(webhook = %spec.name, "webhook secret is written in the program source; prefer a vault:// reference");
            spec.secret.clone()
        };
        if secret.is_empty() {
            return Err(fail("the secret is empty".into()));
        }
        let filter = match &spec.filter_path {
            None => None,
            Some(p) => {
                let path = JsonPath::parse(p).map_err(|e| fail(e.to_string()))?;
                match (&spec.filter_equals, &spec.filter_contains) {
                    (Some(v), _) => Some(Filter::Equals(path, v.clone())),
                    (None, Some(v)) => Some(Filter::Contains(path, v.clone())),
                    (None, None) => {
                        return Err(fail(
                            "the filter has a json_path but neither `equals` nor `contains`".into(),
                        ));
                    }
                }
            }
        };
        let provider = Provider::from_name(&spec.provider);
        Ok(WebhookRoute {
            name: spec.name.clone(),
            path: spec.path.clone(),
            provider,
            provider_name: spec.provider.clone(),
            agent: spec.agent.clone(),
            verifier: Verifier::new(provider, secret.into_bytes()),
            filter,
        })
    }
}

/// The set of exposed webhooks and what they need.
pub struct Webhooks {
    routes: HashMap<String, Arc<WebhookRoute>>,
    invoker: Arc<dyn AgentInvoker>,
    sink: Arc<dyn EventSink>,
    metrics: Arc<ApiMetrics>,
}

impl Webhooks {
    /// An empty set.
    pub fn new(
        invoker: Arc<dyn AgentInvoker>,
        sink: Arc<dyn EventSink>,
        metrics: Arc<ApiMetrics>,
    ) -> Self {
        Self {
            routes: HashMap::new(),
            invoker,
            sink,
            metrics,
        }
    }

    /// Adds the webhooks of a loaded program; returns those not exposed (also logged).
    pub fn add_program(
        &mut self,
        program: &symbi_dsl::LoadedProgram,
        resolve_secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Vec<NotExposed> {
        let mut skipped = Vec::new();
        for spec in program.webhooks() {
            match WebhookRoute::from_spec(spec, resolve_secret) {
                Ok(r) => {
                    if let Some(prev) = self.routes.get(&r.path) {
                        let n = NotExposed {
                            name: r.name.clone(),
                            reason: format!(
                                "path {} is already used by webhook `{}`",
                                r.path, prev.name
                            ),
                        };
                        tracing::error!(webhook = %n.name, reason = %n.reason, "webhook not exposed");
                        skipped.push(n);
                        continue;
                    }
                    tracing::info!(webhook = %r.name, path = %r.path, agent = %r.agent, "webhook exposed");
                    self.routes.insert(r.path.clone(), Arc::new(r));
                }
                Err(n) => {
                    tracing::error!(webhook = %n.name, reason = %n.reason, "webhook not exposed");
                    skipped.push(n);
                }
            }
        }
        skipped
    }

    /// Adds a route directly.
    pub fn add_route(&mut self, r: WebhookRoute) {
        self.routes.insert(r.path.clone(), Arc::new(r));
    }

    /// Number of exposed webhooks.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether none is exposed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The router of the listener.
    pub fn router(self) -> Router {
        let state = Arc::new(self);
        Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
            .layer(axum::middleware::map_response(
                crate::headers::security_headers,
            ))
            .with_state(state)
    }
}

fn err(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Response {
    ApiError::new(status, code, msg).into_response()
}

async fn handle(
    State(w): State<Arc<Webhooks>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let path = uri.path();
    let Some(route) = w.routes.get(path).cloned() else {
        return err(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no webhook at {path}"),
        );
    };
    let count = |outcome: &str| {
        w.metrics
            .webhooks
            .get_or_create(&vec![
                ("webhook", route.name.clone()),
                ("outcome", outcome.to_string()),
            ])
            .inc()
    };
    if method != Method::POST {
        return err(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "webhooks accept POST only",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            count("too_large");
            return err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "webhook body is larger than the limit",
            );
        }
        Err(r) => return err(StatusCode::BAD_REQUEST, "INVALID_REQUEST", r.to_string()),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = route.verifier.verify(header, &body) {
        count("rejected");
        let check = match &e {
            WebhookError::MissingSignature(_) => "missing_signature",
            WebhookError::Malformed => "malformed_signature",
            WebhookError::BadSignature => "signature",
            WebhookError::Stale(_) => "stale_timestamp",
            WebhookError::Replay => "replay",
        };
        let draft = EventDraft::new(
            symbi_types::event::types::SECURITY_VIOLATION,
            json!({ "component": "webhook", "check": check, "detail": e.to_string(), "webhook": route.name,
                    "path": route.path, "remote": peer.ip().to_string(), "action": "rejected" }),
        );
        if let Err(se) = w.sink.record(draft).await {
            tracing::error!(error = %se, "could not audit a rejected webhook request");
        }
        tracing::warn!(webhook = %route.name, check, remote = %peer.ip(), "webhook request rejected");
        return err(
            StatusCode::UNAUTHORIZED,
            "WEBHOOK_SIGNATURE_INVALID",
            format!("webhook signature rejected: {e}"),
        );
    }
    let raw = String::from_utf8_lossy(&body).into_owned();
    let input: Value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(raw.clone()));
    if let Some(f) = &route.filter {
        if !f.matches(&input) {
            count("filtered");
            return (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "status": "filtered" })),
            )
                .into_response();
        }
    }
    let mut hdrs = serde_json::Map::new();
    for (k, v) in &headers {
        if HIDDEN_HEADERS.contains(&k.as_str()) {
            continue;
        }
        if let Ok(v) = v.to_str() {
            hdrs.insert(k.as_str().to_string(), Value::String(v.to_string()));
        }
    }
    let trigger = json!({
        "kind": "webhook", "name": route.name, "provider": route.provider_name, "headers": hdrs,
        "raw_body": raw, "received_at": chrono::Utc::now().to_rfc3339(),
    });
    let inv = Invocation {
        agent: route.agent.clone(),
        input,
        trigger,
        initiator: Some(format!("webhook:{}", route.name)),
        schedule_policy: None,
    };
    match w.invoker.invoke(inv).await {
        Ok(started) => {
            count("executed");
            let id = started.execution_id;
            let name = route.name.clone();
            tokio::spawn(async move {
                if let Err(f) = started.completion.await {
                    tracing::warn!(webhook = %name, execution = %id, error = %f, "webhook execution failed");
                }
            });
            (
                StatusCode::OK,
                axum::Json(json!({ "execution_id": id, "status": "execution_started" })),
            )
                .into_response()
        }
        Err(f) => {
            count("failed");
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "WEBHOOK_EXECUTION_FAILED",
                format!("could not start agent `{}`: {f}", route.agent),
            )
        }
    }
}
