//! Running an agent: the coroutine driver, input binding, budgets per `with` block, and
//! the execution's outcome.
//!
//! The interpreter runs on its own stack inside a [`corosensei`] coroutine. At every
//! action it suspends with an [`ActionRequest`]; the async driver ([`execute`]) awaits the
//! host — bounded by the running block's deadline — and resumes it with the answer. A
//! panic inside the interpreter or the host becomes an `InternalFault` failure of this
//! execution only.
//!
//! **Threads.** The coroutine holds interpreter state on its own stack, so the future of
//! [`execute`] is not `Send`: run it on a current-thread runtime or inside a
//! [`tokio::task::LocalSet`] (`spawn_local`). [`ExecutionPool`] does exactly that on a
//! few worker threads and offers a `Send` future to everyone else.

use super::{ActionReply, BudgetInfo, Effects, Flow, Interp, Raised, StackFrame};
use crate::error::ErrorKind;
use crate::host::{
    ActionHost, ActionRequest, BlockEnv, ExecutionContext, ExecutionInfo, ExecutionLog, LogLevel,
    LogLine, RecordedValue, SourceLocation,
};
use crate::program::{AgentDef, LoadedProgram};
use crate::value::{Str, Value, heap::HeapMeter, heap::MeterGuard};
use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};
use futures::FutureExt;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Native stack of one execution (virtual memory; pages are touched only as needed).
const STACK_SIZE: usize = 8 << 20;

thread_local! {
    static STACK_POOL: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
}

fn take_stack() -> std::io::Result<DefaultStack> {
    if let Some(s) = STACK_POOL.with(|p| p.borrow_mut().pop()) {
        return Ok(s);
    }
    DefaultStack::new(STACK_SIZE)
}

fn give_stack(s: DefaultStack) {
    STACK_POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < 16 {
            p.push(s);
        }
    });
}

/// Runs a policy guard on a pooled interpreter stack (so a deep guard cannot overflow
/// the caller's thread stack); `f` receives the stack's lowest usable address.
pub(crate) fn on_guard_stack<R>(f: impl FnOnce(usize) -> R) -> R {
    match take_stack() {
        Ok(stack) => {
            let limit = stack.limit().get();
            let mut stack = stack;
            let r = corosensei::on_stack(&mut stack, || f(limit));
            give_stack(stack);
            r
        }
        Err(_) => f(0),
    }
}

pub(crate) fn bind_input_pub(
    agent: &AgentDef,
    input: &serde_json::Value,
) -> Result<(Vec<Value>, Vec<String>), String> {
    bind_input(agent, input)
}

/// Budget details of a failure.
pub type FailureBudget = BudgetInfo;

/// A successful execution.
#[derive(Clone, Debug, Serialize)]
pub struct ExecutionOutcome {
    /// The agent's result as JSON (convert to text with
    /// [`json_to_string`](crate::value::json_to_string) for GRAMMAR 4.2 float text).
    pub result: serde_json::Value,
    /// Steps used by all blocks together.
    pub steps: u64,
    /// Wall-clock duration.
    #[serde(with = "ms")]
    pub duration: Duration,
    /// Highest live heap of the execution, bytes (estimate).
    pub heap_peak: u64,
    /// `log`/`print` lines and recorded intrinsic values.
    pub log: ExecutionLog,
    /// Input keys that were not parameters (recorded in the audit event, GRAMMAR 4.7).
    pub ignored_input_keys: Vec<String>,
}

/// A failed execution (GRAMMAR 4.9, 6.3).
#[derive(Clone, Debug, Serialize)]
pub struct ExecutionFailure {
    /// The error kind (`InputError`, `PolicyDenied`, `BudgetExhausted`, …).
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
    /// Structured details (`reported_kind`, budget figures, …).
    pub details: serde_json::Value,
    /// The action, when an action failed.
    pub action: Option<String>,
    /// `file:line:col` where it was raised.
    pub location: Option<String>,
    /// DSL stack, innermost first.
    pub stack: Vec<StackFrame>,
    /// Which budget ran out, for `BudgetExhausted` and `Timeout`.
    pub budget: Option<FailureBudget>,
    /// Steps used.
    pub steps: u64,
    /// Wall-clock duration.
    #[serde(with = "ms")]
    pub duration: Duration,
    /// Log up to the failure.
    pub log: ExecutionLog,
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

mod ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

impl ExecutionFailure {
    /// Whether the failure is a policy violation (an uncaught `PolicyDenied` or
    /// `ApprovalDenied`): the agent moves Running → Suspended (GRAMMAR 4.9).
    pub fn is_policy_violation(&self) -> bool {
        self.kind.is_policy_violation()
    }

    /// The human form of GRAMMAR 6.3: `path:line:col: error: message [Kind]` and the stack.
    pub fn render(&self) -> String {
        let mut out = match &self.location {
            Some(l) => format!("{l}: error: {} [{}]\n", self.message, self.kind),
            None => format!("error: {} [{}]\n", self.message, self.kind),
        };
        for f in &self.stack {
            out.push_str(&format!("    at {} ({})\n", f.function, f.location));
        }
        out
    }
}

impl std::fmt::Display for ExecutionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for ExecutionFailure {}

enum Suspend {
    Action(Box<ActionRequest>, Option<Instant>),
    /// `audit_log(event, details)`: awaited like an action so the event is durable
    /// before the program goes on (fail closed).
    Audit(
        Box<(String, serde_json::Value, SourceLocation)>,
        Option<Instant>,
    ),
}

enum Resume {
    Start,
    Reply(ActionReply),
    Audited(Result<(), String>),
}

struct Shared {
    log: ExecutionLog,
    replay: VecDeque<RecordedValue>,
}

struct CoEffects<'y> {
    yielder: &'y Yielder<Resume, Suspend>,
    host: Arc<dyn ActionHost>,
    info: ExecutionInfo,
    trigger: Value,
    env: Arc<BlockEnv>,
    depth: u32,
    shared: Rc<RefCell<Shared>>,
    rules: Option<Arc<crate::rules::DslRuleSet>>,
}

impl Effects for CoEffects<'_> {
    fn action(&mut self, req: ActionRequest, deadline: Option<Instant>) -> ActionReply {
        match self
            .yielder
            .suspend(Suspend::Action(Box::new(req), deadline))
        {
            Resume::Reply(r) => r,
            Resume::Start | Resume::Audited(_) => ActionReply::Abort(
                ErrorKind::InternalFault,
                "the driver resumed without a reply".into(),
                None,
            ),
        }
    }
    fn log(&mut self, level: LogLevel, message: &str, location: &SourceLocation) {
        self.host.log(&self.info, level, message, location);
        self.shared.borrow_mut().log.lines.push(LogLine {
            level,
            message: message.to_string(),
            location: location.to_string(),
        });
    }
    fn audit(
        &mut self,
        event: &str,
        details: &serde_json::Value,
        location: &SourceLocation,
        deadline: Option<Instant>,
    ) -> Result<(), String> {
        match self.yielder.suspend(Suspend::Audit(
            Box::new((event.to_string(), details.clone(), location.clone())),
            deadline,
        )) {
            Resume::Audited(r) => r,
            Resume::Start | Resume::Reply(_) => {
                Err("the driver resumed without an audit result".into())
            }
        }
    }
    fn trigger(&self) -> Value {
        self.trigger.clone()
    }
    fn recorded(
        &mut self,
        function: &str,
        produce: &mut dyn FnMut() -> serde_json::Value,
    ) -> serde_json::Value {
        let mut sh = self.shared.borrow_mut();
        let value = match sh.replay.front() {
            Some(r) if r.function == function => {
                sh.replay.pop_front().map(|r| r.value).unwrap_or_default()
            }
            _ => produce(),
        };
        sh.log.recorded.push(RecordedValue {
            function: function.to_string(),
            value: value.clone(),
        });
        value
    }
    fn env(&self) -> Arc<BlockEnv> {
        self.env.clone()
    }
    fn agent(&self) -> Arc<str> {
        self.info.agent.clone()
    }
    fn execution(&self) -> symbi_types::ExecutionId {
        self.info.execution
    }
    fn delegation_depth(&self) -> u32 {
        self.depth
    }
    fn set_env(&mut self, env: Arc<BlockEnv>) {
        self.env = env;
    }
    fn rules(&self) -> Option<Arc<crate::rules::DslRuleSet>> {
        self.rules.clone()
    }
}

struct RunOk {
    result: serde_json::Value,
    steps: u64,
    ignored: Vec<String>,
}

struct RunErr {
    raised: Box<Raised>,
    steps: u64,
}

fn raised(kind: ErrorKind, msg: impl Into<String>) -> Box<Raised> {
    Box::new(Raised::from_fault(crate::error::Fault::new(kind, msg)))
}

/// Binds the JSON input to the agent's parameters (GRAMMAR 4.7 step 2).
fn bind_input(
    agent: &AgentDef,
    input: &serde_json::Value,
) -> Result<(Vec<Value>, Vec<String>), String> {
    let params = &agent.param_code;
    if params.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let by_name = match input {
        serde_json::Value::Object(o) => params
            .iter()
            .filter(|p| !p.optional)
            .all(|p| o.contains_key(p.name.as_str())),
        _ => false,
    };
    let mut raw: Vec<Option<serde_json::Value>> = Vec::new();
    let mut ignored = Vec::new();
    if by_name {
        let o = input.as_object().expect("object");
        for p in params {
            raw.push(o.get(p.name.as_str()).cloned());
        }
        ignored = o
            .keys()
            .filter(|k| !params.iter().any(|p| p.name.as_str() == k.as_str()))
            .cloned()
            .collect();
    } else if params.len() == 1 {
        raw.push(Some(input.clone()));
    } else {
        let required: Vec<&str> = params
            .iter()
            .filter(|p| !p.optional)
            .map(|p| p.name.as_str())
            .collect();
        let missing: Vec<&str> = match input {
            serde_json::Value::Object(o) => required
                .iter()
                .copied()
                .filter(|k| !o.contains_key(*k))
                .collect(),
            _ => required.clone(),
        };
        return Err(format!(
            "the input must be an object with the keys {} (missing: {})",
            required
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            missing
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut out = Vec::with_capacity(params.len());
    for (p, j) in params.iter().zip(raw) {
        let v = match j {
            None => Value::Null,
            Some(j) => {
                crate::value::from_json(&j).map_err(|e| format!("parameter `{}`: {e}", p.name))?
            }
        };
        let v = if v.is_null() && p.optional {
            v
        } else {
            p.ty.conform(v)
                .map_err(|m| format!("parameter `{}`: {m}", p.name))?
        };
        out.push(v);
    }
    Ok((out, ignored))
}

/// Whether the principal holds the attribute `attr` (for `requires`): a truthy attribute
/// of that name, or the name in its `roles`, `clearances`, `approvals` or `attributes`
/// list, or among its capabilities.
pub(crate) fn principal_holds(p: &symbi_types::Principal, attr: &str) -> bool {
    if p.capabilities.iter().any(|c| c == attr) {
        return true;
    }
    if let Some(v) = p.attributes.get(attr) {
        if !matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false)) {
            return true;
        }
    }
    ["roles", "clearances", "approvals", "attributes"].iter().any(|k| {
        matches!(p.attributes.get(*k), Some(serde_json::Value::Array(a)) if a.iter().any(|x| x.as_str() == Some(attr)))
    })
}

#[allow(clippy::too_many_arguments)]
fn run_agent(
    prog: &Arc<LoadedProgram>,
    agent: &AgentDef,
    input: &serde_json::Value,
    ctx: &ExecutionContext,
    fx: &mut CoEffects<'_>,
    meter: &HeapMeter,
    stack_limit: usize,
) -> Result<RunOk, RunErr> {
    let (args, ignored) = match bind_input(agent, input) {
        Ok(x) => x,
        Err(m) => {
            return Err(RunErr {
                raised: raised(ErrorKind::InputError, m),
                steps: 0,
            });
        }
    };
    let first_env = agent.envs.first().cloned().unwrap_or_default();
    fx.set_env(first_env);
    fx.rules = crate::rules::DslRuleSet::new(
        prog.clone(),
        &agent.name,
        args.clone(),
        ctx.initiator.as_ref(),
        ctx.schedule_policy.as_deref(),
    )
    .map(Arc::new);
    let mut it = Interp::new(prog, fx, Some(meter));
    it.set_stack_limit(stack_limit);
    it.enter_root(Str::from(format!("agent {}", agent.name)), agent.n_slots);
    for (p, v) in agent.param_code.iter().zip(args) {
        it.stack[p.slot as usize] = Some(v);
    }
    let mut total = 0u64;
    let mut last = Value::Null;
    for (i, body) in agent.bodies.iter().enumerate() {
        let env = agent.envs[i].clone();
        let span = agent.block_spans[i];
        for r in &env.requires {
            let held = ctx
                .initiator
                .as_ref()
                .is_some_and(|p| principal_holds(p, r));
            if !held {
                let who = ctx
                    .initiator
                    .as_ref()
                    .map(|p| p.name.as_str())
                    .unwrap_or("anonymous");
                let mut e = raised(
                    ErrorKind::PolicyDenied,
                    format!("the block requires `{r}`, which the principal `{who}` does not hold"),
                );
                e.location = Some(it.location(span));
                return Err(RunErr {
                    raised: e,
                    steps: total,
                });
            }
        }
        it.fx.set_env(env.clone());
        let steps = env.max_steps.unwrap_or(ctx.limits.default_steps);
        let mut heap = env.max_memory.unwrap_or(ctx.limits.default_heap);
        if let Some(cap) = ctx.limits.max_heap {
            heap = heap.min(cap);
        }
        let mut timeout = env.timeout.unwrap_or(ctx.limits.default_timeout);
        if let Some(cap) = ctx.limits.max_timeout {
            timeout = timeout.min(cap);
        }
        let deadline = Instant::now().checked_add(timeout);
        it.start_block(steps, deadline, timeout.as_millis() as u64, heap);
        let r = it.exec_block(body);
        total += it.steps.min(steps);
        match r {
            Ok(v) => last = v,
            Err(Flow::Return(v)) => {
                last = v;
                break;
            }
            Err(Flow::Err(r)) => {
                return Err(RunErr {
                    raised: r,
                    steps: total,
                });
            }
            Err(Flow::Break) | Err(Flow::Continue) => {
                return Err(RunErr {
                    raised: raised(ErrorKind::InternalFault, "`break` outside of a loop"),
                    steps: total,
                });
            }
        }
    }
    if let Some(t) = &agent.ret {
        if !t.is_any() {
            last = match t.conform(last) {
                Ok(v) => v,
                Err(m) => {
                    let mut e = raised(
                        ErrorKind::TypeError,
                        format!(
                            "agent `{}` returns a value that does not conform to {t}: {m}",
                            agent.name
                        ),
                    );
                    e.location = Some(it.location(agent.span));
                    return Err(RunErr {
                        raised: e,
                        steps: total,
                    });
                }
            };
        }
    }
    match crate::value::to_json(&last) {
        Ok(result) => Ok(RunOk {
            result,
            steps: total,
            ignored,
        }),
        Err(f) => {
            let mut e = Box::new(Raised::from_fault(f));
            e.message = format!(
                "the agent's result cannot be converted to JSON: {}",
                e.message
            );
            e.location = Some(it.location(agent.span));
            Err(RunErr {
                raised: e,
                steps: total,
            })
        }
    }
}

fn failure_from(
    r: Box<Raised>,
    steps: u64,
    started: Instant,
    log: ExecutionLog,
) -> ExecutionFailure {
    let details = crate::value::to_json_lossy(&r.details);
    ExecutionFailure {
        kind: r.kind,
        message: r.message,
        details,
        action: r.action.map(|a| a.as_str().to_string()),
        location: r.location.map(|l| l.as_str().to_string()),
        stack: r.stack.map(|s| s.to_vec()).unwrap_or_default(),
        budget: r.budget,
        steps,
        duration: started.elapsed(),
        log,
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".into()
    }
}

/// Executes agent `agent` of `program` with a JSON `input`.
///
/// Must run inside a tokio runtime (timers bound the wait for actions), on one thread:
/// the future is not `Send` (use a current-thread runtime, a
/// [`LocalSet`](tokio::task::LocalSet), or [`ExecutionPool`]).
///
/// ```no_run
/// # async fn demo(prog: std::sync::Arc<symbi_dsl::LoadedProgram>, host: std::sync::Arc<dyn symbi_dsl::ActionHost>) {
/// let out = symbi_dsl::execute(prog, "greeter", serde_json::json!({"name": "Ada"}),
///     symbi_dsl::ExecutionContext::default(), host).await;
/// match out {
///     Ok(o) => println!("{}", symbi_dsl::value::json_to_string(&o.result, false)),
///     Err(f) => eprintln!("{}", f.render()),
/// }
/// # }
/// ```
pub async fn execute(
    program: Arc<LoadedProgram>,
    agent: &str,
    input: serde_json::Value,
    ctx: ExecutionContext,
    host: Arc<dyn ActionHost>,
) -> Result<ExecutionOutcome, ExecutionFailure> {
    let started = Instant::now();
    let empty_log = ExecutionLog::default;
    let Some(agent_idx) = program.agents.iter().position(|a| &*a.name == agent) else {
        return Err(failure_from(
            raised(
                ErrorKind::InputError,
                format!("the program has no agent named `{agent}`"),
            ),
            0,
            started,
            empty_log(),
        ));
    };
    let stack = match take_stack() {
        Ok(s) => s,
        Err(e) => {
            return Err(failure_from(
                raised(
                    ErrorKind::InternalFault,
                    format!("cannot allocate the interpreter's stack: {e}"),
                ),
                0,
                started,
                empty_log(),
            ));
        }
    };
    let stack_limit = stack.limit().get();
    let meter = Rc::new(HeapMeter::new(ctx.limits.default_heap));
    let shared = Rc::new(RefCell::new(Shared {
        log: ExecutionLog::default(),
        replay: ctx.replay.clone().map(VecDeque::from).unwrap_or_default(),
    }));
    let info = ExecutionInfo {
        execution: ctx.execution,
        agent: Arc::from(agent),
    };
    let co_prog = program.clone();
    let co_meter = meter.clone();
    let co_shared = shared.clone();
    let co_host = host.clone();
    let co_info = info.clone();
    let mut co = Coroutine::with_stack(
        stack,
        move |y: &Yielder<Resume, Suspend>, _first: Resume| {
            let prog = co_prog;
            let agent = &prog.agents[agent_idx];
            let trigger = ctx
                .trigger
                .as_ref()
                .map(|t| crate::value::from_json(t).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            let mut fx = CoEffects {
                yielder: y,
                host: co_host,
                info: co_info,
                trigger,
                env: Arc::new(BlockEnv::default()),
                depth: ctx.delegation_depth,
                shared: co_shared,
                rules: None,
            };
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                run_agent(&prog, agent, &input, &ctx, &mut fx, &co_meter, stack_limit)
            }));
            match r {
                Ok(r) => r,
                Err(p) => Err(RunErr {
                    raised: raised(
                        ErrorKind::InternalFault,
                        format!("the interpreter panicked: {}", panic_message(&*p)),
                    ),
                    steps: 0,
                }),
            }
        },
    );
    let mut resume = Resume::Start;
    loop {
        let step = {
            let _g = MeterGuard::install(&meter);
            std::panic::catch_unwind(AssertUnwindSafe(|| co.resume(resume)))
        };
        match step {
            Err(p) => {
                let log = std::mem::take(&mut shared.borrow_mut().log);
                return Err(failure_from(
                    raised(
                        ErrorKind::InternalFault,
                        format!("the interpreter panicked: {}", panic_message(&*p)),
                    ),
                    0,
                    started,
                    log,
                ));
            }
            Ok(CoroutineResult::Yield(Suspend::Action(req, deadline))) => {
                let fut = AssertUnwindSafe(host.perform(*req)).catch_unwind();
                let answer = match deadline {
                    Some(d) => {
                        match tokio::time::timeout_at(tokio::time::Instant::from_std(d), fut).await
                        {
                            Ok(a) => Some(a),
                            Err(_) => None,
                        }
                    }
                    None => Some(fut.await),
                };
                resume = Resume::Reply(match answer {
                    None => ActionReply::Abort(
                        ErrorKind::Timeout,
                        "the block's time limit ran out while an action was running".into(),
                        None,
                    ),
                    Some(Ok(Ok(v))) => ActionReply::Ok(v),
                    Some(Ok(Err(e))) => ActionReply::Err(e),
                    Some(Err(p)) => ActionReply::Abort(
                        ErrorKind::InternalFault,
                        format!("the action host panicked: {}", panic_message(&*p)),
                        None,
                    ),
                });
            }
            Ok(CoroutineResult::Yield(Suspend::Audit(ev, deadline))) => {
                let (event, details, location) = *ev;
                let fut = AssertUnwindSafe(host.audit_log(&info, &event, &details, &location))
                    .catch_unwind();
                let answer = match deadline {
                    Some(d) => tokio::time::timeout_at(tokio::time::Instant::from_std(d), fut)
                        .await
                        .ok(),
                    None => Some(fut.await),
                };
                resume = Resume::Audited(match answer {
                    None => Err(
                        "the block's time limit ran out while the audit log was recording".into(),
                    ),
                    Some(Ok(r)) => r,
                    Some(Err(p)) => {
                        Err(format!("the action host panicked: {}", panic_message(&*p)))
                    }
                });
            }
            Ok(CoroutineResult::Return(r)) => {
                if co.done() {
                    give_stack(co.into_stack());
                }
                let log = std::mem::take(&mut shared.borrow_mut().log);
                return match r {
                    Ok(ok) => Ok(ExecutionOutcome {
                        result: ok.result,
                        steps: ok.steps,
                        duration: started.elapsed(),
                        heap_peak: meter.peak(),
                        log,
                        ignored_input_keys: ok.ignored,
                    }),
                    Err(e) => Err(failure_from(e.raised, e.steps, started, log)),
                };
            }
        }
    }
}

type Job = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send>;

/// A few worker threads, each with a current-thread tokio runtime and a `LocalSet`, that
/// run executions and give everyone else a `Send` future for the result.
///
/// ```no_run
/// # async fn demo(prog: std::sync::Arc<symbi_dsl::LoadedProgram>, host: std::sync::Arc<dyn symbi_dsl::ActionHost>) {
/// let pool = symbi_dsl::ExecutionPool::new(2);
/// let out = pool.execute(prog, "greeter".into(), serde_json::json!({"name": "Ada"}),
///     symbi_dsl::ExecutionContext::default(), host).await;
/// # }
/// ```
pub struct ExecutionPool {
    senders: Vec<tokio::sync::mpsc::UnboundedSender<Job>>,
    next: std::sync::atomic::AtomicUsize,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ExecutionPool {
    /// Starts `workers` threads (at least one).
    pub fn new(workers: usize) -> ExecutionPool {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
            senders.push(tx);
            let t = std::thread::Builder::new()
                .name(format!("symbi-dsl-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            eprintln!("symbi-dsl: cannot start an execution worker: {e}");
                            return;
                        }
                    };
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, async move {
                        while let Some(job) = rx.recv().await {
                            tokio::task::spawn_local(job());
                        }
                    });
                })
                .expect("spawning an execution worker thread");
            threads.push(t);
        }
        ExecutionPool {
            senders,
            next: std::sync::atomic::AtomicUsize::new(0),
            threads,
        }
    }

    /// Runs [`execute`] on a worker; the returned future is `Send`.
    pub async fn execute(
        &self,
        program: Arc<LoadedProgram>,
        agent: String,
        input: serde_json::Value,
        ctx: ExecutionContext,
        host: Arc<dyn ActionHost>,
    ) -> Result<ExecutionOutcome, ExecutionFailure> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let r = execute(program, &agent, input, ctx, host).await;
                let _ = tx.send(r);
            })
        });
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.senders.len();
        let started = Instant::now();
        if self.senders[i].send(job).is_err() {
            return Err(failure_from(
                raised(ErrorKind::InternalFault, "the execution pool is shut down"),
                0,
                started,
                ExecutionLog::default(),
            ));
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(failure_from(
                raised(
                    ErrorKind::InternalFault,
                    "the execution was dropped by its worker",
                ),
                0,
                started,
                ExecutionLog::default(),
            )),
        }
    }
}

impl Drop for ExecutionPool {
    fn drop(&mut self) {
        self.senders.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
