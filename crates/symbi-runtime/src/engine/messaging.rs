//! The bus as actions (`publish`, `send_to`) and persistent agents receiving messages:
//! each message delivered to a persistent agent starts an execution whose input is the
//! message payload and whose `trigger()` is `{kind: "message", from, topic}`; a request
//! is answered with the execution's result.
//!
//! Topic subscriptions of DSL agents come from the file's metadata (the grammar has no
//! subscription item; metadata keys other than the known ones are the program's own):
//!
//! ```text
//! metadata {
//!     subscriptions: { alert_sink: ["alerts/>"], auditor: ["orders/*"] }
//! }
//! ```
//!
//! Each pattern is subscribed when the agent is registered — decided by policy like every
//! subscription (`subscribe` on the `Topic`, the agent's own DSL rules included, so the
//! agent's policy needs e.g. `allow: ["subscribe"]`). A refused or malformed subscription is
//! logged and audited by the bus; the agent stays registered. Every message published to a
//! matching topic starts an execution of the agent with the payload as input and
//! `trigger()` = `{kind: "message", from, topic}` (publish/subscribe is at most once).

use super::{Engine, ExecuteOptions, Inner};
use crate::gateway::{ActionError, ActionOutput, Call, Executor};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Weak;
use symbi_bus::{Bus, BusError, SendOptions};
use symbi_types::{AgentId, Principal};

/// `publish` and `send_to` over the bus.
pub struct BusExecutor {
    bus: Bus,
    inner: Weak<Inner>,
}

impl BusExecutor {
    pub(crate) fn new(bus: Bus, inner: Weak<Inner>) -> Self {
        Self { bus, inner }
    }
}

fn bus_error(e: BusError) -> ActionError {
    match e {
        BusError::PolicyDenied { reason, .. } => ActionError::PolicyDenied { reason },
        other => ActionError::Failed {
            kind: Some("BusError".into()),
            message: other.to_string(),
            details: None,
        },
    }
}

/// A payload as bytes: strings as they are, anything else as compact JSON.
pub(crate) fn payload_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    }
}

#[async_trait]
impl Executor for BusExecutor {
    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError> {
        let req = call.request;
        let (from, opts) = sender_of(&call);
        let payload = req
            .arg(1, "payload")
            .or_else(|| req.arg(1, "message"))
            .map(|a| a.value.clone())
            .unwrap_or(Value::Null);
        match req.name.as_str() {
            "publish" => {
                let topic = req
                    .arg_str(0, "topic")
                    .ok_or_else(|| ActionError::failed("`publish` needs a topic"))?;
                let topic = topic.strip_prefix("topic://").unwrap_or(topic);
                let id = self
                    .bus
                    .publish(&from, topic, payload_bytes(&payload), opts)
                    .await
                    .map_err(bus_error)?;
                Ok(Value::String(id.to_string()).into())
            }
            "send_to" => {
                let agent = req
                    .arg_str(0, "agent")
                    .ok_or_else(|| ActionError::failed("`send_to` needs an agent name"))?;
                let inner = self
                    .inner
                    .upgrade()
                    .ok_or_else(|| ActionError::failed("the runtime is shutting down"))?;
                let to = inner
                    .engine()
                    .agent_named(agent)
                    .ok_or_else(|| ActionError::UnknownAction { name: agent.into() })?;
                let id = self
                    .bus
                    .send(&from, to, payload_bytes(&payload), opts)
                    .await
                    .map_err(bus_error)?;
                Ok(ActionOutput {
                    value: Value::Null,
                    record: Some(json!({ "message_id": id.to_string() })),
                })
            }
            other => Err(ActionError::UnknownAction { name: other.into() }),
        }
    }
}

/// The input (the payload: JSON when it parses, else the text) and options of the execution
/// a delivered message starts; `trigger()` is `{kind: "message", from, topic}`.
fn message_run(engine: &Engine, msg: &symbi_bus::Message) -> (Value, ExecuteOptions) {
    let input = msg
        .payload_str()
        .map(|s| serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.to_string())))
        .unwrap_or(Value::Null);
    let from = engine
        .runtime()
        .get(msg.sender)
        .map(|e| e.name().to_string())
        .unwrap_or_else(|| msg.sender.to_string());
    let opts = ExecuteOptions {
        trigger: Some(json!({
            "kind": "message",
            "from": from,
            "topic": msg.topic.as_ref().map(|t| t.as_str().to_string()),
        })),
        trigger_kind: Some("message".into()),
        ..ExecuteOptions::default()
    };
    (input, opts)
}

/// The acting agent of a call as a bus principal, and send options carrying its DSL rules
/// and execution, with the gateway's decision of this very action marked as honoured.
pub(crate) fn sender_of(call: &Call<'_>) -> (Principal, SendOptions) {
    let mut from = Principal::agent(call.scope.agent_name.clone());
    from.agent_id = Some(call.scope.agent_id);
    from.capabilities = call.scope.capabilities.clone();
    let mut opts = SendOptions::default().execution(call.scope.execution);
    if let Some(r) = &call.scope.rules {
        opts = opts.rules(r.clone());
    }
    opts.conditions_satisfied = true;
    (from, opts)
}

/// Starts the message loop of a persistent agent (if the engine has a bus).
pub(crate) fn start_inbox_loop(engine: Engine, agent: AgentId) {
    let Some(bus) = engine.bus().cloned() else {
        return;
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(%agent, "no async runtime; the persistent agent will not receive messages");
        return;
    };
    handle.spawn(async move {
        let mut inbox = match bus.inbox(agent).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(%agent, error = %e, "cannot open the persistent agent's inbox");
                return;
            }
        };
        while let Some(mut delivery) = inbox.recv().await {
            if engine.runtime().get(agent).is_none() {
                break;
            }
            let (input, opts) = message_run(&engine, delivery.message());
            let outcome = match engine.execute(agent, input, opts).await {
                Ok(h) => h.wait().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(report) => {
                    if delivery.expects_response() {
                        let _ = bus
                            .respond(agent, &mut delivery, payload_bytes(&report.result))
                            .await;
                    }
                    let _ = delivery.ack().await;
                }
                Err(e) => {
                    let _ = delivery.nack(e).await;
                }
            }
        }
    });
}

/// The topic patterns `metadata { subscriptions: { AGENT: [..] } }` gives `agent`.
pub(crate) fn subscriptions_of(program: &symbi_dsl::LoadedProgram, agent: &str) -> Vec<String> {
    let Some(Value::Object(map)) = program.metadata().get("subscriptions") else {
        return Vec::new();
    };
    match map.get(agent) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// Subscribes agent `agent` (registered as `name`) to `patterns`; each message starts an
/// execution (see the module documentation).
pub(crate) fn start_subscriptions(
    engine: Engine,
    agent: AgentId,
    name: &str,
    capabilities: Vec<String>,
    patterns: Vec<String>,
) {
    let Some(bus) = engine.bus().cloned() else {
        return;
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(%agent, "no async runtime; the agent's subscriptions are not started");
        return;
    };
    let mut principal = Principal::agent(name.to_string());
    principal.agent_id = Some(agent);
    principal.capabilities = capabilities;
    for pattern in patterns {
        let (bus, engine, principal) = (bus.clone(), engine.clone(), principal.clone());
        handle.spawn(async move {
            let mut opts = SendOptions::default();
            if let Some(r) = engine.rules_for(agent, &Value::Null, None) {
                opts = opts.rules(r);
            }
            let mut sub = match bus.subscribe(&principal, &pattern, opts).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(agent = %principal.name, pattern, error = %e, "subscription refused");
                    return;
                }
            };
            tracing::info!(agent = %principal.name, pattern, "subscribed");
            while let Some(msg) = sub.recv().await {
                if engine.runtime().get(agent).is_none() {
                    break;
                }
                let (input, opts) = message_run(&engine, &msg);
                if let Err(e) = engine.execute(agent, input, opts).await {
                    tracing::warn!(agent = %principal.name, error = %e, "a published message did not start an execution");
                }
            }
        });
    }
}
