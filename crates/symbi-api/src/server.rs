//! Router assembly and the cross-cutting layers of API-CONTRACT §2: bearer authentication
//! (extractors [`Caller`] / [`Admin`]), per-IP rate limit with trusted proxies, body limits,
//! timeouts, CORS, security headers, request ids and spans, HTTP metrics, and JSON error
//! bodies for every framework-level rejection.

use crate::auth::{AuthFailure, Identity};
use crate::error::ApiError;
use crate::state::ApiState;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;
use symbi_types::EventDraft;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

/// The client's address after trusted-proxy resolution (request extension).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// An authenticated caller (any valid credential).
pub struct Caller(pub Identity);

/// An authenticated admin caller (scoped keys get 403 `ADMIN_REQUIRED`).
pub struct Admin(pub Identity);

/// 403 for a scoped key on an admin-only endpoint.
pub fn admin_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "ADMIN_REQUIRED",
        "Scoped API keys may not access this endpoint",
    )
}

/// 403 for an agent outside a scoped key's scope.
pub fn scope_denied(agent: &uuid::Uuid) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "AGENT_SCOPE_DENIED",
        format!("this API key may not access agent {agent}"),
    )
}

fn failure_reason(f: &AuthFailure) -> &'static str {
    match f {
        AuthFailure::Missing => "missing",
        AuthFailure::WrongScheme => "wrong_scheme",
        AuthFailure::NotConfigured => "not_configured",
        AuthFailure::Invalid => "invalid",
        AuthFailure::Revoked(_) => "revoked",
    }
}

/// Records an authentication failure: audit event `auth_failure` `{remote, path, reason}`
/// (never the token) and the `symbi_auth_failures_total` counter.
pub async fn audit_auth_failure(
    state: &ApiState,
    remote: Option<IpAddr>,
    path: &str,
    failure: &AuthFailure,
) {
    let reason = failure_reason(failure);
    state
        .metrics
        .auth_failures
        .get_or_create(&vec![("reason", reason.to_string())])
        .inc();
    let mut details = json!({
        "remote": remote.map(|r| r.to_string()),
        "path": path,
        "reason": reason,
    });
    if let AuthFailure::Revoked(k) = failure {
        details["key_id"] = json!(k);
    }
    if let Err(e) = state
        .sink
        .record(EventDraft::new(
            symbi_types::event::types::AUTH_FAILURE,
            details,
        ))
        .await
    {
        tracing::error!(error = %e, "could not audit an authentication failure");
    }
    tracing::warn!(remote = ?remote, path, reason, "API authentication failed");
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match state.authority.authenticate(header) {
            Ok(id) => {
                tracing::Span::current().record("principal", id.name().as_str());
                Ok(Caller(id))
            }
            Err(f) => {
                let remote = parts.extensions.get::<ClientIp>().map(|c| c.0);
                audit_auth_failure(state, remote, parts.uri.path(), &f).await;
                Err(ApiError::unauthorized())
            }
        }
    }
}

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let Caller(id) = Caller::from_request_parts(parts, state).await?;
        if !id.is_admin() {
            return Err(admin_required());
        }
        Ok(Admin(id))
    }
}

/// Per-IP token buckets.
pub struct IpRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted: Vec<ipnet_lite::Net>,
}

/// A tiny CIDR matcher for `trusted_proxies` (`10.0.0.0/8`, `::1`, `127.0.0.1`).
pub mod ipnet_lite {
    use std::net::IpAddr;

    /// An address with a prefix length.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Net {
        addr: IpAddr,
        prefix: u8,
    }

    impl Net {
        /// Parses `addr` or `addr/prefix`.
        pub fn parse(s: &str) -> Result<Net, String> {
            let (a, p) = match s.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (s, None),
            };
            let addr: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match p {
                Some(p) => p
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("`{s}`: bad prefix length"))?,
                None => max,
            };
            Ok(Net { addr, prefix })
        }

        /// Whether `ip` is inside.
        pub fn contains(&self, ip: IpAddr) -> bool {
            let ip = match (self.addr, ip) {
                (IpAddr::V4(_), IpAddr::V6(v6)) => v6
                    .to_ipv4_mapped()
                    .map(IpAddr::V4)
                    .unwrap_or(IpAddr::V6(v6)),
                _ => ip,
            };
            match (self.addr, ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = if self.prefix == 0 {
                        0
                    } else {
                        u32::MAX << (32 - self.prefix)
                    };
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = if self.prefix == 0 {
                        0
                    } else {
                        u128::MAX << (128 - self.prefix)
                    };
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            }
        }
    }
}

impl IpRateLimit {
    /// `per_minute` requests per minute with a bucket of `burst` (0 = `per_minute`);
    /// `per_minute == 0` disables the limit.
    pub fn new(per_minute: u32, burst: u32, trusted_proxies: &[String]) -> Result<Self, String> {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        let trusted = trusted_proxies
            .iter()
            .map(|s| ipnet_lite::Net::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { limiter, trusted })
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The client address: the peer, or — when the peer is a trusted proxy — the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let Some(xff) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in xff.split(',').rev() {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    /// Whether a request from `ip` may proceed.
    pub fn check(&self, ip: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&ip).is_ok())
    }

    /// Drops idle buckets (called periodically).
    pub fn sweep(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// Resolves the client address and applies the rate limit.
async fn client_and_rate_limit(
    State(state): State<Arc<ApiState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let xff = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = state.rate_limit.client_ip(peer, xff);
    req.extensions_mut().insert(ClientIp(ip));
    if !state.rate_limit.check(ip) {
        state.metrics.rate_limited.inc();
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "rate limit exceeded; retry later",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    next.run(req).await
}

/// HTTP metrics and the request span.
async fn observe(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|r| r.header_value().to_str().ok())
        .unwrap_or("")
        .to_string();
    let span = tracing::info_span!(
        "http_request",
        http.method = %method,
        http.route = %route,
        http.status_code = tracing::field::Empty,
        request_id = %request_id,
        principal = tracing::field::Empty,
        otel.kind = "server",
    );
    let t0 = Instant::now();
    let resp = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = resp.status().as_u16();
    span.record("http.status_code", status);
    let elapsed = t0.elapsed();
    state
        .metrics
        .http_requests
        .get_or_create(&vec![
            ("method", method.to_string()),
            ("route", route.clone()),
            ("status", status.to_string()),
        ])
        .inc();
    state
        .metrics
        .http_latency
        .get_or_create(&vec![
            ("method", method.to_string()),
            ("route", route.clone()),
        ])
        .observe(elapsed.as_secs_f64());
    tracing::debug!(parent: &span, method = %method, route = %route, status, elapsed_us = elapsed.as_micros() as u64, "request served");
    resp
}

/// Replaces empty or plain-text error bodies produced below the handlers (routing,
/// timeouts, panics, body limits) with the JSON error body, keeping the status.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status == StatusCode::INTERNAL_SERVER_ERROR) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (code, msg) = match status {
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("METHOD_NOT_ALLOWED", "method not allowed on this endpoint")
        }
        StatusCode::REQUEST_TIMEOUT => (
            "REQUEST_TIMEOUT",
            "the request took longer than the configured timeout",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("PAYLOAD_TOO_LARGE", "request body is larger than the limit")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "expected `Content-Type: application/json`",
        ),
        StatusCode::TOO_MANY_REQUESTS => ("RATE_LIMITED", "rate limit exceeded"),
        StatusCode::UNAUTHORIZED => ("UNAUTHORIZED", "missing or invalid bearer token"),
        StatusCode::INTERNAL_SERVER_ERROR => ("INTERNAL_ERROR", "internal error"),
        _ => ("INVALID_REQUEST", "invalid request"),
    };
    let (mut parts, _) = resp.into_parts();
    let body = ApiError::new(status, code, msg).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, body.into_body())
}

/// 404 for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "method not allowed on this endpoint",
    )
}

fn cors(origins: &[String]) -> CorsLayer {
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(list)
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_credentials(false)
}

/// The complete application: every route of the contract plus the layers.
pub fn app(state: Arc<ApiState>) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    crate::routes::router(state.clone())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.settings.request_timeout,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_and_rate_limit,
        ))
        .layer(cors(&state.settings.cors_origins))
        .layer(axum::middleware::map_response(
            crate::headers::security_headers,
        ))
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxy_resolution() {
        let rl = IpRateLimit::new(100, 100, &["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Untrusted peer: its own address, whatever it claims.
        assert_eq!(
            rl.client_ip(ip("192.0.2.7"), Some("203.0.113.1")),
            ip("192.0.2.7")
        );
        // Trusted proxy chain: right-most untrusted hop.
        assert_eq!(
            rl.client_ip(ip("127.0.0.1"), Some("203.0.113.1, 10.1.2.3")),
            ip("203.0.113.1")
        );
        assert_eq!(rl.client_ip(ip("10.9.9.9"), None), ip("10.9.9.9"));
        assert!(IpRateLimit::new(1, 1, &["nonsense".into()]).is_err());
    }

    #[test]
    fn per_ip_buckets() {
        let rl = IpRateLimit::new(60, 3, &[]).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| rl.check(a)));
        assert!(!rl.check(a), "burst exhausted");
        assert!(rl.check(b), "other clients are unaffected");
        let off = IpRateLimit::new(0, 0, &[]).unwrap();
        assert!((0..10_000).all(|_| off.check(a)));
    }
}
