//! Every example of GRAMMAR §7 executed with its documented inputs and exact results.

mod semantics_support;

use semantics_support::*;
use serde_json::json;
use std::sync::Arc;

fn host_for(file: &str) -> TestHost {
    TestHost::new(load(file, &example(file)))
}

#[test]
fn ex01_greeter() {
    let h = Arc::new(host_for("01-greeter.symbi"));
    let o = run_with(h.clone(), "greeter", json!({"name": " Ada ", "lang": "FR"})).unwrap();
    assert_eq!(text(&o), r#"{"text":"Bonjour, Ada!","length":13}"#);
    let o = run_with(h.clone(), "greeter", json!({"name": "Bo"})).unwrap();
    assert_eq!(text(&o), r#"{"text":"Hello, Bo!","length":10}"#);
    let f = run_with(h.clone(), "greeter", json!({"lang": "fr"})).unwrap_err();
    assert_eq!(f.kind.as_str(), "InputError");
    assert!(h.names().is_empty(), "a pure agent performs no action");
}

#[test]
fn ex02_scores() {
    let h = Arc::new(host_for("02-scores.symbi"));
    let o = run_with(
        h.clone(),
        "score_report",
        json!({"scores": [35, 80, 64], "pass_mark": 50}),
    )
    .unwrap();
    assert_eq!(
        text(&o),
        r#"{"count":3,"passed":2,"mean":59.666666666666664,"best":80,"buckets":{"low":1,"mid":1,"high":1},"labels":["fail","pass","pass"]}"#
    );
    let o = run_with(
        h.clone(),
        "score_report",
        json!({"scores": [], "pass_mark": 50}),
    )
    .unwrap();
    assert_eq!(o.result["mean"], json!(0.0));
    assert!(symbi_dsl::value::json_to_string(&o.result["mean"], false) == "0.0");
    assert!(o.result["best"].is_null());
    let f = run_with(
        h,
        "score_report",
        json!({"scores": [1, "x"], "pass_mark": 50}),
    )
    .unwrap_err();
    assert_eq!(f.kind.as_str(), "InputError");
}

#[test]
fn ex03_guarded_fetch() {
    let h = Arc::new(host_for("03-guarded-fetch.symbi"));
    let o = run_with(
        h.clone(),
        "page_probe",
        json!({"url": "https://example.org/", "allowed_hosts": ["example.org"]}),
    )
    .unwrap();
    assert_eq!(
        text(&o),
        r#"{"url":"https://example.org/","status":200,"ok":true}"#
    );
    assert_eq!(
        h.rec.lock().unwrap().decisions,
        vec![("http.get".to_string(), "AllowWithConditions".to_string())]
    );
    let h = Arc::new(host_for("03-guarded-fetch.symbi"));
    let o = run_with(
        h.clone(),
        "page_probe",
        json!({"url": "https://example.org/", "allowed_hosts": []}),
    )
    .unwrap();
    assert_eq!(
        text(&o),
        r#"{"url":"https://example.org/","status":0,"ok":false,"blocked":true}"#
    );
    let rec = h.rec.lock().unwrap();
    assert_eq!(
        rec.decisions,
        vec![("http.get".to_string(), "Deny".to_string())]
    );
    assert_eq!(rec.logs.len(), 1);
    assert_eq!(rec.logs[0].0, symbi_dsl::host::LogLevel::Warning);
    assert!(
        rec.logs[0]
            .1
            .starts_with("blocked: no rule allows action http.get"),
        "{}",
        rec.logs[0].1
    );
}

#[test]
fn ex04_order_validator() {
    let h = Arc::new(host_for("04-order-validator.symbi"));
    let o = run_with(
        h.clone(),
        "order_validator",
        json!({"items": [{"sku": "A", "qty": 2, "unit_price": 1.25}], "coupon": "HALF10"}),
    )
    .unwrap();
    assert_eq!(text(&o), r#"{"valid":true,"total":1.25}"#);
    let o = run_with(
        h.clone(),
        "order_validator",
        json!({"items": [{"sku": "A", "qty": 0, "unit_price": 1.25}]}),
    )
    .unwrap();
    assert_eq!(
        text(&o),
        r#"{"valid":false,"problems":["quantity must be positive for A"]}"#
    );
    let f = run_with(
        h,
        "order_validator",
        json!({"items": [{"sku": "A", "qty": 2}]}),
    )
    .unwrap_err();
    assert_eq!(f.kind.as_str(), "InputError");
    assert!(f.message.contains("unit_price"), "{}", f.message);
}

#[test]
fn ex05_ticket_intake() {
    let h = Arc::new(host_for("05-ticket-intake.symbi"));
    let body = json!({"event": "ticket.created", "subject": "Login outage", "priority": "p2", "customer": "c-9"});
    let o = run_with(h.clone(), "ticket_intake", body).unwrap();
    assert_eq!(
        text(&o),
        r#"{"stored":"entry-1","urgent":true,"similar":0}"#
    );
    assert_eq!(h.names(), vec!["memory_search", "memory_write", "publish"]);
    let prog = load("05-ticket-intake.symbi", &example("05-ticket-intake.symbi"));
    let a = prog.agent("ticket_intake").unwrap();
    assert!(a.audit_settings().all_actions_full);
    assert_eq!(prog.memories()[0].path, "data/tickets");
    assert!((prog.memories()[0].vector_weight - 0.4).abs() < 1e-9);
    assert_eq!(prog.webhooks()[0].path, "/hooks/helpdesk");
    assert_eq!(prog.webhooks()[0].agent, "ticket_intake");
    assert_eq!(prog.metadata()["version"], json!("0.3.0"));
}

#[test]
fn ex06_nightly_counter() {
    let h = Arc::new(host_for("06-nightly-counter.symbi"));
    for n in 1..=3 {
        let o = run_with(h.clone(), "run_counter", json!({})).unwrap();
        assert_eq!(o.result, json!({"runs": n, "started_by": "manual"}));
    }
    let prog = h.program.clone();
    let ctx = symbi_dsl::ExecutionContext {
        trigger: Some(
            json!({"kind": "schedule", "name": "nightly_rollup", "scheduled_at": "2027-01-01T01:30:00Z"}),
        ),
        ..Default::default()
    };
    let hh: Arc<dyn symbi_dsl::ActionHost> = h.clone();
    let o = block_on(symbi_dsl::execute(
        prog.clone(),
        "run_counter",
        json!({}),
        ctx,
        hh,
    ))
    .unwrap();
    assert_eq!(o.result, json!({"runs": 4, "started_by": "schedule"}));
    assert!(prog.agent("run_counter").unwrap().is_persistent());
    let s = &prog.schedules()[0];
    assert_eq!(s.timezone, "Europe/Berlin");
    assert!(s.cron().is_some());
    let once = &prog.schedules()[1];
    assert!(once.one_shot);
    assert_eq!(once.at.unwrap().to_rfc3339(), "2027-01-15T09:00:00+00:00");
}

#[test]
fn ex07_triage_pair() {
    let h = Arc::new(host_for("07-triage-pair.symbi"));
    let o = run_with(
        h.clone(),
        "triage_router",
        json!({"message": "API down in eu-1", "reporter": "kim"}),
    )
    .unwrap();
    assert_eq!(o.result, json!({"severity": "critical", "paged": true}));
    assert_eq!(h.names(), vec!["delegate", "publish"]);
    let h = Arc::new(host_for("07-triage-pair.symbi"));
    let o = run_with(
        h.clone(),
        "triage_router",
        json!({"message": "page loads are slow", "reporter": "kim"}),
    )
    .unwrap();
    assert_eq!(o.result, json!({"severity": "major", "paged": false}));
    assert_eq!(h.names(), vec!["delegate"]);
    // The channel policy over invoke(...).
    let prog = h.program.clone();
    let (spec, rules) = prog.channels().next().unwrap();
    assert!(
        !spec.supported,
        "no Slack adapter: W225, channel not opened"
    );
    let ok = rules.evaluate_in(
        &prog,
        &symbi_dsl::rules::ChannelRuleSet::invoke_request(
            symbi_types::Principal::agent("u"),
            "triage_router",
        ),
    );
    assert_eq!(ok.allowed_by.len(), 1);
    let no = rules.evaluate_in(
        &prog,
        &symbi_dsl::rules::ChannelRuleSet::invoke_request(
            symbi_types::Principal::agent("u"),
            "severity_classifier",
        ),
    );
    assert!(
        no.denied_by
            .unwrap()
            .starts_with("denied by deny rule of policy chat_access at 07-triage-pair.symbi:")
    );
}

#[test]
fn ex08_approval_llm() {
    let src = example("08-approval-llm.symbi");
    let parsed = symbi_dsl::parse(&src, "08-approval-llm.symbi");
    let diags = symbi_dsl::check(&parsed, &symbi_dsl::CheckOptions::default());
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let h = Arc::new(host_for("08-approval-llm.symbi"));
    let o = run_with(
        h.clone(),
        "release_notes",
        json!({"changes": ["a", "b"], "audience": "internal"}),
    )
    .unwrap();
    assert_eq!(
        o.result,
        json!({"audience": "internal", "notes": "- notes", "items": 2})
    );
    assert_eq!(h.rec.lock().unwrap().decisions[0].1, "Allow");
    let mut refusing = host_for("08-approval-llm.symbi");
    refusing.approve = false;
    let f = run_with(
        Arc::new(refusing),
        "release_notes",
        json!({"changes": ["a"], "audience": "public"}),
    )
    .unwrap_err();
    assert_eq!(f.kind.as_str(), "ApprovalDenied");
    assert!(f.is_policy_violation());
    let h = Arc::new(host_for("08-approval-llm.symbi"));
    let o = run_with(
        h.clone(),
        "release_notes",
        json!({"changes": ["a"], "audience": "public"}),
    )
    .unwrap();
    assert_eq!(o.result["items"], json!(1));
    assert_eq!(h.rec.lock().unwrap().decisions[0].1, "AllowWithConditions");
    let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
    let f = run_with(
        Arc::new(host_for("08-approval-llm.symbi")),
        "release_notes",
        json!({"changes": many, "audience": "internal"}),
    )
    .unwrap_err();
    assert_eq!(f.kind.as_str(), "PolicyDenied");
}

#[test]
fn ex09_extensions() {
    let h = Arc::new(host_for("09-extensions.symbi"));
    let o = run_with(
        h.clone(),
        "backoff_plan",
        json!({"attempts": 5, "base_delay_ms": 100}),
    )
    .unwrap();
    assert_eq!(o.result, json!([100, 900, 2500]));
    let f = run_with(
        h,
        "backoff_plan",
        json!({"attempts": 10_000_000, "base_delay_ms": 100}),
    )
    .unwrap_err();
    assert!(
        matches!(f.kind.as_str(), "BudgetExhausted" | "Timeout"),
        "{f}"
    );
    let src = example("09-extensions.symbi");
    let parsed = symbi_dsl::parse(&src, "09-extensions.symbi");
    let opts = symbi_dsl::CheckOptions {
        compat: true,
        ..Default::default()
    };
    let w230 = symbi_dsl::check(&parsed, &opts)
        .iter()
        .filter(|d| d.code == "W230")
        .count();
    // block comment, while, break, continue, two typed lets, 500ms, 8MB
    assert_eq!(w230, 8);
}

#[test]
fn every_example_checks_clean_in_production_mode() {
    for f in [
        "01-greeter.symbi",
        "02-scores.symbi",
        "03-guarded-fetch.symbi",
        "04-order-validator.symbi",
        "05-ticket-intake.symbi",
        "06-nightly-counter.symbi",
        "07-triage-pair.symbi",
        "08-approval-llm.symbi",
        "09-extensions.symbi",
    ] {
        let src = example(f);
        let parsed = symbi_dsl::parse(&src, f);
        let diags = symbi_dsl::check(&parsed, &symbi_dsl::CheckOptions::default());
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| parsed.source.render(d))
            .collect();
        assert!(errors.is_empty(), "{f}:\n{}", errors.join(""));
    }
}
