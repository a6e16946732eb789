//! Criterion benchmarks of the runtime core, each with a baseline in the same run:
//!
//! * `scheduling_decision_10000_queued/symbi_core` — one scheduling cycle with 10,000 tasks
//!   queued (finish the running task, decide — which dispatches the head — and submit a
//!   new task so the queue stays at 10,000; priorities vary, strategy first-fit so that
//!   every cycle dispatches exactly one task), against `baseline_binary_heap`: a pop and a
//!   push on a `std` binary heap of 10,000 entries (the least any priority queue must do).
//! * `agent_creation/symbi_create_agent` — `Runtime::create_agent` with the in-memory event
//!   log (registration plus two recorded lifecycle events), against
//!   `baseline_tokio_spawn_parked`: spawning a tokio task that parks on a channel.
//!
//! Run: `cargo bench -p symbi-runtime --bench scheduler`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use symbi_config::sections::runtime::{AdmissionPolicy, AllocationStrategy};
use symbi_runtime::resources::{Amount, ResourcePool};
use symbi_runtime::scheduler::core::{Action, CoreConfig, QueuedTask, SchedCore};
use symbi_runtime::scheduler::task::{TaskControl, TaskId};
use symbi_runtime::{AgentSpec, Priority, Runtime, RuntimeOptions, Validation};
use symbi_types::{AgentId, MemoryEventLog, ResourceBudget};

const QUEUED: usize = 10_000;

fn task(id: u64, prio: u8, now: Instant) -> QueuedTask<()> {
    QueuedTask {
        id: TaskId(id),
        agent: AgentId::new(),
        priority: Priority(prio),
        budget: ResourceBudget {
            cpu_millicores: 1000,
            memory_bytes: 1 << 20,
            ..ResourceBudget::default()
        },
        submitted: now,
        control: Arc::new(TaskControl::default()),
        payload: (),
    }
}

fn decision(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduling_decision_10000_queued");
    g.bench_function("symbi_core", |b| {
        let pool = ResourcePool::new(Amount {
            memory_bytes: 1 << 34,
            cpu_millicores: 1000,
            disk_io_bps: u64::MAX,
            network_io_bps: u64::MAX,
        });
        let mut core: SchedCore<()> = SchedCore::new(
            CoreConfig {
                shards: 8,
                strategy: AllocationStrategy::FirstFit,
                admission: AdmissionPolicy::Queue,
                aging_step: Duration::from_millis(100),
            },
            pool,
        );
        let now = Instant::now();
        let mut next = 0u64;
        let mut out = Vec::new();
        let mut running = None;
        for _ in 0..=QUEUED {
            next += 1;
            core.submit(task(next, (next * 7919 % 101) as u8, now), now)
                .ok()
                .expect("queued");
            core.decide(now, &mut out, |_| {});
            for a in out.drain(..) {
                if let Action::Dispatch { task, .. } = a {
                    running = Some((task.agent, task.id));
                }
            }
        }
        assert_eq!(core.counts().queued, QUEUED);
        b.iter(|| {
            let (agent, id) = running.take().expect("one running");
            let now = Instant::now();
            core.finish(agent, id, false, now);
            core.decide(now, &mut out, |_| {});
            for a in out.drain(..) {
                if let Action::Dispatch { task, .. } = a {
                    running = Some((task.agent, task.id));
                }
            }
            next += 1;
            core.submit(task(next, (next * 7919 % 101) as u8, now), now)
                .ok()
                .expect("queued");
        });
        assert_eq!(core.counts().queued, QUEUED);
    });
    g.bench_function("baseline_binary_heap", |b| {
        let mut heap: BinaryHeap<(i64, u64)> = (0..QUEUED as u64)
            .map(|i| ((i * 7919 % 101) as i64, i))
            .collect();
        let mut next = QUEUED as u64;
        b.iter(|| {
            let top = heap.pop().expect("non-empty");
            next += 1;
            heap.push(((next * 7919 % 101) as i64, next));
            top
        });
    });
    g.finish();
}

fn creation(c: &mut Criterion) {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("agent_creation");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("symbi_create_agent", |b| {
        let rt = Runtime::with_options(
            RuntimeOptions::default().max_agents(10_000_000),
            Arc::new(MemoryEventLog::default()),
        )
        .unwrap();
        b.to_async(&tokio_rt).iter(|| {
            let rt = rt.clone();
            async move {
                rt.create_agent(AgentSpec::new("bench"), Validation::Valid)
                    .await
                    .unwrap()
            }
        });
    });
    g.bench_function("baseline_tokio_spawn_parked", |b| {
        let parked = parking_lot::Mutex::new(Vec::new());
        b.to_async(&tokio_rt).iter(|| {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = rx.await;
            });
            parked.lock().push(tx);
            async {}
        });
    });
    g.finish();
}

criterion_group!(benches, decision, creation);
criterion_main!(benches);
