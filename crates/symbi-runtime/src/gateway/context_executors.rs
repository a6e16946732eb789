//! Executors of the context builtins (GRAMMAR.md §5.3): the agent's key/value state and
//! memory stores ([`Component::Memory`]), the shared knowledge base and RAG
//! ([`Component::Knowledge`]) over [`symbi_context::ContextManager`], and the model
//! builtins ([`Component::Llm`]) over [`symbi_llm::Engines`].
//!
//! The gateway has already resolved, decided (policy), satisfied the conditions of and
//! recorded each call before it reaches these executors, and records the outcome after;
//! so they use the manager's `*_decided` entry points and add what only they know to the
//! outcome's audit record: the model calls' [`symbi_llm::CallRecord`]s (model, tokens,
//! latency, SHA-256 of prompt and answer — never the text), the state scope, the store.
//!
//! Two things are decided here rather than by the gateway, because they only arise while
//! executing:
//! * `rag_query` asks the model to write the answer only if `use_llm` on the configured
//!   model is a plain Allow for this agent (the decision is recorded in the audit log);
//!   otherwise the answer is extractive (quoted passages with citations).
//! * The tools the model calls inside `reason` go back through the gateway as actions of
//!   the agent ([`Gateway::perform`]): decided, held for approval, audited like any other.

use super::core::{ActionOutput, Call, Executor, Gateway};
use super::error::ActionError;
use super::request::{ActionRequest, Arg, ExecutionScope};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use std::sync::{Arc, OnceLock, Weak};
use symbi_context::{ContextError, ContextManager, MemoryStoreSpec, StateScope};
use symbi_dsl::host::MemoryMode;
use symbi_llm::{
    EngineOutput, Engines, LlmCallArgs, LlmError, ToolDefinition, ToolFailure, ToolHost,
};
use symbi_types::{
    ActionCategory, AgentId, EventDraft, EventSink, PolicyDecisionPoint, PolicyRequest, Principal,
    Subject, SubjectKind,
};

/// Finds the `memory` item `name` of the program agent `AgentId` was loaded from (the
/// engine supplies it once it exists).
pub type StoreLookup = Arc<dyn Fn(AgentId, &str) -> Option<MemoryStoreSpec> + Send + Sync>;

/// Converts a DSL `memory` item into the context manager's store description.
pub fn store_spec(m: &symbi_dsl::program::MemorySpec) -> Result<MemoryStoreSpec, ContextError> {
    Ok(MemoryStoreSpec {
        name: m.name.clone(),
        backend: m.store.parse()?,
        path: m.path.clone().into(),
        retention: m.retention,
        vector_weight: m.vector_weight as f32,
        keyword_weight: m.keyword_weight as f32,
    })
}

/// The executor of [`Component::Memory`](super::Component::Memory),
/// [`Component::Knowledge`](super::Component::Knowledge) and, when a model provider is
/// configured, [`Component::Llm`](super::Component::Llm). Register one instance for all
/// three; wire [`Self::bind`] once the engine (and its gateway) exist.
pub struct ContextExecutor {
    ctx: ContextManager,
    pdp: Arc<dyn PolicyDecisionPoint>,
    sink: Arc<dyn EventSink>,
    stores: OnceLock<StoreLookup>,
    gateway: OnceLock<Weak<Gateway>>,
}

impl ContextExecutor {
    /// An executor over `ctx`; `pdp` and `sink` decide and record `rag_query`'s model use.
    pub fn new(
        ctx: ContextManager,
        pdp: Arc<dyn PolicyDecisionPoint>,
        sink: Arc<dyn EventSink>,
    ) -> Self {
        Self {
            ctx,
            pdp,
            sink,
            stores: OnceLock::new(),
            gateway: OnceLock::new(),
        }
    }

    /// The context manager.
    pub fn context(&self) -> &ContextManager {
        &self.ctx
    }

    /// Whether a model provider is configured (register for `Component::Llm` only then, so
    /// that the gateway's "component missing" error says what to set).
    pub fn has_llm(&self) -> bool {
        self.ctx.llm().is_some()
    }

    /// Connects the executor to the engine: how to find an agent's memory stores, and the
    /// gateway through which `reason`'s tool calls go (held weakly: the gateway owns this
    /// executor). Later calls are ignored.
    pub fn bind(&self, stores: StoreLookup, gateway: Weak<Gateway>) {
        let _ = self.stores.set(stores);
        let _ = self.gateway.set(gateway);
    }

    async fn store_name(&self, call: &Call<'_>) -> Result<String, ActionError> {
        let req = call.request;
        let name = match req.arg(0, "store").map(|a| &a.value) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(m)) => m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        if name.is_empty() {
            return Err(invalid(format!(
                "`{}` needs a memory store as its first argument (the name of a `memory` item)",
                req.name
            )));
        }
        let lookup = self.stores.get().ok_or_else(|| {
            ActionError::failed("memory stores are not available outside the engine")
        })?;
        let spec = lookup(call.scope.agent_id, &name).ok_or_else(|| ActionError::Failed {
            kind: Some("NotFound".into()),
            message: format!(
                "no `memory {name} {{ … }}` item is defined in the program of agent `{}`",
                call.scope.agent_name
            ),
            details: None,
        })?;
        // Idempotent for an unchanged spec: opens the store (and its index) on first use.
        self.ctx.register_store(spec).await.map_err(ctx_error)?;
        Ok(name)
    }

    async fn memory(&self, call: &Call<'_>) -> Result<ActionOutput, ActionError> {
        let req = call.request;
        match req.name.as_str() {
            "remember" | "recall" | "forget" => {
                let scope = state_scope(call.scope, req)?;
                let key = req
                    .arg_str(0, "key")
                    .ok_or_else(|| invalid(format!("`{}` needs a string key", req.name)))?;
                let record = json!({ "state_scope": scope_name(&scope), "key": key });
                let value = match req.name.as_str() {
                    "remember" => {
                        let v = req
                            .arg(1, "value")
                            .map(|a| a.value.clone())
                            .unwrap_or(Value::Null);
                        self.ctx.remember(&scope, key, v).map_err(ctx_error)?;
                        Value::Null
                    }
                    "recall" => self
                        .ctx
                        .recall(&scope, key)
                        .map_err(ctx_error)?
                        .unwrap_or(Value::Null),
                    _ => Value::Bool(self.ctx.forget(&scope, key).map_err(ctx_error)?),
                };
                Ok(ActionOutput {
                    value,
                    record: Some(record),
                })
            }
            "memory_write" => {
                let store = self.store_name(call).await?;
                let record = match req.arg(1, "record").map(|a| &a.value) {
                    Some(Value::Object(m)) => m.clone(),
                    Some(other) => {
                        let mut m = Map::new();
                        m.insert("text".into(), other.clone());
                        m
                    }
                    None => return Err(invalid("`memory_write(store, record)` needs a record")),
                };
                let id = self
                    .ctx
                    .memory_write(&store, record)
                    .await
                    .map_err(ctx_error)?;
                Ok(ActionOutput {
                    value: Value::String(id.clone()),
                    record: Some(json!({ "store": store, "id": id })),
                })
            }
            "memory_search" => {
                let store = self.store_name(call).await?;
                let query = text_arg(req, 1, "query")
                    .ok_or_else(|| invalid("`memory_search(store, query)` needs a query"))?;
                let limit = limit_arg(req, "limit", 10)?;
                let hits = self
                    .ctx
                    .memory_search(&store, &query, limit)
                    .await
                    .map_err(ctx_error)?;
                let n = hits.len();
                Ok(ActionOutput {
                    value: Value::Array(hits),
                    record: Some(json!({ "store": store, "hits": n, "limit": limit })),
                })
            }
            "memory_delete" => {
                let store = self.store_name(call).await?;
                let id = text_arg(req, 1, "id")
                    .ok_or_else(|| invalid("`memory_delete(store, id)` needs an id"))?;
                let existed = self
                    .ctx
                    .memory_delete(&store, &id)
                    .await
                    .map_err(ctx_error)?;
                Ok(ActionOutput {
                    value: Value::Bool(existed),
                    record: Some(json!({ "store": store, "id": id })),
                })
            }
            other => Err(ActionError::UnknownAction { name: other.into() }),
        }
    }

    async fn knowledge(&self, call: &Call<'_>) -> Result<ActionOutput, ActionError> {
        let req = call.request;
        match req.name.as_str() {
            "knowledge_add" => {
                let doc = req
                    .arg(0, "document")
                    .map(|a| a.value.clone())
                    .ok_or_else(|| invalid("`knowledge_add(document)` needs a document"))?;
                let id = self
                    .ctx
                    .knowledge_add_decided(&doc)
                    .await
                    .map_err(ctx_error)?;
                Ok(ActionOutput {
                    value: Value::String(id.clone()),
                    record: Some(json!({ "document": id })),
                })
            }
            "knowledge_search" => {
                let query = text_arg(req, 0, "query")
                    .ok_or_else(|| invalid("`knowledge_search(query)` needs a query"))?;
                let limit = limit_arg(req, "limit", 5)?;
                let hits = self
                    .ctx
                    .knowledge_search_decided(&query, limit)
                    .await
                    .map_err(ctx_error)?;
                let n = hits.len();
                Ok(ActionOutput {
                    value: Value::Array(hits),
                    record: Some(json!({ "hits": n, "limit": limit })),
                })
            }
            "rag_query" => {
                let question = text_arg(req, 0, "question")
                    .ok_or_else(|| invalid("`rag_query(question)` needs a question"))?;
                let limit = limit_arg(req, "limit", 5)?;
                let with_llm = match self.ctx.llm() {
                    Some(engines) => self.decide_rag_model(call, engines).await?,
                    None => false,
                };
                let answer = self
                    .ctx
                    .rag_query_decided_with(&question, limit, with_llm)
                    .await
                    .map_err(ctx_error)?;
                let record = json!({
                    "answered_by": if answer.llm_record.is_some() { "model" } else { "extractive" },
                    "citations": answer.citations.iter().map(|c| json!({"document": c.document, "chunk": c.chunk})).collect::<Vec<_>>(),
                    "llm": answer.llm_record,
                });
                Ok(ActionOutput {
                    value: answer.to_dsl(),
                    record: Some(record),
                })
            }
            other => Err(ActionError::UnknownAction { name: other.into() }),
        }
    }

    /// Decides `use_llm` for the model that would write a RAG answer and records the
    /// decision. Only a plain Allow lets the model answer: conditions (approval, …) cannot
    /// be satisfied in the middle of another action, so they mean "extractive answer".
    async fn decide_rag_model(
        &self,
        call: &Call<'_>,
        engines: &Engines,
    ) -> Result<bool, ActionError> {
        let model = engines.client().config().model.clone();
        let subject = Subject::named(SubjectKind::Llm, model.clone())
            .with("model", model.clone())
            .with("provider", "openai-compatible");
        let mut principal = Principal::agent(call.scope.agent_name.clone());
        principal.agent_id = Some(call.scope.agent_id);
        principal.capabilities = call.scope.capabilities.clone();
        principal.attributes = call.scope.principal.clone();
        let mut preq = PolicyRequest::new(
            principal,
            ActionCategory::UseLlm,
            "rag_query",
            subject.clone(),
        );
        preq.execution = Some(call.scope.execution);
        preq.context
            .insert("has_human_approval".into(), json!(false));
        preq.context
            .insert("trigger".into(), call.scope.trigger.clone());
        preq.context
            .insert("session".into(), json!(call.scope.session));
        let decision = self.pdp.decide(&preq, call.scope.rules.as_deref());
        let draft = EventDraft::new(
            ActionCategory::UseLlm.as_str(),
            json!({
                "phase": "decision", "action": "rag_query", "subject": subject,
                "decision": decision.outcome(), "reasons": decision.reason(), "location": call.request.location,
                "note": "model use inside rag_query; anything but a plain Allow gives an extractive answer",
            }),
        )
        .agent(call.scope.agent_id, call.scope.agent_name.clone())
        .execution(call.scope.execution);
        self.sink
            .record(draft)
            .await
            .map_err(|e| ActionError::AuditUnavailable(e.0))?;
        Ok(matches!(decision, symbi_types::Decision::Allow { .. }))
    }

    async fn llm(&self, call: &Call<'_>) -> Result<ActionOutput, ActionError> {
        let engines = self.ctx.llm().ok_or_else(|| ActionError::ComponentMissing {
            action: call.request.name.clone(),
            component: super::Component::Llm.as_str().into(),
            hint: "set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible server), or [llm] api_key / base_url in symbi.toml".into(),
        })?;
        let req = call.request;
        let out: EngineOutput = match req.name.as_str() {
            "llm_call" => {
                let prompt = text_arg(req, 0, "prompt")
                    .ok_or_else(|| invalid("`llm_call(prompt)` needs a prompt"))?;
                let args = LlmCallArgs {
                    prompt,
                    system: named_str(req, "system"),
                    model: named_str(req, "model"),
                    temperature: req
                        .named
                        .iter()
                        .find(|(n, _)| n == "temperature")
                        .and_then(|(_, a)| a.value.as_f64()),
                    max_tokens: req
                        .named
                        .iter()
                        .find(|(n, _)| n == "max_tokens")
                        .and_then(|(_, a)| a.value.as_u64())
                        .map(|v| v.min(u32::MAX as u64) as u32),
                };
                engines.llm_call(args).await.map_err(llm_error)?
            }
            "reason" => {
                let system = text_arg(req, 0, "system")
                    .ok_or_else(|| invalid("`reason(system, user)` needs a system prompt"))?;
                let user = text_arg(req, 1, "user")
                    .ok_or_else(|| invalid("`reason(system, user)` needs a user prompt"))?;
                let max_iterations =
                    limit_arg(req, "max_iterations", 10)?.min(u32::MAX as usize) as u32;
                let max_tokens = limit_arg(req, "max_tokens", 100_000)? as u64;
                let gateway = self.gateway.get().and_then(Weak::upgrade);
                let host = GatewayTools {
                    gateway,
                    scope: call.scope.clone(),
                    request: req.clone(),
                    fatal: Mutex::new(None),
                };
                let r = engines
                    .reason(&system, &user, max_iterations, max_tokens, &host)
                    .await;
                // A fatal tool failure (denial, approval refused, audit down) surfaces as that
                // kind, not as a generic model error.
                if let Some(e) = host.fatal.lock().take() {
                    return Err(e);
                }
                r.map_err(llm_error)?
            }
            "chain" => {
                let steps = list_arg(req, 0, "steps")?;
                engines.chain(&steps).await.map_err(llm_error)?
            }
            "debate" => {
                let writer = named_or(req, 0, "writer_prompt")?;
                let critic = named_or(req, 1, "critic_prompt")?;
                let topic = named_or(req, 2, "topic")?;
                let rounds = limit_arg(req, "rounds", 3)?.min(u32::MAX as usize) as u32;
                engines
                    .debate(&writer, &critic, &topic, rounds)
                    .await
                    .map_err(llm_error)?
            }
            "map_reduce" => {
                let inputs = list_arg(req, 0, "inputs")?;
                let mapper = named_or(req, 1, "mapper")?;
                let reducer = named_or(req, 2, "reducer")?;
                engines
                    .map_reduce(&inputs, &mapper, &reducer)
                    .await
                    .map_err(llm_error)?
            }
            "director" => {
                let orchestrator = named_or(req, 0, "orchestrator_prompt")?;
                let workers = list_arg(req, 1, "workers")?;
                let task = named_or(req, 2, "task")?;
                engines
                    .director(&orchestrator, &workers, &task)
                    .await
                    .map_err(llm_error)?
            }
            other => return Err(ActionError::UnknownAction { name: other.into() }),
        };
        let record = json!({
            "provider": "openai-compatible",
            "model": out.records.first().map(|r| r.model.clone()).unwrap_or_else(|| engines.client().config().model.clone()),
            "total_tokens": out.total_tokens(),
            "llm_calls": out.records,
        });
        Ok(ActionOutput {
            value: out.value,
            record: Some(record),
        })
    }
}

#[async_trait]
impl Executor for ContextExecutor {
    /// An LLM call without `model:` is answered by the configured model: the subject
    /// names it (and the provider's base URL), so policies can say which agent may use
    /// which model.
    fn complete_subject(&self, subject: &mut Subject) {
        if subject.kind != SubjectKind::Llm {
            return;
        }
        let Some(engines) = self.ctx.llm() else {
            return;
        };
        let cfg = engines.client().config();
        if subject.name.is_empty() {
            subject.name = cfg.model.clone();
            subject
                .attrs
                .insert("name".into(), Value::String(cfg.model.clone()));
            subject
                .attrs
                .insert("model".into(), Value::String(cfg.model.clone()));
        }
        subject
            .attrs
            .insert("provider".into(), Value::String(cfg.base_url.clone()));
    }

    fn end_execution(&self, execution: symbi_types::ExecutionId) {
        self.ctx.end_execution(execution);
    }

    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError> {
        type Fut<'a> = std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<ActionOutput, ActionError>> + Send + 'a>,
        >;
        match call.category {
            ActionCategory::MemoryRead | ActionCategory::MemoryWrite => {
                let f: Fut<'_> = Box::pin(self.memory(&call));
                f.await
            }
            ActionCategory::KnowledgeRead | ActionCategory::KnowledgeWrite => {
                let f: Fut<'_> = Box::pin(self.knowledge(&call));
                f.await
            }
            ActionCategory::UseLlm => {
                let f: Fut<'_> = Box::pin(self.llm(&call));
                f.await
            }
            _ => Err(ActionError::UnknownAction {
                name: call.request.name.clone(),
            }),
        }
    }
}

/// `reason`'s tools: every tool the gateway knows, called through the gateway as an
/// action of the agent in the `with` block of the `reason` call.
struct GatewayTools {
    gateway: Option<Arc<Gateway>>,
    scope: ExecutionScope,
    request: ActionRequest,
    fatal: Mutex<Option<ActionError>>,
}

#[async_trait]
impl ToolHost for GatewayTools {
    fn tools(&self) -> Vec<ToolDefinition> {
        let Some(gw) = &self.gateway else {
            return Vec::new();
        };
        let mut names = gw.tool_names();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| {
                let description = format!(
                    "the `{n}` tool of this runtime (input: a JSON object of its arguments)"
                );
                ToolDefinition::function(n, description, json!({"type": "object"}))
            })
            .collect()
    }

    async fn call(&self, name: &str, arguments: Value) -> Result<Value, ToolFailure> {
        let Some(gw) = &self.gateway else {
            return Err(ToolFailure::Recoverable(format!(
                "no tool named `{name}` is available"
            )));
        };
        if !gw.tool_names().iter().any(|t| t == name) {
            // Only tools: the model must not reach builtins or agents through this door.
            return Err(ToolFailure::Recoverable(format!(
                "no tool named `{name}` is available"
            )));
        }
        let req = ActionRequest {
            name: name.to_string(),
            category: None,
            args: vec![Arg::plain(arguments)],
            named: Vec::new(),
            env: self.request.env.clone(),
            location: self.request.location.clone(),
        };
        match gw.perform(&self.scope, req).await {
            Ok(v) => Ok(v),
            Err(
                e @ (ActionError::PolicyDenied { .. }
                | ActionError::ApprovalDenied { .. }
                | ActionError::AuditUnavailable(_)),
            ) => {
                let msg = e.to_string();
                *self.fatal.lock() = Some(e);
                Err(ToolFailure::Fatal(msg))
            }
            Err(e) => Err(ToolFailure::Recoverable(e.to_string())),
        }
    }
}

/// The key/value state an agent's `remember`/`recall`/`forget` use, from its `memory`
/// attribute (GRAMMAR.md §4.8).
fn state_scope(scope: &ExecutionScope, req: &ActionRequest) -> Result<StateScope, ActionError> {
    let agent = scope.agent_name.clone();
    Ok(match req.env.memory {
        MemoryMode::Persistent => StateScope::Persistent { agent },
        // Fail closed: writing the state in clear would silently weaken what was asked for.
        MemoryMode::Encrypted => {
            return Err(ActionError::Failed {
                kind: Some("Unsupported".into()),
                message: "memory = \"encrypted\" (state encrypted at rest) is not supported by this runtime's state store; use memory = \"persistent\" on an encrypted volume".into(),
                details: None,
            });
        }
        MemoryMode::Session => match &scope.session {
            Some(session) => StateScope::Session {
                agent,
                session: session.clone(),
            },
            // No session: the caller's session is this execution.
            None => StateScope::Execution {
                agent,
                execution: scope.execution,
            },
        },
        MemoryMode::Ephemeral => StateScope::Execution {
            agent,
            execution: scope.execution,
        },
    })
}

fn scope_name(s: &StateScope) -> &'static str {
    match s {
        StateScope::Persistent { .. } => "persistent",
        StateScope::Session { .. } => "session",
        StateScope::Execution { .. } => "execution",
    }
}

fn invalid(message: impl Into<String>) -> ActionError {
    ActionError::Failed {
        kind: Some("InvalidArgument".into()),
        message: message.into(),
        details: None,
    }
}

/// A text argument: strings as they are, other values as compact JSON.
fn text_arg(req: &ActionRequest, index: usize, name: &str) -> Option<String> {
    req.arg(index, name).and_then(|a| match &a.value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    })
}

fn named_str(req: &ActionRequest, name: &str) -> Option<String> {
    req.named
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, a)| a.value.as_str())
        .map(str::to_string)
}

fn named_or(req: &ActionRequest, index: usize, name: &str) -> Result<String, ActionError> {
    text_arg(req, index, name).ok_or_else(|| invalid(format!("`{}` needs `{name}`", req.name)))
}

fn list_arg(req: &ActionRequest, index: usize, name: &str) -> Result<Vec<Value>, ActionError> {
    match req.arg(index, name).map(|a| &a.value) {
        Some(Value::Array(v)) => Ok(v.clone()),
        _ => Err(invalid(format!("`{}` needs `{name}` as a list", req.name))),
    }
}

/// A named non-negative integer argument with a default.
fn limit_arg(req: &ActionRequest, name: &str, default: usize) -> Result<usize, ActionError> {
    match req
        .named
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| &a.value)
    {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .map(|n| n.min(usize::MAX as u64) as usize)
            .ok_or_else(|| {
                invalid(format!(
                    "`{}`: `{name}` must be a non-negative integer, not {v}",
                    req.name
                ))
            }),
    }
}

fn ctx_error(e: ContextError) -> ActionError {
    match e {
        ContextError::PolicyDenied { reason, .. } => ActionError::PolicyDenied { reason },
        ContextError::Audit(m) => ActionError::AuditUnavailable(m),
        ContextError::Llm(e) => llm_error(e),
        other => {
            let kind = match &other {
                ContextError::NotFound(_) => "NotFound",
                ContextError::InvalidArgument(_) => "InvalidArgument",
                ContextError::Unavailable(_) => "Unavailable",
                ContextError::Corrupt { .. } => "CorruptData",
                ContextError::Vector(_) => "VectorStoreError",
                ContextError::Embedding(_) => "EmbeddingError",
                _ => "ContextError",
            };
            ActionError::Failed {
                kind: Some(kind.into()),
                message: other.to_string(),
                details: None,
            }
        }
    }
}

fn llm_error(e: LlmError) -> ActionError {
    let kind = match &e {
        LlmError::InvalidArgument(_) => "InvalidArgument",
        LlmError::Config(_) => "ModelProviderConfig",
        _ => "ModelProviderError",
    };
    ActionError::Failed {
        kind: Some(kind.into()),
        message: e.to_string(),
        details: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use symbi_dsl::host::BlockEnv;
    use symbi_types::ExecutionId;

    fn scope(session: Option<&str>) -> ExecutionScope {
        ExecutionScope {
            agent_id: AgentId::new(),
            agent_name: "counter".into(),
            capabilities: Vec::new(),
            execution: ExecutionId::new(),
            principal: Map::new(),
            trigger: Value::Null,
            session: session.map(str::to_string),
            delegation_depth: 0,
            rules: None,
            audit: Default::default(),
            full_detail: None,
            budget: None,
        }
    }

    fn req(memory: MemoryMode) -> ActionRequest {
        let env = BlockEnv {
            memory,
            ..BlockEnv::default()
        };
        ActionRequest {
            name: "recall".into(),
            category: None,
            args: vec![Arg::plain("k")],
            named: Vec::new(),
            env: Arc::new(env),
            location: None,
        }
    }

    #[test]
    fn memory_modes_choose_the_state_scope() {
        let s = scope(Some("s1"));
        assert_eq!(
            state_scope(&s, &req(MemoryMode::Persistent)).unwrap(),
            StateScope::Persistent {
                agent: "counter".into()
            }
        );
        assert_eq!(
            state_scope(&s, &req(MemoryMode::Session)).unwrap(),
            StateScope::Session {
                agent: "counter".into(),
                session: "s1".into()
            }
        );
        assert_eq!(
            state_scope(&s, &req(MemoryMode::Ephemeral)).unwrap(),
            StateScope::Execution {
                agent: "counter".into(),
                execution: s.execution
            }
        );
        let e = state_scope(&s, &req(MemoryMode::Encrypted)).unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
    }

    #[test]
    fn limits_default_and_reject_bad_values() {
        let mut r = req(MemoryMode::Ephemeral);
        assert_eq!(limit_arg(&r, "limit", 10).unwrap(), 10);
        r.named.push(("limit".into(), Arg::plain(3)));
        assert_eq!(limit_arg(&r, "limit", 10).unwrap(), 3);
        r.named[0].1 = Arg::plain("many");
        assert!(limit_arg(&r, "limit", 10).is_err());
    }

    #[test]
    fn dsl_memory_items_become_store_specs() {
        let m = symbi_dsl::program::MemorySpec {
            name: "log".into(),
            store: "markdown".into(),
            path: "data/tickets".into(),
            retention: Duration::from_secs(86_400),
            vector_weight: 0.4,
            keyword_weight: 0.6,
        };
        let s = store_spec(&m).unwrap();
        assert_eq!(s.path, std::path::PathBuf::from("data/tickets"));
        assert!((s.keyword_weight - 0.6).abs() < 1e-6);
        let bad = symbi_dsl::program::MemorySpec {
            store: "redis".into(),
            ..m
        };
        assert!(store_spec(&bad).is_err());
    }
}
