//! The interface between the interpreter and the runtime: actions, intrinsics and the
//! execution entry point's context and results.
//!
//! # How an execution meets the runtime
//!
//! ```text
//!  runtime ── execute(program, agent, input, ctx, host) ──► interpreter (coroutine)
//!                                                             │ pure builtins: in process
//!                                                             │ log / print / audit_log:
//!                                                             │    host.log / host.audit_log (sync)
//!                                                             │ any other call (an action):
//!                                                             ▼
//!                                       host.perform(ActionRequest) — async, may take minutes
//!                                       (resolve → policy → approval → execute → audit)
//! ```
//!
//! The runtime implements [`ActionHost`] once (its action gateway). For every action the
//! interpreter suspends its coroutine, the driver awaits [`ActionHost::perform`] (bounded
//! by the running `with` block's deadline) and resumes the coroutine with the result. No
//! thread is blocked while an action waits.
//!
//! Futures of the host need not be `Send` (`#[async_trait(?Send)]`): an execution runs
//! on one thread (see [`crate::interp::execute`] and [`crate::interp::ExecutionPool`]),
//! so a host may even run a nested execution (delegation) inline.

use crate::value::Value;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use symbi_types::{ActionCategory, ExecutionId, Principal, SandboxTier};

/// A `file:line:column` position in a DSL source file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    /// File name as loaded.
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: u32,
    /// Column in Unicode scalar values, from 1.
    pub column: u32,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What kind of callee an action came from (GRAMMAR 4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A builtin service of GRAMMAR 5.3 (`http.get`, `publish`, `delegate`, `remember`, …):
    /// [`ActionRequest::category`] is set.
    Service,
    /// A name that nothing in the program resolves: the host looks it up as a command
    /// tool, else an MCP tool, else an agent (then it is a delegation, category
    /// `invoke_agent`), else fails with [`ActionError::UnknownAction`].
    Unresolved,
    /// `vault://path` or `secret(path)`: category `secret_read`; the result must be a
    /// [`Value::secret`].
    Secret,
}

/// The environment of the `with` block an action runs from (GRAMMAR 4.8): what the host
/// must honour when it executes the action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockEnv {
    /// Minimum isolation for command tools (`None` = the runtime's default tier).
    pub sandbox: Option<SandboxSetting>,
    /// The block's wall-clock limit as written (before capping by the runtime).
    pub timeout: Option<Duration>,
    /// Interpreter heap budget in bytes (default 64 MiB).
    pub max_memory: Option<u64>,
    /// CPU quota for sandboxed tools.
    pub max_cpu_cores: Option<f64>,
    /// Step budget (default 1 000 000).
    pub max_steps: Option<u64>,
    /// Memory mode of the agent (the same for every block, E105 otherwise).
    pub memory: MemoryMode,
    /// Redaction level for logs and audit details.
    pub privacy: Option<Privacy>,
    /// Security level (raises the minimum tier, forces schema verification).
    pub security: Option<SecurityLevel>,
    /// Whether network actions may leave the host.
    pub network_policy: NetworkPolicy,
    /// Attributes the starting principal must hold.
    pub requires: Vec<String>,
    /// Unknown attributes (W206), kept for tooling: name → value as JSON.
    pub other: Vec<(String, serde_json::Value)>,
    /// Where the block starts.
    pub location: Option<SourceLocation>,
}

impl Default for BlockEnv {
    fn default() -> Self {
        BlockEnv {
            sandbox: None,
            timeout: None,
            max_memory: None,
            max_cpu_cores: None,
            max_steps: None,
            memory: MemoryMode::Ephemeral,
            privacy: None,
            security: None,
            network_policy: NetworkPolicy::DenyAll,
            requires: Vec::new(),
            other: Vec::new(),
            location: None,
        }
    }
}

impl BlockEnv {
    /// The minimum tier this block demands, after `security` (high → at least Tier1,
    /// maximum → at least Tier2). `None` when the block leaves it to the runtime.
    pub fn min_tier(&self) -> Option<SandboxTier> {
        let base = match self.sandbox {
            Some(SandboxSetting::Tier(t)) => Some(t),
            _ => None,
        };
        let floor = match self.security {
            Some(SecurityLevel::High) => Some(SandboxTier::Tier1),
            Some(SecurityLevel::Maximum) => Some(SandboxTier::Tier2),
            _ => None,
        };
        match (base, floor) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The `sandbox` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxSetting {
    /// A tier (`"Tier1"`, `"docker"`, …, and `"none"`/`"native"` = [`SandboxTier::None`],
    /// accepted only in development mode).
    Tier(SandboxTier),
    /// The hosted `e2b` backend (not implemented by symbi: W207; actions that need it fail
    /// with `SandboxUnavailable`).
    E2b,
}

/// The `memory` attribute (GRAMMAR 4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryMode {
    /// No state survives the execution (default).
    #[default]
    Ephemeral,
    /// `remember`/`recall` state and message delivery survive.
    Persistent,
    /// State lives as long as the caller's session.
    Session,
    /// Persistent, encrypted at rest.
    Encrypted,
}

impl MemoryMode {
    /// Whether the agent stays Ready between executions and keeps its state.
    pub fn is_persistent(self) -> bool {
        matches!(self, MemoryMode::Persistent | MemoryMode::Encrypted)
    }
}

/// The `privacy` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Privacy {
    /// Inputs, outputs and arguments redacted unless an audit rule includes them.
    Strict,
    /// As strict.
    High,
    /// Secrets and credential-like fields redacted.
    Medium,
    /// Only secrets redacted.
    Low,
    /// As high (noise is up to the tools).
    Differential,
}

/// The `security` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    /// No effect.
    Low,
    /// No effect.
    Medium,
    /// Minimum tier Tier1; unverified tool schemas denied.
    High,
    /// Minimum tier Tier2; unverified tool schemas denied.
    Maximum,
}

/// The `network_policy` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkPolicy {
    /// No network action may leave the host (default).
    #[default]
    DenyAll,
    /// Each destination needs a matching `allow` rule.
    AllowList,
    /// Network allowed (subject to policy).
    Allow,
}

/// One action the interpreter asks the host to perform.
#[derive(Clone, Debug)]
pub struct ActionRequest {
    /// The action's name as called: `http.get`, `publish`, `delegate`, `read_logs`,
    /// `github.create_issue`, or `secret` for `vault://…`/`secret(…)`.
    pub name: String,
    /// The category when statically known (services, secrets); `None` for unresolved
    /// names, which the host resolves (tool category from its manifest, `invoke_agent`
    /// for agents).
    pub category: Option<ActionCategory>,
    /// Service, unresolved name or secret read.
    pub kind: ActionKind,
    /// Positional arguments (snapshots; secrets inside stay [`Value::Secret`] — use
    /// [`Secret::reveal`](crate::value::Secret::reveal) only to execute, never to log).
    pub args: Vec<Value>,
    /// Named arguments in written order.
    pub named: Vec<(String, Value)>,
    /// Where the call is.
    pub location: SourceLocation,
    /// The `with` environment in force.
    pub env: Arc<BlockEnv>,
    /// The running agent.
    pub agent: Arc<str>,
    /// The execution.
    pub execution: ExecutionId,
    /// Delegation depth of this execution (0 for a top-level execution). A host that runs
    /// another agent for `delegate` passes `delegation_depth + 1` in its context.
    pub delegation_depth: u32,
    /// The agent's DSL policy rules for this execution: pass them to
    /// [`PolicyDecisionPoint::decide`](symbi_types::PolicyDecisionPoint::decide) as
    /// `agent_rules` (`request.rules.as_deref().map(|r| r as &dyn AgentRuleSet)`).
    pub rules: Option<Arc<crate::rules::DslRuleSet>>,
}

impl ActionRequest {
    /// Positional arguments as JSON for policy requests and audit (secrets redacted,
    /// lambdas and refs as descriptive strings).
    pub fn args_json(&self) -> Vec<serde_json::Value> {
        self.args.iter().map(crate::value::to_json_lossy).collect()
    }

    /// Named arguments as a JSON object (redacted like [`Self::args_json`]).
    pub fn named_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.named
            .iter()
            .map(|(k, v)| (k.clone(), crate::value::to_json_lossy(v)))
            .collect()
    }

    /// Positional argument `i` as JSON with secrets revealed — only for executing the
    /// action (e.g. putting an API key into a request), never for logs.
    pub fn arg_revealed(&self, i: usize) -> Option<serde_json::Value> {
        self.args.get(i).map(crate::value::to_json_revealed_lossy)
    }

    /// A named argument by name.
    pub fn named_arg(&self, name: &str) -> Option<&Value> {
        self.named.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// How an action failed (GRAMMAR 4.9). The interpreter turns it into a catchable error
/// value of the corresponding kind.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// Denied by policy; `reason` names the deciding rule(s).
    #[error("{reason}")]
    PolicyDenied {
        /// Why.
        reason: String,
    },
    /// A required human approval was refused or expired.
    #[error("{reason}")]
    ApprovalDenied {
        /// Why.
        reason: String,
    },
    /// No tool, MCP tool or agent has this name.
    #[error("no tool, MCP tool or agent named `{name}`")]
    UnknownAction {
        /// The name as called.
        name: String,
    },
    /// The tool, service or agent reported failure. A tool-supplied `kind` becomes the
    /// error's kind — unless it is a kind named in GRAMMAR 4.9, in which case the error
    /// stays `ActionFailed` and the kind goes to `details.reported_kind`.
    #[error("{message}")]
    Failed {
        /// Tool-supplied (or callee's) kind.
        kind: Option<String>,
        /// Message.
        message: String,
        /// Details (JSON).
        details: Option<serde_json::Value>,
    },
    /// The action exceeded its own limit.
    #[error("{message}")]
    Timeout {
        /// Message.
        message: String,
    },
    /// The demanded isolation tier is not available on this host.
    #[error("{message}")]
    SandboxUnavailable {
        /// Message (what is missing and what to install).
        message: String,
    },
    /// The service the action needs does not exist in this runtime yet (for example the
    /// knowledge base before it is configured). Surfaces as an `ActionFailed` error whose
    /// message names the component and whose `details.missing_component` holds it.
    #[error("`{action}` needs the {component}, which this runtime does not provide: {message}")]
    ComponentMissing {
        /// The action as called.
        action: String,
        /// The missing component (`"knowledge base"`, `"LLM provider"`, …).
        component: String,
        /// What to configure or install.
        message: String,
    },
}

/// Log levels of `log` (GRAMMAR 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// DEBUG
    Debug,
    /// INFO
    Info,
    /// WARNING
    Warning,
    /// ERROR
    Error,
    /// CRITICAL
    Critical,
}

impl LogLevel {
    /// Parses a level name in any case (`WARN` is accepted for `WARNING`).
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_uppercase().as_str() {
            "DEBUG" => Some(LogLevel::Debug),
            "INFO" => Some(LogLevel::Info),
            "WARNING" | "WARN" => Some(LogLevel::Warning),
            "ERROR" => Some(LogLevel::Error),
            "CRITICAL" => Some(LogLevel::Critical),
            _ => None,
        }
    }

    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRITICAL",
        }
    }
}

/// Identifies the execution an intrinsic call belongs to.
#[derive(Clone, Debug)]
pub struct ExecutionInfo {
    /// The execution.
    pub execution: ExecutionId,
    /// The agent.
    pub agent: Arc<str>,
}

/// The runtime side of an execution: performs actions and records intrinsics.
///
/// Implemented by the runtime's action gateway. All methods receive snapshots; none may
/// assume it is called on a particular thread, but all calls of one execution come from
/// the thread that drives it.
#[async_trait(?Send)]
pub trait ActionHost: Send + Sync {
    /// Performs one action: resolve → policy decision → conditions (approval …) → execute
    /// → audit. Returns the action's result as a value (use
    /// [`from_json`](crate::value::from_json) for JSON results and [`Value::secret`] for
    /// secrets) or how it failed.
    ///
    /// The interpreter bounds the wait by the running block's deadline; when it passes,
    /// the future is dropped and the execution fails with `Timeout`.
    async fn perform(&self, request: ActionRequest) -> Result<Value, ActionError>;

    /// `log(level, message)` / `print(…)`: the line is also kept in the execution's log.
    /// Called synchronously from the interpreter; must not block.
    fn log(
        &self,
        _exec: &ExecutionInfo,
        _level: LogLevel,
        _message: &str,
        _location: &SourceLocation,
    ) {
    }

    /// `audit_log(event, details)`: a custom audit event for this execution. The
    /// interpreter suspends until it resolves (like an action, bounded by the block's
    /// deadline), so the event is durable before the program continues; an error (the
    /// audit log refused the event) becomes an `ActionFailed` error in the program.
    async fn audit_log(
        &self,
        exec: &ExecutionInfo,
        event: &str,
        details: &serde_json::Value,
        location: &SourceLocation,
    ) -> Result<(), String>;
}

/// Limits the runtime imposes on an execution (from SPEC §5 resource limits and
/// `[runtime] default_execution_timeout`).
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionLimits {
    /// The wall-clock limit of a block without `timeout` (the agent's `execution_timeout`,
    /// else the runtime default, 300 s).
    pub default_timeout: Duration,
    /// When set (the agent's configured `execution_timeout`), a larger `timeout` attribute
    /// is capped to it.
    pub max_timeout: Option<Duration>,
    /// Steps of a block without `max_steps`.
    pub default_steps: u64,
    /// Heap bytes of a block without `max_memory[_mb]`.
    pub default_heap: u64,
    /// When set (the agent's `memory_mb` resource limit), a larger heap attribute is
    /// capped to it.
    pub max_heap: Option<u64>,
}

impl Default for ExecutionLimits {
    fn default() -> Self {
        ExecutionLimits {
            default_timeout: Duration::from_secs(300),
            max_timeout: None,
            default_steps: 1_000_000,
            default_heap: 64 << 20,
            max_heap: None,
        }
    }
}

/// Everything about one execution that does not come from the program.
#[derive(Clone, Debug)]
pub struct ExecutionContext {
    /// The execution's id (audit correlation).
    pub execution: ExecutionId,
    /// What started it: `trigger()` returns this (null for direct calls). A map such as
    /// `{"kind": "schedule", "name": …, "scheduled_at": …}` (GRAMMAR 5.2).
    pub trigger: Option<serde_json::Value>,
    /// The principal that started the execution (user / API client / calling agent), with
    /// its attributes; `requires` and guards (`user`, `principal`) read it.
    pub initiator: Option<Principal>,
    /// The caller's session id (session memory mode).
    pub session: Option<String>,
    /// 0 for a top-level execution; a host running `delegate` passes the caller's + 1.
    pub delegation_depth: u32,
    /// Runtime limits.
    pub limits: ExecutionLimits,
    /// Replay: the intrinsic values recorded by an earlier execution, returned in order
    /// instead of reading the clock / random generator.
    pub replay: Option<Vec<RecordedValue>>,
    /// For scheduled runs: the top-level policy the schedule names (GRAMMAR 4.11.1).
    pub schedule_policy: Option<String>,
}

impl Default for ExecutionContext {
    fn default() -> Self {
        ExecutionContext {
            execution: ExecutionId::new(),
            trigger: None,
            initiator: None,
            session: None,
            delegation_depth: 0,
            limits: ExecutionLimits::default(),
            replay: None,
            schedule_policy: None,
        }
    }
}

/// One line of `log`/`print`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLine {
    /// Level.
    pub level: LogLevel,
    /// Text.
    pub message: String,
    /// Where the call was.
    pub location: String,
}

/// A value of a non-deterministic function (`now`, `time_since`, `generate_id`), recorded
/// so that the execution can be replayed (GRAMMAR 5.2).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RecordedValue {
    /// `now`, `time_since` or `generate_id`.
    pub function: String,
    /// The value returned (JSON).
    pub value: serde_json::Value,
}

/// The execution log: `log`/`print` lines and recorded intrinsic values.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ExecutionLog {
    /// Log lines in order.
    pub lines: Vec<LogLine>,
    /// Recorded non-deterministic values in order.
    pub recorded: Vec<RecordedValue>,
}
