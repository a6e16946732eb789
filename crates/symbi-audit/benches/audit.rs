//! Audit log benchmarks. Each group carries its baseline measured in the same run:
//!
//! * `append/*` — durable appends (fdatasync before acknowledgement) with group commit under
//!   1, 8 and 64 concurrent writers, next to one fsync per event (`max_batch = 1`).
//! * `verify/*` — full verification throughput, batch vs one-by-one Ed25519.
//! * `proof/*` — inclusion and consistency proof generation on a 1,000,000-leaf tree kept in
//!   the post-order hash file, next to recomputing the path from leaf hashes in memory.
//!
//! `cargo bench -p symbi-audit --bench audit`; the end-to-end equivalent is
//! `symbi bench audit`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_audit::merkle::{self, TreeStore, leaf_hash};
use symbi_audit::verify::{VerifyOptions, verify_log};
use symbi_audit::{AuditLog, AuditOptions};
use symbi_crypto::CryptoProvider;
use symbi_types::EventDraft;

fn provider() -> Arc<dyn CryptoProvider> {
    symbi_crypto::provider("ring").unwrap()
}

/// Appends `n` events from `writers` threads to a fresh log; returns the elapsed time.
fn run_appends(writers: usize, n: u64, max_batch: usize) -> Duration {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = AuditOptions::new(tmp.path());
    o.max_batch = max_batch;
    o.checkpoint_every = 1_000_000;
    let log = AuditLog::open(o, provider()).unwrap();
    let per = (n / writers as u64).max(1);
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let log = log.clone();
            s.spawn(move || {
                for i in 0..per {
                    log.append_blocking(EventDraft::new(
                        "invoke_tool",
                        json!({"w": w, "i": i, "decision": "Allow"}),
                    ))
                    .unwrap();
                }
            });
        }
    });
    let t = start.elapsed();
    log.close().unwrap();
    t
}

fn appends(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for writers in [1usize, 8, 64] {
        // Group commit: 64 events per writer per iteration.
        let n = 64 * writers as u64;
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(
            BenchmarkId::new("group_commit", writers),
            &writers,
            |b, &w| b.iter_custom(|iters| (0..iters).map(|_| run_appends(w, n, 8192)).sum()),
        );
        g.bench_with_input(
            BenchmarkId::new("fsync_per_event", writers),
            &writers,
            |b, &w| b.iter_custom(|iters| (0..iters).map(|_| run_appends(w, n, 1)).sum()),
        );
    }
    g.finish();
}

fn verification(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = AuditOptions::new(tmp.path());
    o.checkpoint_every = 1000;
    let log = AuditLog::open(o, provider()).unwrap();
    std::thread::scope(|s| {
        for w in 0..16 {
            let log = log.clone();
            s.spawn(move || {
                for i in 0..1250 {
                    log.append_blocking(EventDraft::new(
                        "file_read",
                        json!({"w": w, "i": i, "path": "/srv/data"}),
                    ))
                    .unwrap();
                }
            });
        }
    });
    log.close().unwrap();
    let dir = tmp.path().join("audit");
    let p = provider();
    let mut g = c.benchmark_group("verify");
    g.sample_size(10);
    g.throughput(Throughput::Elements(20_000));
    for batch in [true, false] {
        g.bench_function(if batch { "batch_20k" } else { "single_20k" }, |b| {
            b.iter(|| {
                let r = verify_log(
                    &dir,
                    &*p,
                    &VerifyOptions {
                        batch,
                        ..Default::default()
                    },
                )
                .unwrap();
                assert!(r.ok);
            })
        });
    }
    g.finish();
}

fn proofs(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let p = provider();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tree.hashes");
    let mut tree = TreeStore::open(&path, true, u64::MAX).unwrap();
    let mut leaves = Vec::with_capacity(N as usize);
    for i in 0..N {
        let l = leaf_hash(&*p, &i.to_be_bytes());
        leaves.push(l);
        tree.push(&*p, l);
    }
    tree.sync().unwrap();
    let tree = TreeStore::open(&path, false, u64::MAX).unwrap();
    let mut g = c.benchmark_group("proof_1M");
    let mut x: u64 = 12345;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % N
    };
    g.bench_function("inclusion_hash_file", |b| {
        b.iter(|| merkle::inclusion_proof(&*p, &tree, next(), N).unwrap())
    });
    g.bench_function("consistency_hash_file", |b| {
        b.iter(|| merkle::consistency_proof(&*p, &tree, 1 + next() % (N - 1), N).unwrap())
    });
    // Baseline: the same proof from leaf hashes in memory (no stored interior nodes).
    let mem = merkle::MemoryTree::new(&*p, &leaves);
    g.sample_size(10);
    g.bench_function("inclusion_recompute_baseline", |b| {
        b.iter(|| merkle::inclusion_proof(&*p, &mem, next(), N).unwrap())
    });
    g.finish();
}

criterion_group!(benches, appends, verification, proofs);
criterion_main!(benches);
