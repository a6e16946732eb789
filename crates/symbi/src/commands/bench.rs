//! `symbi bench …`: whole-system load tests. Each prints medians, p99, throughput and the
//! ratio to a baseline measured in the same run.
//!
//! `agents` and `scheduler` compare the runtime with the same workload as bare
//! `tokio::spawn` tasks. The baseline runs in a child process (`--side tokio`) so that
//! neither side's resident memory is hidden by the other's freed heap.

mod api;
mod context;
mod gateway;
mod policy;

use super::Globals;
use crate::cli::Format;
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_runtime::{AgentSpec, Amount, Runtime, RuntimeOptions, TaskSpec, Validation};
use symbi_types::event::NullSink;
use symbi_types::{AgentId, EventSink, MemoryEventLog, ResourceBudget};

/// `symbi bench …`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Create many agents and measure creation latency, memory per agent, scheduling
    /// decisions with 10,000 queued tasks and idle CPU, against bare tokio tasks.
    Agents(AgentsArgs),
    /// Scheduling decision latency with many queued tasks, against tokio's own spawn.
    Scheduler(SchedulerArgs),
    /// Durable audit appends (group commit vs one fsync per event), verification, proofs.
    Audit(super::audit::BenchArgs),
    /// Policy decisions with 10/100/1,000 policies: p50/p99 and decisions/s, bare Cedar
    /// baseline, decision cache off (cold) and on (warm).
    Policy(policy::PolicyArgs),
    /// Sandboxed tool latency per tier against a bare `docker run`, concurrent throughput,
    /// memory per running sandbox.
    Sandbox(SandboxBenchArgs),
    /// Bus throughput and latency per backend, security mode, payload and fan-out, against
    /// a bare tokio mpsc baseline and the raw crypto cost.
    Bus(BusArgs),
    /// Vector search on random vectors (Qdrant Edge): p50/p99 and recall@10 against brute
    /// force, quantized storage size, build time and memory, update visibility.
    Vectors(context::VectorsArgs),
    /// RAG pipeline end to end without model time, knowledge search, context retrieval.
    Rag(context::RagArgs),
    /// MCP tool-call round trips over stdio and HTTP against the Python `mcp` client on the
    /// same server, and SchemaPin verification latency with a pinned key.
    Mcp(McpBenchArgs),
    /// HTTP API requests/s and p50/p99 (health, status, execute) on loopback against a bare
    /// axum server in the same run.
    Api(api::ApiBenchArgs),
    /// The cost of one DSL action through gateway, policy and (durable) audit, against
    /// the same loop without the action.
    Gateway(gateway::GatewayArgs),
}

/// Which event sink the runtime publishes to during the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// The in-memory event log: every event is kept (counts in the memory figure).
    Memory,
    /// Events are accepted and discarded (isolates the runtime's own cost).
    Discard,
}

/// Which side of the comparison to run (the baseline runs in a child process).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Side {
    /// Both: the runtime here, the baseline in a child process.
    Both,
    /// The runtime only.
    Symbi,
    /// Bare tokio tasks only.
    Tokio,
}

/// `symbi bench agents`.
#[derive(Args, Debug)]
pub struct AgentsArgs {
    /// Number of agents.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Tasks kept queued while scheduling decisions are measured.
    #[arg(long, default_value_t = 10_000)]
    pub queued: usize,
    /// Seconds over which idle CPU is measured.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
    /// Event sink of the runtime.
    #[arg(long, value_enum, default_value_t = SinkKind::Memory)]
    pub sink: SinkKind,
    /// Which side to run.
    #[arg(long, value_enum, default_value_t = Side::Both)]
    pub side: Side,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `symbi bench scheduler`.
#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Tasks queued when measuring starts.
    #[arg(long, default_value_t = 10_000)]
    pub queued: usize,
    /// Event sink of the runtime.
    #[arg(long, value_enum, default_value_t = SinkKind::Memory)]
    pub sink: SinkKind,
    /// Which side to run.
    #[arg(long, value_enum, default_value_t = Side::Both)]
    pub side: Side,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Lat {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Maximum.
    pub max_ns: u64,
}

impl Lat {
    fn of(h: &Histogram<u64>) -> Lat {
        Lat {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
        }
    }
}

/// One side's agent figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentFigures {
    /// Agents (or tasks) created.
    pub created: usize,
    /// Agents Ready at the end of creation (tasks alive, for the baseline).
    pub ready: usize,
    /// RSS growth over creation.
    pub rss_delta_bytes: u64,
    /// RSS growth per agent.
    pub bytes_per_agent: u64,
    /// Creation latency.
    pub creation: Lat,
    /// Creations per second.
    pub creations_per_sec: f64,
    /// Scheduling decisions with `queued` tasks waiting.
    pub scheduling: SchedFigures,
    /// Process CPU while every agent is idle, percent of one core.
    pub idle_cpu_percent: f64,
    /// Measurement window of the idle CPU.
    pub idle_secs: u64,
}

/// Scheduling figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SchedFigures {
    /// Tasks queued when measurement started.
    pub queued_at_start: usize,
    /// Lowest queue length during measurement.
    pub min_queued: usize,
    /// Decision latency.
    pub decision: Lat,
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn cpu_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

async fn idle_cpu_percent(secs: u64) -> f64 {
    let t0 = cpu_ticks();
    let w0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let ticks = cpu_ticks() - t0;
    ticks as f64 / clock_ticks_per_sec() as f64 / w0.elapsed().as_secs_f64() * 100.0
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn sink_of(kind: SinkKind) -> Arc<dyn EventSink> {
    match kind {
        SinkKind::Memory => Arc::new(MemoryEventLog::default()),
        SinkKind::Discard => Arc::new(NullSink),
    }
}

fn one_core_budget() -> ResourceBudget {
    // Every benchmark task asks for a whole core of a one-core capacity: exactly one runs
    // at a time and everything else queues.
    ResourceBudget {
        cpu_millicores: 1000,
        memory_bytes: 1 << 20,
        ..ResourceBudget::default()
    }
}

/// Measures scheduling decisions: `3 × queued` tasks (one per agent) queue behind a
/// one-task capacity. Task number `queued` holds the only slot until the decisions so far
/// have been read, so every measured decision — the first `queued` or so — is made with at
/// least about `2 × queued` tasks waiting, however late this observer gets the CPU;
/// `min_queued` is the queue length at that reading.
async fn symbi_scheduling(
    rt: &Runtime,
    agents: &[AgentId],
    queued: usize,
) -> anyhow::Result<SchedFigures> {
    let cap = rt.resources().capacity;
    rt.set_capacity(Amount {
        cpu_millicores: 1000,
        ..cap
    });
    let total = (3 * queued).min(agents.len());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let g = gate.clone();
    // The first task holds the slot until everything is queued.
    let first = rt.submit(
        agents[0],
        TaskSpec::default().budget(one_core_budget()),
        move |_| async move {
            let _ = g.acquire().await;
            Ok(Value::Null)
        },
    )?;
    let hold_at = queued.clamp(1, total.saturating_sub(1).max(1));
    let held = Arc::new(tokio::sync::Semaphore::new(0));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let mut handles = Vec::with_capacity(total);
    for (i, a) in agents[1..total].iter().enumerate() {
        let spec = TaskSpec::default()
            .budget(one_core_budget())
            .record_execution(false);
        let (held, release) = (held.clone(), release.clone());
        handles.push(rt.submit(*a, spec, move |_| async move {
            if i + 1 == hold_at {
                held.add_permits(1);
                let _ = release.acquire().await;
            }
            Ok(Value::Null)
        })?);
    }
    let queued_at_start = rt.scheduler_counts().queued;
    rt.metrics_handle().scheduling_decision.reset();
    gate.add_permits(1);
    let measured = if handles.len() >= hold_at {
        let _ = held.acquire().await;
        let reading = (
            rt.metrics_handle().scheduling_decision.summary(),
            rt.scheduler_counts().queued,
        );
        release.add_permits(1);
        Some(reading)
    } else {
        None
    };
    for h in handles {
        h.wait().await;
    }
    first.wait().await;
    let (s, min_queued) = measured.unwrap_or_else(|| {
        (
            rt.metrics_handle().scheduling_decision.summary(),
            rt.scheduler_counts().queued,
        )
    });
    rt.set_capacity(cap);
    Ok(SchedFigures {
        queued_at_start,
        min_queued,
        decision: Lat {
            count: s.count,
            p50_ns: s.p50_ns,
            p99_ns: s.p99_ns,
            max_ns: s.max_ns,
        },
    })
}

async fn symbi_side(
    count: usize,
    queued: usize,
    idle_secs: u64,
    sink: SinkKind,
    g: &Globals,
) -> anyhow::Result<AgentFigures> {
    let loaded = g.load(None)?;
    let opts = RuntimeOptions::from_config(&loaded.config).max_agents(count.max(3 * queued) + 1);
    let rt = Runtime::with_options(opts, sink_of(sink))?;
    let rss0 = rss_bytes();
    let mut h = hist();
    let mut ids = Vec::with_capacity(count);
    let t0 = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        let id = rt
            .create_agent(AgentSpec::new(format!("agent-{i}")), Validation::Valid)
            .await?;
        h.saturating_record(t.elapsed().as_nanos() as u64);
        ids.push(id);
    }
    let elapsed = t0.elapsed();
    let rss1 = rss_bytes();
    let ready = rt.counts().ready;
    let scheduling = symbi_scheduling(&rt, &ids, queued).await?;
    // Idle CPU is measured over agents that never ran a task, as the goal states it.
    let idle_cpu_percent = idle_cpu_percent(idle_secs).await;
    rt.shutdown(Duration::from_secs(5)).await;
    let delta = rss1.saturating_sub(rss0);
    Ok(AgentFigures {
        created: ids.len(),
        ready,
        rss_delta_bytes: delta,
        bytes_per_agent: delta / count.max(1) as u64,
        creation: Lat::of(&h),
        creations_per_sec: count as f64 / elapsed.as_secs_f64(),
        scheduling,
        idle_cpu_percent,
        idle_secs,
    })
}

/// The baseline: each "agent" is a bare tokio task parked on a channel; a scheduling
/// decision is a `tokio::spawn` onto a run queue that already holds `queued` tasks.
async fn tokio_side(count: usize, queued: usize, idle_secs: u64) -> anyhow::Result<AgentFigures> {
    let rss0 = rss_bytes();
    let mut h = hist();
    let mut parked = Vec::with_capacity(count);
    let mut joins = Vec::with_capacity(count);
    let t0 = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        joins.push(tokio::spawn(async move {
            let _ = rx.await;
        }));
        h.saturating_record(t.elapsed().as_nanos() as u64);
        parked.push(tx);
    }
    let elapsed = t0.elapsed();
    tokio::task::yield_now().await;
    let rss1 = rss_bytes();
    let alive = joins.iter().filter(|j| !j.is_finished()).count();
    // Spawn latency with `queued` tasks already in a run queue that cannot drain (a
    // current-thread runtime that is not polled while we spawn).
    let sched = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let mut hs = Vec::with_capacity(2 * queued);
        for _ in 0..queued {
            hs.push(tokio::spawn(async {}));
        }
        let mut d = hist();
        for _ in 0..queued {
            let t = Instant::now();
            hs.push(tokio::spawn(async {}));
            d.saturating_record(t.elapsed().as_nanos() as u64);
        }
        let n = hs.len();
        rt.block_on(async {
            for h in hs {
                let _ = h.await;
            }
        });
        (Lat::of(&d), n)
    })
    .await?;
    let idle_cpu_percent = idle_cpu_percent(idle_secs).await;
    drop(parked);
    for j in joins {
        let _ = j.await;
    }
    let delta = rss1.saturating_sub(rss0);
    Ok(AgentFigures {
        created: count,
        ready: alive,
        rss_delta_bytes: delta,
        bytes_per_agent: delta / count.max(1) as u64,
        creation: Lat::of(&h),
        creations_per_sec: count as f64 / elapsed.as_secs_f64(),
        scheduling: SchedFigures {
            queued_at_start: queued,
            min_queued: queued,
            decision: sched.0,
        },
        idle_cpu_percent,
        idle_secs,
    })
}

fn child_baseline(args: &[String]) -> anyhow::Result<AgentFigures> {
    let exe = std::env::current_exe().context("locating the symbi binary for the baseline run")?;
    let out = std::process::Command::new(exe)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the tokio baseline")?;
    if !out.status.success() {
        bail!("the tokio baseline run failed ({})", out.status);
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("parsing the baseline's JSON")?;
    Ok(serde_json::from_value(v["tokio"].clone())?)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

fn runtime_for_bench() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(g: &Globals, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Agents(a) => agents(g, a),
        BenchCommand::Scheduler(a) => scheduler(g, a),
        BenchCommand::Sandbox(a) => sandbox_bench(g, a),
        BenchCommand::Bus(a) => bench_bus(g, a),
        BenchCommand::Audit(a) => super::audit::bench(g, a),
        BenchCommand::Policy(a) => policy::bench_policy(a),
        BenchCommand::Vectors(a) => context::bench_vectors(g, a),
        BenchCommand::Rag(a) => context::bench_rag(g, a),
        BenchCommand::Mcp(a) => mcp_bench(a),
        BenchCommand::Api(a) => api::bench_api(g, a),
        BenchCommand::Gateway(a) => gateway::bench_gateway(g, a),
    }
}

fn agents(g: &Globals, a: AgentsArgs) -> anyhow::Result<ExitCode> {
    if a.count == 0 {
        return Err(crate::exit::usage("--count must be at least 1"));
    }
    let rt = runtime_for_bench()?;
    let symbi = match a.side {
        Side::Both | Side::Symbi => {
            Some(rt.block_on(symbi_side(a.count, a.queued, a.idle_secs, a.sink, g))?)
        }
        Side::Tokio => None,
    };
    let tokio = match a.side {
        Side::Tokio => Some(rt.block_on(tokio_side(a.count, a.queued, a.idle_secs))?),
        Side::Symbi => None,
        Side::Both => Some(child_baseline(&[
            "bench".into(),
            "agents".into(),
            "--count".into(),
            a.count.to_string(),
            "--queued".into(),
            a.queued.to_string(),
            "--idle-secs".into(),
            a.idle_secs.to_string(),
            "--side".into(),
            "tokio".into(),
            "--format".into(),
            "json".into(),
        ])?),
    };
    let ratios = match (&symbi, &tokio) {
        (Some(s), Some(t)) => serde_json::json!({
            "bytes_per_agent": ratio(s.bytes_per_agent as f64, t.bytes_per_agent as f64),
            "creation_p50": ratio(s.creation.p50_ns as f64, t.creation.p50_ns as f64),
            "creation_p99": ratio(s.creation.p99_ns as f64, t.creation.p99_ns as f64),
            "scheduling_p99": ratio(s.scheduling.decision.p99_ns as f64, t.scheduling.decision.p99_ns as f64),
            "idle_cpu": ratio(s.idle_cpu_percent, t.idle_cpu_percent),
        }),
        _ => Value::Null,
    };
    let goals = symbi.as_ref().map(|s| {
        serde_json::json!({
            "agents_ready": s.ready == a.count,
            "bytes_per_agent_below_64KiB": s.bytes_per_agent < 64 * 1024,
            "creation_p99_below_1ms": s.creation.p99_ns < 1_000_000,
            "scheduling_p99_below_50us": s.scheduling.decision.p99_ns < 50_000,
            "idle_cpu_below_1pct": s.idle_cpu_percent < 1.0,
        })
    });
    let report = serde_json::json!({
        "benchmark": "agents",
        "count": a.count,
        "queued": a.queued,
        "sink": a.sink,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "load_average": load_average(),
        "symbi": symbi,
        "tokio": tokio,
        "ratios": ratios,
        "goals": goals,
    });
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print_agents(&report, symbi.as_ref(), tokio.as_ref()),
    }
    Ok(ExitCode::SUCCESS)
}

fn us(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

fn print_agents(report: &Value, s: Option<&AgentFigures>, t: Option<&AgentFigures>) {
    println!(
        "symbi bench agents — {} agents, load average {}",
        report["count"],
        report["load_average"].as_str().unwrap_or("")
    );
    let row = |label: &str, sv: String, tv: String, r: &Value| {
        let r = r
            .as_f64()
            .map(|r| format!("{r:.2}×"))
            .unwrap_or_else(|| "-".into());
        println!("  {label:<34} {sv:>14} {tv:>14} {r:>8}");
    };
    println!(
        "  {:<34} {:>14} {:>14} {:>8}",
        "", "symbi", "tokio::spawn", "ratio"
    );
    let get = |f: &dyn Fn(&AgentFigures) -> String, x: Option<&AgentFigures>| {
        x.map(f).unwrap_or_else(|| "-".into())
    };
    let r = &report["ratios"];
    row(
        "created / ready",
        get(&|x| format!("{}/{}", x.created, x.ready), s),
        get(&|x| format!("{}/{}", x.created, x.ready), t),
        &Value::Null,
    );
    row(
        "memory per agent (RSS delta)",
        get(&|x| format!("{} B", x.bytes_per_agent), s),
        get(&|x| format!("{} B", x.bytes_per_agent), t),
        &r["bytes_per_agent"],
    );
    row(
        "creation p50",
        get(&|x| us(x.creation.p50_ns), s),
        get(&|x| us(x.creation.p50_ns), t),
        &r["creation_p50"],
    );
    row(
        "creation p99",
        get(&|x| us(x.creation.p99_ns), s),
        get(&|x| us(x.creation.p99_ns), t),
        &r["creation_p99"],
    );
    row(
        "creations per second",
        get(&|x| format!("{:.0}", x.creations_per_sec), s),
        get(&|x| format!("{:.0}", x.creations_per_sec), t),
        &Value::Null,
    );
    row(
        "scheduling decision p50",
        get(&|x| us(x.scheduling.decision.p50_ns), s),
        get(&|x| us(x.scheduling.decision.p50_ns), t),
        &Value::Null,
    );
    row(
        "scheduling decision p99",
        get(&|x| us(x.scheduling.decision.p99_ns), s),
        get(&|x| us(x.scheduling.decision.p99_ns), t),
        &r["scheduling_p99"],
    );
    row(
        "  (queued at least)",
        get(&|x| x.scheduling.min_queued.to_string(), s),
        get(&|x| x.scheduling.min_queued.to_string(), t),
        &Value::Null,
    );
    row(
        "idle CPU (% of one core)",
        get(&|x| format!("{:.3} %", x.idle_cpu_percent), s),
        get(&|x| format!("{:.3} %", x.idle_cpu_percent), t),
        &r["idle_cpu"],
    );
    if let Some(goals) = report["goals"].as_object() {
        let failed: Vec<&String> = goals
            .iter()
            .filter(|(_, v)| v.as_bool() == Some(false))
            .map(|(k, _)| k)
            .collect();
        if failed.is_empty() {
            println!("  goals: all met");
        } else {
            println!(
                "  goals not met: {}",
                failed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
}

fn scheduler(g: &Globals, a: SchedulerArgs) -> anyhow::Result<ExitCode> {
    if a.queued == 0 {
        return Err(crate::exit::usage("--queued must be at least 1"));
    }
    let rt = runtime_for_bench()?;
    let agents_needed = 3 * a.queued;
    let symbi = match a.side {
        Side::Tokio => None,
        _ => Some(rt.block_on(async {
            let loaded = g.load(None)?;
            let opts = RuntimeOptions::from_config(&loaded.config).max_agents(agents_needed + 1);
            let runtime = Runtime::with_options(opts, sink_of(a.sink))?;
            let mut ids = Vec::with_capacity(agents_needed);
            for i in 0..agents_needed {
                ids.push(
                    runtime
                        .create_agent(AgentSpec::new(format!("s{i}")), Validation::Valid)
                        .await?,
                );
            }
            let f = symbi_scheduling(&runtime, &ids, a.queued).await?;
            runtime.shutdown(Duration::from_secs(5)).await;
            anyhow::Ok(f)
        })?),
    };
    let tokio = match a.side {
        Side::Symbi => None,
        _ => Some(rt.block_on(tokio_side(1, a.queued, 0))?.scheduling),
    };
    let report = serde_json::json!({
        "benchmark": "scheduler",
        "queued": a.queued,
        "sink": a.sink,
        "load_average": load_average(),
        "symbi": symbi,
        "tokio": tokio,
        "ratio_p99": match (&symbi, &tokio) {
            (Some(s), Some(t)) => ratio(s.decision.p99_ns as f64, t.decision.p99_ns as f64),
            _ => None,
        },
        "goal_p99_below_50us": symbi.as_ref().map(|s| s.decision.p99_ns < 50_000),
    });
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => {
            println!(
                "symbi bench scheduler — {} queued, load average {}",
                a.queued,
                load_average()
            );
            if let Some(s) = &symbi {
                println!(
                    "  symbi decision      p50 {}  p99 {}  max {}  ({} decisions, ≥ {} queued)",
                    us(s.decision.p50_ns),
                    us(s.decision.p99_ns),
                    us(s.decision.max_ns),
                    s.decision.count,
                    s.min_queued
                );
            }
            if let Some(t) = &tokio {
                println!(
                    "  tokio::spawn        p50 {}  p99 {}  max {}",
                    us(t.decision.p50_ns),
                    us(t.decision.p99_ns),
                    us(t.decision.max_ns)
                );
            }
            if let Some(r) = report["ratio_p99"].as_f64() {
                println!("  p99 ratio symbi / tokio::spawn: {r:.2}×");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `symbi bench sandbox`.
#[derive(Args, Debug)]
pub struct SandboxBenchArgs {
    /// Sequential calls per tier (each side: sandbox and bare `docker run`).
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Concurrent calls for the throughput figure.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// Running sandboxes for the memory figure.
    #[arg(long, default_value_t = 10)]
    pub memory_sandboxes: usize,
    /// Only this tier (Tier1 or Tier2).
    #[arg(long)]
    pub tier: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

fn sandbox_bench(g: &Globals, a: SandboxBenchArgs) -> anyhow::Result<ExitCode> {
    use symbi_sandbox::{Sandbox, SandboxConfig, bench};
    use symbi_types::SandboxTier;
    let loaded = g.load(None)?;
    let mut config = SandboxConfig::from_config(&loaded.config, loaded.data_dir());
    config.default_floor = None; // each tier is demanded explicitly
    config.max_concurrent = config
        .max_concurrent
        .max(a.concurrency)
        .max(a.memory_sandboxes);
    let tiers = match a.tier.as_deref() {
        None => vec![SandboxTier::Tier1, SandboxTier::Tier2],
        Some(t) => vec![t.parse::<SandboxTier>().map_err(crate::exit::usage)?],
    };
    let opts = bench::BenchOptions {
        iterations: a.iterations.max(1),
        concurrency: a.concurrency.max(1),
        memory_sandboxes: a.memory_sandboxes,
        tiers,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let sandbox = std::sync::Arc::new(Sandbox::new(config)?);
    let report = rt
        .block_on(bench::run(sandbox, &opts))
        .map_err(anyhow::Error::msg)?;
    match a.format {
        crate::cli::Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        crate::cli::Format::Text => {
            println!(
                "sandbox load test (load average before {}, after {})",
                report.load_before, report.load_after
            );
            for t in &report.tiers {
                println!(
                    "{}: sandbox p50 {:.1} ms p99 {:.1} ms | bare docker run p50 {:.1} ms p99 {:.1} ms | ratio p50 {:.2} (goal <= 1.10)",
                    t.tier,
                    t.sandbox.p50_ms,
                    t.sandbox.p99_ms,
                    t.bare_docker_run.p50_ms,
                    t.bare_docker_run.p99_ms,
                    t.ratio_p50
                );
                println!(
                    "{}: bare Engine API run p50 {:.1} ms p99 {:.1} ms | hardening+checks ratio p50 {:.2}",
                    t.tier, t.bare_api_run.p50_ms, t.bare_api_run.p99_ms, t.ratio_p50_vs_api
                );
                println!(
                    "{}: {} concurrent calls in {:.0} ms ({:.1} calls/s); per running sandbox: memory cgroup {:.1} MiB, RSS {:.1} MiB",
                    t.tier,
                    a.concurrency,
                    t.concurrent_wall_ms,
                    t.concurrent_calls_per_s,
                    t.memory_per_sandbox_mib,
                    t.rss_per_sandbox_mib
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `symbi bench bus`.
#[derive(Args, Debug)]
pub struct BusArgs {
    /// Messages per 1-subscriber throughput case (1,000-subscriber cases send 1/100).
    #[arg(long, default_value_t = 200_000)]
    pub messages: usize,
    /// Round trips per latency case.
    #[arg(long, default_value_t = 2_000)]
    pub latency_samples: usize,
    /// Payload sizes in bytes (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "64,4096")]
    pub payload: Vec<usize>,
    /// Subscriber counts (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    pub subscribers: Vec<usize>,
    /// A NATS server with JetStream for the NATS cases (e.g. nats://127.0.0.1:4222);
    /// without it they are skipped.
    #[arg(long)]
    pub nats_url: Option<String>,
    /// Only these security modes (comma separated: plaintext, session,
    /// signed_every_message); default all. The baselines always run.
    #[arg(long, value_delimiter = ',')]
    pub modes: Vec<String>,
    /// Only these patterns (comma separated: direct, pubsub); default both.
    #[arg(long, value_delimiter = ',')]
    pub patterns: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

/// `symbi bench bus`: see `symbi_bus::loadtest`.
fn bench_bus(g: &Globals, a: BusArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    let cfg = symbi_bus::loadtest::LoadTestConfig {
        messages: a.messages,
        latency_samples: a.latency_samples,
        payload_sizes: a.payload,
        subscriber_counts: a.subscribers,
        nats_url: a.nats_url,
        crypto_provider: loaded.config.security.crypto_provider.as_str().to_string(),
        modes: a.modes,
        patterns: a.patterns,
        status_capacity: loaded.config.bus.status_capacity,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let json = matches!(a.format, crate::cli::Format::Json);
    let rows = rt.block_on(symbi_bus::loadtest::run(&cfg, |r| {
        if !json {
            eprintln!(
                "done: {} {} {} {}B x{}",
                r.backend, r.mode, r.pattern, r.payload, r.subscribers
            );
        }
    }))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!("{}", symbi_bus::loadtest::table(&rows));
        println!(
            "load average after the run: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `symbi bench mcp`.
#[derive(Args, Debug)]
pub struct McpBenchArgs {
    /// Measured calls per transport and per client.
    #[arg(long, default_value_t = 500)]
    pub iterations: usize,
    /// Unmeasured calls first.
    #[arg(long, default_value_t = 50)]
    pub warmup: usize,
    /// Measured SchemaPin verifications.
    #[arg(long, default_value_t = 2000)]
    pub verify_iterations: usize,
    /// Python with the `mcp` and `schemapin` packages (default: the test venv of
    /// scripts/setup-test-deps.sh).
    #[arg(long, value_name = "PATH")]
    pub python: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

/// `symbi bench mcp`: see `symbi_mcp::bench`.
fn mcp_bench(a: McpBenchArgs) -> anyhow::Result<ExitCode> {
    let python = a.python.unwrap_or_else(|| {
        let deps = std::env::var("SYMBI_TEST_DEPS")
            .unwrap_or_else(|_| "/var/cache/symbi/test-deps".into());
        std::path::Path::new(&deps).join("mcp-venv/bin/python")
    });
    let opts = symbi_mcp::bench::BenchOptions {
        python,
        iterations: a.iterations.max(1),
        warmup: a.warmup,
        verify_iterations: a.verify_iterations.max(1),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let r = rt
        .block_on(symbi_mcp::bench::run(&opts))
        .map_err(anyhow::Error::msg)?;
    match a.format {
        crate::cli::Format::Json => println!("{}", serde_json::to_string_pretty(&r)?),
        crate::cli::Format::Text => {
            println!(
                "mcp load test (load average before {}, after {})",
                r.load_before, r.load_after
            );
            for t in &r.transports {
                println!(
                    "{:<5} tool call: symbi p50 {:.0} µs p99 {:.0} µs | python mcp client p50 {:.0} µs p99 {:.0} µs | ratio p50 {:.2} p99 {:.2}",
                    t.transport,
                    t.symbi.p50_us,
                    t.symbi.p99_us,
                    t.python_client.p50_us,
                    t.python_client.p99_us,
                    t.ratio_p50,
                    t.ratio_p99
                );
            }
            println!(
                "schemapin verify (pinned key): p50 {:.1} µs p99 {:.1} µs (goal < 500 µs) | bare ECDSA p50 {:.1} µs | ratio {:.2} | first use (pin written) {:.0} µs",
                r.verify_pinned.p50_us,
                r.verify_pinned.p99_us,
                r.verify_bare_ecdsa.p50_us,
                r.verify_ratio_p50,
                r.verify_first_use_us
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
