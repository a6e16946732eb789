//! The route table of API-CONTRACT.md. Body limits are per route: 2 MiB (configurable)
//! everywhere, 256 KiB on `POST /api/v1/agents/{id}/messages`.

pub mod agents;
pub mod approvals;
pub mod channels;
pub mod schedules;
pub mod system;

use crate::state::ApiState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use std::sync::Arc;

/// Every route (without the cross-cutting layers of [`crate::server::app`]).
pub fn router(state: Arc<ApiState>) -> Router<Arc<ApiState>> {
    let body = DefaultBodyLimit::max(state.settings.body_limit);
    let messages = Router::new()
        .route(
            "/api/v1/agents/{id}/messages",
            post(agents::send_message).get(agents::drain_messages),
        )
        .layer(DefaultBodyLimit::max(state.settings.message_body_limit));
    let api = Router::new()
        .route("/api/v1/health", get(system::health))
        .route("/api/v1/health/live", get(system::live))
        .route("/api/v1/health/ready", get(system::ready))
        .route("/api/v1/health/scheduler", get(system::scheduler_health))
        .route("/api/v1/status", get(system::status))
        .route("/api/v1/metrics", get(system::metrics_json))
        .route("/api/v1/agents", get(agents::list).post(agents::create))
        .route(
            "/api/v1/agents/{id}",
            put(agents::update).delete(agents::delete),
        )
        .route("/api/v1/agents/{id}/status", get(agents::status))
        .route("/api/v1/agents/{id}/execute", post(agents::execute))
        .route("/api/v1/agents/{id}/history", get(agents::history))
        .route("/api/v1/agents/{id}/heartbeat", post(agents::heartbeat))
        .route("/api/v1/agents/{id}/events", post(agents::push_event))
        .route("/api/v1/messages/{id}/status", get(agents::message_status))
        .route("/api/v1/workflows/execute", post(agents::workflow))
        .route(
            "/api/v1/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/api/v1/schedules/{id}",
            get(schedules::get)
                .put(schedules::update)
                .delete(schedules::delete),
        )
        .route("/api/v1/schedules/{id}/pause", post(schedules::pause))
        .route("/api/v1/schedules/{id}/resume", post(schedules::resume))
        .route("/api/v1/schedules/{id}/trigger", post(schedules::trigger))
        .route("/api/v1/schedules/{id}/history", get(schedules::history))
        .route(
            "/api/v1/schedules/{id}/next-runs",
            get(schedules::next_runs),
        )
        .route(
            "/api/v1/channels",
            get(channels::list).post(channels::register),
        )
        .route(
            "/api/v1/channels/{id}",
            get(channels::get)
                .put(channels::update)
                .delete(channels::delete),
        )
        .route("/api/v1/channels/{id}/start", post(channels::start))
        .route("/api/v1/channels/{id}/stop", post(channels::stop))
        .route("/api/v1/channels/{id}/health", get(channels::health))
        .route(
            "/api/v1/channels/{id}/mappings",
            get(channels::mappings).post(channels::add_mapping),
        )
        .route(
            "/api/v1/channels/{id}/mappings/{user_id}",
            axum::routing::delete(channels::remove_mapping),
        )
        .route("/api/v1/channels/{id}/audit", get(channels::audit))
        .route("/api/v1/approvals", get(approvals::list))
        .route("/api/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/api/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/api-docs/openapi.json", get(system::openapi))
        .route("/metrics", get(system::prometheus))
        .route("/agents.md", get(system::agents_md))
        .route("/.well-known/agents.md", get(system::agents_md))
        .layer(body);
    api.merge(messages)
}
