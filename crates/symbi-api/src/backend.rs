//! The one module that calls the runtime [`Engine`]: agent creation from DSL, updates,
//! deletion, executions, messages, workflows, and the [`AgentInvoker`] used by schedules
//! and webhooks. Handlers see only the types below.

use crate::invoke::{AgentInvoker, Invocation, RunFailure, Started};
use crate::model::{AgentStatusResponse, ExecutionMode, MessageView, ResourceUsage};
use crate::state::ApiState;
use futures::FutureExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use symbi_runtime::engine::Engine;
use symbi_types::AgentId;
use uuid::Uuid;

/// One positioned DSL problem (API-CONTRACT §5.2 `details.diagnostics`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DslDiagnostic {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// `error`, `warning` or `note`.
    pub severity: String,
    /// `CODE: message`.
    pub message: String,
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No such agent.
    #[error("agent {0} not found")]
    NotFound(Uuid),
    /// Bad input (DSL problems carry diagnostics).
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// Positioned problems (empty when not about the DSL).
        diagnostics: Vec<DslDiagnostic>,
    },
    /// Temporarily unable (shutting down, admission refused).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

/// Diagnostics of a failed load, positioned in the source.
pub fn diagnostics_of(e: &symbi_dsl::LoadError) -> Vec<DslDiagnostic> {
    e.diagnostics
        .iter()
        .map(|d| {
            let p = e.source_file.position(d.span.start);
            DslDiagnostic {
                line: p.line,
                column: p.column,
                severity: d.severity.to_string(),
                message: format!("{}: {}", d.code, d.message),
            }
        })
        .collect()
}

fn invalid_dsl(e: &symbi_dsl::LoadError) -> BackendError {
    let diagnostics = diagnostics_of(e);
    let first = diagnostics.iter().find(|d| d.severity == "error").or(diagnostics.first());
    let message = match first {
        Some(d) => format!("the DSL program has errors; first at line {} column {}: {}", d.line, d.column, d.message),
        None => "the DSL program has errors".to_string(),
    };
    BackendError::Invalid { message, diagnostics }
}

/// Creates an agent from DSL source (the program must define an agent; the API name is the
/// agent's display name).
pub async fn create_agent(
    s: &ApiState,
    name: &str,
    dsl: &str,
    mode: &ExecutionMode,
    capabilities: Vec<String>,
    metadata: BTreeMap<String, String>,
) -> Result<Uuid, BackendError> {
    let id = s
        .engine
        .create_agent_from_dsl(name, dsl, mode.variant(), capabilities, metadata)
        .await
        .map_err(engine_error)?;
    Ok(id.0)
}

/// Renames an agent and/or replaces its program.
pub async fn update_agent(s: &ApiState, id: Uuid, name: Option<String>, dsl: Option<String>) -> Result<(), BackendError> {
    s.engine.update_agent(AgentId(id), name, dsl).await.map_err(engine_error)
}

/// Stops and removes an agent.
pub async fn delete_agent(s: &ApiState, id: Uuid) -> Result<(), BackendError> {
    s.engine.delete_agent(AgentId(id)).await.map_err(engine_error)
}

/// The status object of a runtime agent.
pub fn status(s: &ApiState, id: Uuid) -> Option<AgentStatusResponse> {
    let st = s.engine.runtime().status(AgentId(id))?;
    let mode = s.engine.execution_mode(AgentId(id)).map(str::to_string).or_else(|| {
        Some(if st.persistence == symbi_runtime::Persistence::Ephemeral { "Ephemeral" } else { "Persistent" }.to_string())
    });
    Some(AgentStatusResponse {
        agent_id: id,
        state: st.state.into(),
        last_activity: st.last_activity,
        resource_usage: ResourceUsage {
            memory_bytes: st.resource_usage.memory_bytes,
            cpu_percent: st.resource_usage.cpu_percent,
            active_tasks: st.resource_usage.active_tasks,
        },
        execution_mode: mode,
        metadata: None,
        last_result: None,
        recent_events: None,
    })
}

/// Starts an execution of agent `id`.
pub async fn start_execution(
    s: &ApiState,
    id: Uuid,
    input: Value,
    trigger: Value,
    initiator: Option<String>,
) -> Result<Started, BackendError> {
    let h = s.engine.execute(AgentId(id), input, Some(trigger), initiator, None).await.map_err(engine_error)?;
    Ok(started(h))
}

fn started(h: symbi_runtime::engine::ExecutionHandle) -> Started {
    let execution_id = h.execution_id.0;
    let completion = async move { h.wait().await.map_err(|f| RunFailure::new(f.kind.clone(), f.message.clone())) }.boxed();
    Started { execution_id, completion }
}

fn engine_error(e: symbi_runtime::engine::EngineError) -> BackendError {
    use symbi_runtime::engine::EngineError as E;
    match e {
        E::AgentNotFound(id) => BackendError::NotFound(id.0),
        E::Load(le) => invalid_dsl(&le),
        E::Invalid(m) => BackendError::Invalid { message: m, diagnostics: Vec::new() },
        E::ShuttingDown => BackendError::Unavailable("the runtime is shutting down".into()),
        other => BackendError::Internal(other.to_string()),
    }
}

/// Sends `payload` from `sender` to `to` (or publishes it to `topic`).
pub async fn send_message(s: &ApiState, sender: Uuid, to: Uuid, topic: Option<&str>, payload: String, ttl_secs: u64) -> Result<Uuid, BackendError> {
    s.engine
        .api_send(AgentId(sender), AgentId(to), topic, payload.into_bytes(), std::time::Duration::from_secs(ttl_secs))
        .await
        .map(|m| *m.as_uuid())
        .map_err(engine_error)
}

/// Drains agent `id`'s inbox.
pub async fn drain_messages(s: &ApiState, id: Uuid) -> Result<Vec<MessageView>, BackendError> {
    if s.engine.runtime().get(AgentId(id)).is_none() {
        return Err(BackendError::NotFound(id));
    }
    let msgs = s.engine.bus().inbox_drain(AgentId(id)).await.map_err(|e| BackendError::Internal(e.to_string()))?;
    Ok(msgs
        .into_iter()
        .map(|m| MessageView {
            message_id: m.id.to_string(),
            sender: m.sender.to_string(),
            recipient: m.recipient.map(|r| r.to_string()),
            topic: m.topic.as_ref().map(|t| t.as_str().to_string()),
            payload: String::from_utf8_lossy(&m.payload).into_owned(),
            message_type: m.message_type.as_str().to_string(),
            timestamp_secs: m.timestamp_secs(),
            ttl_seconds: m.ttl_seconds(),
        })
        .collect())
}

/// Delivery status of a message (`None`: unknown).
pub async fn message_status(s: &ApiState, id: Uuid) -> Result<Option<String>, BackendError> {
    let st = s.engine.bus().message_status(id.into()).await.map_err(|e| BackendError::Internal(e.to_string()))?;
    Ok(st.map(|x| x.as_str().to_string()))
}

/// A started workflow.
pub struct WorkflowStarted {
    /// The agent that runs it.
    pub agent_id: Uuid,
    /// Its execution.
    pub execution_id: Uuid,
    /// The program's `metadata` block.
    pub metadata: Value,
}

/// Runs a workflow: the name of a loaded agent, or DSL source whose first agent is created
/// and run.
pub async fn start_workflow(s: &ApiState, workflow: &str, parameters: Value, initiator: String) -> Result<WorkflowStarted, BackendError> {
    let trigger = serde_json::json!({ "kind": "workflow" });
    let input = if parameters.is_null() { Value::Object(Default::default()) } else { parameters };
    let by_name = s.engine.runtime().find_by_name(workflow.trim());
    let (agent, metadata) = if let Some(id) = by_name.first().filter(|_| !workflow.contains('{')) {
        (*id, s.engine.program_metadata(*id).unwrap_or(Value::Object(Default::default())))
    } else {
        let program = s.engine.load_program("workflow.symbi", workflow).map_err(|e| invalid_dsl(&e))?;
        let Some(first) = program.agents().first().map(|a| a.name().to_string()) else {
            return Err(BackendError::Invalid { message: "the workflow program defines no agent".into(), diagnostics: Vec::new() });
        };
        let id = s
            .engine
            .create_agent_from_dsl(&first, workflow, "Ephemeral", Vec::new(), BTreeMap::new())
            .await
            .map_err(engine_error)?;
        (id, Value::Object(program.metadata().clone()))
    };
    let h = s.engine.execute(agent, input, Some(trigger), Some(initiator), None).await.map_err(engine_error)?;
    let execution_id = h.execution_id.0;
    tokio::spawn(async move {
        let _ = h.wait().await;
    });
    Ok(WorkflowStarted { agent_id: agent.0, execution_id, metadata })
}

/// Starts executions of agents by name for schedules and webhooks.
pub struct EngineInvoker {
    engine: Arc<Engine>,
}

impl EngineInvoker {
    /// Over the engine.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

#[async_trait::async_trait]
impl AgentInvoker for EngineInvoker {
    fn agent_exists(&self, name: &str) -> bool {
        !self.engine.runtime().find_by_name(name).is_empty()
    }

    async fn invoke(&self, inv: Invocation) -> Result<Started, RunFailure> {
        let ids = self.engine.runtime().find_by_name(&inv.agent);
        let Some(id) = ids.first() else {
            return Err(RunFailure::new("AgentNotFound", format!("agent `{}` is not loaded", inv.agent)));
        };
        let h = self
            .engine
            .execute_with_policy(*id, inv.input, Some(inv.trigger), inv.initiator, inv.schedule_policy)
            .await
            .map_err(|e| RunFailure::new("ExecutionRefused", e.to_string()))?;
        Ok(started(h))
    }
}
