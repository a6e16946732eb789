//! Channels (API-CONTRACT §7.1–7.7). This runtime has no chat adapters, so it behaves like
//! upstream's community edition: the list is empty and every other endpoint fails with the
//! contract's codes (register/update 500, the rest 404). Request bodies are still
//! validated first, so a malformed request gets its 4xx.

use crate::error::ApiError;
use crate::extract::{ApiJson, IdText, OptionalJson};
use crate::model::*;
use crate::server::Admin;
use axum::Json;
use axum::extract::Query;
use axum::http::StatusCode;

const NO_ADAPTERS: &str = "no chat adapters are available in this runtime";

fn not_found(code: &'static str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        code,
        format!("channel {id} not found ({NO_ADAPTERS})"),
    )
}

/// Registered channels (always empty here).
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels", responses((status = 200, body = [ChannelSummary])))]
pub async fn list(_a: Admin) -> Json<Vec<ChannelSummary>> {
    Json(Vec::new())
}

/// Registers a channel: fails without adapters.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = RegisterChannelRequest,
    responses((status = 201, body = ChannelSummary), (status = 500, body = ErrorResponse)))]
pub async fn register(_a: Admin, ApiJson(_r): ApiJson<RegisterChannelRequest>) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "REGISTER_CHANNEL_FAILED",
        NO_ADAPTERS,
    )
}

/// A channel's detail.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    responses((status = 404, body = ErrorResponse)))]
pub async fn get(_a: Admin, IdText(id): IdText) -> ApiError {
    not_found("CHANNEL_NOT_FOUND", &id)
}

/// Changes a channel's configuration.
#[utoipa::path(put, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    request_body = UpdateChannelRequest, responses((status = 500, body = ErrorResponse)))]
pub async fn update(
    _a: Admin,
    IdText(_id): IdText,
    ApiJson(_r): ApiJson<UpdateChannelRequest>,
) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UPDATE_CHANNEL_FAILED",
        NO_ADAPTERS,
    )
}

/// Removes a channel.
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels", params(("id" = String, Path)),
    responses((status = 404, body = ErrorResponse)))]
pub async fn delete(_a: Admin, IdText(id): IdText) -> ApiError {
    not_found("CHANNEL_NOT_FOUND", &id)
}

/// Starts a channel.
#[utoipa::path(post, path = "/api/v1/channels/{id}/start", tag = "channels", params(("id" = String, Path)),
    responses((status = 404, body = ErrorResponse)))]
pub async fn start(_a: Admin, IdText(id): IdText, _b: OptionalJson<serde_json::Value>) -> ApiError {
    not_found("CHANNEL_START_FAILED", &id)
}

/// Stops a channel.
#[utoipa::path(post, path = "/api/v1/channels/{id}/stop", tag = "channels", params(("id" = String, Path)),
    responses((status = 404, body = ErrorResponse)))]
pub async fn stop(_a: Admin, IdText(id): IdText, _b: OptionalJson<serde_json::Value>) -> ApiError {
    not_found("CHANNEL_STOP_FAILED", &id)
}

/// A channel's health.
#[utoipa::path(get, path = "/api/v1/channels/{id}/health", tag = "channels", params(("id" = String, Path)),
    responses((status = 404, body = ErrorResponse)))]
pub async fn health(_a: Admin, IdText(id): IdText) -> ApiError {
    not_found("CHANNEL_HEALTH_FAILED", &id)
}

/// Identity mappings.
#[utoipa::path(get, path = "/api/v1/channels/{id}/mappings", tag = "channels", params(("id" = String, Path)),
    responses((status = 404, body = ErrorResponse)))]
pub async fn mappings(_a: Admin, IdText(id): IdText) -> ApiError {
    not_found("CHANNEL_MAPPINGS_FAILED", &id)
}

/// Adds an identity mapping.
#[utoipa::path(post, path = "/api/v1/channels/{id}/mappings", tag = "channels", params(("id" = String, Path)),
    request_body = AddMappingRequest, responses((status = 500, body = ErrorResponse)))]
pub async fn add_mapping(
    _a: Admin,
    IdText(_id): IdText,
    ApiJson(_r): ApiJson<AddMappingRequest>,
) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ADD_CHANNEL_MAPPING_FAILED",
        NO_ADAPTERS,
    )
}

/// Removes an identity mapping.
#[utoipa::path(delete, path = "/api/v1/channels/{id}/mappings/{user_id}", tag = "channels",
    params(("id" = String, Path), ("user_id" = String, Path)), responses((status = 404, body = ErrorResponse)))]
pub async fn remove_mapping(_a: Admin, IdText(id): IdText) -> ApiError {
    not_found("REMOVE_CHANNEL_MAPPING_FAILED", &id)
}

/// The channel's audit entries.
#[utoipa::path(get, path = "/api/v1/channels/{id}/audit", tag = "channels", params(("id" = String, Path), LimitQuery),
    responses((status = 404, body = ErrorResponse)))]
pub async fn audit(_a: Admin, IdText(id): IdText, Query(_q): Query<LimitQuery>) -> ApiError {
    not_found("CHANNEL_AUDIT_FAILED", &id)
}
