//! Request extractors that answer framework-level problems with the contract's JSON error
//! body (API-CONTRACT §2.3): bad JSON → 400 `INVALID_REQUEST`, wrong shape → 422
//! `INVALID_REQUEST`, no JSON content type → 415 `UNSUPPORTED_MEDIA_TYPE`, too large → 413
//! `PAYLOAD_TOO_LARGE`; agent ids that are not UUIDs → 400 `INVALID_ID`.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use uuid::Uuid;

fn is_json(ct: Option<&header::HeaderValue>) -> bool {
    ct.and_then(|v| v.to_str().ok())
        .and_then(|s| s.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request body is larger than the limit",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                format!("could not read the request body: {r}"),
            )
        }
    })
}

/// Parses JSON text into `T`, mapping syntax errors to 400 and shape errors to 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST",
                format!("invalid request body: {e}"),
            ),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                format!("request body is not valid JSON: {e}"),
            ),
        }
    })
}

/// A required JSON body.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected `Content-Type: application/json`",
            ));
        }
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// An optional JSON body: no body at all (and no content type) is `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_json = is_json(req.headers().get(header::CONTENT_TYPE));
        let has_ct = req.headers().contains_key(header::CONTENT_TYPE);
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if has_ct && !declared_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected `Content-Type: application/json`",
            ));
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// The path's `{id}` as an agent id: not a UUID → 400 `INVALID_ID`.
pub struct AgentIdPath(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for AgentIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = first_path_param(parts, state).await?;
        Uuid::parse_str(&raw).map(AgentIdPath).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ID",
                format!("`{raw}` is not a UUID"),
            )
        })
    }
}

/// The path's first parameter as text.
pub async fn first_path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<String, ApiError> {
    let params = axum::extract::RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_ID", e.to_string()))?;
    params
        .iter()
        .next()
        .map(|(_, v)| v.to_string())
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_ID", "missing id"))
}

/// The path's `{id}` as text (endpoints with their own not-found codes parse it).
pub struct IdText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        first_path_param(parts, state).await.map(IdText)
    }
}
