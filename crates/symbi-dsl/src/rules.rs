//! DSL policy rules (GRAMMAR 4.10): `allow` / `deny` patterns with guards, `require`
//! conditions and `audit` settings, compiled at load time and evaluated per action as a
//! [`symbi_types::AgentRuleSet`] — what the policy engine combines with its Cedar set.
//!
//! * [`DslRuleSet`] — an agent's rules (its own policies, the file's top-level ones, and a
//!   schedule's named policy) bound to one execution: guards read the execution's
//!   parameters and the principal that started it. The interpreter builds one per
//!   execution and hands it to the host with every action
//!   ([`ActionRequest::rules`](crate::host::ActionRequest::rules)).
//! * [`ChannelRuleSet`] — a channel's policy over the pseudo-actions `invoke("agent")`
//!   (category `execute_agent`) and `send(…)` (`message_send`).
//! * [`AuditSettings`] — the `audit` rules of an agent or channel.
//!
//! Guards are pure expressions evaluated by the interpreter with a small step budget on a
//! separate stack; a guard that raises an error counts as true for `deny` and `require`
//! and false for `allow` (fail closed). Reasons name the policy, the rule kind and its
//! position: `denied by deny rule of policy egress at a.symbi:7:9`.

use crate::ast;
use crate::compile::{Compiler, lit_value};
use crate::diagnostic::SourceFile;
use crate::error::ErrorKind;
use crate::host::{ActionRequest, BlockEnv, LogLevel, SourceLocation};
use crate::interp::ir::Expr;
use crate::interp::{ActionReply, Effects, Interp};
use crate::program::{LoadedProgram, ParamInfo};
use crate::value::{Str, Value, from_json, values_equal};
use serde::Serialize;
use std::sync::Arc;
use symbi_types::decision::{ApprovalScope, RatePeriod, VerificationMode};
use symbi_types::{
    ActionCategory, AgentRuleSet, ByteSize, Condition, HumanDuration, PolicyRequest, Principal,
    RuleOutcome, SandboxTier,
};

/// Steps a guard may use.
const GUARD_STEPS: u64 = 100_000;

/// An action pattern (GRAMMAR 4.10).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum ActionPattern {
    /// `all`, `any`, `all_operations`, `all_interactions`.
    All,
    /// A name or category word; `*` is a wildcard.
    Word(String),
    /// Any of these.
    AnyOf(Vec<ActionPattern>),
    /// `name(b1, b2, …)`.
    Call {
        /// The name or category word.
        name: String,
        /// Binders and literals by position.
        args: Vec<PatternArg>,
    },
}

/// An argument of a call pattern.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum PatternArg {
    /// Binds the subject (first) or a positional argument.
    Bind(String),
    /// `any` or `_`.
    Ignore,
    /// Matches only this value.
    Lit(#[serde(skip)] Value),
}

fn glob(pat: &str, s: &str) -> bool {
    // Iterative wildcard match, `*` only.
    let (p, t) = (pat.as_bytes(), s.as_bytes());
    let (mut i, mut j, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while j < t.len() {
        if i < p.len() && p[i] != b'*' && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == b'*' {
        i += 1;
    }
    i == p.len()
}

fn word_matches(w: &str, name: &str, cat: ActionCategory) -> bool {
    if w.contains('*') {
        return glob(w, name)
            || glob(w, cat.as_str())
            || (matches!(cat, ActionCategory::FileRead | ActionCategory::FileWrite)
                && glob(w, "file_access"));
    }
    w == name || cat.matches_word(w)
}

impl ActionPattern {
    /// Whether the pattern matches the request (binders not considered).
    pub fn matches(&self, r: &PolicyRequest) -> bool {
        self.bind(r).is_some()
    }

    /// Matches and returns the binders' values.
    fn bind(&self, r: &PolicyRequest) -> Option<Vec<(String, Value)>> {
        match self {
            ActionPattern::All => Some(Vec::new()),
            ActionPattern::Word(w) => word_matches(w, &r.name, r.category).then(Vec::new),
            ActionPattern::AnyOf(ps) => ps.iter().find_map(|p| p.bind(r)),
            ActionPattern::Call { name, args } => {
                if !word_matches(name, &r.name, r.category) {
                    return None;
                }
                let mut out = Vec::new();
                for (i, a) in args.iter().enumerate() {
                    let v = if i == 0 {
                        from_json(&serde_json::Value::Object(r.subject.attrs.clone()))
                            .unwrap_or(Value::Null)
                    } else {
                        r.args
                            .get(i)
                            .map(|j| from_json(j).unwrap_or(Value::Null))
                            .unwrap_or(Value::Null)
                    };
                    match a {
                        PatternArg::Ignore => {}
                        PatternArg::Bind(n) => out.push((n.clone(), v)),
                        PatternArg::Lit(l) => {
                            let actual = if i == 0 {
                                Value::str(r.subject.name.as_str())
                            } else {
                                v
                            };
                            if !values_equal(l, &actual) {
                                return None;
                            }
                        }
                    }
                }
                Some(out)
            }
        }
    }
}

fn dotted(e: &ast::Expr) -> Option<String> {
    match &e.kind {
        ast::ExprKind::Var(v) => Some(v.to_string()),
        ast::ExprKind::Member { object, name } => Some(format!("{}.{}", dotted(object)?, name)),
        _ => None,
    }
}

/// Reads an `allow`/`deny`/`audit` expression as an action pattern; `None` when it is not
/// one of the shapes of GRAMMAR 4.10 (E117).
pub fn pattern_of(e: &ast::Expr) -> Option<ActionPattern> {
    match &e.kind {
        ast::ExprKind::Lit(ast::LitKind::Str(s)) => Some(ActionPattern::Word(s.to_string())),
        ast::ExprKind::Var(v)
            if matches!(
                v.as_str(),
                "all" | "any" | "all_operations" | "all_interactions"
            ) =>
        {
            Some(ActionPattern::All)
        }
        ast::ExprKind::Var(_) | ast::ExprKind::Member { .. } => dotted(e).map(ActionPattern::Word),
        ast::ExprKind::Array(xs) => xs
            .iter()
            .map(pattern_of)
            .collect::<Option<Vec<_>>>()
            .map(ActionPattern::AnyOf),
        ast::ExprKind::Paren(x) => pattern_of(x),
        ast::ExprKind::Call { callee, args } => {
            let name = dotted(callee)?;
            let args = args
                .iter()
                .map(|a| {
                    if a.name.is_some() {
                        return None;
                    }
                    match &a.value.kind {
                        ast::ExprKind::Var(v) if v.as_str() == "any" || v.as_str() == "_" => {
                            Some(PatternArg::Ignore)
                        }
                        ast::ExprKind::Var(v) => Some(PatternArg::Bind(v.to_string())),
                        ast::ExprKind::Lit(l) => Some(PatternArg::Lit(lit_value(l))),
                        ast::ExprKind::Unary {
                            op: ast::UnaryOp::Neg,
                            operand,
                        } => match &operand.kind {
                            ast::ExprKind::Lit(ast::LitKind::Int(i)) => {
                                Some(PatternArg::Lit(Value::Int(-i)))
                            }
                            ast::ExprKind::Lit(ast::LitKind::Float(f)) => {
                                Some(PatternArg::Lit(Value::Float(-f)))
                            }
                            _ => None,
                        },
                        _ => None,
                    }
                })
                .collect::<Option<Vec<_>>>()?;
            Some(ActionPattern::Call { name, args })
        }
        _ => None,
    }
}

/// The requirement keys the runtime enforces.
pub const UNDERSTOOD_REQUIRE_KEYS: &[&str] = &[
    "human_approval",
    "approval_required",
    "approval_mechanism",
    "approval_expiry",
    "approval_scope",
    "require_reason",
    "rate_limiting",
    "rate_limit",
    "sandbox_tier",
    "input_sanitization",
    "input_validation",
    "output_sanitization",
    "tls_verification",
    "max_data_size",
    "timeout_per_request",
    "schemapin_mode",
    "verify_tool_schemas",
    "pin_on_first_use",
];

fn static_value(e: &ast::Expr) -> Option<Value> {
    match &e.kind {
        ast::ExprKind::Lit(l) => Some(lit_value(l)),
        ast::ExprKind::Var(w) => Some(Value::str(w.as_str())),
        ast::ExprKind::Unary {
            op: ast::UnaryOp::Neg,
            operand,
        } => match static_value(operand)? {
            Value::Int(i) => Some(Value::Int(-i)),
            Value::Float(f) => Some(Value::Float(-f)),
            _ => None,
        },
        ast::ExprKind::Array(xs) => xs
            .iter()
            .map(static_value)
            .collect::<Option<Vec<_>>>()
            .map(Value::list),
        ast::ExprKind::Record(fs) => fs
            .iter()
            .map(|f| static_value(&f.value).map(|v| (f.key.as_str().to_string(), v)))
            .collect::<Option<Vec<_>>>()
            .map(Value::map),
        _ => None,
    }
}

fn opaque(name: &str, v: &Value) -> Condition {
    Condition::Opaque {
        name: name.to_string(),
        value: crate::value::to_json_lossy(v),
    }
}

fn duration_of(v: &Value) -> Option<std::time::Duration> {
    match v {
        Value::Duration(ms) if *ms >= 0 => Some(std::time::Duration::from_millis(*ms as u64)),
        Value::Str(s) => s.parse::<HumanDuration>().ok().map(|d| d.0),
        _ => None,
    }
}

fn rate_of(v: &Value) -> Option<(u32, RatePeriod, Option<String>)> {
    let s = v.as_str()?;
    let mut parts = s.split('/');
    let n: u32 = parts.next()?.trim().parse().ok()?;
    let period = match parts.next()?.trim() {
        "second" | "s" | "sec" => RatePeriod::Second,
        "minute" | "m" | "min" => RatePeriod::Minute,
        "hour" | "h" => RatePeriod::Hour,
        "day" | "d" => RatePeriod::Day,
        _ => return None,
    };
    let per = parts.next().map(|p| p.trim().to_string());
    if parts.next().is_some() {
        return None;
    }
    Some((n, period, per))
}

/// Conditions of one requirement record (GRAMMAR 4.10 `require`).
fn record_conditions(m: &crate::value::Map, out: &mut Vec<Condition>) {
    let get = |k: &str| m.get(k);
    let approval_key = ["human_approval", "approval_required", "approval_mechanism"]
        .iter()
        .find_map(|k| get(k).map(|v| (*k, v)));
    if let Some((_, v)) = approval_key {
        if v.truthy() {
            let expiry = get("approval_expiry").and_then(duration_of);
            let scope = match get("approval_scope").and_then(Value::as_str) {
                Some("session") => ApprovalScope::Session,
                _ => ApprovalScope::SingleAction,
            };
            let require_reason = get("require_reason").is_some_and(Value::truthy);
            let role = match v {
                Value::Str(s)
                    if !matches!(s.as_str(), "manual" | "human" | "true" | "required") =>
                {
                    Some(s.to_string())
                }
                _ => None,
            };
            out.push(Condition::HumanApproval {
                expiry,
                scope,
                require_reason,
                role,
            });
        }
    }
    let mut schema: Option<(Option<VerificationMode>, Option<bool>)> = None;
    for (k, v) in m.iter() {
        let k = k.as_str();
        match k {
            "human_approval" | "approval_required" | "approval_mechanism" => {}
            "approval_expiry" | "approval_scope" | "require_reason" => {
                if approval_key.is_none() {
                    out.push(opaque(k, v));
                } else if k == "approval_expiry" && duration_of(v).is_none() {
                    out.push(opaque(k, v));
                }
            }
            "rate_limiting" | "rate_limit" => match rate_of(v) {
                Some((max, period, per)) => out.push(Condition::RateLimit { max, period, per }),
                None => out.push(opaque(k, v)),
            },
            "sandbox_tier" => match v.as_str().and_then(|s| s.parse::<SandboxTier>().ok()) {
                Some(tier) => out.push(Condition::MinSandboxTier { tier }),
                None => out.push(opaque(k, v)),
            },
            "input_sanitization" | "input_validation" | "output_sanitization" => match v {
                Value::Bool(true) => out.push(match k {
                    "input_sanitization" => Condition::InputSanitization,
                    "input_validation" => Condition::InputValidation,
                    _ => Condition::OutputSanitization,
                }),
                Value::Bool(false) => {}
                _ => out.push(opaque(k, v)),
            },
            "tls_verification" => match v {
                Value::Bool(b) => out.push(Condition::TlsVerification { verify: *b }),
                _ => out.push(opaque(k, v)),
            },
            "max_data_size" => match v {
                Value::Size(b) => out.push(Condition::MaxDataSize { bytes: *b }),
                Value::Int(b) if *b >= 0 => out.push(Condition::MaxDataSize { bytes: *b as u64 }),
                Value::Str(s) => match s.parse::<ByteSize>() {
                    Ok(b) => out.push(Condition::MaxDataSize { bytes: b.0 }),
                    Err(_) => out.push(opaque(k, v)),
                },
                _ => out.push(opaque(k, v)),
            },
            "timeout_per_request" => match duration_of(v) {
                Some(timeout) => out.push(Condition::TimeoutPerRequest { timeout }),
                None => out.push(opaque(k, v)),
            },
            "schemapin_mode" => match v.as_str().and_then(|s| s.parse::<VerificationMode>().ok()) {
                Some(mode) => schema.get_or_insert((None, None)).0 = Some(mode),
                None => out.push(opaque(k, v)),
            },
            "verify_tool_schemas" => match v {
                Value::Bool(true) => {
                    schema
                        .get_or_insert((None, None))
                        .0
                        .get_or_insert(VerificationMode::Strict);
                }
                Value::Bool(false) => {}
                _ => out.push(opaque(k, v)),
            },
            "pin_on_first_use" => match v {
                Value::Bool(b) => schema.get_or_insert((None, None)).1 = Some(*b),
                _ => out.push(opaque(k, v)),
            },
            other => out.push(opaque(other, v)),
        }
    }
    if let Some((mode, pin)) = schema {
        out.push(Condition::SchemaVerification {
            mode,
            pin_on_first_use: pin,
        });
    }
}

/// The conditions a `require` expression attaches (understood keys → typed conditions,
/// everything else → [`Condition::Opaque`], which W219 reports).
pub fn require_conditions(e: &ast::Expr) -> Vec<Condition> {
    let mut out = Vec::new();
    match &e.kind {
        ast::ExprKind::Record(_) => match static_value(e) {
            Some(Value::Map(m)) => record_conditions(&m, &mut out),
            _ => out.push(Condition::Opaque {
                name: "require".into(),
                value: serde_json::Value::String(expr_text(e)),
            }),
        },
        ast::ExprKind::Array(xs) => {
            for x in xs {
                out.extend(require_conditions(x));
            }
        }
        ast::ExprKind::Call { callee, args } => {
            let name = dotted(callee).unwrap_or_default();
            let vals: Vec<Option<Value>> = args.iter().map(|a| static_value(&a.value)).collect();
            match (name.as_str(), vals.as_slice()) {
                ("approval", [Some(Value::Str(role))]) => out.push(Condition::HumanApproval {
                    expiry: None,
                    scope: ApprovalScope::SingleAction,
                    require_reason: false,
                    role: Some(role.to_string()),
                }),
                ("approval", []) => out.push(Condition::HumanApproval {
                    expiry: None,
                    scope: ApprovalScope::SingleAction,
                    require_reason: false,
                    role: None,
                }),
                ("rate_limit", [Some(Value::Int(n)), Some(Value::Str(p))]) if *n >= 0 => {
                    match rate_of(&Value::str(format!("{n}/{p}"))) {
                        Some((max, period, per)) => {
                            out.push(Condition::RateLimit { max, period, per })
                        }
                        None => out.push(Condition::Opaque {
                            name,
                            value: serde_json::Value::Null,
                        }),
                    }
                }
                _ => out.push(Condition::Opaque {
                    name: name.clone(),
                    value: serde_json::Value::Array(
                        vals.iter()
                            .map(|v| {
                                v.as_ref()
                                    .map(crate::value::to_json_lossy)
                                    .unwrap_or_default()
                            })
                            .collect(),
                    ),
                }),
            }
        }
        ast::ExprKind::Var(w) => out.push(Condition::Opaque {
            name: w.to_string(),
            value: serde_json::Value::Null,
        }),
        ast::ExprKind::Lit(ast::LitKind::Str(s)) => out.push(Condition::Opaque {
            name: s.to_string(),
            value: serde_json::Value::Null,
        }),
        _ => out.push(Condition::Opaque {
            name: expr_text(e),
            value: serde_json::Value::Null,
        }),
    }
    out
}

fn expr_text(e: &ast::Expr) -> String {
    dotted(e).unwrap_or_else(|| "expression".into())
}

/// What the audit trail records for an agent or channel (its `audit` rules).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuditSettings {
    /// `debug`, `info`, `warning`, `error`.
    pub log_level: Option<String>,
    /// Record execution inputs and action arguments in full.
    pub include_input: Option<bool>,
    /// Record outputs and action results in full.
    pub include_output: Option<bool>,
    /// Record metadata.
    pub include_metadata: Option<bool>,
    /// Record policy decisions in detail.
    pub include_policy_decisions: Option<bool>,
    /// How long the agent's events are kept.
    pub retention_days: Option<i64>,
    /// Compliance tags.
    pub compliance_tags: Vec<String>,
    /// Other `alert_on_*` / `include_*` flags.
    pub flags: Vec<(String, bool)>,
    /// Unknown keys, kept as tags (W220).
    pub tags: Vec<String>,
    /// `audit: all_operations` / `all_interactions`: every action with full details.
    pub all_actions_full: bool,
    /// Actions recorded with full details.
    pub full_detail_patterns: Vec<ActionPattern>,
}

impl AuditSettings {
    /// Whether the action should be recorded with full details.
    pub fn records_full_details(&self, r: &PolicyRequest) -> bool {
        self.all_actions_full || self.full_detail_patterns.iter().any(|p| p.matches(r))
    }

    fn absorb(&mut self, e: &ast::Expr) {
        match &e.kind {
            ast::ExprKind::Record(_) => {
                if let Some(Value::Map(m)) = static_value(e) {
                    for (k, v) in m.iter() {
                        let b = match v {
                            Value::Bool(b) => Some(*b),
                            _ => None,
                        };
                        match k.as_str() {
                            "log_level" => self.log_level = v.as_str().map(str::to_string),
                            "include_input" => self.include_input = b,
                            "include_output" => self.include_output = b,
                            "include_metadata" => self.include_metadata = b,
                            "include_policy_decisions" => self.include_policy_decisions = b,
                            "retention_days" => self.retention_days = v.as_int(),
                            "compliance_tags" => {
                                if let Value::List(l) = v {
                                    self.compliance_tags.extend(
                                        l.as_slice()
                                            .iter()
                                            .filter_map(|x| x.as_str().map(str::to_string)),
                                    );
                                }
                            }
                            k if (k.starts_with("alert_on_") || k.starts_with("include_"))
                                && b.is_some() =>
                            {
                                self.flags.push((k.to_string(), b.unwrap_or(false)))
                            }
                            other => self.tags.push(other.to_string()),
                        }
                    }
                }
            }
            _ => match pattern_of(e) {
                Some(ActionPattern::All) => self.all_actions_full = true,
                Some(p) => self.full_detail_patterns.push(p),
                None => {}
            },
        }
    }
}

/// Audit keys understood in `audit` records (others: W220).
pub fn is_known_audit_key(k: &str, v: &ast::Expr) -> bool {
    matches!(
        k,
        "log_level"
            | "include_input"
            | "include_output"
            | "include_metadata"
            | "include_policy_decisions"
            | "retention_days"
            | "compliance_tags"
    ) || ((k.starts_with("alert_on_") || k.starts_with("include_"))
        && matches!(v.kind, ast::ExprKind::Lit(ast::LitKind::Bool(_))))
}

#[derive(Debug)]
pub(crate) struct Guard {
    pub expr: Expr,
    pub n_slots: u32,
    /// Number of slots before the binders: action, context, user, principal, agent, params.
    pub fixed: usize,
}

#[derive(Debug)]
pub(crate) enum RuleBody {
    Pattern(ActionPattern),
    Require(Vec<Condition>),
    Audit,
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub kind: ast::RuleKind,
    pub body: RuleBody,
    pub guard: Option<Guard>,
    pub at: String,
}

/// A compiled `policy` block.
#[derive(Debug)]
pub struct CompiledPolicy {
    /// Its name.
    pub name: String,
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) audit_exprs: AuditSettings,
}

impl CompiledPolicy {
    fn has_allow(&self) -> bool {
        self.rules.iter().any(|r| r.kind == ast::RuleKind::Allow)
    }
}

/// Where a policy is compiled: which agent (for its functions and parameters).
pub(crate) struct PolicyContext<'a> {
    pub agent: Option<&'a str>,
    pub params: &'a [ParamInfo],
}

const FIXED: [&str; 5] = ["action", "context", "user", "principal", "agent"];

pub(crate) fn compile_policy(
    c: &mut Compiler<'_>,
    src: &SourceFile,
    ctx: &PolicyContext<'_>,
    p: &ast::Policy,
) -> CompiledPolicy {
    let mut rules = Vec::new();
    let mut audit = AuditSettings::default();
    for r in &p.rules {
        let body = match r.kind {
            ast::RuleKind::Allow | ast::RuleKind::Deny => {
                RuleBody::Pattern(pattern_of(&r.expr).unwrap_or(ActionPattern::AnyOf(Vec::new())))
            }
            ast::RuleKind::Require => RuleBody::Require(require_conditions(&r.expr)),
            ast::RuleKind::Audit => {
                audit.absorb(&r.expr);
                RuleBody::Audit
            }
        };
        let binders: Vec<String> = match &body {
            RuleBody::Pattern(ActionPattern::Call { args, .. }) => args
                .iter()
                .filter_map(|a| match a {
                    PatternArg::Bind(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let guard = r.guard.as_ref().map(|g| {
            let mut names: Vec<&str> = FIXED.to_vec();
            names.extend(ctx.params.iter().map(|p| p.name.as_str()));
            let fixed = names.len();
            names.extend(binders.iter().map(String::as_str));
            let (expr, n_slots) = c.guard(ctx.agent, &names, g);
            Guard {
                expr,
                n_slots,
                fixed,
            }
        });
        rules.push(CompiledRule {
            kind: r.kind,
            body,
            guard,
            at: src.location(r.span.start),
        });
    }
    CompiledPolicy {
        name: p.name.to_string(),
        rules,
        audit_exprs: audit,
    }
}

pub(crate) fn audit_settings<'a>(
    ps: impl Iterator<Item = &'a Arc<CompiledPolicy>>,
) -> AuditSettings {
    let mut out = AuditSettings::default();
    for p in ps {
        let a = &p.audit_exprs;
        out.log_level = a.log_level.clone().or(out.log_level);
        out.include_input = a.include_input.or(out.include_input);
        out.include_output = a.include_output.or(out.include_output);
        out.include_metadata = a.include_metadata.or(out.include_metadata);
        out.include_policy_decisions = a.include_policy_decisions.or(out.include_policy_decisions);
        out.retention_days = a.retention_days.or(out.retention_days);
        out.compliance_tags
            .extend(a.compliance_tags.iter().cloned());
        out.flags.extend(a.flags.iter().cloned());
        out.tags.extend(a.tags.iter().cloned());
        out.all_actions_full |= a.all_actions_full;
        out.full_detail_patterns
            .extend(a.full_detail_patterns.iter().cloned());
    }
    out
}

// -------------------------------------------------------------------------------------
// Evaluation
// -------------------------------------------------------------------------------------

struct GuardEffects {
    agent: Arc<str>,
}

impl Effects for GuardEffects {
    fn action(&mut self, _req: ActionRequest, _d: Option<std::time::Instant>) -> ActionReply {
        ActionReply::Abort(
            ErrorKind::TypeError,
            "a policy guard cannot perform actions".into(),
            None,
        )
    }
    fn log(&mut self, _: LogLevel, _: &str, _: &SourceLocation) {}
    fn audit(
        &mut self,
        _: &str,
        _: &serde_json::Value,
        _: &SourceLocation,
        _: Option<std::time::Instant>,
    ) -> Result<(), String> {
        Err("a policy guard cannot write audit events".into())
    }
    fn trigger(&self) -> Value {
        Value::Null
    }
    fn recorded(
        &mut self,
        _: &str,
        produce: &mut dyn FnMut() -> serde_json::Value,
    ) -> serde_json::Value {
        produce()
    }
    fn env(&self) -> Arc<BlockEnv> {
        Arc::new(BlockEnv::default())
    }
    fn agent(&self) -> Arc<str> {
        self.agent.clone()
    }
    fn execution(&self) -> symbi_types::ExecutionId {
        symbi_types::ExecutionId(uuid::Uuid::nil())
    }
    fn delegation_depth(&self) -> u32 {
        0
    }
    fn set_env(&mut self, _: Arc<BlockEnv>) {}
    fn is_guard(&self) -> bool {
        true
    }
}

fn principal_value(p: &Principal) -> Value {
    let mut pairs: Vec<(String, Value)> = Vec::new();
    for (k, v) in &p.attributes {
        pairs.push((k.clone(), from_json(v).unwrap_or(Value::Null)));
    }
    pairs.push(("name".into(), Value::str(p.name.as_str())));
    pairs.push((
        "capabilities".into(),
        Value::list(
            p.capabilities
                .iter()
                .map(|c| Value::str(c.as_str()))
                .collect(),
        ),
    ));
    pairs.push((
        "attributes".into(),
        from_json(&serde_json::Value::Object(p.attributes.clone())).unwrap_or(Value::Null),
    ));
    if let Some(id) = &p.agent_id {
        pairs.push(("agent_id".into(), Value::str(id.0.to_string())));
    }
    Value::map(pairs)
}

/// Evaluates a guard; `Err` when it raised an error (the caller fails closed).
fn eval_guard(
    prog: &LoadedProgram,
    g: &Guard,
    fixed: &[Value],
    params: &[Value],
    binders: &[(String, Value)],
    agent: &Arc<str>,
) -> Result<bool, String> {
    let run = |limit: usize| {
        let _no_meter = crate::value::heap::MeterGuard::none();
        let mut fx = GuardEffects {
            agent: agent.clone(),
        };
        let mut it = Interp::new(prog, &mut fx, None);
        it.set_stack_limit(limit);
        it.enter_root(Str::from("guard"), g.n_slots);
        for (i, v) in fixed.iter().chain(params.iter()).enumerate().take(g.fixed) {
            it.stack[i] = Some(v.clone());
        }
        for (i, (_, v)) in binders.iter().enumerate() {
            if g.fixed + i < it.stack.len() {
                it.stack[g.fixed + i] = Some(v.clone());
            }
        }
        it.start_block(
            GUARD_STEPS,
            Some(std::time::Instant::now() + std::time::Duration::from_millis(250)),
            250,
            u64::MAX,
        );
        match it.eval(&g.expr) {
            Ok(v) => Ok(v.truthy()),
            Err(crate::interp::Flow::Err(r)) => Err(format!("{}: {}", r.kind, r.message)),
            Err(_) => Err("control flow in a guard".into()),
        }
    };
    crate::interp::exec::on_guard_stack(run)
}

/// An agent's DSL rules bound to one execution.
pub struct DslRuleSet {
    prog: Arc<LoadedProgram>,
    agent: usize,
    extra: Option<Arc<CompiledPolicy>>,
    params: Vec<Value>,
    initiator: Value,
    agent_value: Value,
}

impl std::fmt::Debug for DslRuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DslRuleSet({})", self.prog.agents[self.agent].name)
    }
}

impl DslRuleSet {
    /// The rules of agent `agent` for an execution whose parameters are `params` (in
    /// declared order, as bound), started by `initiator`; `schedule_policy` adds a
    /// top-level policy a schedule names.
    pub fn new(
        prog: Arc<LoadedProgram>,
        agent: &str,
        params: Vec<Value>,
        initiator: Option<&Principal>,
        schedule_policy: Option<&str>,
    ) -> Option<DslRuleSet> {
        let idx = prog.agents.iter().position(|a| &*a.name == agent)?;
        let a = &prog.agents[idx];
        let extra = schedule_policy.and_then(|n| {
            if a.file_policies.iter().any(|p| p.name == n) {
                None
            } else {
                a.file_policies.iter().find(|p| p.name == n).cloned()
            }
        });
        let sandbox = a
            .envs
            .first()
            .and_then(|e| e.min_tier())
            .map(|t| Value::str(t.as_str()))
            .unwrap_or(Value::Null);
        let agent_value = Value::map([
            ("name", Value::str(&*a.name)),
            (
                "capabilities",
                Value::list(
                    a.capabilities
                        .iter()
                        .map(|c| Value::str(c.as_str()))
                        .collect(),
                ),
            ),
            ("sandbox", sandbox),
        ]);
        Some(DslRuleSet {
            agent: idx,
            extra,
            params,
            initiator: initiator.map(principal_value).unwrap_or(Value::Null),
            agent_value,
            prog,
        })
    }

    /// The rules for an execution given its JSON input (bound as the interpreter binds
    /// it); `None` if the agent does not exist or the input does not bind.
    ///
    /// A `null` input stands for "no execution" (an operator acting in the agent's name,
    /// e.g. a message sent through the API): every parameter is then bound to `null`, so
    /// rules that do not mention parameters apply as written and conditions on parameters
    /// see `null`.
    pub fn for_input(
        prog: Arc<LoadedProgram>,
        agent: &str,
        input: &serde_json::Value,
        initiator: Option<&Principal>,
        schedule_policy: Option<&str>,
    ) -> Option<DslRuleSet> {
        let a = prog.agent(agent)?;
        let params = match crate::interp::exec::bind_input_pub(a, input) {
            Ok((params, _)) => params,
            Err(_) if input.is_null() => vec![Value::Null; a.param_code.len()],
            Err(_) => return None,
        };
        DslRuleSet::new(prog.clone(), agent, params, initiator, schedule_policy)
    }

    fn policies(&self) -> impl Iterator<Item = &Arc<CompiledPolicy>> {
        let a = &self.prog.agents[self.agent];
        a.policies
            .iter()
            .chain(a.file_policies.iter())
            .chain(self.extra.iter())
    }
}

fn action_value(r: &PolicyRequest) -> Value {
    Value::map([
        ("name", Value::str(r.name.as_str())),
        ("category", Value::str(r.category.as_str())),
        (
            "args",
            from_json(&serde_json::Value::Array(r.args.clone())).unwrap_or(Value::Null),
        ),
        (
            "named",
            from_json(&serde_json::Value::Object(r.named.clone())).unwrap_or(Value::Null),
        ),
    ])
}

fn evaluate_policies<'a>(
    prog: &LoadedProgram,
    policies: impl Iterator<Item = &'a Arc<CompiledPolicy>>,
    r: &PolicyRequest,
    fixed: &[Value],
    params: &[Value],
    agent: &Arc<str>,
) -> RuleOutcome {
    let mut out = RuleOutcome::default();
    let reason = |kind: &str, p: &CompiledPolicy, rule: &CompiledRule| {
        let verb = if kind == "deny" { "denied" } else { "allowed" };
        format!("{verb} by {kind} rule of policy {} at {}", p.name, rule.at)
    };
    let policies: Vec<&Arc<CompiledPolicy>> = policies.collect();
    // Deny rules first: any match denies.
    for p in &policies {
        for rule in p.rules.iter().filter(|x| x.kind == ast::RuleKind::Deny) {
            let RuleBody::Pattern(pat) = &rule.body else {
                continue;
            };
            let Some(binders) = pat.bind(r) else { continue };
            let hit = match &rule.guard {
                None => true,
                Some(g) => eval_guard(prog, g, fixed, params, &binders, agent).unwrap_or(true),
            };
            if hit {
                out.denied_by = Some(reason("deny", p, rule));
                return out;
            }
        }
    }
    for p in &policies {
        let mut allowed_here = false;
        for rule in p.rules.iter().filter(|x| x.kind == ast::RuleKind::Allow) {
            let RuleBody::Pattern(pat) = &rule.body else {
                continue;
            };
            let Some(binders) = pat.bind(r) else { continue };
            let hit = match &rule.guard {
                None => true,
                Some(g) => eval_guard(prog, g, fixed, params, &binders, agent).unwrap_or(false),
            };
            if hit {
                allowed_here = true;
                out.allowed_by.push(reason("allow", p, rule));
            }
        }
        // `require` rules attach to the actions this policy allows; a policy without
        // allow rules attaches its requirements to every allowed action (fail closed).
        if allowed_here || !p.has_allow() {
            for rule in p.rules.iter().filter(|x| x.kind == ast::RuleKind::Require) {
                let RuleBody::Require(conds) = &rule.body else {
                    continue;
                };
                let applies = match &rule.guard {
                    None => true,
                    Some(g) => eval_guard(prog, g, fixed, params, &[], agent).unwrap_or(true),
                };
                if applies {
                    for c in conds {
                        if !out.conditions.contains(c) {
                            out.conditions.push(c.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

impl AgentRuleSet for DslRuleSet {
    fn evaluate(&self, r: &PolicyRequest) -> RuleOutcome {
        let context =
            from_json(&serde_json::Value::Object(r.context.clone())).unwrap_or(Value::Null);
        let fixed = [
            action_value(r),
            context,
            self.initiator.clone(),
            self.initiator.clone(),
            self.agent_value.clone(),
        ];
        let a = &self.prog.agents[self.agent];
        evaluate_policies(
            &self.prog,
            self.policies(),
            r,
            &fixed,
            &self.params,
            &a.name,
        )
    }
}

/// A channel's policy (GRAMMAR 4.11.2) over `invoke("agent")` / `send(…)`.
#[derive(Debug)]
pub struct ChannelRuleSet {
    pub(crate) name: String,
    pub(crate) policies: Vec<Arc<CompiledPolicy>>,
    pub(crate) audit: AuditSettings,
}

pub(crate) fn compile_channel(
    c: &mut Compiler<'_>,
    src: &SourceFile,
    ch: &ast::Channel,
) -> ChannelRuleSet {
    let ctx = PolicyContext {
        agent: None,
        params: &[],
    };
    let policies: Vec<Arc<CompiledPolicy>> = ch
        .entries
        .iter()
        .filter_map(|e| match e {
            ast::ChannelEntry::Policy(p) => Some(Arc::new(compile_policy(c, src, &ctx, p))),
            _ => None,
        })
        .collect();
    let audit = audit_settings(policies.iter());
    ChannelRuleSet {
        name: ch.name.to_string(),
        policies,
        audit,
    }
}

impl ChannelRuleSet {
    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The channel's audit settings.
    pub fn audit_settings(&self) -> &AuditSettings {
        &self.audit
    }
    /// Builds the pseudo-action request for "a chat user asks `agent` to run".
    pub fn invoke_request(principal: Principal, agent: &str) -> PolicyRequest {
        let subject = symbi_types::Subject::named(symbi_types::SubjectKind::Agent, agent);
        let mut r = PolicyRequest::new(principal, ActionCategory::ExecuteAgent, "invoke", subject);
        r.args = vec![serde_json::Value::String(agent.to_string())];
        r
    }
    /// Evaluates the channel policy for `r` with the program the channel belongs to.
    pub fn evaluate_in(&self, prog: &LoadedProgram, r: &PolicyRequest) -> RuleOutcome {
        let context =
            from_json(&serde_json::Value::Object(r.context.clone())).unwrap_or(Value::Null);
        let who = principal_value(&r.principal);
        let fixed = [action_value(r), context, who.clone(), who, Value::Null];
        evaluate_policies(
            prog,
            self.policies.iter(),
            r,
            &fixed,
            &[],
            &Arc::from(self.name.as_str()),
        )
    }
}

/// A channel rule set bound to its program, usable as an [`AgentRuleSet`].
pub struct BoundChannelRules {
    /// The program.
    pub program: Arc<LoadedProgram>,
    /// The channel's rules.
    pub rules: Arc<ChannelRuleSet>,
}

impl AgentRuleSet for BoundChannelRules {
    fn evaluate(&self, r: &PolicyRequest) -> RuleOutcome {
        self.rules.evaluate_in(&self.program, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("memory_*", "memory_write"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b", "axxc"));
        assert!(word_matches(
            "file_access",
            "read_file",
            ActionCategory::FileRead
        ));
        assert!(word_matches(
            "file_*",
            "read_file",
            ActionCategory::FileWrite
        ));
    }
}
