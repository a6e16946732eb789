//! Durable appends/s by mode and concurrency, with the one-fsync-per-event baseline in the
//! same run: `cargo bench -p symbi-audit --bench load [-- CHECKPOINT_EVERY]`. The disk is
//! the one holding `$TMPDIR` (default /tmp); set `SYMBI_BENCH_DIR` to choose another.
//! See `symbi_audit::loadtest`.

use symbi_audit::Signatures;
use symbi_audit::loadtest::{Mode, run_appends};

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let cp_every: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let p = symbi_crypto::provider("ring").expect("ring");
    let base = match std::env::var_os("SYMBI_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    println!(
        "audit load test: checkpoint every {cp_every} events; dir {}; load average {}",
        base.path().display(),
        load()
    );
    let per_event = run_appends(
        &p,
        &base.path().join("pe"),
        64,
        2_000,
        Mode::PerEvent,
        cp_every,
        Signatures::PerEvent,
    )
    .unwrap();
    println!(
        "{:<8} {:<14} {:>10} {:>12} {:>12} {:>10}",
        "writers", "mode", "events/s", "p50", "p99", "vs fsync/event"
    );
    println!(
        "{:<8} {:<14} {:>10.0} {:>12.2?} {:>12.2?} {:>10}",
        64,
        Mode::PerEvent,
        per_event.per_second,
        per_event.p50,
        per_event.p99,
        "1.0x"
    );
    use Signatures::{PerBatch, PerEvent};
    let rows: &[(usize, Mode, u64, Signatures)] = &[
        (1, Mode::Await, 2_000, PerEvent),
        (64, Mode::Await, 50_000, PerEvent),
        (1024, Mode::Await, 200_000, PerEvent),
        (1, Mode::Pipelined(1024), 200_000, PerEvent),
        (8, Mode::Pipelined(1024), 400_000, PerEvent),
        (64, Mode::Pipelined(64), 400_000, PerEvent),
        (8, Mode::Batched(1024), 400_000, PerEvent),
        (64, Mode::Await, 50_000, PerBatch),
        (1024, Mode::Await, 200_000, PerBatch),
        (64, Mode::Pipelined(64), 400_000, PerBatch),
        (8, Mode::Batched(1024), 400_000, PerBatch),
    ];
    for (i, &(w, mode, n, sigs)) in rows.iter().enumerate() {
        let r = run_appends(
            &p,
            &base.path().join(format!("r{i}")),
            w,
            n,
            mode,
            cp_every,
            sigs,
        )
        .unwrap();
        println!(
            "{:<8} {:<14} {:>10.0} {:>12.2?} {:>12.2?} {:>9.1}x",
            w,
            format!(
                "{mode}{}",
                if sigs == PerBatch { " (sig/batch)" } else { "" }
            ),
            r.per_second,
            r.p50,
            r.p99,
            r.per_second / per_event.per_second
        );
    }
    println!("load average at the end: {}", load());
}
