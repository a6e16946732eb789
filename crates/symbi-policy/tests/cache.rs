//! The decision cache never changes a decision: an engine with the cache (small, so entries
//! are evicted too) and one without decide random requests identically, before and after a
//! reload, with and without DSL rules.

use proptest::prelude::*;
use serde_json::{Value, json};
use symbi_policy::{EngineOptions, PolicyEngine, PolicySource, defaults};
use symbi_types::{
    ActionCategory, AgentRuleSet, Condition, Decision, ExecutionId, PolicyDecisionPoint,
    PolicyRequest, Principal, RuleOutcome, Subject, SubjectKind,
};

/// Policies that read principal attributes and tags, resource attributes and several
/// context fields (so narrowing the key to the fields policies read is exercised).
const SET_A: &str = r#"
@id("tools-by-capability")
permit(principal is Agent, action == Action::"invoke_tool", resource is Tool)
when { principal.capabilities.contains(resource.name) };

@id("tools-from-api-need-approval")
@require_approval("true")
permit(principal is Agent, action == Action::"invoke_tool", resource is Tool)
when { context.trigger == "api" && !context.has_human_approval };

@id("big-args-forbidden")
@reason("arguments too large")
forbid(principal, action == Action::"invoke_tool", resource) when { context.args_size > 40 };

@id("team-net")
@tls_verification("true")
permit(principal is Agent, action == Action::"network_access", resource is Host)
when { principal.hasTag("team") && resource.domain like "*.example.com" };

@id("publish-own-topic")
permit(principal is Agent, action == Action::"publish", resource is Topic)
when { resource.name like "t*" };

@id("no-publish-in-session-x")
forbid(principal, action == Action::"publish", resource) when { context has session && context.session == "x" };

@id("memory")
@rate_limit("30/minute")
permit(principal is Agent, action in [Action::"memory_read", Action::"memory_write"], resource);

@id("named-tool")
permit(principal == Agent::"a1", action == Action::"invoke_tool", resource == Tool::"t2");
"#;

/// A changed set: one permit gone, one forbid added, a condition changed.
const SET_B: &str = r#"
@id("tools-by-capability")
@sandbox_tier("gvisor")
permit(principal is Agent, action == Action::"invoke_tool", resource is Tool)
when { principal.capabilities.contains(resource.name) };

@id("exec-matters")
forbid(principal, action == Action::"invoke_tool", resource) when { context.execution == "" };

@id("publish-own-topic")
permit(principal is Agent, action == Action::"publish", resource is Topic)
when { resource.name like "t*" };

@id("memory")
permit(principal is Agent, action in [Action::"memory_read", Action::"memory_write"], resource);
"#;

fn set(text: &str) -> Vec<PolicySource> {
    let mut s = defaults::default_sources();
    s.push(PolicySource::new("extra.cedar", text));
    s
}

fn principal() -> impl Strategy<Value = Principal> {
    (
        0..4usize,
        prop::collection::vec(prop::sample::select(vec!["t1", "t2", "t3", "x"]), 0..3),
        0..4usize,
        any::<bool>(),
    )
        .prop_map(|(who, caps, tag, suspended)| {
            let mut p = match who {
                0..=1 => Principal::agent(format!("a{who}")),
                2 => symbi_policy::requests::client_principal("ci", ["deploy"]),
                _ => {
                    // Not a known principal type: denied as not fitting the model.
                    let mut p = Principal::agent("robot");
                    p.attributes.insert("principal_type".into(), json!("robot"));
                    p
                }
            };
            p.capabilities = caps.into_iter().map(String::from).collect();
            match tag {
                0 => {}
                1 => {
                    p.attributes.insert("team".into(), json!("red"));
                }
                2 => {
                    p.attributes.insert("team".into(), json!(7));
                }
                _ => {
                    // Malformed declared attribute: the request does not fit the model.
                    p.attributes.insert("suspended".into(), json!("perhaps"));
                }
            }
            if suspended && tag != 3 {
                p.attributes.insert("suspended".into(), json!(true));
            }
            p
        })
}

fn context() -> impl Strategy<Value = (Vec<(String, Value)>, bool)> {
    (
        prop::option::of(prop::sample::select(vec![
            json!("api"),
            json!("cli"),
            json!({"kind": "api"}),
            json!(3),
            json!([1]),
        ])),
        prop::option::of(prop::sample::select(vec![json!("x"), json!("y")])),
        prop::option::of(prop::sample::select(vec![
            json!(true),
            json!(false),
            json!("maybe"),
        ])),
        any::<bool>(),
    )
        .prop_map(|(trigger, session, approval, exec)| {
            let mut v = Vec::new();
            if let Some(t) = trigger {
                v.push(("trigger".to_string(), t));
            }
            if let Some(s) = session {
                v.push(("session".to_string(), s));
            }
            if let Some(a) = approval {
                v.push(("has_human_approval".to_string(), a));
            }
            (v, exec)
        })
}

fn request() -> impl Strategy<Value = PolicyRequest> {
    let categories = vec![
        ActionCategory::InvokeTool,
        ActionCategory::NetworkAccess,
        ActionCategory::Publish,
        ActionCategory::MemoryRead,
        ActionCategory::FileWrite,
        ActionCategory::ExecuteAgent,
        ActionCategory::AllocateResource,
    ];
    let kinds = vec![
        SubjectKind::Tool,
        SubjectKind::Url,
        SubjectKind::Topic,
        SubjectKind::MemoryStore,
        SubjectKind::File,
        SubjectKind::Agent,
        SubjectKind::Resource,
        SubjectKind::Other,
    ];
    (
        principal(),
        prop::sample::select(categories),
        prop::sample::select(kinds),
        prop::sample::select(vec!["t1", "t2", "x", "api.example.com", "evil.org"]),
        prop::collection::vec(0..100i64, 0..3),
        context(),
        any::<bool>(),
    )
        .prop_map(|(p, category, kind, name, args, (ctx, exec), in_project)| {
            let subject = Subject::named(kind, name)
                .with("in_project", in_project)
                .with("suspended", false);
            let mut r = PolicyRequest::new(p, category, category.as_str(), subject);
            r.args = args
                .into_iter()
                .map(|a| json!({ "n": a, "pad": "0123456789" }))
                .collect();
            r.context = ctx.into_iter().collect();
            if exec {
                r.execution = Some(ExecutionId::new());
            }
            r
        })
}

/// DSL rules: deny file writes, allow publishing, require approval for network access.
struct Rules;

impl AgentRuleSet for Rules {
    fn evaluate(&self, r: &PolicyRequest) -> RuleOutcome {
        let cat = r.category.as_str();
        RuleOutcome {
            denied_by: (cat == "file_write")
                .then(|| "denied by deny rule at a.symbi:4:9".to_string()),
            allowed_by: if cat == "publish" {
                vec!["allowed by allow rule at a.symbi:3:9".to_string()]
            } else {
                Vec::new()
            },
            conditions: if cat == "network_access" || cat == "invoke_tool" {
                vec![Condition::InputSanitization]
            } else {
                Vec::new()
            },
        }
    }
}

fn check_agree(
    cached: &PolicyEngine,
    plain: &PolicyEngine,
    reqs: &[PolicyRequest],
) -> Result<Vec<Decision>, TestCaseError> {
    let mut out = Vec::new();
    // Twice, so the second round is served from the cache where the first stored it.
    for round in 0..2 {
        for r in reqs {
            for rules in [None, Some(&Rules as &dyn AgentRuleSet)] {
                let a = cached.decide(r, rules);
                let b = plain.decide(r, rules);
                prop_assert_eq!(&a, &b, "round {}, request {:?}", round, r);
                if round == 0 && rules.is_none() {
                    out.push(b);
                }
            }
        }
    }
    // Batches agree too.
    prop_assert_eq!(
        cached.decide_batch(reqs, None),
        plain.decide_batch(reqs, None)
    );
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cached_and_uncached_decisions_agree_across_a_reload(reqs in prop::collection::vec(request(), 1..60)) {
        // A tiny cache, so eviction happens as well.
        let cached = PolicyEngine::from_sources(set(SET_A), EngineOptions::enforcing().with_decision_cache(16)).unwrap();
        let plain = PolicyEngine::from_sources(set(SET_A), EngineOptions::enforcing().with_decision_cache(0)).unwrap();
        check_agree(&cached, &plain, &reqs)?;
        cached.replace_policies(set(SET_B)).unwrap();
        plain.replace_policies(set(SET_B)).unwrap();
        check_agree(&cached, &plain, &reqs)?;
        // And back: the first set's decisions, not the second's.
        cached.replace_policies(set(SET_A)).unwrap();
        plain.replace_policies(set(SET_A)).unwrap();
        check_agree(&cached, &plain, &reqs)?;
    }
}

fn tool_request(p: Principal, tool: &str, args: Vec<Value>) -> PolicyRequest {
    let mut r = PolicyRequest::new(
        p,
        ActionCategory::InvokeTool,
        tool,
        Subject::named(SubjectKind::Tool, tool),
    );
    r.args = args;
    r
}

#[test]
fn a_reload_changes_cached_decisions_immediately() {
    let e = PolicyEngine::from_sources(set(SET_A), EngineOptions::enforcing()).unwrap();
    let mut p = Principal::agent("a1");
    p.capabilities = vec!["t1".into()];
    let r = tool_request(p, "t1", vec![]);
    assert!(matches!(e.decide(&r, None), Decision::Allow { .. }));
    assert!(matches!(e.decide(&r, None), Decision::Allow { .. }));
    assert_eq!(e.snapshot().cache_stats().unwrap().hits, 1);
    e.replace_policies(set(SET_B)).unwrap();
    // SET_B forbids tool calls outside an execution and adds a sandbox condition.
    assert!(
        matches!(e.decide(&r, None), Decision::Deny { .. }),
        "{:?}",
        e.decide(&r, None)
    );
    let mut r2 = r.clone();
    r2.execution = Some(ExecutionId::new());
    match e.decide(&r2, None) {
        Decision::AllowWithConditions { conditions, .. } => {
            assert!(matches!(conditions[0], Condition::MinSandboxTier { .. }))
        }
        d => panic!("{d:?}"),
    }
    let s = e.snapshot().cache_stats().unwrap();
    assert_eq!(
        (s.hits, s.misses),
        (0, 2),
        "the new set starts with an empty cache"
    );
}

#[test]
fn unread_context_fields_share_a_key_and_read_ones_do_not() {
    let e = PolicyEngine::from_sources(set(SET_A), EngineOptions::enforcing()).unwrap();
    let mut p = Principal::agent("a1");
    p.capabilities = vec!["t1".into()];
    let base = tool_request(p, "t1", vec![]);
    let mut a = base.clone();
    a.execution = Some(ExecutionId::new());
    let mut b = base.clone();
    b.execution = Some(ExecutionId::new());
    // SET_A does not read `execution`: one evaluation serves both.
    assert_eq!(e.decide(&a, None), e.decide(&b, None));
    assert_eq!(e.snapshot().cache_stats().unwrap().misses, 1);
    // It reads `args_size`: different arguments, different entries and decisions.
    let big = tool_request(base.principal.clone(), "t1", vec![json!("x".repeat(64))]);
    assert!(matches!(e.decide(&big, None), Decision::Deny { .. }));
    assert_eq!(e.snapshot().cache_stats().unwrap().misses, 2);
    // A malformed unread field is still an error (and is not cached).
    let mut bad = a.clone();
    bad.context
        .insert("session".into(), json!({"not": "a string"}));
    assert!(matches!(e.decide(&bad, None), Decision::Deny { .. }));
}
