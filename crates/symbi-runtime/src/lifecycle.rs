//! The lifecycle controller: the one place where an agent's state changes (SPEC §3).
//!
//! Every change is checked against [`symbi_types::state::TRANSITIONS`] — an edge that is
//! not in the table is a [`LifecycleError::Invalid`] — and is published as an
//! `agent_state` event `{from, to, cause}` through the configured [`EventSink`].
//!
//! **Ordering and durability.** A transition of one agent holds that agent's transition
//! lock while the sink records the event, and the new state becomes visible only after the
//! sink accepted it (for the audit log: after it is durable). So:
//! * the events of one agent are recorded in exactly the order its states change;
//! * a state that is visible has always been recorded (fail closed: if the sink refuses the
//!   event, the state stays as it was and the caller gets [`LifecycleError::Sink`]);
//! * transitions of different agents run concurrently; their relative order in the log is
//!   the order in which the sink accepted them.
//!
//! There is no asynchronous fast path: creation records two events synchronously
//! (`(new) → Initializing`, then `Initializing → Ready|Failed`), and its cost is measured
//! by `symbi bench agents`.

use crate::metrics::RuntimeMetrics;
use crate::registry::AgentEntry;
use serde_json::{Value, json};
use std::sync::Arc;
use symbi_types::event::types::AGENT_STATE;
use symbi_types::state::TransitionCause;
use symbi_types::{AgentState, EventDraft, EventSink, InvalidTransition, SinkError};

/// A transition that did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The state machine has no such edge.
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    /// The event sink refused the event; the state did not change.
    #[error("state change not recorded, so not made: {0}")]
    Sink(#[from] SinkError),
}

/// Checks, records and applies state transitions.
pub struct Lifecycle {
    sink: Arc<dyn EventSink>,
    metrics: Arc<RuntimeMetrics>,
}

fn cause_str(c: TransitionCause) -> String {
    // The serde spelling (snake_case) is the one in the audit log.
    match serde_json::to_value(c) {
        Ok(Value::String(s)) => s,
        _ => format!("{c:?}"),
    }
}

impl Lifecycle {
    /// A controller publishing to `sink`.
    pub fn new(sink: Arc<dyn EventSink>, metrics: Arc<RuntimeMetrics>) -> Self {
        Lifecycle { sink, metrics }
    }

    /// The sink events go to (other runtime events use it too).
    pub fn sink(&self) -> &Arc<dyn EventSink> {
        &self.sink
    }

    fn draft(
        entry: &AgentEntry,
        from: Option<AgentState>,
        to: AgentState,
        cause: TransitionCause,
        extra: Option<Value>,
    ) -> EventDraft {
        let mut details = json!({
            "from": from.map(AgentState::as_str),
            "to": to.as_str(),
            "cause": cause_str(cause),
        });
        if let (Some(Value::Object(extra)), Value::Object(d)) = (extra, &mut details) {
            for (k, v) in extra {
                d.entry(k).or_insert(v);
            }
        }
        EventDraft::new(AGENT_STATE, details).agent(entry.id(), &*entry.name())
    }

    /// `(new) → Initializing` for a record that is not yet visible to anyone.
    pub(crate) async fn enter(&self, entry: &AgentEntry) -> Result<(), LifecycleError> {
        let _g = entry.transition_lock.lock().await;
        AgentState::check(None, AgentState::Initializing, TransitionCause::Submitted)?;
        self.record(Self::draft(
            entry,
            None,
            AgentState::Initializing,
            TransitionCause::Submitted,
            None,
        ))
        .await?;
        entry.set_state(AgentState::Initializing);
        Ok(())
    }

    /// Moves `entry` to `to` for `cause`, whatever its current state, if the table allows.
    /// Returns the state it left. `extra` fields (a JSON object) are added to the event's
    /// details (they never override `from`, `to`, `cause`).
    pub async fn transition(
        &self,
        entry: &AgentEntry,
        to: AgentState,
        cause: TransitionCause,
        extra: Option<Value>,
    ) -> Result<AgentState, LifecycleError> {
        let _g = entry.transition_lock.lock().await;
        let from = entry.state();
        AgentState::check(Some(from), to, cause)?;
        self.record(Self::draft(entry, Some(from), to, cause, extra))
            .await?;
        entry.set_state(to);
        Ok(from)
    }

    /// Like [`Lifecycle::transition`], but only from `expected`; from any other state it is
    /// an invalid transition from that state (so callers racing with other changes see a
    /// typed error instead of moving along an unintended edge).
    pub async fn transition_from(
        &self,
        entry: &AgentEntry,
        expected: AgentState,
        to: AgentState,
        cause: TransitionCause,
        extra: Option<Value>,
    ) -> Result<(), LifecycleError> {
        let _g = entry.transition_lock.lock().await;
        let from = entry.state();
        if from != expected {
            return Err(InvalidTransition {
                from: Some(from),
                to,
                cause,
            }
            .into());
        }
        AgentState::check(Some(from), to, cause)?;
        self.record(Self::draft(entry, Some(from), to, cause, extra))
            .await?;
        entry.set_state(to);
        Ok(())
    }

    async fn record(&self, draft: EventDraft) -> Result<(), SinkError> {
        match self.sink.record(draft).await {
            Ok(_) => {
                RuntimeMetrics::inc(&self.metrics.transitions);
                Ok(())
            }
            Err(e) => {
                RuntimeMetrics::inc(&self.metrics.sink_failures);
                tracing::error!(error = %e, "agent state event refused by the event sink");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::AgentSpec;
    use AgentState::*;
    use TransitionCause::*;
    use async_trait_free::RefusingSink;
    use symbi_types::{AgentId, MemoryEventLog};

    /// SPEC §3, written out independently of `symbi_types::state::TRANSITIONS`.
    const SPEC_TABLE: &[(Option<AgentState>, AgentState, &[TransitionCause])] = &[
        (None, Initializing, &[Submitted]),
        (Some(Initializing), Ready, &[ConfigurationValid]),
        (Some(Initializing), Failed, &[ConfigurationInvalid]),
        (Some(Ready), Running, &[TaskAssigned]),
        (Some(Running), Ready, &[TaskComplete]),
        (
            Some(Running),
            Suspended,
            &[PolicyViolation, Preempted, ResourcePressure],
        ),
        (
            Some(Suspended),
            Running,
            &[PolicyCleared, ResourcesAvailable],
        ),
        (Some(Suspended), Terminated, &[ManualOverride]),
        (Some(Ready), Terminated, &[Shutdown]),
        (Some(Failed), Terminated, &[Cleanup]),
        (Some(Running), Failed, &[TaskPanicked]),
    ];

    const CAUSES: [TransitionCause; 14] = [
        Submitted,
        ConfigurationValid,
        ConfigurationInvalid,
        TaskAssigned,
        TaskComplete,
        PolicyViolation,
        Preempted,
        ResourcePressure,
        PolicyCleared,
        ResourcesAvailable,
        ManualOverride,
        Shutdown,
        Cleanup,
        TaskPanicked,
    ];

    fn allowed(from: Option<AgentState>, to: AgentState, cause: TransitionCause) -> bool {
        SPEC_TABLE
            .iter()
            .any(|(f, t, cs)| *f == from && *t == to && cs.contains(&cause))
    }

    mod async_trait_free {
        use symbi_types::{EventDraft, EventReceipt, EventSink, SinkError};
        /// A sink that refuses every event (a full disk, a broken audit log).
        pub struct RefusingSink;
        #[async_trait::async_trait]
        impl EventSink for RefusingSink {
            async fn record(&self, _e: EventDraft) -> Result<EventReceipt, SinkError> {
                Err(SinkError("disk full".into()))
            }
        }
    }

    /// Every (from, to, cause) triple — 7 × 6 state pairs × 14 causes — through the
    /// controller: allowed ones change the state and record exactly one event with
    /// `{from, to, cause}`; all others are a typed error, change nothing, record nothing.
    #[tokio::test]
    async fn every_allowed_and_every_forbidden_transition() {
        let mut checked_allowed = 0;
        let mut checked_forbidden = 0;
        let mut forbidden_pairs = std::collections::HashSet::new();
        let froms = std::iter::once(None).chain(AgentState::ALL.into_iter().map(Some));
        for from in froms {
            for to in AgentState::ALL {
                for cause in CAUSES {
                    let log = MemoryEventLog::default();
                    let lc = Lifecycle::new(Arc::new(log.clone()), Arc::default());
                    let entry = AgentEntry::new(AgentId::new(), AgentSpec::new("t"));
                    if let Some(f) = from {
                        entry.set_state(f);
                    }
                    let r = match from {
                        None if to == Initializing && cause == Submitted => {
                            lc.enter(&entry).await.map(|_| Initializing)
                        }
                        None => Err(LifecycleError::Invalid(InvalidTransition {
                            from: None,
                            to,
                            cause,
                        })),
                        Some(_) => lc.transition(&entry, to, cause, None).await,
                    };
                    if allowed(from, to, cause) {
                        assert!(
                            r.is_ok(),
                            "{from:?} -> {to:?} ({cause:?}) must be allowed: {r:?}"
                        );
                        assert_eq!(entry.state(), to);
                        let ev = log.events();
                        assert_eq!(ev.len(), 1);
                        assert_eq!(ev[0].event.event_type, "agent_state");
                        assert_eq!(ev[0].event.agent, Some(entry.id()));
                        let d = &ev[0].event.details;
                        assert_eq!(d["from"], serde_json::json!(from.map(|f| f.as_str())));
                        assert_eq!(d["to"], to.as_str());
                        assert_eq!(d["cause"], cause_str(cause));
                        checked_allowed += 1;
                    } else {
                        match r {
                            Err(LifecycleError::Invalid(e)) => {
                                assert_eq!((e.from, e.to, e.cause), (from, to, cause))
                            }
                            other => panic!(
                                "{from:?} -> {to:?} ({cause:?}) must be forbidden, got {other:?}"
                            ),
                        }
                        assert_eq!(entry.state_opt(), from, "state unchanged");
                        assert!(log.is_empty(), "no event for a forbidden transition");
                        if !SPEC_TABLE.iter().any(|(f, t, _)| *f == from && *t == to) {
                            forbidden_pairs.insert((from, to));
                        }
                        checked_forbidden += 1;
                    }
                }
            }
        }
        // 14 allowed (edge, cause) combinations; 7 × 6 × 14 triples in all.
        assert_eq!(checked_allowed, 14);
        assert_eq!(checked_allowed + checked_forbidden, 7 * 6 * 14);
        // 42 state pairs, 11 edges: 31 pairs are forbidden for every cause.
        assert_eq!(forbidden_pairs.len(), 31);
    }

    #[tokio::test]
    async fn a_refused_event_leaves_the_state_unchanged() {
        let metrics = Arc::new(RuntimeMetrics::default());
        let lc = Lifecycle::new(Arc::new(RefusingSink), metrics.clone());
        let entry = AgentEntry::new(AgentId::new(), AgentSpec::new("t"));
        assert!(matches!(
            lc.enter(&entry).await,
            Err(LifecycleError::Sink(_))
        ));
        assert_eq!(entry.state_opt(), None);
        entry.set_state(Ready);
        let e = lc
            .transition(&entry, Running, TaskAssigned, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(entry.state(), Ready);
        assert_eq!(metrics.snapshot().sink_failures, 2);
    }

    #[tokio::test]
    async fn transition_from_checks_the_expected_state_and_extra_details_never_override() {
        let log = MemoryEventLog::default();
        let lc = Lifecycle::new(Arc::new(log.clone()), Arc::default());
        let entry = AgentEntry::new(AgentId::new(), AgentSpec::new("t"));
        entry.set_state(Ready);
        let e = lc
            .transition_from(&entry, Running, Ready, TaskComplete, None)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            LifecycleError::Invalid(InvalidTransition {
                from: Some(Ready),
                to: Ready,
                cause: TaskComplete
            })
        );
        lc.transition_from(
            &entry,
            Ready,
            Running,
            TaskAssigned,
            Some(serde_json::json!({"to": "Failed", "task_id": 7})),
        )
        .await
        .unwrap();
        let d = &log.events()[0].event.details;
        assert_eq!(
            (d["to"].as_str(), d["task_id"].as_u64()),
            (Some("Running"), Some(7))
        );
    }
}
