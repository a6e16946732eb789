//! Request and response bodies of API-CONTRACT §4–§7, with their OpenAPI schemas.
//!
//! Field names, casing and presence follow the contract exactly; objects the contract calls
//! *closed* (schedules, channels) have exactly the listed keys. Unknown request fields are
//! ignored (no `deny_unknown_fields` anywhere).

use crate::external::{AgentEvent, AgentEventType, ApiAgentState};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// `{error, code, details}` (API-CONTRACT §2.3).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    /// Human-readable message.
    pub error: String,
    /// Machine-readable code.
    pub code: String,
    /// Details or null.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

// ---- system -------------------------------------------------------------------------

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Now.
    pub timestamp: DateTime<Utc>,
    /// Version.
    pub version: String,
    /// [symbi] per-component status, resource use and recent errors.
    #[schema(value_type = Object)]
    pub components: Value,
}

/// `GET /status`.
#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    /// Version.
    pub version: String,
    /// Internal health check passed.
    pub healthy: bool,
    /// Agents.
    pub agent_count: usize,
    /// Schedules.
    pub schedule_count: usize,
    /// Channels.
    pub channel_count: usize,
}

/// `agents` of `GET /metrics`.
#[derive(Serialize, ToSchema)]
pub struct MetricsAgents {
    /// Registered.
    pub total: usize,
    /// Running.
    pub running: usize,
    /// total − running − error.
    pub idle: usize,
    /// Failed.
    pub error: usize,
}

/// `system` of `GET /metrics`.
#[derive(Serialize, ToSchema)]
pub struct MetricsSystem {
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Resident memory, bytes.
    pub memory_usage: u64,
    /// CPU, percent of one core.
    pub cpu_usage: f64,
}

/// `GET /metrics` (upstream shape plus the flat keys the Python client needs).
#[derive(Serialize, ToSchema)]
pub struct MetricsResponse {
    /// Agent counts.
    pub agents: MetricsAgents,
    /// Process figures.
    pub system: MetricsSystem,
    /// Same as `system.uptime_seconds`.
    pub uptime_seconds: u64,
    /// Resident memory, bytes.
    pub memory_usage_bytes: u64,
    /// Of host memory.
    pub memory_usage_percent: f64,
    /// CPU percent.
    pub cpu_usage_percent: f64,
    /// Data directory size.
    pub disk_usage_bytes: u64,
    /// Of the data directory's filesystem.
    pub disk_usage_percent: f64,
    /// Agents running.
    pub active_agents: usize,
    /// Agents registered.
    pub total_agents: usize,
    /// Secrets in the vault directory.
    pub secrets_count: u64,
    /// MCP connections.
    pub mcp_connections: u64,
    /// Vector store items.
    pub vector_db_items: u64,
    /// [symbi] schedule jobs.
    pub schedules_total: usize,
    /// [symbi] pending approvals.
    pub approvals_pending: usize,
}

// ---- agents -------------------------------------------------------------------------

/// `AgentSummary`.
#[derive(Serialize, ToSchema)]
pub struct AgentSummary {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// State.
    pub state: ApiAgentState,
}

/// `ExecutionMode` (externally tagged; API-CONTRACT §3.2).
#[derive(Clone, Debug, Deserialize, ToSchema, PartialEq)]
pub enum ExecutionMode {
    /// Runs when executed.
    Ephemeral,
    /// Keeps state between executions.
    Persistent,
    /// Runs on messages and events.
    EventDriven,
    /// Runs every interval.
    Scheduled {
        /// `{secs, nanos}`.
        interval: DurationJson,
    },
    /// Runs on a cron pattern.
    CronScheduled {
        /// Six or seven fields.
        cron_expression: String,
        /// IANA zone.
        #[serde(default = "utc")]
        timezone: String,
    },
    /// Runs elsewhere; monitored by heartbeats.
    External {
        /// Its endpoint.
        #[serde(default)]
        endpoint: Option<String>,
        /// AgentPin domain.
        #[serde(default)]
        agentpin_domain: Option<String>,
        /// Expected heartbeat interval.
        heartbeat_interval_secs: u64,
    },
}

fn utc() -> String {
    "UTC".into()
}

impl ExecutionMode {
    /// The variant name reported in `execution_mode`.
    pub fn variant(&self) -> &'static str {
        match self {
            Self::Ephemeral => "Ephemeral",
            Self::Persistent => "Persistent",
            Self::EventDriven => "EventDriven",
            Self::Scheduled { .. } => "Scheduled",
            Self::CronScheduled { .. } => "CronScheduled",
            Self::External { .. } => "External",
        }
    }
}

/// A Rust `Duration` as serde writes it.
#[derive(Clone, Debug, Deserialize, ToSchema, PartialEq)]
pub struct DurationJson {
    /// Seconds.
    pub secs: u64,
    /// Nanoseconds.
    #[serde(default)]
    pub nanos: u32,
}

/// `POST /agents`.
#[derive(Deserialize, ToSchema)]
pub struct CreateAgentRequest {
    /// Non-empty name.
    pub name: String,
    /// DSL source (required unless External).
    #[serde(default)]
    pub dsl: Option<String>,
    /// Default `Ephemeral`.
    #[serde(default)]
    pub execution_mode: Option<ExecutionMode>,
    /// Capabilities.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// Metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `{id, status}` answers of create/update/delete.
#[derive(Serialize, ToSchema)]
pub struct AgentIdStatus {
    /// Agent id.
    pub id: Uuid,
    /// `scheduled`, `updated` or `deleted`.
    pub status: String,
}

/// `ResourceUsage`.
#[derive(Serialize, ToSchema)]
pub struct ResourceUsage {
    /// Bytes.
    pub memory_bytes: u64,
    /// Percent.
    pub cpu_percent: f64,
    /// Tasks.
    pub active_tasks: u32,
}

/// `GET /agents/{id}/status`.
#[derive(Serialize, ToSchema)]
pub struct AgentStatusResponse {
    /// Id.
    pub agent_id: Uuid,
    /// State.
    pub state: ApiAgentState,
    /// Last activity.
    pub last_activity: DateTime<Utc>,
    /// Resource use.
    pub resource_usage: ResourceUsage,
    /// Variant name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<String>,
    /// External agents only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// External agents only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
    /// External agents only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_events: Option<Vec<AgentEvent>>,
}

/// `PUT /agents/{id}`.
#[derive(Deserialize, ToSchema)]
pub struct UpdateAgentRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New DSL source.
    #[serde(default)]
    pub dsl: Option<String>,
}

/// `POST /agents/{id}/execute`.
#[derive(Deserialize, Default, ToSchema)]
pub struct ExecuteRequest {
    /// [symbi] the agent's input.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Option<Value>,
}

/// Answer of execute.
#[derive(Serialize, ToSchema)]
pub struct ExecuteResponse {
    /// Execution id.
    pub execution_id: Uuid,
    /// `execution_started`.
    pub status: String,
}

/// `GET /agents/{id}/history`.
#[derive(Serialize, ToSchema)]
pub struct HistoryResponse {
    /// Newest first.
    pub history: Vec<crate::state::HistoryRecord>,
}

/// `POST /agents/{id}/heartbeat`.
#[derive(Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    /// Reported state.
    pub state: ApiAgentState,
    /// Merged into the stored metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Replaces the stored result.
    #[serde(default)]
    pub last_result: Option<String>,
    /// AgentPin token.
    #[serde(default)]
    pub agentpin_jwt: Option<String>,
}

/// `POST /agents/{id}/events`.
#[derive(Deserialize, ToSchema)]
pub struct PushEventRequest {
    /// Type.
    pub event_type: AgentEventType,
    /// Payload (required, may be null).
    #[schema(value_type = Object, nullable)]
    pub payload: Value,
    /// AgentPin token.
    #[serde(default)]
    pub agentpin_jwt: Option<String>,
}

/// `POST /agents/{id}/messages`.
#[derive(Deserialize, ToSchema)]
pub struct SendMessageRequest {
    /// Sender agent.
    pub sender: Uuid,
    /// Plain text.
    pub payload: String,
    /// Default 300.
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    /// Publish here instead of direct delivery.
    #[serde(default)]
    pub topic: Option<String>,
    /// AgentPin token.
    #[serde(default)]
    pub agentpin_jwt: Option<String>,
}

/// Answer of send.
#[derive(Serialize, ToSchema)]
pub struct SendMessageResponse {
    /// Id.
    pub message_id: Uuid,
    /// `pending`.
    pub status: String,
}

/// One drained message.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    /// Id.
    pub message_id: String,
    /// Sender.
    pub sender: String,
    /// Recipient.
    pub recipient: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Payload text.
    pub payload: String,
    /// `direct`, `publish`, …
    pub message_type: String,
    /// Unix seconds.
    pub timestamp_secs: u64,
    /// TTL.
    pub ttl_seconds: u64,
}

/// `GET /agents/{id}/messages`.
#[derive(Serialize, ToSchema)]
pub struct MessagesResponse {
    /// Drained messages.
    pub messages: Vec<MessageView>,
}

/// `GET /messages/{id}/status`.
#[derive(Serialize, ToSchema)]
pub struct MessageStatusResponse {
    /// Id.
    pub message_id: String,
    /// `pending`, `delivered`, `failed`, `expired`.
    pub status: String,
}

/// `POST /workflows/execute`.
#[derive(Deserialize, ToSchema)]
pub struct WorkflowRequest {
    /// DSL program source, or the name of a loaded agent.
    pub workflow_id: String,
    /// Input (may be null).
    #[schema(value_type = Object, nullable)]
    pub parameters: Value,
    /// Run as this agent.
    #[serde(default)]
    pub agent_id: Option<Uuid>,
}

// ---- schedules (closed objects) ------------------------------------------------------

/// `ScheduleSummary`.
#[derive(Serialize, ToSchema)]
pub struct ScheduleSummary {
    /// Id.
    pub job_id: Uuid,
    /// Name.
    pub name: String,
    /// Pattern.
    pub cron_expression: String,
    /// Zone.
    pub timezone: String,
    /// Status.
    pub status: crate::schedules::JobStatus,
    /// Not paused.
    pub enabled: bool,
    /// Next due time.
    pub next_run: Option<DateTime<Utc>>,
    /// Runs.
    pub run_count: u64,
}

/// `ScheduleDetail`.
#[derive(Serialize, ToSchema)]
pub struct ScheduleDetail {
    /// Id.
    pub job_id: Uuid,
    /// Name.
    pub name: String,
    /// Pattern.
    pub cron_expression: String,
    /// Zone.
    pub timezone: String,
    /// Status.
    pub status: crate::schedules::JobStatus,
    /// Not paused.
    pub enabled: bool,
    /// One-shot.
    pub one_shot: bool,
    /// Next due time.
    pub next_run: Option<DateTime<Utc>>,
    /// Last run.
    pub last_run: Option<DateTime<Utc>>,
    /// Runs.
    pub run_count: u64,
    /// Failures.
    pub failure_count: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

impl From<&crate::schedules::JobRecord> for ScheduleSummary {
    fn from(r: &crate::schedules::JobRecord) -> Self {
        ScheduleSummary {
            job_id: r.job_id,
            name: r.name.clone(),
            cron_expression: r.cron_text(),
            timezone: r.timezone.clone(),
            status: r.status,
            enabled: r.status == crate::schedules::JobStatus::Active,
            next_run: r.next_run,
            run_count: r.run_count,
        }
    }
}

impl From<&crate::schedules::JobRecord> for ScheduleDetail {
    fn from(r: &crate::schedules::JobRecord) -> Self {
        ScheduleDetail {
            job_id: r.job_id,
            name: r.name.clone(),
            cron_expression: r.cron_text(),
            timezone: r.timezone.clone(),
            status: r.status,
            enabled: r.status == crate::schedules::JobStatus::Active,
            one_shot: r.one_shot,
            next_run: r.next_run,
            last_run: r.last_run,
            run_count: r.run_count,
            failure_count: r.failure_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// `POST /schedules`.
#[derive(Deserialize, ToSchema)]
pub struct CreateScheduleRequest {
    /// Name.
    pub name: String,
    /// Pattern.
    pub cron_expression: String,
    /// Agent to run.
    pub agent_name: String,
    /// Zone (default UTC).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Policies.
    #[serde(default)]
    pub policy_ids: Vec<String>,
    /// One-shot.
    #[serde(default)]
    pub one_shot: bool,
}

/// Answer of create.
#[derive(Serialize, ToSchema)]
pub struct CreateScheduleResponse {
    /// Id.
    pub job_id: Uuid,
    /// Next due time.
    pub next_run: Option<DateTime<Utc>>,
    /// `created`.
    pub status: String,
}

/// `PUT /schedules/{id}`.
#[derive(Deserialize, Default, ToSchema)]
pub struct UpdateScheduleRequest {
    /// New pattern.
    #[serde(default)]
    pub cron_expression: Option<String>,
    /// New zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// New policies.
    #[serde(default)]
    pub policy_ids: Option<Vec<String>>,
    /// New one-shot flag.
    #[serde(default)]
    pub one_shot: Option<bool>,
}

/// `DELETE /schedules/{id}`.
#[derive(Serialize, ToSchema)]
pub struct DeleteScheduleResponse {
    /// Id.
    pub job_id: Uuid,
    /// true.
    pub deleted: bool,
}

/// Answers of pause/resume/trigger.
#[derive(Serialize, ToSchema)]
pub struct ScheduleActionResponse {
    /// Id.
    pub job_id: Uuid,
    /// `pause`, `resume`, `trigger`.
    pub action: String,
    /// `paused`, `active`, `triggered`.
    pub status: String,
}

/// One run.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    /// Id.
    pub run_id: Uuid,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub completed_at: Option<DateTime<Utc>>,
    /// Status.
    pub status: crate::schedules::RunStatus,
    /// Error.
    pub error: Option<String>,
    /// Duration.
    pub execution_time_ms: Option<u64>,
}

/// `GET /schedules/{id}/history`.
#[derive(Serialize, ToSchema)]
pub struct ScheduleHistoryResponse {
    /// Id.
    pub job_id: Uuid,
    /// Newest first.
    pub history: Vec<RunView>,
}

/// `GET /schedules/{id}/next-runs`.
#[derive(Serialize, ToSchema)]
pub struct NextRunsResponse {
    /// Id.
    pub job_id: Uuid,
    /// Ascending.
    pub next_runs: Vec<DateTime<Utc>>,
}

/// `?limit=`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct LimitQuery {
    /// Default 50, at most 1000.
    pub limit: Option<usize>,
}

/// `?count=`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct CountQuery {
    /// Default 10, at most 1000.
    pub count: Option<usize>,
}

// ---- channels -------------------------------------------------------------------------

/// `ChannelSummary` (closed).
#[derive(Serialize, ToSchema)]
pub struct ChannelSummary {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// `slack`, `teams`, `mattermost`.
    pub platform: String,
    /// `running`, `stopped`, `error`.
    pub status: String,
}

/// Chat platforms.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Slack.
    Slack,
    /// Microsoft Teams.
    Teams,
    /// Mattermost.
    Mattermost,
}

/// `POST /channels`.
#[derive(Deserialize, ToSchema)]
pub struct RegisterChannelRequest {
    /// Name.
    pub name: String,
    /// Platform.
    pub platform: Platform,
    /// Adapter configuration.
    #[schema(value_type = Object)]
    pub config: serde_json::Map<String, Value>,
}

/// `PUT /channels/{id}`.
#[derive(Deserialize, Default, ToSchema)]
pub struct UpdateChannelRequest {
    /// New configuration.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Option<serde_json::Map<String, Value>>,
}

/// `POST /channels/{id}/mappings`.
#[derive(Deserialize, ToSchema)]
pub struct AddMappingRequest {
    /// Platform user.
    pub platform_user_id: String,
    /// symbi user.
    pub symbiont_user_id: String,
    /// Display name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
}

// ---- approvals ------------------------------------------------------------------------

/// A pending held action.
#[derive(Serialize, ToSchema)]
pub struct HeldAction {
    /// 16 hex digits.
    pub id: String,
    /// Agent id.
    pub agent_id: String,
    /// `tool_call`, `delegate`, `schedule`, `other`.
    pub kind: String,
    /// Summary.
    pub summary: String,
    /// Reason.
    pub reason: String,
    /// Context.
    #[schema(value_type = Option<Object>)]
    pub context_snapshot: Option<Value>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// `pending`.
    pub status: String,
}

/// Body of approve/deny (optional).
#[derive(Deserialize, Default, ToSchema)]
pub struct DecisionRequest {
    /// The approver's reason.
    #[serde(default)]
    pub reason: Option<String>,
}
