//! Agents calling agents: `delegate`, `ask`, `parallel`, `race`, and calling an agent by
//! name (GRAMMAR §4.6 step 5 — the same action as `delegate`).

use super::{ExecuteOptions, Inner};
use crate::gateway::{
    ActionError, ActionOutput, ActionRequest, AgentDirectory, Arg, Call, Executor,
};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Weak;
use std::time::Duration;
use symbi_types::{AgentId, AgentState, HumanDuration, Principal};

/// Deepest delegation chain (GRAMMAR §5.3): a deeper `delegate` fails without running.
pub const MAX_DELEGATION_DEPTH: u32 = 8;
/// Most tasks of one `parallel`/`race`.
pub const MAX_FANOUT: usize = 32;

/// The runtime's agents as the gateway sees them.
pub struct EngineDirectory {
    inner: Weak<Inner>,
}

impl EngineDirectory {
    pub(crate) fn new(inner: Weak<Inner>) -> Self {
        Self { inner }
    }
}

impl AgentDirectory for EngineDirectory {
    fn lookup(&self, name: &str) -> Option<(AgentId, bool)> {
        let inner = self.inner.upgrade()?;
        let id = inner.runtime.find_by_name(name).into_iter().last()?;
        let state = inner.runtime.get(id)?.state();
        Some((id, state == AgentState::Suspended))
    }
}

/// Executes agent actions by starting executions of other agents.
pub struct AgentsExecutor {
    inner: Weak<Inner>,
}

impl AgentsExecutor {
    pub(crate) fn new(inner: Weak<Inner>) -> Self {
        Self { inner }
    }
}

fn parse_timeout(v: Option<&Value>) -> Result<Option<Duration>, ActionError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_u64().map(Duration::from_millis)),
        Some(Value::String(s)) => {
            if let Ok(ms) = s.parse::<u64>() {
                return Ok(Some(Duration::from_millis(ms)));
            }
            s.parse::<HumanDuration>()
                .map(|d| Some(d.0))
                .map_err(|e| ActionError::failed(format!("delegate timeout: {e}")))
        }
        Some(other) => Err(ActionError::failed(format!(
            "delegate timeout must be a duration, found {other}"
        ))),
    }
}

/// The failure of a callee as the caller's `ActionFailed` (the interpreter keeps a
/// reserved kind out of the error's kind, GRAMMAR §4.9).
fn callee_failed(agent: &str, e: super::ExecutionError) -> ActionError {
    ActionError::Failed {
        kind: Some(e.kind.clone()),
        message: format!("agent `{agent}` failed: {}", e.message),
        details: Some(
            json!({ "callee": agent, "execution_id": e.execution_id.to_string(), "location": e.location }),
        ),
    }
}

impl AgentsExecutor {
    async fn delegate(
        &self,
        call: &Call<'_>,
        agent: &str,
        input: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, ActionError> {
        let inner = self
            .inner
            .upgrade()
            .ok_or_else(|| ActionError::failed("the runtime is shutting down"))?;
        let engine = inner.engine();
        if call.scope.delegation_depth + 1 >= MAX_DELEGATION_DEPTH {
            return Err(ActionError::failed(format!(
                "delegation depth limit of {MAX_DELEGATION_DEPTH} reached; `{agent}` was not run"
            )));
        }
        let id = engine
            .agent_named(agent)
            .ok_or_else(|| ActionError::UnknownAction {
                name: agent.to_string(),
            })?;
        let mut initiator = Principal::agent(call.scope.agent_name.clone());
        initiator.agent_id = Some(call.scope.agent_id);
        let opts = ExecuteOptions {
            trigger: Some(json!({ "kind": "delegate", "from": call.scope.agent_name })),
            trigger_kind: Some("delegate".into()),
            initiator: Some(initiator),
            session: call.scope.session.clone(),
            delegation_depth: call.scope.delegation_depth + 1,
            ..ExecuteOptions::default()
        };
        let handle = engine.execute(id, input, opts).await.map_err(|e| match e {
            e @ super::EngineError::PolicyDenied { .. } => ActionError::PolicyDenied {
                reason: e.to_string(),
            },
            e => ActionError::failed(e.to_string()),
        })?;
        let fut = handle.wait();
        let report = match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| ActionError::Timeout(t))?,
            None => fut.await,
        };
        report
            .map(|r| r.result)
            .map_err(|e| callee_failed(agent, e))
    }

    /// `ask` to a persistent agent is a request/response over the bus: routed by policy
    /// (`message_send`, the asking agent's rules included), answered by the callee's inbox
    /// loop with its execution's result. `None` when there is no bus or the callee is not
    /// persistent (then `ask` runs the callee directly, like `delegate`).
    async fn ask_over_bus(
        &self,
        call: &Call<'_>,
        agent: &str,
        message: &Value,
    ) -> Result<Option<Value>, ActionError> {
        let inner = self
            .inner
            .upgrade()
            .ok_or_else(|| ActionError::failed("the runtime is shutting down"))?;
        let engine = inner.engine();
        let Some(bus) = engine.bus().cloned() else {
            return Ok(None);
        };
        let id = engine
            .agent_named(agent)
            .ok_or_else(|| ActionError::UnknownAction {
                name: agent.to_string(),
            })?;
        let persistent = engine
            .runtime()
            .get(id)
            .is_some_and(|e| e.persistence() != crate::Persistence::Ephemeral);
        if !persistent {
            return Ok(None);
        }
        // The gateway decided and conditioned this very action (`ask`, invoke_agent).
        let (from, opts) = super::messaging::sender_of(call);
        let payload = super::messaging::payload_bytes(message);
        let timeout = call.options.timeout.unwrap_or(Duration::from_secs(30));
        match bus.request(&from, id, payload, timeout, opts).await {
            Ok(reply) => {
                let text = reply.payload_str().map(str::to_string).unwrap_or_default();
                Ok(Some(
                    serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
                ))
            }
            Err(symbi_bus::BusError::PolicyDenied { reason, .. }) => {
                Err(ActionError::PolicyDenied { reason })
            }
            Err(symbi_bus::BusError::Timeout { .. }) => Err(ActionError::Timeout(timeout)),
            Err(e) => Err(ActionError::Failed {
                kind: Some("BusError".into()),
                message: e.to_string(),
                details: None,
            }),
        }
    }

    async fn fanout(&self, call: &Call<'_>, race: bool) -> Result<Value, ActionError> {
        let inner = self
            .inner
            .upgrade()
            .ok_or_else(|| ActionError::failed("the runtime is shutting down"))?;
        let gateway = inner.engine().gateway().clone();
        let tasks = match call.request.arg(0, "tasks").map(|a| &a.value) {
            Some(Value::Array(t)) => t.clone(),
            _ => {
                return Err(ActionError::failed(format!(
                    "`{}` needs a list of {{agent, input}} tasks",
                    call.request.name
                )));
            }
        };
        if tasks.len() > MAX_FANOUT {
            return Err(ActionError::failed(format!(
                "`{}` takes at most {MAX_FANOUT} tasks, {} given",
                call.request.name,
                tasks.len()
            )));
        }
        let requests: Vec<ActionRequest> = tasks
            .iter()
            .map(|t| {
                let agent = t
                    .get("agent")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                ActionRequest {
                    name: "delegate".into(),
                    category: Some(symbi_types::ActionCategory::InvokeAgent),
                    args: vec![
                        Arg::plain(agent),
                        Arg::plain(t.get("input").cloned().unwrap_or(json!({}))),
                    ],
                    named: Vec::new(),
                    env: call.request.env.clone(),
                    location: call.request.location.clone(),
                }
            })
            .collect();
        // Every task is decided before any starts; one denial and none runs.
        for r in &requests {
            gateway.authorize(call.scope, r).await?;
        }
        let runs = requests.into_iter().map(|r| {
            let gateway = gateway.clone();
            async move { gateway.perform(call.scope, r).await }
        });
        if race {
            let mut pending: Vec<_> = runs.map(Box::pin).collect();
            let mut last_err = None;
            while !pending.is_empty() {
                let (out, _, rest) = futures::future::select_all(pending).await;
                match out {
                    Ok(v) => return Ok(v),
                    Err(e) => last_err = Some(e),
                }
                pending = rest;
            }
            Err(last_err.unwrap_or_else(|| ActionError::failed("`race` needs at least one task")))
        } else {
            let results = futures::future::join_all(runs).await;
            Ok(Value::Array(
                results
                    .into_iter()
                    .map(|r| match r {
                        Ok(v) => v,
                        Err(e) => {
                            json!({ "error": { "kind": e.kind(), "message": e.to_string() } })
                        }
                    })
                    .collect(),
            ))
        }
    }
}

#[async_trait]
impl Executor for AgentsExecutor {
    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError> {
        let req = call.request;
        let v = match req.name.as_str() {
            "delegate" => {
                let agent = req
                    .arg_str(0, "agent")
                    .ok_or_else(|| ActionError::failed("`delegate` needs an agent name"))?
                    .to_string();
                let input = req
                    .arg(1, "input")
                    .map(|a| a.value.clone())
                    .unwrap_or(json!({}));
                let timeout = parse_timeout(req.arg(2, "timeout").map(|a| &a.value))?;
                self.delegate(&call, &agent, input, timeout).await?
            }
            "ask" => {
                let agent = req
                    .arg_str(0, "agent")
                    .ok_or_else(|| ActionError::failed("`ask` needs an agent name"))?
                    .to_string();
                let message = req
                    .arg(1, "message")
                    .map(|a| a.value.clone())
                    .unwrap_or(Value::Null);
                let reply = match self.ask_over_bus(&call, &agent, &message).await? {
                    Some(reply) => reply,
                    None => self.delegate(&call, &agent, message, None).await?,
                };
                match reply {
                    Value::String(s) => Value::String(s),
                    other => Value::String(other.to_string()),
                }
            }
            "parallel" => self.fanout(&call, false).await?,
            "race" => self.fanout(&call, true).await?,
            "spawn_agent" => {
                return Err(ActionError::ComponentMissing {
                    action: "spawn_agent".into(),
                    component: "model provider (llm)".into(),
                    hint: "spawned agents are LLM agents; set OPENAI_API_KEY (and OPENAI_BASE_URL) to enable them".into(),
                });
            }
            // An agent called by name: the same action as `delegate`.
            name => {
                let input = if req.args.len() == 1 && req.named.is_empty() {
                    req.args[0].value.clone()
                } else {
                    Value::Object(
                        req.named
                            .iter()
                            .map(|(k, a)| (k.clone(), a.value.clone()))
                            .collect(),
                    )
                };
                self.delegate(&call, name, input, None).await?
            }
        };
        Ok(v.into())
    }
}
