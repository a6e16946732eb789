//! Tampering: each kind of change to a closed log is detected, at the right event, with the
//! right diagnosis; and the writer refuses to open a damaged log (fail closed).

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbi_audit::record::{self, Event, Record, SEGMENT_HEADER_LEN};
use symbi_audit::segment::{self, SegmentFile};
use symbi_audit::verify::{Problem, VerifyOptions, verify_log};
use symbi_audit::{AuditLog, AuditOptions};
use symbi_crypto::CryptoProvider;
use symbi_types::{AgentId, EventDraft};

fn provider() -> Arc<dyn CryptoProvider> {
    symbi_crypto::provider("ring").unwrap()
}

/// A closed log of 60 events in several segments, checkpointed at the end.
fn build() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = AuditOptions::new(tmp.path());
    o.segment_size = 8192;
    o.checkpoint_every = 25;
    // Count-based checkpoints only: on a loaded machine a timed one (the default interval)
    // could land mid-log and move the checkpoint at 25 the tests rely on.
    o.checkpoint_interval = std::time::Duration::from_secs(3600);
    let log = AuditLog::open(o, provider()).unwrap();
    let agent = AgentId::new();
    for i in 0..60 {
        log.append_blocking(
            EventDraft::new("file_read", json!({"i": i, "path": format!("/srv/{i}")}))
                .agent(agent, "reader"),
        )
        .unwrap();
    }
    log.close().unwrap();
    tmp
}

fn audit(tmp: &tempfile::TempDir) -> PathBuf {
    tmp.path().join("audit")
}

fn verify(dir: &Path) -> Option<Problem> {
    let rep = verify_log(dir, &*provider(), &VerifyOptions::default()).unwrap();
    assert_eq!(rep.ok, rep.first_error.is_none());
    rep.first_error
}

fn segments(dir: &Path) -> Vec<(SegmentFile, Vec<Record>)> {
    segment::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|s| {
            let scan = segment::scan_file(&s.path).unwrap();
            assert!(scan.error.is_none());
            let recs = scan.records.into_iter().map(|r| r.record).collect();
            (s, recs)
        })
        .collect()
}

fn write_segments(segs: &[(SegmentFile, Vec<Record>)]) {
    for (s, recs) in segs {
        let mut bytes = record::segment_header(s.first_seq).to_vec();
        for r in recs {
            bytes.extend_from_slice(&r.encode_frame());
        }
        std::fs::write(&s.path, bytes).unwrap();
    }
}

/// Locates event `seq`: (segment index, record index, frame offset).
fn locate(segs: &[(SegmentFile, Vec<Record>)], seq: u64) -> (usize, usize, u64) {
    for (si, (_, recs)) in segs.iter().enumerate() {
        let mut off = SEGMENT_HEADER_LEN as u64;
        for (ri, r) in recs.iter().enumerate() {
            if Event::from_body(&r.body).unwrap().seq == seq {
                return (si, ri, off);
            }
            off += r.encode_frame().len() as u64;
        }
    }
    panic!("no event {seq}");
}

/// Recomputes chain hashes from `from` on (an attacker who edits events and fixes the chain).
fn rechain(p: &dyn CryptoProvider, segs: &mut [(SegmentFile, Vec<Record>)]) {
    let mut prev = [0u8; 32];
    for (_, recs) in segs.iter_mut() {
        for r in recs.iter_mut() {
            r.chain = record::chain_hash(p, &prev, &r.body);
            prev = r.chain;
        }
    }
}

fn assert_problem(p: Option<Problem>, kind: &str, seq: u64) -> Problem {
    let p = p.unwrap_or_else(|| panic!("tampering ({kind}) was not detected"));
    assert_eq!(p.kind, kind, "{p}");
    assert_eq!(p.sequence, Some(seq), "{p}");
    p
}

fn assert_writer_refuses(tmp: &tempfile::TempDir) {
    let e = AuditLog::open(AuditOptions::new(tmp.path()), provider())
        .err()
        .expect("the writer must refuse a damaged log");
    assert!(matches!(e, symbi_audit::AuditError::Corrupt(_)), "{e}");
}

#[test]
fn intact_log_verifies() {
    let tmp = build();
    assert_eq!(verify(&audit(&tmp)), None);
}

#[test]
fn flipped_byte_is_a_checksum_failure_at_that_event() {
    let tmp = build();
    let dir = audit(&tmp);
    let segs = segments(&dir);
    let (si, _, off) = locate(&segs, 20);
    let path = &segs[si].0.path;
    let mut bytes = std::fs::read(path).unwrap();
    bytes[off as usize + 150] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
    let p = assert_problem(verify(&dir), "frame_checksum", 20);
    assert_eq!(p.offset, Some(off));
    assert_eq!(p.segment.as_deref(), Some(path.to_str().unwrap()));
    assert!(p.event_id.is_none() || p.event_id.is_some());
    // The writer does not "repair" this by cutting: it refuses.
    if si + 1 == segs.len() {
        assert_writer_refuses(&tmp);
    } else {
        // Damage in an older segment is found by verification; the writer still opens the
        // tail, and verification keeps reporting it.
        assert_eq!(verify(&dir).unwrap().kind, "frame_checksum");
    }
}

#[test]
fn edited_event_with_fixed_checksum_breaks_the_chain() {
    let tmp = build();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    let (si, ri, _) = locate(&segs, 20);
    let r = &mut segs[si].1[ri];
    let body = String::from_utf8(r.body.clone())
        .unwrap()
        .replace("/srv/20", "/srv/99");
    r.body = body.into_bytes();
    write_segments(&segs);
    let p = assert_problem(verify(&dir), "chain_mismatch", 20);
    assert!(p.event_id.is_some());
}

#[test]
fn edited_event_with_recomputed_chain_fails_its_signature() {
    let tmp = build();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    let (si, ri, off) = locate(&segs, 20);
    let body = String::from_utf8(segs[si].1[ri].body.clone())
        .unwrap()
        .replace("/srv/20", "/srv/99");
    segs[si].1[ri].body = body.into_bytes();
    rechain(&*provider(), &mut segs);
    write_segments(&segs);
    let p = assert_problem(verify(&dir), "bad_signature", 20);
    assert_eq!(p.offset, Some(off));
}

#[test]
fn deleted_event_is_named() {
    let tmp = build();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    let (si, ri, _) = locate(&segs, 10);
    segs[si].1.remove(ri);
    write_segments(&segs);
    let p = assert_problem(verify(&dir), "missing_events", 10);
    assert!(p.message.contains("10..10"), "{p}");
}

#[test]
fn reordered_events_are_named() {
    let tmp = build();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    let (si, ri, _) = locate(&segs, 10);
    let (si2, ri2, _) = locate(&segs, 11);
    assert_eq!(si, si2, "pick two events of one segment");
    segs[si].1.swap(ri, ri2);
    write_segments(&segs);
    assert_problem(verify(&dir), "reordered", 10);
}

#[test]
fn bytes_cut_from_the_middle_are_detected() {
    let tmp = build();
    let dir = audit(&tmp);
    let segs = segments(&dir);
    let (si, _, off) = locate(&segs, 20);
    let path = &segs[si].0.path;
    let mut bytes = std::fs::read(path).unwrap();
    bytes.drain(off as usize + 40..off as usize + 240);
    std::fs::write(path, bytes).unwrap();
    let p = verify(&dir).expect("detected");
    assert!(
        ["frame_checksum", "frame_length", "frame_truncated"].contains(&p.kind.as_str()),
        "{p}"
    );
    assert_eq!(p.sequence, Some(20), "{p}");
    assert_eq!(p.offset, Some(off));
}

#[test]
fn a_removed_middle_segment_is_named() {
    let tmp = build();
    let dir = audit(&tmp);
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    let (missing, _) = &segs[1];
    std::fs::remove_file(&missing.path).unwrap();
    let p = assert_problem(verify(&dir), "segment_missing", missing.first_seq);
    assert!(p.message.contains("removed"), "{p}");
}

#[test]
fn truncating_the_end_is_caught_by_the_checkpoint() {
    let tmp = build();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    // Drop the last five events.
    let last = segs.len() - 1;
    let keep = segs[last].1.len().saturating_sub(5);
    segs[last].1.truncate(keep);
    write_segments(&segs);
    let p = verify(&dir).expect("detected");
    assert_eq!(p.kind, "truncated", "{p}");
    assert_eq!(p.sequence, Some(55));
    assert_writer_refuses(&tmp);
}

#[test]
fn swapped_key_is_detected() {
    let p = provider();
    let attacker = p.signer_from_seed(&[0xAA; 32]).unwrap();

    // (a) Events re-signed by another key under the same key id: bad signature.
    let tmp = build();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    for (_, recs) in segs.iter_mut() {
        for r in recs.iter_mut() {
            if Event::from_body(&r.body).unwrap().seq >= 30 {
                r.signature = Some(attacker.sign(&record::event_signing_message(&r.chain)));
            }
        }
    }
    write_segments(&segs);
    assert_problem(verify(&dir), "bad_signature", 30);

    // (b) The attacker rewrites events 30.. with its own key id and a consistent chain,
    // and appends its key to pubkeys: no key_rotation introduced it.
    let tmp = build();
    let dir = audit(&tmp);
    let origin = symbi_audit::keys::read_pubkeys(&*p, &dir.join("pubkeys")).unwrap()[0]
        .name
        .clone();
    let akey = symbi_audit::note::NoteKey::new(&*p, &origin, attacker.public_key()).unwrap();
    let mut segs = segments(&dir);
    for (_, recs) in segs.iter_mut() {
        for r in recs.iter_mut() {
            let mut ev = Event::from_body(&r.body).unwrap();
            if ev.seq >= 30 {
                ev.key_id = akey.id;
                r.body = ev.canonical_body().unwrap();
            }
        }
    }
    rechain(&*p, &mut segs);
    for (_, recs) in segs.iter_mut() {
        for r in recs.iter_mut() {
            if Event::from_body(&r.body).unwrap().seq >= 30 {
                r.signature = Some(attacker.sign(&record::event_signing_message(&r.chain)));
            }
        }
    }
    write_segments(&segs);
    let mut keys = symbi_audit::keys::read_pubkeys(&*p, &dir.join("pubkeys")).unwrap();
    keys.push(akey.clone());
    symbi_audit::keys::write_pubkeys(&dir.join("pubkeys"), &keys).unwrap();
    let pr = assert_problem(verify(&dir), "unknown_key", 30);
    assert!(pr.message.contains(&akey.id.to_string()), "{pr}");

    // (c) The attacker re-signs the whole log and replaces pubkeys: a verifier that pinned
    // the real key (out of band) rejects the first event.
    let tmp = build();
    let dir = audit(&tmp);
    let real = symbi_audit::keys::read_pubkeys(&*p, &dir.join("pubkeys")).unwrap();
    let mut segs = segments(&dir);
    for (_, recs) in segs.iter_mut() {
        for r in recs.iter_mut() {
            let mut ev = Event::from_body(&r.body).unwrap();
            ev.key_id = akey.id;
            r.body = ev.canonical_body().unwrap();
        }
    }
    rechain(&*p, &mut segs);
    for (_, recs) in segs.iter_mut() {
        for r in recs.iter_mut() {
            r.signature = Some(attacker.sign(&record::event_signing_message(&r.chain)));
        }
    }
    write_segments(&segs);
    symbi_audit::keys::write_pubkeys(&dir.join("pubkeys"), std::slice::from_ref(&akey)).unwrap();
    let opts = VerifyOptions {
        trusted: Some(real.clone()),
        ..VerifyOptions::default()
    };
    let rep = verify_log(&dir, &*p, &opts).unwrap();
    let pr = assert_problem(rep.first_error, "unknown_key", 0);
    assert!(pr.message.contains("swapped"), "{pr}");
}

#[test]
fn verify_from_a_checkpoint_checks_only_the_rest() {
    let tmp = build();
    let dir = audit(&tmp);
    let p = provider();
    let reader = symbi_audit::LogReader::open(&dir, p.clone()).unwrap();
    let cp = reader
        .checkpoint_at(25)
        .expect("checkpoint at 25")
        .note
        .clone();
    let rep = verify_log(
        &dir,
        &*p,
        &VerifyOptions {
            from: Some(cp.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(rep.ok, "{:?}", rep.first_error);
    assert_eq!(rep.from_size, 25);
    assert_eq!(rep.events_checked, 35);
    // Tampering after the checkpoint is still found.
    let mut segs = segments(&dir);
    let (si, ri, _) = locate(&segs, 40);
    segs[si].1[ri].signature.as_mut().unwrap()[0] ^= 1;
    write_segments(&segs);
    let rep = verify_log(
        &dir,
        &*p,
        &VerifyOptions {
            from: Some(cp),
            ..Default::default()
        },
    )
    .unwrap();
    assert_problem(rep.first_error, "bad_signature", 40);
    // Single (non-batch) verification finds the same event.
    let rep = verify_log(
        &dir,
        &*p,
        &VerifyOptions {
            batch: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_problem(rep.first_error, "bad_signature", 40);
}

// ---- per-batch signatures (`[audit] signatures = "per_batch"`) ----------------------------

/// A closed log of 60 events written in batches of 6 with per-batch signatures, in several
/// segments (some batches span a segment rotation), checkpointed every 30 events.
fn build_per_batch() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = AuditOptions::new(tmp.path());
    o.segment_size = 8192;
    o.checkpoint_every = 30;
    o.checkpoint_interval = std::time::Duration::from_secs(3600);
    o.signatures = symbi_audit::Signatures::PerBatch;
    let log = AuditLog::open(o, provider()).unwrap();
    let agent = AgentId::new();
    for b in 0..10 {
        let drafts = (0..6)
            .map(|k| {
                let i = b * 6 + k;
                EventDraft::new("file_read", json!({"i": i, "path": format!("/srv/{i}")}))
                    .agent(agent, "reader")
            })
            .collect();
        assert!(
            log.append_many_blocking(drafts)
                .into_iter()
                .all(|r| r.is_ok())
        );
    }
    log.close().unwrap();
    tmp
}

fn seq_of(r: &Record) -> u64 {
    Event::from_body(&r.body).unwrap().seq
}

/// Verifies with no error and no warning; `events` were checked.
fn assert_clean(dir: &Path, events: u64) {
    let rep = verify_log(dir, &*provider(), &VerifyOptions::default()).unwrap();
    assert!(
        rep.ok && rep.warnings.is_empty(),
        "{:?} {:?}",
        rep.first_error,
        rep.warnings
    );
    assert_eq!(rep.events_checked, events);
}

#[test]
fn per_batch_log_signs_batch_ends_and_segment_ends_and_verifies() {
    let tmp = build_per_batch();
    let dir = audit(&tmp);
    let segs = segments(&dir);
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let all: Vec<&Record> = segs.iter().flat_map(|(_, r)| r.iter()).collect();
    assert_eq!(all.len(), 60);
    for r in &all {
        // The last event of every batch carries the signature.
        assert_eq!(
            r.signature.is_some(),
            seq_of(r) % 6 == 5 || segs.iter().any(|(_, rs)| rs.last() == Some(*r)),
            "event {}",
            seq_of(r)
        );
    }
    for (_, recs) in &segs {
        assert!(
            recs.last().unwrap().signature.is_some(),
            "every segment ends with a signed record"
        );
    }
    assert_clean(&dir, 60);
}

#[test]
fn edited_covered_event_fails_the_signature_of_its_batch() {
    let tmp = build_per_batch();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    let (si, ri, _) = locate(&segs, 20);
    assert!(
        segs[si].1[ri].signature.is_none(),
        "event 20 is covered by the signature of event 23"
    );
    let body = String::from_utf8(segs[si].1[ri].body.clone())
        .unwrap()
        .replace("/srv/20", "/srv/99");
    segs[si].1[ri].body = body.into_bytes();
    rechain(&*provider(), &mut segs);
    write_segments(&segs);
    let first_signed_after = segs
        .iter()
        .flat_map(|(_, r)| r.iter())
        .map(|r| (seq_of(r), r.signature.is_some()))
        .find(|&(s, signed)| s >= 20 && signed)
        .unwrap()
        .0;
    let p = assert_problem(verify(&dir), "bad_signature", first_signed_after);
    assert!(
        p.message.contains("events 18..") || p.message.contains(&format!("..{first_signed_after}")),
        "{p}"
    );
}

/// Covered records appended after the last signed one, as a crash between writing a batch's
/// frames and its signed last record leaves them: a warning, not verified, cut on open.
#[test]
fn unsealed_batch_at_the_end_is_a_warning_and_cut_when_the_writer_opens() {
    let tmp = build_per_batch();
    let dir = audit(&tmp);
    let rep0 = verify_log(&dir, &*provider(), &VerifyOptions::default()).unwrap();
    let mut segs = segments(&dir);
    let (last, mut chain) = {
        let r = segs.last().unwrap().1.last().unwrap();
        (Event::from_body(&r.body).unwrap(), r.chain)
    };
    for k in 1..=3u64 {
        let ev = Event {
            seq: last.seq + k,
            id: symbi_types::EventId::new(),
            ..last.clone()
        };
        let body = ev.canonical_body().unwrap();
        chain = record::chain_hash(&*provider(), &chain, &body);
        segs.last_mut().unwrap().1.push(Record {
            chain,
            signature: None,
            body,
        });
    }
    write_segments(&segs);
    let rep = verify_log(&dir, &*provider(), &VerifyOptions::default()).unwrap();
    assert!(rep.ok, "{:?}", rep.first_error);
    assert_eq!(
        rep.events_checked, 60,
        "unsigned records are not counted as verified"
    );
    assert_eq!(
        (rep.root.as_str(), rep.chain.as_str()),
        (rep0.root.as_str(), rep0.chain.as_str())
    );
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("events 60..62") && w.contains("no signature")),
        "{:?}",
        rep.warnings
    );
    // The writer cuts them and carries on from event 60.
    let mut o = AuditOptions::new(tmp.path());
    o.signatures = symbi_audit::Signatures::PerBatch;
    let log = AuditLog::open(o, provider()).unwrap();
    assert_eq!(
        log.append_blocking(EventDraft::new("file_read", json!({})))
            .unwrap()
            .sequence,
        60
    );
    log.close().unwrap();
    assert_clean(&dir, 61);
}

/// Removing the signed last record of a batch leaves covered records no signature vouches
/// for; inside a segment that has a successor, that is tampering.
#[test]
fn removed_batch_signature_is_detected() {
    let tmp = build_per_batch();
    let dir = audit(&tmp);
    let mut segs = segments(&dir);
    // The first segment's last record is signed; drop it and keep the covered ones before it.
    let n = segs[0].1.len();
    assert!(segs[0].1[n - 2].signature.is_none());
    segs[0].1.pop().unwrap();
    write_segments(&segs);
    // Named at the start of the run the removed signature covered, before the gap it left.
    let p = verify(&dir).expect("removal detected");
    assert_eq!(p.kind, "unsigned_events", "{p}");
    let first_covered = segs[0]
        .1
        .iter()
        .rposition(|r| r.signature.is_some())
        .map_or(0, |i| seq_of(&segs[0].1[i]) + 1);
    assert_eq!(p.sequence, Some(first_covered), "{p}");
}
