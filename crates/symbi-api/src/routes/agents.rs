//! Agents, messages and workflows (API-CONTRACT §5).

use crate::backend::{self, BackendError};
use crate::error::ApiError;
use crate::external::{ApiAgentState, ExternalAgent};
use crate::extract::{AgentIdPath, ApiJson, IdText, OptionalJson};
use crate::model::*;
use crate::server::{Admin, Caller, admin_required, scope_denied};
use crate::state::ApiState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

fn not_found(id: &Uuid) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "AGENT_NOT_FOUND",
        format!("agent {id} not found"),
    )
}

fn check_scope(who: &crate::auth::Identity, id: &Uuid) -> Result<(), ApiError> {
    if who.may_access(id) {
        Ok(())
    } else {
        Err(scope_denied(id))
    }
}

/// Maps a backend failure to the endpoint's code: DSL problems 400 with diagnostics,
/// unknown agents 404, internal failures 500.
fn map(e: BackendError, code: &'static str) -> ApiError {
    match e {
        BackendError::NotFound(id) => not_found(&id),
        BackendError::Invalid {
            message,
            diagnostics,
        } => ApiError::new(StatusCode::BAD_REQUEST, code, message)
            .with_details(json!({ "diagnostics": diagnostics })),
        BackendError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, m),
        BackendError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, code, m),
        BackendError::Internal(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, m),
    }
}

fn invalid(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message).with_details(json!({ "diagnostics": [] }))
}

/// Every agent (runtime and External), filtered to a scoped key's agents.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", responses((status = 200, body = [AgentSummary])))]
pub async fn list(State(s): State<Arc<ApiState>>, Caller(who): Caller) -> Json<Vec<AgentSummary>> {
    let mut out: Vec<AgentSummary> = s
        .engine
        .runtime()
        .list()
        .into_iter()
        .map(|a| AgentSummary {
            id: a.id.0,
            name: a.name,
            state: a.state.into(),
        })
        .chain(
            s.external
                .list()
                .into_iter()
                .map(|(id, name, state)| AgentSummary { id, name, state }),
        )
        .filter(|a| who.may_access(&a.id))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Json(out)
}

/// Creates an agent from DSL source (or registers an External agent for monitoring).
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = CreateAgentRequest,
    responses((status = 200, body = AgentIdStatus), (status = 400, description = "Invalid name or DSL; `details.diagnostics` lists positioned problems", body = ErrorResponse)))]
pub async fn create(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    ApiJson(r): ApiJson<CreateAgentRequest>,
) -> Result<Json<AgentIdStatus>, ApiError> {
    const CODE: &str = "AGENT_CREATION_FAILED";
    if r.name.trim().is_empty() {
        return Err(invalid(CODE, "`name` must not be empty"));
    }
    let mode = r.execution_mode.unwrap_or(ExecutionMode::Ephemeral);
    if let ExecutionMode::External {
        endpoint,
        agentpin_domain,
        heartbeat_interval_secs,
    } = &mode
    {
        if *heartbeat_interval_secs == 0 {
            return Err(invalid(
                CODE,
                "`heartbeat_interval_secs` must be at least 1",
            ));
        }
        let id = Uuid::new_v4();
        s.external.register(ExternalAgent {
            id,
            name: r.name,
            endpoint: endpoint.clone(),
            agentpin_domain: agentpin_domain.clone(),
            heartbeat_interval_secs: *heartbeat_interval_secs,
            reported: ApiAgentState::Created,
            last_activity: chrono::Utc::now(),
            heartbeat_seen: false,
            metadata: r.metadata.unwrap_or_default(),
            last_result: None,
            capabilities: r.capabilities.unwrap_or_default(),
            events: VecDeque::new(),
        });
        s.history.push(id, id, "created");
        return Ok(Json(AgentIdStatus {
            id,
            status: "scheduled".into(),
        }));
    }
    let Some(dsl) = r.dsl.filter(|d| !d.trim().is_empty()) else {
        return Err(invalid(
            CODE,
            "`dsl` is required (the agent's DSL program source)",
        ));
    };
    let id = backend::create_agent(
        &s,
        &r.name,
        &dsl,
        &mode,
        r.capabilities.unwrap_or_default(),
        r.metadata.unwrap_or_default(),
    )
    .await
    .map_err(|e| map(e, CODE))?;
    Ok(Json(AgentIdStatus {
        id,
        status: "scheduled".into(),
    }))
}

/// The agent's status.
#[utoipa::path(get, path = "/api/v1/agents/{id}/status", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentStatusResponse)))]
pub async fn status(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    AgentIdPath(id): AgentIdPath,
) -> Result<Json<AgentStatusResponse>, ApiError> {
    check_scope(&who, &id)?;
    if let Some(a) = s.external.get(&id) {
        return Ok(Json(AgentStatusResponse {
            agent_id: id,
            state: a.state(chrono::Utc::now()),
            last_activity: if a.heartbeat_seen {
                a.last_activity
            } else {
                chrono::Utc::now()
            },
            resource_usage: ResourceUsage {
                memory_bytes: 0,
                cpu_percent: 0.0,
                active_tasks: 0,
            },
            execution_mode: Some("External".into()),
            metadata: Some(a.metadata),
            last_result: a.last_result,
            recent_events: Some(a.events.into_iter().collect()),
        }));
    }
    let st = backend::status(&s, id).ok_or_else(|| not_found(&id))?;
    Ok(Json(st))
}

/// Renames an agent or replaces its program.
#[utoipa::path(put, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path)), request_body = UpdateAgentRequest,
    responses((status = 200, body = AgentIdStatus)))]
pub async fn update(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    AgentIdPath(id): AgentIdPath,
    ApiJson(r): ApiJson<UpdateAgentRequest>,
) -> Result<Json<AgentIdStatus>, ApiError> {
    const CODE: &str = "AGENT_UPDATE_FAILED";
    if r.name.is_none() && r.dsl.is_none() {
        return Err(invalid(CODE, "give `name` or `dsl`"));
    }
    if r.name.as_deref().is_some_and(|n| n.trim().is_empty())
        || r.dsl.as_deref().is_some_and(|d| d.trim().is_empty())
    {
        return Err(invalid(CODE, "`name` and `dsl` must not be empty"));
    }
    if s.external.contains(&id) {
        if r.dsl.is_some() {
            return Err(invalid(CODE, "External agents have no DSL program"));
        }
        s.external.rename(&id, r.name.unwrap_or_default());
        return Ok(Json(AgentIdStatus {
            id,
            status: "updated".into(),
        }));
    }
    backend::update_agent(&s, id, r.name, r.dsl)
        .await
        .map_err(|e| map(e, CODE))?;
    Ok(Json(AgentIdStatus {
        id,
        status: "updated".into(),
    }))
}

/// Stops and removes an agent.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentIdStatus)))]
pub async fn delete(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
    AgentIdPath(id): AgentIdPath,
) -> Result<Json<AgentIdStatus>, ApiError> {
    if s.external.remove(&id) {
        s.history.remove(&id);
        return Ok(Json(AgentIdStatus {
            id,
            status: "deleted".into(),
        }));
    }
    backend::delete_agent(&s, id)
        .await
        .map_err(|e| map(e, "AGENT_DELETION_FAILED"))?;
    s.idempotency.remove_agent(id);
    Ok(Json(AgentIdStatus {
        id,
        status: "deleted".into(),
    }))
}

/// Starts an execution (asynchronous). `Idempotency-Key` is honoured: a repeat returns the
/// first execution's id without running the agent again.
#[utoipa::path(post, path = "/api/v1/agents/{id}/execute", tag = "agents", params(("id" = Uuid, Path)),
    request_body(content = ExecuteRequest, description = "optional; no body = {}"),
    responses((status = 200, body = ExecuteResponse)))]
pub async fn execute(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    AgentIdPath(id): AgentIdPath,
    headers: HeaderMap,
    OptionalJson(r): OptionalJson<ExecuteRequest>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    const CODE: &str = "AGENT_EXECUTION_FAILED";
    check_scope(&who, &id)?;
    if s.external.contains(&id) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CODE,
            "External agents run elsewhere and cannot be executed here",
        ));
    }
    let input = r.input.unwrap_or(Value::Null);
    let initiator = who.name();
    let start = {
        let s = s.clone();
        move || async move {
            // The engine records `execution_started`, then `completed` or `failed`.
            let started =
                backend::start_execution(&s, id, input, json!({ "kind": "http" }), Some(initiator))
                    .await?;
            let exec = started.execution_id;
            tokio::spawn(async move {
                if let Err(f) = started.completion.await {
                    tracing::debug!(agent = %id, execution = %exec, error = %f, "execution failed");
                }
            });
            Ok::<Uuid, BackendError>(exec)
        }
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let execution_id = match key {
        Some(k) => s.idempotency.get_or_start(id, k, start).await,
        None => start().await,
    }
    .map_err(|e| map(e, CODE))?;
    Ok(Json(ExecuteResponse {
        execution_id,
        status: "execution_started".into(),
    }))
}

/// The agent's history, newest first (at most 100).
#[utoipa::path(get, path = "/api/v1/agents/{id}/history", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = HistoryResponse)))]
pub async fn history(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    AgentIdPath(id): AgentIdPath,
) -> Result<Json<HistoryResponse>, ApiError> {
    check_scope(&who, &id)?;
    let history = if s.external.contains(&id) {
        s.history.newest_first(&id)
    } else {
        backend::history(&s, id)
    };
    Ok(Json(HistoryResponse { history }))
}

fn agentpin_check(s: &ApiState, id: &Uuid, jwt: Option<&str>) -> Result<(), ApiError> {
    // AgentPin verification is enabled per agent by giving it an `agentpin_domain`; this
    // runtime has no AgentPin verifier, so such agents fail closed.
    if let Some(a) = s.external.get(id) {
        if a.agentpin_domain.is_some() {
            let why = if jwt.is_none() {
                "an AgentPin token is required"
            } else {
                "AgentPin verification is not available in this runtime"
            };
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "AGENTPIN_VERIFICATION_FAILED",
                why,
            ));
        }
    }
    Ok(())
}

/// Heartbeat of an External agent (200, empty body).
#[utoipa::path(post, path = "/api/v1/agents/{id}/heartbeat", tag = "agents", params(("id" = Uuid, Path)), request_body = HeartbeatRequest,
    responses((status = 200, description = "Recorded (empty body)")))]
pub async fn heartbeat(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    AgentIdPath(id): AgentIdPath,
    ApiJson(r): ApiJson<HeartbeatRequest>,
) -> Result<StatusCode, ApiError> {
    check_scope(&who, &id)?;
    if !s.external.contains(&id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "HEARTBEAT_FAILED",
            format!("agent {id} is not an External agent"),
        ));
    }
    agentpin_check(&s, &id, r.agentpin_jwt.as_deref())?;
    s.external
        .heartbeat(&id, r.state, r.metadata, r.last_result);
    Ok(StatusCode::OK)
}

/// Event of an External agent (200, empty body).
#[utoipa::path(post, path = "/api/v1/agents/{id}/events", tag = "agents", params(("id" = Uuid, Path)), request_body = PushEventRequest,
    responses((status = 200, description = "Recorded (empty body)")))]
pub async fn push_event(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    AgentIdPath(id): AgentIdPath,
    ApiJson(r): ApiJson<PushEventRequest>,
) -> Result<StatusCode, ApiError> {
    check_scope(&who, &id)?;
    if !s.external.contains(&id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "PUSH_EVENT_FAILED",
            format!("agent {id} is not an External agent"),
        ));
    }
    agentpin_check(&s, &id, r.agentpin_jwt.as_deref())?;
    s.external.push_event(&id, r.event_type, r.payload);
    Ok(StatusCode::OK)
}

/// Sends a message to agent `{id}` (or publishes to `topic`).
#[utoipa::path(post, path = "/api/v1/agents/{id}/messages", tag = "messages", params(("id" = Uuid, Path)), request_body = SendMessageRequest,
    responses((status = 200, body = SendMessageResponse)))]
pub async fn send_message(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    AgentIdPath(id): AgentIdPath,
    ApiJson(r): ApiJson<SendMessageRequest>,
) -> Result<Json<SendMessageResponse>, ApiError> {
    const CODE: &str = "SEND_MESSAGE_FAILED";
    check_scope(&who, &r.sender)?;
    let ttl = r
        .ttl_seconds
        .unwrap_or(300)
        .clamp(1, s.settings.max_message_ttl_secs);
    let message_id = backend::send_message(&s, r.sender, id, r.topic.as_deref(), r.payload, ttl)
        .await
        .map_err(|e| map(e, CODE))?;
    Ok(Json(SendMessageResponse {
        message_id,
        status: "pending".into(),
    }))
}

/// Returns and removes the agent's pending messages.
#[utoipa::path(get, path = "/api/v1/agents/{id}/messages", tag = "messages", params(("id" = Uuid, Path)),
    responses((status = 200, body = MessagesResponse)))]
pub async fn drain_messages(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    AgentIdPath(id): AgentIdPath,
) -> Result<Json<MessagesResponse>, ApiError> {
    check_scope(&who, &id)?;
    let messages = backend::drain_messages(&s, id).await.map_err(|e| match e {
        BackendError::NotFound(id) => not_found(&id),
        other => map(other, "RECEIVE_MESSAGES_FAILED"),
    })?;
    Ok(Json(MessagesResponse { messages }))
}

/// Delivery status of a message.
#[utoipa::path(get, path = "/api/v1/messages/{id}/status", tag = "messages", params(("id" = Uuid, Path)),
    responses((status = 200, body = MessageStatusResponse)))]
pub async fn message_status(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    IdText(raw): IdText,
) -> Result<Json<MessageStatusResponse>, ApiError> {
    if !who.is_admin() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "AGENT_SCOPE_DENIED",
            "scoped API keys may not read message status",
        ));
    }
    let id = Uuid::parse_str(&raw).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_MESSAGE_ID",
            format!("`{raw}` is not a message id"),
        )
    })?;
    let status = backend::message_status(&s, id)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "MESSAGE_STATUS_FAILED",
                e.to_string(),
            )
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "MESSAGE_STATUS_FAILED",
                format!("message {id} not found"),
            )
        })?;
    Ok(Json(MessageStatusResponse {
        message_id: id.to_string(),
        status,
    }))
}

/// Runs a workflow: DSL program source text (its first agent runs) or the name of a
/// loaded agent.
#[utoipa::path(post, path = "/api/v1/workflows/execute", tag = "workflows", request_body = WorkflowRequest,
    responses((status = 200, description = "Started", body = Object)))]
pub async fn workflow(
    State(s): State<Arc<ApiState>>,
    Caller(who): Caller,
    ApiJson(r): ApiJson<WorkflowRequest>,
) -> Result<Json<Value>, ApiError> {
    const CODE: &str = "WORKFLOW_EXECUTION_FAILED";
    match &r.agent_id {
        Some(a) => {
            check_scope(&who, a)?;
            if !s.external.contains(a) && s.engine.runtime().get(symbi_types::AgentId(*a)).is_none()
            {
                return Err(not_found(a));
            }
        }
        None if !who.is_admin() => return Err(admin_required()),
        None => {}
    }
    if r.workflow_id.trim().is_empty() {
        return Err(invalid(CODE, "`workflow_id` must not be empty"));
    }
    let initiator = r
        .agent_id
        .map(|a| format!("agent:{a}"))
        .unwrap_or_else(|| who.name());
    let w = backend::start_workflow(&s, &r.workflow_id, r.parameters.clone(), initiator)
        .await
        .map_err(|e| map(e, CODE))?;
    let rt = s.engine.runtime();
    let res = rt.resources();
    let mut out = json!({
        "status": "success",
        "workflow_id": r.workflow_id,
        "agent_id": w.agent_id,
        "execution_id": w.execution_id,
        "execution_started": true,
        "metadata": w.metadata,
        "system_status": {
            "total_agents": rt.agent_count() + s.external.len(),
            "running_agents": rt.counts().running,
            "resource_utilization": {
                "memory_used": res.allocated.memory_bytes,
                "cpu_utilization": if res.capacity.cpu_millicores == 0 { 0.0 } else { res.allocated.cpu_millicores as f64 / res.capacity.cpu_millicores as f64 * 100.0 },
                "disk_io_rate": res.allocated.disk_io_bps,
                "network_io_rate": res.allocated.network_io_bps,
            }
        },
    });
    if !r.parameters.is_null() {
        out["parameters"] = r.parameters;
    }
    Ok(Json(out))
}
