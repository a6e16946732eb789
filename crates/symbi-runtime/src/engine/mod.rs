//! The engine: the runtime with DSL programs, the action gateway and the subsystems
//! assembled — what `symbi run`, `symbi up`, the HTTP API and the MCP server drive.
//!
//! ```text
//! Engine::load_source ──► symbi_dsl::load (parse + check) ──► Runtime::create_agent
//!                                                          (Initializing → Ready | Failed)
//! Engine::execute ──► Runtime::submit (scheduler shard) ──► symbi_dsl::execute
//!                         │                                   │ every action
//!                         ▼                                   ▼
//!              lifecycle (Ready → Running → Ready | Suspended)   DslHost ──► Gateway
//! ```

mod agents;
mod api;
pub mod assembly;
mod host;
mod messaging;

pub use agents::{AgentsExecutor, EngineDirectory};
pub use host::{DslHost, to_dsl_error};
pub use messaging::BusExecutor;

use crate::gateway::approvals::ApprovalManager;
use crate::gateway::{AuditDetail, Component, ExecutionScope, Executor, Gateway, ToolProvider};
use crate::{
    AgentSpec, Persistence, Priority, Runtime, RuntimeError, TaskOutcome, TaskSpec, Validation,
};
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use symbi_config::{Config, RuntimeMode};
use symbi_dsl::host::{ExecutionContext, ExecutionLimits, MemoryMode};
use symbi_dsl::{CheckOptions, LoadedProgram, Mode};
use symbi_types::{
    AgentId, AgentRuleSet, AgentState, Decision, ErrorClass, EventDraft, EventSink, ExecutionId,
    PolicyDecisionPoint, Principal,
};

/// The DSL program of one registered agent (kept in the registry's program slot).
pub struct AgentProgram {
    /// The checked program of the file the agent comes from.
    pub program: Arc<LoadedProgram>,
    /// The agent's name in that program.
    pub agent: String,
}

/// One line of an agent's history (API `GET /agents/{id}/history`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HistoryRecord {
    /// The execution (the agent id for `created`).
    pub execution_id: String,
    /// `created`, `execution_started`, `workflow_started`, `completed`, `failed`.
    pub status: String,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// Why the engine refused something.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The program did not load; the agents in it went to Failed.
    #[error("the program has errors:\n{rendered}")]
    Program {
        /// Diagnostics in the human form of GRAMMAR §6.1.
        rendered: String,
        /// The diagnostics.
        diagnostics: Vec<DiagnosticView>,
        /// Agents registered as Failed.
        failed_agents: Vec<AgentId>,
    },
    /// No agent by that id.
    #[error("agent {0} not found")]
    AgentNotFound(AgentId),
    /// No agent by that name.
    #[error("no agent named `{0}` is registered")]
    AgentNameNotFound(String),
    /// The agent has no DSL program (external agents).
    #[error("agent {0} has no program to execute")]
    NoProgram(AgentId),
    /// The program has several agents and none was named.
    #[error("the program defines several agents ({0}); choose one")]
    AmbiguousAgent(String),
    /// The policy engine refused to run the agent (`execute_agent` decided for the
    /// initiator: API client, operator, schedule, webhook or calling agent).
    #[error("running agent `{agent}` denied by policy: {reason}")]
    PolicyDenied {
        /// The agent's name.
        agent: String,
        /// The decision's reasons.
        reason: String,
    },
    /// The runtime refused.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// I/O reading a program.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
}

/// A diagnostic in API form (`{line, column, severity, message}` + code and file).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DiagnosticView {
    /// File.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// `error` | `warning` | `note`.
    pub severity: String,
    /// Code (`P002`, `E105`, …).
    pub code: String,
    /// Message.
    pub message: String,
}

fn diagnostic_views(
    file: &symbi_dsl::diagnostic::SourceFile,
    diags: &[symbi_dsl::diagnostic::Diagnostic],
) -> Vec<DiagnosticView> {
    diags
        .iter()
        .map(|d| {
            let j = file.to_json(d);
            DiagnosticView {
                file: j
                    .get("file")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                line: j.get("line").and_then(Value::as_u64).unwrap_or(0) as u32,
                column: j.get("column").and_then(Value::as_u64).unwrap_or(0) as u32,
                severity: j
                    .get("severity")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string(),
                code: j
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                message: j
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }
        })
        .collect()
}

/// What an execution is started with.
#[derive(Clone, Debug, Default)]
pub struct ExecuteOptions {
    /// What started it (`trigger()`): null for direct calls.
    pub trigger: Option<Value>,
    /// Short trigger name for the runtime's records (`cli`, `http`, `schedule`, …).
    pub trigger_kind: Option<String>,
    /// The principal that started it.
    pub initiator: Option<Principal>,
    /// Session id.
    pub session: Option<String>,
    /// Delegation depth (0 = top level).
    pub delegation_depth: u32,
    /// Priority override.
    pub priority: Option<Priority>,
    /// Use this execution id.
    pub execution: Option<ExecutionId>,
    /// A schedule's named policy applied to this run.
    pub schedule_policy: Option<String>,
}

/// The result of a successful execution.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExecutionReport {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The JSON result.
    pub result: Value,
    /// Steps used.
    pub steps: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Log lines (`log`/`print`).
    pub log: Value,
}

/// A failed execution.
#[derive(Clone, Debug, Serialize, PartialEq, thiserror::Error)]
#[error("{rendered}")]
pub struct ExecutionError {
    /// The execution.
    pub execution_id: ExecutionId,
    /// The error kind (`PolicyDenied`, `BudgetExhausted`, `InputError`, …).
    pub kind: String,
    /// Message.
    pub message: String,
    /// `file:line:col`, if known.
    pub location: Option<String>,
    /// The failure rendered as `path:line:col: error: message [Kind]` plus the stack.
    pub rendered: String,
    /// Structured details (stack, budget, log).
    pub details: Value,
}

/// A started execution.
pub struct ExecutionHandle {
    /// Its id.
    pub execution_id: ExecutionId,
    /// The agent.
    pub agent_id: AgentId,
    handle: crate::TaskHandle,
}

impl ExecutionHandle {
    /// Waits for the end of the execution.
    pub async fn wait(self) -> Result<ExecutionReport, ExecutionError> {
        let id = self.execution_id;
        match self.handle.wait().await {
            TaskOutcome::Completed { value } => Ok(ExecutionReport {
                execution_id: id,
                result: value.get("result").cloned().unwrap_or(Value::Null),
                steps: value.get("steps").and_then(Value::as_u64).unwrap_or(0),
                duration_ms: value
                    .get("duration_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                log: value.get("log").cloned().unwrap_or(Value::Null),
            }),
            TaskOutcome::Failed { error } => Err(ExecutionError {
                execution_id: id,
                kind: error.kind.clone(),
                message: error.message.clone(),
                location: error
                    .details
                    .get("location")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                rendered: error
                    .details
                    .get("rendered")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("error: {} [{}]", error.message, error.kind)),
                details: error.details,
            }),
            TaskOutcome::Cancelled { reason } => Err(ExecutionError {
                execution_id: id,
                kind: "Cancelled".into(),
                message: reason.clone(),
                location: None,
                rendered: format!("error: execution cancelled: {reason} [Cancelled]"),
                details: Value::Null,
            }),
        }
    }
}

/// What the assembler hands to [`Engine::new`].
pub struct EngineParts {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The audit sink (the signed log, or a null/memory sink when audit is disabled).
    pub sink: Arc<dyn EventSink>,
    /// The policy decision point.
    pub pdp: Arc<dyn PolicyDecisionPoint>,
    /// The bus, if any.
    pub bus: Option<symbi_bus::Bus>,
    /// Tool providers in resolution order (command tools, then MCP tools).
    pub tools: Vec<Arc<dyn ToolProvider>>,
    /// Executors of other components (memory, knowledge, LLM, network, files, vault …).
    pub executors: Vec<(Component, Arc<dyn Executor>)>,
}

/// The engine handle (cheap to clone).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: Arc<Config>,
    data_dir: PathBuf,
    runtime: Runtime,
    gateway: OnceLock<Arc<Gateway>>,
    sink: Arc<dyn EventSink>,
    pdp: Arc<dyn PolicyDecisionPoint>,
    bus: Option<symbi_bus::Bus>,
    history: DashMap<AgentId, Mutex<VecDeque<HistoryRecord>>>,
}

const HISTORY_LIMIT: usize = 100;

impl Engine {
    /// Assembles an engine: starts the runtime (scheduler shards) and builds the gateway.
    pub fn new(parts: EngineParts) -> Result<Engine, EngineError> {
        let runtime = Runtime::new(&parts.config, parts.sink.clone())?;
        let development = parts.config.runtime.mode == RuntimeMode::Development;
        let inner = Arc::new(Inner {
            config: parts.config.clone(),
            data_dir: parts.data_dir.clone(),
            runtime,
            gateway: OnceLock::new(),
            sink: parts.sink.clone(),
            pdp: parts.pdp.clone(),
            bus: parts.bus.clone(),
            history: DashMap::new(),
        });
        let weak = Arc::downgrade(&inner);
        let approvals = ApprovalManager::new(parts.sink.clone());
        let mut b = Gateway::builder(parts.pdp.clone(), parts.sink.clone(), approvals.clone())
            .development(development)
            .agents(Arc::new(EngineDirectory::new(weak.clone())))
            .executor(
                Component::Agents,
                Arc::new(AgentsExecutor::new(weak.clone())),
            )
            .executor(
                Component::Approvals,
                Arc::new(crate::gateway::local::ApprovalExecutor::new(
                    approvals,
                    Duration::from_secs(3600),
                )),
            );
        if let Some(bus) = &parts.bus {
            b = b.executor(
                Component::Bus,
                Arc::new(BusExecutor::new(bus.clone(), weak.clone())),
            );
        }
        for (c, e) in parts.executors {
            b = b.executor(c, e);
        }
        for t in parts.tools {
            b = b.tools(t);
        }
        let _ = inner.gateway.set(b.build());
        Ok(Engine { inner })
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The gateway (approval holds are listed and decided through it).
    pub fn gateway(&self) -> &Arc<Gateway> {
        self.inner
            .gateway
            .get()
            .expect("gateway is set in Engine::new")
    }

    /// The audit sink.
    pub fn sink(&self) -> &Arc<dyn EventSink> {
        &self.inner.sink
    }

    /// The policy decision point.
    pub fn pdp(&self) -> &Arc<dyn PolicyDecisionPoint> {
        &self.inner.pdp
    }

    /// The bus, if configured.
    pub fn bus(&self) -> Option<&symbi_bus::Bus> {
        self.inner.bus.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// The data directory.
    pub fn data_dir(&self) -> &PathBuf {
        &self.inner.data_dir
    }

    /// Check options for this runtime's mode and tools.
    pub fn check_options(&self) -> CheckOptions {
        CheckOptions {
            mode: if self.inner.config.runtime.mode == RuntimeMode::Development {
                Mode::Development
            } else {
                Mode::Production
            },
            known_tools: self.gateway().tool_names(),
            ..CheckOptions::default()
        }
    }

    /// Loads a program file and registers its agents.
    pub async fn load_file(
        &self,
        path: &std::path::Path,
    ) -> Result<Vec<(String, AgentId)>, EngineError> {
        let source = std::fs::read_to_string(path).map_err(|e| EngineError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        self.load_source(&path.display().to_string(), &source).await
    }

    /// Parses, checks and registers every agent of a program (siblings must exist for
    /// `delegate` and the like, so there is no partial load). Valid
    /// agents go Initializing → Ready; when the program has errors, its agents go
    /// Initializing → Failed with the diagnostics and the error lists them.
    pub async fn load_source(
        &self,
        file: &str,
        source: &str,
    ) -> Result<Vec<(String, AgentId)>, EngineError> {
        match symbi_dsl::load(file, source, &self.check_options()) {
            Ok(program) => {
                let mut out = Vec::new();
                for def in program.agents() {
                    let id = self
                        .register(program.clone(), def.name(), Validation::Valid)
                        .await?;
                    out.push((def.name().to_string(), id));
                }
                Ok(out)
            }
            Err(e) => {
                let rendered = e.render_all();
                let diagnostics = diagnostic_views(&e.source_file, &e.diagnostics);
                let errors: Vec<String> = diagnostics
                    .iter()
                    .filter(|d| d.severity == "error")
                    .map(|d| {
                        format!(
                            "{}:{}:{}: error: {} [{}]",
                            d.file, d.line, d.column, d.message, d.code
                        )
                    })
                    .collect();
                let parsed = symbi_dsl::parse(source, file);
                let mut failed_agents = Vec::new();
                for item in &parsed.program.items {
                    if let symbi_dsl::ast::Item::Agent(a) = item {
                        let name = a.name.name.to_string();
                        let spec = AgentSpec::new(name);
                        let id = self
                            .inner
                            .runtime
                            .create_agent(spec, Validation::Invalid(errors.clone()))
                            .await?;
                        self.push_history(id, id.to_string(), "created");
                        failed_agents.push(id);
                    }
                }
                Err(EngineError::Program {
                    rendered,
                    diagnostics,
                    failed_agents,
                })
            }
        }
    }

    async fn register(
        &self,
        program: Arc<LoadedProgram>,
        agent: &str,
        validation: Validation,
    ) -> Result<AgentId, EngineError> {
        self.register_as(program, agent, agent, validation).await
    }

    /// Registers `agent` of `program` under the name `display` (the HTTP API's `name`).
    pub(crate) async fn register_as(
        &self,
        program: Arc<LoadedProgram>,
        agent: &str,
        display: &str,
        validation: Validation,
    ) -> Result<AgentId, EngineError> {
        let def = program
            .agent(agent)
            .ok_or_else(|| EngineError::AgentNameNotFound(agent.into()))?;
        let persistence = match def.memory_mode() {
            MemoryMode::Ephemeral => Persistence::Ephemeral,
            MemoryMode::Persistent => Persistence::Persistent,
            MemoryMode::Session => Persistence::Session,
            MemoryMode::Encrypted => Persistence::Encrypted,
        };
        let mut budget = self.inner.runtime.default_budget();
        if let Some(mb) = def.with_blocks().iter().filter_map(|b| b.max_memory).max() {
            budget.memory_bytes = mb;
        }
        let spec = AgentSpec::new(display)
            .persistence(persistence)
            .budget(budget)
            .program(Arc::new(AgentProgram {
                program: program.clone(),
                agent: agent.to_string(),
            }));
        let id = self.inner.runtime.create_agent(spec, validation).await?;
        self.push_history(id, id.to_string(), "created");
        if let Some(bus) = &self.inner.bus {
            if let Err(e) = bus.register_agent(id, display).await {
                tracing::warn!(agent, error = %e, "could not register the agent on the bus");
            }
        }
        if def.is_persistent() {
            messaging::start_inbox_loop(self.clone(), id);
        }
        let patterns = messaging::subscriptions_of(&program, agent);
        if !patterns.is_empty() {
            messaging::start_subscriptions(
                self.clone(),
                id,
                display,
                def.capabilities().to_vec(),
                patterns,
            );
        }
        Ok(id)
    }

    /// The program of an agent.
    pub fn program_of(&self, id: AgentId) -> Result<Arc<AgentProgram>, EngineError> {
        let entry = self
            .inner
            .runtime
            .get(id)
            .ok_or(EngineError::AgentNotFound(id))?;
        entry
            .program()
            .and_then(|p| p.clone().downcast::<AgentProgram>().ok())
            .ok_or(EngineError::NoProgram(id))
    }

    /// The id of the agent registered under `name` (the most recent one).
    pub fn agent_named(&self, name: &str) -> Option<AgentId> {
        self.inner.runtime.find_by_name(name).into_iter().last()
    }

    fn push_history(&self, agent: AgentId, execution_id: String, status: &str) {
        let entry = self
            .inner
            .history
            .entry(agent)
            .or_insert_with(|| Mutex::new(VecDeque::new()));
        let mut h = entry.lock();
        if h.len() == HISTORY_LIMIT {
            h.pop_back();
        }
        h.push_front(HistoryRecord {
            execution_id,
            status: status.into(),
            timestamp: Utc::now(),
        });
    }

    /// Records a history line (e.g. `workflow_started` by the API).
    pub fn record_history(&self, agent: AgentId, execution_id: String, status: &str) {
        self.push_history(agent, execution_id, status);
    }

    /// The agent's history, newest first (at most 100).
    pub fn history(&self, agent: AgentId) -> Vec<HistoryRecord> {
        self.inner
            .history
            .get(&agent)
            .map(|h| h.lock().iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Starts an execution of a registered agent with a JSON input. A refusal by policy
    /// is in the audit log (durably, with the file sink) before this returns.
    pub async fn execute(
        &self,
        agent: AgentId,
        input: Value,
        opts: ExecuteOptions,
    ) -> Result<ExecutionHandle, EngineError> {
        let prog = self.program_of(agent)?;
        let execution = opts.execution.unwrap_or_default();
        let entry = self
            .inner
            .runtime
            .get(agent)
            .ok_or(EngineError::AgentNotFound(agent))?;
        let suspended = entry.state() == AgentState::Suspended;
        self.authorize_execution(agent, &prog.agent, suspended, &opts, execution)
            .await?;
        let mut spec = TaskSpec::default()
            .execution(execution)
            .record_execution(false);
        if let Some(k) = &opts.trigger_kind {
            spec = spec.trigger(k.clone());
        }
        if let Some(p) = opts.priority {
            spec = spec.priority(p);
        }
        let engine = self.clone();
        let budget = entry.budget();
        let handle = self
            .inner
            .runtime
            .submit(agent, spec, move |ctx| async move {
                engine
                    .run_execution(agent, prog, input, opts, execution, budget, ctx)
                    .await
            })?;
        self.push_history(agent, execution.to_string(), "execution_started");
        Ok(ExecutionHandle {
            execution_id: execution,
            agent_id: agent,
            handle,
        })
    }

    /// The `execute_agent` enforcement point: every run — API, CLI, schedule, webhook,
    /// message, delegation — is decided by the policy engine for its initiator before
    /// anything is queued (Cedar only: an agent's own rules govern what it does, not who may
    /// start it). A denial is audited as a `policy_decision` event. Conditions cannot be
    /// honoured at this point, so an allow with conditions is refused (fail closed).
    async fn authorize_execution(
        &self,
        agent: AgentId,
        name: &str,
        suspended: bool,
        opts: &ExecuteOptions,
        execution: ExecutionId,
    ) -> Result<(), EngineError> {
        let trigger = opts.trigger_kind.as_deref().unwrap_or("direct");
        let by = opts.initiator.clone().unwrap_or_else(|| {
            symbi_policy::requests::operator_principal(
                format!("runtime:{trigger}"),
                Vec::<String>::new(),
            )
        });
        let target = symbi_policy::requests::AgentTarget {
            name: name.to_string(),
            id: Some(agent),
            suspended,
        };
        let req = symbi_policy::requests::execute_agent(by.clone(), &target, trigger);
        let decision = self.inner.pdp.decide(&req, None);
        let reason = match &decision {
            Decision::Allow { .. } => return Ok(()),
            Decision::AllowWithConditions { conditions, .. } => {
                format!("conditions cannot be met when starting an execution: {conditions:?}")
            }
            Decision::Deny { .. } => decision.reason(),
        };
        let details = json!({
            "enforcement_point": "execute_agent",
            "action": "execute_agent",
            "decision": decision.outcome(),
            "reasons": [reason.clone()],
            "principal": by.name,
            "trigger": trigger,
            "execution_id": execution.to_string(),
        });
        let draft = EventDraft::new(symbi_types::event::types::POLICY_DECISION, details)
            .agent(agent, name)
            .execution(execution);
        // Awaited, not spawned: the refusal is on record before the caller hears of it.
        if let Err(e) = self.inner.sink.record(draft).await {
            tracing::error!(error = %e, agent = name, "could not audit a refused execution");
        }
        Err(EngineError::PolicyDenied {
            agent: name.to_string(),
            reason,
        })
    }

    /// The body of an execution task (on a scheduler shard).
    #[allow(clippy::too_many_arguments)]
    async fn run_execution(
        &self,
        agent: AgentId,
        prog: Arc<AgentProgram>,
        input: Value,
        opts: ExecuteOptions,
        execution: ExecutionId,
        budget: symbi_types::ResourceBudget,
        task: crate::TaskContext,
    ) -> crate::TaskResult {
        let def = prog
            .program
            .agent(&prog.agent)
            .expect("registered agents exist in their program");
        let audit = def.audit_settings();
        let name = prog.agent.clone();
        let include_input = audit.include_input.unwrap_or(false) || audit.all_actions_full;
        let mut started = json!({
            "execution_id": execution.to_string(),
            "trigger": opts.trigger.clone().unwrap_or(Value::Null),
            "trigger_kind": opts.trigger_kind,
            "delegation_depth": opts.delegation_depth,
            "input_digest": crate::gateway::digest(&input),
        });
        if include_input {
            started["input"] = input.clone();
        }
        let record = |t: &'static str, d: Value| {
            let sink = self.inner.sink.clone();
            let name = name.clone();
            async move {
                sink.record(
                    EventDraft::new(t, d)
                        .agent(agent, name)
                        .execution(execution),
                )
                .await
            }
        };
        use symbi_types::event::types;
        if let Err(e) = record(types::EXECUTION_STARTED, started).await {
            return Err(crate::TaskError::new(
                ErrorClass::Transient,
                "AuditUnavailable",
                e.to_string(),
            ));
        }
        let full_detail_settings = audit.clone();
        let scope = ExecutionScope {
            agent_id: agent,
            agent_name: name.clone(),
            capabilities: def.capabilities().to_vec(),
            execution,
            principal: opts
                .initiator
                .as_ref()
                .map(|p| p.attributes.clone())
                .unwrap_or_default(),
            trigger: opts.trigger.clone().unwrap_or(Value::Null),
            session: opts.session.clone(),
            delegation_depth: opts.delegation_depth,
            rules: None,
            audit: AuditDetail {
                include_input: audit.include_input.unwrap_or(false),
                include_output: audit.include_output.unwrap_or(false),
                all_operations: audit.all_actions_full,
            },
            full_detail: Some(Arc::new(move |r| {
                full_detail_settings.records_full_details(r)
            })),
            budget: Some(budget),
        };
        let host = Arc::new(DslHost::new(
            self.gateway().clone(),
            self.inner.sink.clone(),
            scope,
        ));
        let rt = &self.inner.config.runtime;
        let ctx = ExecutionContext {
            execution,
            trigger: opts.trigger.clone(),
            initiator: opts.initiator.clone(),
            session: opts.session.clone(),
            delegation_depth: opts.delegation_depth,
            limits: ExecutionLimits {
                default_timeout: rt.default_execution_timeout.0,
                max_timeout: None,
                default_steps: 1_000_000,
                default_heap: 64 << 20,
                max_heap: Some(budget.memory_bytes.max(1 << 20)),
            },
            replay: None,
            schedule_policy: opts.schedule_policy.clone(),
        };
        let out = symbi_dsl::execute(prog.program.clone(), &prog.agent, input, ctx, host).await;
        // Working memory (ephemeral `remember` state) does not outlive the execution.
        self.gateway().end_execution(execution);
        task.report_memory(0);
        match out {
            Ok(o) => {
                let mut d = json!({
                    "execution_id": execution.to_string(),
                    "steps": o.steps,
                    "duration_ms": o.duration.as_millis() as u64,
                    "heap_peak": o.heap_peak,
                    "output_digest": crate::gateway::digest(&o.result),
                    "log": o.log,
                });
                if audit.include_output.unwrap_or(false) || audit.all_actions_full {
                    d["output"] = o.result.clone();
                }
                if !o.ignored_input_keys.is_empty() {
                    d["ignored_input_keys"] = json!(o.ignored_input_keys);
                }
                if let Err(e) = record(types::EXECUTION_COMPLETED, d).await {
                    return Err(crate::TaskError::new(
                        ErrorClass::Transient,
                        "AuditUnavailable",
                        e.to_string(),
                    ));
                }
                self.push_history(agent, execution.to_string(), "completed");
                Ok(json!({
                    "result": o.result,
                    "steps": o.steps,
                    "duration_ms": o.duration.as_millis() as u64,
                    "log": o.log.lines,
                }))
            }
            Err(f) => {
                let kind = f.kind.to_string();
                let rendered = f.render();
                let failure = serde_json::to_value(&f).unwrap_or(Value::Null);
                if let Some(b) = &f.budget {
                    let _ = record(
                        types::BUDGET_EXHAUSTED,
                        json!({
                            "execution_id": execution.to_string(),
                            "budget": b,
                        }),
                    )
                    .await;
                }
                let _ = record(
                    types::EXECUTION_FAILED,
                    json!({
                        "execution_id": execution.to_string(),
                        "kind": kind,
                        "message": f.message,
                        "location": f.location,
                        "failure": failure,
                    }),
                )
                .await;
                self.push_history(agent, execution.to_string(), "failed");
                let class = if f.is_policy_violation() {
                    ErrorClass::Policy
                } else if kind == "BudgetExhausted" || kind == "Timeout" {
                    ErrorClass::Resource
                } else {
                    ErrorClass::Permanent
                };
                Err(
                    crate::TaskError::new(class, kind, f.message.clone()).with_details(
                        json!({ "location": f.location, "rendered": rendered, "failure": failure }),
                    ),
                )
            }
        }
    }

    /// Runs an agent by name to completion (CLI `symbi run`, delegation).
    pub async fn run(
        &self,
        agent: AgentId,
        input: Value,
        mut opts: ExecuteOptions,
    ) -> Result<ExecutionReport, ExecutionError> {
        let execution_id = *opts.execution.get_or_insert_with(ExecutionId::new);
        match self.execute(agent, input, opts).await {
            Ok(h) => h.wait().await,
            Err(e) => Err(ExecutionError {
                execution_id,
                kind: if matches!(e, EngineError::PolicyDenied { .. }) {
                    "PolicyDenied"
                } else {
                    "ActionFailed"
                }
                .into(),
                message: e.to_string(),
                location: None,
                rendered: format!("error: {e}"),
                details: Value::Null,
            }),
        }
    }

    /// Deletes an agent (cancelling its work).
    pub async fn delete_agent(&self, id: AgentId) -> Result<(), EngineError> {
        self.inner.runtime.delete(id).await?;
        self.inner.history.remove(&id);
        if let Some(bus) = &self.inner.bus {
            let _ = bus.unregister_agent(id).await;
        }
        Ok(())
    }

    /// The rule set an agent's DSL policies give for an input (outside an execution).
    pub fn rules_for(
        &self,
        id: AgentId,
        input: &Value,
        initiator: Option<&Principal>,
    ) -> Option<Arc<dyn AgentRuleSet>> {
        let p = self.program_of(id).ok()?;
        symbi_dsl::rules::DslRuleSet::for_input(p.program.clone(), &p.agent, input, initiator, None)
            .map(|r| Arc::new(r) as Arc<dyn AgentRuleSet>)
    }

    /// Graceful shutdown: stop accepting, drain, terminate.
    pub async fn shutdown(&self, grace: Duration) -> crate::ShutdownReport {
        let report = self.inner.runtime.shutdown(grace).await;
        if let Some(bus) = &self.inner.bus {
            bus.close().await;
        }
        report
    }
}

impl Inner {
    pub(crate) fn engine(self: &Arc<Self>) -> Engine {
        Engine {
            inner: self.clone(),
        }
    }
}
