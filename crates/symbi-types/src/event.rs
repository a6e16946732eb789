//! Audit events as the rest of the runtime produces them, and the sink they go to.
//!
//! Producers create an [`EventDraft`]; the audit crate (the production [`EventSink`])
//! assigns the id and timestamp, signs, chains and makes it durable. Until the sink says the
//! event is durable the caller must not proceed with what the event records (fail closed).

use crate::ids::{AgentId, EventId, ExecutionId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Well-known event types. Actions use their category word
/// ([`ActionCategory::as_str`](crate::ActionCategory::as_str)) as the event type, so the
/// same words name Cedar actions, DSL patterns and audit events.
pub mod types {
    /// An agent changed state: `{from, to, cause}`.
    pub const AGENT_STATE: &str = "agent_state";
    /// An execution started: `{execution_id, trigger, input?}`.
    pub const EXECUTION_STARTED: &str = "execution_started";
    /// An execution ended successfully: `{execution_id, steps, duration_ms, output?}`.
    pub const EXECUTION_COMPLETED: &str = "execution_completed";
    /// An execution ended with an error: `{execution_id, kind, message, location, stack}`.
    pub const EXECUTION_FAILED: &str = "execution_failed";
    /// A step, memory or time budget ran out: `{execution_id, budget, limit, used}`.
    pub const BUDGET_EXHAUSTED: &str = "budget_exhausted";
    /// A policy decision not tied to an agent action (e.g. runtime operations by clients).
    pub const POLICY_DECISION: &str = "policy_decision";
    /// The policy set was reloaded (or a reload was rejected): `{accepted, files, error?}`.
    pub const POLICY_RELOAD: &str = "policy_reload";
    /// An API or MCP client failed authentication: `{remote, path, reason}` (never the token).
    pub const AUTH_FAILURE: &str = "auth_failure";
    /// A security check failed (bad signature, replay, escape attempt): `{check, detail}`.
    pub const SECURITY_VIOLATION: &str = "security_violation";
    /// The audit signing key was rotated: `{old_key_id, new_key_id, new_public_key}`.
    pub const KEY_ROTATION: &str = "key_rotation";
    /// A custom event from DSL `audit_log(event, details)`.
    pub const CUSTOM: &str = "custom";
    /// A scheduled run was missed while the runtime was down.
    pub const SCHEDULE_MISSED: &str = "schedule_missed";
    /// Runtime start and stop.
    pub const RUNTIME: &str = "runtime";
}

/// An audit event before the audit log has numbered, timestamped and signed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventDraft {
    /// The agent the event is about, if any.
    pub agent: Option<AgentId>,
    /// The agent's name at the time (kept so reports stay readable after deletion).
    pub agent_name: Option<String>,
    /// The execution the event belongs to, if any.
    pub execution: Option<ExecutionId>,
    /// Event type: a word from [`types`] or an action category.
    pub event_type: String,
    /// Event-specific details (JSON object).
    pub details: Value,
}

impl EventDraft {
    /// A draft with no agent or execution.
    pub fn new(event_type: impl Into<String>, details: Value) -> Self {
        Self {
            agent: None,
            agent_name: None,
            execution: None,
            event_type: event_type.into(),
            details,
        }
    }

    /// Sets the agent (builder style).
    pub fn agent(mut self, id: AgentId, name: impl Into<String>) -> Self {
        self.agent = Some(id);
        self.agent_name = Some(name.into());
        self
    }

    /// Sets the execution (builder style).
    pub fn execution(mut self, id: ExecutionId) -> Self {
        self.execution = Some(id);
        self
    }
}

/// Proof that an event was recorded (and, for durable sinks, is on stable storage).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventReceipt {
    /// The event's id.
    pub id: EventId,
    /// Position in the log (0-based).
    pub sequence: u64,
    /// Timestamp the sink assigned.
    pub timestamp: DateTime<Utc>,
}

/// The sink could not record the event. The recorded action must not proceed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit sink failed: {0}")]
pub struct SinkError(pub String);

/// Where audit events go.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Records `event`; returns only once it is durable (for durable sinks).
    async fn record(&self, event: EventDraft) -> Result<EventReceipt, SinkError>;
}

/// An event as kept by [`MemoryEventLog`].
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Receipt the log returned.
    pub receipt: EventReceipt,
    /// The event.
    pub event: EventDraft,
}

/// An in-memory sink for tests and for `audit_enabled = false` runs that still want to
/// inspect events. Not durable and not signed.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use symbi_types::{EventDraft, EventSink, MemoryEventLog};
/// let log = MemoryEventLog::default();
/// log.record(EventDraft::new("custom", serde_json::json!({"x": 1}))).await.unwrap();
/// assert_eq!(log.events().len(), 1);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct MemoryEventLog {
    events: Arc<Mutex<Vec<RecordedEvent>>>,
}

impl MemoryEventLog {
    /// A snapshot of every event recorded so far, in order.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.events.lock().clone()
    }

    /// Events of one type.
    pub fn of_type(&self, event_type: &str) -> Vec<RecordedEvent> {
        self.events
            .lock()
            .iter()
            .filter(|e| e.event.event_type == event_type)
            .cloned()
            .collect()
    }

    /// Number of events recorded.
    pub fn len(&self) -> usize {
        self.events.lock().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl EventSink for MemoryEventLog {
    async fn record(&self, event: EventDraft) -> Result<EventReceipt, SinkError> {
        let mut events = self.events.lock();
        let receipt = EventReceipt {
            id: EventId::new(),
            sequence: events.len() as u64,
            timestamp: Utc::now(),
        };
        events.push(RecordedEvent {
            receipt: receipt.clone(),
            event,
        });
        Ok(receipt)
    }
}

/// A sink that discards events (audit disabled by configuration). Reports success.
#[derive(Clone, Copy, Default, Debug)]
pub struct NullSink;

#[async_trait]
impl EventSink for NullSink {
    async fn record(&self, _event: EventDraft) -> Result<EventReceipt, SinkError> {
        Ok(EventReceipt {
            id: EventId::new(),
            sequence: 0,
            timestamp: Utc::now(),
        })
    }
}
