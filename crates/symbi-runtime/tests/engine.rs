//! The action path end to end, in process: DSL program → engine → gateway → policy decision
//! (the real Cedar engine with the shipped defaults plus the agent's DSL rules) → hard limits
//! and conditions → executor → signed audit log. Nothing here is mocked: the system is
//! built by `assemble()` from a configuration, as `symbi up` and `symbi run` build it.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use symbi_audit::reader::{LogReader, Query};
use symbi_runtime::engine::assembly::{Assembled, AssemblyOptions, Extensions, assemble};
use symbi_runtime::engine::{ExecuteOptions, ExecutionError, ExecutionReport};

async fn system(data: &Path) -> Assembled {
    let mut cfg = symbi_config::Config::default();
    cfg.runtime.data_dir = Some(data.to_path_buf());
    assemble(
        Arc::new(cfg),
        data.to_path_buf(),
        AssemblyOptions {
            bus: true,
            watch_policies: false,
        },
        Extensions::default(),
    )
    .await
    .expect("assemble")
}

/// Loads `source` and runs its only agent with `input`.
async fn run(
    sys: &Assembled,
    source: &str,
    input: Value,
) -> Result<ExecutionReport, ExecutionError> {
    let agents = sys
        .engine
        .load_source("test.symbi", source)
        .await
        .expect("program loads");
    let (_, id) = agents.into_iter().next().expect("one agent");
    sys.engine.run(id, input, ExecuteOptions::default()).await
}

/// Every audit event (sealed log), as `(event_type, details)`.
async fn trail(sys: Assembled, data: &Path) -> Vec<(String, Value)> {
    sys.shutdown(Duration::from_secs(5)).await;
    let p = symbi_crypto::provider("ring").unwrap();
    let reader = LogReader::open(&data.join("audit"), p).expect("audit log opens");
    reader
        .query(&Query::default())
        .unwrap()
        .into_iter()
        .map(|e| (e.event.event_type.clone(), e.event.details.clone()))
        .collect()
}

fn decisions<'a>(trail: &'a [(String, Value)], action: &str) -> Vec<&'a Value> {
    trail
        .iter()
        .filter(|(_, d)| d["phase"] == "decision" && d["action"] == action)
        .map(|(_, d)| d)
        .collect()
}

const FILES: &str = r#"
agent notes(text: String) -> Map<String, Any> {
    capabilities = ["file_access"]
    policy p {
        allow: write_file(any)
        allow: read_file(any)
        require: { max_data_size: "64B" }
    }
    with timeout = 5s {
        write_file("notes/a.txt", text);
        return { back: read_file("notes/a.txt") };
    }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_file_actions_run_confined_and_are_audited_with_their_decisions() {
    let d = tempfile::tempdir().unwrap();
    let sys = system(d.path()).await;
    let r = run(&sys, FILES, json!({"text": "hello"}))
        .await
        .expect("runs");
    assert_eq!(r.result, json!({"back": "hello"}));
    // Confined to the agent's workspace under the data directory.
    let written = d.path().join("workspaces/notes/notes/a.txt");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "hello");

    // max_data_size: a larger argument is denied before anything is written.
    let big = "x".repeat(200);
    let e = run(&sys, FILES, json!({"text": big})).await.unwrap_err();
    assert_eq!(e.kind, "PolicyDenied", "{e:?}");
    assert!(e.message.contains("max_data_size"), "{}", e.message);
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        "hello",
        "nothing half-written"
    );

    let t = trail(sys, d.path()).await;
    let writes = decisions(&t, "write_file");
    assert_eq!(writes.len(), 2, "{writes:#?}");
    assert!(
        writes.iter().all(|w| w["decision"] != "Deny"),
        "the rule allowed both; the condition refused one"
    );
    let outcomes: Vec<&Value> = t
        .iter()
        .filter(|(_, d)| d["phase"] == "outcome" && d["action"] == "write_file")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| o["outcome"] == "ok").count(),
        1,
        "{outcomes:#?}"
    );
    // The content itself is not in the trail, only its digest.
    assert!(!t.iter().any(|(_, d)| d.to_string().contains(&big)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_allow_rule_the_default_is_deny_and_nothing_happens() {
    let d = tempfile::tempdir().unwrap();
    let sys = system(d.path()).await;
    let src = r#"
agent writer() -> String {
    capabilities = ["file_access"]
    with timeout = 5s {
        write_file("x.txt", "data");
        return "wrote";
    }
}
"#;
    let e = run(&sys, src, json!({})).await.unwrap_err();
    assert_eq!(e.kind, "PolicyDenied");
    assert!(!d.path().join("workspaces/writer/x.txt").exists());
    let t = trail(sys, d.path()).await;
    let w = decisions(&t, "write_file");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0]["decision"], "Deny");
    // An uncaught denial is a policy violation: Running → Suspended.
    assert!(
        t.iter().any(|(ty, d)| ty == "agent_state"
            && d["to"] == "Suspended"
            && d["cause"] == "policy_violation"),
        "{t:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_policy_deny_all_overrides_an_allow_rule() {
    let d = tempfile::tempdir().unwrap();
    let sys = system(d.path()).await;
    let src = r#"
agent fetcher() -> Map<String, Any> {
    capabilities = ["network_access"]
    policy p { allow: http.get(any) }
    with timeout = 5s, network_policy = "deny_all" {
        try {
            let r = http.get("http://127.0.0.1:9/");
            return { status: r.status };
        } catch (PolicyDenied e) {
            return { denied: e.message };
        }
    }
}
"#;
    let r = run(&sys, src, json!({})).await.expect("runs");
    assert!(
        r.result["denied"].as_str().unwrap().contains("deny_all"),
        "{}",
        r.result
    );
    let t = trail(sys, d.path()).await;
    assert_eq!(decisions(&t, "http.get")[0]["decision"], "Deny");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_from_policy_deny_the_excess_calls() {
    let d = tempfile::tempdir().unwrap();
    let sys = system(d.path()).await;
    let src = r#"
agent chatty() -> Map<String, Any> {
    capabilities = ["file_access"]
    policy p {
        allow: list_dir(any)
        require: { rate_limiting: "2/minute" }
    }
    with timeout = 5s {
        let ok = 0;
        let denied = 0;
        for i in [1, 2, 3, 4] {
            try {
                list_dir(".");
                ok += 1;
            } catch (PolicyDenied e) {
                denied += 1;
            }
        }
        return { ok: ok, denied: denied };
    }
}
"#;
    std::fs::create_dir_all(d.path().join("workspaces/chatty")).unwrap();
    let r = run(&sys, src, json!({})).await.expect("runs");
    assert_eq!(r.result, json!({"ok": 2, "denied": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_approval_holds_the_action_until_an_operator_decides() {
    let d = tempfile::tempdir().unwrap();
    let sys = system(d.path()).await;
    let src = r#"
agent careful(text: String) -> String {
    capabilities = ["file_access"]
    policy p {
        allow: write_file(any)
        require: { human_approval: true, approval_expiry: "1m" }
    }
    with timeout = 30s {
        write_file("out.txt", text);
        return "written";
    }
}
"#;
    let agents = sys.engine.load_source("test.symbi", src).await.unwrap();
    let id = agents[0].1;
    let approvals = sys.engine.gateway().approvals().clone();

    // Approved: the action runs after the operator's decision.
    let h = sys
        .engine
        .execute(id, json!({"text": "yes"}), ExecuteOptions::default())
        .await
        .unwrap();
    let hold = wait_for_hold(&approvals).await;
    assert!(
        !d.path().join("workspaces/careful/out.txt").exists(),
        "held, not run"
    );
    approvals
        .approve(&hold, "ops@example", &[], Some("looks fine".into()))
        .await
        .unwrap();
    assert_eq!(h.wait().await.expect("approved").result, json!("written"));
    assert_eq!(
        std::fs::read_to_string(d.path().join("workspaces/careful/out.txt")).unwrap(),
        "yes"
    );

    // Denied: ApprovalDenied, nothing written.
    let h = sys
        .engine
        .execute(id, json!({"text": "no"}), ExecuteOptions::default())
        .await
        .unwrap();
    let hold = wait_for_hold(&approvals).await;
    approvals
        .deny(&hold, "ops@example", &[], Some("not today".into()))
        .await
        .unwrap();
    let e = h.wait().await.unwrap_err();
    assert_eq!(e.kind, "ApprovalDenied", "{e:?}");
    assert_eq!(
        std::fs::read_to_string(d.path().join("workspaces/careful/out.txt")).unwrap(),
        "yes"
    );
    let t = trail(sys, d.path()).await;
    assert!(
        t.iter().any(|(_, d)| d.to_string().contains("looks fine")),
        "approver's reason is audited"
    );
}

async fn wait_for_hold(approvals: &symbi_runtime::gateway::approvals::ApprovalManager) -> String {
    for _ in 0..500 {
        if let Some(h) = approvals.pending().into_iter().next() {
            return h.id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no hold appeared");
}

/// An ephemeral agent's `remember` state is scoped to its execution and released when the
/// execution ends: the next run does not see it, and nothing is kept for the finished one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_state_is_released_when_the_execution_ends() {
    let d = tempfile::tempdir().unwrap();
    let sys = system(d.path()).await;
    let src = r#"
agent scratch(v: int) -> Map<String, Any> {
    capabilities = ["memory_read", "memory_write"]
    policy own {
        allow: ["memory_read", "memory_write"]
    }
    with memory = "ephemeral", timeout = 5s {
        let before = recall("k");
        remember("k", v);
        return { before: before, now: recall("k") };
    }
}
"#;
    let agents = sys.engine.load_source("scratch.symbi", src).await.unwrap();
    let id = agents[0].1;
    let first = sys
        .engine
        .run(id, json!({"v": 1}), ExecuteOptions::default())
        .await
        .unwrap();
    assert_eq!(first.result, json!({"before": null, "now": 1}));
    let scope = symbi_context::StateScope::Execution {
        agent: "scratch".into(),
        execution: first.execution_id,
    };
    assert!(
        sys.context
            .context()
            .state()
            .snapshot(&scope)
            .unwrap()
            .is_empty(),
        "state kept after the execution ended"
    );
    let second = sys
        .engine
        .run(id, json!({"v": 2}), ExecuteOptions::default())
        .await
        .unwrap();
    assert_eq!(second.result, json!({"before": null, "now": 2}));
    sys.shutdown(Duration::from_secs(5)).await;
}

/// A refused execution is on the audit record when `execute` returns the denial. On a
/// single-threaded runtime nothing else runs before the log is read, so an audit write left
/// to a background task would be missing here.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_execution_is_on_record_when_execute_returns() {
    let d = tempfile::tempdir().unwrap();
    let local = d.path().join("policies/local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(
        local.join("50-freeze.cedar"),
        "@id(\"freeze\")\n@reason(\"frozen\")\nforbid(principal, action == Action::\"execute_agent\", resource);\n",
    )
    .unwrap();
    let sys = system(d.path()).await;
    let agents = sys
        .engine
        .load_source(
            "test.symbi",
            "agent idle() -> Int {\n    with timeout = 1s {\n        return 1;\n    }\n}\n",
        )
        .await
        .expect("program loads");
    let id = agents[0].1;
    let err = sys
        .engine
        .execute(id, json!({}), ExecuteOptions::default())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("frozen"), "{err}");
    let p = symbi_crypto::provider("ring").unwrap();
    let reader = LogReader::open(&d.path().join("audit"), p).expect("audit log opens");
    let refusals = reader
        .query(&Query::default())
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.event.event_type == "policy_decision"
                && e.event.details["enforcement_point"] == "execute_agent"
        })
        .count();
    assert_eq!(
        refusals, 1,
        "the refusal is durable before the caller hears of it"
    );
    sys.shutdown(Duration::from_secs(5)).await;
}
