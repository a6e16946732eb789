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
        Self { value: value.into(), secret: false }
    }
}

/// `network_policy` of the running `with` block (GRAMMAR.md §4.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NetworkPolicy {
    /// No network action may leave the host (default).
    #[default]
    DenyAll,
    /// Network allowed, each destination needs a matching `allow` rule.
    AllowList,
    /// Network allowed where policy allows it.
    Allow,
}

/// `privacy` of the running block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Privacy {
    /// Inputs, outputs and arguments redacted unless an audit rule includes them.
    Strict,
    /// As strict.
    High,
    /// Secrets and credential-like fields redacted (default).
    #[default]
    Medium,
    /// Only secrets redacted.
    Low,
}

/// `security` of the running block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum SecurityLevel {
    /// No effect.
    Low,
    /// No effect (default).
    #[default]
    Medium,
    /// Minimum Tier1; unverified tool schemas denied.
    High,
    /// Minimum Tier2; unverified tool schemas denied.
    Maximum,
}

/// The execution environment of the `with` block an action comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockEnv {
    /// `sandbox`: minimum tier for tools run from this block.
    pub min_tier: Option<SandboxTier>,
    /// `network_policy`.
    pub network_policy: NetworkPolicy,
    /// `privacy`.
    pub privacy: Privacy,
    /// `security`.
    pub security: SecurityLevel,
    /// `max_cpu_cores` for sandboxed tools.
    pub max_cpu_cores: Option<f64>,
}

impl BlockEnv {
    /// The minimum tier after `security` raises it.
    pub fn effective_min_tier(&self) -> Option<SandboxTier> {
        let floor = match self.security {
            SecurityLevel::High => Some(SandboxTier::Tier1),
            SecurityLevel::Maximum => Some(SandboxTier::Tier2),
            _ => None,
        };
        match (self.min_tier, floor) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether tool schemas must be verified whatever the global mode.
    pub fn requires_verified_tools(&self) -> bool {
        self.security >= SecurityLevel::High
    }
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
    pub env: BlockEnv,
    /// `file:line:col` of the call.
    pub location: Option<String>,
}

impl ActionRequest {
    /// A named argument, or else the positional one at `index`.
    pub fn arg(&self, index: usize, name: &str) -> Option<&Arg> {
        self.named.iter().find(|(n, _)| n == name).map(|(_, a)| a).or_else(|| self.args.get(index))
    }

    /// Same as [`Self::arg`], as a string.
    pub fn arg_str(&self, index: usize, name: &str) -> Option<&str> {
        self.arg(index, name).and_then(|a| a.value.as_str())
    }
}
