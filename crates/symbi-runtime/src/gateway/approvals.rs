//! Human-in-the-loop holds (GRAMMAR.md §4.10 `human_approval`, API-CONTRACT §7.8).
//!
//! An action whose decision carries a `HumanApproval` condition is *held*: it gets a
//! 16-hex-digit id, shows up in [`ApprovalManager::pending`], and its execution awaits
//! [`Hold::wait`] — an async wait that holds no thread. An operator approves or denies it;
//! a hold that reaches its expiry resolves as denied (fail closed). Every step is an audit
//! event of type `approval` written *before* the step takes effect.

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use symbi_types::{AgentId, EventDraft, EventSink, ExecutionId, SinkError};
use tokio::sync::watch;

/// What kind of action is held (API-CONTRACT §3.3 "held action kind").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldKind {
    /// A tool call.
    ToolCall,
    /// Running another agent.
    Delegate,
    /// A scheduled run.
    Schedule,
    /// Anything else (LLM calls, explicit `request_approval`, …).
    Other,
}

/// Status of a hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    /// Waiting for a human.
    Pending,
    /// Approved: the action proceeds.
    Approved,
    /// Denied: the action raises `ApprovalDenied`.
    Denied,
    /// Expired: resolves as denied.
    Expired,
}

/// A request to hold an action.
#[derive(Clone, Debug)]
pub struct HoldRequest {
    /// The agent whose action is held.
    pub agent_id: AgentId,
    /// Its name.
    pub agent_name: String,
    /// The execution.
    pub execution: Option<ExecutionId>,
    /// Kind of action.
    pub kind: HoldKind,
    /// One line for the operator: what will happen if approved.
    pub summary: String,
    /// Why approval is needed (the deciding policy).
    pub reason: String,
    /// Arguments and context the operator decides on (already redacted per privacy).
    pub context_snapshot: Option<Value>,
    /// How long the hold lasts.
    pub expiry: Duration,
    /// The approver must give a reason.
    pub require_reason: bool,
    /// Role the approver must hold, if any.
    pub role: Option<String>,
}

/// The outcome of a hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resolution {
    /// Final status (never `Pending`).
    pub status: HoldStatus,
    /// Who decided (`None` when it expired).
    pub approver: Option<String>,
    /// The approver's reason.
    pub reason: Option<String>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

impl Resolution {
    /// Whether the action may proceed.
    pub fn approved(&self) -> bool {
        self.status == HoldStatus::Approved
    }
}

/// A pending hold as the API lists it (API-CONTRACT §7.8).
#[derive(Clone, Debug, Serialize)]
pub struct HoldView {
    /// 16 lower-case hex digits.
    pub id: String,
    /// The agent's id.
    pub agent_id: String,
    /// Kind.
    pub kind: HoldKind,
    /// Summary.
    pub summary: String,
    /// Reason.
    pub reason: String,
    /// Context snapshot.
    pub context_snapshot: Option<Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry time.
    pub expires_at: DateTime<Utc>,
    /// Status.
    pub status: HoldStatus,
}

/// Why an operator's decision was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    /// No hold with this id.
    #[error("no held action with id {0}")]
    NotFound(String),
    /// The hold was already approved, denied or expired.
    #[error("held action {0} is already resolved")]
    AlreadyResolved(String),
    /// The policy requires the approver to give a reason.
    #[error("held action {0} requires a reason")]
    ReasonRequired(String),
    /// The approver lacks the required role.
    #[error("held action {id} must be decided by a holder of role `{role}`")]
    RoleRequired {
        /// Hold id.
        id: String,
        /// Required role.
        role: String,
    },
    /// The decision could not be audited, so it was not applied.
    #[error(transparent)]
    Audit(#[from] SinkError),
}

struct Entry {
    view: HoldView,
    req: HoldRequest,
    tx: watch::Sender<Option<Resolution>>,
}

/// Registry of holds.
#[derive(Clone)]
pub struct ApprovalManager {
    inner: Arc<Inner>,
}

struct Inner {
    holds: Mutex<HashMap<String, Entry>>,
    sink: Arc<dyn EventSink>,
}

/// A held action; await [`Hold::wait`] for the outcome.
pub struct Hold {
    /// Hold id.
    pub id: String,
    rx: watch::Receiver<Option<Resolution>>,
    expires_in: Duration,
    manager: ApprovalManager,
}

impl Hold {
    /// Waits for an operator's decision or the expiry, whichever comes first. On expiry the
    /// hold resolves as `Expired` (denied). Cancel-safe: dropping the future leaves the hold
    /// pending until it expires.
    pub async fn wait(mut self) -> Resolution {
        let decided = tokio::time::timeout(self.expires_in, async {
            loop {
                if let Some(r) = self.rx.borrow_and_update().clone() {
                    return Some(r);
                }
                if self.rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await;
        match decided {
            Ok(Some(r)) => r,
            _ => self.manager.expire(&self.id).await,
        }
    }
}

impl ApprovalManager {
    /// A manager that audits to `sink`.
    pub fn new(sink: Arc<dyn EventSink>) -> Self {
        Self {
            inner: Arc::new(Inner {
                holds: Mutex::new(HashMap::new()),
                sink,
            }),
        }
    }

    fn new_id() -> String {
        format!("{:016x}", rand::random::<u64>())
    }

    /// Holds an action. The `requested` audit event is durable before the hold is visible.
    pub async fn hold(&self, req: HoldRequest) -> Result<Hold, SinkError> {
        let id = Self::new_id();
        let created_at = Utc::now();
        let expires_at = created_at
            + chrono::Duration::from_std(req.expiry).unwrap_or(chrono::Duration::days(3650));
        let view = HoldView {
            id: id.clone(),
            agent_id: req.agent_id.to_string(),
            kind: req.kind,
            summary: req.summary.clone(),
            reason: req.reason.clone(),
            context_snapshot: req.context_snapshot.clone(),
            created_at,
            expires_at,
            status: HoldStatus::Pending,
        };
        self.audit(
            &req,
            &id,
            "requested",
            json!({
                "kind": req.kind, "summary": req.summary, "reason": req.reason,
                "expires_at": expires_at.to_rfc3339(), "role": req.role,
            }),
        )
        .await?;
        let (tx, rx) = watch::channel(None);
        let expires_in = req.expiry;
        self.inner
            .holds
            .lock()
            .insert(id.clone(), Entry { view, req, tx });
        Ok(Hold {
            id,
            rx,
            expires_in,
            manager: self.clone(),
        })
    }

    /// Pending holds, oldest first.
    pub fn pending(&self) -> Vec<HoldView> {
        let mut v: Vec<HoldView> = self
            .inner
            .holds
            .lock()
            .values()
            .filter(|e| e.view.status == HoldStatus::Pending && e.view.expires_at > Utc::now())
            .map(|e| e.view.clone())
            .collect();
        v.sort_by_key(|h| h.created_at);
        v
    }

    /// One hold by id, whatever its status.
    pub fn get(&self, id: &str) -> Option<HoldView> {
        self.inner.holds.lock().get(id).map(|e| e.view.clone())
    }

    /// Approves a pending hold.
    pub async fn approve(
        &self,
        id: &str,
        approver: &str,
        roles: &[String],
        reason: Option<String>,
    ) -> Result<(), ApprovalError> {
        self.decide(id, HoldStatus::Approved, approver, roles, reason)
            .await
    }

    /// Denies a pending hold.
    pub async fn deny(
        &self,
        id: &str,
        approver: &str,
        roles: &[String],
        reason: Option<String>,
    ) -> Result<(), ApprovalError> {
        self.decide(id, HoldStatus::Denied, approver, roles, reason)
            .await
    }

    async fn decide(
        &self,
        id: &str,
        status: HoldStatus,
        approver: &str,
        roles: &[String],
        reason: Option<String>,
    ) -> Result<(), ApprovalError> {
        let req = {
            let holds = self.inner.holds.lock();
            let e = holds
                .get(id)
                .ok_or_else(|| ApprovalError::NotFound(id.into()))?;
            if e.view.status != HoldStatus::Pending || e.view.expires_at <= Utc::now() {
                return Err(ApprovalError::AlreadyResolved(id.into()));
            }
            if status == HoldStatus::Approved {
                if e.req.require_reason && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    return Err(ApprovalError::ReasonRequired(id.into()));
                }
                if let Some(role) = &e.req.role {
                    if !roles.iter().any(|r| r == role) {
                        return Err(ApprovalError::RoleRequired {
                            id: id.into(),
                            role: role.clone(),
                        });
                    }
                }
            }
            e.req.clone()
        };
        let step = if status == HoldStatus::Approved {
            "approved"
        } else {
            "denied"
        };
        self.audit(
            &req,
            id,
            step,
            json!({ "approver": approver, "reason": reason }),
        )
        .await?;
        let resolution = Resolution {
            status,
            approver: Some(approver.to_string()),
            reason,
            decided_at: Utc::now(),
        };
        let mut holds = self.inner.holds.lock();
        let e = holds
            .get_mut(id)
            .ok_or_else(|| ApprovalError::NotFound(id.into()))?;
        if e.view.status != HoldStatus::Pending {
            return Err(ApprovalError::AlreadyResolved(id.into()));
        }
        e.view.status = status;
        let _ = e.tx.send(Some(resolution));
        Ok(())
    }

    /// Resolves a pending hold as expired (deny). Returns the final resolution, which may be
    /// an operator's decision that raced the expiry.
    async fn expire(&self, id: &str) -> Resolution {
        let req = {
            let holds = self.inner.holds.lock();
            match holds.get(id) {
                Some(e) if e.view.status != HoldStatus::Pending => {
                    if let Some(r) = e.tx.borrow().clone() {
                        return r;
                    }
                    e.req.clone()
                }
                Some(e) => e.req.clone(),
                None => {
                    return Resolution {
                        status: HoldStatus::Expired,
                        approver: None,
                        reason: None,
                        decided_at: Utc::now(),
                    };
                }
            }
        };
        // Expiry is a denial either way; if even the audit write fails the action still
        // does not proceed (fail closed), so the error is only logged.
        if let Err(e) = self.audit(&req, id, "expired", json!({})).await {
            tracing::error!(hold = id, error = %e, "could not audit approval expiry");
        }
        let resolution = Resolution {
            status: HoldStatus::Expired,
            approver: None,
            reason: Some("approval expired".into()),
            decided_at: Utc::now(),
        };
        let mut holds = self.inner.holds.lock();
        if let Some(e) = holds.get_mut(id) {
            if e.view.status == HoldStatus::Pending {
                e.view.status = HoldStatus::Expired;
                let _ = e.tx.send(Some(resolution.clone()));
            } else if let Some(r) = e.tx.borrow().clone() {
                return r;
            }
        }
        resolution
    }

    /// Drops resolved holds older than `keep` (called by the runtime's GC tick).
    pub fn collect(&self, keep: Duration) {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::hours(1));
        self.inner
            .holds
            .lock()
            .retain(|_, e| e.view.status == HoldStatus::Pending || e.view.created_at > cutoff);
    }

    async fn audit(
        &self,
        req: &HoldRequest,
        id: &str,
        step: &str,
        extra: Value,
    ) -> Result<(), SinkError> {
        let mut details = json!({ "hold_id": id, "step": step });
        if let (Value::Object(d), Value::Object(x)) = (&mut details, extra) {
            d.extend(x);
        }
        let mut draft =
            EventDraft::new("approval", details).agent(req.agent_id, req.agent_name.clone());
        draft.execution = req.execution;
        self.inner.sink.record(draft).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use symbi_types::MemoryEventLog;

    fn req(expiry_ms: u64) -> HoldRequest {
        HoldRequest {
            agent_id: AgentId::new(),
            agent_name: "release_notes".into(),
            execution: None,
            kind: HoldKind::Other,
            summary: "llm_call".into(),
            reason: "require rule of policy llm_gate".into(),
            context_snapshot: None,
            expiry: Duration::from_millis(expiry_ms),
            require_reason: false,
            role: None,
        }
    }

    #[tokio::test]
    async fn approve_releases_the_waiter_and_is_audited() {
        let log = MemoryEventLog::default();
        let m = ApprovalManager::new(Arc::new(log.clone()));
        let hold = m.hold(req(60_000)).await.unwrap();
        let id = hold.id.clone();
        assert_eq!(id.len(), 16);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(m.pending().len(), 1);
        let waiter = tokio::spawn(hold.wait());
        m.approve(&id, "ops", &[], Some("fine".into()))
            .await
            .unwrap();
        let r = waiter.await.unwrap();
        assert!(r.approved());
        assert_eq!(r.approver.as_deref(), Some("ops"));
        assert!(m.pending().is_empty());
        assert_eq!(
            m.approve(&id, "ops", &[], None).await,
            Err(ApprovalError::AlreadyResolved(id.clone()))
        );
        let steps: Vec<String> = log
            .of_type("approval")
            .iter()
            .map(|e| e.event.details["step"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(steps, ["requested", "approved"]);
    }

    #[tokio::test]
    async fn deny_and_unknown() {
        let m = ApprovalManager::new(Arc::new(MemoryEventLog::default()));
        let hold = m.hold(req(60_000)).await.unwrap();
        let id = hold.id.clone();
        m.deny(&id, "ops", &[], None).await.unwrap();
        assert_eq!(hold.wait().await.status, HoldStatus::Denied);
        assert_eq!(
            m.deny("0000000000000000", "ops", &[], None).await,
            Err(ApprovalError::NotFound("0000000000000000".into()))
        );
    }

    #[tokio::test]
    async fn expiry_resolves_as_deny() {
        let log = MemoryEventLog::default();
        let m = ApprovalManager::new(Arc::new(log.clone()));
        let hold = m.hold(req(30)).await.unwrap();
        let id = hold.id.clone();
        let r = hold.wait().await;
        assert_eq!(r.status, HoldStatus::Expired);
        assert!(!r.approved());
        assert_eq!(
            m.approve(&id, "late", &[], None).await,
            Err(ApprovalError::AlreadyResolved(id))
        );
        assert_eq!(
            log.of_type("approval").last().unwrap().event.details["step"],
            "expired"
        );
    }

    #[tokio::test]
    async fn reason_and_role_requirements() {
        let m = ApprovalManager::new(Arc::new(MemoryEventLog::default()));
        let mut r = req(60_000);
        r.require_reason = true;
        r.role = Some("release-manager".into());
        let hold = m.hold(r).await.unwrap();
        let id = hold.id.clone();
        assert_eq!(
            m.approve(&id, "a", &[], None).await,
            Err(ApprovalError::ReasonRequired(id.clone()))
        );
        assert!(matches!(
            m.approve(&id, "a", &["dev".into()], Some("ok".into()))
                .await,
            Err(ApprovalError::RoleRequired { .. })
        ));
        m.approve(&id, "a", &["release-manager".into()], Some("ok".into()))
            .await
            .unwrap();
        assert!(hold.wait().await.approved());
    }
}
