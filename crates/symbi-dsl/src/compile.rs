//! AST → IR: resolves every name to a frame slot or a call target (GRAMMAR 4.3, 4.6),
//! binds call arguments to parameter positions, resolves declared types, and decides
//! where compound assignments may update in place.
//!
//! Scoping: a function (or the agent, for all its `with` blocks together) has one
//! function-level scope holding its parameters; every other block opens a nested scope.
//! Names that are assigned without `let` anywhere in a body get a slot in its
//! function-level scope up front, so that a read before the assignment (an earlier loop
//! iteration, a `catch` after a `try`) sees the same variable; an unset slot reads as a
//! `NameError`. Lambdas capture the variables they mention by value.

use crate::ast;
use crate::builtins::{self, BuiltinClass, ParamKind};
use crate::interp::ir::*;
use crate::types::{StructTy, Ty};
use crate::value::{BinOp, Str, Value};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// File-level tables the compiler resolves against.
pub(crate) struct Tables {
    pub top_fns: HashMap<String, u32>,
    /// Name and parameters (name, required/optional) of every function, by index.
    pub fn_sigs: Vec<(String, Vec<(String, ParamKind)>)>,
    /// For each agent (by name): its own functions.
    pub agent_fns: HashMap<String, HashMap<String, u32>>,
    pub memories: std::collections::HashSet<String>,
    pub types: HashMap<String, Ty>,
}

impl Tables {
    /// Builds the tables of a program: function indices in the order
    /// [`collect_functions`] returns, types, memory store names.
    pub(crate) fn new(p: &ast::Program) -> (Tables, Vec<(Option<String>, &ast::Function)>) {
        let mut top_fns = HashMap::new();
        let mut agent_fns: HashMap<String, HashMap<String, u32>> = HashMap::new();
        let mut fns = Vec::new();
        for item in &p.items {
            if let ast::Item::Function(f) = item {
                let idx = fns.len() as u32;
                fns.push((None, f));
                top_fns.entry(f.name.name.to_string()).or_insert(idx);
            }
        }
        for item in &p.items {
            if let ast::Item::Agent(a) = item {
                let map = agent_fns.entry(a.name.name.to_string()).or_default();
                for ai in &a.items {
                    if let ast::AgentItem::Function(f) = ai {
                        let idx = fns.len() as u32;
                        fns.push((Some(a.name.name.to_string()), f));
                        map.entry(f.name.name.to_string()).or_insert(idx);
                    }
                }
            }
        }
        let memories = p
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Memory(m) => Some(m.name.name.to_string()),
                _ => None,
            })
            .collect();
        let types = resolve_types(p);
        let fn_sigs = fns
            .iter()
            .map(|(_, f)| {
                let ps = f
                    .params
                    .iter()
                    .map(|p| {
                        let opt = resolve_type_with(&p.ty, &types).is_option_like();
                        (
                            p.name.name.to_string(),
                            if opt {
                                ParamKind::Optional
                            } else {
                                ParamKind::Required
                            },
                        )
                    })
                    .collect();
                (f.name.name.to_string(), ps)
            })
            .collect();
        (
            Tables {
                top_fns,
                fn_sigs,
                agent_fns,
                memories,
                types,
            },
            fns,
        )
    }
}

/// Resolves every `type` item (structs may refer to themselves and to each other).
fn resolve_types(p: &ast::Program) -> HashMap<String, Ty> {
    let mut structs: HashMap<String, (Arc<StructTy>, &ast::StructType)> = HashMap::new();
    let mut aliases: HashMap<String, &ast::Ident> = HashMap::new();
    for item in &p.items {
        if let ast::Item::Type(t) = item {
            let name = t.name.name.to_string();
            if structs.contains_key(&name) || aliases.contains_key(&name) {
                continue;
            }
            match &t.def {
                ast::TypeDefKind::Struct(st) => {
                    let fields = st
                        .fields
                        .iter()
                        .map(|f| (Str::from(f.name.name.as_str()), OnceLock::new()))
                        .collect();
                    structs.insert(
                        name.clone(),
                        (
                            Arc::new(StructTy {
                                name: Str::from(name.as_str()),
                                fields,
                            }),
                            st,
                        ),
                    );
                }
                ast::TypeDefKind::Alias(target) => {
                    aliases.insert(name, target);
                }
            }
        }
    }
    let mut out: HashMap<String, Ty> = HashMap::new();
    for (name, (st, _)) in &structs {
        out.insert(name.clone(), Ty::Struct(st.clone()));
    }
    // Aliases: follow the chain; a cycle resolves to Any.
    for name in aliases.keys() {
        let mut seen = vec![name.clone()];
        let mut cur = name.clone();
        let ty = loop {
            match aliases.get(&cur) {
                Some(t) => {
                    let next = t.name.to_string();
                    if seen.contains(&next) {
                        break Ty::Any;
                    }
                    if let Some(t) = out.get(&next).filter(|_| !aliases.contains_key(&next)) {
                        break t.clone();
                    }
                    if !aliases.contains_key(&next) {
                        break builtin_type(&next, &[], &HashMap::new()).unwrap_or(Ty::Any);
                    }
                    seen.push(next.clone());
                    cur = next;
                }
                None => break Ty::Any,
            }
        };
        out.insert(name.clone(), ty);
    }
    for (st, ast_st) in structs.values() {
        for (i, f) in ast_st.fields.iter().enumerate() {
            let t = resolve_type_with(&f.ty, &out);
            let _ = st.fields[i].1.set(t);
        }
    }
    out
}

fn builtin_type(name: &str, args: &[ast::TypeExpr], types: &HashMap<String, Ty>) -> Option<Ty> {
    let arg = |i: usize| {
        args.get(i)
            .map(|t| resolve_type_with(t, types))
            .unwrap_or(Ty::Any)
    };
    Some(match name {
        "String" => Ty::String,
        "int" => Ty::Int,
        "float" => Ty::Float,
        "bool" => Ty::Bool,
        "Any" | "JSON" => Ty::Any,
        "Null" => Ty::Null,
        "Duration" => Ty::Duration,
        "Size" => Ty::Size,
        "Array" | "List" => Ty::List(Box::new(arg(0))),
        "Map" => Ty::Map(Box::new(if args.len() >= 2 { arg(1) } else { Ty::Any })),
        "Option" | "Optional" | "Maybe" => Ty::Option(Box::new(arg(0))),
        "Result" => arg(0),
        _ => return None,
    })
}

/// Resolves a type expression: a `type` item of the file, then the built-in names; an
/// unknown name is `Any` (N301 is the checker's).
pub(crate) fn resolve_type_with(t: &ast::TypeExpr, types: &HashMap<String, Ty>) -> Ty {
    if let Some(ty) = types.get(t.name.name.as_str()) {
        return ty.clone();
    }
    builtin_type(t.name.name.as_str(), &t.args, types).unwrap_or(Ty::Any)
}

struct Ctx {
    scopes: Vec<Vec<(Str, u32)>>,
    implicit: HashMap<Str, u32>,
    captures: Vec<(u32, u32, Str)>,
    is_lambda: bool,
    n_slots: u32,
    /// Declared types of slots (typed `let`).
    slot_types: HashMap<u32, Ty>,
}

impl Ctx {
    fn new(is_lambda: bool) -> Ctx {
        Ctx {
            scopes: vec![Vec::new()],
            implicit: HashMap::new(),
            captures: Vec::new(),
            is_lambda,
            n_slots: 0,
            slot_types: HashMap::new(),
        }
    }
    fn alloc(&mut self) -> u32 {
        self.n_slots += 1;
        self.n_slots - 1
    }
    fn declare(&mut self, name: &str) -> u32 {
        let s = self.alloc();
        self.scopes
            .last_mut()
            .expect("a scope")
            .push((Str::from(name), s));
        s
    }
}

/// The compiler of one file.
pub(crate) struct Compiler<'t> {
    pub t: &'t Tables,
    ctxs: Vec<Ctx>,
    agent: Option<String>,
}

impl<'t> Compiler<'t> {
    pub(crate) fn new(t: &'t Tables) -> Self {
        Compiler {
            t,
            ctxs: Vec::new(),
            agent: None,
        }
    }

    pub(crate) fn ty(&self, t: &ast::TypeExpr) -> Ty {
        resolve_type_with(t, &self.t.types)
    }

    fn ctx(&mut self) -> &mut Ctx {
        self.ctxs.last_mut().expect("a context")
    }

    fn lookup_in(&mut self, i: usize, name: &str) -> Option<u32> {
        {
            let ctx = &self.ctxs[i];
            for scope in ctx.scopes.iter().rev() {
                if let Some((_, s)) = scope.iter().rev().find(|(n, _)| n.as_str() == name) {
                    return Some(*s);
                }
            }
            if !ctx.is_lambda {
                if let Some(s) = ctx.implicit.get(name) {
                    return Some(*s);
                }
            }
            if let Some((_, inner, _)) = ctx.captures.iter().find(|(_, _, n)| n.as_str() == name) {
                return Some(*inner);
            }
        }
        if self.ctxs[i].is_lambda && i > 0 {
            if let Some(outer) = self.lookup_in(i - 1, name) {
                let ctx = &mut self.ctxs[i];
                let inner = ctx.alloc();
                ctx.captures.push((outer, inner, Str::from(name)));
                return Some(inner);
            }
        }
        self.ctxs[i].implicit.get(name).copied()
    }

    fn lookup(&mut self, name: &str) -> Option<u32> {
        if name == "_" {
            return None;
        }
        let i = self.ctxs.len() - 1;
        self.lookup_in(i, name)
    }

    fn push_scope(&mut self) {
        self.ctx().scopes.push(Vec::new());
    }
    fn pop_scope(&mut self) {
        self.ctx().scopes.pop();
    }

    /// Starts a function-level context and pre-declares the implicit variables of `body`.
    fn begin(&mut self, is_lambda: bool, implicit_from: &[&ast::Block]) {
        let mut names = Vec::new();
        for b in implicit_from {
            assigned_names_block(b, &mut names);
        }
        self.begin_with(is_lambda, names);
    }

    fn begin_with(&mut self, is_lambda: bool, names: Vec<String>) {
        let mut ctx = Ctx::new(is_lambda);
        for n in names {
            if !ctx.implicit.contains_key(n.as_str()) {
                let s = ctx.alloc();
                ctx.implicit.insert(Str::from(n.as_str()), s);
            }
        }
        self.ctxs.push(ctx);
    }

    // ---------------------------------------------------------------------------------
    // Functions, agents, guards
    // ---------------------------------------------------------------------------------

    pub(crate) fn function(&mut self, owner: Option<&str>, f: &ast::Function) -> FnCode {
        self.agent = owner.map(str::to_string);
        self.begin(false, &[&f.body]);
        let params: Vec<ParamCode> = f
            .params
            .iter()
            .map(|p| {
                let ty = self.ty(&p.ty);
                let slot = self.ctx().declare(p.name.as_str());
                ParamCode {
                    name: Str::from(p.name.as_str()),
                    slot,
                    optional: ty.is_option_like(),
                    ty,
                }
            })
            .collect();
        let body = self.block_in_place(&f.body);
        let ctx = self.ctxs.pop().expect("context");
        let display = match owner {
            Some(a) => format!("function {a}.{}", f.name.name),
            None => format!("function {}", f.name.name),
        };
        FnCode {
            name: Str::from(f.name.as_str()),
            display: Str::from(display),
            params: params.into_boxed_slice(),
            ret: f.ret.as_ref().map(|t| self.ty(t)),
            n_slots: ctx.n_slots,
            body,
            span: f.span,
        }
    }

    /// Compiles an agent's parameters and `with` bodies (all in the agent scope).
    pub(crate) fn agent(&mut self, a: &ast::Agent) -> (Vec<ParamCode>, Vec<Block>, u32) {
        self.agent = Some(a.name.name.to_string());
        let bodies: Vec<&ast::Block> = a.with_blocks().map(|w| &w.body).collect();
        self.begin(false, &bodies);
        let params: Vec<ParamCode> = a
            .params()
            .iter()
            .map(|p| {
                let ty = self.ty(&p.ty);
                let slot = self.ctx().declare(p.name.as_str());
                ParamCode {
                    name: Str::from(p.name.as_str()),
                    slot,
                    optional: ty.is_option_like(),
                    ty,
                }
            })
            .collect();
        let blocks = bodies.iter().map(|b| self.block_in_place(b)).collect();
        let ctx = self.ctxs.pop().expect("context");
        (params, blocks, ctx.n_slots)
    }

    /// Compiles a policy guard (or pattern literal) in a context where `names` are
    /// pre-bound to slots 0.. in order. Returns the expression and the slot count.
    pub(crate) fn guard(
        &mut self,
        agent: Option<&str>,
        names: &[&str],
        e: &ast::Expr,
    ) -> (Expr, u32) {
        self.agent = agent.map(str::to_string);
        self.begin(false, &[]);
        for n in names {
            self.ctx().declare(n);
        }
        let ex = self.expr(e);
        let ctx = self.ctxs.pop().expect("context");
        (ex, ctx.n_slots)
    }

    // ---------------------------------------------------------------------------------
    // Blocks and statements
    // ---------------------------------------------------------------------------------

    fn block(&mut self, b: &ast::Block) -> Block {
        self.push_scope();
        let out = self.block_in_place(b);
        self.pop_scope();
        out
    }

    fn block_in_place(&mut self, b: &ast::Block) -> Block {
        let stmts: Vec<Stmt> = b.stmts.iter().map(|s| self.stmt(s)).collect();
        let tail = b.tail.as_ref().map(|t| Box::new(self.expr(t)));
        let last_valued = tail.is_none()
            && matches!(
                b.stmts.last(),
                Some(ast::Stmt::If(_) | ast::Stmt::Match(_) | ast::Stmt::Try(_))
            );
        Block {
            stmts: stmts.into_boxed_slice(),
            tail,
            last_valued,
        }
    }

    fn stmt(&mut self, s: &ast::Stmt) -> Stmt {
        let span = s.span();
        let kind = match s {
            ast::Stmt::Let(l) => {
                let value = self.expr(&l.value);
                let ty = l.ty.as_ref().map(|t| self.ty(t)).filter(|t| !t.is_any());
                if l.binder.is_wildcard() {
                    let slot = self.ctx().alloc();
                    StmtKind::Let { slot, ty, value }
                } else {
                    let slot = self.ctx().declare(l.binder.as_str());
                    if let Some(t) = &ty {
                        self.ctx().slot_types.insert(slot, t.clone());
                    }
                    StmtKind::Let { slot, ty, value }
                }
            }
            ast::Stmt::If(i) => StmtKind::If(Box::new(self.if_stmt(i))),
            ast::Stmt::For(f) => {
                let iter = self.expr(&f.iter);
                self.push_scope();
                let slot = if f.binder.is_wildcard() {
                    None
                } else {
                    Some(self.ctx().declare(f.binder.as_str()))
                };
                let body = self.block(&f.body);
                self.pop_scope();
                StmtKind::For { slot, iter, body }
            }
            ast::Stmt::While(w) => StmtKind::While {
                cond: self.expr(&w.cond),
                body: self.block(&w.body),
            },
            ast::Stmt::Match(m) => {
                let scrutinee = self.expr(&m.scrutinee);
                let arms = m
                    .arms
                    .iter()
                    .map(|arm| {
                        self.push_scope();
                        let pattern = match &arm.pattern {
                            ast::ArmPattern::Lit(l) => ArmPattern::Lit(lit_value(&l.kind)),
                            ast::ArmPattern::Wildcard(_) => ArmPattern::Wild,
                            ast::ArmPattern::Binding(i) if i.as_str() == "None" => ArmPattern::Null,
                            ast::ArmPattern::Binding(i) => {
                                ArmPattern::Bind(self.ctx().declare(i.as_str()))
                            }
                        };
                        let body = match &arm.body {
                            ast::ArmBody::Block(b) => ArmBody::Block(self.block(b)),
                            ast::ArmBody::Expr(e) => ArmBody::Expr(self.expr(e)),
                        };
                        self.pop_scope();
                        Arm { pattern, body }
                    })
                    .collect();
                StmtKind::Match { scrutinee, arms }
            }
            ast::Stmt::Try(t) => {
                let body = self.block(&t.body);
                let catches = t
                    .catches
                    .iter()
                    .map(|c| {
                        self.push_scope();
                        let slot = if c.binding.is_wildcard() {
                            None
                        } else {
                            Some(self.ctx().declare(c.binding.as_str()))
                        };
                        let body = self.block(&c.body);
                        self.pop_scope();
                        Catch {
                            kind: c.kind.as_ref().map(|k| Str::from(k.as_str())),
                            slot,
                            body,
                        }
                    })
                    .collect();
                StmtKind::Try { body, catches }
            }
            ast::Stmt::Return(r) => StmtKind::Return(r.value.as_ref().map(|e| self.expr(e))),
            ast::Stmt::Break(_) => StmtKind::Break,
            ast::Stmt::Continue(_) => StmtKind::Continue,
            ast::Stmt::Assign(a) => self.assign(a),
            ast::Stmt::Expr(e) => StmtKind::Expr(self.expr(&e.expr)),
        };
        Stmt { kind, span }
    }

    fn if_stmt(&mut self, i: &ast::IfStmt) -> IfStmt {
        self.push_scope();
        let cond = match &i.cond {
            ast::Cond::Expr(e) => Cond::Expr(self.expr(e)),
            ast::Cond::Let { pattern, value, .. } => {
                let value = self.expr(value);
                let pattern = self.pattern(pattern);
                Cond::Let { pattern, value }
            }
        };
        let then_block = self.block(&i.then_block);
        self.pop_scope();
        let else_branch = i.else_branch.as_ref().map(|e| match e {
            ast::ElseBranch::If(next) => ElseStmt::If(Box::new(self.if_stmt(next)), next.span),
            ast::ElseBranch::Block(b) => ElseStmt::Block(self.block(b)),
        });
        IfStmt {
            cond,
            then_block,
            else_branch,
        }
    }

    fn pattern(&mut self, p: &ast::Pattern) -> Pattern {
        match p {
            ast::Pattern::Wildcard(_) => Pattern::Wild,
            ast::Pattern::Binding(i) if i.as_str() == "None" => Pattern::Null,
            ast::Pattern::Binding(i) => Pattern::Bind(self.ctx().declare(i.as_str())),
            ast::Pattern::Ctor { name, args, .. } => match (name.as_str(), args.len()) {
                ("Some", 1) => Pattern::Some(Box::new(self.pattern(&args[0]))),
                ("Ok", 1) => Pattern::Ok(Box::new(self.pattern(&args[0]))),
                _ => Pattern::Ctor {
                    name: Str::from(name.as_str()),
                    args: args.iter().map(|a| self.pattern(a)).collect(),
                },
            },
        }
    }

    fn place(&mut self, e: &ast::Expr) -> Option<Place> {
        let mut steps = Vec::new();
        let mut cur = e;
        loop {
            match &cur.kind {
                ast::ExprKind::Var(name) => {
                    let root = match self.lookup(name) {
                        Some(s) => s,
                        // Not assignable (e.g. `_`): a slot that is never set (NameError).
                        None => self.ctx().alloc(),
                    };
                    steps.reverse();
                    return Some(Place {
                        root,
                        root_name: Str::from(name.as_str()),
                        path: steps.into_boxed_slice(),
                    });
                }
                ast::ExprKind::Member { object, name } => {
                    steps.push(PathStep::Member(Str::from(name.as_str())));
                    cur = object;
                }
                ast::ExprKind::Index { object, index } => {
                    steps.push(PathStep::Index(self.expr(index)));
                    cur = object;
                }
                _ => return None,
            }
        }
    }

    fn assign(&mut self, a: &ast::AssignStmt) -> StmtKind {
        // Peephole: `x = x + e` is `x += e` when `e` cannot touch `x` (same result, but
        // appends in place).
        let (op, value_ast) = match (a.op.binary(), &a.value.kind) {
            (None, ast::ExprKind::Binary { op, lhs, rhs })
                if lhs.as_var().is_some()
                    && lhs.as_var() == a.target.as_var()
                    && matches!(
                        op,
                        ast::BinaryOp::Add | ast::BinaryOp::Sub | ast::BinaryOp::Mul
                    )
                    && !may_mutate(rhs) =>
            {
                (Some(binop(*op).expect("arith")), &**rhs)
            }
            (op, _) => (op.map(|o| binop(o).expect("arith")), &a.value),
        };
        let Some(place) = self.place(&a.target) else {
            let value = self.expr(&a.value);
            return StmtKind::Expr(Expr {
                kind: ExprKind::Array(
                    vec![
                        value,
                        Expr {
                            kind: ExprKind::Fail(Str::from("invalid assignment target")),
                            span: a.target.span,
                        },
                    ]
                    .into_boxed_slice(),
                ),
                span: a.span,
            });
        };
        let ty = if place.path.is_empty() {
            self.ctx().slot_types.get(&place.root).cloned()
        } else {
            None
        };
        let value = self.expr(value_ast);
        match op {
            None => StmtKind::Assign { place, value, ty },
            Some(op) => StmtKind::Compound {
                place,
                op,
                in_place: !may_mutate(value_ast),
                value,
                ty,
            },
        }
    }

    // ---------------------------------------------------------------------------------
    // Expressions
    // ---------------------------------------------------------------------------------

    pub(crate) fn expr(&mut self, e: &ast::Expr) -> Expr {
        let span = e.span;
        let kind = match &e.kind {
            ast::ExprKind::Lit(l) => ExprKind::Const(lit_value(l)),
            ast::ExprKind::Vault(p) => ExprKind::Vault(Str::from(p.as_str())),
            ast::ExprKind::Var(name) => self.var(name),
            ast::ExprKind::TypeLit { fields, .. } | ast::ExprKind::Record(fields) => {
                ExprKind::Record(
                    fields
                        .iter()
                        .map(|f| (Str::from(f.key.as_str()), self.expr(&f.value)))
                        .collect(),
                )
            }
            ast::ExprKind::Array(xs) => ExprKind::Array(xs.iter().map(|x| self.expr(x)).collect()),
            ast::ExprKind::Lambda { param, body } => {
                ExprKind::Lambda(Arc::new(self.lambda(param, body)))
            }
            ast::ExprKind::If(i) => ExprKind::If(Box::new(self.if_expr(i))),
            ast::ExprKind::Paren(inner) => return self.expr(inner),
            ast::ExprKind::Unary { op, operand } => {
                let x = self.expr(operand);
                match op {
                    ast::UnaryOp::Neg => match &x.kind {
                        ExprKind::Const(Value::Int(i)) if i.checked_neg().is_some() => {
                            ExprKind::Const(Value::Int(-i))
                        }
                        ExprKind::Const(Value::Float(f)) => ExprKind::Const(Value::Float(-f)),
                        ExprKind::Const(Value::Duration(d)) if d.checked_neg().is_some() => {
                            ExprKind::Const(Value::Duration(-d))
                        }
                        _ => ExprKind::Neg(Box::new(x)),
                    },
                    ast::UnaryOp::Bang | ast::UnaryOp::Not => ExprKind::Not(Box::new(x)),
                }
            }
            ast::ExprKind::Binary { op, lhs, rhs } => {
                let pair = Box::new([self.expr(lhs), self.expr(rhs)]);
                match op {
                    ast::BinaryOp::Or => ExprKind::Or(pair),
                    ast::BinaryOp::And => ExprKind::And(pair),
                    ast::BinaryOp::Eq => ExprKind::Cmp(CmpOp::Eq, pair),
                    ast::BinaryOp::Ne => ExprKind::Cmp(CmpOp::Ne, pair),
                    ast::BinaryOp::In => ExprKind::Cmp(CmpOp::In, pair),
                    ast::BinaryOp::Lt => ExprKind::Cmp(CmpOp::Lt, pair),
                    ast::BinaryOp::Gt => ExprKind::Cmp(CmpOp::Gt, pair),
                    ast::BinaryOp::Le => ExprKind::Cmp(CmpOp::Le, pair),
                    ast::BinaryOp::Ge => ExprKind::Cmp(CmpOp::Ge, pair),
                    other => ExprKind::Arith(binop(*other).expect("arithmetic"), pair),
                }
            }
            ast::ExprKind::Member { object, name } => {
                ExprKind::Member(Box::new(self.expr(object)), Str::from(name.as_str()))
            }
            ast::ExprKind::Index { object, index } => {
                ExprKind::Index(Box::new([self.expr(object), self.expr(index)]))
            }
            ast::ExprKind::Call { callee, args } => {
                ExprKind::Call(Box::new(self.call(callee, args)))
            }
        };
        Expr { kind, span }
    }

    fn var(&mut self, name: &str) -> ExprKind {
        if let Some(slot) = self.lookup(name) {
            return ExprKind::Local {
                slot,
                name: Str::from(name),
            };
        }
        if self.t.memories.contains(name) {
            return ExprKind::Const(Value::Ref(Str::from(name)));
        }
        if name == "None" {
            return ExprKind::Const(Value::Null);
        }
        ExprKind::Undefined(Str::from(name))
    }

    fn lambda(&mut self, param: &ast::Ident, body: &ast::Expr) -> LambdaCode {
        let mut names = Vec::new();
        visit_expr(body, &mut |_| {}, &mut |s| {
            if let ast::Stmt::Assign(a) = s {
                if let Some(v) = a.target.as_var() {
                    if v != "_" && !names.iter().any(|n: &String| n == v) {
                        names.push(v.to_string());
                    }
                }
            }
        });
        self.begin_with(true, names);
        let p = if param.is_wildcard() {
            None
        } else {
            Some(self.ctx().declare(param.as_str()))
        };
        let body = self.expr(body);
        let ctx = self.ctxs.pop().expect("context");
        LambdaCode {
            param: p,
            captures: ctx.captures.iter().map(|(o, i, _)| (*o, *i)).collect(),
            n_slots: ctx.n_slots,
            body,
        }
    }

    fn if_expr(&mut self, i: &ast::IfExpr) -> IfExpr {
        IfExpr {
            cond: self.expr(&i.cond),
            then_block: self.block(&i.then_block),
            else_branch: match &i.else_branch {
                ast::ElseExpr::If(next) => ElseExpr::If(Box::new(self.if_expr(next))),
                ast::ElseExpr::Block(b) => ElseExpr::Block(self.block(b)),
            },
        }
    }

    /// The static target of a bare name (GRAMMAR 4.6, steps 1.2–1.5).
    fn static_target(&self, name: &str, names: &[Option<&str>]) -> Target {
        if let Some(a) = &self.agent {
            if let Some(&idx) = self.t.agent_fns.get(a).and_then(|m| m.get(name)) {
                return Target::User {
                    func: idx,
                    bind: Bind::Error(Str::from("")),
                };
            }
        }
        if let Some(&idx) = self.t.top_fns.get(name) {
            return Target::User {
                func: idx,
                bind: Bind::Error(Str::from("")),
            };
        }
        if let Some(b) = builtins::builtin(name).filter(|b| b.class != BuiltinClass::Mutating) {
            return Target::Builtin {
                b,
                bind: bind_builtin(name, b.params, b.variadic, names),
            };
        }
        if let Some(s) = builtins::service(name) {
            return Target::Service {
                s,
                bind: bind_builtin(name, s.params, false, names),
            };
        }
        Target::Tool(Str::from(name))
    }

    fn call(&mut self, callee: &ast::Expr, args: &[ast::Arg]) -> Call {
        let names: Vec<Option<&str>> = args
            .iter()
            .map(|a| a.name.as_ref().map(|n| n.as_str()))
            .collect();
        let target = match &callee.kind {
            ast::ExprKind::Var(name) => {
                let fallback = self.static_target(name, &names);
                match self.lookup(name) {
                    Some(slot) => Target::VarThen {
                        slot,
                        fallback: Box::new(fallback),
                    },
                    None => fallback,
                }
            }
            ast::ExprKind::Member { object, name } => {
                let m = name.as_str();
                let mut recv_names = vec![None];
                recv_names.extend(names.iter().cloned());
                let method = builtins::method(m)
                    .filter(|b| b.class != BuiltinClass::Mutating)
                    .map(|b| (b, bind_builtin(m, b.params, b.variadic, &recv_names)));
                match &object.kind {
                    ast::ExprKind::Var(v) if self.lookup(v).is_none() => {
                        let q = format!("{v}.{m}");
                        match builtins::service(&q) {
                            Some(s) => Target::Service {
                                s,
                                bind: bind_builtin(&q, s.params, false, &names),
                            },
                            None => Target::Tool(Str::from(q)),
                        }
                    }
                    _ if builtins::is_mutating(m) && object.is_place() => {
                        let place = self.place(object).expect("a place");
                        Target::MutMethod {
                            place,
                            name: Str::from(m),
                        }
                    }
                    ast::ExprKind::Var(v) => {
                        let slot = self.lookup(v).expect("checked above");
                        let q = format!("{v}.{m}");
                        let qualified = match builtins::service(&q) {
                            Some(s) => Target::Service {
                                s,
                                bind: bind_builtin(&q, s.params, false, &names),
                            },
                            None => Target::Tool(Str::from(q)),
                        };
                        Target::MethodOrQualified {
                            slot,
                            recv: self.expr(object),
                            name: Str::from(m),
                            builtin: method,
                            qualified: Box::new(qualified),
                        }
                    }
                    _ => Target::Method {
                        recv: self.expr(object),
                        name: Str::from(m),
                        builtin: method,
                    },
                }
            }
            _ => Target::Dynamic(self.expr(callee)),
        };
        let target = self.bind_user(target, &names);
        Call {
            target,
            args: args.iter().map(|a| self.expr(&a.value)).collect(),
            names: args
                .iter()
                .map(|a| a.name.as_ref().map(|n| Str::from(n.as_str())))
                .collect(),
        }
    }

    fn bind_user(&self, t: Target, names: &[Option<&str>]) -> Target {
        match t {
            Target::User { func, .. } => Target::User {
                func,
                bind: self.user_bind(func, names),
            },
            Target::VarThen { slot, fallback } => Target::VarThen {
                slot,
                fallback: Box::new(self.bind_user(*fallback, names)),
            },
            other => other,
        }
    }

    fn user_bind(&self, func: u32, names: &[Option<&str>]) -> Bind {
        let (fname, params) = &self.t.fn_sigs[func as usize];
        match bind_params(fname, params, false, names) {
            Ok(p) => Bind::Perm(p.into_boxed_slice()),
            Err((_, m)) => Bind::Error(Str::from(m)),
        }
    }
}

fn bind_builtin(
    name: &str,
    params: &[builtins::ParamSig],
    variadic: bool,
    names: &[Option<&str>],
) -> Bind {
    match builtins::bind_signature(name, params, variadic, names) {
        Ok(p) => Bind::Perm(p.into_boxed_slice()),
        Err((_, m)) => Bind::Error(Str::from(m)),
    }
}

/// Binds written arguments to user-function parameters (same rules as builtins).
pub(crate) fn bind_params(
    callee: &str,
    params: &[(String, ParamKind)],
    variadic: bool,
    names: &[Option<&str>],
) -> Result<Vec<u8>, (&'static str, String)> {
    let sigs: Vec<(&str, ParamKind)> = params.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    builtins::bind_generic(callee, &sigs, variadic, names)
}

pub(crate) fn lit_value(l: &ast::LitKind) -> Value {
    match l {
        ast::LitKind::Null => Value::Null,
        ast::LitKind::Bool(b) => Value::Bool(*b),
        ast::LitKind::Int(i) => Value::Int(*i),
        ast::LitKind::Float(f) => Value::Float(*f),
        ast::LitKind::Str(s) => Value::str(s.as_str()),
        ast::LitKind::Duration(d) => Value::Duration(*d),
        ast::LitKind::Size(s) => Value::Size(*s),
    }
}

fn binop(op: ast::BinaryOp) -> Option<BinOp> {
    Some(match op {
        ast::BinaryOp::Add => BinOp::Add,
        ast::BinaryOp::Sub => BinOp::Sub,
        ast::BinaryOp::Mul => BinOp::Mul,
        ast::BinaryOp::Div => BinOp::Div,
        ast::BinaryOp::Rem => BinOp::Rem,
        _ => return None,
    })
}

/// Whether evaluating `e` may modify a variable of the current frame: a mutating method
/// call or an assignment inside an if-expression block (lambdas only touch their copies).
pub(crate) fn may_mutate(e: &ast::Expr) -> bool {
    let found = std::cell::Cell::new(false);
    visit_expr(
        e,
        &mut |x| {
            if let ast::ExprKind::Call { callee, .. } = &x.kind {
                if let ast::ExprKind::Member { name, .. } = &callee.kind {
                    if builtins::is_mutating(name.as_str()) {
                        found.set(true);
                    }
                }
            }
        },
        &mut |s| {
            if matches!(s, ast::Stmt::Assign(_)) {
                found.set(true);
            }
        },
    );
    found.get()
}

/// Visits `e` and its sub-expressions and statements, not entering lambdas.
fn visit_expr(e: &ast::Expr, fe: &mut dyn FnMut(&ast::Expr), fs: &mut dyn FnMut(&ast::Stmt)) {
    fe(e);
    match &e.kind {
        ast::ExprKind::Lambda { .. }
        | ast::ExprKind::Lit(_)
        | ast::ExprKind::Vault(_)
        | ast::ExprKind::Var(_) => {}
        ast::ExprKind::TypeLit { fields, .. } | ast::ExprKind::Record(fields) => {
            fields.iter().for_each(|f| visit_expr(&f.value, fe, fs))
        }
        ast::ExprKind::Array(xs) => xs.iter().for_each(|x| visit_expr(x, fe, fs)),
        ast::ExprKind::If(i) => visit_if(i, fe, fs),
        ast::ExprKind::Paren(x)
        | ast::ExprKind::Unary { operand: x, .. }
        | ast::ExprKind::Member { object: x, .. } => visit_expr(x, fe, fs),
        ast::ExprKind::Binary { lhs, rhs, .. } => {
            visit_expr(lhs, fe, fs);
            visit_expr(rhs, fe, fs);
        }
        ast::ExprKind::Index { object, index } => {
            visit_expr(object, fe, fs);
            visit_expr(index, fe, fs);
        }
        ast::ExprKind::Call { callee, args } => {
            visit_expr(callee, fe, fs);
            args.iter().for_each(|a| visit_expr(&a.value, fe, fs));
        }
    }
}

fn visit_if(i: &ast::IfExpr, fe: &mut dyn FnMut(&ast::Expr), fs: &mut dyn FnMut(&ast::Stmt)) {
    visit_expr(&i.cond, fe, fs);
    visit_block(&i.then_block, fe, fs);
    match &i.else_branch {
        ast::ElseExpr::If(n) => visit_if(n, fe, fs),
        ast::ElseExpr::Block(b) => visit_block(b, fe, fs),
    }
}

fn visit_block(b: &ast::Block, fe: &mut dyn FnMut(&ast::Expr), fs: &mut dyn FnMut(&ast::Stmt)) {
    for s in &b.stmts {
        fs(s);
        let mut exprs: Vec<&ast::Expr> = Vec::new();
        let mut blocks: Vec<&ast::Block> = Vec::new();
        crate::check::walk::stmt_exprs(s, &mut |x| exprs.push(x), &mut |b| blocks.push(b));
        for x in exprs {
            visit_expr(x, fe, fs);
        }
        for b in blocks {
            visit_block(b, fe, fs);
        }
    }
    if let Some(t) = &b.tail {
        visit_expr(t, fe, fs);
    }
}

/// Names assigned (`x = …`, `x += …`) without `let` in a body, not entering lambdas.
fn assigned_names_block(b: &ast::Block, out: &mut Vec<String>) {
    let mut f = |s: &ast::Stmt| {
        if let ast::Stmt::Assign(a) = s {
            if let Some(v) = a.target.as_var() {
                if v != "_" && !out.iter().any(|n| n == v) {
                    out.push(v.to_string());
                }
            }
        }
    };
    visit_block(b, &mut |_| {}, &mut f);
}
