//! Behaviour of the writer, reader, proofs and verification on real files.

use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use symbi_audit::reader::verify_proof_json;
use symbi_audit::verify::{VerifyOptions, verify_log};
use symbi_audit::{AuditLog, AuditOptions, LogReader, Query};
use symbi_crypto::CryptoProvider;
use symbi_types::{AgentId, EventDraft, EventSink};

fn provider() -> Arc<dyn CryptoProvider> {
    symbi_crypto::provider("ring").unwrap()
}

fn opts(data: &Path) -> AuditOptions {
    let mut o = AuditOptions::new(data);
    o.segment_size = 8192; // many segments in small tests
    o.checkpoint_every = 10;
    o
}

#[test]
fn append_reopen_verify_query_and_prove() {
    let tmp = tempfile::tempdir().unwrap();
    let p = provider();
    let alice = AgentId::new();
    let bob = AgentId::new();
    {
        let log = AuditLog::open(opts(tmp.path()), p.clone()).unwrap();
        for i in 0..60u64 {
            let (id, name) = if i % 3 == 0 {
                (alice, "alice")
            } else {
                (bob, "bob")
            };
            let ty = if i % 5 == 0 {
                "file_read"
            } else {
                "invoke_tool"
            };
            let r = log
                .append_blocking(
                    EventDraft::new(ty, json!({"i": i, "path": format!("/data/{i}")}))
                        .agent(id, name),
                )
                .unwrap();
            assert_eq!(r.sequence, i);
        }
        log.close().unwrap();
    }
    // Reopen and keep appending: sequence, chain and key carry over.
    let log = AuditLog::open(opts(tmp.path()), p.clone()).unwrap();
    assert_eq!(log.size(), 60);
    let r = log
        .append_blocking(EventDraft::new("custom", json!({"after": "reopen"})))
        .unwrap();
    assert_eq!(r.sequence, 60);
    log.close().unwrap();
    drop(log);

    let dir = tmp.path().join("audit");
    let rep = verify_log(&dir, &*p, &VerifyOptions::default()).unwrap();
    assert!(rep.ok, "{rep:?}");
    assert_eq!(rep.events_checked, 61);
    assert!(rep.segments > 1, "segments rotate at 8 KiB");
    assert_eq!(rep.latest_checkpoint.as_ref().unwrap().size, 61);

    let reader = LogReader::open(&dir, p.clone()).unwrap();
    assert_eq!(reader.size(), 61);
    let q = Query {
        agent: Some(alice),
        event_type: Some("file_read".into()),
        ..Query::default()
    };
    let hits = reader.query(&q).unwrap();
    assert_eq!(
        hits.iter().map(|e| e.event.seq).collect::<Vec<_>>(),
        vec![0, 15, 30, 45]
    );
    let latest = reader
        .query(&Query {
            limit: Some(2),
            newest_first: true,
            ..Query::default()
        })
        .unwrap();
    assert_eq!(
        latest.iter().map(|e| e.event.seq).collect::<Vec<_>>(),
        vec![60, 59]
    );
    let t = reader.event(30).unwrap().event.timestamp;
    let since = reader
        .query(&Query {
            since: Some(t),
            ..Query::default()
        })
        .unwrap();
    assert!(since.first().unwrap().event.seq <= 30 && since.len() >= 31);

    // Lookup by id, inclusion proof, offline check.
    let ev = reader.event(17).unwrap();
    assert_eq!(reader.find(ev.event.id).unwrap().event.seq, 17);
    let proof = reader.prove_inclusion(17).unwrap();
    let json = serde_json::to_string(&proof).unwrap();
    let check = verify_proof_json(&*p, &json, None).unwrap();
    assert!(check.summary.contains("leaf 17"), "{}", check.summary);
    // A proof for a different entry fails.
    let mut bad = proof.clone();
    bad.entry = String::from_utf8(reader.event(18).unwrap().record.body).unwrap();
    bad.leaf_hash = hex::encode(symbi_audit::merkle::leaf_hash(&*p, bad.entry.as_bytes()));
    assert!(verify_proof_json(&*p, &serde_json::to_string(&bad).unwrap(), None).is_err());

    // Consistency between two checkpoints.
    let sizes: Vec<u64> = reader
        .checkpoints()
        .iter()
        .map(|c| c.checkpoint.size)
        .collect();
    assert!(sizes.contains(&20) && sizes.contains(&61), "{sizes:?}");
    let cproof = reader.prove_consistency(20, None).unwrap();
    verify_proof_json(&*p, &serde_json::to_string(&cproof).unwrap(), None).unwrap();
    // Pinning a foreign key makes the check fail.
    let foreign = symbi_audit::note::NoteKey::new(
        &*p,
        &proof.origin,
        p.signer_from_seed(&[9; 32]).unwrap().public_key(),
    )
    .unwrap();
    assert!(verify_proof_json(&*p, &json, Some(&[foreign])).is_err());
}

#[test]
fn concurrent_appends_are_group_committed_and_all_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let p = provider();
    let log = AuditLog::open(opts(tmp.path()), p.clone()).unwrap();
    let mut sub = log.subscribe();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let receipts = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..32u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..20u64 {
                    out.push(
                        log.record(EventDraft::new("custom", json!({"w": w, "i": i})))
                            .await
                            .unwrap(),
                    );
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let mut seqs: Vec<u64> = receipts.iter().map(|r| r.sequence).collect();
    seqs.sort();
    assert_eq!(seqs, (0..640).collect::<Vec<_>>());
    // The live stream saw events in sequence order.
    let mut seen = Vec::new();
    while let Ok(e) = sub.try_recv() {
        seen.push(e.event.seq);
    }
    assert_eq!(seen, (0..640).collect::<Vec<_>>());
    log.close().unwrap();
    assert!(
        log.append_blocking(EventDraft::new("custom", json!({})))
            .is_err(),
        "closed logs refuse events"
    );
    let rep = verify_log(&tmp.path().join("audit"), &*p, &VerifyOptions::default()).unwrap();
    assert!(rep.ok, "{rep:?}");
}

#[test]
fn key_rotation_is_recorded_and_verifiable() {
    let tmp = tempfile::tempdir().unwrap();
    let p = provider();
    let log = AuditLog::open(opts(tmp.path()), p.clone()).unwrap();
    log.append_blocking(EventDraft::new("custom", json!({"n": 1})))
        .unwrap();
    let old = log.current_key();
    let new = log.rotate_key_blocking().unwrap();
    assert_ne!(old.id, new.id);
    log.append_blocking(EventDraft::new("custom", json!({"n": 2})))
        .unwrap();
    log.close().unwrap();
    drop(log);
    // The new key is the one on disk; reopening works and keeps signing with it.
    let log = AuditLog::open(opts(tmp.path()), p.clone()).unwrap();
    assert_eq!(log.current_key().id, new.id);
    log.append_blocking(EventDraft::new("custom", json!({"n": 3})))
        .unwrap();
    log.close().unwrap();
    let dir = tmp.path().join("audit");
    let rep = verify_log(&dir, &*p, &VerifyOptions::default()).unwrap();
    assert!(rep.ok, "{rep:?}");
    assert_eq!(rep.keys, vec![old.id.to_string(), new.id.to_string()]);
    let reader = LogReader::open(&dir, p.clone()).unwrap();
    let rot = reader.event(1).unwrap();
    assert_eq!(rot.event.event_type, "key_rotation");
    assert_eq!(
        rot.event.key_id, old.id,
        "the rotation is signed by the old key"
    );
    assert_eq!(reader.event(2).unwrap().event.key_id, new.id);
    assert_eq!(reader.pubkeys().len(), 2);
}

#[test]
fn a_replaced_signing_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = provider();
    let log = AuditLog::open(opts(tmp.path()), p.clone()).unwrap();
    log.append_blocking(EventDraft::new("custom", json!({})))
        .unwrap();
    log.close().unwrap();
    drop(log);
    let key = tmp
        .path()
        .join("keys")
        .join(symbi_audit::keys::SIGNING_KEY_FILE);
    std::fs::remove_file(&key).unwrap();
    symbi_crypto::write_secret_file(&key, hex::encode([7u8; 32]).as_bytes()).unwrap();
    let e = AuditLog::open(opts(tmp.path()), p.clone())
        .err()
        .expect("must refuse");
    assert!(e.to_string().contains("outside a key rotation"), "{e}");
    std::fs::remove_file(&key).unwrap();
    let e = AuditLog::open(opts(tmp.path()), p)
        .err()
        .expect("must refuse");
    assert!(e.to_string().contains("is missing"), "{e}");
}

#[test]
fn a_second_writer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = provider();
    let log = AuditLog::open(opts(tmp.path()), p.clone()).unwrap();
    let e = AuditLog::open(opts(tmp.path()), p).err().expect("locked");
    assert!(matches!(e, symbi_audit::AuditError::Locked(_)), "{e}");
    drop(log);
}

#[test]
fn providers_are_interchangeable() {
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open(
        opts(tmp.path()),
        symbi_crypto::provider("rustcrypto").unwrap(),
    )
    .unwrap();
    for i in 0..5 {
        log.append_blocking(EventDraft::new("custom", json!({"i": i})))
            .unwrap();
    }
    log.close().unwrap();
    let rep = verify_log(
        &tmp.path().join("audit"),
        &*provider(),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(rep.ok);
}
