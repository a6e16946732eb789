//! The format is verifiable without our code: `independent_verify.py`, written from
//! docs/audit-format.md with PyPI `cryptography`, verifies logs (signatures, chain, key
//! rotation, Merkle roots, checkpoints), computes RFC 9162 proofs from its own tree and
//! checks the proofs our reader prints. Python comes from `scripts/setup-test-deps.sh`
//! (`$SYMBI_TEST_DEPS/audit-venv`), or `SYMBI_TEST_PYTHON`.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use symbi_audit::record::{self, Event, Record};
use symbi_audit::verify::{VerifyOptions, verify_log};
use symbi_audit::{AuditLog, AuditOptions, LogReader, Signatures};
use symbi_types::{AgentId, EventDraft, ExecutionId};

fn python() -> PathBuf {
    let candidates = [
        std::env::var("SYMBI_TEST_PYTHON").ok().map(PathBuf::from),
        Some(
            PathBuf::from(
                std::env::var("SYMBI_TEST_DEPS")
                    .unwrap_or_else(|_| "/var/cache/symbi/test-deps".into()),
            )
            .join("audit-venv/bin/python3"),
        ),
        Some(PathBuf::from("python3")),
    ];
    for c in candidates.into_iter().flatten() {
        let ok = Command::new(&c)
            .args(["-c", "import cryptography"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return c;
        }
    }
    panic!(
        "no Python with the `cryptography` package: run scripts/setup-test-deps.sh (creates $SYMBI_TEST_DEPS/audit-venv)"
    );
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent_verify.py")
}

fn run_py(args: &[&str]) -> (bool, Value) {
    let out = Command::new(python())
        .arg(script())
        .args(args)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "python printed no JSON: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// A log with awkward details (Unicode, floats, control characters), agents, a key
/// rotation, several segments and checkpoints.
fn build() -> tempfile::TempDir {
    build_with(Signatures::PerEvent)
}

/// The same log; with per-batch signatures the events go in batches of five, so most
/// records are covered by the signature at the end of their batch.
fn build_with(signatures: Signatures) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = AuditOptions::new(tmp.path());
    o.segment_size = 6000;
    o.checkpoint_every = 7;
    o.signatures = signatures;
    let p = symbi_crypto::provider("ring").unwrap();
    let log = AuditLog::open(o, p).unwrap();
    let mut batch = Vec::new();
    let agent = AgentId::new();
    for i in 0..40u64 {
        let details = json!({
            "i": i,
            "ratio": i as f64 / 3.0,
            "big": 1e21,
            "tiny": 5e-7,
            "text": "€ 😀 \u{7} \"quoted\" \\ line\nbreak",
            "nested": {"\u{fb33}": [1, 2.5, null, true], "\r": false, "1": "one"},
        });
        let draft = EventDraft::new(
            if i % 4 == 0 {
                "file_read"
            } else {
                "invoke_tool"
            },
            details,
        )
        .agent(agent, "ünïcode-agent")
        .execution(ExecutionId::new());
        match signatures {
            Signatures::PerEvent => {
                log.append_blocking(draft).unwrap();
            }
            Signatures::PerBatch => {
                batch.push(draft);
                if batch.len() == 5 || i == 20 {
                    assert!(
                        log.append_many_blocking(std::mem::take(&mut batch))
                            .into_iter()
                            .all(|r| r.is_ok())
                    );
                }
            }
        }
        if i == 20 {
            log.rotate_key_blocking().unwrap();
        }
    }
    log.close().unwrap();
    tmp
}

#[test]
fn python_verifies_our_log_and_agrees_on_the_root() {
    let tmp = build();
    agree_on(&tmp);
}

#[test]
fn python_verifies_a_per_batch_signed_log_and_agrees_on_the_root() {
    let tmp = build_with(Signatures::PerBatch);
    let covered = symbi_audit::segment::list_segments(&tmp.path().join("audit"))
        .unwrap()
        .iter()
        .flat_map(|s| symbi_audit::segment::scan_file(&s.path).unwrap().records)
        .filter(|r| r.record.signature.is_none())
        .count();
    assert!(covered >= 20, "only {covered} covered records");
    agree_on(&tmp);
}

/// Both verifiers accept the log and agree on events, root, chain, keys and checkpoints.
fn agree_on(tmp: &tempfile::TempDir) {
    let dir = tmp.path().join("audit");
    let p = symbi_crypto::provider("ring").unwrap();
    let rep = verify_log(&dir, &*p, &VerifyOptions::default()).unwrap();
    assert!(rep.ok, "{:?}", rep.first_error);
    let (ok, v) = run_py(&["log", dir.to_str().unwrap()]);
    assert!(ok, "independent verifier rejected a good log: {v}");
    assert_eq!(v["events"], json!(rep.events_checked));
    assert_eq!(v["root"], json!(rep.root));
    assert_eq!(v["chain"], json!(rep.chain));
    assert_eq!(v["keys"], json!(rep.keys), "both follow the key rotation");
    assert_eq!(v["checkpoints"], json!(rep.checkpoints_checked));
    // Pinning the anchor explicitly.
    let anchor = LogReader::open(&dir, p).unwrap().pubkeys()[0].vkey();
    let (ok, _) = run_py(&["log", dir.to_str().unwrap(), &anchor]);
    assert!(ok);
}

#[test]
fn python_computes_the_same_proofs_and_accepts_ours() {
    let tmp = build();
    let dir = tmp.path().join("audit");
    let p = symbi_crypto::provider("ring").unwrap();
    let r = LogReader::open(&dir, p).unwrap();
    let n = r.latest_checkpoint().unwrap().checkpoint.size;
    let anchor_and_rotated = r.pubkeys().last().unwrap().vkey();
    for seq in [0, 1, 7, 20, 21, n - 1] {
        let proof = r.prove_inclusion(seq).unwrap();
        let (_, v) = run_py(&[
            "path",
            dir.to_str().unwrap(),
            &seq.to_string(),
            &n.to_string(),
        ]);
        assert_eq!(
            v["path"],
            json!(proof.path),
            "inclusion path of {seq} in {n}"
        );
        assert_eq!(
            v["root"],
            json!(hex::encode(r.latest_checkpoint().unwrap().checkpoint.root))
        );
        let f = tmp.path().join(format!("incl{seq}.json"));
        std::fs::write(&f, serde_json::to_string(&proof).unwrap()).unwrap();
        let (ok, v) = run_py(&["proof", f.to_str().unwrap(), &anchor_and_rotated]);
        assert!(ok, "python rejected our inclusion proof for {seq}: {v}");
    }
    let sizes: Vec<u64> = r.checkpoints().iter().map(|c| c.checkpoint.size).collect();
    for &m in sizes.iter().filter(|&&s| s > 0 && s < n) {
        let proof = r.prove_consistency(m, None).unwrap();
        let (_, v) = run_py(&[
            "consistency",
            dir.to_str().unwrap(),
            &m.to_string(),
            &n.to_string(),
        ]);
        assert_eq!(v["path"], json!(proof.path), "consistency path {m} → {n}");
        let f = tmp.path().join(format!("cons{m}.json"));
        std::fs::write(&f, serde_json::to_string(&proof).unwrap()).unwrap();
        // Checkpoints before the rotation are signed by the first key: try each listed key.
        let (ok, v) = run_py(&["proof", f.to_str().unwrap()]);
        assert!(ok, "python rejected our consistency proof {m} → {n}: {v}");
    }
    // A forged proof is rejected by python too.
    let mut proof = r.prove_inclusion(5).unwrap();
    proof.path[0] = hex::encode([0u8; 32]);
    let f = tmp.path().join("forged.json");
    std::fs::write(&f, serde_json::to_string(&proof).unwrap()).unwrap();
    let (ok, _) = run_py(&["proof", f.to_str().unwrap()]);
    assert!(!ok);
}

#[test]
fn python_and_rust_name_the_same_tampered_event() {
    let tmp = build();
    let dir = tmp.path().join("audit");
    let p = symbi_crypto::provider("ring").unwrap();
    // Edit event 12 and recompute every chain hash (an attacker without the key).
    let segs = symbi_audit::segment::list_segments(&dir).unwrap();
    let mut prev = [0u8; 32];
    for s in &segs {
        let scan = symbi_audit::segment::scan_file(&s.path).unwrap();
        let mut bytes = record::segment_header(s.first_seq).to_vec();
        for r in scan.records {
            let mut rec: Record = r.record;
            let mut ev = Event::from_body(&rec.body).unwrap();
            if ev.seq == 12 {
                ev.details["i"] = json!(999);
                rec.body = ev.canonical_body().unwrap();
            }
            rec.chain = record::chain_hash(&*p, &prev, &rec.body);
            prev = rec.chain;
            bytes.extend_from_slice(&rec.encode_frame());
        }
        std::fs::write(&s.path, bytes).unwrap();
    }
    let rep = verify_log(&dir, &*p, &VerifyOptions::default()).unwrap();
    let pr = rep.first_error.expect("rust detects it");
    assert_eq!((pr.kind.as_str(), pr.sequence), ("bad_signature", Some(12)));
    let (ok, v) = run_py(&["log", dir.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(v["kind"], "signature");
    assert_eq!(v["sequence"], 12);
}
