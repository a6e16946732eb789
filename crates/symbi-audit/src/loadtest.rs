//! Durable-append load test behind `symbi bench audit` (also `cargo bench -p symbi-audit
//! --bench load` for an optimized run of this crate alone).
//!
//! Every mode appends through the public API and counts an event only when its append
//! returned Ok — that is, after an `fdatasync` covering it:
//!
//! * [`Mode::PerEvent`] — the **baseline**: `max_batch = 1`, one `fdatasync` per event;
//! * [`Mode::Await`] — group commit, each producer awaits each append
//!   ([`symbi_types::EventSink::record`], the runtime's path);
//! * [`Mode::Pipelined`] — group commit, each producer keeps `depth` appends in flight
//!   ([`AuditLog::submit`] tickets, awaited in order);
//! * [`Mode::Batched`] — group commit, each producer submits `depth` events at a time
//!   ([`AuditLog::record_many`]).

use crate::{AuditLog, AuditOptions, Signatures};
use serde_json::json;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_crypto::CryptoProvider;
use symbi_types::{EventDraft, EventSink};

/// How producers append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One fsync per event (`max_batch = 1`), each append awaited.
    PerEvent,
    /// Group commit, each append awaited.
    Await,
    /// Group commit, `depth` appends in flight per producer.
    Pipelined(usize),
    /// Group commit, `depth` events per submission.
    Batched(usize),
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::PerEvent => write!(f, "fsync/event"),
            Mode::Await => write!(f, "await"),
            Mode::Pipelined(d) => write!(f, "pipelined×{d}"),
            Mode::Batched(d) => write!(f, "batch×{d}"),
        }
    }
}

/// One measurement.
#[derive(Clone, Debug)]
pub struct AppendRun {
    /// Durable events per second.
    pub per_second: f64,
    /// Events appended.
    pub events: u64,
    /// Median time from submission to durable acknowledgement.
    pub p50: Duration,
    /// 99th percentile of the same.
    pub p99: Duration,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn draft(w: usize, i: u64) -> EventDraft {
    EventDraft::new(
        "invoke_tool",
        json!({"phase": "decision", "action": "search", "writer": w, "i": i, "decision": "Allow"}),
    )
}

/// Appends about `events` events from `producers` concurrent tasks to a fresh log in `dir`
/// (removed first). `checkpoint_every` as in [`AuditOptions`]. The log is verified to hold
/// every acknowledged event (its size) before it is closed.
pub fn run_appends(
    p: &Arc<dyn CryptoProvider>,
    dir: &Path,
    producers: usize,
    events: u64,
    mode: Mode,
    checkpoint_every: u64,
    signatures: Signatures,
) -> crate::error::Result<AppendRun> {
    let _ = std::fs::remove_dir_all(dir);
    let mut o = AuditOptions::new(dir);
    o.max_batch = if mode == Mode::PerEvent { 1 } else { 8192 };
    o.checkpoint_every = checkpoint_every;
    o.signatures = signatures;
    let log = AuditLog::open(o, p.clone())?;
    let producers = producers.max(1);
    let per = (events / producers as u64).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::AuditError::io(dir, e))?;
    let start = Instant::now();
    let mut lats: Vec<Duration> = rt.block_on(async {
        let tasks: Vec<_> = (0..producers)
            .map(|w| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut l = Vec::with_capacity(per as usize);
                    match mode {
                        Mode::PerEvent | Mode::Await => {
                            for i in 0..per {
                                let t = Instant::now();
                                log.record(draft(w, i)).await.expect("durable append");
                                l.push(t.elapsed());
                            }
                        }
                        Mode::Pipelined(depth) => {
                            let mut inflight = VecDeque::with_capacity(depth);
                            for i in 0..per {
                                if inflight.len() >= depth.max(1) {
                                    let (t, ticket): (Instant, crate::AppendTicket) =
                                        inflight.pop_front().unwrap();
                                    ticket.await.expect("durable append");
                                    l.push(t.elapsed());
                                }
                                inflight.push_back((
                                    Instant::now(),
                                    log.submit(draft(w, i)).expect("submit"),
                                ));
                            }
                            for (t, ticket) in inflight {
                                ticket.await.expect("durable append");
                                l.push(t.elapsed());
                            }
                        }
                        Mode::Batched(depth) => {
                            let mut i = 0;
                            while i < per {
                                let n = (depth.max(1) as u64).min(per - i);
                                let t = Instant::now();
                                let drafts = (i..i + n).map(|k| draft(w, k)).collect();
                                for r in log.record_many(drafts).await {
                                    r.expect("durable append");
                                }
                                let e = t.elapsed();
                                l.extend(std::iter::repeat_n(e, n as usize));
                                i += n;
                            }
                        }
                    }
                    l
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("producer task"));
        }
        all
    });
    let elapsed = start.elapsed();
    let n = per * producers as u64;
    if log.size() < n {
        return Err(crate::AuditError::Corrupt(format!(
            "{} events acknowledged but the log holds {}",
            n,
            log.size()
        )));
    }
    log.close()?;
    lats.sort();
    Ok(AppendRun {
        per_second: n as f64 / elapsed.as_secs_f64(),
        events: n,
        p50: percentile(&lats, 0.5),
        p99: percentile(&lats, 0.99),
    })
}
