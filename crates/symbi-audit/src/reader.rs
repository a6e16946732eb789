//! Read-only access for queries, proofs and streaming. Safe to use while a writer (another
//! process or [`AuditLog`](crate::AuditLog)) appends: it sees every complete record and
//! never modifies anything.

use crate::error::{AuditError, Result};
use crate::index::{IndexEntry, IndexFile, type_tag};
use crate::keys::{self, PUBKEYS_FILE};
use crate::log::{
    CHECKPOINTS_FILE, INDEX_FILE, StoredEvent, TREE_FILE, index_entry, read_checkpoints,
};
use crate::merkle::{self, Hash, TreeStore, leaf_hash};
use crate::note::{NoteKey, SignedCheckpoint};
use crate::record::{self, Event, Record};
use crate::segment::{self, SEGMENTS_DIR, SegmentFile};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbi_crypto::CryptoProvider;
use symbi_types::{AgentId, EventId};

/// A historical query. Empty fields match everything.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Only events about this agent.
    pub agent: Option<AgentId>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// At most this many events.
    pub limit: Option<usize>,
    /// Newest first (with `limit`: the latest N).
    pub newest_first: bool,
}

/// A read-only view of the log.
pub struct LogReader {
    p: Arc<dyn CryptoProvider>,
    dir: PathBuf,
    segments: Vec<SegmentFile>,
    tree: TreeStore,
    index: IndexFile,
    checkpoints: Vec<SignedCheckpoint>,
    pubkeys: Vec<NoteKey>,
}

/// An inclusion proof a third party can check with the log's verifier key.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct InclusionProof {
    /// Always `"inclusion"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The log's origin.
    pub origin: String,
    /// Leaf index (the event's sequence number).
    pub leaf_index: u64,
    /// Tree size of the checkpoint the proof leads to.
    pub tree_size: u64,
    /// The event's canonical body (the Merkle entry), as UTF-8 text.
    pub entry: String,
    /// `SHA-256(0x00 ‖ entry)`, hex.
    pub leaf_hash: String,
    /// RFC 9162 audit path, hex, leaf to root.
    pub path: Vec<String>,
    /// The signed checkpoint (C2SP note).
    pub checkpoint: String,
    /// Verifier keys of the log (C2SP vkeys), oldest first. Pin the first one out of band.
    pub verifier_keys: Vec<String>,
}

/// A consistency proof between two checkpoints.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct ConsistencyProof {
    /// Always `"consistency"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The log's origin.
    pub origin: String,
    /// Older tree size.
    pub old_size: u64,
    /// Newer tree size.
    pub new_size: u64,
    /// RFC 9162 consistency path, hex.
    pub path: Vec<String>,
    /// Signed checkpoint at `old_size`.
    pub old_checkpoint: String,
    /// Signed checkpoint at `new_size`.
    pub new_checkpoint: String,
    /// Verifier keys of the log, oldest first.
    pub verifier_keys: Vec<String>,
}

impl LogReader {
    /// Opens a view of the log in `dir`.
    pub fn open(dir: &Path, p: Arc<dyn CryptoProvider>) -> Result<LogReader> {
        Self::open_with(dir, p, true)
    }

    /// Opens a view for reading events only (no checkpoints: cheaper for polling, e.g.
    /// `symbi audit tail --follow`).
    pub fn open_events_only(dir: &Path, p: Arc<dyn CryptoProvider>) -> Result<LogReader> {
        Self::open_with(dir, p, false)
    }

    fn open_with(
        dir: &Path,
        p: Arc<dyn CryptoProvider>,
        with_checkpoints: bool,
    ) -> Result<LogReader> {
        if !dir.join(SEGMENTS_DIR).is_dir() {
            return Err(AuditError::Invalid(format!(
                "{} holds no audit log (no `{SEGMENTS_DIR}` directory); check --data-dir or [audit] storage",
                dir.display()
            )));
        }
        let pubkeys = keys::read_pubkeys(&*p, &dir.join(PUBKEYS_FILE))?;
        let segments = segment::list_segments(dir)?;
        let (cps, _, _) = if with_checkpoints {
            read_checkpoints(&dir.join(CHECKPOINTS_FILE))?
        } else {
            (Vec::new(), 0, None)
        };
        let checkpoints = cps.into_iter().map(|(_, c)| c).collect();
        let mut index = IndexFile::open(&dir.join(INDEX_FILE), false, u64::MAX)
            .unwrap_or_else(|_| IndexFile::in_memory());
        let mut tree = TreeStore::open(&dir.join(TREE_FILE), false, index.len())
            .unwrap_or_else(|_| TreeStore::in_memory());
        if tree.leaves() < index.len() {
            index = IndexFile::open(&dir.join(INDEX_FILE), false, tree.leaves())
                .unwrap_or_else(|_| IndexFile::in_memory());
        }
        if index.len() < tree.leaves() {
            tree.truncate(index.len())?;
        }
        let mut r = LogReader {
            p,
            dir: dir.to_path_buf(),
            segments,
            tree,
            index,
            checkpoints,
            pubkeys,
        };
        r.extend()?;
        Ok(r)
    }

    /// Indexes (in memory) the events written after the index file's end. Reads only the
    /// bytes after the last indexed record, so following a live log stays cheap.
    fn extend(&mut self) -> Result<()> {
        let n = self.index.len();
        let (start, mut off) = if n > 0 {
            let last = self.index.get(n - 1)?;
            match self
                .segments
                .iter()
                .position(|s| s.first_seq == last.segment)
            {
                Some(i) => (i, last.offset + last.frame_len as u64),
                None => {
                    return Err(AuditError::Corrupt(format!(
                        "the index names a missing segment {}",
                        last.segment
                    )));
                }
            }
        } else {
            (0, record::SEGMENT_HEADER_LEN as u64)
        };
        for s in &self.segments[start.min(self.segments.len())..] {
            let mut f = File::open(&s.path).map_err(|e| AuditError::io(&s.path, e))?;
            let mut buf = Vec::new();
            use std::io::{Read, Seek, SeekFrom};
            f.seek(SeekFrom::Start(off))
                .and_then(|_| f.read_to_end(&mut buf))
                .map_err(|e| AuditError::io(&s.path, e))?;
            let mut pos = 0usize;
            while let Ok(Some((payload, next))) = record::read_frame(&buf, pos) {
                let Ok(rec) = Record::decode_payload(payload) else {
                    return Ok(());
                };
                let Ok(ev) = Event::from_body(&rec.body) else {
                    return Ok(());
                };
                if ev.seq != self.index.len() {
                    return Ok(()); // a gap or damage: verification reports it; queries stop here.
                }
                self.tree.push(&*self.p, leaf_hash(&*self.p, &rec.body));
                self.index.push(index_entry(
                    &*self.p,
                    &ev,
                    s.first_seq,
                    off + pos as u64,
                    (next - pos) as u32,
                ));
                pos = next;
            }
            if pos != buf.len() {
                return Ok(()); // a record still being written (or damage)
            }
            off = record::SEGMENT_HEADER_LEN as u64;
        }
        Ok(())
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of readable events.
    pub fn size(&self) -> u64 {
        self.index.len()
    }

    /// Segment files.
    pub fn segments(&self) -> &[SegmentFile] {
        &self.segments
    }

    /// Verifier keys, oldest first.
    pub fn pubkeys(&self) -> &[NoteKey] {
        &self.pubkeys
    }

    /// Signed checkpoints, oldest first.
    pub fn checkpoints(&self) -> &[SignedCheckpoint] {
        &self.checkpoints
    }

    /// The crypto provider.
    pub fn provider(&self) -> &Arc<dyn CryptoProvider> {
        &self.p
    }

    /// Merkle root over the first `size` events (from the hash file; verification
    /// recomputes it from the events instead).
    pub fn root(&self, size: u64) -> Result<Hash> {
        if size > self.size() {
            return Err(AuditError::Invalid(format!(
                "the log holds only {} events",
                self.size()
            )));
        }
        merkle::subtree_root(&*self.p, &self.tree, 0, size)
    }

    /// The Merkle tree view (for callers that build their own proofs).
    pub fn tree(&self) -> &TreeStore {
        &self.tree
    }

    fn segment_path(&self, first_seq: u64) -> PathBuf {
        self.dir
            .join(SEGMENTS_DIR)
            .join(segment::segment_name(first_seq))
    }

    fn read_at(&self, e: &IndexEntry) -> Result<StoredEvent> {
        let path = self.segment_path(e.segment);
        let f = File::open(&path).map_err(|err| AuditError::io(&path, err))?;
        let mut buf = vec![0u8; e.frame_len as usize];
        f.read_exact_at(&mut buf, e.offset)
            .map_err(|err| AuditError::io(&path, err))?;
        let bad = |m: String| {
            AuditError::Corrupt(format!("{} at offset {}: {m}", path.display(), e.offset))
        };
        let (payload, _) = record::read_frame(&buf, 0)
            .map_err(|fe| bad(fe.to_string()))?
            .ok_or_else(|| bad("empty".into()))?;
        let record = Record::decode_payload(payload).map_err(bad)?;
        let event = Event::from_body(&record.body).map_err(bad)?;
        if event.seq != e.seq {
            return Err(bad(format!(
                "index says sequence {} but the record has {}",
                e.seq, event.seq
            )));
        }
        Ok(StoredEvent {
            event,
            record,
            segment: e.segment,
            offset: e.offset,
        })
    }

    /// The event with sequence number `seq`.
    pub fn event(&self, seq: u64) -> Result<StoredEvent> {
        self.read_at(&self.index.get(seq)?)
    }

    /// The event with this id. Ids are UUID v7 carrying the event's millisecond, so this is
    /// a binary search on time; ids of other shapes fall back to a scan.
    pub fn find(&self, id: EventId) -> Result<StoredEvent> {
        let range = match id.0.get_timestamp() {
            Some(t) => {
                let (s, n) = t.to_unix();
                let ms = s as i64 * 1000 + (n / 1_000_000) as i64;
                let lo = self.index.lower_bound_ts(ms * 1_000_000)?;
                let hi = self.index.lower_bound_ts((ms + 1) * 1_000_000)?;
                lo..hi
            }
            None => 0..self.size(),
        };
        for e in self.index.range(range.start, range.end)? {
            let ev = self.read_at(&e)?;
            if ev.event.id == id {
                return Ok(ev);
            }
        }
        Err(AuditError::Invalid(format!(
            "no event with id {id} in the log"
        )))
    }

    /// Events matching `q`, oldest first (or newest first).
    pub fn query(&self, q: &Query) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        self.visit(q, |ev| {
            out.push(ev);
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each event matching `q` (streaming; `f` returns false to stop).
    pub fn visit(&self, q: &Query, mut f: impl FnMut(StoredEvent) -> bool) -> Result<()> {
        let lo = match q.since {
            Some(t) => self
                .index
                .lower_bound_ts(t.timestamp_nanos_opt().unwrap_or(i64::MIN))?,
            None => 0,
        };
        let hi = match q.until {
            Some(t) => self
                .index
                .lower_bound_ts(t.timestamp_nanos_opt().unwrap_or(i64::MAX))?,
            None => self.size(),
        };
        let tag = q.event_type.as_deref().map(|t| type_tag(&*self.p, t));
        let agent = q.agent.map(|a| *a.0.as_bytes());
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut n = 0usize;
        const CHUNK: u64 = 65_536;
        let mut chunks: Vec<(u64, u64)> = (lo..hi)
            .step_by(CHUNK as usize)
            .map(|s| (s, (s + CHUNK).min(hi)))
            .collect();
        if q.newest_first {
            chunks.reverse();
        }
        for (s, e) in chunks {
            let mut entries = self.index.range(s, e)?;
            if q.newest_first {
                entries.reverse();
            }
            for ent in entries {
                if n >= limit {
                    return Ok(());
                }
                if tag.is_some_and(|t| t != ent.type_tag) || agent.is_some_and(|a| a != ent.agent) {
                    continue;
                }
                let ev = self.read_at(&ent)?;
                if q.event_type
                    .as_deref()
                    .is_some_and(|t| t != ev.event.event_type)
                {
                    continue; // tag collision
                }
                n += 1;
                if !f(ev) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Events `[from, to)` in order.
    pub fn events(&self, from: u64, to: u64) -> Result<Vec<StoredEvent>> {
        self.index
            .range(from, to)?
            .iter()
            .map(|e| self.read_at(e))
            .collect()
    }

    /// The latest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.checkpoints.last()
    }

    /// The checkpoint with exactly `size` events (the latest such).
    pub fn checkpoint_at(&self, size: u64) -> Option<&SignedCheckpoint> {
        self.checkpoints
            .iter()
            .rev()
            .find(|c| c.checkpoint.size == size)
    }

    /// An inclusion proof of event `seq` against the latest checkpoint that covers it. The
    /// proof is checked before it is returned.
    pub fn prove_inclusion(&self, seq: u64) -> Result<InclusionProof> {
        let cp = self.latest_checkpoint().filter(|c| c.checkpoint.size > seq).ok_or_else(|| {
            AuditError::Invalid(format!(
                "event {seq} is not covered by a signed checkpoint yet (latest covers {} events); the writer \
                 checkpoints every [audit] checkpoint_every events and checkpoint_interval — retry shortly",
                self.latest_checkpoint().map_or(0, |c| c.checkpoint.size)
            ))
        })?;
        let ev = self.event(seq)?;
        let size = cp.checkpoint.size;
        let path = merkle::inclusion_proof(&*self.p, &self.tree, seq, size)?;
        let leaf = leaf_hash(&*self.p, &ev.record.body);
        merkle::verify_inclusion(&*self.p, &leaf, seq, size, &path, &cp.checkpoint.root).map_err(|e| {
            AuditError::Corrupt(format!(
                "the proof does not match the checkpoint ({e}); tree.hashes may be damaged: restart the writer to rebuild it"
            ))
        })?;
        Ok(InclusionProof {
            kind: "inclusion".into(),
            origin: cp.checkpoint.origin.clone(),
            leaf_index: seq,
            tree_size: size,
            entry: String::from_utf8(ev.record.body).expect("bodies are UTF-8 JSON"),
            leaf_hash: hex::encode(leaf),
            path: path.iter().map(hex::encode).collect(),
            checkpoint: cp.note.clone(),
            verifier_keys: self.pubkeys.iter().map(NoteKey::vkey).collect(),
        })
    }

    /// A consistency proof between the checkpoints at `old_size` and `new_size` (default:
    /// the latest checkpoint).
    pub fn prove_consistency(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyProof> {
        let sizes = || {
            let mut s: Vec<String> = self
                .checkpoints
                .iter()
                .rev()
                .take(10)
                .map(|c| c.checkpoint.size.to_string())
                .collect();
            s.reverse();
            s.join(", ")
        };
        let new = match new_size {
            Some(n) => self.checkpoint_at(n),
            None => self.latest_checkpoint(),
        }
        .ok_or_else(|| {
            AuditError::Invalid(format!(
                "no signed checkpoint at that size; latest sizes: {}",
                sizes()
            ))
        })?;
        let old = self.checkpoint_at(old_size).ok_or_else(|| {
            AuditError::Invalid(format!(
                "no signed checkpoint at size {old_size}; latest sizes: {}",
                sizes()
            ))
        })?;
        let (m, n) = (old_size, new.checkpoint.size);
        let path = merkle::consistency_proof(&*self.p, &self.tree, m, n)?;
        merkle::verify_consistency(
            &*self.p,
            m,
            n,
            &old.checkpoint.root,
            &new.checkpoint.root,
            &path,
        )
        .map_err(|e| {
            AuditError::Corrupt(format!(
                "the log is not consistent with its own checkpoints: {e}"
            ))
        })?;
        Ok(ConsistencyProof {
            kind: "consistency".into(),
            origin: new.checkpoint.origin.clone(),
            old_size: m,
            new_size: n,
            path: path.iter().map(hex::encode).collect(),
            old_checkpoint: old.note.clone(),
            new_checkpoint: new.note.clone(),
            verifier_keys: self.pubkeys.iter().map(NoteKey::vkey).collect(),
        })
    }
}

fn parse_hashes(v: &[String]) -> Result<Vec<Hash>> {
    v.iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| AuditError::Verification(format!("`{h}` is not a hex SHA-256 hash")))
        })
        .collect()
}

fn verifier_keys(
    p: &dyn CryptoProvider,
    listed: &[String],
    pinned: Option<&[NoteKey]>,
) -> Result<Vec<NoteKey>> {
    match pinned {
        Some(k) => Ok(k.to_vec()),
        None => listed.iter().map(|s| NoteKey::parse_vkey(p, s)).collect(),
    }
}

/// What an offline proof check established.
#[derive(Clone, Debug, Serialize)]
pub struct ProofCheck {
    /// `inclusion` or `consistency`.
    pub kind: String,
    /// Origin of the checkpoint(s).
    pub origin: String,
    /// Key id that signed the (newest) checkpoint.
    pub key_id: String,
    /// Whether the key was pinned by the caller (otherwise it came from the proof file).
    pub key_pinned: bool,
    /// Human summary.
    pub summary: String,
}

/// Checks a proof file (JSON from `symbi audit prove`) without the log: checkpoint
/// signature(s) and the RFC 9162 path. `pinned` are verifier keys obtained out of band; if
/// `None` the keys listed in the proof are used (and the result says so).
pub fn verify_proof_json(
    p: &dyn CryptoProvider,
    json: &str,
    pinned: Option<&[NoteKey]>,
) -> Result<ProofCheck> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| AuditError::Verification(format!("proof is not JSON: {e}")))?;
    match v.get("type").and_then(|t| t.as_str()) {
        Some("inclusion") => {
            let pr: InclusionProof =
                serde_json::from_value(v).map_err(|e| AuditError::Verification(e.to_string()))?;
            let keys = verifier_keys(p, &pr.verifier_keys, pinned)?;
            let (cp, key) = SignedCheckpoint::verify(p, &pr.checkpoint, &keys)?;
            if cp.checkpoint.size != pr.tree_size {
                return Err(AuditError::Verification(
                    "tree size differs from the checkpoint's".into(),
                ));
            }
            let leaf = leaf_hash(p, pr.entry.as_bytes());
            if hex::encode(leaf) != pr.leaf_hash {
                return Err(AuditError::Verification(
                    "leaf_hash is not SHA-256(0x00 ‖ entry)".into(),
                ));
            }
            merkle::verify_inclusion(
                p,
                &leaf,
                pr.leaf_index,
                pr.tree_size,
                &parse_hashes(&pr.path)?,
                &cp.checkpoint.root,
            )?;
            let ev = Event::from_body(pr.entry.as_bytes()).map_err(AuditError::Verification)?;
            if ev.seq != pr.leaf_index {
                return Err(AuditError::Verification(
                    "the entry's sequence number differs from the leaf index".into(),
                ));
            }
            Ok(ProofCheck {
                kind: "inclusion".into(),
                origin: cp.checkpoint.origin.clone(),
                key_id: key.id.to_string(),
                key_pinned: pinned.is_some(),
                summary: format!(
                    "event {} ({} `{}` at {}) is leaf {} of the log `{}` at size {}, checkpoint signed by key {}",
                    ev.id,
                    ev.agent_name.as_deref().unwrap_or("-"),
                    ev.event_type,
                    record::format_timestamp(&ev.timestamp),
                    pr.leaf_index,
                    cp.checkpoint.origin,
                    pr.tree_size,
                    key.id
                ),
            })
        }
        Some("consistency") => {
            let pr: ConsistencyProof =
                serde_json::from_value(v).map_err(|e| AuditError::Verification(e.to_string()))?;
            let keys = verifier_keys(p, &pr.verifier_keys, pinned)?;
            let (old, _) = SignedCheckpoint::verify(p, &pr.old_checkpoint, &keys)?;
            let (new, key) = SignedCheckpoint::verify(p, &pr.new_checkpoint, &keys)?;
            if old.checkpoint.origin != new.checkpoint.origin {
                return Err(AuditError::Verification(
                    "the checkpoints belong to different logs".into(),
                ));
            }
            if old.checkpoint.size != pr.old_size || new.checkpoint.size != pr.new_size {
                return Err(AuditError::Verification(
                    "sizes differ from the checkpoints'".into(),
                ));
            }
            if new.checkpoint.timestamp_ms < old.checkpoint.timestamp_ms {
                return Err(AuditError::Verification(
                    "the newer checkpoint has an older timestamp".into(),
                ));
            }
            merkle::verify_consistency(
                p,
                pr.old_size,
                pr.new_size,
                &old.checkpoint.root,
                &new.checkpoint.root,
                &parse_hashes(&pr.path)?,
            )?;
            Ok(ProofCheck {
                kind: "consistency".into(),
                origin: new.checkpoint.origin.clone(),
                key_id: key.id.to_string(),
                key_pinned: pinned.is_some(),
                summary: format!(
                    "the log `{}` at size {} extends the log at size {} (append-only), checkpoints signed by key {}",
                    new.checkpoint.origin, pr.new_size, pr.old_size, key.id
                ),
            })
        }
        _ => Err(AuditError::Verification(
            "`type` must be \"inclusion\" or \"consistency\"".into(),
        )),
    }
}
