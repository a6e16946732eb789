//! The writer: [`AuditLog`] opens (and repairs) the log, then two threads form a pipeline:
//!
//! * the **writer** numbers, timestamps, chains, signs and writes (`write(2)`, page cache)
//!   each batch of queued appends, then hands the batch to
//! * the **syncer**, which `fdatasync`s and only then acknowledges the batch's events,
//!   publishes them to subscribers and advances the durable size; it also makes checkpoints
//!   durable (tree, index, then the signed checkpoint).
//!
//! While the syncer waits for the disk, the writer prepares the next batches; the syncer then
//! covers everything written meanwhile with one `fdatasync` (group commit at both stages).
//! Nothing is acknowledged before an `fdatasync` that covers it has returned; after any write
//! or sync error the log refuses everything (fail closed), including batches already written
//! but not yet synced.

use crate::error::{AuditError, Result};
use crate::index::{IndexEntry, IndexFile, type_tag};
use crate::keys::{self, NEXT_KEY_FILE, PUBKEYS_FILE, SIGNING_KEY_FILE};
use crate::merkle::{TreeStore, leaf_hash};
use crate::note::{Checkpoint, NoteKey, SignedCheckpoint};
use crate::record::{self, Event, Hash, MAX_PAYLOAD_LEN, Record, SEGMENT_HEADER_LEN};
use crate::segment::{self, SEGMENTS_DIR, ScanError, SegmentFile};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use symbi_crypto::{CryptoProvider, Signature, Signer};
use symbi_types::{EventDraft, EventId, EventReceipt, EventSink, SinkError, event::types};
use tokio::sync::{broadcast, oneshot};

/// File names inside the audit directory.
pub const CHECKPOINTS_FILE: &str = "checkpoints.log";
/// Post-order Merkle hashes.
pub const TREE_FILE: &str = "tree.hashes";
/// Query index.
pub const INDEX_FILE: &str = "index.bin";
/// Writer lock.
pub const LOCK_FILE: &str = "LOCK";

/// How the log is opened.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// The audit directory (`[audit] storage`, default `<data dir>/audit`).
    pub dir: PathBuf,
    /// Where the signing key lives (`<data dir>/keys`).
    pub keys_dir: PathBuf,
    /// Segments rotate at this size.
    pub segment_size: u64,
    /// Checkpoint at least every this many events.
    pub checkpoint_every: u64,
    /// …and when events arrived and this much time passed since the last checkpoint.
    pub checkpoint_interval: Duration,
    /// Most events per group commit. `1` means one fsync per event (the benchmark baseline).
    pub max_batch: usize,
    /// Which events carry their own Ed25519 signature.
    pub signatures: Signatures,
}

/// Which events carry their own signature (`[audit] signatures`, docs/audit-format.md §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signatures {
    /// Every event (record version 1): each event can be checked on its own.
    #[default]
    PerEvent,
    /// The last event of each group commit and every `key_rotation` event; the others are
    /// covered records (version 2) whose chain hash the next signature commits to. Same
    /// tamper evidence for the log as a whole, one signature per batch instead of per event.
    PerBatch,
}

impl AuditOptions {
    /// Options from the configuration: `[audit]` under `data_dir`.
    pub fn from_config(data_dir: &Path, cfg: &symbi_config::AuditSection) -> AuditOptions {
        AuditOptions {
            dir: match &cfg.storage {
                Some(p) if p.is_absolute() => p.clone(),
                Some(p) => data_dir.join(p),
                None => data_dir.join("audit"),
            },
            keys_dir: data_dir.join("keys"),
            segment_size: cfg.segment_size.0,
            checkpoint_every: cfg.checkpoint_every,
            checkpoint_interval: cfg.checkpoint_interval.0,
            max_batch: cfg.max_batch,
            signatures: match cfg.signatures {
                symbi_config::sections::audit::AuditSignatures::PerEvent => Signatures::PerEvent,
                symbi_config::sections::audit::AuditSignatures::PerBatch => Signatures::PerBatch,
            },
        }
    }

    /// Defaults for a data directory (tests, tools).
    pub fn new(data_dir: &Path) -> AuditOptions {
        Self::from_config(data_dir, &symbi_config::AuditSection::default())
    }
}

/// An event as stored: decoded body, record and location.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    /// The decoded event.
    pub event: Event,
    /// The record (canonical body, chain hash, signature).
    pub record: Record,
    /// First sequence number of the segment that holds it.
    pub segment: u64,
    /// Offset of its frame in that segment.
    pub offset: u64,
}

impl StoredEvent {
    /// JSON for CLI and API output: the event's fields plus `chain_hash` (hex) and
    /// `signature` (base64; `null` for an event covered by its batch's signature).
    pub fn to_json(&self) -> Value {
        use base64::Engine;
        let mut v = serde_json::to_value(&self.event).expect("events serialize");
        v["timestamp"] = Value::String(record::format_timestamp(&self.event.timestamp));
        v["chain_hash"] = Value::String(hex::encode(self.record.chain));
        v["signature"] = match &self.record.signature {
            Some(sig) => Value::String(base64::engine::general_purpose::STANDARD.encode(sig)),
            None => Value::Null,
        };
        v
    }
}

type AppendResult = std::result::Result<EventReceipt, SinkError>;
type AppendAck = oneshot::Sender<AppendResult>;

/// Where the results of one submission go.
enum AckTo {
    /// One event.
    One(AppendAck),
    /// A batch submission: all its results at once.
    Many(oneshot::Sender<Vec<AppendResult>>),
}

impl AckTo {
    fn send(self, mut results: impl Iterator<Item = AppendResult>, n: usize) {
        match self {
            AckTo::One(a) => {
                if let Some(r) = results.next() {
                    let _ = a.send(r);
                }
            }
            AckTo::Many(a) => {
                let _ = a.send(results.take(n).collect());
            }
        }
    }
}

/// Appends submitted together (one or many events, one acknowledgement target).
struct Submission {
    drafts: Vec<EventDraft>,
    /// Each draft's details as RFC 8785 bytes, computed by the submitting thread: the most
    /// expensive part of a body, taken off the single writer thread.
    details: Vec<Result<Vec<u8>>>,
    ack: AckTo,
}

impl Submission {
    fn new(drafts: Vec<EventDraft>, ack: AckTo) -> Submission {
        let details = drafts
            .iter()
            .map(|d| record::canonical_json(&d.details))
            .collect();
        Submission {
            drafts,
            details,
            ack,
        }
    }
}

enum Request {
    Append(Submission),
    Checkpoint(oneshot::Sender<Result<SignedCheckpoint>>),
    RotateKey(oneshot::Sender<Result<NoteKey>>),
    Close(oneshot::Sender<Result<()>>),
}

/// State readers of the handle can see.
struct Shared {
    /// Durable events (advanced by the syncer).
    size: u64,
    latest: Option<SignedCheckpoint>,
    failed: Option<String>,
    key: NoteKey,
}

/// The audit log, open for writing. Implements [`EventSink`]: `record` returns only once
/// the event is on stable storage, and fails (so the caller does not proceed) when it
/// cannot be made durable.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use symbi_audit::{AuditLog, AuditOptions};
/// use symbi_types::{EventDraft, EventSink};
/// let p = symbi_crypto::provider("ring")?;
/// let log = AuditLog::open(AuditOptions::new("/var/lib/symbi".as_ref()), p)?;
/// let receipt = log.record(EventDraft::new("custom", serde_json::json!({"x": 1}))).await?;
/// log.close_async().await?;
/// # Ok(()) }
/// ```
pub struct AuditLog {
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    shared: Arc<Mutex<Shared>>,
    events: broadcast::Sender<Arc<StoredEvent>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    dir: PathBuf,
    origin: String,
    provider: Arc<dyn CryptoProvider>,
}

impl AuditLog {
    /// Opens the log, creating it (and its signing key) on first use. Repairs a torn tail
    /// left by a crash; refuses (fail closed) a log that is damaged in any other way, a
    /// missing or foreign signing key, and a log another process has open.
    pub fn open(opts: AuditOptions, provider: Arc<dyn CryptoProvider>) -> Result<Arc<AuditLog>> {
        let (writer, shared) = Writer::open(opts.clone(), provider.clone())?;
        let (tx, rx) = mpsc::channel();
        let (events, _) = broadcast::channel(4096);
        let origin = writer.key.name.clone();
        let shared = Arc::new(Mutex::new(shared));
        let mut w = writer;
        w.shared = Some(shared.clone());
        w.events = Some(events.clone());
        let thread = std::thread::Builder::new()
            .name("symbi-audit-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| AuditError::io(&opts.dir, e))?;
        Ok(Arc::new(AuditLog {
            tx: Mutex::new(Some(tx)),
            shared,
            events,
            thread: Mutex::new(Some(thread)),
            dir: opts.dir,
            origin,
            provider,
        }))
    }

    fn send(&self, r: Request) -> Result<()> {
        let tx = self.tx.lock();
        let tx = tx
            .as_ref()
            .ok_or_else(|| AuditError::Unavailable("the audit log is closed".into()))?;
        tx.send(r)
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))
    }

    /// Appends an event from synchronous code (blocks until durable). Do not call from
    /// inside an async task; use [`EventSink::record`] there.
    pub fn append_blocking(
        &self,
        draft: EventDraft,
    ) -> std::result::Result<EventReceipt, SinkError> {
        self.submit(draft)?.wait()
    }

    /// Submits an event without waiting: the returned [`AppendTicket`] resolves once the
    /// event is durable (or failed). A producer can keep many appends in flight and collect
    /// the acknowledgements later — the same durability as [`EventSink::record`], without
    /// one round trip per event. Events are numbered in submission order per producer.
    ///
    /// ```no_run
    /// # fn f(log: &symbi_audit::AuditLog) -> Result<(), symbi_types::SinkError> {
    /// use symbi_types::EventDraft;
    /// let tickets: Vec<_> = (0..100)
    ///     .map(|i| log.submit(EventDraft::new("custom", serde_json::json!({ "i": i }))))
    ///     .collect::<Result<_, _>>()?;
    /// for t in tickets {
    ///     t.wait()?; // durable
    /// }
    /// # Ok(()) }
    /// ```
    pub fn submit(&self, draft: EventDraft) -> std::result::Result<AppendTicket, SinkError> {
        let (ack, rx) = oneshot::channel();
        self.send(Request::Append(Submission::new(
            vec![draft],
            AckTo::One(ack),
        )))
        .map_err(|e| SinkError(e.to_string()))?;
        Ok(AppendTicket(rx))
    }

    /// Appends many events in one submission (consecutive sequence numbers, one batch) and
    /// returns once all are durable: one result per draft, in order. Blocks; from async code
    /// use [`AuditLog::record_many`].
    pub fn append_many_blocking(
        &self,
        drafts: Vec<EventDraft>,
    ) -> Vec<std::result::Result<EventReceipt, SinkError>> {
        let n = drafts.len();
        match self.submit_many(drafts) {
            Ok(rx) => rx.blocking_recv().unwrap_or_else(|_| stopped(n)),
            Err(e) => vec![Err(e); n],
        }
    }

    /// Async [`AuditLog::append_many_blocking`].
    pub async fn record_many(
        &self,
        drafts: Vec<EventDraft>,
    ) -> Vec<std::result::Result<EventReceipt, SinkError>> {
        let n = drafts.len();
        match self.submit_many(drafts) {
            Ok(rx) => rx.await.unwrap_or_else(|_| stopped(n)),
            Err(e) => vec![Err(e); n],
        }
    }

    fn submit_many(
        &self,
        drafts: Vec<EventDraft>,
    ) -> std::result::Result<oneshot::Receiver<Vec<AppendResult>>, SinkError> {
        let (ack, rx) = oneshot::channel();
        self.send(Request::Append(Submission::new(drafts, AckTo::Many(ack))))
            .map_err(|e| SinkError(e.to_string()))?;
        Ok(rx)
    }

    /// Writes a signed checkpoint of the current state now and returns it.
    pub fn checkpoint_blocking(&self) -> Result<SignedCheckpoint> {
        let (ack, rx) = oneshot::channel();
        self.send(Request::Checkpoint(ack))?;
        rx.blocking_recv()
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?
    }

    /// Async [`AuditLog::checkpoint_blocking`].
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint> {
        let (ack, rx) = oneshot::channel();
        self.send(Request::Checkpoint(ack))?;
        rx.await
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?
    }

    /// Rotates the signing key: a `key_rotation` event signed by the old key (and carrying
    /// the new key's signature over both keys) is appended, the new verifier key is added to
    /// `pubkeys`, and later events are signed by the new key. Returns the new key.
    pub fn rotate_key_blocking(&self) -> Result<NoteKey> {
        let (ack, rx) = oneshot::channel();
        self.send(Request::RotateKey(ack))?;
        rx.blocking_recv()
            .map_err(|_| AuditError::Unavailable("the audit writer stopped".into()))?
    }

    /// Flushes, writes a final checkpoint and stops the writer. Later appends fail. Blocks:
    /// from async code use [`AuditLog::close_async`].
    pub fn close(&self) -> Result<()> {
        let (ack, rx) = oneshot::channel();
        let sent = self.send(Request::Close(ack));
        self.tx.lock().take();
        let res = match sent {
            Ok(()) => rx.blocking_recv().unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        res
    }

    /// Async [`AuditLog::close`] (for the runtime's shutdown path).
    pub async fn close_async(&self) -> Result<()> {
        let (ack, rx) = oneshot::channel();
        let sent = self.send(Request::Close(ack));
        self.tx.lock().take();
        let res = match sent {
            Ok(()) => rx.await.unwrap_or(Ok(())),
            Err(_) => Ok(()),
        };
        let t = self.thread.lock().take();
        if let Some(t) = t {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        res
    }

    /// Live stream of events, each sent once it is durable. A slow receiver that falls
    /// more than 4096 events behind gets `Lagged` and can catch up with a query.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.events.subscribe()
    }

    /// Number of durable events.
    pub fn size(&self) -> u64 {
        self.shared.lock().size
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.shared.lock().latest.clone()
    }

    /// The current signing key.
    pub fn current_key(&self) -> NoteKey {
        self.shared.lock().key.clone()
    }

    /// Why the log stopped accepting events, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.lock().failed.clone()
    }

    /// The log's origin (checkpoint origin line and key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The audit directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A read-only view for queries and proofs (sees everything durable so far).
    pub fn reader(&self) -> Result<crate::reader::LogReader> {
        crate::reader::LogReader::open(&self.dir, self.provider.clone())
    }
}

impl Drop for AuditLog {
    /// Stops the writer (which writes a final checkpoint). Waits for it only outside an
    /// async runtime, where blocking is allowed; call [`AuditLog::close_async`] on the
    /// runtime's shutdown path to be sure the final checkpoint is written.
    fn drop(&mut self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take()
            && tokio::runtime::Handle::try_current().is_err()
        {
            let _ = t.join();
        }
    }
}

fn stopped(n: usize) -> Vec<AppendResult> {
    vec![Err(SinkError("the audit writer stopped".into())); n]
}

/// An append in flight ([`AuditLog::submit`]): resolves to the event's receipt once it is
/// durable. Await it, or [`AppendTicket::wait`] from synchronous code.
#[must_use = "an append is durable only when its ticket resolves Ok"]
pub struct AppendTicket(oneshot::Receiver<AppendResult>);

impl AppendTicket {
    /// Blocks until the event is durable (not from inside an async task).
    pub fn wait(self) -> std::result::Result<EventReceipt, SinkError> {
        self.0
            .blocking_recv()
            .map_err(|_| SinkError("the audit writer stopped".into()))?
    }
}

impl std::future::Future for AppendTicket {
    type Output = std::result::Result<EventReceipt, SinkError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(SinkError("the audit writer stopped".into()))))
    }
}

#[async_trait]
impl EventSink for AuditLog {
    async fn record(&self, event: EventDraft) -> std::result::Result<EventReceipt, SinkError> {
        self.submit(event)?.await
    }
}

struct Writer {
    p: Arc<dyn CryptoProvider>,
    opts: AuditOptions,
    /// Shared with the syncer, which fdatasyncs it.
    seg: Arc<File>,
    seg_path: PathBuf,
    seg_first: u64,
    seg_len: u64,
    size: u64,
    chain: Hash,
    last_ts: DateTime<Utc>,
    key: NoteKey,
    signer: Arc<dyn Signer>,
    pubkeys: Vec<NoteKey>,
    tree: TreeStore,
    index: IndexFile,
    /// The checkpoints file; moves to the syncer when the pipeline starts.
    cps: Option<File>,
    last_cp: Option<Checkpoint>,
    last_cp_at: Instant,
    failed: Option<String>,
    shared: Option<Arc<Mutex<Shared>>>,
    events: Option<broadcast::Sender<Arc<StoredEvent>>>,
    /// The sync stage (running while [`Writer::run`] runs).
    syncer: Option<SyncerHandle>,
    _lock: File,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |e| AuditError::io(path, e)
}

fn now_ms() -> u64 {
    Utc::now().timestamp_millis().max(0) as u64
}

/// The event id for a timestamp: a UUID v7 whose time field is the timestamp's millisecond,
/// so lookups by id can binary-search the time index.
fn event_id_at(ts: &DateTime<Utc>) -> EventId {
    let t = uuid::Timestamp::from_unix(
        uuid::NoContext,
        ts.timestamp() as u64,
        ts.timestamp_subsec_nanos(),
    );
    EventId(uuid::Uuid::new_v7(t))
}

/// The index entry of an event.
pub(crate) fn index_entry(
    p: &dyn CryptoProvider,
    ev: &Event,
    segment: u64,
    offset: u64,
    frame_len: u32,
) -> IndexEntry {
    IndexEntry {
        seq: ev.seq,
        ts_nanos: ev.timestamp.timestamp_nanos_opt().unwrap_or(i64::MAX),
        segment,
        offset,
        frame_len,
        agent: ev.agent_id.map(|a| *a.0.as_bytes()).unwrap_or([0; 16]),
        type_tag: type_tag(p, &ev.event_type),
    }
}

/// Intact checkpoints with their offsets, the offset after the last one, and the damage
/// after it (offset, reason, whether it is a torn tail).
pub(crate) type CheckpointScan = (
    Vec<(u64, SignedCheckpoint)>,
    u64,
    Option<(u64, String, bool)>,
);

/// Reads the checkpoints file.
pub(crate) fn read_checkpoints(path: &Path) -> Result<CheckpointScan> {
    let buf = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0, None)),
        Err(e) => return Err(AuditError::io(path, e)),
    };
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        match record::read_frame(&buf, off) {
            Ok(None) => return Ok((out, off as u64, None)),
            Ok(Some((payload, next))) => {
                let parsed = std::str::from_utf8(payload)
                    .map_err(|_| AuditError::Verification("checkpoint is not UTF-8".into()))
                    .and_then(SignedCheckpoint::parse);
                match parsed {
                    Ok(cp) => out.push((off as u64, cp)),
                    Err(e) => {
                        return Ok((out, off as u64, Some((off as u64, e.to_string(), false))));
                    }
                }
                off = next;
            }
            Err(e) => {
                let torn = record::is_torn_tail(&buf, off);
                return Ok((out, off as u64, Some((off as u64, e.to_string(), torn))));
            }
        }
    }
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<(File, PathBuf)> {
    let sdir = dir.join(SEGMENTS_DIR);
    let path = sdir.join(segment::segment_name(first_seq));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .read(true)
        .open(&path)
        .map_err(io(&path))?;
    f.write_all(&record::segment_header(first_seq))
        .and_then(|_| f.sync_all())
        .map_err(io(&path))?;
    keys::sync_dir(&sdir)?;
    Ok((f, path))
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(AuditError::Locked(dir.to_path_buf()));
    }
    Ok(f)
}

/// The last intact record before the end of the log, with its segment (for recovery).
struct Tail {
    event: Option<Event>,
    chain: Hash,
}

impl Writer {
    fn open(opts: AuditOptions, p: Arc<dyn CryptoProvider>) -> Result<(Writer, Shared)> {
        let dir = opts.dir.clone();
        fs::create_dir_all(dir.join(SEGMENTS_DIR)).map_err(io(&dir))?;
        fs::create_dir_all(&opts.keys_dir).map_err(io(&opts.keys_dir))?;
        let lock = lock_dir(&dir)?;
        let mut segs = segment::list_segments(&dir)?;
        let pubkeys_path = dir.join(PUBKEYS_FILE);
        let key_path = opts.keys_dir.join(SIGNING_KEY_FILE);

        // Genesis: no events and no key list yet.
        let mut pubkeys = if segs.is_empty() && !pubkeys_path.exists() {
            let (seed, _) = symbi_crypto::load_or_create_seed(&key_path, || p.generate_key())?;
            let signer = p.signer_from_seed(&seed)?;
            let origin = keys::origin_for(&*p, &signer.public_key());
            let k = NoteKey::new(&*p, &origin, signer.public_key())?;
            keys::write_pubkeys(&pubkeys_path, std::slice::from_ref(&k))?;
            tracing::info!(key_id = %k.id, origin = %origin, "created audit log and signing key");
            vec![k]
        } else {
            keys::read_pubkeys(&*p, &pubkeys_path).map_err(|e| match e {
                AuditError::Io { .. } => AuditError::Key(format!(
                    "{} is missing: without the verifier keys the log cannot be checked; restore it from a backup",
                    pubkeys_path.display()
                )),
                e => e,
            })?
        };
        if segs.is_empty() {
            create_segment(&dir, 0)?;
            segs = segment::list_segments(&dir)?;
        }

        // Recover the last segment: cut a torn tail, refuse anything else.
        let last = segs.last().unwrap().clone();
        let scan = segment::scan_file(&last.path)?;
        if let Some((off, err)) = &scan.error {
            if !scan.torn_tail {
                return Err(AuditError::Corrupt(format!(
                    "{} at offset {off}: {err}",
                    last.path.display()
                )));
            }
            if matches!(err, ScanError::Header) {
                tracing::warn!(segment = %last.path.display(), "rewriting a segment header cut short by a crash");
                create_segment(&dir, last.first_seq)?;
            } else {
                tracing::warn!(segment = %last.path.display(), offset = off, bytes = scan.len - off, "cutting a torn tail left by a crash");
                cut_file(&last.path, *off)?;
            }
        } else if scan.header_seq != Some(last.first_seq) {
            return Err(AuditError::Corrupt(format!(
                "{}: header names another first sequence",
                last.path.display()
            )));
        }
        // Records at the end without a signature (per-batch signing) whose batch never got
        // its signed record: written, never acknowledged — cut like a torn tail.
        let mut scan = scan;
        if scan
            .records
            .last()
            .is_some_and(|r| r.record.signature.is_none())
        {
            let keep = scan
                .records
                .iter()
                .rposition(|r| r.record.signature.is_some());
            let cut = keep.map_or(SEGMENT_HEADER_LEN as u64, |k| {
                scan.records[k].offset + scan.records[k].frame_len as u64
            });
            tracing::warn!(
                segment = %last.path.display(),
                offset = cut,
                records = scan.records.len() - keep.map_or(0, |k| k + 1),
                "cutting records of a batch that was never sealed by its signature (a crash)"
            );
            cut_file(&last.path, cut)?;
            scan = segment::scan_file(&last.path)?;
        }
        let tail = Self::tail(&*p, &segs, &scan)?;
        let size = tail.event.as_ref().map_or(0, |e| e.seq + 1);
        if size < last.first_seq {
            return Err(AuditError::Corrupt(format!(
                "{} starts at sequence {} but the log before it ends at {}",
                last.path.display(),
                last.first_seq,
                size
            )));
        }

        // The key in effect after the last event.
        let current_id = match &tail.event {
            None => pubkeys[0].id,
            Some(e) if e.event_type == types::KEY_ROTATION => e
                .details
                .get("new_key_id")
                .and_then(Value::as_str)
                .and_then(record::KeyId::parse)
                .ok_or_else(|| {
                    AuditError::Corrupt("the last key_rotation event names no new key".into())
                })?,
            Some(e) => e.key_id,
        };
        // Finish or abandon a rotation interrupted by a crash.
        let next_path = opts.keys_dir.join(NEXT_KEY_FILE);
        if next_path.exists() {
            let (seed, _) = symbi_crypto::load_or_create_seed(&next_path, || {
                Err(symbi_crypto::CryptoError::Random)
            })?;
            let signer = p.signer_from_seed(&seed)?;
            let k = NoteKey::new(&*p, &pubkeys[0].name, signer.public_key())?;
            if k.id == current_id {
                if !pubkeys.contains(&k) {
                    pubkeys.push(k);
                    keys::write_pubkeys(&pubkeys_path, &pubkeys)?;
                }
                fs::rename(&next_path, &key_path).map_err(io(&key_path))?;
                keys::sync_dir(&opts.keys_dir)?;
                tracing::warn!("completed a key rotation interrupted by a crash");
            } else {
                fs::remove_file(&next_path).map_err(io(&next_path))?;
                tracing::warn!("discarded a key rotation that never reached the log");
            }
        }
        if !key_path.exists() {
            return Err(AuditError::Key(format!(
                "signing key {} is missing but the log exists; restore the key (a new key would not be trusted by verifiers)",
                key_path.display()
            )));
        }
        let (seed, _) = symbi_crypto::load_or_create_seed(&key_path, || {
            Err(symbi_crypto::CryptoError::Random)
        })?;
        let signer = p.signer_from_seed(&seed)?;
        let key = NoteKey::new(&*p, &pubkeys[0].name, signer.public_key())?;
        if key.id != current_id {
            return Err(AuditError::Key(format!(
                "signing key {} has id {} but the log's current key is {}: it was replaced outside a key rotation; restore the right key",
                key_path.display(),
                key.id,
                current_id
            )));
        }
        if !pubkeys.contains(&key) {
            pubkeys.push(key.clone());
            keys::write_pubkeys(&pubkeys_path, &pubkeys)?;
        }

        // Checkpoints.
        let cps_path = dir.join(CHECKPOINTS_FILE);
        let (cps, cps_end, cps_err) = read_checkpoints(&cps_path)?;
        if let Some((off, msg, torn)) = cps_err {
            if !torn {
                return Err(AuditError::Corrupt(format!(
                    "{} at offset {off}: {msg}",
                    cps_path.display()
                )));
            }
            cut_file(&cps_path, cps_end)?;
        }
        let last_cp = cps.last().map(|(_, c)| c.checkpoint.clone());
        let cp_size = last_cp.as_ref().map_or(0, |c| c.size);
        if cp_size > size {
            return Err(AuditError::Corrupt(format!(
                "a checkpoint was signed at size {cp_size} but the log holds {size} events: acknowledged events are missing"
            )));
        }
        let cps_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cps_path)
            .map_err(io(&cps_path))?;

        // Derived files: trusted up to the last checkpoint (synced before it), rebuilt after.
        let mut tree = TreeStore::open(&dir.join(TREE_FILE), true, cp_size)?;
        let mut index = IndexFile::open(&dir.join(INDEX_FILE), true, cp_size)?;
        let tree_ok = tree.leaves() == cp_size
            && last_cp
                .as_ref()
                .is_none_or(|c| tree.range().root(&*p) == c.root);
        if !tree_ok || index.len() != cp_size {
            tracing::warn!("rebuilding the audit tree and index from the segments");
            tree.truncate(0)?;
            drop(index);
            fs::remove_file(dir.join(INDEX_FILE)).ok();
            index = IndexFile::open(&dir.join(INDEX_FILE), true, 0)?;
        }
        Self::rebuild(&*p, &segs, &mut tree, &mut index)?;
        if tree.leaves() != size {
            return Err(AuditError::Corrupt(format!(
                "segments hold {} readable events but the last one has sequence {}",
                tree.leaves(),
                size.saturating_sub(1)
            )));
        }
        if let Some(c) = &last_cp {
            // Recompute the root at the checkpoint's size from the rebuilt tree.
            let root = crate::merkle::subtree_root(&*p, &tree, 0, c.size)?;
            if root != c.root {
                return Err(AuditError::Corrupt(format!(
                    "the events do not hash to the root of the checkpoint at size {}",
                    c.size
                )));
            }
        }
        tree.sync()?;
        index.sync()?;

        let seg = Arc::new(
            OpenOptions::new()
                .append(true)
                .read(true)
                .open(&last.path)
                .map_err(io(&last.path))?,
        );
        let seg_len = seg
            .metadata()
            .map_err(io(&last.path))?
            .len()
            .max(SEGMENT_HEADER_LEN as u64);
        let latest = cps.last().map(|(_, c)| c.clone());
        let shared = Shared {
            size,
            latest,
            failed: None,
            key: key.clone(),
        };
        let mut w = Writer {
            p,
            seg,
            seg_path: last.path.clone(),
            seg_first: last.first_seq,
            seg_len,
            size,
            chain: tail.chain,
            last_ts: tail
                .event
                .as_ref()
                .map_or(DateTime::<Utc>::MIN_UTC, |e| e.timestamp),
            key,
            signer,
            pubkeys,
            tree,
            index,
            cps: Some(cps_file),
            last_cp,
            last_cp_at: Instant::now(),
            failed: None,
            shared: None,
            events: None,
            syncer: None,
            _lock: lock,
            opts,
        };
        if size > cp_size || w.last_cp.is_none() {
            let cp = w.write_checkpoint()?;
            let mut s = shared;
            s.latest = Some(cp);
            return Ok((w, s));
        }
        Ok((w, shared))
    }

    /// Finds the last intact event of the log (looking into earlier segments when the last
    /// one is empty).
    fn tail(
        p: &dyn CryptoProvider,
        segs: &[SegmentFile],
        last_scan: &segment::SegmentScan,
    ) -> Result<Tail> {
        let _ = p;
        let mut scan_owned;
        let mut scan = last_scan;
        let mut i = segs.len();
        loop {
            if let Some(r) = scan.records.last() {
                let ev = Event::from_body(&r.record.body).map_err(|m| {
                    AuditError::Corrupt(format!("{}: last event: {m}", segs[i - 1].path.display()))
                })?;
                return Ok(Tail {
                    event: Some(ev),
                    chain: r.record.chain,
                });
            }
            i -= 1;
            if i == 0 {
                return Ok(Tail {
                    event: None,
                    chain: [0u8; 32],
                });
            }
            scan_owned = segment::scan_file(&segs[i - 1].path)?;
            if let Some((off, e)) = &scan_owned.error {
                return Err(AuditError::Corrupt(format!(
                    "{} at offset {off}: {e}",
                    segs[i - 1].path.display()
                )));
            }
            scan = &scan_owned;
        }
    }

    /// Appends tree leaves and index entries for every event after `min(tree, index)`.
    fn rebuild(
        p: &dyn CryptoProvider,
        segs: &[SegmentFile],
        tree: &mut TreeStore,
        index: &mut IndexFile,
    ) -> Result<()> {
        let from = tree.leaves().min(index.len());
        tree.truncate(from)?;
        if index.len() > from {
            return Err(AuditError::Corrupt("index longer than tree".into()));
        }
        let start = segs.iter().rposition(|s| s.first_seq <= from).unwrap_or(0);
        for s in &segs[start..] {
            let scan = segment::scan_file(&s.path)?;
            if let Some((off, e)) = &scan.error {
                return Err(AuditError::Corrupt(format!(
                    "{} at offset {off}: {e}",
                    s.path.display()
                )));
            }
            for r in &scan.records {
                let ev = Event::from_body(&r.record.body).map_err(|m| {
                    AuditError::Corrupt(format!("{} at offset {}: {m}", s.path.display(), r.offset))
                })?;
                if ev.seq < from {
                    continue;
                }
                if ev.seq != tree.leaves() {
                    return Err(AuditError::Corrupt(format!(
                        "{} at offset {}: event has sequence {} where {} was expected",
                        s.path.display(),
                        r.offset,
                        ev.seq,
                        tree.leaves()
                    )));
                }
                tree.push(p, leaf_hash(p, &r.record.body));
                index.push(index_entry(p, &ev, s.first_seq, r.offset, r.frame_len));
            }
            tree.flush()?;
            index.flush()?;
        }
        Ok(())
    }

    fn run(mut self, rx: mpsc::Receiver<Request>) {
        if let Err(e) = self.start_syncer() {
            self.fail(format!("cannot start the sync stage: {e}"));
        }
        self.serve(&rx);
        // Stop the sync stage after everything handed to it is done.
        if let Some(s) = self.syncer.take() {
            drop(s.tx);
            let _ = s.thread.join();
        }
    }

    fn serve(&mut self, rx: &mpsc::Receiver<Request>) {
        loop {
            let cp_size = self.last_cp.as_ref().map_or(0, |c| c.size);
            let wait = if self.size > cp_size {
                self.opts
                    .checkpoint_interval
                    .saturating_sub(self.last_cp_at.elapsed())
            } else {
                Duration::from_secs(3600)
            };
            let first = match rx.recv_timeout(wait) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.checkpoint_if_due(true);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.checkpoint_if_due(true);
                    self.barrier();
                    return;
                }
            };
            let mut appends: Vec<Submission> = Vec::new();
            let mut events = 0usize;
            let mut others = Vec::new();
            let mut push = |r: Request, appends: &mut Vec<Submission>, events: &mut usize| match r {
                Request::Append(sub) => {
                    *events += sub.drafts.len();
                    appends.push(sub)
                }
                other => others.push(other),
            };
            push(first, &mut appends, &mut events);
            while events < self.opts.max_batch {
                match rx.try_recv() {
                    Ok(r) => push(r, &mut appends, &mut events),
                    Err(_) => break,
                }
            }
            if !appends.is_empty() {
                self.commit(appends);
            }
            for r in others {
                match r {
                    Request::Append(..) => unreachable!("appends are batched above"),
                    Request::Checkpoint(ack) => match self.checked(|w| w.make_checkpoint()) {
                        Ok(cp) => self.to_syncer(Job::Checkpoint(cp, Some(ack))),
                        Err(e) => {
                            let _ = ack.send(Err(e));
                        }
                    },
                    Request::RotateKey(ack) => {
                        let res = self.checked(|w| w.rotate());
                        let _ = ack.send(res);
                    }
                    Request::Close(ack) => {
                        let cp_size = self.last_cp.as_ref().map_or(0, |c| c.size);
                        let mut res = Ok(());
                        if self.failed.is_none() && self.size > cp_size {
                            match self.make_checkpoint() {
                                Ok(cp) => {
                                    let (tx, rx) = oneshot::channel();
                                    self.to_syncer(Job::Checkpoint(cp, Some(tx)));
                                    res = rx
                                        .blocking_recv()
                                        .unwrap_or_else(|_| {
                                            Err(AuditError::Unavailable(
                                                "the audit sync stage stopped".into(),
                                            ))
                                        })
                                        .map(|_| ());
                                }
                                Err(e) => res = Err(e),
                            }
                        }
                        self.barrier();
                        // Answer everything still queued, then stop.
                        while let Ok(r) = rx.try_recv() {
                            fail_request(r, "the audit log is closing");
                        }
                        let _ = ack.send(res);
                        return;
                    }
                }
            }
            self.checkpoint_if_due(false);
        }
    }

    /// Starts the sync stage; it takes over the checkpoints file.
    fn start_syncer(&mut self) -> Result<()> {
        let cps = self
            .cps
            .take()
            .ok_or_else(|| AuditError::Unavailable("the checkpoints file is gone".into()))?;
        let syncer = Syncer {
            cps,
            cps_path: self.opts.dir.join(CHECKPOINTS_FILE),
            tree: self.tree.sync_handle()?,
            index: self.index.sync_handle()?,
            shared: self.shared.clone(),
            events: self.events.clone(),
            failed: None,
        };
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("symbi-audit-sync".into())
            .spawn(move || syncer.run(rx))
            .map_err(|e| AuditError::io(&self.opts.dir, e))?;
        self.syncer = Some(SyncerHandle { tx, thread });
        Ok(())
    }

    fn to_syncer(&mut self, job: Job) {
        let sent = match &self.syncer {
            Some(s) => s.tx.send(job).map_err(|e| e.0),
            None => Err(job),
        };
        if let Err(job) = sent {
            self.fail("the audit sync stage stopped".into());
            job.fail("the audit sync stage stopped");
        }
    }

    /// Waits until the sync stage has finished everything handed to it so far, then takes
    /// over a failure it found.
    fn barrier(&mut self) {
        let (tx, rx) = mpsc::channel();
        self.to_syncer(Job::Barrier(tx));
        let _ = rx.recv();
        self.adopt_sync_failure();
    }

    fn adopt_sync_failure(&mut self) {
        if self.failed.is_none()
            && let Some(s) = &self.shared
            && let Some(m) = s.lock().failed.clone()
        {
            self.failed = Some(m);
        }
    }

    fn checked<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.adopt_sync_failure();
        if let Some(m) = &self.failed {
            return Err(AuditError::Unavailable(m.clone()));
        }
        f(self)
    }

    fn checkpoint_if_due(&mut self, timer: bool) {
        self.adopt_sync_failure();
        if self.failed.is_some() {
            return;
        }
        let cp_size = self.last_cp.as_ref().map_or(0, |c| c.size);
        let due = self.size - cp_size >= self.opts.checkpoint_every
            || (self.size > cp_size
                && (timer || self.last_cp_at.elapsed() >= self.opts.checkpoint_interval));
        if due {
            match self.make_checkpoint() {
                Ok(cp) => self.to_syncer(Job::Checkpoint(cp, None)),
                Err(e) => self.fail(format!("cannot write a checkpoint: {e}")),
            }
        }
    }

    fn fail(&mut self, msg: String) {
        if self.failed.is_none() {
            tracing::error!(error = %msg, "audit log failed; refusing further events (fail closed)");
        }
        record_failure(&mut self.failed, self.shared.as_ref(), msg);
    }

    /// Numbers, signs and writes one batch, then hands it to the sync stage, which
    /// acknowledges it once it is durable.
    fn commit(&mut self, batch: Vec<Submission>) {
        self.adopt_sync_failure();
        if let Some(m) = &self.failed {
            for sub in batch {
                let n = sub.drafts.len();
                sub.ack.send(
                    std::iter::repeat_with(|| {
                        Err(SinkError(format!("audit log unavailable: {m}")))
                    }),
                    n,
                );
            }
            return;
        }
        // 1. Number, timestamp, canonicalize and chain (serial: each hash depends on the last).
        let mut prepared: Vec<(Event, Vec<u8>, Hash)> = Vec::new();
        // Per event in request order: Ok(index into prepared) or the refusal.
        let mut slots: Vec<std::result::Result<usize, SinkError>> = Vec::new();
        let mut groups: Vec<(AckTo, usize)> = Vec::with_capacity(batch.len());
        let mut chain = self.chain;
        let mut last_ts = self.last_ts;
        for sub in batch {
            groups.push((sub.ack, sub.drafts.len()));
            for (draft, details) in sub.drafts.into_iter().zip(sub.details) {
                let ts = Utc::now().max(last_ts);
                let ev = Event {
                    seq: self.size + prepared.len() as u64,
                    id: event_id_at(&ts),
                    timestamp: ts,
                    agent_id: draft.agent,
                    agent_name: draft.agent_name,
                    execution_id: draft.execution,
                    event_type: draft.event_type,
                    details: draft.details,
                    key_id: self.key.id,
                };
                match details.and_then(|d| ev.body_with_canonical_details(&d)) {
                    Ok(body) if body.len() + record::PAYLOAD_FIXED_LEN <= MAX_PAYLOAD_LEN => {
                        chain = record::chain_hash(&*self.p, &chain, &body);
                        last_ts = ts;
                        slots.push(Ok(prepared.len()));
                        prepared.push((ev, body, chain));
                    }
                    Ok(body) => slots.push(Err(SinkError(format!(
                        "event of {} bytes exceeds the 16 MiB record limit",
                        body.len()
                    )))),
                    Err(e) => slots.push(Err(SinkError(e.to_string()))),
                }
            }
        }
        // 2. Sign (in parallel for large batches: signing dominates the CPU cost). Per batch:
        // only the last event and key rotations; the last chain hash commits to the rest.
        let mut sigs: Vec<Option<Signature>> = match self.opts.signatures {
            Signatures::PerEvent => sign_all(
                &*self.signer,
                &prepared.iter().map(|(_, _, c)| *c).collect::<Vec<_>>(),
            )
            .into_iter()
            .map(Some)
            .collect(),
            Signatures::PerBatch => {
                let last = prepared.len().saturating_sub(1);
                prepared
                    .iter()
                    .enumerate()
                    .map(|(i, (ev, _, c))| {
                        (i == last || ev.event_type == types::KEY_ROTATION)
                            .then(|| self.signer.sign(&record::event_signing_message(c)))
                    })
                    .collect()
            }
        };
        // 3. Frame and write (page cache), rotating segments as needed.
        let written = self.write_batch(&prepared, &mut sigs);
        let results: Vec<AppendResult> = match written {
            Ok(locations) => {
                let mut receipts = Vec::with_capacity(prepared.len());
                let mut stored = Vec::new();
                let publish = self
                    .events
                    .as_ref()
                    .is_some_and(|tx| tx.receiver_count() > 0);
                for (((ev, body, chain), sig), (segment, offset, frame_len)) in
                    prepared.into_iter().zip(sigs).zip(locations)
                {
                    self.tree.push(&*self.p, leaf_hash(&*self.p, &body));
                    self.index
                        .push(index_entry(&*self.p, &ev, segment, offset, frame_len));
                    receipts.push(EventReceipt {
                        id: ev.id,
                        sequence: ev.seq,
                        timestamp: ev.timestamp,
                    });
                    if publish {
                        stored.push(Arc::new(StoredEvent {
                            event: ev,
                            record: Record {
                                chain,
                                signature: sig,
                                body,
                            },
                            segment,
                            offset,
                        }));
                    }
                }
                self.size += receipts.len() as u64;
                self.chain = chain;
                self.last_ts = last_ts;
                // Derived data: written now so readers see it, synced before each checkpoint.
                if let Err(e) = self.tree.flush().and_then(|_| self.index.flush()) {
                    self.fail(format!("cannot write the tree or index: {e}"));
                }
                let results = slots
                    .into_iter()
                    .map(|s| s.map(|i| receipts[i].clone()))
                    .collect();
                // 4. Durable, then acknowledged, by the sync stage.
                self.to_syncer(Job::Batch(BatchJob {
                    seg: self.seg.clone(),
                    seg_path: self.seg_path.clone(),
                    size_after: self.size,
                    results,
                    groups,
                    stored,
                }));
                return;
            }
            Err(e) => {
                let msg = format!("cannot make events durable: {e}");
                self.fail(msg.clone());
                slots
                    .into_iter()
                    .map(|s| s.and(Err(SinkError(msg.clone()))))
                    .collect()
            }
        };
        let mut it = results.into_iter();
        for (ack, n) in groups {
            ack.send(&mut it, n);
        }
    }

    /// Writes the frames (no fsync, except of a segment that is closed by a rotation);
    /// returns each event's (segment, offset, frame length).
    fn write_batch(
        &mut self,
        prepared: &[(Event, Vec<u8>, Hash)],
        sigs: &mut [Option<Signature>],
    ) -> Result<Vec<(u64, u64, u32)>> {
        let mut locations: Vec<(u64, u64, u32)> = Vec::with_capacity(prepared.len());
        let mut buf: Vec<u8> = Vec::with_capacity(
            prepared
                .iter()
                .map(|(_, b, _)| record::frame_len(true, b.len()))
                .sum(),
        );
        for i in 0..prepared.len() {
            let (ev, body, chain) = &prepared[i];
            let frame_len = record::frame_len(sigs[i].is_some(), body.len());
            if self.seg_len + (buf.len() + frame_len) as u64 > self.opts.segment_size
                && self.seg_len + buf.len() as u64 > SEGMENT_HEADER_LEN as u64
            {
                // Every closed segment ends with a signed record, so a covered run never
                // spans segments (per-batch signing): sign the last record written here.
                if i > 0 && locations[i - 1].0 == self.seg_first && sigs[i - 1].is_none() {
                    let (_, prev_body, prev_chain) = &prepared[i - 1];
                    let sig = self.signer.sign(&record::event_signing_message(prev_chain));
                    sigs[i - 1] = Some(sig);
                    let start = (locations[i - 1].1 - self.seg_len) as usize;
                    buf.truncate(start);
                    record::write_frame(&mut buf, prev_chain, Some(&sig), prev_body);
                    locations[i - 1].2 = (buf.len() - start) as u32;
                }
                self.write_segment(&buf)?;
                // The closed segment is synced here; earlier batches in it are synced (again,
                // cheaply) by the sync stage, which holds its own handle.
                self.seg.sync_data().map_err(io(&self.seg_path))?;
                buf.clear();
                let (f, path) = create_segment(&self.opts.dir, ev.seq)?;
                self.seg = Arc::new(f);
                self.seg_path = path;
                self.seg_first = ev.seq;
                self.seg_len = SEGMENT_HEADER_LEN as u64;
            }
            locations.push((
                self.seg_first,
                self.seg_len + buf.len() as u64,
                frame_len as u32,
            ));
            record::write_frame(&mut buf, chain, sigs[i].as_ref(), body);
        }
        self.write_segment(&buf)?;
        Ok(locations)
    }

    fn write_segment(&mut self, buf: &[u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        (&*self.seg).write_all(buf).map_err(io(&self.seg_path))?;
        self.seg_len += buf.len() as u64;
        Ok(())
    }

    /// Signs a checkpoint of the current state (tree and index written, not yet synced).
    fn make_checkpoint(&mut self) -> Result<SignedCheckpoint> {
        self.tree.flush()?;
        self.index.flush()?;
        let ts = now_ms().max(self.last_cp.as_ref().map_or(0, |c| c.timestamp_ms + 1));
        let cp = Checkpoint {
            origin: self.key.name.clone(),
            size: self.size,
            root: self.tree.range().root(&*self.p),
            timestamp_ms: ts,
            chain: self.chain,
        };
        let signed = SignedCheckpoint::sign(cp.clone(), &self.key, &*self.signer);
        self.last_cp = Some(cp);
        self.last_cp_at = Instant::now();
        Ok(signed)
    }

    /// Writes a checkpoint synchronously (while opening, before the pipeline runs).
    fn write_checkpoint(&mut self) -> Result<SignedCheckpoint> {
        // Derived files first: after a crash they are trusted up to the last checkpoint.
        self.tree.sync()?;
        self.index.sync()?;
        let signed = self.make_checkpoint()?;
        let path = self.opts.dir.join(CHECKPOINTS_FILE);
        let cps = self
            .cps
            .as_mut()
            .ok_or_else(|| AuditError::Unavailable("the checkpoints file is gone".into()))?;
        cps.write_all(&record::encode_frame(signed.note.as_bytes()))
            .and_then(|_| cps.sync_data())
            .map_err(io(&path))?;
        if let Some(s) = &self.shared {
            s.lock().latest = Some(signed.clone());
        }
        Ok(signed)
    }

    fn rotate(&mut self) -> Result<NoteKey> {
        let seed = self.p.generate_key()?;
        let next_path = self.opts.keys_dir.join(NEXT_KEY_FILE);
        symbi_crypto::write_secret_file(&next_path, hex::encode(seed).as_bytes())?;
        let new_signer = self.p.signer_from_seed(&seed)?;
        let new_key = NoteKey::new(&*self.p, &self.key.name, new_signer.public_key())?;
        let details = keys::rotation_details(&self.key, &new_key, &*new_signer);
        let (tx, rx) = oneshot::channel();
        self.commit(vec![Submission::new(
            vec![EventDraft::new(types::KEY_ROTATION, details)],
            AckTo::Many(tx),
        )]);
        // The rotation event must be durable before the new key takes over.
        self.barrier();
        let res = rx.blocking_recv().unwrap_or_else(|_| stopped(1));
        if let Some(Err(e)) = res.into_iter().next() {
            let _ = fs::remove_file(&next_path);
            return Err(AuditError::Unavailable(e.0));
        }
        self.pubkeys.push(new_key.clone());
        keys::write_pubkeys(&self.opts.dir.join(PUBKEYS_FILE), &self.pubkeys)?;
        let key_path = self.opts.keys_dir.join(SIGNING_KEY_FILE);
        fs::rename(&next_path, &key_path).map_err(io(&key_path))?;
        keys::sync_dir(&self.opts.keys_dir)?;
        tracing::info!(old = %self.key.id, new = %new_key.id, "rotated the audit signing key");
        self.key = new_key.clone();
        self.signer = new_signer;
        if let Some(s) = &self.shared {
            s.lock().key = new_key.clone();
        }
        let cp = self.make_checkpoint()?;
        let (tx, rx) = oneshot::channel();
        self.to_syncer(Job::Checkpoint(cp, Some(tx)));
        rx.blocking_recv().unwrap_or_else(|_| {
            Err(AuditError::Unavailable(
                "the audit sync stage stopped".into(),
            ))
        })?;
        Ok(new_key)
    }
}

/// A written batch waiting for its fdatasync.
struct BatchJob {
    seg: Arc<File>,
    seg_path: PathBuf,
    /// Events in the log once this batch is durable.
    size_after: u64,
    /// One per event in request order (refused events are already errors).
    results: Vec<AppendResult>,
    /// Acknowledgement targets with their number of events, in request order.
    groups: Vec<(AckTo, usize)>,
    /// Events for live subscribers.
    stored: Vec<Arc<StoredEvent>>,
}

enum Job {
    Batch(BatchJob),
    /// Sync tree and index, then append and sync the signed checkpoint.
    Checkpoint(
        SignedCheckpoint,
        Option<oneshot::Sender<Result<SignedCheckpoint>>>,
    ),
    /// Answered once every earlier job is done.
    Barrier(mpsc::Sender<()>),
}

impl Job {
    fn fail(self, msg: &str) {
        match self {
            Job::Batch(b) => b.fail(msg),
            Job::Checkpoint(_, Some(a)) => {
                let _ = a.send(Err(AuditError::Unavailable(msg.into())));
            }
            Job::Checkpoint(_, None) => {}
            Job::Barrier(a) => {
                let _ = a.send(());
            }
        }
    }
}

impl BatchJob {
    fn fail(self, msg: &str) {
        let mut it = self
            .results
            .into_iter()
            .map(|r| r.and(Err(SinkError(msg.to_string()))));
        for (ack, n) in self.groups {
            ack.send(&mut it, n);
        }
    }
}

/// Truncates a file of the log to `len` bytes (cutting what a crash left after it) and syncs it.
fn cut_file(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.set_len(len).and_then(|_| f.sync_all()).map_err(io(path))
}

/// Marks a pipeline stage failed (`local`) and, the first time for the log, the state both
/// stages and the handle share.
fn record_failure(local: &mut Option<String>, shared: Option<&Arc<Mutex<Shared>>>, msg: String) {
    if let Some(s) = shared {
        let mut s = s.lock();
        if s.failed.is_none() {
            s.failed = Some(msg.clone());
        }
    }
    *local = Some(msg);
}

struct SyncerHandle {
    tx: mpsc::Sender<Job>,
    thread: std::thread::JoinHandle<()>,
}

/// The sync stage: fdatasync, then acknowledge; checkpoints after the events they cover.
struct Syncer {
    cps: File,
    cps_path: PathBuf,
    tree: (File, PathBuf),
    index: (File, PathBuf),
    shared: Option<Arc<Mutex<Shared>>>,
    events: Option<broadcast::Sender<Arc<StoredEvent>>>,
    failed: Option<String>,
}

impl Syncer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut next: Option<Job> = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            match job {
                Job::Batch(b) => {
                    // Everything written meanwhile is covered by the same fdatasync.
                    let mut batches = vec![b];
                    while let Ok(j) = rx.try_recv() {
                        match j {
                            Job::Batch(b) => batches.push(b),
                            other => {
                                next = Some(other);
                                break;
                            }
                        }
                    }
                    self.sync_batches(batches);
                }
                Job::Checkpoint(cp, ack) => {
                    let res = self.checkpoint(cp);
                    if let Some(a) = ack {
                        let _ = a.send(res);
                    }
                }
                Job::Barrier(a) => {
                    let _ = a.send(());
                }
            }
        }
    }

    fn fail(&mut self, msg: String) {
        tracing::error!(error = %msg, "audit log failed; refusing further events (fail closed)");
        record_failure(&mut self.failed, self.shared.as_ref(), msg);
    }

    fn sync_batches(&mut self, batches: Vec<BatchJob>) {
        if self.failed.is_none() {
            let mut synced: Vec<&Arc<File>> = Vec::new();
            for b in &batches {
                if synced.iter().any(|f| Arc::ptr_eq(f, &b.seg)) {
                    continue;
                }
                if let Err(e) = b.seg.sync_data() {
                    self.fail(format!(
                        "cannot make events durable: {}: {e}",
                        b.seg_path.display()
                    ));
                    break;
                }
                synced.push(&b.seg);
            }
        }
        if let Some(m) = self.failed.clone() {
            for b in batches {
                b.fail(&format!("audit log unavailable: {m}"));
            }
            return;
        }
        for b in batches {
            if let Some(s) = &self.shared {
                s.lock().size = b.size_after;
            }
            // Live subscribers first: whoever holds a receipt may rely on the stream
            // already carrying that event.
            if let Some(tx) = &self.events {
                for ev in b.stored {
                    let _ = tx.send(ev);
                }
            }
            let mut it = b.results.into_iter();
            for (ack, n) in b.groups {
                ack.send(&mut it, n);
            }
        }
    }

    fn checkpoint(&mut self, signed: SignedCheckpoint) -> Result<SignedCheckpoint> {
        if let Some(m) = &self.failed {
            return Err(AuditError::Unavailable(m.clone()));
        }
        // Derived files first: after a crash they are trusted up to the last checkpoint.
        let res = self
            .tree
            .0
            .sync_data()
            .map_err(io(&self.tree.1))
            .and_then(|_| self.index.0.sync_data().map_err(io(&self.index.1)))
            .and_then(|_| {
                self.cps
                    .write_all(&record::encode_frame(signed.note.as_bytes()))
                    .and_then(|_| self.cps.sync_data())
                    .map_err(io(&self.cps_path))
            });
        match res {
            Ok(()) => {
                if let Some(s) = &self.shared {
                    s.lock().latest = Some(signed.clone());
                }
                Ok(signed)
            }
            Err(e) => {
                self.fail(format!("cannot write a checkpoint: {e}"));
                Err(e)
            }
        }
    }
}

fn fail_request(r: Request, msg: &str) {
    match r {
        Request::Append(sub) => {
            let n = sub.drafts.len();
            sub.ack.send(
                std::iter::repeat_with(|| Err(SinkError(msg.to_string()))),
                n,
            );
        }
        Request::Checkpoint(a) => {
            let _ = a.send(Err(AuditError::Unavailable(msg.into())));
        }
        Request::RotateKey(a) => {
            let _ = a.send(Err(AuditError::Unavailable(msg.into())));
        }
        Request::Close(a) => {
            let _ = a.send(Ok(()));
        }
    }
}

/// Signs every chain hash; spreads large batches over the available cores.
fn sign_all(signer: &dyn Signer, chains: &[Hash]) -> Vec<Signature> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if chains.len() < 256 || threads < 2 {
        return chains
            .iter()
            .map(|c| signer.sign(&record::event_signing_message(c)))
            .collect();
    }
    let chunk = chains.len().div_ceil(threads);
    let mut out = vec![[0u8; 64]; chains.len()];
    std::thread::scope(|s| {
        for (src, dst) in chains.chunks(chunk).zip(out.chunks_mut(chunk)) {
            s.spawn(move || {
                for (c, d) in src.iter().zip(dst.iter_mut()) {
                    *d = signer.sign(&record::event_signing_message(c));
                }
            });
        }
    });
    out
}
