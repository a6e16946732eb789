//! The shipped examples that use memory and the model provider, end to end through the
//! real `symbi` binary (GRAMMAR.md §7.5, §7.6, §7.8): every action goes through the
//! gateway, the policy engine (the shipped default Cedar policies, written to a fresh
//! policy directory under the temporary data directory) and the signed audit log.
//!
//! The model provider is a small local server speaking OpenAI's wire format on 127.0.0.1
//! (`symbi_llm::testing`, test-only: an outside service we cannot reach here); the
//! runtime's real client code path talks to it.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/agents")
        .join(name)
}

/// `symbi --data-dir DATA run FILE --input INPUT --format json` with no provider settings
/// from the environment unless `env` gives them.
fn run(data: &Path, file: &str, input: &Value, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_symbi"));
    c.arg("--data-dir")
        .arg(data)
        .arg("run")
        .arg(example(file))
        .arg("--input")
        .arg(input.to_string())
        .args(["--format", "json"]);
    for v in [
        "SYMBI_CONFIG_PATH",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "QDRANT_URL",
        "SYMBI_AUDIT_STORAGE",
    ] {
        c.env_remove(v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run symbi")
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn audit_events(data: &Path, ty: &str) -> Vec<Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .arg("--data-dir")
        .arg(data)
        .args(["audit", "query", "--type", ty, "--format", "json"])
        .env_remove("SYMBI_CONFIG_PATH")
        .env_remove("SYMBI_AUDIT_STORAGE")
        .output()
        .expect("run symbi audit");
    assert!(
        o.status.success(),
        "audit query failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

fn verify_audit(data: &Path) {
    let o = Command::new(env!("CARGO_BIN_EXE_symbi"))
        .arg("--data-dir")
        .arg(data)
        .args(["audit", "verify"])
        .env_remove("SYMBI_CONFIG_PATH")
        .env_remove("SYMBI_AUDIT_STORAGE")
        .output()
        .expect("run symbi audit verify");
    assert!(
        o.status.success(),
        "audit log does not verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn ticket_intake_writes_the_memory_store_and_publishes_urgent_tickets() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let ticket = json!({"event": "ticket.created", "subject": "Login outage", "priority": "p2", "customer": "c-9"});

    let o = run(data, "05-ticket-intake.symbi", &ticket, &[]);
    let v = json_out(&o);
    assert_eq!(
        v["status"],
        "ok",
        "{v}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = &v["result"];
    assert_eq!(r["urgent"], true, "{r}");
    assert_eq!(r["similar"], 0, "{r}");
    let id = r["stored"].as_str().expect("stored id").to_string();
    assert!(!id.is_empty());

    // The entry is a file of the store's directory, under the data directory.
    let entry = data.join("data/tickets").join(format!("{id}.md"));
    let text =
        std::fs::read_to_string(&entry).unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
    assert!(
        text.contains("Login outage") && text.contains("c-9"),
        "{text}"
    );

    // A second, similar ticket finds the first (searchable, and after a restart).
    let second = json!({"event": "ticket.created", "subject": "Login outage again", "priority": "p3", "customer": "c-10"});
    let v = json_out(&run(data, "05-ticket-intake.symbi", &second, &[]));
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["result"]["similar"], 1, "{v}");
    assert_ne!(v["result"]["stored"], json!(id));

    // A non-urgent ticket is stored but not published.
    let calm = json!({"event": "ticket.created", "subject": "Invoice address", "priority": "p4", "customer": "c-11"});
    let v = json_out(&run(data, "05-ticket-intake.symbi", &calm, &[]));
    assert_eq!(v["result"]["urgent"], false, "{v}");

    // Every action was decided and audited; publish was allowed by the agent's guard.
    let writes = audit_events(data, "memory_write");
    assert!(
        writes.iter().any(|e| e["details"]["phase"] == "decision"
            && e["details"]["decision"] == "Allow"
            && e["details"]["subject"]["name"] == "ticket_log"),
        "no allowed memory_write decision on ticket_log: {writes:#?}"
    );
    assert!(
        writes
            .iter()
            .any(|e| e["details"]["phase"] == "outcome" && e["details"]["outcome"] == "ok")
    );
    let publishes: Vec<Value> = audit_events(data, "publish")
        .into_iter()
        .filter(|e| e["details"]["phase"] == "decision")
        .collect();
    assert_eq!(
        publishes.len(),
        2,
        "two urgent tickets, two publish decisions: {publishes:#?}"
    );
    assert!(
        publishes
            .iter()
            .all(|e| e["details"]["decision"] == "Allow"),
        "{publishes:#?}"
    );
    verify_audit(data);
}

#[test]
fn nightly_counter_state_survives_process_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    for n in 1..=3 {
        let o = run(data, "06-nightly-counter.symbi", &json!({}), &[]);
        let v = json_out(&o);
        assert_eq!(
            v["status"],
            "ok",
            "{v}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            v["result"],
            json!({"runs": n, "started_by": "manual"}),
            "run {n}"
        );
    }
    let state = data.join("memory/agents/run_counter/state.json");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(s.to_string().contains("\"runs\":3"), "{s}");
    let reads = audit_events(data, "memory_read");
    assert!(
        reads.iter().any(|e| e["details"]["phase"] == "outcome"
            && e["details"]["execution"]["state_scope"] == "persistent"),
        "{reads:#?}"
    );
    verify_audit(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_notes_for_internal_audience_come_from_the_model_and_are_audited() {
    let server = symbi_llm::testing::TestServer::start(Some("sk-local-test")).await;
    let base = server.base_url();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().to_path_buf();
    let input = json!({"changes": ["faster startup", "fixed login bug"], "audience": "internal"});
    let (o, data) = tokio::task::spawn_blocking(move || {
        let o = run(
            &data,
            "08-approval-llm.symbi",
            &input,
            &[
                ("OPENAI_BASE_URL", &base),
                ("OPENAI_API_KEY", "sk-local-test"),
            ],
        );
        (o, data)
    })
    .await
    .unwrap();
    let v = json_out(&o);
    assert_eq!(
        v["status"],
        "ok",
        "{v}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = &v["result"];
    assert_eq!(r["audience"], "internal");
    assert_eq!(r["items"], 2);
    // The test server echoes the last user message: the prompt the agent built.
    assert_eq!(
        r["notes"],
        "echo: Write short release notes for internal:\n- faster startup\n- fixed login bug",
        "{r}"
    );

    // The request on the wire carried the agent's parameters and the key.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert_eq!(reqs[0]["temperature"], 0.2);
    assert_eq!(reqs[0]["max_tokens"], 400);

    // The audit outcome carries the call record: model, tokens, latency, digests.
    let events = tokio::task::spawn_blocking({
        let data = data.clone();
        move || audit_events(&data, "use_llm")
    })
    .await
    .unwrap();
    let outcome = events
        .iter()
        .find(|e| e["details"]["phase"] == "outcome")
        .unwrap_or_else(|| panic!("no use_llm outcome: {events:#?}"));
    let call = &outcome["details"]["execution"]["llm_calls"][0];
    assert_eq!(call["model"], "gpt-4o-mini", "{outcome}");
    assert!(
        call["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{outcome}"
    );
    assert!(call["latency_ms"].is_u64(), "{outcome}");
    assert_eq!(call["prompt_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(call["answer_sha256"].as_str().unwrap().len(), 64);
    let decision = events
        .iter()
        .find(|e| e["details"]["phase"] == "decision" && e["details"]["decision"] == "Allow")
        .unwrap_or_else(|| panic!("{events:#?}"));
    // The decision was about the model that answered (policies can name models).
    assert_eq!(
        decision["details"]["subject"]["name"], "gpt-4o-mini",
        "{decision}"
    );
    assert_eq!(
        decision["details"]["subject"]["attrs"]["provider"].as_str(),
        Some(server.base_url().trim_end_matches('/')),
        "{decision}"
    );
    tokio::task::spawn_blocking(move || verify_audit(&data))
        .await
        .unwrap();
}

#[test]
fn release_notes_fail_closed_without_a_provider_and_deny_long_change_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let o = run(
        data,
        "08-approval-llm.symbi",
        &json!({"changes": ["a"], "audience": "internal"}),
        &[],
    );
    let v = json_out(&o);
    assert_eq!(v["status"], "failed", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("OPENAI_API_KEY"),
        "the error must say what to set: {v}"
    );
    assert!(!o.status.success());

    // 51 changes: no allow rule matches, so the call is denied before any provider is asked
    // (a closed port: reaching it would fail differently).
    let many: Vec<String> = (0..51).map(|i| format!("change {i}")).collect();
    let o = run(
        data,
        "08-approval-llm.symbi",
        &json!({"changes": many, "audience": "internal"}),
        &[
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("OPENAI_API_KEY", "k"),
        ],
    );
    let v = json_out(&o);
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["error"]["kind"], "PolicyDenied", "{v}");
}

fn knowledge_ingest(data: &Path, env: &[(&str, &str)]) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_symbi"));
    c.arg("--data-dir")
        .arg(data)
        .arg("knowledge")
        .arg("ingest")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/knowledge"));
    for v in [
        "SYMBI_CONFIG_PATH",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "QDRANT_URL",
        "SYMBI_AUDIT_STORAGE",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    let o = c.output().expect("run symbi knowledge ingest");
    assert!(
        o.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ingested 3 document(s)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// Example 12 on a fresh data directory: documents ingested with `symbi knowledge ingest`,
/// a question answered with citations of the right passage, a note filed through the
/// policy-gated `knowledge_add` and found by the next question, and the question history
/// remembered across processes. `env` picks the embedder (BM25 only, or local dense too).
fn knowledge_qa_round_trip(env: &[(&str, &str)]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    knowledge_ingest(data, env);
    let o = run(
        data,
        "12-knowledge-qa.symbi",
        &json!({"question": "How are audit events signed?"}),
        env,
    );
    let v = json_out(&o);
    assert_eq!(
        v["status"],
        "ok",
        "{v}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = &v["result"];
    assert!(
        r["citations"][0]["document"]
            .as_str()
            .unwrap()
            .ends_with("audit.md"),
        "{r:#}"
    );
    assert!(
        r["answer"].as_str().unwrap().contains("Ed25519 key")
            && r["answer"].as_str().unwrap().contains("[1]"),
        "{r:#}"
    );
    assert_eq!(r["asked_before"], 0);
    let note = "Ask the security team before enabling gVisor for a new tool.";
    let o = run(
        data,
        "12-knowledge-qa.symbi",
        &json!({"question": "Which tier runs untrusted code?", "note": note}),
        env,
    );
    let v = json_out(&o);
    assert_eq!(
        v["status"],
        "ok",
        "{v}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = &v["result"];
    assert!(
        r["citations"][0]["document"]
            .as_str()
            .unwrap()
            .ends_with("sandboxes.md"),
        "{r:#}"
    );
    assert_eq!(r["asked_before"], 1);
    let filed = r["filed"].as_str().unwrap().to_string();
    let o = run(
        data,
        "12-knowledge-qa.symbi",
        &json!({"question": "Who must approve enabling gVisor for a new tool?"}),
        env,
    );
    let r = &json_out(&o)["result"];
    assert_eq!(r["citations"][0]["document"], filed.as_str(), "{r:#}");
    assert_eq!(r["asked_before"], 2);
    // The policy refuses an oversized note: the whole run fails closed, nothing is filed.
    let o = run(
        data,
        "12-knowledge-qa.symbi",
        &json!({"question": "q", "note": "x".repeat(3000)}),
        env,
    );
    let v = json_out(&o);
    assert_eq!(v["status"], "failed", "{v}");
    let writes = audit_events(data, "knowledge_write");
    assert!(
        writes
            .iter()
            .any(|e| e["details"]["phase"] == "decision" && e["details"]["decision"] == "Deny"),
        "no refused knowledge_write: {writes:#?}"
    );
    assert_eq!(
        writes
            .iter()
            .filter(|e| e["details"]["phase"] == "outcome")
            .count(),
        1,
        "only the allowed note was filed"
    );
    verify_audit(data);
}

#[test]
fn knowledge_qa_answers_with_citations_from_bm25() {
    knowledge_qa_round_trip(&[]);
}

/// The same round trip with `[context] embedder = "local"`: all-MiniLM-L6-v2 from the test
/// dependencies (`scripts/setup-test-deps.sh`), run in process.
#[test]
fn knowledge_qa_answers_with_citations_from_the_local_model() {
    let model = PathBuf::from(
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into()),
    )
    .join("models/all-MiniLM-L6-v2");
    assert!(
        model.join("model.safetensors").is_file(),
        "{}: run scripts/setup-test-deps.sh",
        model.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("symbi.toml");
    std::fs::write(
        &config,
        format!("[context]\nembedder = \"local\"\nlocal_model_dir = \"{}\"\nembedding_dimension = 384\n", model.display()),
    )
    .unwrap();
    knowledge_qa_round_trip(&[("SYMBI_CONFIG_PATH", config.to_str().unwrap())]);
}
