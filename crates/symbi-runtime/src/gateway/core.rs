//! The gateway pipeline: resolve → decide → conditions → execute → record.

use super::approvals::{ApprovalManager, HoldKind, HoldRequest};
use super::error::ActionError;
use super::rate_limit::RateLimits;
use super::request::{
    ActionRequest, Arg, ExecutionScope, NetworkPolicy, effective_min_tier, redacts_by_default,
    requires_verified_tools,
};
use super::sanitize;
use super::services::{self, Component, ServiceSpec};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_types::decision::{Condition, VerificationMode};
use symbi_types::{
    ActionCategory, AgentId, Decision, EventDraft, EventSink, PolicyDecisionPoint, PolicyRequest,
    Principal, SandboxTier, Subject, SubjectKind,
};

/// Options the decision's conditions set for the executor.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// Minimum sandbox tier (the block's, raised by policy).
    pub min_tier: Option<SandboxTier>,
    /// TLS verification demanded (`Some(true)`) or waived by policy (`Some(false)`).
    pub tls_verify: Option<bool>,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
    /// Tool-schema verification mode demanded by policy or `security`.
    pub schema_mode: Option<VerificationMode>,
    /// Validate input against the tool's schema before calling.
    pub validate_input: bool,
}

/// One resolved call, handed to an executor.
pub struct Call<'a> {
    /// The execution.
    pub scope: &'a ExecutionScope,
    /// The request (arguments already sanitized if policy asked).
    pub request: &'a ActionRequest,
    /// Category.
    pub category: ActionCategory,
    /// Subject.
    pub subject: &'a Subject,
    /// Options from the decision.
    pub options: &'a ExecOptions,
}

/// What an executor returns: the value for the agent, and optionally extra details for
/// the outcome's audit record (tier, limits, exit status, model tokens, …).
#[derive(Clone, Debug, PartialEq)]
pub struct ActionOutput {
    /// The action's result.
    pub value: Value,
    /// Extra audit details (a JSON object), recorded whatever the agent's audit level.
    pub record: Option<Value>,
}

impl From<Value> for ActionOutput {
    fn from(value: Value) -> Self {
        Self {
            value,
            record: None,
        }
    }
}

/// Implements one component's services.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Performs the call.
    async fn execute(&self, call: Call<'_>) -> Result<ActionOutput, ActionError>;

    /// Completes the policy subject of a call this executor will perform with what only it
    /// knows (e.g. the model and provider that will answer an LLM call), before the
    /// decision.
    fn complete_subject(&self, _subject: &mut Subject) {}

    /// Called once when an execution has ended (completed or failed): release whatever
    /// the executor kept for it (e.g. an ephemeral agent's working memory).
    fn end_execution(&self, _execution: symbi_types::ExecutionId) {}
}

/// A tool as the gateway sees it (subject attributes `{name, kind, server, schema_verified,
/// tier}`, GRAMMAR §4.10).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDescriptor {
    /// Tool name as called.
    pub name: String,
    /// `command` or `mcp`.
    pub kind: String,
    /// MCP server, if any.
    pub server: Option<String>,
    /// Category the manifest declares (`invoke_tool` default, `execute_code`, …).
    pub category: ActionCategory,
    /// Whether its schema signature verified (MCP / SchemaPin); `None` = not applicable.
    pub schema_verified: Option<bool>,
    /// Minimum tier the tool requires.
    pub tier: Option<SandboxTier>,
    /// Capabilities an agent must declare to use it.
    pub required_capabilities: Vec<String>,
    /// JSON schema of its input.
    pub input_schema: Option<Value>,
}

/// A source of tools (command tools, MCP servers).
#[async_trait]
pub trait ToolProvider: Send + Sync {
    /// Looks a tool up by name.
    fn lookup(&self, name: &str) -> Option<ToolDescriptor>;
    /// Names of every tool it offers (for the checker's `known_tools`, listings).
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
    /// Invokes it with its input object.
    async fn invoke(
        &self,
        tool: &ToolDescriptor,
        input: Value,
        call: Call<'_>,
    ) -> Result<ActionOutput, ActionError>;
}

/// What the runtime tells the gateway about agents (subject attributes and calls by name).
pub trait AgentDirectory: Send + Sync {
    /// `(id, suspended)` of the agent registered under `name`.
    fn lookup(&self, name: &str) -> Option<(AgentId, bool)>;
}

enum Target {
    Service(&'static ServiceSpec),
    Tool(ToolDescriptor, Arc<dyn ToolProvider>),
    Agent,
}

/// The gateway.
pub struct Gateway {
    pdp: Arc<dyn PolicyDecisionPoint>,
    sink: Arc<dyn EventSink>,
    approvals: ApprovalManager,
    rate_limits: RateLimits,
    executors: HashMap<Component, Arc<dyn Executor>>,
    tools: Vec<Arc<dyn ToolProvider>>,
    agents: Option<Arc<dyn AgentDirectory>>,
    development: bool,
    default_approval_expiry: Duration,
}

/// Builds a [`Gateway`].
pub struct GatewayBuilder {
    gw: Gateway,
}

impl GatewayBuilder {
    /// Registers the executor of a component.
    pub fn executor(mut self, component: Component, exec: Arc<dyn Executor>) -> Self {
        self.gw.executors.insert(component, exec);
        self
    }

    /// Adds a tool provider; providers are asked in the order added (command tools first,
    /// then MCP tools, GRAMMAR §4.6).
    pub fn tools(mut self, provider: Arc<dyn ToolProvider>) -> Self {
        self.gw.tools.push(provider);
        self
    }

    /// Sets the agent directory.
    pub fn agents(mut self, dir: Arc<dyn AgentDirectory>) -> Self {
        self.gw.agents = Some(dir);
        self
    }

    /// Development mode: unenforceable (opaque) conditions are recorded, not enforced.
    pub fn development(mut self, yes: bool) -> Self {
        self.gw.development = yes;
        self
    }

    /// The gateway.
    pub fn build(self) -> Arc<Gateway> {
        Arc::new(self.gw)
    }
}

/// SHA-256 of the compact JSON text, lower-case hex.
pub fn digest(v: &Value) -> String {
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

fn redact_named(named: &[(String, Arg)]) -> Value {
    Value::Object(
        named
            .iter()
            .map(|(k, a)| {
                (
                    k.clone(),
                    if a.secret {
                        json!("[REDACTED]")
                    } else {
                        a.value.clone()
                    },
                )
            })
            .collect(),
    )
}

fn redact(args: &[Arg]) -> Value {
    Value::Array(
        args.iter()
            .map(|a| {
                if a.secret {
                    json!("[REDACTED]")
                } else {
                    a.value.clone()
                }
            })
            .collect(),
    )
}

impl Gateway {
    /// Tells every executor that `execution` has ended.
    pub fn end_execution(&self, execution: symbi_types::ExecutionId) {
        for e in self.executors.values() {
            e.end_execution(execution);
        }
    }

    /// Starts building a gateway over a decision point and an audit sink.
    pub fn builder(
        pdp: Arc<dyn PolicyDecisionPoint>,
        sink: Arc<dyn EventSink>,
        approvals: ApprovalManager,
    ) -> GatewayBuilder {
        GatewayBuilder {
            gw: Gateway {
                pdp,
                sink,
                approvals,
                rate_limits: RateLimits::default(),
                executors: HashMap::new(),
                tools: Vec::new(),
                agents: None,
                development: false,
                default_approval_expiry: Duration::from_secs(3600),
            },
        }
    }

    /// Every tool name the providers offer.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools.iter().flat_map(|p| p.names()).collect()
    }

    /// Resolves and decides an action without executing it: a denial is recorded and
    /// returned as `PolicyDenied`; an allowed action is not recorded here (performing it
    /// records its decision). Used where several actions must all be decided first
    /// (`parallel`, `race`).
    pub async fn authorize(
        &self,
        scope: &ExecutionScope,
        req: &ActionRequest,
    ) -> Result<(), ActionError> {
        let (category, subject, target) = self.resolve(req)?;
        let preq = self.policy_request(scope, req, category, &subject);
        let mut decision = self.pdp.decide(&preq, scope.rules.as_deref());
        if decision.is_allowed() {
            if let Some(reason) = self.hard_limits(scope, req, category, &target) {
                decision = Decision::deny(reason);
            }
        }
        if decision.is_allowed() {
            return Ok(());
        }
        self.record(scope, category, json!({
            "phase": "decision", "action": req.name, "subject": subject, "decision": "Deny",
            "reasons": match &decision { Decision::Deny { reasons } => reasons.clone(), _ => Vec::new() },
            "location": req.location,
        }))
        .await?;
        Err(ActionError::PolicyDenied {
            reason: decision.reason(),
        })
    }

    /// The approval manager (the API lists and decides holds through it).
    pub fn approvals(&self) -> &ApprovalManager {
        &self.approvals
    }

    fn resolve(
        &self,
        req: &ActionRequest,
    ) -> Result<(ActionCategory, Subject, Target), ActionError> {
        if let Some(spec) = services::service(&req.name) {
            let mut subject = services::subject_for(spec, req);
            if subject.kind == SubjectKind::Agent {
                self.complete_agent_subject(&mut subject);
            }
            if let Some(exec) = self.executors.get(&spec.component) {
                exec.complete_subject(&mut subject);
            }
            return Ok((spec.category, subject, Target::Service(spec)));
        }
        // `tool_call(name, args)` names the tool at run time.
        for p in &self.tools {
            if let Some(t) = p.lookup(&req.name) {
                let subject = tool_subject(&t);
                return Ok((t.category, subject, Target::Tool(t, p.clone())));
            }
        }
        if let Some(dir) = &self.agents {
            if dir.lookup(&req.name).is_some() {
                let mut subject = Subject::named(SubjectKind::Agent, req.name.clone());
                self.complete_agent_subject(&mut subject);
                return Ok((ActionCategory::InvokeAgent, subject, Target::Agent));
            }
        }
        Err(ActionError::UnknownAction {
            name: req.name.clone(),
        })
    }

    fn complete_agent_subject(&self, subject: &mut Subject) {
        let found = self.agents.as_ref().and_then(|d| d.lookup(&subject.name));
        subject
            .attrs
            .insert("registered".into(), json!(found.is_some()));
        subject
            .attrs
            .insert("id".into(), json!(found.map(|(id, _)| id.to_string())));
        subject
            .attrs
            .insert("suspended".into(), json!(found.is_some_and(|(_, s)| s)));
    }

    fn policy_request(
        &self,
        scope: &ExecutionScope,
        req: &ActionRequest,
        category: ActionCategory,
        subject: &Subject,
    ) -> PolicyRequest {
        let mut principal = Principal::agent(scope.agent_name.clone());
        principal.agent_id = Some(scope.agent_id);
        principal.capabilities = scope.capabilities.clone();
        // The agent acts as itself: who started the execution is context (`principal`),
        // never the acting principal's own attributes (an API client's `type` would turn
        // the agent into a Client).
        if let Some(t) = effective_min_tier(&req.env) {
            principal
                .attributes
                .insert("sandbox".into(), json!(t.as_str()));
        }
        let mut context = Map::new();
        context.insert("has_human_approval".into(), json!(false));
        context.insert("principal".into(), Value::Object(scope.principal.clone()));
        context.insert("trigger".into(), scope.trigger.clone());
        context.insert("session".into(), json!(scope.session));
        let mut p = PolicyRequest::new(principal, category, req.name.clone(), subject.clone());
        p.args = req.args.iter().map(|a| a.value.clone()).collect();
        p.named = req
            .named
            .iter()
            .map(|(n, a)| (n.clone(), a.value.clone()))
            .collect();
        p.context = context;
        p.execution = Some(scope.execution);
        p
    }

    async fn record(
        &self,
        scope: &ExecutionScope,
        category: ActionCategory,
        details: Value,
    ) -> Result<(), ActionError> {
        let draft = EventDraft::new(category.as_str(), details)
            .agent(scope.agent_id, scope.agent_name.clone())
            .execution(scope.execution);
        self.sink
            .record(draft)
            .await
            .map(|_| ())
            .map_err(|e| ActionError::AuditUnavailable(e.0))
    }

    /// Runs one action through the whole pipeline.
    pub async fn perform(
        &self,
        scope: &ExecutionScope,
        req: ActionRequest,
    ) -> Result<Value, ActionError> {
        let started = Instant::now();
        let (category, subject, target) = match self.resolve(&req) {
            Ok(r) => r,
            Err(e) => {
                self.record(
                    scope,
                    ActionCategory::InvokeTool,
                    json!({
                        "phase": "resolve", "action": req.name, "location": req.location,
                        "outcome": "error", "error_kind": e.kind(), "error": e.to_string(),
                    }),
                )
                .await?;
                return Err(e);
            }
        };
        let preq = self.policy_request(scope, &req, category, &subject);
        let mut decision = self.pdp.decide(&preq, scope.rules.as_deref());

        // Checks that no policy can waive.
        if decision.is_allowed() {
            if let Some(reason) = self.hard_limits(scope, &req, category, &target) {
                decision = Decision::deny(reason);
            }
        }

        let full =
            scope.audit.all_operations || scope.full_detail.as_ref().is_some_and(|f| f(&preq));
        let privacy_strict = redacts_by_default(&req.env);
        let include_input =
            (scope.audit.include_input || full) && !(privacy_strict && !scope.audit.include_input);
        let args_json = redact(&req.args);
        let named_json = redact_named(&req.named);
        let mut details = json!({
            "phase": "decision",
            "action": req.name,
            "subject": subject,
            "decision": decision.outcome(),
            "reasons": match &decision {
                Decision::Allow { reasons } | Decision::Deny { reasons } | Decision::AllowWithConditions { reasons, .. } => reasons.clone(),
            },
            "conditions": decision.conditions(),
            "location": req.location,
            // The same preimage as the policy context's `args_digest` (docs/policies.md).
            "args_digest": digest(&json!({ "args": args_json, "named": named_json })),
        });
        if include_input {
            details["args"] = args_json;
            details["named"] = named_json;
        }
        self.record(scope, category, details).await?;

        if !decision.is_allowed() {
            return Err(ActionError::PolicyDenied {
                reason: decision.reason(),
            });
        }

        let result = self
            .satisfy_and_execute(scope, req.clone(), category, &subject, &target, &decision)
            .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let include_output = (scope.audit.include_output || full)
            && !(privacy_strict && !scope.audit.include_output);
        let outcome = match &result {
            Ok(out) => {
                let mut d = json!({"phase": "outcome", "action": req.name, "outcome": "ok",
                                   "duration_ms": duration_ms, "output_digest": digest(&out.value)});
                if include_output {
                    d["output"] = out.value.clone();
                }
                if let Some(r) = &out.record {
                    d["execution"] = r.clone();
                }
                d
            }
            Err(e) => json!({"phase": "outcome", "action": req.name, "outcome": "error",
                             "error_kind": e.kind(), "error": e.to_string(), "duration_ms": duration_ms}),
        };
        self.record(scope, category, outcome).await?;
        result.map(|o| o.value)
    }

    /// Denials that hold whatever policy says: capabilities a tool requires, unverified
    /// tools under `security = high|maximum`, network under `network_policy = deny_all`.
    fn hard_limits(
        &self,
        scope: &ExecutionScope,
        req: &ActionRequest,
        category: ActionCategory,
        target: &Target,
    ) -> Option<String> {
        if category == ActionCategory::NetworkAccess
            && req.env.network_policy == NetworkPolicy::DenyAll
        {
            return Some(format!(
                "`{}` denied: the running block's network_policy is deny_all (set network_policy = \"allow_list\" and allow the destination)",
                req.name
            ));
        }
        if let Target::Tool(t, _) = target {
            if let Some(missing) = t
                .required_capabilities
                .iter()
                .find(|c| !scope.capabilities.contains(c))
            {
                return Some(format!(
                    "tool `{}` requires capability `{missing}`, which agent `{}` does not declare",
                    t.name, scope.agent_name
                ));
            }
            if requires_verified_tools(&req.env) && t.schema_verified == Some(false) {
                return Some(format!(
                    "tool `{}` has no verified schema and the block's security level requires one",
                    t.name
                ));
            }
        }
        None
    }

    async fn satisfy_and_execute(
        &self,
        scope: &ExecutionScope,
        mut req: ActionRequest,
        category: ActionCategory,
        subject: &Subject,
        target: &Target,
        decision: &Decision,
    ) -> Result<ActionOutput, ActionError> {
        let mut opts = ExecOptions {
            min_tier: effective_min_tier(&req.env),
            ..ExecOptions::default()
        };
        if requires_verified_tools(&req.env) {
            opts.schema_mode = Some(VerificationMode::Strict);
        }
        let mut sanitize_output = false;
        let mut approval: Option<&Condition> = None;
        for c in decision.conditions() {
            match c {
                Condition::HumanApproval { .. } => approval = Some(c),
                Condition::RateLimit { max, period, per } => {
                    let mut key = format!("{}/{}", scope.agent_id, req.name);
                    if per.is_some() {
                        key.push('/');
                        key.push_str(&subject.name);
                    }
                    if !self.rate_limits.check(*max, *period, &key) {
                        return Err(ActionError::PolicyDenied {
                            reason: format!(
                                "rate limit of {max} per {period:?} exceeded for `{}`",
                                req.name
                            )
                            .to_lowercase(),
                        });
                    }
                }
                Condition::MinSandboxTier { tier } => {
                    opts.min_tier = Some(opts.min_tier.map_or(*tier, |t| t.max(*tier)));
                }
                Condition::InputSanitization => {
                    for a in req
                        .args
                        .iter_mut()
                        .chain(req.named.iter_mut().map(|(_, a)| a))
                    {
                        sanitize::scrub(&mut a.value);
                    }
                }
                Condition::InputValidation => opts.validate_input = true,
                Condition::OutputSanitization => sanitize_output = true,
                Condition::TlsVerification { verify } => opts.tls_verify = Some(*verify),
                Condition::MaxDataSize { bytes } => {
                    let size: usize = req
                        .args
                        .iter()
                        .chain(req.named.iter().map(|(_, a)| a))
                        .map(|a| a.value.to_string().len())
                        .sum();
                    if size as u64 > *bytes {
                        return Err(ActionError::PolicyDenied {
                            reason: format!(
                                "arguments of `{}` are {size} bytes, over the policy's max_data_size of {bytes}",
                                req.name
                            ),
                        });
                    }
                }
                Condition::TimeoutPerRequest { timeout } => {
                    opts.timeout = Some(opts.timeout.map_or(*timeout, |t| t.min(*timeout)));
                }
                Condition::SchemaVerification { mode, .. } => {
                    if let Some(m) = mode {
                        opts.schema_mode = Some(*m);
                    }
                }
                Condition::Opaque { name, .. } => {
                    if !self.development {
                        return Err(ActionError::PolicyDenied {
                            reason: format!(
                                "requirement `{name}` cannot be enforced by this runtime (production mode fails closed)"
                            ),
                        });
                    }
                }
            }
        }
        if let Some(Condition::HumanApproval {
            expiry,
            require_reason,
            role,
            ..
        }) = approval
        {
            let hold = self
                .approvals
                .hold(HoldRequest {
                    agent_id: scope.agent_id,
                    agent_name: scope.agent_name.clone(),
                    execution: Some(scope.execution),
                    kind: match (category, target) {
                        (_, Target::Tool(..)) => HoldKind::ToolCall,
                        (ActionCategory::InvokeAgent, _) => HoldKind::Delegate,
                        _ => HoldKind::Other,
                    },
                    summary: format!("{} {} ({})", req.name, subject.name, category),
                    reason: decision.reason(),
                    context_snapshot: Some(
                        json!({ "args": redact(&req.args), "location": req.location }),
                    ),
                    expiry: expiry.unwrap_or(self.default_approval_expiry),
                    require_reason: *require_reason,
                    role: role.clone(),
                })
                .await
                .map_err(|e| ActionError::AuditUnavailable(e.0))?;
            let r = hold.wait().await;
            if !r.approved() {
                return Err(ActionError::ApprovalDenied {
                    reason: format!(
                        "approval for `{}` was {}{}",
                        req.name,
                        if r.status == super::approvals::HoldStatus::Expired {
                            "not given before it expired"
                        } else {
                            "denied"
                        },
                        r.reason.map(|x| format!(": {x}")).unwrap_or_default()
                    ),
                });
            }
        }

        let call = Call {
            scope,
            request: &req,
            category,
            subject,
            options: &opts,
        };
        let fut = async {
            match target {
                Target::Service(spec) => match self.executors.get(&spec.component) {
                    Some(e) => e.execute(call).await,
                    None => Err(missing(spec)),
                },
                Target::Tool(t, provider) => {
                    let input = pack_tool_input(t, &req)?;
                    provider.invoke(t, input, call).await
                }
                Target::Agent => match self.executors.get(&Component::Agents) {
                    Some(e) => e.execute(call).await,
                    None => Err(ActionError::ComponentMissing {
                        action: req.name.clone(),
                        component: Component::Agents.as_str().into(),
                        hint: "agents can only be called inside a runtime".into(),
                    }),
                },
            }
        };
        let mut out = match opts.timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| ActionError::Timeout(t))??,
            None => fut.await?,
        };
        if sanitize_output {
            sanitize::scrub(&mut out.value);
        }
        Ok(out)
    }
}

fn missing(spec: &ServiceSpec) -> ActionError {
    let hint = match spec.component {
        Component::Llm => {
            "set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible server)"
        }
        Component::Bus => "the communication bus runs under `symbi up`",
        Component::Network => "outbound HTTP is disabled in this runtime",
        _ => "this runtime was started without it; see `symbi doctor`",
    };
    ActionError::ComponentMissing {
        action: spec.name.into(),
        component: spec.component.as_str().into(),
        hint: hint.into(),
    }
}

fn tool_subject(t: &ToolDescriptor) -> Subject {
    Subject::named(SubjectKind::Tool, t.name.clone())
        .with("kind", t.kind.clone())
        .with("server", json!(t.server))
        .with("schema_verified", json!(t.schema_verified))
        .with("tier", json!(t.tier.map(|x| x.as_str())))
}

/// Packs call arguments into a tool's input object (GRAMMAR §4.6): named arguments by name;
/// a single positional map is the whole input; otherwise positional arguments fill the
/// schema's required properties in their declared order.
pub fn pack_tool_input(t: &ToolDescriptor, req: &ActionRequest) -> Result<Value, ActionError> {
    let mut input = Map::new();
    if req.args.len() == 1 && req.named.is_empty() {
        if let Value::Object(m) = &req.args[0].value {
            return Ok(Value::Object(m.clone()));
        }
    }
    if !req.args.is_empty() {
        let required: Vec<String> = t
            .input_schema
            .as_ref()
            .and_then(|s| s.get("required"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if req.args.len() > required.len() {
            return Err(ActionError::Failed {
                kind: Some("ArityError".into()),
                message: format!(
                    "tool `{}` takes {} positional argument(s) (its required inputs {:?}), {} given",
                    t.name,
                    required.len(),
                    required,
                    req.args.len()
                ),
                details: None,
            });
        }
        for (name, a) in required.iter().zip(&req.args) {
            input.insert(name.clone(), a.value.clone());
        }
    }
    for (n, a) in &req.named {
        input.insert(n.clone(), a.value.clone());
    }
    Ok(Value::Object(input))
}
