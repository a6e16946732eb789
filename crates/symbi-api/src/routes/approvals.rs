//! Human-in-the-loop holds (API-CONTRACT §7.8) over the gateway's `ApprovalManager`.
//! The approver is the caller's key id (`api-token` for the static token); its roles are
//! the key's `roles` (key store), so a hold that demands a role can only be approved by a
//! key holding it.

use crate::error::ApiError;
use crate::extract::{IdText, OptionalJson};
use crate::model::*;
use crate::server::{Admin, Caller};
use crate::state::ApiState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use symbi_runtime::gateway::approvals::{ApprovalError, HoldKind};

fn kind(k: HoldKind) -> &'static str {
    match k {
        HoldKind::ToolCall => "tool_call",
        HoldKind::Delegate => "delegate",
        HoldKind::Schedule => "schedule",
        HoldKind::Other => "other",
    }
}

/// Pending held actions, oldest first (any valid token; scoped keys see their agents').
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", responses((status = 200, body = [HeldAction])))]
pub async fn list(State(s): State<Arc<ApiState>>, Caller(who): Caller) -> Json<Vec<HeldAction>> {
    let holds = s.engine.gateway().approvals().pending();
    Json(
        holds
            .into_iter()
            .filter(|h| {
                uuid::Uuid::parse_str(&h.agent_id).map_or(who.is_admin(), |a| who.may_access(&a))
            })
            .map(|h| HeldAction {
                id: h.id,
                agent_id: h.agent_id,
                kind: kind(h.kind).into(),
                summary: h.summary,
                reason: h.reason,
                context_snapshot: h.context_snapshot,
                created_at: h.created_at,
                expires_at: h.expires_at,
                status: "pending".into(),
            })
            .collect(),
    )
}

fn map(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no held action with id {id}"),
        ),
        ApprovalError::AlreadyResolved(id) => ApiError::new(
            StatusCode::CONFLICT,
            "already_resolved",
            format!("held action {id} is already resolved"),
        ),
        ApprovalError::ReasonRequired(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "REASON_REQUIRED", e.to_string())
        }
        ApprovalError::RoleRequired { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "ROLE_REQUIRED", e.to_string())
        }
        ApprovalError::Audit(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "AUDIT_UNAVAILABLE",
            e.to_string(),
        ),
    }
}

/// Approves a held action (200, empty body).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", params(("id" = String, Path)),
    request_body(content = DecisionRequest, description = "optional"),
    responses((status = 200, description = "Approved (empty body)"), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
pub async fn approve(
    State(s): State<Arc<ApiState>>,
    Admin(who): Admin,
    IdText(id): IdText,
    OptionalJson(r): OptionalJson<DecisionRequest>,
) -> Result<StatusCode, ApiError> {
    let roles = s.authority.roles(&who);
    s.engine
        .gateway()
        .approvals()
        .approve(&id, &who.name(), &roles, r.reason)
        .await
        .map_err(map)?;
    Ok(StatusCode::OK)
}

/// Denies a held action (200, empty body).
#[utoipa::path(post, path = "/api/v1/approvals/{id}/deny", tag = "approvals", params(("id" = String, Path)),
    request_body(content = DecisionRequest, description = "optional"),
    responses((status = 200, description = "Denied (empty body)"), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
pub async fn deny(
    State(s): State<Arc<ApiState>>,
    Admin(who): Admin,
    IdText(id): IdText,
    OptionalJson(r): OptionalJson<DecisionRequest>,
) -> Result<StatusCode, ApiError> {
    let roles = s.authority.roles(&who);
    s.engine
        .gateway()
        .approvals()
        .deny(&id, &who.name(), &roles, r.reason)
        .await
        .map_err(map)?;
    Ok(StatusCode::OK)
}
