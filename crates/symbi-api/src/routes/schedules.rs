//! Schedules (API-CONTRACT §6), all admin-only. Response objects are closed.

use crate::error::ApiError;
use crate::extract::{ApiJson, IdText, OptionalJson};
use crate::model::*;
use crate::schedules::{JobUpdate, NewJob, ScheduleError};
use crate::server::Admin;
use crate::state::ApiState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use std::sync::Arc;
use uuid::Uuid;

fn parse_id(raw: &str, code: &'static str) -> Result<Uuid, ApiError> {
    // A malformed job id is treated as not found (API-CONTRACT §6).
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            code,
            format!("schedule {raw} not found"),
        )
    })
}

fn map(e: ScheduleError, code: &'static str) -> ApiError {
    match e {
        ScheduleError::NotFound(id) => {
            let nf = if matches!(code, "UPDATE_SCHEDULE_FAILED") {
                "SCHEDULE_NOT_FOUND"
            } else {
                code
            };
            ApiError::new(
                StatusCode::NOT_FOUND,
                nf,
                format!("schedule {id} not found"),
            )
        }
        ScheduleError::Timing(t) => ApiError::new(StatusCode::BAD_REQUEST, code, t.to_string()),
        ScheduleError::UnknownAgent(_) | ScheduleError::Invalid(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
        }
        ScheduleError::Store { .. } => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, e.to_string())
        }
    }
}

/// Every schedule.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", responses((status = 200, body = [ScheduleSummary])))]
pub async fn list(State(s): State<Arc<ApiState>>, _a: Admin) -> Json<Vec<ScheduleSummary>> {
    Json(
        s.schedules
            .list()
            .iter()
            .map(ScheduleSummary::from)
            .collect(),
    )
}

/// Creates a schedule.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", request_body = CreateScheduleRequest,
    responses((status = 201, body = CreateScheduleResponse)))]
pub async fn create(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    ApiJson(r): ApiJson<CreateScheduleRequest>,
) -> Result<(StatusCode, Json<CreateScheduleResponse>), ApiError> {
    let (job_id, next_run) = s
        .schedules
        .create(NewJob {
            name: r.name,
            cron_expression: r.cron_expression,
            agent_name: r.agent_name,
            timezone: r.timezone,
            policy_ids: r.policy_ids,
            one_shot: r.one_shot,
        })
        .await
        .map_err(|e| map(e, "CREATE_SCHEDULE_FAILED"))?;
    Ok((
        StatusCode::CREATED,
        Json(CreateScheduleResponse {
            job_id,
            next_run,
            status: "created".into(),
        }),
    ))
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleDetail)))]
pub async fn get(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
) -> Result<Json<ScheduleDetail>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_NOT_FOUND")?;
    let r = s
        .schedules
        .get(id)
        .map_err(|e| map(e, "SCHEDULE_NOT_FOUND"))?;
    Ok(Json(ScheduleDetail::from(&r)))
}

/// Changes the given keys of a schedule.
#[utoipa::path(put, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    request_body = UpdateScheduleRequest, responses((status = 200, body = ScheduleDetail)))]
pub async fn update(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
    ApiJson(r): ApiJson<UpdateScheduleRequest>,
) -> Result<Json<ScheduleDetail>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_NOT_FOUND")?;
    let rec = s
        .schedules
        .update(
            id,
            JobUpdate {
                cron_expression: r.cron_expression,
                timezone: r.timezone,
                policy_ids: r.policy_ids,
                one_shot: r.one_shot,
            },
        )
        .await
        .map_err(|e| map(e, "UPDATE_SCHEDULE_FAILED"))?;
    Ok(Json(ScheduleDetail::from(&rec)))
}

/// Deletes a schedule.
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = DeleteScheduleResponse)))]
pub async fn delete(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
) -> Result<Json<DeleteScheduleResponse>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_NOT_FOUND")?;
    s.schedules
        .delete(id)
        .await
        .map_err(|e| map(e, "SCHEDULE_NOT_FOUND"))?;
    Ok(Json(DeleteScheduleResponse {
        job_id: id,
        deleted: true,
    }))
}

fn action(job_id: Uuid, action: &str, status: &str) -> Json<ScheduleActionResponse> {
    Json(ScheduleActionResponse {
        job_id,
        action: action.into(),
        status: status.into(),
    })
}

/// Pauses a schedule.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/pause", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleActionResponse)))]
pub async fn pause(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
    _b: OptionalJson<serde_json::Value>,
) -> Result<Json<ScheduleActionResponse>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_PAUSE_FAILED")?;
    s.schedules
        .pause(id)
        .await
        .map_err(|e| map(e, "SCHEDULE_PAUSE_FAILED"))?;
    Ok(action(id, "pause", "paused"))
}

/// Resumes a schedule.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/resume", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleActionResponse)))]
pub async fn resume(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
    _b: OptionalJson<serde_json::Value>,
) -> Result<Json<ScheduleActionResponse>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_RESUME_FAILED")?;
    s.schedules
        .resume(id)
        .await
        .map_err(|e| map(e, "SCHEDULE_RESUME_FAILED"))?;
    Ok(action(id, "resume", "active"))
}

/// Runs a schedule now.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/trigger", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleActionResponse)))]
pub async fn trigger(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
    _b: OptionalJson<serde_json::Value>,
) -> Result<Json<ScheduleActionResponse>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_TRIGGER_FAILED")?;
    s.schedules
        .trigger(id)
        .await
        .map_err(|e| map(e, "SCHEDULE_TRIGGER_FAILED"))?;
    Ok(action(id, "trigger", "triggered"))
}

/// Runs of a schedule, newest first.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/history", tag = "schedules", params(("id" = String, Path), LimitQuery),
    responses((status = 200, body = ScheduleHistoryResponse)))]
pub async fn history(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
    Query(q): Query<LimitQuery>,
) -> Result<Json<ScheduleHistoryResponse>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_HISTORY_FAILED")?;
    let limit = q.limit.unwrap_or(50).min(1000);
    let runs = s
        .schedules
        .history(id, limit)
        .map_err(|e| map(e, "SCHEDULE_HISTORY_FAILED"))?;
    Ok(Json(ScheduleHistoryResponse {
        job_id: id,
        history: runs
            .into_iter()
            .map(|r| RunView {
                run_id: r.run_id,
                started_at: r.started_at,
                completed_at: r.completed_at,
                status: r.status,
                error: r.error,
                execution_time_ms: r.execution_time_ms,
            })
            .collect(),
    }))
}

/// The next due times, ascending.
#[utoipa::path(get, path = "/api/v1/schedules/{id}/next-runs", tag = "schedules", params(("id" = String, Path), CountQuery),
    responses((status = 200, body = NextRunsResponse)))]
pub async fn next_runs(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    IdText(id): IdText,
    Query(q): Query<CountQuery>,
) -> Result<Json<NextRunsResponse>, ApiError> {
    let id = parse_id(&id, "SCHEDULE_NEXT_RUNS_FAILED")?;
    let count = q.count.unwrap_or(10).min(1000);
    let next_runs = s
        .schedules
        .next_runs(id, count)
        .map_err(|e| map(e, "SCHEDULE_NEXT_RUNS_FAILED"))?;
    Ok(Json(NextRunsResponse {
        job_id: id,
        next_runs,
    }))
}
