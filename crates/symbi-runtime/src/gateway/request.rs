//! What an action looks like when it reaches the gateway.

use serde_json::{Map, Value};
use std::sync::Arc;
use symbi_types::{ActionCategory, AgentId, AgentRuleSet, ExecutionId, SandboxTier};

/// One argument: its JSON snapshot and whether it is (or contains) a secret, in which case
/// it is passed to the executor in clear but never written to logs or audit details.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The value.
    pub value: Value,
    /// Secret values are redacted everywhere but in the executor's hands.
    pub secret: bool,
}

impl Arg {
    /// A non-secret argument.
    pub fn plain(value: impl Into<Value>) -> Self {
        Self {
            value: value.into(),
            secret: false,
        }
    }
}

pub use symbi_dsl::host::{BlockEnv, NetworkPolicy, Privacy, SecurityLevel};

/// The minimum tier of a block after `security` raises it (GRAMMAR §4.8).
pub fn effective_min_tier(env: &BlockEnv) -> Option<SandboxTier> {
    env.min_tier()
}

/// Whether the block's `security` level demands verified tool schemas (high, maximum).
pub fn requires_verified_tools(env: &BlockEnv) -> bool {
    matches!(
        env.security,
        Some(SecurityLevel::High | SecurityLevel::Maximum)
    )
}

/// Whether the block's `privacy` redacts inputs and outputs by default.
pub fn redacts_by_default(env: &BlockEnv) -> bool {
    matches!(
        env.privacy,
        Some(Privacy::Strict | Privacy::High | Privacy::Differential)
    )
}

/// What the audit trail records for an agent's actions (its DSL `audit` rules).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditDetail {
    /// Record arguments (secrets still redacted).
    pub include_input: bool,
    /// Record results.
    pub include_output: bool,
    /// Record every action with full details (`all_operations`).
    pub all_operations: bool,
}

/// Everything about the running execution that every action of it shares.
#[derive(Clone)]
pub struct ExecutionScope {
    /// The agent.
    pub agent_id: AgentId,
    /// Its name.
    pub agent_name: String,
    /// Declared capabilities.
    pub capabilities: Vec<String>,
    /// The execution.
    pub execution: ExecutionId,
    /// Who started the execution and their attributes (`principal` in guards).
    pub principal: Map<String, Value>,
    /// What started it (`trigger()`), or null for direct calls.
    pub trigger: Value,
    /// Session id (approval scope `session`).
    pub session: Option<String>,
    /// How deep in a `delegate` chain this execution is (0 = top level).
    pub delegation_depth: u32,
    /// The agent's DSL rules bound to this execution.
    pub rules: Option<Arc<dyn AgentRuleSet>>,
    /// Audit detail chosen by the agent's `audit` rules.
    pub audit: AuditDetail,
    /// Actions the agent's `audit` rules record with full details (action patterns).
    pub full_detail: Option<Arc<dyn Fn(&symbi_types::PolicyRequest) -> bool + Send + Sync>>,
    /// The agent's resource budget (caps sandboxed tools).
    pub budget: Option<symbi_types::ResourceBudget>,
}

/// One call that left the interpreter.
#[derive(Clone, Debug)]
pub struct ActionRequest {
    /// The callee as written: `http.get`, `publish`, `delegate`, a tool name.
    pub name: String,
    /// Known for builtin services; `None` for names the gateway must resolve.
    pub category: Option<ActionCategory>,
    /// Positional arguments.
    pub args: Vec<Arg>,
    /// Named arguments, in call order.
    pub named: Vec<(String, Arg)>,
    /// The `with` block in force.
    pub env: Arc<BlockEnv>,
    /// `file:line:col` of the call.
    pub location: Option<String>,
}

impl ActionRequest {
    /// A named argument, or else the positional one at `index`.
    pub fn arg(&self, index: usize, name: &str) -> Option<&Arg> {
        self.named
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a)
            .or_else(|| self.args.get(index))
    }

    /// Same as [`Self::arg`], as a string.
    pub fn arg_str(&self, index: usize, name: &str) -> Option<&str> {
        self.arg(index, name).and_then(|a| a.value.as_str())
    }
}
