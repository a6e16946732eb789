//! Where every enforcement point meets the policy engine.
//!
//! The runtime holds one `Arc<dyn PolicyDecisionPoint>` and calls it at agent creation and
//! configuration, resource allocation, message send/route/subscribe, tool invocation, data
//! access and every DSL action. The policy crate implements it over Cedar; an agent's DSL
//! `policy` blocks come in as an [`AgentRuleSet`] that the engine combines with the Cedar
//! set under one deny-overrides procedure (GRAMMAR.md §4.10 "Decision").

use crate::action::PolicyRequest;
use crate::decision::{Condition, Decision};

/// What an agent's own (DSL) rules say about one request, before combination with Cedar.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleOutcome {
    /// Set when a `deny` rule matched: the reason naming the policy, rule and position
    /// (`"denied by deny rule of policy egress at a.symbi:7:9"`).
    pub denied_by: Option<String>,
    /// The `allow` rules that matched (same naming).
    pub allowed_by: Vec<String>,
    /// Conditions from `require` rules that apply if the action ends up allowed.
    pub conditions: Vec<Condition>,
}

/// An agent's compiled DSL policy rules, bound to one execution (guards may read the
/// execution's parameters). Implemented by the DSL crate.
pub trait AgentRuleSet: Send + Sync {
    /// Evaluates every rule against the request. Must be pure and must fail closed: a guard
    /// that errors counts as true for `deny` and false for `allow`.
    fn evaluate(&self, request: &PolicyRequest) -> RuleOutcome;
}

/// The policy decision point.
///
/// Decision procedure (deny overrides): a matching DSL `deny` → Deny; else a Cedar
/// `forbid` → Deny; else a DSL `allow` or a Cedar `permit` → Allow, or AllowWithConditions
/// when `require` rules or permit annotations attach conditions; else Deny (the default).
pub trait PolicyDecisionPoint: Send + Sync {
    /// Decides one request, combining the engine's policies with the agent's own rules.
    fn decide(&self, request: &PolicyRequest, agent_rules: Option<&dyn AgentRuleSet>) -> Decision;

    /// Decides many requests in one call (same semantics as repeated [`Self::decide`],
    /// all against one snapshot of the policy set).
    fn decide_batch(
        &self,
        requests: &[PolicyRequest],
        agent_rules: Option<&dyn AgentRuleSet>,
    ) -> Vec<Decision> {
        requests
            .iter()
            .map(|r| self.decide(r, agent_rules))
            .collect()
    }
}

/// A decision point that denies everything. Used when policy enforcement is on but no
/// engine could be loaded: the runtime fails closed rather than open.
#[derive(Debug, Default, Clone, Copy)]
pub struct DenyAll;

impl PolicyDecisionPoint for DenyAll {
    fn decide(&self, request: &PolicyRequest, _: Option<&dyn AgentRuleSet>) -> Decision {
        Decision::deny(format!(
            "no policy engine is loaded; action {} denied",
            request.name
        ))
    }
}
