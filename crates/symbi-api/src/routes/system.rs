//! System endpoints (API-CONTRACT §4) and the routes outside `/api/v1` (§8).

use crate::error::ApiError;
use crate::model::*;
use crate::server::{Admin, Caller};
use crate::state::ApiState;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Window of "recent" errors in the health report.
const RECENT: Duration = Duration::from_secs(3600);

fn component_status(ok: bool, degraded: bool) -> &'static str {
    if !ok {
        "unhealthy"
    } else if degraded {
        "degraded"
    } else {
        "healthy"
    }
}

/// The `components` object and the overall status.
pub fn components(s: &ApiState) -> (serde_json::Value, &'static str) {
    let rt = s.engine.runtime();
    let counts = rt.counts();
    let sched = rt.scheduler_counts();
    let res = rt.resources();
    // The counters only: a full snapshot also summarises three latency histograms.
    let m = rt.metrics_handle();
    let sink_failures = m.sink_failures.load(std::sync::atomic::Ordering::Relaxed);
    let runtime_errors = s.errors.recent("runtime", RECENT);
    let accepting = rt.is_accepting();
    let runtime = json!({
        "status": component_status(accepting, sink_failures > 0 || !runtime_errors.is_empty()),
        "accepting_work": accepting,
        "agents": rt.agent_count(),
        "agents_failed": counts.failed,
        "agents_suspended": counts.suspended,
        "tasks_queued": sched.queued,
        "tasks_running": sched.running,
        "resource_usage": {
            "memory_allocated_bytes": res.allocated.memory_bytes,
            "memory_capacity_bytes": res.capacity.memory_bytes,
            "cpu_allocated_cores": res.allocated.cpu_millicores as f64 / 1000.0,
            "cpu_capacity_cores": res.capacity.cpu_millicores as f64 / 1000.0,
        },
        "tasks_failed": m.failures(),
        "recent_errors": runtime_errors,
    });
    let h = s.schedules.health();
    let sched_errors = s.errors.recent("schedules", RECENT);
    let schedules = json!({
        "status": component_status(h.is_running && h.store_accessible, h.jobs_dead_letter > 0 || !sched_errors.is_empty()),
        "running": h.is_running,
        "store_accessible": h.store_accessible,
        "jobs": h.jobs_total,
        "active_runs": h.global_active_runs,
        "recent_errors": sched_errors,
    });
    let audit_errors = s.errors.recent("audit", RECENT);
    let audit = json!({
        "status": component_status(true, !audit_errors.is_empty()),
        "recent_errors": audit_errors,
    });
    let api_errors = s.errors.recent("api", RECENT);
    let (memory_bytes, cpu_percent) = s.cpu.usage();
    let api = json!({
        "status": component_status(true, !api_errors.is_empty()),
        "resource_usage": {
            "memory_bytes": memory_bytes,
            "cpu_percent": cpu_percent,
        },
        "external_agents": s.external.len(),
        "recent_errors": api_errors,
    });
    let approvals = json!({
        "status": "healthy",
        "pending": s.engine.gateway().approvals().pending().len(),
        "recent_errors": [],
    });
    let all = [&runtime, &schedules, &audit, &api];
    let overall = if all.iter().any(|c| c["status"] == "unhealthy") {
        if accepting { "degraded" } else { "unhealthy" }
    } else if all.iter().any(|c| c["status"] == "degraded") {
        "degraded"
    } else {
        "healthy"
    };
    (
        json!({ "runtime": runtime, "schedules": schedules, "audit": audit, "api": api, "approvals": approvals }),
        overall,
    )
}

/// Liveness and component health.
#[utoipa::path(get, path = "/api/v1/health", tag = "system", security(()),
    responses((status = 200, description = "The process serves requests", body = HealthResponse)))]
pub async fn health(State(s): State<Arc<ApiState>>) -> Json<HealthResponse> {
    let (components, status) = components(&s);
    Json(HealthResponse {
        status: status.to_string(),
        uptime_seconds: s.started.elapsed().as_secs(),
        timestamp: chrono::Utc::now(),
        version: VERSION.to_string(),
        components,
    })
}

/// 200 with an empty body while the process serves requests.
#[utoipa::path(get, path = "/api/v1/health/live", tag = "system", security(()),
    responses((status = 200, description = "Alive (empty body)")))]
pub async fn live() -> StatusCode {
    StatusCode::OK
}

/// 200 once start-up is complete and the runtime accepts work, else 503 (empty bodies).
#[utoipa::path(get, path = "/api/v1/health/ready", tag = "system", security(()),
    responses((status = 200, description = "Ready (empty body)"), (status = 503, description = "Not ready (empty body)")))]
pub async fn ready(State(s): State<Arc<ApiState>>) -> StatusCode {
    if s.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The schedule engine's health (13 fields).
#[utoipa::path(get, path = "/api/v1/health/scheduler", tag = "system",
    responses((status = 200, body = crate::schedules::SchedulerHealth)))]
pub async fn scheduler_health(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
) -> Json<crate::schedules::SchedulerHealth> {
    Json(s.schedules.health())
}

/// Version and counts.
#[utoipa::path(get, path = "/api/v1/status", tag = "system", responses((status = 200, body = StatusResponse)))]
pub async fn status(State(s): State<Arc<ApiState>>, _a: Admin) -> Json<StatusResponse> {
    let (_, overall) = components(&s);
    Json(StatusResponse {
        version: VERSION.to_string(),
        healthy: overall != "unhealthy",
        agent_count: s.engine.runtime().agent_count() + s.external.len(),
        schedule_count: s.schedules.len(),
        channel_count: 0,
    })
}

fn secrets_count(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// Agent counts and process figures (upstream shape plus the flat keys).
#[utoipa::path(get, path = "/api/v1/metrics", tag = "system", responses((status = 200, body = MetricsResponse)))]
pub async fn metrics_json(
    State(s): State<Arc<ApiState>>,
    _a: Admin,
) -> Result<Json<MetricsResponse>, ApiError> {
    let rt = s.engine.runtime();
    let c = rt.counts();
    let ext = s.external.list();
    let ext_running = ext
        .iter()
        .filter(|e| e.2 == crate::external::ApiAgentState::Running)
        .count();
    let ext_failed = ext
        .iter()
        .filter(|e| e.2 == crate::external::ApiAgentState::Failed)
        .count();
    let total = rt.agent_count() + ext.len();
    let running = c.running + ext_running;
    let error = c.failed + ext_failed;
    let uptime = s.started.elapsed().as_secs();
    let (rss, cpu) = s.cpu.usage();
    let host = crate::sysinfo::host_memory_bytes();
    let data_dir = s.data_dir.clone();
    let (disk, disk_pct, secrets) = tokio::task::spawn_blocking(move || {
        (
            crate::sysinfo::dir_size(&data_dir),
            crate::sysinfo::fs_used_percent(&data_dir),
            secrets_count(&data_dir.join("vault")),
        )
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "METRICS_FAILED",
            e.to_string(),
        )
    })?;
    Ok(Json(MetricsResponse {
        agents: MetricsAgents {
            total,
            running,
            idle: total.saturating_sub(running).saturating_sub(error),
            error,
        },
        system: MetricsSystem {
            uptime_seconds: uptime,
            memory_usage: rss,
            cpu_usage: cpu,
        },
        uptime_seconds: uptime,
        memory_usage_bytes: rss,
        memory_usage_percent: if host == 0 {
            0.0
        } else {
            rss as f64 / host as f64 * 100.0
        },
        cpu_usage_percent: cpu,
        disk_usage_bytes: disk,
        disk_usage_percent: disk_pct,
        active_agents: running,
        total_agents: total,
        secrets_count: secrets,
        mcp_connections: 0,
        vector_db_items: 0,
        schedules_total: s.schedules.len(),
        approvals_pending: s.engine.gateway().approvals().pending().len(),
    }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "observability",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")))]
pub async fn prometheus(State(s): State<Arc<ApiState>>, _c: Caller) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

/// The OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api-docs/openapi.json", tag = "observability",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi(State(s): State<Arc<ApiState>>, _c: Caller) -> Result<Response, ApiError> {
    if !s.settings.openapi {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "the OpenAPI document is disabled ([api] openapi = false)",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document_json(),
    )
        .into_response())
}

/// The project's AGENTS.md with sensitive sections removed (opt-in).
#[utoipa::path(get, path = "/agents.md", tag = "observability",
    responses((status = 200, description = "AGENTS.md", content_type = "text/markdown")))]
pub async fn agents_md(State(s): State<Arc<ApiState>>, _c: Caller) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no AGENTS.md is published ([api] agents_md)",
        )
    };
    let path = s.settings.agents_md.clone().ok_or_else(not_found)?;
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|_| not_found())?;
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        strip_sensitive(&text),
    )
        .into_response())
}

/// Removes sections whose heading names secrets, credentials, internal or private
/// matters, and `<!-- private -->` … `<!-- /private -->` blocks.
pub fn strip_sensitive(text: &str) -> String {
    const WORDS: &[&str] = &[
        "secret",
        "credential",
        "password",
        "token",
        "private",
        "internal",
        "key",
    ];
    let mut out = String::new();
    let mut skip_level: Option<usize> = None;
    let mut in_private = false;
    for line in text.lines() {
        let t = line.trim();
        if t.eq_ignore_ascii_case("<!-- private -->") {
            in_private = true;
            continue;
        }
        if t.eq_ignore_ascii_case("<!-- /private -->") {
            in_private = false;
            continue;
        }
        if in_private {
            continue;
        }
        let level = t.chars().take_while(|c| *c == '#').count();
        if level > 0 && t[level..].starts_with(' ') {
            if let Some(l) = skip_level {
                if level <= l {
                    skip_level = None;
                }
            }
            let lower = t.to_lowercase();
            if skip_level.is_none() && WORDS.iter().any(|w| lower.contains(w)) {
                skip_level = Some(level);
                continue;
            }
        }
        if skip_level.is_none() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn agents_md_sections() {
        let md = "# Project\nintro\n## Secrets\nAPI_KEY=x\n### sub\ny\n## Build\ncargo build\n<!-- private -->\nhidden\n<!-- /private -->\nend\n";
        let out = super::strip_sensitive(md);
        assert_eq!(out, "# Project\nintro\n## Build\ncargo build\nend\n");
    }
}
