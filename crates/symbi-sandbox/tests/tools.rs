//! The example tools, tier selection against the real runtimes, fail-closed behaviour,
//! image verification and the concurrency limit. Real Docker, runc and runsc.

mod common;

use common::*;
use serde_json::json;
use symbi_sandbox::risk::TierSource;
use symbi_sandbox::{RunRequest, Sandbox, SandboxError, ToolOutput};
use symbi_types::{Condition, ResourceBudget, SandboxTier};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_runs_in_tier1_by_risk_and_tier2_on_demand() {
    let s = sandbox().await;
    let tools = repo_tools();
    let wc = tools.get("word_count").unwrap();
    let o = s
        .run_tool(
            wc,
            &json!({"text": "one two three\nfour"}),
            &RunRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(o.output, ToolOutput::Text("4\n".into()));
    assert_eq!(o.selection.tier, SandboxTier::Tier1);
    assert_eq!(o.selection.source, TierSource::Risk);
    // The agent's `with sandbox = Tier2` raises it.
    let req = RunRequest {
        agent_min_tier: Some(SandboxTier::Tier2),
        ..RunRequest::default()
    };
    let o = s.run_tool(wc, &json!({"text": "a b"}), &req).await.unwrap();
    assert_eq!(o.output, ToolOutput::Text("2\n".into()));
    assert_eq!(
        (o.selection.tier, o.selection.source),
        (SandboxTier::Tier2, TierSource::Agent)
    );
    // So does a policy condition; a lower demand never lowers it.
    let req = RunRequest {
        agent_min_tier: Some(SandboxTier::Tier1),
        policy_conditions: vec![Condition::MinSandboxTier {
            tier: SandboxTier::Tier2,
        }],
        ..RunRequest::default()
    };
    let o = s.run_tool(wc, &json!({"text": "a"}), &req).await.unwrap();
    assert_eq!(
        (o.selection.tier, o.selection.source),
        (SandboxTier::Tier2, TierSource::Policy)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_records_limits_and_digest() {
    let s = sandbox().await;
    let tools = repo_tools();
    let wc = tools.get("word_count").unwrap();
    let budget = ResourceBudget {
        memory_bytes: 40 << 20,
        cpu_millicores: 250,
        ..ResourceBudget::default()
    };
    for tier in [SandboxTier::Tier1, SandboxTier::Tier2] {
        // The full budget, block-I/O throttle included, is accepted by both runtimes.
        let req = RunRequest {
            budget: Some(budget),
            agent_min_tier: Some(tier),
            ..RunRequest::default()
        };
        let o = s
            .run_tool(wc, &json!({"text": "x"}), &req)
            .await
            .unwrap_or_else(|e| panic!("{tier}: {e}"));
        assert_eq!(o.selection.tier, tier);
        assert_eq!(
            o.limits.disk_io_bps,
            Some(50 << 20),
            "Docker's data root is on a block device here"
        );
    }
    let req = RunRequest {
        budget: Some(budget),
        ..RunRequest::default()
    };
    let o = s.run_tool(wc, &json!({"text": "x"}), &req).await.unwrap();
    assert_eq!(
        o.limits.memory_bytes,
        32 << 20,
        "the tool's 32MB is below the budget"
    );
    assert_eq!(
        o.limits.cpu_millicores, 250,
        "the budget caps the tool's 0.5 core"
    );
    assert_eq!(o.limits.pids, 8);
    assert_eq!(o.limits.output_bytes, 4096);
    use sha2::Digest;
    assert_eq!(o.output_digest, hex::encode(sha2::Sha256::digest(b"1\n")));
    let j = serde_json::to_value(&o).unwrap();
    assert_eq!(j["selection"]["tier"], "Tier1");
    assert_eq!(j["exit_status"]["kind"], "exited");
    assert!(j["image_id"].as_str().unwrap().starts_with("sha256:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_code_goes_to_tier2_by_risk() {
    let s = sandbox().await;
    let tools = repo_tools();
    let awk = tools.get("awk_program").unwrap();
    let o = s
        .run_tool(
            awk,
            &json!({"program": "{ s += $1 } END { print s }", "text": "1\n2\n3\n"}),
            &RunRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(o.output, ToolOutput::Text("6\n".into()));
    assert_eq!(
        (o.selection.tier, o.selection.source),
        (SandboxTier::Tier2, TierSource::Risk)
    );
    assert!(o.selection.risk.score >= 0.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_transform_in_the_debian_image() {
    let s = sandbox().await;
    ensure_images(&s, &["debian"]).await;
    let tools = repo_tools();
    let jt = tools.get("json_transform").unwrap();
    let input = json!({"document": {"items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}]}, "filter": "[.items[] | select(.n > 1) | .name]"});
    for tier in [SandboxTier::Tier1, SandboxTier::Tier2] {
        let req = RunRequest {
            agent_min_tier: Some(tier),
            ..RunRequest::default()
        };
        let o = s
            .run_tool(jt, &input, &req)
            .await
            .unwrap_or_else(|e| panic!("{tier}: {e}"));
        assert_eq!(o.output, ToolOutput::Json(json!(["b"])), "{tier}");
        assert_eq!(o.selection.tier, tier);
    }
    // A filter error is the tool's failure, with jq's message.
    let e = s
        .run_tool(
            jt,
            &json!({"document": 1, "filter": ".a.b"}),
            &RunRequest::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SandboxError::ToolFailed {
                exit_code: Some(5),
                ..
            }
        ),
        "{e}"
    );
    // Option injection through the filter is refused.
    let e = s
        .run_tool(
            jt,
            &json!({"document": 1, "filter": "--rawfile"}),
            &RunRequest::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SandboxError::InvalidInput { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_violations_never_start_a_container() {
    let s = sandbox().await;
    let tools = repo_tools();
    let wc = tools.get("word_count").unwrap();
    for bad in [
        json!({}),
        json!({"text": 1}),
        json!({"text": "a", "extra": true}),
        json!("text"),
    ] {
        let e = s
            .run_tool(wc, &bad, &RunRequest::default())
            .await
            .unwrap_err();
        assert!(matches!(e, SandboxError::InvalidInput { .. }), "{bad}: {e}");
        assert_eq!(e.reported_kind(), Some("InvalidInput"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_supplied_error_kind() {
    let s = sandbox().await;
    let t = manifest(
        r#"name = "failing"
description = "reports an API error"
image = "busybox"
command = ["sh", "-c", "echo '{\"error\": {\"kind\": \"APIError\", \"message\": \"quota exceeded\"}}'; exit 3"]
output = "json"
[input]
type = "object"
[risk]
code_trust = "trusted"
"#,
    );
    let e = s
        .run_tool(&t, &json!({}), &RunRequest::default())
        .await
        .unwrap_err();
    match &e {
        SandboxError::ToolFailed {
            exit_code,
            kind,
            message,
            ..
        } => {
            assert_eq!(*exit_code, Some(3));
            assert_eq!(kind.as_deref(), Some("APIError"));
            assert_eq!(message, "quota exceeded");
        }
        other => panic!("{other}"),
    }
    assert_eq!(e.dsl_kind(), "ActionFailed");
    assert_eq!(e.reported_kind(), Some("APIError"));
}

// ---- fail closed ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier2_with_unregistered_runtime_is_refused() {
    let mut c = config();
    c.tier2_runtime = "runsc-not-registered".into();
    let s = sandbox_with(c).await;
    let tools = repo_tools();
    let wc = tools.get("word_count").unwrap();
    let req = RunRequest {
        agent_min_tier: Some(SandboxTier::Tier2),
        ..RunRequest::default()
    };
    let e = s
        .run_tool(wc, &json!({"text": "a"}), &req)
        .await
        .unwrap_err();
    match &e {
        SandboxError::Unavailable { tier, reason, fix } => {
            assert_eq!(*tier, SandboxTier::Tier2);
            assert!(reason.contains("runsc-not-registered"), "{reason}");
            assert!(
                fix.contains("setup-host.sh") && fix.contains("runsc"),
                "{fix}"
            );
        }
        other => panic!("expected SandboxUnavailable, got {other}"),
    }
    assert_eq!(e.dsl_kind(), "SandboxUnavailable");
    // Tier1 still works on the same sandbox: the refusal is per tier, not a fallback.
    let o = s
        .run_tool(wc, &json!({"text": "a"}), &RunRequest::default())
        .await
        .unwrap();
    assert_eq!(o.selection.tier, SandboxTier::Tier1);
    assert_eq!(leftover_containers(&s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier2_runtime_that_is_not_gvisor_is_refused() {
    // Misconfiguration: the Tier2 runtime name points at plain runc.
    let mut c = config();
    c.tier2_runtime = "runc".into();
    let s = sandbox_with(c).await;
    let tools = repo_tools();
    let awk = tools.get("awk_program").unwrap();
    let e = s
        .run_tool(
            awk,
            &json!({"program": "{print}", "text": "x"}),
            &RunRequest::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SandboxError::Unavailable { reason, .. } if reason.contains("not gVisor")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier3_and_missing_daemon_fail_closed() {
    let s = sandbox().await;
    let tools = repo_tools();
    let wc = tools.get("word_count").unwrap();
    let req = RunRequest {
        agent_min_tier: Some(SandboxTier::Tier3),
        ..RunRequest::default()
    };
    let e = s
        .run_tool(wc, &json!({"text": "a"}), &req)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            SandboxError::Unavailable {
                tier: SandboxTier::Tier3,
                ..
            }
        ),
        "{e}"
    );

    let mut c = config();
    c.docker_socket = "/nonexistent/docker.sock".into();
    let s = Sandbox::new(c).unwrap();
    let e = s
        .run_tool(wc, &json!({"text": "a"}), &RunRequest::default())
        .await
        .unwrap_err();
    match &e {
        SandboxError::Unavailable { fix, .. } => assert!(fix.contains("setup-host.sh"), "{fix}"),
        other => panic!("expected SandboxUnavailable, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_image_record_fails_closed() {
    let s = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    // Copy the busybox record, then point it at a different image id.
    let good = s.images().record("busybox").unwrap().expect("built");
    let mut bad = good.clone();
    bad.image_id = format!("sha256:{}", "0".repeat(64));
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::write(
        dir.path().join("images/busybox.json"),
        serde_json::to_vec(&bad).unwrap(),
    )
    .unwrap();
    let mut c = config();
    c.data_dir = dir.path().to_path_buf();
    let s2 = Sandbox::new(c).unwrap();
    let tools = repo_tools();
    let e = s2
        .run_tool(
            tools.get("word_count").unwrap(),
            &json!({"text": "a"}),
            &RunRequest::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SandboxError::Unavailable { reason, .. } if reason.contains("does not match its record")),
        "{e}"
    );
    // No record at all: the error names the build command.
    std::fs::remove_file(dir.path().join("images/busybox.json")).unwrap();
    let e = s2
        .run_tool(
            tools.get("word_count").unwrap(),
            &json!({"text": "a"}),
            &RunRequest::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SandboxError::Unavailable { fix, .. } if fix.contains("build-images")),
        "{e}"
    );
}

// ---- concurrency and doctor ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_respect_the_limit() {
    let mut c = config();
    c.max_concurrent = 4;
    let s = sandbox_with(c).await;
    let tools = repo_tools();
    let wc = tools.get("word_count").unwrap().clone();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (s, wc) = (s.clone(), wc.clone());
        tasks.push(tokio::spawn(async move {
            let text = vec!["w"; i + 1].join(" ");
            let o = s
                .run_tool(&wc, &json!({"text": text}), &RunRequest::default())
                .await
                .unwrap();
            assert_eq!(o.output, ToolOutput::Text(format!("{}\n", i + 1)));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(leftover_containers(&s).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_each_tier() {
    let s = sandbox().await;
    let checks = symbi_sandbox::doctor::tier_checks(&s).await;
    assert_eq!(checks.len(), 3);
    assert!(
        checks[0].ok && checks[0].tier == SandboxTier::Tier1,
        "{:?}",
        checks[0]
    );
    assert!(
        checks[1].ok && checks[1].tier == SandboxTier::Tier2,
        "{:?}",
        checks[1]
    );
    assert!(!checks[2].ok && checks[2].fix.is_some());
    let mut c = config();
    c.tier2_runtime = "missing-runtime".into();
    let s = sandbox_with(c).await;
    let checks = symbi_sandbox::doctor::tier_checks(&s).await;
    assert!(checks[0].ok);
    assert!(
        !checks[1].ok && checks[1].fix.as_deref().unwrap().contains("runsc"),
        "{:?}",
        checks[1]
    );
}
