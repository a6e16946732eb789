//! Bus benchmarks.
//!
//! 1. Criterion: cost of one direct message (send → receive → ack) per security mode,
//!    in process, next to a bare `tokio::sync::mpsc` round of the same payload, and the raw
//!    crypto of one message (Ed25519 sign + verify, AES-256-GCM seal + open).
//! 2. The load-test table of `symbi bench bus` (throughput and p50/p99 latency for every
//!    backend, mode, payload and fan-out, with ratios), printed after criterion.
//!    Set `SYMBI_BENCH_NATS_URL=nats://127.0.0.1:4222` (a server with `-js`) to include the
//!    NATS rows; `SYMBI_BENCH_MESSAGES` scales the run (default 100000).
//!
//! `cargo bench -p symbi-bus --bench bus`

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_bus::loadtest::{self, LoadTestConfig};
use symbi_bus::{Bus, BusSecurityMode, BusSettings, KeyRing, SendOptions};
use symbi_types::event::NullSink;
use symbi_types::{AgentId, AgentRuleSet, Decision, PolicyDecisionPoint, PolicyRequest, Principal};

struct AllowAll;
impl PolicyDecisionPoint for AllowAll {
    fn decide(&self, _: &PolicyRequest, _: Option<&dyn AgentRuleSet>) -> Decision {
        Decision::Allow { reasons: vec![] }
    }
}

fn bus(
    rt: &tokio::runtime::Runtime,
    mode: BusSecurityMode,
) -> (Bus, Principal, AgentId, symbi_bus::Inbox) {
    rt.block_on(async {
        let keys = Arc::new(KeyRing::new(
            symbi_crypto::provider("ring").unwrap(),
            [5; 32],
        ));
        let s = BusSettings {
            security: mode,
            rate_limit_per_agent: 0,
            queue_capacity: 65_536,
            ..BusSettings::default()
        };
        let bus = Bus::memory(s, keys, Arc::new(AllowAll), Arc::new(NullSink)).unwrap();
        let (a, b) = (AgentId::new(), AgentId::new());
        bus.register_agent(a, "a").await.unwrap();
        bus.register_agent(b, "b").await.unwrap();
        let inbox = bus.inbox(b).await.unwrap();
        (
            bus,
            Principal {
                agent_id: Some(a),
                ..Principal::agent("a")
            },
            b,
            inbox,
        )
    })
}

fn direct(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for size in [64usize, 4096] {
        let payload = Bytes::from(vec![0xabu8; size]);
        let mut g = c.benchmark_group(format!("bus_direct/{size}B"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("mpsc_baseline", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let p = payload.clone();
                async move {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(65_536);
                    let start = Instant::now();
                    for _ in 0..iters {
                        tx.send(p.clone()).await.unwrap();
                        std::hint::black_box(rx.recv().await.unwrap());
                    }
                    start.elapsed()
                }
            })
        });
        for mode in [
            BusSecurityMode::Plaintext,
            BusSecurityMode::Session,
            BusSecurityMode::SignedEveryMessage,
        ] {
            let (bus, from, to, inbox) = bus(&rt, mode);
            let inbox = Arc::new(tokio::sync::Mutex::new(inbox));
            g.bench_function(format!("memory_{mode:?}"), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let (bus, from, inbox, p) =
                        (bus.clone(), from.clone(), inbox.clone(), payload.clone());
                    async move {
                        let mut inbox = inbox.lock().await;
                        let start = Instant::now();
                        for _ in 0..iters {
                            bus.send(&from, to, p.clone(), SendOptions::default())
                                .await
                                .unwrap();
                            inbox.recv().await.unwrap().ack().await.unwrap();
                        }
                        start.elapsed()
                    }
                })
            });
        }
        g.bench_function("raw_crypto_sign_verify_seal_open", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                let rate = loadtest::raw_crypto_rate("ring", size, iters as usize);
                std::hint::black_box(rate);
                t.elapsed()
            })
        });
        g.finish();
    }
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    direct(&mut c);
    c.final_summary();

    let messages = std::env::var("SYMBI_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let cfg = LoadTestConfig {
        messages,
        latency_samples: 2_000,
        nats_url: std::env::var("SYMBI_BENCH_NATS_URL").ok(),
        ..LoadTestConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = rt
        .block_on(loadtest::run(&cfg, |r| {
            eprintln!(
                "done: {} {} {} {}B x{}",
                r.backend, r.mode, r.pattern, r.payload, r.subscribers
            )
        }))
        .unwrap();
    println!("\n{}", loadtest::table(&rows));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}
