//! Crash safety: a child process appends continuously and is killed with SIGKILL at random
//! moments. After each kill the log is reopened (which repairs a torn tail), verified, and
//! every event the child saw acknowledged must be there with the same id.
//!
//! The normal suite runs 200 kills (bounded to well under two minutes); the long run is
//! `cargo test -p symbi-audit --release --test crash -- --ignored` (2,000 kills).

use rand::Rng;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use symbi_audit::verify::{VerifyOptions, verify_log};
use symbi_audit::{AuditLog, AuditOptions, LogReader};
use symbi_types::EventId;

const CHILD: &str = env!("CARGO_BIN_EXE_symbi-audit-crash-child");

/// Runs the child until a random moment, kills it, returns what it saw acknowledged.
fn run_and_kill(
    data: &Path,
    writers: usize,
    extra: &[&str],
    per_batch: bool,
    rng: &mut impl Rng,
) -> Vec<(u64, EventId)> {
    let mut child = Command::new(CHILD)
        .arg(data)
        .arg(writers.to_string())
        .args(extra)
        .env(
            "SYMBI_AUDIT_TEST_SIGNATURES",
            if per_batch { "per_batch" } else { "per_event" },
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn crash child");
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut it = line.split(' ');
            let (Some(s), Some(id)) = (it.next(), it.next()) else {
                continue;
            }; // a line cut by the kill
            if let (Ok(s), Ok(id)) = (s.parse(), id.parse()) {
                if acked.is_empty() {
                    let _ = first_tx.send(());
                }
                acked.push((s, id));
            }
        }
        acked
    });
    // A quarter of the kills land at a random moment after spawn (often during open and
    // recovery); the rest at a random moment after the first acknowledgement, while appends
    // and group commits are in flight.
    if rng.random_range(0..4) == 0 {
        std::thread::sleep(Duration::from_micros(rng.random_range(0..30_000)));
    } else {
        let _ = first_rx.recv_timeout(Duration::from_secs(20));
        std::thread::sleep(Duration::from_micros(rng.random_range(0..25_000)));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.code().is_none() || err.is_empty(),
        "child failed on its own: {err}"
    );
    reader.join().unwrap()
}

fn check(data: &Path, acked: &[(u64, EventId)], iteration: usize) {
    let p = symbi_crypto::provider("ring").unwrap();
    // Reopen for writing: repairs a torn tail, refuses real damage.
    let log = AuditLog::open(AuditOptions::new(data), p.clone())
        .unwrap_or_else(|e| panic!("iteration {iteration}: reopen after SIGKILL failed: {e}"));
    log.close().unwrap();
    drop(log);
    let dir = data.join("audit");
    let rep = verify_log(&dir, &*p, &VerifyOptions::default()).unwrap();
    assert!(
        rep.ok,
        "iteration {iteration}: verification failed after SIGKILL: {:?}",
        rep.first_error
    );
    assert!(
        rep.warnings
            .iter()
            .all(|w| !w.contains("incomplete record")),
        "torn tail not repaired: {:?}",
        rep.warnings
    );
    let reader = LogReader::open(&dir, p).unwrap();
    for (seq, id) in acked {
        assert!(
            *seq < reader.size(),
            "iteration {iteration}: acknowledged event {seq} lost (log has {})",
            reader.size()
        );
        let ev = reader.event(*seq).unwrap();
        assert_eq!(
            ev.event.id, *id,
            "iteration {iteration}: acknowledged event {seq} changed"
        );
    }
}

fn crash_loop(iterations: usize, per_dir: usize) {
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut tmp = tempfile::tempdir().unwrap();
    let (mut total_acked, mut kills_with_acks) = (0usize, 0usize);
    for i in 0..iterations {
        if i % per_dir == 0 {
            tmp = tempfile::tempdir().unwrap();
        }
        let writers = [1usize, 4, 16][i % 3];
        // Every other run signs per batch (8-event batches): a kill then often lands between
        // a batch's covered records and its signed last record, which recovery must cut.
        let acked = run_and_kill(tmp.path(), writers, &[], i % 2 == 1, &mut rng);
        total_acked += acked.len();
        kills_with_acks += usize::from(!acked.is_empty());
        check(tmp.path(), &acked, i);
    }
    eprintln!(
        "{iterations} SIGKILLs in {:.1}s; {total_acked} acknowledged events checked; {kills_with_acks} kills landed while appending",
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills_with_acks * 2 > iterations,
        "most kills must land while the child is appending"
    );
}

#[test]
fn sigkill_never_loses_acknowledged_events() {
    crash_loop(200, 8);
}

#[test]
#[ignore = "long run: cargo test -p symbi-audit --release --test crash -- --ignored"]
fn sigkill_long_run() {
    crash_loop(2000, 25);
}

/// Power-loss shapes a SIGKILL cannot produce: the last segment cut at any byte, or with
/// zeros/garbage after the last complete record. Recovery must keep exactly the complete
/// records and verification must pass.
#[test]
fn torn_tails_are_cut_on_open() {
    let mut rng = rand::rng();
    let tmp = tempfile::tempdir().unwrap();
    // The child checkpoints only when it opens the log, so everything it appends after
    // that is "after the last sync point". Run it until such events exist.
    let dir = tmp.path().join("audit");
    let p = symbi_crypto::provider("ring").unwrap();
    let mut found = None;
    for _ in 0..20 {
        let _ = run_and_kill(tmp.path(), 4, &["1000000000"], false, &mut rng);
        let Ok(segs) = symbi_audit::segment::list_segments(&dir) else {
            continue;
        };
        let Some(last) = segs.last().map(|s| s.path.clone()) else {
            continue;
        };
        let original = std::fs::read(&last).unwrap();
        let scan = symbi_audit::segment::scan_bytes(&original);
        // Only bytes after the last checkpoint can be lost by a power failure (everything
        // up to a checkpoint was synced before it was signed).
        let Ok(reader) = LogReader::open(&dir, p.clone()) else {
            continue;
        };
        let cp_size = reader.latest_checkpoint().map_or(0, |c| c.checkpoint.size);
        let seqs: Vec<u64> = scan
            .records
            .iter()
            .map(|r| {
                symbi_audit::record::Event::from_body(&r.record.body)
                    .unwrap()
                    .seq
            })
            .collect();
        let after = seqs.iter().filter(|&&s| s >= cp_size).count();
        if after > 2 && scan.error.is_none() {
            let min_cut = scan
                .records
                .iter()
                .zip(&seqs)
                .find(|(_, s)| **s + 1 == cp_size)
                .map_or(symbi_audit::record::SEGMENT_HEADER_LEN, |(r, _)| {
                    (r.offset + r.frame_len as u64) as usize
                });
            found = Some((last, original, scan, min_cut));
            break;
        }
    }
    let (last, original, scan, min_cut) =
        found.expect("the child appended events after its opening checkpoint");
    for round in 0..30 {
        let backup = tempfile::tempdir().unwrap();
        copy_dir(tmp.path(), backup.path());
        let target = backup
            .path()
            .join("audit/segments")
            .join(last.file_name().unwrap());
        let cut = rng.random_range(min_cut..original.len());
        let mut bytes = original[..cut].to_vec();
        match round % 3 {
            0 => {}
            1 => bytes.extend(std::iter::repeat_n(0u8, rng.random_range(1..5000))),
            _ => bytes.extend((0..rng.random_range(1..5000)).map(|_| rng.random::<u8>())),
        }
        std::fs::write(&target, &bytes).unwrap();
        let complete = scan
            .records
            .iter()
            .filter(|r| r.offset + r.frame_len as u64 <= cut as u64)
            .count();
        let log = AuditLog::open(AuditOptions::new(backup.path()), p.clone())
            .unwrap_or_else(|e| panic!("round {round}: cut at {cut}: {e}"));
        let expect = scan.records[0..complete].last().map(|r| {
            symbi_audit::record::Event::from_body(&r.record.body)
                .unwrap()
                .seq
                + 1
        });
        if let Some(n) = expect {
            assert_eq!(log.size(), n, "round {round}: complete records are kept");
        }
        log.close().unwrap();
        drop(log);
        let rep = verify_log(&backup.path().join("audit"), &*p, &VerifyOptions::default()).unwrap();
        assert!(rep.ok, "round {round}: {:?}", rep.first_error);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// When the disk refuses a write (here: RLIMIT_FSIZE makes writes fail with EFBIG), the
/// event is refused, every later event too (fail closed), and nothing acknowledged is lost.
#[test]
fn write_failure_fails_closed_and_keeps_acknowledged_events() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(CHILD)
        .arg(tmp.path())
        .arg("4")
        .env("SYMBI_AUDIT_TEST_FSIZE", "30000")
        .output()
        .expect("spawn crash child");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the log must refuse events after a failed write: {err}"
    );
    assert!(err.contains("cannot make events durable"), "{err}");
    let acked: Vec<(u64, EventId)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    assert!(
        acked.len() > 10,
        "some events were acknowledged before the disk refused"
    );
    check(tmp.path(), &acked, 0);
}
