//! docs/audit-format.md embeds a tiny real log (§10). This test rebuilds those files from
//! the document and verifies them with our verifier and the independent Python one, so the
//! worked example cannot drift from the format. `--ignored print_worked_example` prints a
//! fresh example (used to write the section).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use std::path::Path;
use symbi_audit::verify::{VerifyOptions, verify_log};
use symbi_audit::{AuditLog, AuditOptions, LogReader};
use symbi_types::{AgentId, EventDraft};

fn doc() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/audit-format.md"),
    )
    .unwrap()
}

/// The text between "<!-- file: NAME -->" + "```" and the next "```".
fn embedded(doc: &str, name: &str) -> String {
    let marker = format!("<!-- file: {name} -->");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/audit-format.md lacks {marker}"));
    let rest = &doc[start + marker.len()..];
    let open = rest.find("```").unwrap();
    let body_start = open + rest[open..].find('\n').unwrap() + 1;
    let end = body_start + rest[body_start..].find("```").unwrap();
    rest[body_start..end].to_string()
}

#[test]
fn worked_example_in_the_docs_verifies() {
    let doc = doc();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(dir.join("segments")).unwrap();
    std::fs::write(dir.join("pubkeys"), embedded(&doc, "pubkeys")).unwrap();
    let seg: String = embedded(&doc, "segments/00000000000000000000.seg (base64)")
        .split_whitespace()
        .collect();
    std::fs::write(
        dir.join("segments/00000000000000000000.seg"),
        B64.decode(seg).unwrap(),
    )
    .unwrap();
    let cps: String = embedded(&doc, "checkpoints.log (base64)")
        .split_whitespace()
        .collect();
    std::fs::write(dir.join("checkpoints.log"), B64.decode(cps).unwrap()).unwrap();
    let p = symbi_crypto::provider("ring").unwrap();
    let rep = verify_log(&dir, &*p, &VerifyOptions::default()).unwrap();
    assert!(rep.ok, "{:?}", rep.first_error);
    assert!(
        doc.contains(&rep.root),
        "the documented root {} must appear in the doc",
        rep.root
    );
    let py = std::process::Command::new(std::env::var("SYMBI_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/audit-venv/bin/python3",
            std::env::var("SYMBI_TEST_DEPS")
                .unwrap_or_else(|_| "/var/cache/symbi/test-deps".into())
        )
    }))
    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent_verify.py"))
    .args(["log", dir.to_str().unwrap()])
    .output()
    .expect("python from scripts/setup-test-deps.sh");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stdout)
    );
}

#[test]
#[ignore = "prints material for docs/audit-format.md §10"]
fn print_worked_example() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    symbi_crypto::write_secret_file(
        &keys.join("audit-ed25519.key"),
        hex::encode([0x42u8; 32]).as_bytes(),
    )
    .unwrap();
    let p = symbi_crypto::provider("ring").unwrap();
    let log = AuditLog::open(AuditOptions::new(tmp.path()), p.clone()).unwrap();
    let agent: AgentId = "6f1c2a3b-0000-4000-8000-000000000001".parse().unwrap();
    log.append_blocking(
        EventDraft::new(
            "agent_state",
            json!({"from": "Created", "to": "Ready", "cause": "registered"}),
        )
        .agent(agent, "triage"),
    )
    .unwrap();
    log.append_blocking(EventDraft::new("file_read", json!({"phase": "decision", "action": "read_file", "decision": "Allow", "path": "/srv/in/a.txt"})).agent(agent, "triage")).unwrap();
    log.append_blocking(EventDraft::new("file_read", json!({"phase": "decision", "action": "read_file", "decision": "Deny", "reasons": ["default deny"], "path": "/etc/shadow"})).agent(agent, "triage")).unwrap();
    log.close().unwrap();
    let dir = tmp.path().join("audit");
    println!(
        "pubkeys:\n{}",
        std::fs::read_to_string(dir.join("pubkeys")).unwrap()
    );
    let seg = std::fs::read(dir.join("segments/00000000000000000000.seg")).unwrap();
    println!(
        "segment ({} bytes) base64:\n{}",
        seg.len(),
        B64.encode(&seg)
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!("segment header hex: {}", hex::encode(&seg[..16]));
    let r = LogReader::open(&dir, p.clone()).unwrap();
    for e in r.events(0, r.size()).unwrap() {
        println!("--- event {} at offset {}", e.event.seq, e.offset);
        let frame = &seg[e.offset as usize..e.offset as usize + 8];
        println!("frame header: {}", hex::encode(frame));
        println!("body: {}", String::from_utf8_lossy(&e.record.body));
        println!("chain: {}", hex::encode(e.record.chain));
        println!(
            "signature: {}",
            hex::encode(e.record.signature.expect("per-event signed"))
        );
        println!(
            "leaf hash: {}",
            hex::encode(symbi_audit::merkle::leaf_hash(&*p, &e.record.body))
        );
    }
    println!("root(3): {}", hex::encode(r.root(3).unwrap()));
    println!("root(2): {}", hex::encode(r.root(2).unwrap()));
    let cps = std::fs::read(dir.join("checkpoints.log")).unwrap();
    println!(
        "checkpoints.log base64:\n{}",
        B64.encode(&cps)
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for c in r.checkpoints() {
        println!("note:\n{}", c.note);
    }
    println!(
        "inclusion(1,3): {}",
        serde_json::to_string_pretty(&r.prove_inclusion(1).unwrap()).unwrap()
    );
}
