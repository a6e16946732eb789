//! The compiled form of agent bodies, functions, lambdas and guards: the AST with every
//! name resolved to a frame slot or a call target, and every call's arguments bound to
//! parameter positions. Built once at load time by [`crate::compile`]; immutable and
//! shared (`Arc`) by every execution.

use crate::builtins::{Builtin, Service};
use crate::span::Span;
use crate::types::Ty;
use crate::value::{BinOp, Str, Value};
use std::sync::Arc;

/// An expression with its source span.
#[derive(Debug)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// Comparison and membership operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
}

#[derive(Debug)]
pub(crate) enum ExprKind {
    Const(Value),
    /// A variable in the current frame; `None` in the slot is a `NameError`.
    Local {
        slot: u32,
        name: Str,
    },
    /// A name that resolves to nothing: always a `NameError` when evaluated.
    Undefined(Str),
    /// `vault://path`: a `secret_read` action.
    Vault(Str),
    Record(Box<[(Str, Expr)]>),
    Array(Box<[Expr]>),
    Lambda(Arc<LambdaCode>),
    If(Box<IfExpr>),
    And(Box<[Expr; 2]>),
    Or(Box<[Expr; 2]>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Arith(BinOp, Box<[Expr; 2]>),
    Cmp(CmpOp, Box<[Expr; 2]>),
    Member(Box<Expr>, Str),
    Index(Box<[Expr; 2]>),
    Call(Box<Call>),
    /// A construct the checker rejects (E108); raises `TypeError` if ever run.
    Fail(Str),
}

#[derive(Debug)]
pub(crate) struct IfExpr {
    pub cond: Expr,
    pub then_block: Block,
    pub else_branch: ElseExpr,
}

#[derive(Debug)]
pub(crate) enum ElseExpr {
    If(Box<IfExpr>),
    Block(Block),
}

/// How written arguments map to parameters.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    /// `perm[i]` is the parameter index of written argument `i`.
    Perm(Box<[u8]>),
    /// The call cannot bind: raise `ArityError` with this message after evaluating the
    /// arguments (the checker reported E110/E111 already).
    Error(Str),
}

#[derive(Debug)]
pub(crate) struct Call {
    pub target: Target,
    /// Arguments in written order (evaluated left to right).
    pub args: Box<[Expr]>,
    /// The name of each named argument (`None` for positional ones).
    pub names: Box<[Option<Str>]>,
}

#[derive(Debug)]
pub(crate) enum Target {
    /// A function of the file (agent-local or top level).
    User { func: u32, bind: Bind },
    /// A pure builtin or intrinsic.
    Builtin { b: &'static Builtin, bind: Bind },
    /// A builtin service (action with a known category).
    Service { s: &'static Service, bind: Bind },
    /// An unresolved (or qualified) name: a tool action resolved by the host.
    Tool(Str),
    /// A variable that may hold a lambda; otherwise the fallback target (4.6 1.1).
    VarThen { slot: u32, fallback: Box<Target> },
    /// `recv.m(…)` on a value.
    Method {
        recv: Expr,
        name: Str,
        builtin: Option<(&'static Builtin, Bind)>,
    },
    /// `place.m(…)` where `m` mutates (`push`, `pop`, …).
    MutMethod { place: Place, name: Str },
    /// `a.m(…)` where `a` is a variable that may be unset: a method on its value when
    /// set, else the qualified name `a.m`.
    MethodOrQualified {
        slot: u32,
        recv: Expr,
        name: Str,
        builtin: Option<(&'static Builtin, Bind)>,
        qualified: Box<Target>,
    },
    /// Any other callee: must evaluate to a lambda.
    Dynamic(Expr),
}

/// An assignment target: a variable and a path of members / indexes.
#[derive(Debug)]
pub(crate) struct Place {
    pub root: u32,
    pub root_name: Str,
    pub path: Box<[PathStep]>,
}

#[derive(Debug)]
pub(crate) enum PathStep {
    Member(Str),
    Index(Expr),
}

#[derive(Debug)]
pub(crate) struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Debug)]
pub(crate) enum StmtKind {
    Let {
        slot: u32,
        ty: Option<Ty>,
        value: Expr,
    },
    /// `let _ = e;` and expression statements.
    Expr(Expr),
    Assign {
        place: Place,
        value: Expr,
        ty: Option<Ty>,
    },
    /// `place op= value`; `in_place` when the value cannot mutate the place (so the
    /// place may be updated in place after evaluating the value).
    Compound {
        place: Place,
        op: BinOp,
        value: Expr,
        in_place: bool,
        ty: Option<Ty>,
    },
    If(Box<IfStmt>),
    For {
        slot: Option<u32>,
        iter: Expr,
        body: Block,
    },
    While {
        cond: Expr,
        body: Block,
    },
    Match {
        scrutinee: Expr,
        arms: Box<[Arm]>,
    },
    Try {
        body: Block,
        catches: Box<[Catch]>,
    },
    Return(Option<Expr>),
    Break,
    Continue,
}

#[derive(Debug)]
pub(crate) struct IfStmt {
    pub cond: Cond,
    pub then_block: Block,
    pub else_branch: Option<ElseStmt>,
}

#[derive(Debug)]
pub(crate) enum Cond {
    Expr(Expr),
    Let { pattern: Pattern, value: Expr },
}

#[derive(Debug)]
pub(crate) enum ElseStmt {
    If(Box<IfStmt>, Span),
    Block(Block),
}

#[derive(Debug)]
pub(crate) enum Pattern {
    Wild,
    Null,
    Bind(u32),
    Some(Box<Pattern>),
    Ok(Box<Pattern>),
    Ctor { name: Str, args: Box<[Pattern]> },
}

#[derive(Debug)]
pub(crate) struct Arm {
    pub pattern: ArmPattern,
    pub body: ArmBody,
}

#[derive(Debug)]
pub(crate) enum ArmPattern {
    Lit(Value),
    Wild,
    Null,
    Bind(u32),
}

#[derive(Debug)]
pub(crate) enum ArmBody {
    Block(Block),
    Expr(Expr),
}

#[derive(Debug)]
pub(crate) struct Catch {
    pub kind: Option<Str>,
    pub slot: Option<u32>,
    pub body: Block,
}

#[derive(Debug, Default)]
pub(crate) struct Block {
    pub stmts: Box<[Stmt]>,
    pub tail: Option<Box<Expr>>,
    /// Whether the last statement is an `if`/`match`/`try` whose value is the block's
    /// value (GRAMMAR 4.4).
    pub last_valued: bool,
}

/// A parameter of a function or agent.
#[derive(Debug, Clone)]
pub(crate) struct ParamCode {
    pub name: Str,
    pub slot: u32,
    pub ty: Ty,
    /// Option-like type: may be left out (binds null).
    pub optional: bool,
}

/// A compiled function.
#[derive(Debug)]
pub(crate) struct FnCode {
    pub name: Str,
    /// How it appears in stack traces (`function line_total`).
    pub display: Str,
    pub params: Box<[ParamCode]>,
    pub ret: Option<Ty>,
    pub n_slots: u32,
    pub body: Block,
    pub span: Span,
}

/// A compiled lambda: slot 0 is the parameter (unless it is `_`), then the captures.
#[derive(Debug)]
pub struct LambdaCode {
    pub(crate) param: Option<u32>,
    /// `(slot in the creating frame, slot in the lambda's frame)`.
    pub(crate) captures: Box<[(u32, u32)]>,
    pub(crate) n_slots: u32,
    pub(crate) body: Expr,
}
