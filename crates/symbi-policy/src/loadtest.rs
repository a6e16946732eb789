//! The policy load test behind `symbi bench policy` (and `cargo bench -p symbi-policy
//! --bench load`, which runs it in an optimized build without the whole binary).
//!
//! For each policy-set size it measures, in the same run and on the same request pool:
//!
//! * `cedar_bare` — the **baseline**: `cedar_policy::Authorizer::is_authorized` on prebuilt
//!   Cedar requests and entities against the whole policy set (Cedar as usually used);
//! * `pdp_cold` — [`PolicyDecisionPoint::decide`] with the decision cache off: translation,
//!   indexed policy slices, reasons and conditions, every time;
//! * `pdp_warm` — the same engine with the cache on, after one pass over the pool.
//!
//! Each row reports per-decision p50/p99 (one timer read per decision, single thread) and
//! the throughput of `threads` threads deciding for `seconds`. Figures depend on the load of
//! the machine: the report carries `/proc/loadavg` at the start and the end.
//!
//! The workload ([`workload`]) is the one of `benches/decision.rs`: the shipped defaults plus
//! generated operator policies of the kinds a deployment has, 200 agents with capabilities
//! and tags, and a mix of enforcement points. Every request of the pool carries its own
//! execution id, as requests of different executions do.

use crate::{EngineOptions, PolicyEngine, model};
use cedar_policy::{Authorizer, Entities, PolicySet, Request};
use serde::Serialize;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use symbi_types::{PolicyDecisionPoint, PolicyRequest};

/// The benchmark workload: policies and requests.
pub mod workload {
    use crate::requests::{self, AgentTarget, DataAccess, ResourceKind, ToolSubject};
    use crate::{PolicySource, defaults};
    use serde_json::json;
    use symbi_types::{ExecutionId, PolicyRequest, Principal, SandboxTier};

    /// Number of agents in the entity set.
    pub const AGENTS: usize = 200;

    /// `n` operator policies of the kinds a deployment has: 50 % per-agent tool grants,
    /// 15 % host allow-lists with `when` conditions and `@tls_verification`, 10 % topic
    /// patterns, 10 % per-agent memory grants, 5 % forbids on dangerous tools, 5 % LLM
    /// permits with `@require_approval`/`@rate_limit` reading tags, 5 % clearance forbids.
    pub fn policy_text(n: usize) -> String {
        let mut out = String::new();
        for i in 0..n {
            let a = i % AGENTS;
            let p = match i % 20 {
                0..=9 => format!(
                    "@id(\"tool-{i}\")\npermit(principal == Agent::\"agent_{a}\", action == Action::\"invoke_tool\", resource == Tool::\"tool_{}\");\n",
                    i % 50
                ),
                10..=12 => format!(
                    "@id(\"net-{i}\")\n@tls_verification(\"true\")\npermit(principal is Agent, action == Action::\"network_access\", resource is Host)\nwhen {{ resource.domain == \"api{}.example.com\" && principal.capabilities.contains(\"network_access\") }};\n",
                    i % 40
                ),
                13 | 14 => format!(
                    "@id(\"topic-{i}\")\npermit(principal is Agent, action == Action::\"publish\", resource is Topic)\nwhen {{ resource.name like \"team{}/*\" }};\n",
                    i % 30
                ),
                15 | 16 => format!(
                    "@id(\"store-{i}\")\npermit(principal == Agent::\"agent_{a}\", action in [Action::\"memory_read\", Action::\"memory_write\"], resource == MemoryStore::\"store_{a}\");\n"
                ),
                17 => format!(
                    "@id(\"danger-{i}\")\n@reason(\"dangerous tool\")\nforbid(principal, action == Action::\"invoke_tool\", resource == Tool::\"danger_{}\");\n",
                    i % 10
                ),
                18 => format!(
                    "@id(\"llm-{i}\")\n@require_approval(\"true\")\n@rate_limit(\"30/minute\")\npermit(principal is Agent, action == Action::\"use_llm\", resource is Model)\nwhen {{ principal.hasTag(\"team\") && principal.getTag(\"team\") == \"team{}\" }};\n",
                    i % 30
                ),
                _ => format!(
                    "@id(\"clearance-{i}\")\nforbid(principal is Agent, action == Action::\"secret_read\", resource is Secret)\nunless {{ principal.hasTag(\"clearance\") && principal.getTag(\"clearance\") == \"level{}\" }};\n",
                    i % 5
                ),
            };
            out.push_str(&p);
        }
        out
    }

    /// The shipped defaults plus `n` generated policies.
    pub fn sources(n: usize) -> Vec<PolicySource> {
        let mut s = defaults::default_sources();
        s.push(PolicySource::new("bench.cedar", policy_text(n)));
        s
    }

    /// The agents: 5 capabilities and 3 tags each.
    pub fn principals() -> Vec<Principal> {
        (0..AGENTS)
            .map(|i| {
                let mut p = requests::agent_principal(
                    format!("agent_{i}"),
                    Some(symbi_types::AgentId::new()),
                    [
                        "invoke_tool",
                        "network_access",
                        "publish",
                        "memory_read",
                        "memory_write",
                    ],
                    Some(SandboxTier::Tier2),
                );
                p.attributes
                    .insert("team".into(), json!(format!("team{}", i % 30)));
                p.attributes
                    .insert("clearance".into(), json!(format!("level{}", i % 5)));
                p.attributes.insert("started_by".into(), json!("scheduler"));
                p
            })
            .collect()
    }

    /// `count` requests in a realistic mix of enforcement points (tool calls with
    /// arguments, network access, publish, memory reads, LLM calls, secret reads,
    /// `execute_agent` by an API client, resource allocations), each in an execution
    /// context; with `unique_executions` every request gets its own execution id.
    pub fn request_pool(count: usize, unique_executions: bool) -> Vec<PolicyRequest> {
        let ps = principals();
        let shared = ExecutionId::new();
        (0..count)
            .map(|i| {
                let ctx = requests::ExecutionContext {
                    execution: Some(if unique_executions {
                        ExecutionId::new()
                    } else {
                        shared
                    }),
                    trigger: Some("api".into()),
                    session: Some("s-1".into()),
                    initiator: Some("alice".into()),
                    ..Default::default()
                };
                let p = ps[i % AGENTS].clone();
                let r = match i % 10 {
                    0..=2 => requests::invoke_tool(
                        p,
                        ToolSubject::named(format!("tool_{}", i % 60)),
                        vec![json!({"q": i % 7})],
                    ),
                    3 => requests::network_access(
                        p,
                        &format!("https://api{}.example.com/v1/items", i % 50),
                        "GET",
                    ),
                    4 => requests::publish(p, &format!("team{}/events", i % 40), 256),
                    5 => requests::data_access(
                        p,
                        DataAccess::MemoryRead {
                            store: format!("store_{}", i % AGENTS),
                        },
                        vec![],
                    ),
                    6 => requests::use_llm(p, "gpt-4o", "openai"),
                    7 => requests::data_access(
                        p,
                        DataAccess::SecretRead {
                            path: "db/password".into(),
                        },
                        vec![],
                    ),
                    8 => requests::execute_agent(
                        requests::client_principal("ci", ["deploy"]),
                        &AgentTarget::named(format!("agent_{}", i % AGENTS)),
                        "api",
                    ),
                    _ => requests::allocate_resource(p, ResourceKind::Memory, 64 << 20),
                };
                requests::in_execution(r, &ctx)
            })
            .collect()
    }
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Operator policies per run (the shipped defaults come on top).
    pub sizes: Vec<usize>,
    /// Requests in the pool (distinct requests; the warm cache holds them all).
    pub pool: usize,
    /// Timed decisions per latency measurement (at most; see `seconds`).
    pub samples: usize,
    /// Seconds per throughput measurement, and the time limit of a latency measurement.
    pub seconds: f64,
    /// Threads in the throughput measurement.
    pub threads: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            sizes: vec![10, 100, 1000],
            pool: 1000,
            samples: 50_000,
            seconds: 2.0,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// `cedar_bare`, `pdp_cold` or `pdp_warm`.
    pub path: &'static str,
    /// Operator policies (defaults excluded).
    pub policies: usize,
    /// Policies in the set, defaults included.
    pub total_policies: usize,
    /// Median decision latency, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Timed decisions.
    pub samples: usize,
    /// Decisions per second over all threads.
    pub per_second: f64,
    /// Throughput relative to `cedar_bare` of the same size.
    pub vs_bare: f64,
    /// Cache hit ratio during the measurement (warm rows).
    pub hit_ratio: Option<f64>,
}

impl Row {
    /// The column titles of [`Row::table_line`].
    pub const TABLE_HEADER: &'static str =
        "path             n     p50 µs     p99 µs    decisions/s   vs bare   hits";

    /// The row as one line of the text table printed by the load test.
    pub fn table_line(&self) -> String {
        format!(
            "{:<11} {:>6} {:>10.2} {:>10.2} {:>14.0} {:>8.2}x {:>6}",
            self.path,
            self.policies,
            self.p50_us,
            self.p99_us,
            self.per_second,
            self.vs_bare,
            self.hit_ratio
                .map(|h| format!("{:.0}%", h * 100.0))
                .unwrap_or_default()
        )
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `/proc/loadavg` (first three fields) at the start.
    pub load_start: String,
    /// …and at the end.
    pub load_end: String,
    /// Threads of the throughput measurement.
    pub threads: usize,
    /// Rows in measurement order.
    pub rows: Vec<Row>,
}

/// The first three fields of `/proc/loadavg` (empty where there is none).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
}

/// Latency (single thread) and throughput (`threads`) of `f(k)` for k = 0, 1, ….
fn measure(f: &(dyn Fn(usize) + Sync), o: &LoadOptions) -> (f64, f64, usize, f64) {
    let limit = Duration::from_secs_f64(o.seconds);
    let mut lat: Vec<u64> = Vec::with_capacity(o.samples);
    let start = Instant::now();
    for k in 0..o.samples {
        let t = Instant::now();
        f(k);
        lat.push(t.elapsed().as_nanos() as u64);
        if k % 64 == 63 && start.elapsed() > limit {
            break;
        }
    }
    lat.sort_unstable();
    let stop = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        for t in 0..o.threads.max(1) {
            let (stop, count) = (&stop, &count);
            sc.spawn(move || {
                let mut k = t * 7919;
                let mut local = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..16 {
                        f(k);
                        k += 1;
                    }
                    local += 16;
                }
                count.fetch_add(local, Ordering::Relaxed);
            });
        }
        std::thread::sleep(limit);
        stop.store(true, Ordering::Relaxed);
    });
    let rate = count.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len(),
        rate,
    )
}

/// Runs the load test; `progress` receives each row as it is measured.
pub fn run(o: &LoadOptions, mut progress: impl FnMut(&Row)) -> Result<Report, crate::PolicyError> {
    let load_start = load_average();
    let mut rows = Vec::new();
    let pool = workload::request_pool(o.pool.max(1), true);
    for &n in &o.sizes {
        let srcs = workload::sources(n);
        let cold = PolicyEngine::from_sources(
            srcs.clone(),
            EngineOptions::enforcing().with_decision_cache(0),
        )?;
        let warm = PolicyEngine::from_sources(srcs.clone(), EngineOptions::enforcing())?;
        let total = cold.snapshot().policy_count();
        let mut whole = PolicySet::new();
        for s in &srcs {
            let ps = PolicySet::from_str(&s.text)
                .map_err(|e| crate::PolicyError::Schema(e.to_string()))?;
            whole
                .merge(&ps, true)
                .map_err(|e| crate::PolicyError::Schema(e.to_string()))?;
        }
        let cedar: Vec<(Request, Entities)> = pool
            .iter()
            .map(|r| model::to_cedar(r).map_err(|e| crate::PolicyError::Schema(e.0)))
            .collect::<Result<_, _>>()?;
        let auth = Authorizer::new();
        let bare = |k: usize| {
            let (req, ents) = &cedar[k % cedar.len()];
            black_box(auth.is_authorized(req, &whole, ents));
        };
        let decide = |e: &PolicyEngine, r: &PolicyRequest| {
            black_box(e.decide(r, None));
        };
        let cold_f = |k: usize| decide(&cold, &pool[k % pool.len()]);
        let warm_f = |k: usize| decide(&warm, &pool[k % pool.len()]);
        for r in &pool {
            warm.decide(r, None);
        }
        let before = warm.snapshot().cache_stats().unwrap_or_default();
        let mut bare_rate = 0.0;
        for (path, f) in [
            ("cedar_bare", &bare as &(dyn Fn(usize) + Sync)),
            ("pdp_cold", &cold_f),
            ("pdp_warm", &warm_f),
        ] {
            let (p50, p99, samples, rate) = measure(f, o);
            if path == "cedar_bare" {
                bare_rate = rate;
            }
            let hit_ratio = (path == "pdp_warm").then(|| {
                let after = warm.snapshot().cache_stats().unwrap_or_default();
                let (h, m) = (after.hits - before.hits, after.misses - before.misses);
                h as f64 / (h + m).max(1) as f64
            });
            let row = Row {
                path,
                policies: n,
                total_policies: total,
                p50_us: p50,
                p99_us: p99,
                samples,
                per_second: rate,
                vs_bare: if bare_rate > 0.0 {
                    rate / bare_rate
                } else {
                    0.0
                },
                hit_ratio,
            };
            progress(&row);
            rows.push(row);
        }
    }
    Ok(Report {
        load_start,
        load_end: load_average(),
        threads: o.threads.max(1),
        rows,
    })
}
