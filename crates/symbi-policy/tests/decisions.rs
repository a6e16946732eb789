//! Decision tests: every action kind (allow, deny with reason, conditions), the
//! deny-overrides combination of DSL rules and Cedar, enforcement off, batch evaluation.

use serde_json::json;
use std::time::Duration;
use symbi_policy::requests::{self, AgentTarget, DataAccess, ResourceKind, ToolSubject};
use symbi_policy::{EngineOptions, PolicyEngine, PolicySource, defaults};
use symbi_types::decision::{ApprovalScope, RatePeriod};
use symbi_types::{
    ActionCategory, AgentRuleSet, Condition, Decision, PolicyDecisionPoint, PolicyRequest,
    Principal, RuleOutcome, SandboxTier, Subject, SubjectKind,
};

/// An agent's DSL rules as the DSL crate hands them over: which patterns deny, which
/// allow, and what `require` rules attach. Patterns match the category word (with
/// `file_access` covering both file categories) or the action's name, like GRAMMAR.md §4.10.
#[derive(Default)]
struct Rules {
    deny: Vec<&'static str>,
    allow: Vec<&'static str>,
    require: Vec<Condition>,
}

impl Rules {
    fn matches(word: &str, r: &PolicyRequest) -> bool {
        r.category.matches_word(word) || r.name == word
    }
}

impl AgentRuleSet for Rules {
    fn evaluate(&self, r: &PolicyRequest) -> RuleOutcome {
        RuleOutcome {
            denied_by: self
                .deny
                .iter()
                .find(|w| Self::matches(w, r))
                .map(|w| format!("denied by deny rule `{w}` of policy test at t.symbi:3:9")),
            allowed_by: self
                .allow
                .iter()
                .filter(|w| Self::matches(w, r))
                .map(|w| format!("allowed by allow rule `{w}` of policy test at t.symbi:2:9"))
                .collect(),
            conditions: self.require.clone(),
        }
    }
}

const OPERATOR_POLICIES: &str = r#"
@id("search-tool")
permit(principal is Agent, action == Action::"invoke_tool", resource == Tool::"search");

@id("python-in-gvisor")
@sandbox_tier("gvisor")
@input_sanitization("true")
permit(principal is Agent, action == Action::"execute_code", resource is Tool)
when { principal.capabilities.contains("execute_code") };

@id("llm-with-approval")
@require_approval("true")
@approval_expiry("10m")
@rate_limit("30/minute")
permit(principal is Agent, action == Action::"use_llm", resource is Model)
when { resource.provider == "openai" };

@id("no-gpt3")
@reason("model retired")
forbid(principal, action == Action::"use_llm", resource == Model::"gpt-3");

@id("api-allow-list")
@tls_verification("true")
@max_data_size("1MB")
permit(principal is Agent, action == Action::"network_access", resource is Host)
when { resource.domain == "api.example.com" };

@id("no-posts")
@reason("read-only egress")
forbid(principal, action == Action::"network_access", resource is Host)
when { resource.method == "POST" };

@id("support-topics")
permit(principal is Agent, action == Action::"publish", resource is Topic)
when { resource.name like "support/*" };

@id("no-oncall-page-by-bots")
forbid(principal is Agent, action == Action::"publish", resource == Topic::"oncall/page")
unless { principal.hasTag("clearance") && principal.getTag("clearance") == "pager" };

@id("own-memory")
permit(principal is Agent, action in [Action::"memory_read", Action::"memory_write"], resource is MemoryStore)
when { resource.name == principal.name };

@id("kb-read")
permit(principal is Agent, action == Action::"knowledge_read", resource is DataSet);

@id("project-files")
permit(principal is Agent, action in Action::"file_access", resource is File)
when { resource.path like "/srv/project/*" };

@id("db-secret")
@approval_role("security")
permit(principal == Agent::"billing", action == Action::"secret_read", resource == Secret::"db/password");

@id("delegate-classifier")
permit(principal is Agent, action == Action::"invoke_agent", resource == Agent::"severity_classifier");

@id("dm-ops")
@rate_limit("10/minute/recipient")
permit(principal is Agent, action == Action::"message_send", resource == Agent::"ops");

@id("memory-budget")
@reason("at most 1 GiB per allocation")
forbid(principal, action == Action::"allocate_resource", resource == Resource::"memory")
when { resource has amount && resource.amount > 1073741824 };

@id("spawn-helpers")
permit(principal is Agent, action == Action::"spawn_agent", resource is Agent)
when { resource.name like "helper_*" };

@id("approvals")
permit(principal is Agent, action == Action::"approval", resource);

@id("agents-subscribe-support")
permit(principal is Agent, action == Action::"subscribe", resource is Topic)
when { resource.name like "support/*" };
"#;

fn engine() -> PolicyEngine {
    let mut sources = defaults::default_sources();
    sources.push(PolicySource::new("ops/operator.cedar", OPERATOR_POLICIES));
    PolicyEngine::from_sources(sources, EngineOptions::enforcing()).expect("policies are valid")
}

fn agent(name: &str) -> Principal {
    requests::agent_principal(name, None, ["execute_code"], Some(SandboxTier::Tier1))
}

enum Want {
    Allow(&'static str),
    Deny(&'static str),
    Cond(Vec<Condition>, &'static str),
}

fn check(engine: &PolicyEngine, label: &str, req: PolicyRequest, want: Want) {
    let d = engine.decide(&req, None);
    let reason = d.reason();
    match (&want, &d) {
        (Want::Allow(r), Decision::Allow { .. }) | (Want::Deny(r), Decision::Deny { .. }) => {
            assert!(reason.contains(r), "{label}: reason {reason:?} lacks {r:?}")
        }
        (Want::Cond(c, r), Decision::AllowWithConditions { conditions, .. }) => {
            assert_eq!(conditions, c, "{label}");
            assert!(reason.contains(r), "{label}: reason {reason:?} lacks {r:?}");
        }
        _ => panic!("{label}: unexpected decision {d:?}"),
    }
}

#[test]
fn table_per_action_kind() {
    let e = engine();
    let a = || agent("bot");
    let target = |n: &str| AgentTarget::named(n);
    use Want::*;
    let cases: Vec<(&str, PolicyRequest, Want)> = vec![
        // invoke_tool
        (
            "tool allowed",
            requests::invoke_tool(a(), ToolSubject::named("search"), vec![json!("q")]),
            Allow("\"search-tool\" (ops/operator.cedar:"),
        ),
        (
            "tool default deny",
            requests::invoke_tool(a(), ToolSubject::named("rm"), vec![]),
            Deny("no rule allows action rm (invoke_tool) on Tool::\"rm\""),
        ),
        // execute_code with conditions
        (
            "code with tier",
            requests::invoke_tool(
                a(),
                ToolSubject {
                    category: ActionCategory::ExecuteCode,
                    ..ToolSubject::named("python")
                },
                vec![],
            ),
            Cond(
                vec![
                    Condition::InputSanitization,
                    Condition::MinSandboxTier {
                        tier: SandboxTier::Tier2,
                    },
                ],
                "python-in-gvisor",
            ),
        ),
        (
            "code without capability",
            requests::invoke_tool(
                requests::agent_principal("x", None, Vec::<String>::new(), None),
                ToolSubject {
                    category: ActionCategory::ExecuteCode,
                    ..ToolSubject::named("python")
                },
                vec![],
            ),
            Deny("no rule allows"),
        ),
        // use_llm
        (
            "llm with approval",
            requests::use_llm(a(), "gpt-4o", "openai"),
            Cond(
                vec![
                    Condition::HumanApproval {
                        expiry: Some(Duration::from_secs(600)),
                        scope: ApprovalScope::SingleAction,
                        require_reason: false,
                        role: None,
                    },
                    Condition::RateLimit {
                        max: 30,
                        period: RatePeriod::Minute,
                        per: None,
                    },
                ],
                "llm-with-approval",
            ),
        ),
        (
            "retired model",
            requests::use_llm(a(), "gpt-3", "openai"),
            Deny("forbidden by Cedar policy \"no-gpt3\" (ops/operator.cedar:"),
        ),
        (
            "retired model reason",
            requests::use_llm(a(), "gpt-3", "openai"),
            Deny(": model retired"),
        ),
        (
            "other provider",
            requests::use_llm(a(), "llama", "local"),
            Deny("no rule allows action llm_call (use_llm) on Model::\"llama\""),
        ),
        // network_access
        (
            "allow-listed host",
            requests::network_access(a(), "https://api.example.com/v1", "GET"),
            Cond(
                vec![
                    Condition::MaxDataSize { bytes: 1 << 20 },
                    Condition::TlsVerification { verify: true },
                ],
                "api-allow-list",
            ),
        ),
        (
            "post forbidden",
            requests::network_access(a(), "https://api.example.com/v1", "POST"),
            Deny("read-only egress"),
        ),
        (
            "other host",
            requests::network_access(a(), "https://example.org/", "GET"),
            Deny("no rule allows action http.get (network_access) on Host::\"example.org\""),
        ),
        (
            "metadata",
            requests::network_access(a(), "http://169.254.169.254/latest", "GET"),
            Deny("no-cloud-metadata"),
        ),
        (
            "ftp",
            requests::network_access(a(), "ftp://api.example.com/x", "GET"),
            Deny("web-schemes-only"),
        ),
        // publish / subscribe
        (
            "publish support",
            requests::publish(a(), "topic://support/urgent", 10),
            Allow("support-topics"),
        ),
        (
            "publish other",
            requests::publish(a(), "billing/x", 10),
            Deny("no rule allows action publish on Topic::\"billing/x\""),
        ),
        (
            "page without clearance",
            requests::publish(a(), "oncall/page", 10),
            Deny("no-oncall-page-by-bots"),
        ),
        (
            "agent subscribe support",
            requests::subscribe(a(), "support/x"),
            Allow("agents-subscribe-support"),
        ),
        (
            "agent subscribe other",
            requests::subscribe(a(), "hr/x"),
            Deny("no rule allows action subscribe"),
        ),
        (
            "client subscribe",
            requests::subscribe(requests::client_principal("ui", ["viewer"]), "hr/x"),
            Allow("runtime-clients-subscribe"),
        ),
        // memory / knowledge
        (
            "own memory",
            requests::data_access(
                a(),
                DataAccess::MemoryWrite {
                    store: "bot".into(),
                },
                vec![],
            ),
            Allow("own-memory"),
        ),
        (
            "other memory",
            requests::data_access(
                a(),
                DataAccess::MemoryRead {
                    store: "alice".into(),
                },
                vec![],
            ),
            Deny("no rule allows action memory_read on MemoryStore::\"alice\""),
        ),
        (
            "kb read",
            requests::data_access(
                a(),
                DataAccess::KnowledgeRead {
                    dataset: "docs".into(),
                },
                vec![],
            ),
            Allow("kb-read"),
        ),
        (
            "kb write",
            requests::data_access(
                a(),
                DataAccess::KnowledgeWrite {
                    dataset: "docs".into(),
                },
                vec![],
            ),
            Deny("no rule allows action knowledge_add (knowledge_write)"),
        ),
        // files (file_access group)
        (
            "project read",
            requests::data_access(
                a(),
                DataAccess::FileRead {
                    path: "/srv/project/a.txt".into(),
                    in_project: true,
                },
                vec![],
            ),
            Allow("project-files"),
        ),
        (
            "project write",
            requests::data_access(
                a(),
                DataAccess::FileWrite {
                    path: "/srv/project/b.txt".into(),
                    in_project: true,
                },
                vec![],
            ),
            Allow("project-files"),
        ),
        (
            "outside project",
            requests::data_access(
                a(),
                DataAccess::FileRead {
                    path: "/srv/project/../etc".into(),
                    in_project: false,
                },
                vec![],
            ),
            Deny("files-stay-in-project"),
        ),
        // secrets
        (
            "billing secret",
            requests::data_access(
                agent("billing"),
                DataAccess::SecretRead {
                    path: "vault://db/password".into(),
                },
                vec![],
            ),
            Cond(
                vec![Condition::HumanApproval {
                    expiry: None,
                    scope: ApprovalScope::SingleAction,
                    require_reason: false,
                    role: Some("security".into()),
                }],
                "db-secret",
            ),
        ),
        (
            "other secret",
            requests::data_access(
                a(),
                DataAccess::SecretRead {
                    path: "db/password".into(),
                },
                vec![],
            ),
            Deny("no rule allows action secret (secret_read)"),
        ),
        // agents
        (
            "delegate",
            requests::invoke_agent(a(), "delegate", &target("severity_classifier")),
            Allow("delegate-classifier"),
        ),
        (
            "delegate other",
            requests::invoke_agent(a(), "delegate", &target("x")),
            Deny("no rule allows action delegate (invoke_agent)"),
        ),
        (
            "spawn helper",
            requests::spawn_agent(a(), "helper_1"),
            Allow("spawn-helpers"),
        ),
        (
            "spawn other",
            requests::spawn_agent(a(), "root"),
            Deny("no rule allows action spawn_agent"),
        ),
        (
            "approval",
            requests::request_approval(a()),
            Allow("approvals"),
        ),
        (
            "dm ops",
            requests::send_message(a(), &target("ops"), 5),
            Cond(
                vec![Condition::RateLimit {
                    max: 10,
                    period: RatePeriod::Minute,
                    per: Some("recipient".into()),
                }],
                "dm-ops",
            ),
        ),
        (
            "dm other",
            requests::send_message(a(), &target("ceo"), 5),
            Deny("no rule allows action send_to (message_send)"),
        ),
        // runtime operations
        (
            "client creates",
            requests::create_agent(
                requests::client_principal("ci", ["deploy"]),
                &target("greeter"),
            ),
            Allow("runtime-clients-manage-agents"),
        ),
        (
            "operator configures",
            requests::configure_agent(
                requests::operator_principal("alice", ["admin"]),
                &target("greeter"),
                "resume",
            ),
            Allow("runtime-clients-manage-agents"),
        ),
        (
            "agent runs agent",
            requests::execute_agent(a(), &target("severity_classifier"), "delegate"),
            Allow("runtime-agents-run-agents"),
        ),
        (
            "agent may not configure",
            requests::configure_agent(a(), &target("greeter"), "update"),
            Deny("no rule allows action configure_agent on Agent::\"greeter\""),
        ),
        (
            "suspended target",
            requests::execute_agent(
                requests::client_principal("ci", Vec::<String>::new()),
                &AgentTarget {
                    suspended: true,
                    ..target("x")
                },
                "api",
            ),
            Deny("suspended-agents-do-not-run"),
        ),
        (
            "allocate",
            requests::allocate_resource(a(), ResourceKind::Memory, 64 << 20),
            Allow("runtime-allocate-resources"),
        ),
        (
            "allocate too much",
            requests::allocate_resource(a(), ResourceKind::Memory, 2 << 30),
            Deny("at most 1 GiB per allocation"),
        ),
        (
            "allocate cpu",
            requests::allocate_resource(a(), ResourceKind::Cpu, 64_000),
            Allow("runtime-allocate-resources"),
        ),
    ];
    for (label, req, want) in cases {
        check(&e, label, req, want);
    }
}

#[test]
fn principal_attributes_become_tags_and_suspension_stops_everything() {
    let e = engine();
    let mut p = agent("pager_bot");
    p.attributes.insert("clearance".into(), json!("pager"));
    let d = e.decide(&requests::publish(p.clone(), "oncall/page", 1), None);
    // Not forbidden any more, but no permit covers oncall/page: default deny.
    assert!(d.reason().contains("no rule allows"), "{d:?}");
    p.attributes.insert("suspended".into(), json!(true));
    let d = e.decide(
        &requests::invoke_tool(p, ToolSubject::named("search"), vec![]),
        None,
    );
    assert!(d.reason().contains("the agent is suspended"), "{d:?}");
}

#[test]
fn deny_overrides_between_dsl_and_cedar() {
    let e = engine();
    let a = agent("bot");
    let search = requests::invoke_tool(a.clone(), ToolSubject::named("search"), vec![]);
    let web = requests::network_access(a.clone(), "https://example.org/", "GET");
    let post = requests::network_access(a.clone(), "https://api.example.com/", "POST");

    // DSL deny beats a Cedar permit.
    let rules = Rules {
        deny: vec!["invoke_tool"],
        ..Rules::default()
    };
    let d = e.decide(&search, Some(&rules));
    assert_eq!(
        d,
        Decision::Deny {
            reasons: vec!["denied by deny rule `invoke_tool` of policy test at t.symbi:3:9".into()]
        }
    );

    // Cedar forbid beats a DSL allow.
    let rules = Rules {
        allow: vec!["network_access"],
        ..Rules::default()
    };
    let d = e.decide(&post, Some(&rules));
    assert!(
        matches!(&d, Decision::Deny { reasons } if reasons[0].contains("no-posts")),
        "{d:?}"
    );

    // A DSL allow grants what Cedar does not cover (default deny otherwise) and the DSL
    // require conditions come with it.
    let rules = Rules {
        allow: vec!["http.get"],
        require: vec![Condition::RateLimit {
            max: 30,
            period: RatePeriod::Minute,
            per: None,
        }],
        ..Rules::default()
    };
    let d = e.decide(&web, Some(&rules));
    assert_eq!(
        d,
        Decision::AllowWithConditions {
            conditions: vec![Condition::RateLimit {
                max: 30,
                period: RatePeriod::Minute,
                per: None
            }],
            reasons: vec!["allowed by allow rule `http.get` of policy test at t.symbi:2:9".into()],
        }
    );
    assert!(!e.decide(&web, None).is_allowed());

    // Both allow: conditions are the union (DSL first), duplicates removed.
    let api = requests::network_access(a.clone(), "https://api.example.com/", "GET");
    let rules = Rules {
        allow: vec!["network_access"],
        require: vec![
            Condition::TlsVerification { verify: true },
            Condition::InputSanitization,
        ],
        ..Rules::default()
    };
    let d = e.decide(&api, Some(&rules));
    assert_eq!(
        d.conditions(),
        &[
            Condition::TlsVerification { verify: true },
            Condition::InputSanitization,
            Condition::MaxDataSize { bytes: 1 << 20 }
        ]
    );
    assert_eq!(
        d.reason().matches("; ").count(),
        1,
        "one DSL reason and one Cedar reason: {d:?}"
    );

    // `file_access` in a DSL deny covers writes; Cedar's permit does not matter.
    let rules = Rules {
        deny: vec!["file_access"],
        ..Rules::default()
    };
    let w = requests::data_access(
        a.clone(),
        DataAccess::FileWrite {
            path: "/srv/project/x".into(),
            in_project: true,
        },
        vec![],
    );
    assert!(e.decide(&w, None).is_allowed());
    assert!(!e.decide(&w, Some(&rules)).is_allowed());

    // Require conditions never allow on their own.
    let rules = Rules {
        require: vec![Condition::InputSanitization],
        ..Rules::default()
    };
    assert!(!e.decide(&web, Some(&rules)).is_allowed());
}

#[test]
fn requests_that_do_not_fit_fail_closed_even_when_dsl_allows() {
    let e = engine();
    let mut req = requests::network_access(agent("bot"), "https://api.example.com/", "GET");
    req.subject = Subject::named(SubjectKind::Topic, "x");
    let rules = Rules {
        allow: vec!["network_access"],
        ..Rules::default()
    };
    let d = e.decide(&req, Some(&rules));
    assert!(
        d.reason().contains("does not fit the policy model"),
        "{d:?}"
    );
    // A declared attribute with a value of the wrong type is not guessed at.
    let mut req = requests::allocate_resource(agent("bot"), ResourceKind::Memory, 1);
    req.subject.attrs.insert("amount".into(), json!("a lot"));
    let d = e.decide(&req, Some(&rules));
    assert!(!d.is_allowed() && d.reason().contains("amount"), "{d:?}");
}

#[test]
fn erroring_forbid_fails_closed() {
    // Integer overflow is an evaluation error that strict validation cannot rule out.
    let text = r#"
        @id("allocations")
        permit(principal, action == Action::"allocate_resource", resource);
        @id("scaled-cap")
        forbid(principal, action == Action::"allocate_resource", resource)
        when { resource has amount && resource.amount * 10000000000 > 50000000000000000 };
    "#;
    let e = PolicyEngine::from_sources(
        vec![PolicySource::new("r.cedar", text)],
        EngineOptions::enforcing(),
    )
    .unwrap();
    assert!(
        e.decide(
            &requests::allocate_resource(agent("bot"), ResourceKind::Memory, 1),
            None
        )
        .is_allowed()
    );
    let d = e.decide(
        &requests::allocate_resource(agent("bot"), ResourceKind::Memory, 1 << 40),
        None,
    );
    assert!(
        matches!(&d, Decision::Deny { reasons } if reasons[0].contains("\"scaled-cap\"") && reasons[0].contains("fail closed")),
        "{d:?}"
    );
}

#[test]
fn unenforced_mode_reports_but_allows() {
    let e = PolicyEngine::from_sources(
        defaults::default_sources(),
        EngineOptions {
            enforce: false,
            sink: None,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    assert!(!e.enforcing());
    let d = e.decide(
        &requests::network_access(agent("bot"), "https://example.org/", "GET"),
        None,
    );
    match d {
        Decision::Allow { reasons } => {
            assert_eq!(reasons.len(), 1);
            assert!(
                reasons[0].starts_with(
                    "not enforced ([security] enforce_policies = false); would deny: no rule allows"
                ),
                "{reasons:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Allowing decisions are unchanged.
    let d = e.decide(
        &requests::create_agent(
            requests::client_principal("ci", ["x"]),
            &AgentTarget::named("a"),
        ),
        None,
    );
    assert!(
        matches!(d, Decision::Allow { reasons } if reasons[0].contains("runtime-clients-manage-agents"))
    );
}

#[test]
fn batch_matches_single_decisions() {
    let e = engine();
    let a = agent("bot");
    let reqs = vec![
        requests::invoke_tool(a.clone(), ToolSubject::named("search"), vec![]),
        requests::use_llm(a.clone(), "gpt-4o", "openai"),
        requests::network_access(a.clone(), "https://example.org/", "GET"),
        requests::publish(a.clone(), "oncall/page", 1),
    ];
    let rules = Rules {
        allow: vec!["http.get"],
        ..Rules::default()
    };
    let batch = e.decide_batch(&reqs, Some(&rules));
    let single: Vec<Decision> = reqs.iter().map(|r| e.decide(r, Some(&rules))).collect();
    assert_eq!(batch, single);
    assert_eq!(
        batch.iter().map(|d| d.outcome()).collect::<Vec<_>>(),
        ["Allow", "AllowWithConditions", "Allow", "Deny"]
    );
}

#[test]
fn context_reaches_cedar() {
    let text = r#"
        @id("approved-only")
        permit(principal is Agent, action == Action::"invoke_tool", resource)
        when { context.has_human_approval && context.trigger == "api" && context.action_name == "deploy" && context.args_size > 2 };
    "#;
    let e = PolicyEngine::from_sources(
        vec![PolicySource::new("c.cedar", text)],
        EngineOptions::enforcing(),
    )
    .unwrap();
    let base = requests::invoke_tool(
        agent("bot"),
        ToolSubject::named("deploy"),
        vec![json!({"env": "prod"})],
    );
    assert!(!e.decide(&base, None).is_allowed());
    let ctx = requests::ExecutionContext {
        trigger: Some("api".into()),
        has_human_approval: true,
        ..Default::default()
    };
    assert!(
        e.decide(&requests::in_execution(base.clone(), &ctx), None)
            .is_allowed()
    );
    // Odd context values are coerced or rejected, never a panic.
    let mut odd = requests::in_execution(base, &ctx);
    odd.context
        .insert("session".into(), json!({"nested": [1, 2]}));
    let d = e.decide(&odd, None);
    assert!(!d.is_allowed() && d.reason().contains("session"), "{d:?}");
}

/// The per-action, per-principal, per-resource index never changes a decision: the engine
/// agrees with Cedar evaluating the whole, unindexed set on every request.
#[test]
fn index_agrees_with_the_whole_set() {
    let mut text = String::new();
    for i in 0..120 {
        let a = i % 7;
        text.push_str(&match i % 6 {
            0 => format!("permit(principal == Agent::\"a{a}\", action == Action::\"invoke_tool\", resource == Tool::\"t{}\");\n", i % 5),
            1 => format!("permit(principal == Agent::\"a{a}\", action, resource);\n"),
            2 => format!("forbid(principal, action == Action::\"invoke_tool\", resource == Tool::\"t{}\") when {{ principal.name == \"a{a}\" }};\n", i % 5),
            3 => format!("permit(principal is Agent, action in [Action::\"publish\", Action::\"subscribe\"], resource == Topic::\"x{}\");\n", i % 4),
            4 => format!("forbid(principal == Agent::\"a{a}\", action in Action::\"file_access\", resource);\n"),
            _ => format!("permit(principal, action == Action::\"invoke_tool\", resource) when {{ resource.name == \"t{}\" }};\n", i % 9),
        });
    }
    let e = PolicyEngine::from_sources(
        vec![PolicySource::new("gen.cedar", text)],
        EngineOptions::enforcing(),
    )
    .unwrap();
    let whole = e.snapshot().policy_set().clone();
    let auth = cedar_policy::Authorizer::new();
    let mut checked = 0;
    for a in 0..8 {
        let p = agent(&format!("a{a}"));
        let reqs = (0..10).flat_map(|t| {
            [
                requests::invoke_tool(p.clone(), ToolSubject::named(format!("t{t}")), vec![]),
                requests::publish(p.clone(), &format!("x{}", t % 5), 1),
                requests::subscribe(p.clone(), &format!("x{}", t % 5)),
                requests::data_access(
                    p.clone(),
                    DataAccess::FileRead {
                        path: format!("/f{t}"),
                        in_project: true,
                    },
                    vec![],
                ),
                requests::use_llm(p.clone(), "m", "p"),
            ]
        });
        for r in reqs {
            let (cr, ents) = symbi_policy::model::to_cedar(&r).unwrap();
            let want =
                auth.is_authorized(&cr, &whole, &ents).decision() == cedar_policy::Decision::Allow;
            assert_eq!(
                e.decide(&r, None).is_allowed(),
                want,
                "{} {} {}",
                r.principal.name,
                r.category,
                r.subject.name
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 400);
}
