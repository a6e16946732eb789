//! The interpreter's [`ActionHost`]: every action of a DSL execution enters the gateway
//! here; `log`/`print` go to the tracing log and `audit_log` to the audit sink.

use crate::gateway::{self, Arg, ExecutionScope, Gateway};
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use symbi_dsl::host::{
    ActionError as DslError, ActionHost, ActionKind, ActionRequest as DslRequest, ExecutionInfo,
    LogLevel, SourceLocation,
};
use symbi_dsl::value::{self, Value};
use symbi_types::{AgentRuleSet, EventDraft, EventSink};

/// One execution's host.
pub struct DslHost {
    gateway: Arc<Gateway>,
    sink: Arc<dyn EventSink>,
    scope: ExecutionScope,
}

impl DslHost {
    /// A host for the execution described by `scope`.
    pub fn new(gateway: Arc<Gateway>, sink: Arc<dyn EventSink>, scope: ExecutionScope) -> Self {
        Self {
            gateway,
            sink,
            scope,
        }
    }
}

/// A DSL value as a gateway argument: JSON with secrets revealed (only the executor sees
/// it) and a flag so that logs and audit records redact it.
fn arg(v: &Value) -> Arg {
    // A memory store named as a plain identifier (GRAMMAR §4.11.3) is a ref; it reaches the
    // gateway as `{kind, name}` so that the subject and the executor see its name.
    if let Value::Ref(r) = v {
        return Arg::plain(json!({ "kind": "memory_store", "name": r.as_str() }));
    }
    let revealed = value::to_json_revealed_lossy(v);
    let secret = value::to_json_lossy(v) != revealed;
    Arg {
        value: revealed,
        secret,
    }
}

/// Maps the gateway's failure to the interpreter's.
pub fn to_dsl_error(e: gateway::ActionError) -> DslError {
    use gateway::ActionError as G;
    match e {
        G::PolicyDenied { reason } => DslError::PolicyDenied { reason },
        G::ApprovalDenied { reason } => DslError::ApprovalDenied { reason },
        G::UnknownAction { name } => DslError::UnknownAction { name },
        G::Failed {
            kind,
            message,
            details,
        } => DslError::Failed {
            kind,
            message,
            details,
        },
        G::Timeout(d) => DslError::Timeout {
            message: format!("the action exceeded its time limit of {} ms", d.as_millis()),
        },
        G::SandboxUnavailable(message) => DslError::SandboxUnavailable { message },
        G::ComponentMissing {
            action,
            component,
            hint,
        } => DslError::ComponentMissing {
            action,
            component,
            message: hint,
        },
        // Not catchable by agent code in spirit; surfaces as a failure that names the audit
        // log, and the action did not happen.
        G::AuditUnavailable(m) => DslError::Failed {
            kind: Some("AuditUnavailable".into()),
            message: format!(
                "the audit trail could not record the action, so it was not performed: {m}"
            ),
            details: None,
        },
    }
}

#[async_trait(?Send)]
impl ActionHost for DslHost {
    async fn perform(&self, req: DslRequest) -> Result<Value, DslError> {
        let secret_read = req.kind == ActionKind::Secret;
        let mut scope = self.scope.clone();
        if let Some(r) = &req.rules {
            scope.rules = Some(r.clone() as Arc<dyn AgentRuleSet>);
        }
        scope.delegation_depth = req.delegation_depth;
        let name = if secret_read {
            "secret".to_string()
        } else {
            req.name.clone()
        };
        let mut args: Vec<Arg> = req.args.iter().map(arg).collect();
        // `vault://path` arrives as the `secret` service with its path in the name.
        if secret_read && args.is_empty() {
            args.push(Arg::plain(req.name.trim_start_matches("vault://")));
        }
        let greq = gateway::ActionRequest {
            name,
            category: req.category,
            args,
            named: req.named.iter().map(|(n, v)| (n.clone(), arg(v))).collect(),
            env: req.env.clone(),
            location: Some(req.location.to_string()),
        };
        let out = self
            .gateway
            .perform(&scope, greq)
            .await
            .map_err(to_dsl_error)?;
        let v = value::from_json(&out).map_err(|e| DslError::Failed {
            kind: Some("InvalidToolOutput".into()),
            message: format!(
                "`{}` returned a value the language cannot hold: {e}",
                req.name
            ),
            details: None,
        })?;
        Ok(if secret_read { Value::secret(v) } else { v })
    }

    fn log(&self, exec: &ExecutionInfo, level: LogLevel, message: &str, location: &SourceLocation) {
        let agent = &*exec.agent;
        let execution = exec.execution.to_string();
        match level {
            LogLevel::Debug => tracing::debug!(agent, execution, %location, "{message}"),
            LogLevel::Info => tracing::info!(agent, execution, %location, "{message}"),
            LogLevel::Warning => tracing::warn!(agent, execution, %location, "{message}"),
            LogLevel::Error | LogLevel::Critical => {
                tracing::error!(agent, execution, %location, level = level.as_str(), "{message}")
            }
        }
    }

    async fn audit_log(
        &self,
        exec: &ExecutionInfo,
        event: &str,
        details: &serde_json::Value,
        location: &SourceLocation,
    ) -> Result<(), String> {
        let draft = EventDraft::new(
            symbi_types::event::types::CUSTOM,
            json!({ "event": event, "details": details, "location": location.to_string() }),
        )
        .agent(self.scope.agent_id, self.scope.agent_name.clone())
        .execution(exec.execution);
        self.sink
            .record(draft)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
