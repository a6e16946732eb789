//! The metered tree-walking interpreter (GRAMMAR 4).
//!
//! [`Interp`] evaluates the compiled IR ([`ir`]) of one execution: a value stack of frame
//! slots (every name was resolved to a slot at load time), a DSL call stack for traces,
//! and the budgets of the running `with` block — steps (fuel), live heap (see
//! [`crate::value::heap`]) and a wall-clock deadline. Effects leave through the
//! [`Effects`] trait: in an execution they suspend the coroutine that runs the
//! interpreter (see [`exec`]), in a policy guard they are refused.
//!
//! Errors travel as [`Flow::Err`] and get their `file:line:col` and DSL stack at the
//! innermost expression or statement that sees them without one.

pub(crate) mod exec;
pub(crate) mod ir;
mod places;

pub use exec::{ExecutionFailure, ExecutionOutcome, ExecutionPool, FailureBudget, execute};

use crate::builtins::{self, Args};
use crate::error::{ErrorKind, Fault};
use crate::host::{ActionError, ActionKind, ActionRequest, BlockEnv, LogLevel, SourceLocation};
use crate::program::LoadedProgram;
use crate::span::Span;
use crate::value::{
    BinOp, Entries, ErrorValue, Lambda, List, Map, Str, Value, binary_op, compare, heap::HeapMeter,
    negate, values_equal,
};
use ir::*;
use serde::Serialize;
use std::cmp::Ordering;
use std::sync::Arc;
use std::time::Instant;
use symbi_types::ActionCategory;

/// Maximum nesting of calls (functions and lambdas), GRAMMAR 4.6.
pub const MAX_CALL_DEPTH: u32 = 256;

/// Bytes of native stack the interpreter keeps in reserve; below that, a deeper call or
/// expression raises `StackOverflow` instead of overflowing the stack.
const STACK_RED_ZONE: usize = 256 * 1024;

/// One frame of a DSL stack trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StackFrame {
    /// `agent triage_router`, `function line_total`, `lambda`, `guard`.
    pub function: String,
    /// `file:line:col` of the current position in that frame.
    pub location: String,
}

/// Budget details of an uncatchable budget error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BudgetInfo {
    /// `steps`, `memory` or `time`.
    pub budget: &'static str,
    /// The limit (steps, bytes or milliseconds).
    pub limit: u64,
    /// What was used when it stopped.
    pub used: u64,
}

/// A raised error on its way out.
#[derive(Debug)]
pub(crate) struct Raised {
    pub kind: ErrorKind,
    pub message: String,
    pub details: Value,
    pub action: Option<Str>,
    pub location: Option<Str>,
    pub span: Option<Span>,
    pub stack: Option<Arc<[StackFrame]>>,
    /// Raised by an action failure (caught by `catch (ActionFailed e)` whatever its kind).
    pub action_failure: bool,
    pub budget: Option<BudgetInfo>,
}

impl Raised {
    pub(crate) fn from_fault(f: Fault) -> Raised {
        Raised {
            kind: f.kind,
            message: f.message,
            details: f.details.unwrap_or(Value::Null),
            action: f.action.map(Str::from),
            location: None,
            span: None,
            stack: None,
            action_failure: false,
            budget: None,
        }
    }

    /// The error value `catch` binds.
    pub(crate) fn to_value(&self) -> Value {
        Value::Error(Arc::new(ErrorValue::new(
            self.kind.clone(),
            Str::from(self.message.as_str()),
            self.details.clone(),
            self.action.clone(),
            self.location.clone(),
            self.stack.clone().unwrap_or_else(|| Arc::from(Vec::new())),
        )))
    }

    pub(crate) fn from_value(e: &ErrorValue) -> Raised {
        Raised {
            kind: e.kind.clone(),
            message: e.message.as_str().to_string(),
            details: e.details.clone(),
            action: e.action.clone(),
            location: e.location.clone(),
            span: None,
            stack: Some(e.stack.clone()),
            action_failure: false,
            budget: None,
        }
    }
}

/// Non-local control flow: errors, `return`, `break`, `continue`.
#[derive(Debug)]
pub(crate) enum Flow {
    Err(Box<Raised>),
    Return(Value),
    Break,
    Continue,
}

impl From<Fault> for Flow {
    fn from(f: Fault) -> Flow {
        Flow::Err(Box::new(Raised::from_fault(f)))
    }
}

pub(crate) type R<T = Value> = Result<T, Flow>;

pub(crate) fn fault(kind: ErrorKind, msg: impl Into<String>) -> Flow {
    Flow::from(Fault::new(kind, msg))
}

pub(crate) fn type_error(msg: impl Into<String>) -> Flow {
    fault(ErrorKind::TypeError, msg)
}

/// What an action returned to the interpreter.
pub(crate) enum ActionReply {
    Ok(Value),
    Err(ActionError),
    /// The execution must stop (its deadline passed while the action ran).
    Abort(ErrorKind, String, Option<BudgetInfo>),
}

/// Effects of an execution: actions and intrinsics.
pub(crate) trait Effects {
    /// Performs an action (suspends the coroutine until the host answers).
    fn action(&mut self, req: ActionRequest, deadline: Option<Instant>) -> ActionReply;
    /// `log` / `print`.
    fn log(&mut self, level: LogLevel, message: &str, location: &SourceLocation);
    /// `audit_log`: suspends until the host has recorded the event (bounded by `deadline`).
    fn audit(
        &mut self,
        event: &str,
        details: &serde_json::Value,
        location: &SourceLocation,
        deadline: Option<Instant>,
    ) -> Result<(), String>;
    /// `trigger()`.
    fn trigger(&self) -> Value;
    /// A non-deterministic value: replayed if recorded, else produced and recorded.
    fn recorded(
        &mut self,
        function: &str,
        produce: &mut dyn FnMut() -> serde_json::Value,
    ) -> serde_json::Value;
    /// The running block's environment.
    fn env(&self) -> Arc<BlockEnv>;
    /// The agent's name.
    fn agent(&self) -> Arc<str>;
    /// The execution id.
    fn execution(&self) -> symbi_types::ExecutionId;
    /// The delegation depth.
    fn delegation_depth(&self) -> u32;
    /// Switches to the environment of the next `with` block.
    fn set_env(&mut self, env: Arc<BlockEnv>);
    /// The execution's DSL rules (handed to the host with every action).
    fn rules(&self) -> Option<Arc<crate::rules::DslRuleSet>> {
        None
    }
    /// Whether this is a policy guard (actions and intrinsics refused).
    fn is_guard(&self) -> bool {
        false
    }
}

struct FrameInfo {
    name: Str,
    call_site: Option<Span>,
}

/// The interpreter state of one execution (or one guard evaluation).
pub(crate) struct Interp<'a> {
    pub(crate) prog: &'a LoadedProgram,
    pub(crate) stack: Vec<Option<Value>>,
    pub(crate) base: usize,
    /// Steps used in the running block.
    pub(crate) steps: u64,
    pub(crate) step_limit: u64,
    next_check: u64,
    checks: u32,
    pub(crate) deadline: Option<Instant>,
    pub(crate) block_start: Instant,
    pub(crate) timeout_ms: u64,
    pub(crate) meter: Option<&'a HeapMeter>,
    depth: u32,
    frames: Vec<FrameInfo>,
    pub(crate) fx: &'a mut dyn Effects,
    stack_limit: usize,
    pub(crate) regex_cache: Vec<(Str, Arc<regex::Regex>)>,
    /// Span of the builtin call being run (for `log` locations and lambda call sites).
    pub(crate) cur_span: Span,
}

impl<'a> Interp<'a> {
    pub(crate) fn new(
        prog: &'a LoadedProgram,
        fx: &'a mut dyn Effects,
        meter: Option<&'a HeapMeter>,
    ) -> Self {
        Interp {
            prog,
            stack: Vec::with_capacity(256),
            base: 0,
            steps: 0,
            step_limit: u64::MAX,
            next_check: 64,
            checks: 0,
            deadline: None,
            block_start: Instant::now(),
            timeout_ms: 0,
            meter,
            depth: 0,
            frames: Vec::new(),
            fx,
            stack_limit: 0,
            regex_cache: Vec::new(),
            cur_span: Span::default(),
        }
    }

    /// Sets the lowest usable address of the native stack the interpreter runs on.
    pub(crate) fn set_stack_limit(&mut self, limit: usize) {
        self.stack_limit = limit;
    }

    /// Starts a `with` block: fresh step budget, heap limit and deadline.
    pub(crate) fn start_block(
        &mut self,
        steps: u64,
        deadline: Option<Instant>,
        timeout_ms: u64,
        heap: u64,
    ) {
        self.steps = 0;
        self.step_limit = steps;
        self.next_check = 64.min(steps.saturating_add(1));
        self.deadline = deadline;
        self.timeout_ms = timeout_ms;
        self.block_start = Instant::now();
        if let Some(m) = self.meter {
            m.set_limit(heap);
        }
    }

    /// Pushes the outermost frame (agent or guard) with `n` slots.
    pub(crate) fn enter_root(&mut self, name: Str, n: u32) {
        self.stack.clear();
        self.stack.resize(n as usize, None);
        self.base = 0;
        self.frames.clear();
        self.frames.push(FrameInfo {
            name,
            call_site: None,
        });
    }

    // ---------------------------------------------------------------------------------
    // Budgets
    // ---------------------------------------------------------------------------------

    #[inline(always)]
    pub(crate) fn tick(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps >= self.next_check {
            self.check_budgets()?;
        }
        Ok(())
    }

    /// Charges `n` steps (collection builtins charge one per element).
    #[inline]
    pub(crate) fn charge(&mut self, n: u64) -> R<()> {
        self.steps = self.steps.saturating_add(n);
        if self.steps >= self.next_check {
            self.check_budgets()?;
        }
        Ok(())
    }

    #[cold]
    fn check_budgets(&mut self) -> R<()> {
        if self.steps > self.step_limit {
            return Err(self.budget_error(BudgetInfo {
                budget: "steps",
                limit: self.step_limit,
                used: self.steps,
            }));
        }
        self.check_heap()?;
        self.checks = self.checks.wrapping_add(1);
        if self.checks % 4 == 0 {
            self.check_deadline()?;
        }
        self.next_check = self
            .steps
            .saturating_add(64)
            .min(self.step_limit.saturating_add(1));
        Ok(())
    }

    pub(crate) fn check_heap(&self) -> R<()> {
        if let Some(m) = self.meter {
            if m.exceeded() {
                return Err(self.budget_error(BudgetInfo {
                    budget: "memory",
                    limit: m.limit(),
                    used: m.live(),
                }));
            }
        }
        Ok(())
    }

    pub(crate) fn check_deadline(&self) -> R<()> {
        if let Some(d) = self.deadline {
            if Instant::now() >= d {
                return Err(self.timeout_error());
            }
        }
        Ok(())
    }

    pub(crate) fn timeout_error(&self) -> Flow {
        let elapsed = self.block_start.elapsed().as_millis() as u64;
        let mut r = Raised::from_fault(Fault::new(
            ErrorKind::Timeout,
            format!(
                "the block's time limit of {} ran out",
                crate::value::duration_text(self.timeout_ms as i64)
            ),
        ));
        r.budget = Some(BudgetInfo {
            budget: "time",
            limit: self.timeout_ms,
            used: elapsed,
        });
        r.details = budget_details(r.budget.as_ref().unwrap());
        Flow::Err(Box::new(r))
    }

    fn budget_error(&self, info: BudgetInfo) -> Flow {
        let what = match info.budget {
            "steps" => format!(
                "step budget exhausted: {} steps used, the limit is {}",
                info.used, info.limit
            ),
            _ => format!(
                "heap budget exhausted: {} bytes in use, the limit is {}",
                info.used, info.limit
            ),
        };
        let mut r = Raised::from_fault(Fault::new(ErrorKind::BudgetExhausted, what));
        r.details = budget_details(&info);
        r.budget = Some(info);
        Flow::Err(Box::new(r))
    }

    #[inline]
    fn stack_ok(&self) -> bool {
        if self.stack_limit == 0 {
            return true;
        }
        let probe = 0u8;
        let sp = std::ptr::addr_of!(probe) as usize;
        sp.saturating_sub(self.stack_limit) > STACK_RED_ZONE
    }

    fn enter_call(&mut self, name: Str, site: Span) -> R<()> {
        if self.depth >= MAX_CALL_DEPTH {
            return Err(fault(
                ErrorKind::StackOverflow,
                format!("more than {MAX_CALL_DEPTH} nested calls"),
            ));
        }
        if !self.stack_ok() {
            return Err(fault(
                ErrorKind::StackOverflow,
                "the program nests too deeply",
            ));
        }
        self.depth += 1;
        self.frames.push(FrameInfo {
            name,
            call_site: Some(site),
        });
        Ok(())
    }

    fn leave_call(&mut self) {
        self.depth -= 1;
        self.frames.pop();
    }

    // ---------------------------------------------------------------------------------
    // Locations
    // ---------------------------------------------------------------------------------

    pub(crate) fn location(&self, span: Span) -> Str {
        Str::from(self.prog.source.location(span.start))
    }

    pub(crate) fn source_location(&self, span: Span) -> SourceLocation {
        let p = self.prog.source.position(span.start);
        SourceLocation {
            file: self.prog.file_name.clone(),
            line: p.line,
            column: p.column,
        }
    }

    fn snapshot_stack(&self, at: Span) -> Arc<[StackFrame]> {
        let mut out = Vec::with_capacity(self.frames.len());
        let mut pos = at;
        for f in self.frames.iter().rev() {
            out.push(StackFrame {
                function: f.name.as_str().to_string(),
                location: self.location(pos).as_str().to_string(),
            });
            if let Some(site) = f.call_site {
                pos = site;
            }
        }
        Arc::from(out)
    }

    /// Gives an error without a position the position `span` and the current stack.
    #[inline]
    pub(crate) fn locate(&self, f: Flow, span: Span) -> Flow {
        match f {
            Flow::Err(mut r) if r.location.is_none() => {
                r.location = Some(self.location(span));
                r.span = Some(span);
                r.stack = Some(self.snapshot_stack(span));
                Flow::Err(r)
            }
            other => other,
        }
    }

    // ---------------------------------------------------------------------------------
    // Expressions
    // ---------------------------------------------------------------------------------

    #[inline]
    pub(crate) fn eval(&mut self, e: &Expr) -> R {
        let r = match self.tick() {
            Ok(()) => self.eval_kind(e),
            Err(f) => Err(f),
        };
        match r {
            Ok(v) => Ok(v),
            Err(f) => Err(self.locate(f, e.span)),
        }
    }

    fn slot(&self, slot: u32) -> &Option<Value> {
        &self.stack[self.base + slot as usize]
    }

    fn eval_kind(&mut self, e: &Expr) -> R {
        match &e.kind {
            ExprKind::Const(v) => Ok(v.clone()),
            ExprKind::Local { slot, name } => match self.slot(*slot) {
                Some(v) => Ok(v.clone()),
                None => Err(name_error(name)),
            },
            ExprKind::Undefined(name) => Err(name_error(name)),
            ExprKind::Vault(path) => self.perform_action(
                "secret".into(),
                Some(ActionCategory::SecretRead),
                ActionKind::Secret,
                vec![Value::Str(path.clone())],
                Vec::new(),
                e.span,
            ),
            ExprKind::Record(fields) => {
                let mut m = Entries::with_capacity_and_hasher(fields.len(), Default::default());
                for (k, x) in fields.iter() {
                    let v = self.eval(x)?;
                    m.insert(k.clone(), v);
                }
                let v = Value::Map(Map::from_entries(m));
                v.check_depth()?;
                Ok(v)
            }
            ExprKind::Array(xs) => {
                let mut out = Vec::with_capacity(xs.len());
                for x in xs.iter() {
                    out.push(self.eval(x)?);
                }
                let v = Value::List(List::from_vec(out));
                v.check_depth()?;
                Ok(v)
            }
            ExprKind::Lambda(code) => {
                let caps: Box<[Option<Value>]> = code
                    .captures
                    .iter()
                    .map(|(outer, _)| self.slot(*outer).clone())
                    .collect();
                let v = Value::Lambda(Arc::new(Lambda::new(code.clone(), caps)));
                v.check_depth()?;
                Ok(v)
            }
            ExprKind::If(ife) => self.eval_if_expr(ife),
            ExprKind::And(p) => {
                if !self.eval(&p[0])?.truthy() {
                    return Ok(Value::Bool(false));
                }
                Ok(Value::Bool(self.eval(&p[1])?.truthy()))
            }
            ExprKind::Or(p) => {
                if self.eval(&p[0])?.truthy() {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(self.eval(&p[1])?.truthy()))
            }
            ExprKind::Not(x) => Ok(Value::Bool(!self.eval(x)?.truthy())),
            ExprKind::Neg(x) => Ok(negate(&self.eval(x)?)?),
            ExprKind::Arith(op, p) => {
                let a = self.eval(&p[0])?;
                let b = self.eval(&p[1])?;
                if let (Value::Int(x), Value::Int(y)) = (&a, &b) {
                    let r = match op {
                        BinOp::Add => x.checked_add(*y),
                        BinOp::Sub => x.checked_sub(*y),
                        BinOp::Mul => x.checked_mul(*y),
                        _ => return Ok(binary_op(*op, a, b)?),
                    };
                    return r
                        .map(Value::Int)
                        .ok_or_else(|| Flow::from(Fault::arith("integer overflow")));
                }
                Ok(binary_op(*op, a, b)?)
            }
            ExprKind::Cmp(op, p) => {
                let a = self.eval(&p[0])?;
                let b = self.eval(&p[1])?;
                self.compare_op(*op, &a, &b).map(Value::Bool)
            }
            ExprKind::Member(obj, name) => {
                let o = self.eval(obj)?;
                member(&o, name)
            }
            ExprKind::Index(p) => {
                let o = self.eval(&p[0])?;
                let i = self.eval(&p[1])?;
                index(&o, &i)
            }
            ExprKind::Call(c) => self.eval_call(&c.target, c, e.span),
            ExprKind::Fail(msg) => Err(type_error(msg.as_str())),
        }
    }

    fn compare_op(&mut self, op: CmpOp, a: &Value, b: &Value) -> R<bool> {
        if let (Value::Int(x), Value::Int(y)) = (a, b) {
            return Ok(match op {
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
                CmpOp::Lt => x < y,
                CmpOp::Gt => x > y,
                CmpOp::Le => x <= y,
                CmpOp::Ge => x >= y,
                CmpOp::In => return Err(type_error("`in` needs a list, map or string, found int")),
            });
        }
        Ok(match op {
            CmpOp::Eq => values_equal(a, b),
            CmpOp::Ne => !values_equal(a, b),
            CmpOp::Lt => compare(a, b)? == Ordering::Less,
            CmpOp::Gt => compare(a, b)? == Ordering::Greater,
            CmpOp::Le => compare(a, b)? != Ordering::Greater,
            CmpOp::Ge => compare(a, b)? != Ordering::Less,
            CmpOp::In => {
                if let Value::List(l) = b {
                    self.charge(l.len() as u64)?;
                }
                crate::value::ops_contains(b, a)?
            }
        })
    }

    fn eval_if_expr(&mut self, ife: &IfExpr) -> R {
        if self.eval(&ife.cond)?.truthy() {
            self.exec_block(&ife.then_block)
        } else {
            match &ife.else_branch {
                ElseExpr::If(next) => self.eval_if_expr(next),
                ElseExpr::Block(b) => self.exec_block(b),
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Calls
    // ---------------------------------------------------------------------------------

    fn eval_call(&mut self, target: &Target, c: &Call, span: Span) -> R {
        match target {
            Target::User { func, bind } => {
                let f: &'a FnCode = &self.prog.functions[*func as usize];
                let args = self.eval_bound_args(c, bind, f.params.len(), None)?;
                self.call_user(f, args, span)
            }
            Target::Builtin { b, bind } => {
                let mut args = self.eval_builtin_args(c, b, bind, None)?;
                self.cur_span = span;
                (b.f)(self, &mut args)
            }
            Target::Service { s, bind } => {
                let args = self.eval_bound_args(c, bind, s.params.len(), None)?;
                let (pos, named) = split_service_args(s, args);
                self.perform_action(
                    s.name.to_string(),
                    Some(s.category),
                    ActionKind::Service,
                    pos,
                    named,
                    span,
                )
            }
            Target::Tool(name) => {
                let mut pos = Vec::new();
                let mut named = Vec::new();
                for (x, n) in c.args.iter().zip(c.names.iter()) {
                    let v = self.eval(x)?;
                    match n {
                        None => pos.push(v),
                        Some(n) => named.push((n.as_str().to_string(), v)),
                    }
                }
                self.perform_action(
                    name.as_str().to_string(),
                    None,
                    ActionKind::Unresolved,
                    pos,
                    named,
                    span,
                )
            }
            Target::VarThen { slot, fallback } => {
                if let Some(Value::Lambda(l)) = self.slot(*slot) {
                    let l = l.clone();
                    let arg = self.eval_lambda_arg(c)?;
                    return self.call_lambda(&l, arg, span);
                }
                self.eval_call(fallback, c, span)
            }
            Target::Method {
                recv,
                name,
                builtin,
            } => {
                let r = self.eval(recv)?;
                self.call_method(r, name, builtin, c, span)
            }
            Target::MutMethod { place, name, .. } => self.call_mut_method(place, name, c, span),
            Target::MethodOrQualified {
                slot,
                recv,
                name,
                builtin,
                qualified,
            } => {
                if self.slot(*slot).is_some() {
                    let r = self.eval(recv)?;
                    self.call_method(r, name, builtin, c, span)
                } else {
                    self.eval_call(qualified, c, span)
                }
            }
            Target::Dynamic(callee) => {
                let f = self.eval(callee)?;
                match f {
                    Value::Lambda(l) => {
                        let arg = self.eval_lambda_arg(c)?;
                        self.call_lambda(&l, arg, span)
                    }
                    other => Err(type_error(format!(
                        "a {} cannot be called; only lambdas can",
                        other.type_name()
                    ))),
                }
            }
        }
    }

    /// Evaluates arguments in written order and places them by `bind`. With `recv`, the
    /// receiver is parameter 0 and `bind` covers it as the first written argument.
    fn eval_bound_args(
        &mut self,
        c: &Call,
        bind: &ir::Bind,
        n_params: usize,
        recv: Option<Value>,
    ) -> R<smallvec::SmallVec<[Option<Value>; 4]>> {
        let mut out: smallvec::SmallVec<[Option<Value>; 4]> = smallvec::smallvec![None; n_params];
        let off = recv.is_some() as usize;
        match bind {
            ir::Bind::Perm(perm) => {
                if let Some(r) = recv {
                    if let Some(&p) = perm.first() {
                        out[p as usize] = Some(r);
                    }
                }
                for (i, x) in c.args.iter().enumerate() {
                    let v = self.eval(x)?;
                    let p = perm[i + off] as usize;
                    if p < n_params {
                        out[p] = Some(v);
                    }
                }
                Ok(out)
            }
            ir::Bind::Error(msg) => {
                for x in c.args.iter() {
                    self.eval(x)?;
                }
                Err(fault(ErrorKind::ArityError, msg.as_str()))
            }
        }
    }

    fn eval_builtin_args(
        &mut self,
        c: &Call,
        b: &'static builtins::Builtin,
        bind: &ir::Bind,
        recv: Option<Value>,
    ) -> R<Args> {
        let mut args = Args::default();
        args.fixed.resize(b.params.len(), None);
        let off = recv.is_some() as usize;
        match bind {
            ir::Bind::Perm(perm) => {
                if let Some(r) = recv {
                    match perm.first() {
                        Some(255) => args.rest.push(r),
                        Some(&p) => args.fixed[p as usize] = Some(r),
                        None => {}
                    }
                }
                for (i, x) in c.args.iter().enumerate() {
                    let v = self.eval(x)?;
                    match perm[i + off] {
                        255 => args.rest.push(v),
                        p => args.fixed[p as usize] = Some(v),
                    }
                }
                Ok(args)
            }
            ir::Bind::Error(msg) => {
                for x in c.args.iter() {
                    self.eval(x)?;
                }
                Err(fault(ErrorKind::ArityError, msg.as_str()))
            }
        }
    }

    fn eval_lambda_arg(&mut self, c: &Call) -> R {
        let mut vals = Vec::with_capacity(c.args.len());
        for x in c.args.iter() {
            vals.push(self.eval(x)?);
        }
        if c.args.len() != 1 || c.names[0].is_some() {
            return Err(fault(
                ErrorKind::ArityError,
                format!(
                    "a lambda takes exactly 1 positional argument but {} were given",
                    c.args.len()
                ),
            ));
        }
        Ok(vals.pop().unwrap_or(Value::Null))
    }

    pub(crate) fn call_user(
        &mut self,
        f: &'a FnCode,
        mut args: smallvec::SmallVec<[Option<Value>; 4]>,
        span: Span,
    ) -> R {
        self.enter_call(f.display.clone(), span)?;
        let base = self.stack.len();
        self.stack.resize(base + f.n_slots as usize, None);
        let saved = self.base;
        self.base = base;
        let r = (|| {
            for (i, p) in f.params.iter().enumerate() {
                let v = match args[i].take() {
                    Some(v) if p.ty.is_any() => v,
                    Some(v) => p.ty.conform(v).map_err(|m| {
                        type_error(format!("argument `{}` of `{}`: {m}", p.name, f.name))
                    })?,
                    None if p.optional => Value::Null,
                    None => {
                        return Err(fault(
                            ErrorKind::ArityError,
                            format!("`{}` needs a value for parameter `{}`", f.name, p.name),
                        ));
                    }
                };
                self.stack[base + p.slot as usize] = Some(v);
            }
            let v = match self.exec_block(&f.body) {
                Ok(v) | Err(Flow::Return(v)) => v,
                Err(e) => return Err(e),
            };
            match &f.ret {
                Some(t) if !t.is_any() => t.conform(v).map_err(|m| {
                    let mut fl = type_error(format!(
                        "`{}` returns a value that does not conform to {t}: {m}",
                        f.name
                    ));
                    if let Flow::Err(r) = &mut fl {
                        r.location = Some(self.location(f.span));
                        r.stack = Some(self.snapshot_stack(f.span));
                    }
                    fl
                }),
                _ => Ok(v),
            }
        })();
        self.base = saved;
        self.stack.truncate(base);
        self.leave_call();
        match r {
            Err(Flow::Break) | Err(Flow::Continue) => {
                Err(fault(ErrorKind::InternalFault, "`break` outside of a loop"))
            }
            r => r,
        }
    }

    pub(crate) fn call_lambda(&mut self, l: &Arc<Lambda>, arg: Value, span: Span) -> R {
        let code: &LambdaCode = &l.code;
        self.enter_call(Str::from("lambda"), span)?;
        let base = self.stack.len();
        self.stack.resize(base + code.n_slots as usize, None);
        if let Some(p) = code.param {
            self.stack[base + p as usize] = Some(arg);
        }
        for (i, (_, inner)) in code.captures.iter().enumerate() {
            self.stack[base + *inner as usize] = l.captures[i].clone();
        }
        let saved = self.base;
        self.base = base;
        let r = self.eval(&code.body);
        self.base = saved;
        self.stack.truncate(base);
        self.leave_call();
        match r {
            Ok(v) | Err(Flow::Return(v)) => Ok(v),
            Err(Flow::Break) | Err(Flow::Continue) => {
                Err(fault(ErrorKind::InternalFault, "`break` outside of a loop"))
            }
            Err(e) => Err(e),
        }
    }

    /// Calls a lambda value from a builtin (`map`, `filter`, …).
    pub(crate) fn apply(&mut self, f: &Value, arg: Value, what: &str) -> R {
        match f {
            Value::Lambda(l) => {
                let span = self.current_span();
                self.call_lambda(l, arg, span)
            }
            other => Err(type_error(format!(
                "`{what}` needs a lambda, found {}",
                other.type_name()
            ))),
        }
    }

    fn current_span(&self) -> Span {
        self.cur_span
    }

    fn call_method(
        &mut self,
        recv: Value,
        name: &Str,
        builtin: &Option<(&'static builtins::Builtin, ir::Bind)>,
        c: &Call,
        span: Span,
    ) -> R {
        if let Some((b, bind)) = builtin {
            let mut args = self.eval_builtin_args(c, b, bind, Some(recv))?;
            self.cur_span = span;
            return (b.f)(self, &mut args);
        }
        if let Value::Map(m) = &recv {
            if let Some(Value::Lambda(l)) = m.get(name.as_str()) {
                let l = l.clone();
                let arg = self.eval_lambda_arg(c)?;
                return self.call_lambda(&l, arg, span);
            }
        }
        for x in c.args.iter() {
            self.eval(x)?;
        }
        Err(type_error(format!(
            "no method `{}` on {}",
            name,
            recv.type_name()
        )))
    }

    // ---------------------------------------------------------------------------------
    // Actions and intrinsics
    // ---------------------------------------------------------------------------------

    pub(crate) fn perform_action(
        &mut self,
        name: String,
        category: Option<ActionCategory>,
        kind: ActionKind,
        args: Vec<Value>,
        named: Vec<(String, Value)>,
        span: Span,
    ) -> R {
        if self.fx.is_guard() {
            return Err(type_error(format!(
                "a policy guard cannot perform the action `{name}`"
            )));
        }
        if category == Some(ActionCategory::InvokeAgent)
            && name == "delegate"
            && self.fx.delegation_depth() >= 8
        {
            let mut f = Fault::new(
                ErrorKind::ActionFailed,
                "delegation depth is limited to 8; this delegate was not run",
            );
            f.action = Some(name);
            return Err(f.into());
        }
        let req = ActionRequest {
            name: name.clone(),
            category,
            kind,
            args,
            named,
            location: self.source_location(span),
            env: self.fx.env(),
            agent: self.fx.agent(),
            execution: self.fx.execution(),
            delegation_depth: self.fx.delegation_depth(),
            rules: self.fx.rules(),
        };
        let deadline = self.deadline;
        match self.fx.action(req, deadline) {
            ActionReply::Ok(mut v) => {
                crate::value::adopt(&mut v);
                v.check_depth()?;
                self.check_heap()?;
                Ok(v)
            }
            ActionReply::Err(e) => Err(Flow::Err(Box::new(action_error(e, &name)))),
            ActionReply::Abort(kind, msg, budget) => {
                let mut r = Raised::from_fault(Fault::new(kind, msg));
                if let Some(b) = &budget {
                    r.details = budget_details(b);
                }
                r.budget = budget;
                Err(Flow::Err(Box::new(r)))
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Statements
    // ---------------------------------------------------------------------------------

    pub(crate) fn exec_block(&mut self, b: &Block) -> R {
        let n = b.stmts.len();
        for (i, s) in b.stmts.iter().enumerate() {
            if i + 1 == n && b.last_valued && b.tail.is_none() {
                return self.exec_stmt(s);
            }
            self.exec_stmt(s)?;
        }
        match &b.tail {
            Some(t) => self.eval(t),
            None => Ok(Value::Null),
        }
    }

    #[inline]
    fn exec_stmt(&mut self, s: &Stmt) -> R {
        let r = match self.tick() {
            Ok(()) => self.exec_stmt_kind(s),
            Err(f) => Err(f),
        };
        match r {
            Ok(v) => Ok(v),
            Err(f) => Err(self.locate(f, s.span)),
        }
    }

    fn set_slot(&mut self, slot: u32, v: Value) {
        let i = self.base + slot as usize;
        self.stack[i] = Some(v);
    }

    fn exec_stmt_kind(&mut self, s: &Stmt) -> R {
        match &s.kind {
            StmtKind::Let { slot, ty, value } => {
                let mut v = self.eval(value)?;
                if let Some(t) = ty {
                    v = t
                        .conform(v)
                        .map_err(|m| type_error(format!("cannot bind the variable: {m}")))?;
                }
                v.check_depth()?;
                self.set_slot(*slot, v);
                Ok(Value::Null)
            }
            StmtKind::Expr(e) => {
                self.eval(e)?;
                Ok(Value::Null)
            }
            StmtKind::Assign { place, value, ty } => {
                self.assign(place, value, ty.as_ref())?;
                Ok(Value::Null)
            }
            StmtKind::Compound {
                place,
                op,
                value,
                in_place,
                ty,
            } => {
                self.compound(place, *op, value, *in_place, ty.as_ref())?;
                Ok(Value::Null)
            }
            StmtKind::If(ifs) => self.exec_if(ifs),
            StmtKind::For { slot, iter, body } => {
                let it = self.eval(iter)?;
                self.exec_for(*slot, it, body)?;
                Ok(Value::Null)
            }
            StmtKind::While { cond, body } => {
                loop {
                    self.tick()?;
                    if !self.eval(cond)?.truthy() {
                        break;
                    }
                    match self.exec_block(body) {
                        Ok(_) | Err(Flow::Continue) => {}
                        Err(Flow::Break) => break,
                        Err(e) => return Err(e),
                    }
                }
                Ok(Value::Null)
            }
            StmtKind::Match { scrutinee, arms } => {
                let v = self.eval(scrutinee)?;
                for arm in arms.iter() {
                    let hit = match &arm.pattern {
                        ArmPattern::Wild => true,
                        ArmPattern::Null => v.is_null(),
                        ArmPattern::Lit(l) => values_equal(l, &v),
                        ArmPattern::Bind(slot) => {
                            self.set_slot(*slot, v.clone());
                            true
                        }
                    };
                    if hit {
                        return match &arm.body {
                            ArmBody::Block(b) => self.exec_block(b),
                            ArmBody::Expr(e) => self.eval(e),
                        };
                    }
                }
                Ok(Value::Null)
            }
            StmtKind::Try { body, catches } => match self.exec_block(body) {
                Err(Flow::Err(r)) if r.kind.is_catchable() => {
                    for c in catches.iter() {
                        let hit = match &c.kind {
                            None => true,
                            Some(k) if k.as_str() == "Error" => true,
                            Some(k) if k.as_str() == "ActionFailed" => {
                                r.action_failure || r.kind == ErrorKind::ActionFailed
                            }
                            Some(k) => r.kind.as_str() == k.as_str(),
                        };
                        if hit {
                            if let Some(slot) = c.slot {
                                let ev = r.to_value();
                                self.set_slot(slot, ev);
                            }
                            return self.exec_block(&c.body);
                        }
                    }
                    Err(Flow::Err(r))
                }
                other => other,
            },
            StmtKind::Return(e) => {
                let v = match e {
                    Some(e) => self.eval(e)?,
                    None => Value::Null,
                };
                Err(Flow::Return(v))
            }
            StmtKind::Break => Err(Flow::Break),
            StmtKind::Continue => Err(Flow::Continue),
        }
    }

    fn exec_if(&mut self, ifs: &IfStmt) -> R {
        let taken = match &ifs.cond {
            Cond::Expr(e) => self.eval(e)?.truthy(),
            Cond::Let { pattern, value } => {
                let v = self.eval(value)?;
                self.match_pattern(pattern, &v)
            }
        };
        if taken {
            self.exec_block(&ifs.then_block)
        } else {
            match &ifs.else_branch {
                None => Ok(Value::Null),
                Some(ElseStmt::Block(b)) => self.exec_block(b),
                Some(ElseStmt::If(next, span)) => {
                    self.tick()?;
                    self.exec_if(next).map_err(|f| self.locate(f, *span))
                }
            }
        }
    }

    fn match_pattern(&mut self, p: &Pattern, v: &Value) -> bool {
        match p {
            Pattern::Wild => true,
            Pattern::Null => v.is_null(),
            Pattern::Bind(slot) => {
                self.set_slot(*slot, v.clone());
                true
            }
            Pattern::Some(inner) => !v.is_null() && self.match_pattern(inner, v),
            Pattern::Ok(inner) => self.match_pattern(inner, v),
            Pattern::Ctor { name, args } => {
                let Value::Map(m) = v else { return false };
                if !matches!(m.get("kind"), Some(Value::Str(k)) if k.as_str() == name.as_str()) {
                    return false;
                }
                match args.len() {
                    0 => true,
                    1 => match m.get("value") {
                        Some(x) => {
                            let x = x.clone();
                            self.match_pattern(&args[0], &x)
                        }
                        None => false,
                    },
                    n => match m.get("values") {
                        Some(Value::List(l)) if l.len() == n => {
                            let l = l.clone();
                            args.iter()
                                .zip(l.as_slice())
                                .all(|(p, x)| self.match_pattern(p, x))
                        }
                        _ => false,
                    },
                }
            }
        }
    }

    fn exec_for(&mut self, slot: Option<u32>, it: Value, body: &Block) -> R<()> {
        macro_rules! run_body {
            ($v:expr) => {{
                self.tick()?;
                if let Some(s) = slot {
                    self.set_slot(s, $v);
                }
                match self.exec_block(body) {
                    Ok(_) | Err(Flow::Continue) => {}
                    Err(Flow::Break) => break,
                    Err(e) => return Err(e),
                }
            }};
        }
        match it {
            Value::List(l) => {
                for i in 0..l.len() {
                    run_body!(l.as_slice()[i].clone());
                }
            }
            Value::Map(m) => {
                for i in 0..m.len() {
                    let k = m
                        .entries()
                        .get_index(i)
                        .map(|(k, _)| k.clone())
                        .unwrap_or_else(|| Str::from(""));
                    run_body!(Value::Str(k));
                }
            }
            Value::Str(s) => {
                for ch in s.as_str().chars() {
                    let mut buf = [0u8; 4];
                    run_body!(Value::str(&*ch.encode_utf8(&mut buf)));
                }
            }
            other => {
                return Err(type_error(format!(
                    "cannot iterate over {}",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }
}

fn budget_details(b: &BudgetInfo) -> Value {
    Value::map([
        ("budget", Value::str(b.budget)),
        ("limit", Value::Int(b.limit.min(i64::MAX as u64) as i64)),
        ("used", Value::Int(b.used.min(i64::MAX as u64) as i64)),
    ])
}

fn name_error(name: &Str) -> Flow {
    fault(ErrorKind::NameError, format!("`{name}` is not defined"))
}

/// Splits service arguments bound in parameter order into positional (up to the last one
/// given) and named-only ones.
fn split_service_args(
    s: &builtins::Service,
    mut args: smallvec::SmallVec<[Option<Value>; 4]>,
) -> (Vec<Value>, Vec<(String, Value)>) {
    let mut pos = Vec::new();
    let mut named = Vec::new();
    let last_pos = s
        .params
        .iter()
        .enumerate()
        .filter(|(i, p)| p.kind != builtins::ParamKind::Named && args[*i].is_some())
        .map(|(i, _)| i)
        .max();
    for (i, p) in s.params.iter().enumerate() {
        match p.kind {
            builtins::ParamKind::Named => {
                if let Some(v) = args[i].take() {
                    named.push((p.name.to_string(), v));
                }
            }
            _ => {
                if last_pos.is_some_and(|l| i <= l) {
                    pos.push(args[i].take().unwrap_or(Value::Null));
                }
            }
        }
    }
    (pos, named)
}

/// Turns a host's action error into a raised error (GRAMMAR 4.9, `reported_kind` rule).
pub(crate) fn action_error(e: ActionError, action: &str) -> Raised {
    let (kind, message, details) = match e {
        ActionError::PolicyDenied { reason } => (ErrorKind::PolicyDenied, reason, Value::Null),
        ActionError::ApprovalDenied { reason } => (ErrorKind::ApprovalDenied, reason, Value::Null),
        ActionError::UnknownAction { name } => (
            ErrorKind::UnknownAction,
            format!("no tool, MCP tool or agent named `{name}`"),
            Value::Null,
        ),
        ActionError::Failed {
            kind,
            message,
            details,
        } => {
            let details = details
                .as_ref()
                .map(|d| crate::value::from_json(d).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            match kind {
                None => (ErrorKind::ActionFailed, message, details),
                Some(k) => {
                    let parsed = ErrorKind::from_name(&k);
                    if parsed.is_reserved() || k.is_empty() {
                        let mut m = match details {
                            Value::Map(m) => m,
                            Value::Null => Map::new(),
                            other => {
                                let mut m = Map::new();
                                m.make_mut().set(Str::from("details"), other);
                                m
                            }
                        };
                        m.make_mut().set(Str::from("reported_kind"), Value::str(k));
                        (ErrorKind::ActionFailed, message, Value::Map(m))
                    } else {
                        (parsed, message, details)
                    }
                }
            }
        }
        ActionError::Timeout { message } => (ErrorKind::ActionTimeout, message, Value::Null),
        ActionError::SandboxUnavailable { message } => {
            (ErrorKind::SandboxUnavailable, message, Value::Null)
        }
        e @ ActionError::ComponentMissing { .. } => {
            let ActionError::ComponentMissing { component, .. } = &e else {
                unreachable!()
            };
            let d = Value::map([("missing_component", Value::str(component.as_str()))]);
            (ErrorKind::ActionFailed, e.to_string(), d)
        }
    };
    let mut r = Raised::from_fault(Fault::new(kind, message).with_details(details));
    r.action = Some(Str::from(action));
    r.action_failure = true;
    r
}

/// `o.name` (GRAMMAR 4.5.3).
pub(crate) fn member(o: &Value, name: &str) -> R {
    match o {
        Value::Map(m) => match m.get(name) {
            Some(v) => Ok(v.clone()),
            None if name == "length" => Ok(Value::Int(m.len() as i64)),
            None => Ok(Value::Null),
        },
        Value::List(l) if name == "length" => Ok(Value::Int(l.len() as i64)),
        Value::Str(s) if name == "length" => Ok(Value::Int(s.char_len() as i64)),
        Value::Error(e) => Ok(e.member(name)),
        Value::Secret(s) => match s.reveal() {
            Value::Map(m) => Ok(m
                .get(name)
                .map(|v| Value::secret(v.clone()))
                .unwrap_or(Value::Null)),
            Value::Str(t) if name == "length" => Ok(Value::Int(t.char_len() as i64)),
            _ => Err(type_error(format!(
                "a secret string has no member `{name}`"
            ))),
        },
        Value::Null => Err(fault(
            ErrorKind::NullError,
            format!("cannot read `{name}` of null"),
        )),
        other => Err(type_error(format!(
            "a {} has no member `{name}`",
            other.type_name()
        ))),
    }
}

/// Normalises a possibly negative index into `0..len`.
pub(crate) fn norm_index(i: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let j = if i < 0 { i + len } else { i };
    (0..len).contains(&j).then_some(j as usize)
}

/// `o[i]` (GRAMMAR 4.5.3).
pub(crate) fn index(o: &Value, i: &Value) -> R {
    match (o, i) {
        (Value::List(l), Value::Int(n)) => match norm_index(*n, l.len()) {
            Some(j) => Ok(l.as_slice()[j].clone()),
            None => Err(fault(
                ErrorKind::IndexError,
                format!("index {n} is out of range for a list of length {}", l.len()),
            )),
        },
        (Value::Map(m), Value::Str(k)) => Ok(m.get(k.as_str()).cloned().unwrap_or(Value::Null)),
        (Value::Str(s), Value::Int(n)) => {
            let st = s.as_str();
            let len = s.char_len();
            match norm_index(*n, len) {
                Some(j) => {
                    let c = if st.is_ascii() {
                        st[j..j + 1].to_string()
                    } else {
                        st.chars().nth(j).map(String::from).unwrap_or_default()
                    };
                    Ok(Value::str(c))
                }
                None => Err(fault(
                    ErrorKind::IndexError,
                    format!("index {n} is out of range for a string of length {len}"),
                )),
            }
        }
        (Value::Secret(s), Value::Str(k)) => match s.reveal() {
            Value::Map(m) => Ok(m
                .get(k.as_str())
                .map(|v| Value::secret(v.clone()))
                .unwrap_or(Value::Null)),
            _ => Err(type_error("only a secret map can be indexed by a string")),
        },
        (Value::Null, _) => Err(fault(ErrorKind::NullError, "cannot index null")),
        (o, i) => Err(type_error(format!(
            "a {} cannot be indexed by a {}",
            o.type_name(),
            i.type_name()
        ))),
    }
}
