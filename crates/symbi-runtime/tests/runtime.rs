//! Behaviour of the assembled runtime: lifecycle events of real agents, tasks on shards
//! (including `!Send` futures), preemption, aging, panic isolation, policy violations,
//! timeouts, retries, admission, pressure and graceful shutdown.

use serde_json::{Value, json};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use symbi_config::sections::runtime::{AdmissionPolicy, AllocationStrategy};
use symbi_runtime::errors::{ErrorHandlerConfig, PanicAction};
use symbi_runtime::{
    AgentSpec, Amount, Priority, RetryPolicy, Runtime, RuntimeError, RuntimeOptions, SuspendReason,
    TaskError, TaskOutcome, TaskSpec, Validation,
};
use symbi_types::{AgentId, AgentState, ErrorClass, MemoryEventLog, ResourceBudget};

const CORE: u32 = 1000;

fn budget(cpu: u32) -> ResourceBudget {
    ResourceBudget {
        memory_bytes: 1 << 20,
        cpu_millicores: cpu,
        disk_io_bps: 0,
        network_io_bps: 0,
        wall_time: Duration::from_secs(30),
    }
}

fn capacity(cpu: u64) -> Amount {
    Amount {
        memory_bytes: 1 << 30,
        cpu_millicores: cpu,
        disk_io_bps: u64::MAX,
        network_io_bps: u64::MAX,
    }
}

fn runtime(opts: RuntimeOptions) -> (Runtime, MemoryEventLog) {
    let log = MemoryEventLog::default();
    (
        Runtime::with_options(opts, Arc::new(log.clone())).unwrap(),
        log,
    )
}

fn opts() -> RuntimeOptions {
    RuntimeOptions::default()
        .shards(2)
        .capacity(capacity(2 * CORE as u64))
}

async fn agent(rt: &Runtime, name: &str, prio: Priority, cpu: u32) -> AgentId {
    rt.create_agent(
        AgentSpec::new(name).priority(prio).budget(budget(cpu)),
        Validation::Valid,
    )
    .await
    .unwrap()
}

/// `(from, to, cause)` of the agent's state events, in order.
fn transitions(log: &MemoryEventLog, id: AgentId) -> Vec<(String, String, String)> {
    log.of_type("agent_state")
        .into_iter()
        .filter(|e| e.event.agent == Some(id))
        .map(|e| {
            let d = &e.event.details;
            let s = |v: &Value| v.as_str().unwrap_or("(new)").to_string();
            (s(&d["from"]), s(&d["to"]), s(&d["cause"]))
        })
        .collect()
}

fn t(from: &str, to: &str, cause: &str) -> (String, String, String) {
    (from.into(), to.into(), cause.into())
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn creation_records_events_in_order_and_invalid_configuration_fails() {
    let (rt, log) = runtime(opts());
    let ok = rt
        .create_agent(AgentSpec::new("ok"), Validation::Valid)
        .await
        .unwrap();
    let bad = rt
        .create_agent(
            AgentSpec::new("bad"),
            Validation::Invalid(vec!["agent.symbi:3:7: error: unknown tool `x`".into()]),
        )
        .await
        .unwrap();
    assert_eq!(
        transitions(&log, ok),
        vec![
            t("(new)", "Initializing", "submitted"),
            t("Initializing", "Ready", "configuration_valid")
        ]
    );
    assert_eq!(
        transitions(&log, bad),
        vec![
            t("(new)", "Initializing", "submitted"),
            t("Initializing", "Failed", "configuration_invalid")
        ]
    );
    let st = rt.status(bad).unwrap();
    assert_eq!(st.state, AgentState::Failed);
    assert_eq!(
        st.diagnostics,
        vec!["agent.symbi:3:7: error: unknown tool `x`"]
    );
    // A failed agent takes no tasks; cleanup terminates it.
    let e = rt
        .submit(bad, TaskSpec::default(), |_| async { Ok(Value::Null) })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("is Failed and does not accept tasks"),
        "{e}"
    );
    rt.terminate(bad).await.unwrap();
    assert_eq!(
        transitions(&log, bad).last().unwrap(),
        &t("Failed", "Terminated", "cleanup")
    );
    assert_eq!(rt.find_by_name("ok"), vec![ok]);
    assert!(matches!(
        rt.create_agent(AgentSpec::new(" "), Validation::Valid)
            .await,
        Err(RuntimeError::InvalidSpec(_))
    ));
}

#[tokio::test]
async fn registry_limit_is_a_typed_error() {
    let (rt, _) = runtime(opts().max_agents(2));
    rt.create_agent(AgentSpec::new("a"), Validation::Valid)
        .await
        .unwrap();
    rt.create_agent(AgentSpec::new("b"), Validation::Valid)
        .await
        .unwrap();
    let e = rt
        .create_agent(AgentSpec::new("c"), Validation::Valid)
        .await
        .unwrap_err();
    assert!(matches!(e, RuntimeError::RegistryFull(_)), "{e}");
}

#[tokio::test]
async fn a_task_runs_on_a_shard_and_the_agent_returns_to_ready() {
    let (rt, log) = runtime(opts());
    let id = agent(&rt, "worker", Priority::NORMAL, 100).await;
    // The future holds an Rc across an await: it is !Send, and runs because it is built on
    // the shard thread.
    let out = rt
        .execute(id, TaskSpec::default().trigger("test"), |ctx| async move {
            let shared = Rc::new(41);
            tokio::task::yield_now().await;
            ctx.report_memory(4096);
            Ok(json!({"answer": *shared + 1, "thread": std::thread::current().name().map(str::to_string)}))
        })
        .await
        .unwrap();
    let v = out.value().unwrap();
    assert_eq!(v["answer"], 42);
    assert!(
        v["thread"].as_str().unwrap().starts_with("symbi-shard-"),
        "{v}"
    );
    assert_eq!(
        transitions(&log, id),
        vec![
            t("(new)", "Initializing", "submitted"),
            t("Initializing", "Ready", "configuration_valid"),
            t("Ready", "Running", "task_assigned"),
            t("Running", "Ready", "task_complete"),
        ]
    );
    assert_eq!(log.of_type("execution_started").len(), 1);
    assert_eq!(log.of_type("execution_completed").len(), 1);
    let st = rt.status(id).unwrap();
    assert_eq!(
        (st.state, st.executions, st.resource_usage.active_tasks),
        (AgentState::Ready, 1, 0)
    );
    assert_eq!(
        rt.resources().allocated,
        Amount::ZERO,
        "resources returned exactly"
    );
}

#[tokio::test]
async fn tasks_of_one_agent_run_one_at_a_time_in_order() {
    let (rt, _) = runtime(opts());
    let id = agent(&rt, "serial", Priority::NORMAL, 10).await;
    let running = Arc::new(AtomicU32::new(0));
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for i in 0..20 {
        let (running, order) = (running.clone(), order.clone());
        handles.push(
            rt.submit(id, TaskSpec::default(), move |_| async move {
                assert_eq!(
                    running.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two tasks of one agent at once"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
                order.lock().push(i);
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(Value::Null)
            })
            .unwrap(),
        );
    }
    assert!(rt.status(id).unwrap().resource_usage.active_tasks > 1);
    for h in handles {
        assert!(matches!(h.wait().await, TaskOutcome::Completed { .. }));
    }
    assert_eq!(*order.lock(), (0..20).collect::<Vec<_>>());
}

/// A LOW task holding the only core is suspended (frozen: not polled) when a HIGH task
/// arrives, and resumes — Running → Suspended(preempted) → Running(resources_available) —
/// once the HIGH task is done.
#[tokio::test]
async fn preemption_suspends_lower_priority_work_and_resumes_it() {
    let (rt, log) = runtime(
        opts()
            .shards(1)
            .capacity(capacity(CORE as u64))
            .strategy(AllocationStrategy::Priority),
    );
    let lo = agent(&rt, "low", Priority::LOW, CORE).await;
    let hi = agent(&rt, "high", Priority::HIGH, CORE).await;
    let ticks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (t2, s2) = (ticks.clone(), stop.clone());
    let low = rt
        .submit(lo, TaskSpec::default(), move |_| async move {
            while !s2.load(Ordering::SeqCst) {
                t2.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(json!("low done"))
        })
        .unwrap();
    wait_for("low to run", || ticks.load(Ordering::SeqCst) > 3).await;
    let release = Arc::new(tokio::sync::Notify::new());
    let r2 = release.clone();
    let high = rt
        .submit(hi, TaskSpec::default(), move |_| async move {
            r2.notified().await;
            Ok(json!("high done"))
        })
        .unwrap();
    wait_for("low to be suspended", || {
        rt.status(lo).unwrap().state == AgentState::Suspended
    })
    .await;
    wait_for("high to run", || {
        rt.status(hi).unwrap().state == AgentState::Running
    })
    .await;
    // Frozen: the low task is not polled while suspended.
    let frozen_at = ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        ticks.load(Ordering::SeqCst) <= frozen_at + 1,
        "a suspended task kept running"
    );
    assert_eq!(rt.scheduler_counts().suspended, 1);
    assert!(rt.resources().allocated.fits_in(&rt.resources().capacity));
    // An operator's resume of a preempted agent changes nothing: it resumes when it fits.
    rt.resume(lo).await.unwrap();
    assert_eq!(rt.status(lo).unwrap().state, AgentState::Suspended);
    release.notify_one();
    assert_eq!(high.wait().await.value(), Some(&json!("high done")));
    wait_for("low to resume", || {
        ticks.load(Ordering::SeqCst) > frozen_at + 3
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    assert_eq!(low.wait().await.value(), Some(&json!("low done")));
    assert_eq!(
        transitions(&log, lo)[2..],
        [
            t("Ready", "Running", "task_assigned"),
            t("Running", "Suspended", "preempted"),
            t("Suspended", "Running", "resources_available"),
            t("Running", "Ready", "task_complete"),
        ]
    );
    let m = rt.metrics();
    assert_eq!((m.preemptions, m.resumptions), (1, 1));
    assert_eq!(rt.resources().allocated, Amount::ZERO);
}

#[tokio::test]
async fn first_fit_does_not_preempt() {
    let (rt, _) = runtime(
        opts()
            .shards(1)
            .capacity(capacity(CORE as u64))
            .strategy(AllocationStrategy::FirstFit),
    );
    let lo = agent(&rt, "low", Priority::LOW, CORE).await;
    let hi = agent(&rt, "high", Priority::HIGH, CORE).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let low = rt
        .submit(lo, TaskSpec::default(), move |_| async move {
            g.notified().await;
            Ok(Value::Null)
        })
        .unwrap();
    wait_for("low to run", || {
        rt.status(lo).unwrap().state == AgentState::Running
    })
    .await;
    let high = rt
        .submit(hi, TaskSpec::default(), |_| async { Ok(Value::Null) })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(rt.status(lo).unwrap().state, AgentState::Running);
    assert_eq!(rt.scheduler_counts().queued, 1);
    gate.notify_one();
    low.wait().await;
    high.wait().await;
    assert_eq!(rt.metrics().preemptions, 0);
}

type Make = Box<
    dyn FnOnce(
            symbi_runtime::TaskContext,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = symbi_runtime::TaskResult>>>
        + Send,
>;

/// A HIGH task that, while it runs, submits its own successor (which waits behind it and
/// enters the queue the moment it ends): at every decision there is a fresh HIGH task
/// queued, until `until`.
fn chained_high(rt: Runtime, id: AgentId, until: Instant) -> Make {
    Box::new(move |_| {
        Box::pin(async move {
            if Instant::now() < until {
                rt.submit(id, TaskSpec::default(), chained_high(rt.clone(), id, until))
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(Value::Null)
        })
    })
}

/// With one slot and a steady stream of fresh HIGH tasks, a LOW task still runs once it
/// has waited long enough (aging); with aging effectively off it waits for the stream to
/// end. The second half shows the first half can fail.
#[tokio::test]
async fn aging_prevents_starvation_of_low_priority_work() {
    async fn scenario(aging_step: Duration) -> (bool, Duration) {
        let (rt, _) = runtime(
            opts()
                .shards(1)
                .capacity(capacity(CORE as u64))
                .strategy(AllocationStrategy::FirstFit)
                .aging_step(aging_step),
        );
        let start = Instant::now();
        let until = start + Duration::from_millis(400);
        let high = agent(&rt, "high", Priority::HIGH, CORE).await;
        let lo = agent(&rt, "low", Priority::LOW, CORE).await;
        // The stream starts first and holds the slot; LOW queues behind it.
        rt.submit(
            high,
            TaskSpec::default(),
            chained_high(rt.clone(), high, until),
        )
        .unwrap();
        wait_for("the stream to run", || {
            rt.status(high).unwrap().state == AgentState::Running
        })
        .await;
        let low = rt
            .submit(lo, TaskSpec::default(), |_| async { Ok(Value::Null) })
            .unwrap();
        low.wait().await;
        let finished = start.elapsed();
        // Let the stream end before the runtime is dropped.
        wait_for("the stream to end", || {
            Instant::now() > until && rt.scheduler_counts().running == 0
        })
        .await;
        (finished < Duration::from_millis(380), finished)
    }
    let (aged, waited) = scenario(Duration::from_millis(1)).await;
    assert!(
        aged,
        "LOW starved despite aging (finished after {waited:?})"
    );
    let (starved_ran, finished) = scenario(Duration::from_secs(3600)).await;
    assert!(
        !starved_ran,
        "without aging the stream of HIGH tasks should have kept LOW waiting (finished after {finished:?})"
    );
}

/// One agent's task panics among 200 busy agents: the panicking execution fails with class
/// `panic`, that agent goes Running → Failed (`task_panicked`, `reason: panic`), its queued
/// work is cancelled and it accepts no more; every other agent completes; the runtime keeps
/// accepting work; cleanup takes the failed agent Failed → Terminated.
#[tokio::test]
async fn a_panicking_task_is_isolated() {
    let (rt, log) = runtime(opts().capacity(capacity(1_000_000)));
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(agent(&rt, &format!("a{i}"), Priority::NORMAL, 10).await);
    }
    let bad = ids[17];
    let mut handles = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let h = rt
            .submit(*id, TaskSpec::default(), move |_| async move {
                tokio::task::yield_now().await;
                if i == 17 {
                    panic!("bug in agent {i}");
                }
                Ok(json!(i))
            })
            .unwrap();
        handles.push(h);
    }
    // Queued behind the panicking task: cancelled when the agent is taken out of service.
    let queued = rt
        .submit(bad, TaskSpec::default(), |_| async { Ok(Value::Null) })
        .unwrap();
    // A panic while *building* the future is isolated the same way.
    let other = ids[18];
    let build_panic = rt
        .submit(ids[19], TaskSpec::default(), |_| -> std::future::Ready<_> {
            panic!("factory bug")
        })
        .unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        match h.wait().await {
            TaskOutcome::Completed { value } => assert_eq!(value, json!(i)),
            TaskOutcome::Failed { error } => {
                assert_eq!(i, 17);
                assert_eq!(
                    (error.class, error.kind.as_str(), error.message.as_str()),
                    (ErrorClass::Panic, "Panic", "bug in agent 17")
                );
            }
            o => panic!("unexpected {o:?}"),
        }
    }
    assert!(matches!(queued.wait().await, TaskOutcome::Cancelled { .. }));
    assert_eq!(
        build_panic.wait().await.error().unwrap().message,
        "factory bug"
    );
    assert_eq!(
        transitions(&log, bad)[2..],
        [
            t("Ready", "Running", "task_assigned"),
            t("Running", "Failed", "task_panicked")
        ]
    );
    assert_eq!(rt.status(bad).unwrap().state, AgentState::Failed);
    assert!(
        rt.submit(bad, TaskSpec::default(), |_| async { Ok(Value::Null) })
            .is_err(),
        "a Failed agent takes no work"
    );
    let last = log
        .of_type("agent_state")
        .into_iter()
        .rfind(|e| e.event.agent == Some(bad))
        .unwrap();
    assert_eq!(last.event.details["reason"], "panic");
    assert_eq!(
        rt.status(bad).unwrap().last_failure.unwrap().class,
        ErrorClass::Panic
    );
    // Everyone else carries on, and so does the runtime.
    assert_eq!(rt.counts().ready, 198);
    let again = rt
        .execute(other, TaskSpec::default(), |_| async {
            Ok(json!("still here"))
        })
        .await
        .unwrap();
    assert_eq!(again.value(), Some(&json!("still here")));
    assert_eq!(rt.metrics().panics, 2);
    assert_eq!(rt.resources().allocated, Amount::ZERO);
    // Cleanup: Failed → Terminated.
    rt.terminate(bad).await.unwrap();
    assert_eq!(
        transitions(&log, bad).last().unwrap(),
        &t("Failed", "Terminated", "cleanup")
    );
}

#[tokio::test]
async fn panic_action_keep_ready_leaves_the_agent_in_service() {
    let opts = opts().errors(ErrorHandlerConfig {
        on_panic: PanicAction::KeepReady,
        ..Default::default()
    });
    let (rt, _) = runtime(opts);
    let id = agent(&rt, "p", Priority::NORMAL, 10).await;
    let o = rt
        .execute(id, TaskSpec::default(), |_| async { panic!("once") })
        .await
        .unwrap();
    assert_eq!(o.error().unwrap().class, ErrorClass::Panic);
    assert_eq!(rt.status(id).unwrap().state, AgentState::Ready);
    assert!(
        rt.execute(id, TaskSpec::default(), |_| async { Ok(Value::Null) })
            .await
            .unwrap()
            .value()
            .is_some()
    );
}

/// GRAMMAR §4.9: an uncaught denial suspends the agent until an operator clears it; work
/// submitted meanwhile waits and runs after the clearance.
#[tokio::test]
async fn a_policy_violation_suspends_the_agent_until_cleared() {
    let (rt, log) = runtime(opts());
    let id = agent(&rt, "violator", Priority::NORMAL, 10).await;
    let o = rt
        .execute(id, TaskSpec::default(), |_| async {
            Err(TaskError::new(
                ErrorClass::Policy,
                "PolicyDenied",
                "network access denied",
            ))
        })
        .await
        .unwrap();
    assert_eq!(o.error().unwrap().kind, "PolicyDenied");
    assert_eq!(rt.status(id).unwrap().state, AgentState::Suspended);
    let waiting = rt
        .submit(id, TaskSpec::default(), |_| async { Ok(json!("after")) })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        rt.status(id).unwrap().state,
        AgentState::Suspended,
        "waits for the operator"
    );
    rt.resume(id).await.unwrap();
    assert_eq!(waiting.wait().await.value(), Some(&json!("after")));
    assert_eq!(
        transitions(&log, id)[2..],
        [
            t("Ready", "Running", "task_assigned"),
            t("Running", "Suspended", "policy_violation"),
            t("Suspended", "Running", "policy_cleared"),
            t("Running", "Ready", "task_complete"),
            t("Ready", "Running", "task_assigned"),
            t("Running", "Ready", "task_complete"),
        ]
    );
}

#[tokio::test]
async fn operator_suspend_freezes_and_resume_continues() {
    let (rt, log) = runtime(opts());
    let id = agent(&rt, "s", Priority::NORMAL, 100).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let h = rt
        .submit(id, TaskSpec::default(), move |_| async move {
            g.notified().await;
            Ok(json!(1))
        })
        .unwrap();
    wait_for("run", || {
        rt.status(id).unwrap().state == AgentState::Running
    })
    .await;
    rt.suspend(id, SuspendReason::ResourcePressure)
        .await
        .unwrap();
    assert_eq!(rt.status(id).unwrap().state, AgentState::Suspended);
    assert_eq!(
        rt.resources().allocated.cpu_millicores,
        0,
        "a suspended task returns its CPU"
    );
    assert!(
        rt.suspend(id, SuspendReason::ResourcePressure)
            .await
            .is_err()
    );
    gate.notify_one();
    rt.resume(id).await.unwrap();
    assert_eq!(h.wait().await.value(), Some(&json!(1)));
    assert!(transitions(&log, id).contains(&t("Suspended", "Running", "resources_available")));
    // Ready agents cannot be suspended or resumed: no such edges.
    assert!(
        rt.suspend(id, SuspendReason::PolicyViolation)
            .await
            .is_err()
    );
    assert!(rt.resume(id).await.is_err());
}

#[tokio::test]
async fn the_wall_time_budget_is_enforced() {
    let (rt, _) = runtime(opts());
    let id = agent(&rt, "slow", Priority::NORMAL, 10).await;
    let spec = TaskSpec::default().budget(ResourceBudget {
        wall_time: Duration::from_millis(30),
        ..budget(10)
    });
    let o = rt
        .execute(id, spec, |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Value::Null)
        })
        .await
        .unwrap();
    let e = o.error().unwrap();
    assert_eq!(
        (e.class, e.kind.as_str()),
        (ErrorClass::Resource, "Timeout")
    );
    assert_eq!(rt.status(id).unwrap().state, AgentState::Ready);
}

#[tokio::test]
async fn transient_failures_are_retried_with_backoff() {
    let (rt, _) = runtime(opts());
    let id = agent(&rt, "flaky", Priority::NORMAL, 10).await;
    let attempts = Arc::new(AtomicU32::new(0));
    let a = attempts.clone();
    let spec = TaskSpec::default().retry(RetryPolicy::exponential(
        4,
        Duration::from_millis(1),
        Duration::from_millis(5),
    ));
    let h = rt
        .submit_retrying(id, spec, move |ctx| {
            a.fetch_add(1, Ordering::SeqCst);
            async move {
                if ctx.attempt < 3 {
                    Err(TaskError::new(
                        ErrorClass::Transient,
                        "Unavailable",
                        "try again",
                    ))
                } else {
                    Ok(json!(ctx.attempt))
                }
            }
        })
        .unwrap();
    assert_eq!(h.wait().await.value(), Some(&json!(3)));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(rt.metrics().retries, 2);
    // Permanent errors are not retried.
    let h = rt
        .submit_retrying(
            id,
            TaskSpec::default().retry(RetryPolicy::exponential(4, Duration::ZERO, Duration::ZERO)),
            |_| async {
                Err(TaskError::new(
                    ErrorClass::Permanent,
                    "InputError",
                    "bad input",
                ))
            },
        )
        .unwrap();
    assert_eq!(h.wait().await.error().unwrap().kind, "InputError");
    assert_eq!(rt.metrics().retries, 2);
}

#[tokio::test]
async fn admission_control_refuses_or_queues() {
    let (rt, _) = runtime(
        opts()
            .capacity(capacity(1000))
            .admission(AdmissionPolicy::Reject),
    );
    let a = agent(&rt, "a", Priority::NORMAL, 800).await;
    let b = agent(&rt, "b", Priority::NORMAL, 800).await;
    let huge = agent(&rt, "huge", Priority::NORMAL, 5000).await;
    let e = rt
        .submit(huge, TaskSpec::default(), |_| async { Ok(Value::Null) })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("exceeds the runtime's whole capacity"),
        "{e}"
    );
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let h = rt
        .submit(a, TaskSpec::default(), move |_| async move {
            g.notified().await;
            Ok(Value::Null)
        })
        .unwrap();
    let e = rt
        .submit(b, TaskSpec::default(), |_| async { Ok(Value::Null) })
        .unwrap_err();
    assert!(e.to_string().contains("not enough free capacity"), "{e}");
    assert_eq!(rt.metrics().admissions_rejected, 2);
    gate.notify_one();
    h.wait().await;
}

#[tokio::test]
async fn shrinking_capacity_suspends_the_lowest_priority_work() {
    let (rt, log) = runtime(
        opts()
            .capacity(capacity(2000))
            .strategy(AllocationStrategy::BestFit),
    );
    let lo = agent(&rt, "lo", Priority::LOW, 1000).await;
    let hi = agent(&rt, "hi", Priority::HIGH, 1000).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut hs = Vec::new();
    for id in [lo, hi] {
        let g = gate.clone();
        hs.push(
            rt.submit(id, TaskSpec::default(), move |_| async move {
                g.notified().await;
                Ok(Value::Null)
            })
            .unwrap(),
        );
    }
    wait_for("both running", || rt.counts().running == 2).await;
    assert_eq!(rt.set_capacity(capacity(1000)), 1);
    wait_for("low suspended", || {
        rt.status(lo).unwrap().state == AgentState::Suspended
    })
    .await;
    assert_eq!(rt.status(hi).unwrap().state, AgentState::Running);
    // Both waiters are released; the frozen one only acts once it is resumed.
    gate.notify_waiters();
    hs.remove(1).wait().await;
    hs.remove(0).wait().await;
    assert_eq!(
        transitions(&log, lo)[2..],
        [
            t("Ready", "Running", "task_assigned"),
            t("Running", "Suspended", "resource_pressure"),
            t("Suspended", "Running", "resources_available"),
            t("Running", "Ready", "task_complete"),
        ]
    );
    assert_eq!(rt.metrics().pressure_suspensions, 1);
    assert_eq!(rt.resources().allocated, Amount::ZERO);
}

#[tokio::test]
async fn terminate_and_delete_cancel_the_agents_work() {
    let (rt, log) = runtime(opts());
    let id = agent(&rt, "doomed", Priority::NORMAL, 10).await;
    let running = rt
        .submit(id, TaskSpec::default(), |_| async {
            std::future::pending::<()>().await;
            Ok(Value::Null)
        })
        .unwrap();
    let queued = rt
        .submit(id, TaskSpec::default(), |_| async { Ok(Value::Null) })
        .unwrap();
    wait_for("run", || {
        rt.status(id).unwrap().state == AgentState::Running
    })
    .await;
    rt.terminate(id).await.unwrap();
    assert!(matches!(
        running.wait().await,
        TaskOutcome::Cancelled { .. }
    ));
    assert!(matches!(queued.wait().await, TaskOutcome::Cancelled { .. }));
    assert_eq!(
        transitions(&log, id)[2..],
        [
            t("Ready", "Running", "task_assigned"),
            t("Running", "Ready", "task_complete"),
            t("Ready", "Terminated", "shutdown")
        ]
    );
    assert!(
        rt.submit(id, TaskSpec::default(), |_| async { Ok(Value::Null) })
            .is_err()
    );
    // Terminating twice is an invalid transition, not a silent no-op.
    assert!(matches!(
        rt.terminate(id).await,
        Err(RuntimeError::Schedule(_))
    ));
    rt.delete(id).await.unwrap();
    assert!(rt.status(id).is_none());
    assert!(rt.find_by_name("doomed").is_empty());
    assert!(matches!(
        rt.delete(id).await,
        Err(RuntimeError::AgentNotFound(_))
    ));
    assert_eq!(rt.scheduler_counts(), Default::default());
}

#[tokio::test]
async fn shutdown_drains_within_the_grace_period_then_cancels() {
    let (rt, log) = runtime(opts());
    let quick = agent(&rt, "quick", Priority::NORMAL, 10).await;
    let stuck = agent(&rt, "stuck", Priority::NORMAL, 10).await;
    let idle = agent(&rt, "idle", Priority::NORMAL, 10).await;
    let q = rt
        .submit(quick, TaskSpec::default(), |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(json!("finished"))
        })
        .unwrap();
    let s = rt
        .submit(stuck, TaskSpec::default(), |_| async {
            std::future::pending::<()>().await;
            Ok(Value::Null)
        })
        .unwrap();
    wait_for("both running", || rt.counts().running == 2).await;
    let report = rt.shutdown(Duration::from_millis(200)).await;
    assert!(!report.drained);
    assert_eq!(report.running_cancelled, 1);
    assert_eq!(report.agents_terminated, 3);
    assert_eq!(q.wait().await.value(), Some(&json!("finished")));
    assert!(matches!(s.wait().await, TaskOutcome::Cancelled { .. }));
    for id in [quick, stuck, idle] {
        assert_eq!(rt.status(id).unwrap().state, AgentState::Terminated);
        assert_eq!(
            transitions(&log, id).last().unwrap(),
            &t("Ready", "Terminated", "shutdown")
        );
    }
    assert!(matches!(
        rt.submit(idle, TaskSpec::default(), |_| async { Ok(Value::Null) }),
        Err(RuntimeError::ShuttingDown)
    ));
    assert!(matches!(
        rt.create_agent(AgentSpec::new("late"), Validation::Valid)
            .await,
        Err(RuntimeError::ShuttingDown)
    ));
}

#[tokio::test]
async fn many_agents_many_tasks_balance_over_shards() {
    let (rt, _) = runtime(opts().shards(4).capacity(capacity(1_000_000)));
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push(agent(&rt, &format!("n{i}"), Priority(i as u8 % 100), 10).await);
    }
    let threads = Arc::new(parking_lot::Mutex::new(std::collections::HashSet::new()));
    let mut hs = Vec::new();
    for id in &ids {
        let th = threads.clone();
        hs.push(
            rt.submit(*id, TaskSpec::default(), move |_| async move {
                th.lock()
                    .insert(std::thread::current().name().unwrap().to_string());
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok(Value::Null)
            })
            .unwrap(),
        );
    }
    for h in hs {
        assert!(h.wait().await.value().is_some());
    }
    assert_eq!(threads.lock().len(), 4, "work spread over every shard");
    let m = rt.metrics();
    assert_eq!(m.tasks_completed, 500);
    assert_eq!(m.scheduling_decision.count, 500);
    assert_eq!(rt.counts().ready, 500);
}
