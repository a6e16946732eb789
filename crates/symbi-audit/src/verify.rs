//! Full verification from the segments alone: framing, sequence, canonical bodies, chain,
//! signatures (Ed25519 batch verification), key rotations, the Merkle root at every signed
//! checkpoint, checkpoint signatures and monotonic timestamps. Derived files (tree, index)
//! are not trusted, except the hash file as a starting point with `--from`, and then only
//! after it reproduces the starting checkpoint's root.

use crate::error::{AuditError, Result};
use crate::keys::{self, PUBKEYS_FILE};
use crate::log::{CHECKPOINTS_FILE, TREE_FILE, read_checkpoints};
use crate::merkle::{CompactRange, Hash, TreeStore, leaf_hash};
use crate::note::{NoteKey, SignedCheckpoint};
use crate::record::{self, Event};
use crate::segment::{self, ScanError, SegmentFile};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;
use symbi_crypto::{CryptoProvider, PublicKey, Signature};
use symbi_types::event::types;

/// How to verify.
pub struct VerifyOptions<'a> {
    /// Keys pinned by the caller (the first is the trust anchor). Default: the first key of
    /// `pubkeys`; later keys are accepted only when a `key_rotation` event introduces them.
    pub trusted: Option<Vec<NoteKey>>,
    /// Start from this signed checkpoint (note text) instead of the beginning.
    pub from: Option<String>,
    /// Batch signature verification (default true); false checks one by one.
    pub batch: bool,
    /// Called with (events checked, events total) as verification proceeds.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        Self {
            trusted: None,
            from: None,
            batch: true,
            progress: None,
        }
    }
}

/// What was wrong, and where.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// Machine-readable kind: `frame_checksum`, `frame_truncated`, `frame_length`,
    /// `bad_record`, `body_invalid`, `segment_header`, `segment_missing`, `missing_events`,
    /// `reordered`, `duplicate`, `chain_mismatch`, `unknown_key`, `bad_signature`,
    /// `bad_rotation`, `timestamp_order`, `checkpoint_root`, `checkpoint_chain`,
    /// `checkpoint_signature`, `checkpoint_order`, `checkpoint_log`, `truncated`,
    /// `from_checkpoint`.
    pub kind: String,
    /// Sequence number of the first bad event (or where it should be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Its id, when the body could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Segment file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Byte offset of the record's frame in the segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Explanation.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(s) = self.sequence {
            write!(f, " at event {s}")?;
        }
        if let Some(id) = &self.event_id {
            write!(f, " ({id})")?;
        }
        if let Some(seg) = &self.segment {
            write!(f, " in {seg}")?;
            if let Some(o) = self.offset {
                write!(f, " at offset {o}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Summary of a checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointSummary {
    /// Tree size.
    pub size: u64,
    /// Root hash, hex.
    pub root: String,
    /// Signing time, Unix milliseconds.
    pub timestamp_ms: u64,
    /// Key id that signed it.
    pub key_id: String,
}

/// The outcome of a verification.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// True when nothing is wrong.
    pub ok: bool,
    /// The log's origin.
    pub origin: String,
    /// Events checked.
    pub events_checked: u64,
    /// First event checked (non-zero with `--from`).
    pub from_size: u64,
    /// Segment files read.
    pub segments: usize,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints_checked: usize,
    /// The latest checkpoint that verified.
    pub latest_checkpoint: Option<CheckpointSummary>,
    /// Merkle root over all checked events, hex.
    pub root: String,
    /// Chain hash after the last checked event, hex.
    pub chain: String,
    /// Keys in effect, in order of introduction (key ids).
    pub keys: Vec<String>,
    /// `batch` or `single`.
    pub signature_mode: String,
    /// The first problem found (verification stops there).
    pub first_error: Option<Problem>,
    /// Things that are not tampering (a torn tail not yet repaired, events after the last
    /// checkpoint).
    pub warnings: Vec<String>,
    /// Wall time.
    pub elapsed_ms: u64,
}

struct Pending<'a> {
    key: PublicKey,
    msg: [u8; 53],
    sig: Signature,
    at: Loc<'a>,
    /// First event of the covered run this signature also vouches for (per-batch signing).
    covers_from: Option<u64>,
}

#[derive(Clone)]
struct Loc<'a> {
    seq: u64,
    id: Option<String>,
    seg: &'a SegmentFile,
    offset: u64,
}

fn problem(kind: &str, at: Option<&Loc>, message: impl Into<String>) -> Problem {
    Problem {
        kind: kind.into(),
        sequence: at.map(|l| l.seq),
        event_id: at.and_then(|l| l.id.clone()),
        segment: at.map(|l| l.seg.path.display().to_string()),
        offset: at.map(|l| l.offset),
        message: message.into(),
    }
}

struct State<'a> {
    p: &'a dyn CryptoProvider,
    batch: bool,
    pending: Vec<Pending<'a>>,
}

impl<'a> State<'a> {
    /// Verifies queued signatures; returns the first bad one.
    fn flush(&mut self) -> Option<Problem> {
        if self.pending.is_empty() {
            return None;
        }
        let ok = if self.batch {
            let items: Vec<(&PublicKey, &[u8], &Signature)> = self
                .pending
                .iter()
                .map(|x| (&x.key, x.msg.as_slice(), &x.sig))
                .collect();
            self.p.verify_batch(&items).is_ok()
        } else {
            false
        };
        let mut found = None;
        if !ok {
            for x in &self.pending {
                if self.p.verify(&x.key, &x.msg, &x.sig).is_err() {
                    let what = match x.covers_from {
                        Some(first) => format!(
                            "the Ed25519 signature does not verify under the event's key; it vouches for events {first}..{} \
                             (recorded without their own signatures), so one of them, this event, its chain hash or its \
                             signature was changed, or it was signed by another key",
                            x.at.seq
                        ),
                        None => "the Ed25519 signature does not verify under the event's key: the event, its chain hash or its \
                                 signature was changed, or it was signed by another key"
                            .to_string(),
                    };
                    found = Some(problem("bad_signature", Some(&x.at), what));
                    break;
                }
            }
        }
        self.pending.clear();
        found
    }
}

/// Verifies the log in `dir`.
pub fn verify_log(
    dir: &Path,
    p: &dyn CryptoProvider,
    opts: &VerifyOptions,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let pubkeys = keys::read_pubkeys(p, &dir.join(PUBKEYS_FILE))?;
    let anchors: Vec<NoteKey> = match &opts.trusted {
        Some(k) if !k.is_empty() => k.clone(),
        _ => vec![pubkeys[0].clone()],
    };
    let origin = anchors[0].name.clone();
    let segments = segment::list_segments(dir)?;
    let (cps, _, cp_err) = read_checkpoints(&dir.join(CHECKPOINTS_FILE))?;
    let total_hint: u64 = segments.last().map_or(0, |s| s.first_seq) + 1;

    let mut report = VerifyReport {
        ok: false,
        origin: origin.clone(),
        events_checked: 0,
        from_size: 0,
        segments: 0,
        checkpoints_checked: 0,
        latest_checkpoint: None,
        root: String::new(),
        chain: String::new(),
        keys: vec![anchors[0].id.to_string()],
        signature_mode: if opts.batch { "batch" } else { "single" }.into(),
        first_error: None,
        warnings: Vec::new(),
        elapsed_ms: 0,
    };
    if let Some((off, msg, torn)) = cp_err {
        if torn {
            report.warnings.push(format!(
                "{CHECKPOINTS_FILE} ends in a torn record at offset {off} (cut on next open)"
            ));
        } else {
            report.first_error = Some(Problem {
                kind: "checkpoint_log".into(),
                sequence: None,
                event_id: None,
                segment: Some(dir.join(CHECKPOINTS_FILE).display().to_string()),
                offset: Some(off),
                message: msg,
            });
            return Ok(finish(report, started));
        }
    }

    // Starting point.
    let mut key = anchors[0].clone();
    let mut introduced = anchors.clone();
    let mut chain: Hash = [0u8; 32];
    let mut range = CompactRange::new();
    let mut next: u64 = 0;
    let mut last_ts: Option<chrono::DateTime<chrono::Utc>> = None;
    if let Some(note) = &opts.from {
        let all: Vec<NoteKey> = anchors.iter().chain(pubkeys.iter()).cloned().collect();
        let (cp, k) = SignedCheckpoint::verify(p, note, &all)
            .map_err(|e| AuditError::Verification(format!("--from checkpoint: {e}")))?;
        let tree = TreeStore::open(&dir.join(TREE_FILE), false, cp.checkpoint.size)?;
        if tree.leaves() < cp.checkpoint.size {
            return Err(AuditError::Invalid(
                "tree.hashes does not reach the --from checkpoint; verify from the start".into(),
            ));
        }
        range = CompactRange::from_source(&tree, cp.checkpoint.size)?;
        if range.root(p) != cp.checkpoint.root {
            report.first_error = Some(problem(
                "from_checkpoint",
                None,
                "tree.hashes does not reproduce the --from checkpoint's root; verify from the start",
            ));
            return Ok(finish(report, started));
        }
        key = k.clone();
        introduced = vec![k.clone()];
        report.keys = vec![k.id.to_string()];
        chain = cp.checkpoint.chain;
        next = cp.checkpoint.size;
        report.from_size = next;
    }

    let start_size = next;
    let mut cp_iter = cps
        .iter()
        .map(|(_, c)| c)
        .filter(move |c| c.checkpoint.size >= start_size)
        .peekable();
    let mut last_cp_ts: Option<u64> = None;
    let mut state = State {
        p,
        batch: opts.batch,
        pending: Vec::new(),
    };
    // The open run of records without their own signature (per-batch signing): where it
    // starts, and the Merkle range and chain hash before it, for reporting a log whose end
    // was never sealed.
    let mut uncovered: Option<(Loc, CompactRange, Hash)> = None;

    // Checkpoints are checked when the events reach their size.
    macro_rules! check_checkpoints {
        () => {
            while let Some(c) = cp_iter.peek() {
                if c.checkpoint.size != next {
                    break;
                }
                let c = cp_iter.next().unwrap();
                if let Some(pr) = state.flush() {
                    report.first_error = Some(pr);
                    return Ok(finish(report, started));
                }
                let cpp = |kind: &str, m: String| Problem {
                    kind: kind.into(),
                    sequence: Some(c.checkpoint.size),
                    event_id: None,
                    segment: Some(dir.join(CHECKPOINTS_FILE).display().to_string()),
                    offset: None,
                    message: m,
                };
                if let Err(e) = SignedCheckpoint::verify(p, &c.note, std::slice::from_ref(&key)) {
                    report.first_error = Some(cpp("checkpoint_signature", format!("checkpoint at size {}: {e}", next)));
                    return Ok(finish(report, started));
                }
                if c.checkpoint.root != range.root(p) {
                    report.first_error = Some(cpp(
                        "checkpoint_root",
                        format!("the first {next} events hash to a different Merkle root than the signed checkpoint"),
                    ));
                    return Ok(finish(report, started));
                }
                if c.checkpoint.chain != chain {
                    report.first_error =
                        Some(cpp("checkpoint_chain", format!("the chain hash after {next} events differs from the checkpoint's")));
                    return Ok(finish(report, started));
                }
                if last_cp_ts.is_some_and(|t| c.checkpoint.timestamp_ms <= t) {
                    report.first_error =
                        Some(cpp("checkpoint_order", "checkpoint timestamps must increase strictly".to_string()));
                    return Ok(finish(report, started));
                }
                last_cp_ts = Some(c.checkpoint.timestamp_ms);
                report.checkpoints_checked += 1;
                report.latest_checkpoint = Some(CheckpointSummary {
                    size: c.checkpoint.size,
                    root: hex::encode(c.checkpoint.root),
                    timestamp_ms: c.checkpoint.timestamp_ms,
                    key_id: key.id.to_string(),
                });
            }
        };
    }
    check_checkpoints!();

    let start_seg = segments
        .iter()
        .rposition(|s| s.first_seq <= next)
        .unwrap_or(0);
    let nsegs = segments.len();
    for (si, seg) in segments.iter().enumerate().skip(start_seg) {
        report.segments += 1;
        let scan = segment::scan_file(&seg.path)?;
        let is_last = si + 1 == nsegs;
        if scan.header_seq.is_some() && scan.header_seq != Some(seg.first_seq) {
            let at = Loc {
                seq: seg.first_seq,
                id: None,
                seg,
                offset: 0,
            };
            report.first_error = Some(problem(
                "segment_header",
                Some(&at),
                "the header names another first sequence than the file name",
            ));
            return Ok(finish(report, started));
        }
        if seg.first_seq > next {
            if let Some(pr) = state.flush() {
                report.first_error = Some(pr);
                return Ok(finish(report, started));
            }
            let at = Loc {
                seq: next,
                id: None,
                seg,
                offset: 0,
            };
            report.first_error = Some(problem(
                "segment_missing",
                Some(&at),
                format!(
                    "events {next}..{} are missing before {}: events were deleted or a segment file was removed",
                    seg.first_seq - 1,
                    seg.path.display()
                ),
            ));
            return Ok(finish(report, started));
        }
        let records = &scan.records;
        for (ri, r) in records.iter().enumerate() {
            let mut at = Loc {
                seq: next,
                id: None,
                seg,
                offset: r.offset,
            };
            let ev = match Event::from_body(&r.record.body) {
                Ok(ev) => ev,
                Err(m) => {
                    if let Some(pr) = state.flush() {
                        report.first_error = Some(pr);
                        return Ok(finish(report, started));
                    }
                    report.first_error = Some(problem("body_invalid", Some(&at), m));
                    return Ok(finish(report, started));
                }
            };
            if ev.seq < report.from_size {
                continue; // before the --from checkpoint
            }
            at.id = Some(ev.id.to_string());
            if ev.seq != next {
                if let Some(pr) = state.flush() {
                    report.first_error = Some(pr);
                    return Ok(finish(report, started));
                }
                let later = records[ri + 1..]
                    .iter()
                    .filter_map(|x| Event::from_body(&x.record.body).ok())
                    .any(|e| e.seq == next);
                let (kind, msg) = if ev.seq < next {
                    (
                        "duplicate",
                        format!(
                            "record has sequence {} where {next} was expected: an event was copied or moved back",
                            ev.seq
                        ),
                    )
                } else if later {
                    (
                        "reordered",
                        format!(
                            "record has sequence {} where {next} was expected, and event {next} comes later: events were reordered",
                            ev.seq
                        ),
                    )
                } else {
                    (
                        "missing_events",
                        format!(
                            "record has sequence {} where {next} was expected: events {next}..{} were deleted",
                            ev.seq,
                            ev.seq - 1
                        ),
                    )
                };
                report.first_error = Some(problem(kind, Some(&at), msg));
                return Ok(finish(report, started));
            }
            let computed = record::chain_hash(p, &chain, &r.record.body);
            if computed != r.record.chain {
                if let Some(pr) = state.flush() {
                    report.first_error = Some(pr);
                    return Ok(finish(report, started));
                }
                report.first_error = Some(problem(
                    "chain_mismatch",
                    Some(&at),
                    "the stored chain hash is not SHA-256(previous chain hash ‖ body): this event's body was altered, or the \
                     event before it was changed or removed",
                ));
                return Ok(finish(report, started));
            }
            if ev.key_id != key.id {
                if let Some(pr) = state.flush() {
                    report.first_error = Some(pr);
                    return Ok(finish(report, started));
                }
                report.first_error = Some(problem(
                    "unknown_key",
                    Some(&at),
                    format!(
                        "signed with key {} but the key in effect is {} (no key_rotation event introduced {}): the signing key was swapped",
                        ev.key_id, key.id, ev.key_id
                    ),
                ));
                return Ok(finish(report, started));
            }
            if last_ts.is_some_and(|t| ev.timestamp < t) {
                if let Some(pr) = state.flush() {
                    report.first_error = Some(pr);
                    return Ok(finish(report, started));
                }
                report.first_error = Some(problem(
                    "timestamp_order",
                    Some(&at),
                    "timestamp is earlier than the previous event's",
                ));
                return Ok(finish(report, started));
            }
            last_ts = Some(ev.timestamp);
            match r.record.signature {
                Some(sig) => {
                    let covers_from = uncovered.take().map(|(l, _, _)| l.seq);
                    state.pending.push(Pending {
                        key: key.public,
                        msg: record::event_signing_message(&computed),
                        sig,
                        at: at.clone(),
                        covers_from,
                    });
                }
                None => {
                    if ev.event_type == types::KEY_ROTATION {
                        if let Some(pr) = state.flush() {
                            report.first_error = Some(pr);
                            return Ok(finish(report, started));
                        }
                        report.first_error = Some(problem(
                            "unsigned_rotation",
                            Some(&at),
                            "a key_rotation event must carry its own signature",
                        ));
                        return Ok(finish(report, started));
                    }
                    if uncovered.is_none() {
                        uncovered = Some((at.clone(), range.clone(), chain));
                    }
                }
            }
            if state.pending.len() >= 2048
                && let Some(pr) = state.flush()
            {
                report.first_error = Some(pr);
                return Ok(finish(report, started));
            }
            if ev.event_type == types::KEY_ROTATION {
                match keys::check_rotation(p, &key, &ev.details) {
                    Ok(new) => {
                        report.keys.push(new.id.to_string());
                        introduced.push(new.clone());
                        key = new;
                    }
                    Err(m) => {
                        if let Some(pr) = state.flush() {
                            report.first_error = Some(pr);
                            return Ok(finish(report, started));
                        }
                        report.first_error = Some(problem("bad_rotation", Some(&at), m));
                        return Ok(finish(report, started));
                    }
                }
            }
            chain = computed;
            range.push(p, leaf_hash(p, &r.record.body), |_| {});
            next += 1;
            report.events_checked += 1;
            if let Some(f) = opts.progress
                && next.is_multiple_of(1024)
            {
                f(next, total_hint.max(next));
            }
            check_checkpoints!();
        }
        if let Some((off, err)) = &scan.error {
            let at = Loc {
                seq: next,
                id: None,
                seg,
                offset: *off,
            };
            if is_last && scan.torn_tail {
                report.warnings.push(format!(
                    "{} ends in {} bytes of an incomplete record at offset {off} (a crash; never acknowledged; cut when the log is next opened)",
                    seg.path.display(),
                    scan.len - off
                ));
            } else {
                if let Some(pr) = state.flush() {
                    report.first_error = Some(pr);
                    return Ok(finish(report, started));
                }
                let (kind, msg) = match err {
                    ScanError::Header => ("segment_header", "the segment header is missing or damaged".to_string()),
                    ScanError::Frame(record::FrameError::BadChecksum) => (
                        "frame_checksum",
                        "the record's CRC-32C does not match its bytes: the record was altered (flipped or overwritten bytes)".into(),
                    ),
                    ScanError::Frame(record::FrameError::Truncated) => (
                        "frame_truncated",
                        "the segment ends inside a record although later data exists: bytes were cut out".into(),
                    ),
                    ScanError::Frame(record::FrameError::BadLength(n)) => (
                        "frame_length",
                        format!("impossible record length {n}: bytes were cut out or inserted before this point"),
                    ),
                    ScanError::Payload(m) => ("bad_record", m.clone()),
                };
                report.first_error = Some(problem(kind, Some(&at), msg));
                return Ok(finish(report, started));
            }
        }
        // The writer signs the last record of every segment it closes.
        if !is_last && let Some((first, _, _)) = &uncovered {
            if let Some(pr) = state.flush() {
                report.first_error = Some(pr);
                return Ok(finish(report, started));
            }
            report.first_error = Some(problem(
                "unsigned_events",
                Some(first),
                format!(
                    "events {}..{} at the end of {} carry no signature and none follows in that segment: a signed record was removed",
                    first.seq,
                    next - 1,
                    seg.path.display()
                ),
            ));
            return Ok(finish(report, started));
        }
    }
    if let Some(pr) = state.flush() {
        report.first_error = Some(pr);
        return Ok(finish(report, started));
    }
    // Records without a signature at the very end: a crash after their frames were written
    // but before their batch's signed record was. They were never acknowledged (and the
    // writer cuts them when it next opens the log), so they are not verified: the figures
    // below describe the signed prefix. A checkpoint covering them means the signed record
    // existed and was removed.
    if let Some((first, before_range, before_chain)) = uncovered.take() {
        let checkpointed = report
            .latest_checkpoint
            .as_ref()
            .is_some_and(|c| c.size > first.seq);
        if checkpointed || cp_iter.peek().is_some() {
            report.first_error = Some(problem(
                "unsigned_events",
                Some(&first),
                format!(
                    "events {}..{} carry no signature and no signed record follows, but a checkpoint covers them: their batch's signed record was removed",
                    first.seq,
                    next - 1
                ),
            ));
            return Ok(finish(report, started));
        }
        report.warnings.push(format!(
            "events {}..{} at the end carry no signature and no signed record follows (a crash before their batch was sealed; \
             never acknowledged; not verified; cut when the log is next opened)",
            first.seq,
            next - 1
        ));
        report.events_checked -= next - first.seq;
        next = first.seq;
        range = before_range;
        chain = before_chain;
    }
    if let Some(f) = opts.progress {
        f(next, next);
    }
    if let Some(c) = cp_iter.next() {
        report.first_error = Some(Problem {
            kind: "truncated".into(),
            sequence: Some(next),
            event_id: None,
            segment: None,
            offset: None,
            message: format!(
                "a checkpoint signed at {} covers {} events but the log holds only {next}: events at the end were removed",
                chrono::DateTime::from_timestamp_millis(c.checkpoint.timestamp_ms as i64)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                c.checkpoint.size
            ),
        });
        return Ok(finish(report, started));
    }
    match &report.latest_checkpoint {
        Some(c) if c.size < next => report.warnings.push(format!(
            "{} events after the latest checkpoint (size {}) are chained and signed but not yet covered by a signed root",
            next - c.size,
            c.size
        )),
        None if next > 0 => report.warnings.push("no signed checkpoint covers the log yet".into()),
        _ => {}
    }
    report.root = hex::encode(range.root(p));
    report.chain = hex::encode(chain);
    report.ok = true;
    Ok(finish(report, started))
}

fn finish(mut r: VerifyReport, started: Instant) -> VerifyReport {
    r.ok = r.first_error.is_none() && r.ok;
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    r
}
