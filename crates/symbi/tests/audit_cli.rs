//! `symbi audit …` end to end on a real log: verify (ok and tampered, exit codes, JSON),
//! query, prove + verify-proof, report, tail, pubkey, checkpoints, rotate-key.

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use symbi_audit::{AuditLog, AuditOptions};
use symbi_types::{AgentId, EventDraft};

fn symbi(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_symbi"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("SYMBI_CONFIG_PATH")
        .env_remove("SYMBI_AUDIT_STORAGE")
        .output()
        .expect("run symbi")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn make_log(data: &Path) -> AgentId {
    let p = symbi_crypto::provider("ring").unwrap();
    let log = AuditLog::open(AuditOptions::new(data), p).unwrap();
    let agent = AgentId::new();
    for i in 0..30 {
        let (ty, details) = match i % 3 {
            0 => (
                "file_read",
                json!({"phase": "decision", "action": "read_file", "decision": "Allow", "path": format!("/phi/{i}")}),
            ),
            1 => (
                "invoke_tool",
                json!({"phase": "decision", "action": "search", "decision": "Deny", "reasons": ["no rule allows"]}),
            ),
            _ => (
                "auth_failure",
                json!({"remote": "127.0.0.1", "path": "/api/v1/agents", "reason": "bad token"}),
            ),
        };
        let d = EventDraft::new(ty, details);
        let d = if ty == "auth_failure" {
            d
        } else {
            d.agent(agent, "records-clerk")
        };
        log.append_blocking(d).unwrap();
    }
    log.close().unwrap();
    agent
}

#[test]
fn verify_query_prove_report_tail_pubkey() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let agent = make_log(data);

    let o = symbi(data, &["audit", "verify"]);
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).starts_with("OK: symbi-audit/"), "{}", stdout(&o));
    let o = symbi(data, &["audit", "verify", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["events_checked"], 30);

    let o = symbi(
        data,
        &[
            "audit",
            "query",
            "--agent",
            &agent.to_string(),
            "--type",
            "file_read",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success());
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert!(
        lines
            .iter()
            .all(|e| e["event_type"] == "file_read" && e["agent_name"] == "records-clerk")
    );
    let o = symbi(
        data,
        &[
            "audit",
            "query",
            "--agent",
            "records-clerk",
            "--since",
            "1h",
            "--limit",
            "3",
        ],
    );
    assert_eq!(
        stdout(&o).lines().count(),
        4,
        "header + 3 rows: {}",
        stdout(&o)
    );
    let o = symbi(data, &["audit", "query", "--since", "not-a-time"]);
    assert_eq!(o.status.code(), Some(2));

    // Prove an event by id, check the proof offline with the pinned key.
    let id = lines[3]["id"].as_str().unwrap().to_string();
    let o = symbi(
        data,
        &["audit", "prove", "inclusion", &id, "--format", "json"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let proof = tmp.path().join("proof.json");
    std::fs::write(&proof, &o.stdout).unwrap();
    let o = symbi(data, &["audit", "pubkey", "--format", "json"]);
    let keys: Value = serde_json::from_slice(&o.stdout).unwrap();
    let vkey = keys["keys"][0]["vkey"].as_str().unwrap().to_string();
    let o = symbi(
        data,
        &[
            "audit",
            "verify-proof",
            proof.to_str().unwrap(),
            "--key",
            &vkey,
        ],
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("is leaf 9"), "{}", stdout(&o));
    let o = symbi(data, &["audit", "prove", "consistency", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Report: self-contained HTML naming the violations.
    let o = symbi(
        data,
        &["audit", "report", "--standard", "hipaa", "--format", "html"],
    );
    assert!(o.status.success());
    let html = stdout(&o);
    assert!(
        html.starts_with("<!DOCTYPE html>")
            && html.contains("164.312(b)")
            && html.contains("policy_denied")
    );
    assert!(
        !html.contains("src=") && !html.contains("href=") && !html.contains("<script"),
        "no external assets"
    );
    let o = symbi(
        data,
        &["audit", "report", "--standard", "gdpr", "--format", "json"],
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["violation_count"], 20, "10 denials + 10 auth failures");
    assert_eq!(r["access_count"], 20);

    let o = symbi(data, &["audit", "tail", "-n", "2", "--format", "json"]);
    assert_eq!(stdout(&o).lines().count(), 2);
    let o = symbi(data, &["audit", "checkpoints", "--format", "json"]);
    let cps: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cps.as_array().unwrap().last().unwrap()["size"], 30);

    // Rotation through the CLI, then verification follows it.
    let o = symbi(data, &["audit", "rotate-key", "--format", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = symbi(
        data,
        &["audit", "verify", "--format", "json", "--key", &vkey],
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn verify_names_the_tampered_event_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let seg = tmp.path().join("audit/segments/00000000000000000000.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();
    let o = symbi(tmp.path(), &["audit", "verify", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let e = &v["first_error"];
    assert_eq!(e["kind"], "frame_checksum", "{e}");
    assert!(e["sequence"].as_u64().unwrap() > 0 && e["offset"].as_u64().is_some());
    let o = symbi(tmp.path(), &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("first bad event"), "{}", stdout(&o));
}
