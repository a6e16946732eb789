//! External agents (API-CONTRACT §3.2 `External`, §5.8–5.9): agents that run elsewhere and
//! report to symbi. They are **monitoring records**, not runtime agents: the runtime's
//! lifecycle (SPEC §3) has no "set state" edge, and nothing of theirs runs here. Their
//! `state` is what their last heartbeat said (`Created` before the first one), or
//! `Unreachable` once three heartbeat intervals pass without one.

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use uuid::Uuid;

/// Events kept per agent.
pub const EVENTS_CAP: usize = 100;

/// The API's agent states (API-CONTRACT §3.1, PascalCase on the wire). A superset of the
/// runtime's six lifecycle states: External agents may report any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum ApiAgentState {
    /// Registered, no heartbeat yet.
    Created,
    /// Initializing.
    Initializing,
    /// Ready.
    Ready,
    /// Running.
    Running,
    /// Suspended.
    Suspended,
    /// Waiting.
    Waiting,
    /// Completed.
    Completed,
    /// Failed.
    Failed,
    /// Terminating.
    Terminating,
    /// Terminated.
    Terminated,
    /// No heartbeat for three intervals.
    Unreachable,
}

impl From<symbi_types::AgentState> for ApiAgentState {
    fn from(s: symbi_types::AgentState) -> Self {
        use symbi_types::AgentState as S;
        match s {
            S::Initializing => Self::Initializing,
            S::Ready => Self::Ready,
            S::Running => Self::Running,
            S::Suspended => Self::Suspended,
            S::Terminated => Self::Terminated,
            S::Failed => Self::Failed,
        }
    }
}

/// `AgentEventType` (API-CONTRACT §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum AgentEventType {
    /// A run started.
    RunStarted,
    /// A run completed.
    RunCompleted,
    /// A run failed.
    RunFailed,
}

/// One pushed event.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentEvent {
    /// Type.
    pub event_type: AgentEventType,
    /// Payload as pushed.
    pub payload: Value,
    /// Server time of receipt.
    pub timestamp: DateTime<Utc>,
}

/// One External agent.
#[derive(Clone, Debug)]
pub struct ExternalAgent {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Reported endpoint.
    pub endpoint: Option<String>,
    /// AgentPin domain.
    pub agentpin_domain: Option<String>,
    /// Expected heartbeat interval.
    pub heartbeat_interval_secs: u64,
    /// Last reported state.
    pub reported: ApiAgentState,
    /// Last heartbeat (registration time before the first).
    pub last_activity: DateTime<Utc>,
    /// Whether a heartbeat arrived yet.
    pub heartbeat_seen: bool,
    /// Metadata (merged by heartbeats).
    pub metadata: BTreeMap<String, String>,
    /// Last reported result.
    pub last_result: Option<String>,
    /// Capabilities given at creation.
    pub capabilities: Vec<String>,
    /// Recent events, oldest first.
    pub events: VecDeque<AgentEvent>,
}

impl ExternalAgent {
    /// The state as reported now: `Unreachable` after 3 × the interval without heartbeat.
    pub fn state(&self, now: DateTime<Utc>) -> ApiAgentState {
        let limit = chrono::Duration::seconds((self.heartbeat_interval_secs.max(1) * 3) as i64);
        if now - self.last_activity > limit {
            ApiAgentState::Unreachable
        } else {
            self.reported
        }
    }
}

/// The registry of External agents.
#[derive(Default)]
pub struct ExternalAgents {
    agents: DashMap<Uuid, ExternalAgent>,
}

impl ExternalAgents {
    /// Registers an agent; its state is `Created` until the first heartbeat.
    pub fn register(&self, mut a: ExternalAgent) -> Uuid {
        a.reported = ApiAgentState::Created;
        let id = a.id;
        self.agents.insert(id, a);
        id
    }

    /// A copy of one agent.
    pub fn get(&self, id: &Uuid) -> Option<ExternalAgent> {
        self.agents.get(id).map(|a| a.clone())
    }

    /// Whether `id` is an External agent.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.agents.contains_key(id)
    }

    /// Removes one; returns whether it existed.
    pub fn remove(&self, id: &Uuid) -> bool {
        self.agents.remove(id).is_some()
    }

    /// Renames one.
    pub fn rename(&self, id: &Uuid, name: String) -> bool {
        self.agents.get_mut(id).map(|mut a| a.name = name).is_some()
    }

    /// `(id, name, state)` of every agent.
    pub fn list(&self) -> Vec<(Uuid, String, ApiAgentState)> {
        let now = Utc::now();
        self.agents
            .iter()
            .map(|a| (a.id, a.name.clone(), a.state(now)))
            .collect()
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Applies a heartbeat; `false` if `id` is not an External agent.
    pub fn heartbeat(
        &self,
        id: &Uuid,
        state: ApiAgentState,
        metadata: Option<BTreeMap<String, String>>,
        last_result: Option<String>,
    ) -> bool {
        let Some(mut a) = self.agents.get_mut(id) else {
            return false;
        };
        a.reported = state;
        a.last_activity = Utc::now();
        a.heartbeat_seen = true;
        if let Some(m) = metadata {
            a.metadata.extend(m);
        }
        if let Some(r) = last_result {
            a.last_result = Some(r);
        }
        true
    }

    /// Appends an event (ring of [`EVENTS_CAP`]); `false` if `id` is not External.
    pub fn push_event(&self, id: &Uuid, event_type: AgentEventType, payload: Value) -> bool {
        let Some(mut a) = self.agents.get_mut(id) else {
            return false;
        };
        a.events.push_back(AgentEvent {
            event_type,
            payload,
            timestamp: Utc::now(),
        });
        while a.events.len() > EVENTS_CAP {
            a.events.pop_front();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(interval: u64) -> ExternalAgent {
        ExternalAgent {
            id: Uuid::new_v4(),
            name: "remote".into(),
            endpoint: None,
            agentpin_domain: None,
            heartbeat_interval_secs: interval,
            reported: ApiAgentState::Running,
            last_activity: Utc::now(),
            heartbeat_seen: false,
            metadata: BTreeMap::new(),
            last_result: None,
            capabilities: vec![],
            events: VecDeque::new(),
        }
    }

    #[test]
    fn heartbeat_state_and_unreachable() {
        let r = ExternalAgents::default();
        let id = r.register(agent(60));
        assert_eq!(
            r.get(&id).unwrap().state(Utc::now()),
            ApiAgentState::Created
        );
        assert!(r.heartbeat(
            &id,
            ApiAgentState::Running,
            Some([("k".to_string(), "v".to_string())].into()),
            Some("ok".into())
        ));
        let a = r.get(&id).unwrap();
        assert_eq!(a.state(Utc::now()), ApiAgentState::Running);
        assert_eq!(a.metadata["k"], "v");
        assert_eq!(
            a.state(Utc::now() + chrono::Duration::seconds(181)),
            ApiAgentState::Unreachable
        );
        assert!(!r.heartbeat(&Uuid::new_v4(), ApiAgentState::Running, None, None));
        for i in 0..150 {
            r.push_event(&id, AgentEventType::RunStarted, serde_json::json!(i));
        }
        let ev = r.get(&id).unwrap().events;
        assert_eq!(ev.len(), EVENTS_CAP);
        assert_eq!(ev.front().unwrap().payload, serde_json::json!(50));
    }
}
