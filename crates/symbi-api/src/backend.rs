//! The one module that calls the runtime [`Engine`]: agent creation from DSL, updates,
//! deletion, executions, messages, workflows, and the [`AgentInvoker`] used by schedules
//! and webhooks. Handlers see only the types below.

use crate::invoke::{AgentInvoker, Invocation, RunFailure, Started};
use crate::model::{AgentStatusResponse, ExecutionMode, MessageView, ResourceUsage};
use crate::state::ApiState;
use crate::state::HistoryRecord;
use futures::FutureExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use symbi_bus::{BusError, MessageId, SendOptions};
use symbi_runtime::RuntimeError;
use symbi_runtime::engine::{Engine, EngineError, ExecuteOptions, ExecutionHandle};
use symbi_types::{AgentId, Principal};
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
    /// The policy engine refused the operation.
    #[error("{0}")]
    Forbidden(String),
    /// Temporarily unable (shutting down, admission refused).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

fn engine_error(e: EngineError) -> BackendError {
    match e {
        EngineError::Program { diagnostics, .. } => {
            let diagnostics: Vec<DslDiagnostic> = diagnostics
                .into_iter()
                .map(|d| DslDiagnostic {
                    line: d.line,
                    column: d.column,
                    severity: d.severity,
                    message: format!("{}: {}", d.code, d.message),
                })
                .collect();
            let first = diagnostics
                .iter()
                .find(|d| d.severity == "error")
                .or(diagnostics.first());
            let message = match first {
                Some(d) => format!(
                    "the DSL program has errors; first at line {} column {}: {}",
                    d.line, d.column, d.message
                ),
                None => "the DSL program has errors".to_string(),
            };
            BackendError::Invalid {
                message,
                diagnostics,
            }
        }
        EngineError::AgentNotFound(id) => BackendError::NotFound(id.0),
        e @ EngineError::PolicyDenied { .. } => BackendError::Forbidden(e.to_string()),
        e @ (EngineError::AgentNameNotFound(_)
        | EngineError::AmbiguousAgent(_)
        | EngineError::NoProgram(_)) => BackendError::Invalid {
            message: e.to_string(),
            diagnostics: Vec::new(),
        },
        EngineError::Runtime(RuntimeError::AgentNotFound(id)) => BackendError::NotFound(id.0),
        EngineError::Runtime(RuntimeError::ShuttingDown) => {
            BackendError::Unavailable("the runtime is shutting down".into())
        }
        EngineError::Runtime(e @ RuntimeError::RegistryFull(_)) => {
            BackendError::Unavailable(e.to_string())
        }
        EngineError::Runtime(e @ RuntimeError::Schedule(_)) => {
            BackendError::Unavailable(e.to_string())
        }
        other => BackendError::Internal(other.to_string()),
    }
}

/// The principal of an API caller (for policy guards and the audit trail).
pub fn client(name: &str) -> Principal {
    let mut p = Principal::agent(name);
    p.attributes
        .insert("type".into(), Value::String("Client".into()));
    p.attributes
        .insert("via".into(), Value::String("http".into()));
    p
}

/// Creates an agent from DSL source: the program's agent named `name`, or its only agent,
/// registered under `name`. The execution mode is remembered for the status endpoint.
pub async fn create_agent(
    s: &ApiState,
    name: &str,
    dsl: &str,
    mode: &ExecutionMode,
    capabilities: Vec<String>,
    mut metadata: BTreeMap<String, String>,
) -> Result<Uuid, BackendError> {
    if !capabilities.is_empty() {
        metadata
            .entry("capabilities".into())
            .or_insert_with(|| capabilities.join(","));
    }
    let file = format!("{name}.symbi");
    let id = s
        .engine
        .create_agent_from_source(&file, dsl, name, metadata)
        .await
        .map_err(engine_error)?;
    s.modes.insert(id.0, mode.variant());
    Ok(id.0)
}

/// Renames an agent and/or replaces its program.
pub async fn update_agent(
    s: &ApiState,
    id: Uuid,
    name: Option<String>,
    dsl: Option<String>,
) -> Result<(), BackendError> {
    let file = format!("{}.symbi", name.clone().unwrap_or_else(|| id.to_string()));
    s.engine
        .update_agent(
            AgentId(id),
            name.as_deref(),
            dsl.as_deref().map(|d| (file.as_str(), d)),
        )
        .map_err(engine_error)
}

/// Stops and removes an agent.
pub async fn delete_agent(s: &ApiState, id: Uuid) -> Result<(), BackendError> {
    s.engine
        .delete_agent(AgentId(id))
        .await
        .map_err(engine_error)?;
    s.modes.remove(&id);
    Ok(())
}

/// The status object of a runtime agent.
pub fn status(s: &ApiState, id: Uuid) -> Option<AgentStatusResponse> {
    let st = s.engine.runtime().status(AgentId(id))?;
    let mode = s.modes.get(&id).map(|m| m.to_string()).unwrap_or_else(|| {
        if st.persistence == symbi_runtime::Persistence::Ephemeral {
            "Ephemeral"
        } else {
            "Persistent"
        }
        .to_string()
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
        execution_mode: Some(mode),
        metadata: None,
        last_result: None,
        recent_events: None,
    })
}

/// The agent's history (engine records), newest first.
pub fn history(s: &ApiState, id: Uuid) -> Vec<HistoryRecord> {
    s.engine
        .history(AgentId(id))
        .into_iter()
        .map(|h| HistoryRecord {
            execution_id: Uuid::parse_str(&h.execution_id).unwrap_or(id),
            status: h.status,
            timestamp: h.timestamp,
        })
        .collect()
}

/// Starts an execution of agent `id`.
pub async fn start_execution(
    s: &ApiState,
    id: Uuid,
    input: Value,
    trigger: Value,
    initiator: Option<String>,
) -> Result<Started, BackendError> {
    let kind = trigger
        .get("kind")
        .and_then(Value::as_str)
        .map(str::to_string);
    let opts = ExecuteOptions {
        trigger: Some(trigger),
        trigger_kind: kind,
        initiator: initiator.as_deref().map(client),
        ..Default::default()
    };
    let h = s
        .engine
        .execute(AgentId(id), input, opts)
        .await
        .map_err(engine_error)?;
    Ok(started(h))
}

fn started(h: ExecutionHandle) -> Started {
    let execution_id = h.execution_id.0;
    let completion = async move {
        h.wait()
            .await
            .map(|r| r.result)
            .map_err(|f| RunFailure::new(f.kind.clone(), f.message.clone()))
    }
    .boxed();
    Started {
        execution_id,
        completion,
    }
}

/// Sends `payload` from `sender` to `to` (or publishes it to `topic`).
pub async fn send_message(
    s: &ApiState,
    sender: Uuid,
    to: Uuid,
    topic: Option<&str>,
    payload: String,
    ttl_secs: u64,
) -> Result<Uuid, BackendError> {
    let bus = s
        .engine
        .bus()
        .ok_or_else(|| BackendError::Unavailable("no message bus is configured".into()))?;
    let mut from = Principal::agent(
        s.engine
            .runtime()
            .get(AgentId(sender))
            .map(|e| e.name().to_string())
            .unwrap_or_else(|| sender.to_string()),
    );
    from.agent_id = Some(AgentId(sender));
    let mut opts = SendOptions::default().ttl(std::time::Duration::from_secs(ttl_secs));
    if let Some(r) = s.engine.rules_for(AgentId(sender), &Value::Null, None) {
        opts = opts.rules(r);
    }
    let r = match topic {
        Some(t) => bus.publish(&from, t, payload.into_bytes(), opts).await,
        None => {
            bus.send(&from, AgentId(to), payload.into_bytes(), opts)
                .await
        }
    };
    r.map(|m| m.0).map_err(|e| match e {
        BusError::UnknownAgent(a) => BackendError::NotFound(a.0),
        BusError::PolicyDenied { .. } => BackendError::Invalid {
            message: e.to_string(),
            diagnostics: Vec::new(),
        },
        other => BackendError::Internal(other.to_string()),
    })
}

/// Drains agent `id`'s inbox.
pub async fn drain_messages(s: &ApiState, id: Uuid) -> Result<Vec<MessageView>, BackendError> {
    if s.engine.runtime().get(AgentId(id)).is_none() {
        return Err(BackendError::NotFound(id));
    }
    let bus = s
        .engine
        .bus()
        .ok_or_else(|| BackendError::Unavailable("no message bus is configured".into()))?;
    let msgs = bus.inbox_drain(AgentId(id)).await.map_err(|e| match e {
        BusError::UnknownAgent(a) => BackendError::NotFound(a.0),
        other => BackendError::Internal(other.to_string()),
    })?;
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
    let Some(bus) = s.engine.bus() else {
        return Ok(None);
    };
    let st = bus
        .message_status(MessageId(id))
        .await
        .map_err(|e| BackendError::Internal(e.to_string()))?;
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
pub async fn start_workflow(
    s: &ApiState,
    workflow: &str,
    parameters: Value,
    initiator: String,
) -> Result<WorkflowStarted, BackendError> {
    let input = if parameters.is_null() {
        Value::Object(Default::default())
    } else {
        parameters
    };
    let named = s
        .engine
        .agent_named(workflow.trim())
        .filter(|_| !workflow.contains('{'));
    let (agent, metadata) = match named {
        Some(id) => {
            let meta = s
                .engine
                .program_of(id)
                .map(|p| Value::Object(p.program.metadata().clone()))
                .unwrap_or(Value::Object(Default::default()));
            (id, meta)
        }
        None => {
            let program = s
                .engine
                .check_source("workflow.symbi", workflow)
                .map_err(engine_error)?;
            let Some(first) = program.agents().first().map(|a| a.name().to_string()) else {
                return Err(BackendError::Invalid {
                    message: "the workflow program defines no agent".into(),
                    diagnostics: Vec::new(),
                });
            };
            let id = s
                .engine
                .create_agent_from_source("workflow.symbi", workflow, &first, BTreeMap::new())
                .await
                .map_err(engine_error)?;
            (id, Value::Object(program.metadata().clone()))
        }
    };
    let opts = ExecuteOptions {
        trigger: Some(serde_json::json!({ "kind": "workflow" })),
        trigger_kind: Some("workflow".into()),
        initiator: Some(client(&initiator)),
        ..Default::default()
    };
    let h = s
        .engine
        .execute(agent, input, opts)
        .await
        .map_err(engine_error)?;
    let execution_id = h.execution_id.0;
    s.engine
        .record_history(agent, execution_id.to_string(), "workflow_started");
    tokio::spawn(async move {
        let _ = h.wait().await;
    });
    Ok(WorkflowStarted {
        agent_id: agent.0,
        execution_id,
        metadata,
    })
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
        let Some(id) = self.engine.agent_named(&inv.agent) else {
            return Err(RunFailure::new(
                "AgentNotFound",
                format!("agent `{}` is not loaded", inv.agent),
            ));
        };
        let kind = inv
            .trigger
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_string);
        let opts = ExecuteOptions {
            trigger: Some(inv.trigger),
            trigger_kind: kind,
            initiator: inv.initiator.as_deref().map(client),
            schedule_policy: inv.schedule_policy,
            ..Default::default()
        };
        let h = self
            .engine
            .execute(id, inv.input, opts)
            .await
            .map_err(|e| RunFailure::new("ExecutionRefused", e.to_string()))?;
        Ok(started(h))
    }
}
