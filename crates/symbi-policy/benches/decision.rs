//! Policy decision benchmarks (docs/benchmarks/policy.md).
//!
//! With 10, 100 and 1,000 policies (plus the shipped defaults) and a realistic entity set
//! (200 agents with capabilities and tags, a mix of tools, hosts, topics, stores, models
//! and runtime operations):
//!
//! * `cedar_bare` — the baseline: `cedar_policy::Authorizer::is_authorized` on prebuilt
//!   request and entities against the whole, unsliced policy set;
//! * `pdp_decide` — `PolicyDecisionPoint::decide` (request → entities → sliced set →
//!   decision with reasons and conditions);
//! * `pdp_decide_dsl` — the same with an agent rule set (the DSL side);
//! * `pdp_decide_audit` — decide plus recording the decision as an event in a
//!   `MemoryEventLog` (the full enforcement path: PDP trait + audit hook);
//! * `pdp_decide_batch` — 64 requests per call.
//!
//! After Criterion, a second pass measures per-decision p50/p99/p99.9 latency and the
//! throughput of two threads (the machine's two cores) for the bare engine and the PDP.
//! Run: `cargo bench -p symbi-policy --bench decision`.

use cedar_policy::{Authorizer, Entities, PolicySet, Request};
use criterion::{BenchmarkId, Criterion, Throughput};
use futures::FutureExt;
use serde_json::json;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use symbi_policy::loadtest::workload;
use symbi_policy::{EngineOptions, PolicyEngine, PolicySource, model};
use symbi_types::{
    AgentRuleSet, Condition, EventDraft, EventSink, MemoryEventLog, PolicyDecisionPoint,
    PolicyRequest, RuleOutcome,
};

const SIZES: [usize; 3] = [10, 100, 1000];

/// Shipped defaults plus `n` generated policies (`symbi_policy::loadtest::workload`).
fn sources(n: usize) -> Vec<PolicySource> {
    workload::sources(n)
}

/// 1,000 requests in a realistic mix of enforcement points.
fn request_pool() -> Vec<PolicyRequest> {
    workload::request_pool(1000, false)
}

/// A DSL rule set of the size agents have: a few allows, a deny, a require.
struct Rules;

impl AgentRuleSet for Rules {
    fn evaluate(&self, r: &PolicyRequest) -> RuleOutcome {
        let cat = r.category.as_str();
        RuleOutcome {
            denied_by: (cat == "file_write")
                .then(|| "denied by deny rule of policy p at a.symbi:4:9".to_string()),
            allowed_by: if cat == "publish" || r.name.starts_with("http.") {
                vec!["allowed by allow rule of policy p at a.symbi:3:9".to_string()]
            } else {
                Vec::new()
            },
            conditions: if cat == "network_access" {
                vec![Condition::RateLimit {
                    max: 30,
                    period: symbi_types::decision::RatePeriod::Minute,
                    per: None,
                }]
            } else {
                Vec::new()
            },
        }
    }
}

struct Setup {
    engine: Arc<PolicyEngine>,
    whole: PolicySet,
    pool: Vec<PolicyRequest>,
    cedar: Vec<(Request, Entities)>,
}

fn setup(n: usize) -> Setup {
    let srcs = sources(n);
    // Cache off: these rows measure the evaluation itself (the load test has warm rows).
    let engine = Arc::new(
        PolicyEngine::from_sources(
            srcs.clone(),
            EngineOptions::enforcing().with_decision_cache(0),
        )
        .expect("valid"),
    );
    // The baseline evaluates the whole set, as Cedar is normally used.
    let mut whole = PolicySet::new();
    for s in &srcs {
        let ps = PolicySet::from_str(&s.text).expect("parses");
        whole.merge(&ps, true).expect("merge");
    }
    let pool = request_pool();
    let cedar = pool
        .iter()
        .map(|r| model::to_cedar(r).expect("fits"))
        .collect();
    Setup {
        engine,
        whole,
        pool,
        cedar,
    }
}

fn criterion_benches(c: &mut Criterion, setups: &[(usize, Setup)]) {
    let mut g = c.benchmark_group("policy");
    g.throughput(Throughput::Elements(1));
    for (n, s) in setups {
        let auth = Authorizer::new();
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::new("cedar_bare", n), n, |b, _| {
            b.iter(|| {
                i = (i + 1) % s.cedar.len();
                let (req, ents) = &s.cedar[i];
                black_box(auth.is_authorized(req, &s.whole, ents))
            })
        });
        g.bench_with_input(BenchmarkId::new("pdp_decide", n), n, |b, _| {
            b.iter(|| {
                i = (i + 1) % s.pool.len();
                black_box(s.engine.decide(&s.pool[i], None))
            })
        });
        g.bench_with_input(BenchmarkId::new("pdp_decide_dsl", n), n, |b, _| {
            b.iter(|| {
                i = (i + 1) % s.pool.len();
                black_box(s.engine.decide(&s.pool[i], Some(&Rules)))
            })
        });
        g.bench_with_input(BenchmarkId::new("pdp_decide_audit", n), n, |b, _| {
            b.iter_custom(|iters| {
                let mut log = MemoryEventLog::default();
                let start = Instant::now();
                for k in 0..iters {
                    i = (i + 1) % s.pool.len();
                    let r = &s.pool[i];
                    let d = s.engine.decide(r, None);
                    let draft = EventDraft::new(
                        r.category.as_str(),
                        json!({ "action": r.name, "decision": d }),
                    );
                    black_box(log.record(draft).now_or_never());
                    // Keep memory bounded over millions of iterations (cost included).
                    if k % 8192 == 8191 {
                        log = MemoryEventLog::default();
                    }
                }
                start.elapsed()
            })
        });
    }
    g.throughput(Throughput::Elements(64));
    for (n, s) in setups {
        let batch: Vec<PolicyRequest> = s.pool.iter().take(64).cloned().collect();
        g.bench_with_input(BenchmarkId::new("pdp_decide_batch64", n), n, |b, _| {
            b.iter(|| black_box(s.engine.decide_batch(&batch, None)))
        });
    }
    g.finish();
}

fn percentiles(mut v: Vec<u64>) -> (f64, f64, f64) {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 / 1000.0;
    (at(0.5), at(0.99), at(0.999))
}

/// Per-decision latency (one timer read per decision) and two-thread throughput.
fn latency_pass(setups: &[(usize, Setup)], samples: usize, run_for: Duration) {
    println!("\n== per-decision latency (µs) and 2-thread throughput ==");
    println!(
        "{:<22} {:>6} {:>8} {:>8} {:>8} {:>14}",
        "path", "n", "p50", "p99", "p99.9", "decisions/s"
    );
    for (n, s) in setups {
        let auth = Authorizer::new();
        let bare = |k: usize| {
            let (req, ents) = &s.cedar[k % s.cedar.len()];
            black_box(auth.is_authorized(req, &s.whole, ents));
        };
        let pdp = |k: usize| {
            black_box(s.engine.decide(&s.pool[k % s.pool.len()], None));
        };
        for (name, f) in [
            ("cedar_bare", &bare as &(dyn Fn(usize) + Sync)),
            ("pdp_decide", &pdp),
        ] {
            // Warm up, then time each decision.
            for k in 0..10_000 {
                f(k);
            }
            let mut lat = Vec::with_capacity(samples);
            for k in 0..samples {
                let t = Instant::now();
                f(k);
                lat.push(t.elapsed().as_nanos() as u64);
            }
            let (p50, p99, p999) = percentiles(lat);
            // Two threads, as many decisions as they can in `run_for`.
            let stop = AtomicBool::new(false);
            let count = AtomicU64::new(0);
            std::thread::scope(|sc| {
                for t in 0..2 {
                    let (stop, count) = (&stop, &count);
                    sc.spawn(move || {
                        let mut k = t * 7919;
                        let mut local = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..256 {
                                f(k);
                                k += 1;
                            }
                            local += 256;
                        }
                        count.fetch_add(local, Ordering::Relaxed);
                    });
                }
                std::thread::sleep(run_for);
                stop.store(true, Ordering::Relaxed);
            });
            let rate = count.load(Ordering::Relaxed) as f64 / run_for.as_secs_f64();
            println!("{name:<22} {n:>6} {p50:>8.2} {p99:>8.2} {p999:>8.2} {rate:>14.0}");
        }
    }
}

fn main() {
    let setups: Vec<(usize, Setup)> = SIZES.iter().map(|&n| (n, setup(n))).collect();
    for (n, s) in &setups {
        eprintln!(
            "set {n}: {} policies loaded",
            s.engine.snapshot().policy_count()
        );
    }
    let full = std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    criterion_benches(&mut c, &setups);
    c.final_summary();
    if full {
        latency_pass(&setups, 100_000, Duration::from_secs(2));
    } else {
        latency_pass(&setups, 2_000, Duration::from_millis(100));
    }
}
