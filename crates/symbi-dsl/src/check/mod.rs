//! The static checker (GRAMMAR 4.12, 6.2): names, calls, attributes and properties,
//! policies, types and hygiene, each finding a [`Diagnostic`] with its position.
//!
//! ```
//! let parsed = symbi_dsl::parse("agent a { with { return nope(1); } }", "a.symbi");
//! let diags = symbi_dsl::check(&parsed, &symbi_dsl::CheckOptions::default());
//! assert_eq!(diags[0].code, "W201");
//! ```

pub(crate) mod walk;

use crate::ast::{self, Expr, ExprKind};
use crate::builtins::{self, BuiltinClass, ParamKind};
use crate::compile::resolve_type_with;
use crate::diagnostic::Diagnostic;
use crate::parser::Parsed;
use crate::program::items;
use crate::span::Span;
use crate::types::Ty;
use std::collections::{HashMap, HashSet};

/// Development or production (GRAMMAR 4.10: W219 is an error in production).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Secure by default: unenforceable requirements and `sandbox = "none"` are errors.
    #[default]
    Production,
    /// Lenient: they are warnings.
    Development,
}

/// Options of a check run.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Production (default) or development mode.
    pub mode: Mode,
    /// `--compat`: report every use of a symbi extension (W230).
    pub compat: bool,
    /// `--deny-unresolved`: W201 is an error.
    pub deny_unresolved: bool,
    /// Tool names known to the runtime (no W201 for them).
    pub known_tools: Vec<String>,
    /// Chat platforms this runtime has adapters for (others: W225).
    pub channel_platforms: Vec<String>,
}

/// Checks a parsed file. Returns the check diagnostics (the parse diagnostics are in
/// `parsed.diagnostics`), sorted by position.
pub fn check(parsed: &Parsed, opts: &CheckOptions) -> Vec<Diagnostic> {
    let mut c = Checker::new(&parsed.program, opts);
    c.run();
    let mut d = c.diags;
    d.sort_by_key(|d| (d.span.start, d.code));
    d
}

const FIXED_GUARD_NAMES: [&str; 5] = ["action", "context", "user", "principal", "agent"];

struct Binding {
    name: String,
    span: Span,
    read: bool,
}

struct Scope {
    vars: Vec<Binding>,
}

struct FnScope {
    scopes: Vec<Scope>,
    implicit: HashSet<String>,
    loops: u32,
    /// Declared return type of the agent (E116).
    agent_ret: Option<Ty>,
}

struct Checker<'a> {
    p: &'a ast::Program,
    opts: &'a CheckOptions,
    diags: Vec<Diagnostic>,
    types: HashMap<String, Ty>,
    type_names: HashSet<String>,
    structs: HashMap<String, Vec<(String, Ty)>>,
    top_fns: HashMap<String, &'a ast::Function>,
    agent_fns: HashMap<String, &'a ast::Function>,
    agent_names: HashSet<String>,
    memories: HashSet<String>,
    fns: Vec<FnScope>,
    /// Inside a policy guard: calls that would be actions are E118, not W201.
    in_guard: bool,
}

fn is_option_like(t: &Ty) -> bool {
    t.is_option_like()
}

impl<'a> Checker<'a> {
    fn new(p: &'a ast::Program, opts: &'a CheckOptions) -> Self {
        let (tables, _) = crate::compile::Tables::new(p);
        let mut structs = HashMap::new();
        for (n, t) in &tables.types {
            if let Ty::Struct(st) = t {
                structs.insert(
                    n.clone(),
                    st.field_types()
                        .map(|(k, t)| (k.to_string(), t.clone()))
                        .collect(),
                );
            }
        }
        let type_names = p
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Type(t) => Some(t.name.to_string()),
                _ => None,
            })
            .collect();
        let mut top_fns = HashMap::new();
        let mut agent_names = HashSet::new();
        let mut memories = HashSet::new();
        for i in &p.items {
            match i {
                ast::Item::Function(f) => {
                    top_fns.entry(f.name.to_string()).or_insert(f);
                }
                ast::Item::Agent(a) => {
                    agent_names.insert(a.name.to_string());
                }
                ast::Item::Memory(m) => {
                    memories.insert(m.name.to_string());
                }
                _ => {}
            }
        }
        Checker {
            p,
            opts,
            diags: Vec::new(),
            types: tables.types,
            type_names,
            structs,
            top_fns,
            agent_fns: HashMap::new(),
            agent_names,
            memories,
            fns: Vec::new(),
            in_guard: false,
        }
    }

    fn err(&mut self, code: &'static str, msg: impl Into<String>, span: Span) {
        self.diags.push(Diagnostic::error(code, msg, span));
    }
    fn warn(&mut self, code: &'static str, msg: impl Into<String>, span: Span) {
        self.diags.push(Diagnostic::warning(code, msg, span));
    }

    fn run(&mut self) {
        self.syntax_notes();
        self.items();
    }

    fn syntax_notes(&mut self) {
        for n in &self.p.syntax_notes {
            if n.kind == ast::SyntaxNoteKind::UnknownEscape {
                self.warn(
                    "W229",
                    "unknown escape sequence; the backslash is kept",
                    n.span,
                );
            } else if self.opts.compat {
                self.warn(
                    "W230",
                    format!(
                        "{} is a symbi extension, not accepted by Symbiont",
                        n.kind.describe()
                    ),
                    n.span,
                );
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Items
    // ---------------------------------------------------------------------------------

    fn items(&mut self) {
        let mut seen: HashMap<(&str, String), Span> = HashMap::new();
        for item in &self.p.items {
            if let Some(name) = item.name() {
                let kind = item.keyword();
                let key = (kind, name.to_string());
                if let Some(first) = seen.get(&key) {
                    let code = if kind == "function" { "E102" } else { "E101" };
                    let d =
                        Diagnostic::error(code, format!("duplicate {kind} `{name}`"), name.span)
                            .with_label(*first, "first defined here");
                    self.diags.push(d);
                } else {
                    seen.insert(key, name.span);
                }
            }
        }
        let agent_names = self.agent_names.clone();
        let agents: Vec<&str> = agent_names.iter().map(String::as_str).collect();
        let policies: Vec<&str> = self
            .p
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Policy(p) => Some(p.name.as_str()),
                _ => None,
            })
            .collect();
        let mut meta = Vec::new();
        let mut d = Vec::new();
        for item in &self.p.items {
            match item {
                ast::Item::Metadata(m) => meta.push(m),
                ast::Item::Schedule(s) => {
                    items::schedule(s, &agents, &policies, &mut d);
                }
                ast::Item::Channel(ch) => {
                    items::channel(ch, &self.opts.channel_platforms, &mut d);
                    for e in &ch.entries {
                        if let ast::ChannelEntry::Policy(p) = e {
                            self.policy(p, None, &[]);
                        }
                    }
                }
                ast::Item::Memory(m) => {
                    items::memory(m, &mut d);
                }
                ast::Item::Webhook(w) => {
                    items::webhook(w, &agents, &mut d);
                }
                ast::Item::Type(t) => self.type_def(t),
                ast::Item::Function(f) => self.function(f, None),
                ast::Item::Agent(a) => self.agent(a),
                ast::Item::Policy(p) => self.policy(p, None, &[]),
            }
        }
        items::metadata(&meta, &mut d);
        self.diags.extend(d);
    }

    fn type_expr(&mut self, t: &ast::TypeExpr) {
        let n = t.name.as_str();
        let builtin = matches!(
            n,
            "String"
                | "int"
                | "float"
                | "bool"
                | "Any"
                | "JSON"
                | "Null"
                | "Duration"
                | "Size"
                | "Array"
                | "List"
                | "Map"
                | "Option"
                | "Optional"
                | "Maybe"
                | "Result"
        );
        if !builtin && !self.type_names.contains(n) {
            self.diags.push(Diagnostic::note(
                "N301",
                format!("unknown type `{n}`, treated as Any"),
                t.name.span,
            ));
        }
        for a in &t.args {
            self.type_expr(a);
        }
    }

    fn type_def(&mut self, t: &ast::TypeDef) {
        if let ast::TypeDefKind::Struct(st) = &t.def {
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for f in &st.fields {
                if let Some(first) = seen.get(f.name.as_str()) {
                    let d = Diagnostic::error(
                        "E104",
                        format!("duplicate field `{}`", f.name),
                        f.name.span,
                    )
                    .with_label(*first, "first defined here");
                    self.diags.push(d);
                } else {
                    seen.insert(f.name.as_str(), f.name.span);
                }
                self.type_expr(&f.ty);
            }
        }
    }

    fn params(&mut self, ps: &[ast::Param]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for p in ps {
            if let Some(first) = seen.get(p.name.as_str()) {
                let d = Diagnostic::error(
                    "E103",
                    format!("duplicate parameter `{}`", p.name),
                    p.name.span,
                )
                .with_label(*first, "first defined here");
                self.diags.push(d);
            } else {
                seen.insert(p.name.as_str(), p.name.span);
            }
            self.type_expr(&p.ty);
        }
    }

    fn function(&mut self, f: &'a ast::Function, _agent: Option<&'a ast::Agent>) {
        self.params(&f.params);
        if let Some(r) = &f.ret {
            self.type_expr(r);
        }
        let implicit = implicit_names(&[&f.body]);
        self.fns.push(FnScope {
            scopes: vec![Scope { vars: Vec::new() }],
            implicit,
            loops: 0,
            agent_ret: None,
        });
        for p in &f.params {
            self.declare(p.name.as_str(), p.name.span, true);
        }
        self.block_in_place(&f.body);
        self.end_fn();
    }

    fn agent(&mut self, a: &'a ast::Agent) {
        self.params(a.params());
        if let Some(r) = &a.ret {
            self.type_expr(r);
        }
        self.agent_fns.clear();
        let mut fn_seen: HashMap<&str, Span> = HashMap::new();
        for i in &a.items {
            if let ast::AgentItem::Function(f) = i {
                if let Some(first) = fn_seen.get(f.name.as_str()) {
                    let d = Diagnostic::error(
                        "E102",
                        format!("duplicate function `{}`", f.name),
                        f.name.span,
                    )
                    .with_label(*first, "first defined here");
                    self.diags.push(d);
                } else {
                    fn_seen.insert(f.name.as_str(), f.name.span);
                    self.agent_fns.insert(f.name.to_string(), f);
                }
            }
        }
        let mut memory_mode: Option<(String, Span)> = None;
        let mut n_with = 0;
        for i in &a.items {
            match i {
                ast::AgentItem::Capabilities(c) => {
                    for e in &c.list.elems {
                        if !matches!(
                            e.kind,
                            ExprKind::Lit(ast::LitKind::Str(_)) | ExprKind::Var(_)
                        ) {
                            self.err(
                                "E120",
                                "a capability must be a string or an identifier",
                                e.span,
                            );
                        }
                    }
                }
                ast::AgentItem::With(w) => {
                    n_with += 1;
                    let mut d = Vec::new();
                    items::with_env(&w.attrs, self.opts.mode, &mut d);
                    self.diags.extend(d);
                    for at in &w.attrs {
                        if at.name.as_str() == "memory" {
                            if let ast::PropValue::Value(v) = &at.value {
                                let text = match v {
                                    ast::Value::Lit(ast::Literal {
                                        kind: ast::LitKind::Str(s),
                                        ..
                                    }) => s.to_string(),
                                    ast::Value::Word(w) => w.to_string(),
                                    _ => continue,
                                };
                                match &memory_mode {
                                    Some((m, first)) if *m != text => {
                                        let d = Diagnostic::error(
                                            "E105",
                                            format!("invalid value for attribute `memory`: the agent's blocks disagree (`{m}` and `{text}`)"),
                                            at.value.span(),
                                        )
                                        .with_label(*first, "first set here");
                                        self.diags.push(d);
                                    }
                                    None => memory_mode = Some((text, at.value.span())),
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                ast::AgentItem::Policy(p) => self.policy(p, Some(a), a.params()),
                ast::AgentItem::Function(f) => self.function(f, Some(a)),
            }
        }
        if n_with == 0 {
            self.warn(
                "W218",
                format!(
                    "agent `{}` has no `with` block; it does nothing and returns null",
                    a.name
                ),
                a.name.span,
            );
        }
        let bodies: Vec<&ast::Block> = a.with_blocks().map(|w| &w.body).collect();
        let ret = a
            .ret
            .as_ref()
            .map(|t| resolve_type_with(t, &self.types))
            .filter(|t| !t.is_any());
        self.fns.push(FnScope {
            scopes: vec![Scope { vars: Vec::new() }],
            implicit: implicit_names(&bodies),
            loops: 0,
            agent_ret: ret,
        });
        for p in a.params() {
            self.declare(p.name.as_str(), p.name.span, true);
        }
        for b in bodies {
            self.block_in_place(b);
        }
        self.end_fn();
        self.agent_fns.clear();
    }

    fn end_fn(&mut self) {
        if let Some(mut f) = self.fns.pop() {
            while let Some(s) = f.scopes.pop() {
                drop(s);
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Policies
    // ---------------------------------------------------------------------------------

    fn policy(
        &mut self,
        p: &'a ast::Policy,
        agent: Option<&'a ast::Agent>,
        params: &'a [ast::Param],
    ) {
        for r in &p.rules {
            let mut binders: Vec<String> = Vec::new();
            match r.kind {
                ast::RuleKind::Allow | ast::RuleKind::Deny => match crate::rules::pattern_of(&r.expr) {
                    Some(crate::rules::ActionPattern::Call { args, .. }) => {
                        binders = args
                            .iter()
                            .filter_map(|a| match a {
                                crate::rules::PatternArg::Bind(n) => Some(n.clone()),
                                _ => None,
                            })
                            .collect();
                    }
                    Some(_) => {}
                    None => self.err(
                        "E117",
                        format!("the `{}` rule is not an action pattern (a name, a string, a list, or `name(binders…)`)", r.kind.as_str()),
                        r.expr.span,
                    ),
                },
                ast::RuleKind::Require => {
                    for c in crate::rules::require_conditions(&r.expr) {
                        if let symbi_types::Condition::Opaque { name, .. } = c {
                            let msg = format!("requirement `{name}` cannot be enforced by this runtime");
                            match self.opts.mode {
                                Mode::Production => self.diags.push(
                                    Diagnostic::error("W219", msg, r.expr.span)
                                        .with_help("in production mode an unenforceable requirement stops the agent from loading; set SYMBI_RUNTIME_MODE=development to record it only"),
                                ),
                                Mode::Development => self.warn("W219", msg, r.expr.span),
                            }
                        }
                    }
                }
                ast::RuleKind::Audit => {
                    if let ExprKind::Record(fields) = &r.expr.kind {
                        for f in fields {
                            if !crate::rules::is_known_audit_key(f.key.as_str(), &f.value) {
                                self.warn("W220", format!("unknown audit key `{}`, kept as a tag", f.key.as_str()), f.key.span());
                            }
                        }
                    } else if crate::rules::pattern_of(&r.expr).is_none() {
                        self.err("E117", "the `audit` rule is neither a record of audit keys nor an action pattern", r.expr.span);
                    }
                }
            }
            if let Some(g) = &r.guard {
                // Guards may not perform actions (E118) and see a fixed set of names.
                let old_agent_fns = std::mem::take(&mut self.agent_fns);
                if let Some(a) = agent {
                    for i in &a.items {
                        if let ast::AgentItem::Function(f) = i {
                            self.agent_fns.insert(f.name.to_string(), f);
                        }
                    }
                }
                self.fns.push(FnScope {
                    scopes: vec![Scope { vars: Vec::new() }],
                    implicit: HashSet::new(),
                    loops: 0,
                    agent_ret: None,
                });
                for n in FIXED_GUARD_NAMES {
                    self.declare(n, Span::default(), true);
                }
                for prm in params {
                    self.declare(prm.name.as_str(), Span::default(), true);
                }
                for b in &binders {
                    self.declare(b, Span::default(), true);
                }
                self.guard_calls(g);
                self.in_guard = true;
                self.expr(g);
                self.in_guard = false;
                self.end_fn();
                self.agent_fns = old_agent_fns;
            }
        }
    }

    fn guard_calls(&mut self, g: &Expr) {
        let mut bad: Vec<(String, Span)> = Vec::new();
        walk::each_expr(g, &mut |e| {
            if let ExprKind::Call { callee, .. } = &e.kind {
                match &callee.kind {
                    ExprKind::Var(n) => {
                        let pure = self.top_fns.contains_key(n.as_str())
                            || self.agent_fns.contains_key(n.as_str())
                            || builtins::builtin(n).is_some_and(|b| {
                                matches!(b.class, BuiltinClass::Pure | BuiltinClass::Recorded)
                            });
                        if !pure {
                            bad.push((n.to_string(), callee.span));
                        }
                    }
                    ExprKind::Member { object, name } => {
                        if let ExprKind::Var(v) = &object.kind {
                            let is_var =
                                FIXED_GUARD_NAMES.contains(&v.as_str()) || self.lookup_quiet(v);
                            if !is_var {
                                bad.push((format!("{v}.{name}"), callee.span));
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let ExprKind::Vault(_) = &e.kind {
                bad.push(("vault://".into(), e.span));
            }
        });
        for (n, s) in bad {
            self.err("E118", format!("a policy guard calls `{n}`, which is an action or an intrinsic; guards must be pure"), s);
        }
    }

    // ---------------------------------------------------------------------------------
    // Scopes
    // ---------------------------------------------------------------------------------

    fn cur(&mut self) -> &mut FnScope {
        self.fns.last_mut().expect("a function scope")
    }

    fn declare(&mut self, name: &str, span: Span, read: bool) {
        if name == "_" {
            return;
        }
        let scope = self.cur().scopes.last_mut().expect("scope");
        if let Some(prev) = scope.vars.iter().rev().find(|b| b.name == name) {
            if !prev.read && span != Span::default() {
                let first = prev.span;
                self.diags.push(
                    Diagnostic::warning(
                        "W216",
                        format!("`{name}` shadows a variable that was never read"),
                        span,
                    )
                    .with_label(first, "previous binding here"),
                );
            }
        }
        let scope = self.cur().scopes.last_mut().expect("scope");
        scope.vars.push(Binding {
            name: name.to_string(),
            span,
            read,
        });
    }

    fn lookup_quiet(&self, name: &str) -> bool {
        self.fns.iter().any(|f| {
            f.scopes
                .iter()
                .any(|s| s.vars.iter().any(|b| b.name == name))
                || f.implicit.contains(name)
        })
    }

    fn read_var(&mut self, name: &str, span: Span) {
        if name == "_" {
            self.warn("W203", "`_` cannot be read; it discards values", span);
            return;
        }
        // Lambdas (the only nested function scopes) see the enclosing variables.
        for f in self.fns.iter_mut().rev() {
            for s in f.scopes.iter_mut().rev() {
                if let Some(b) = s.vars.iter_mut().rev().find(|b| b.name == name) {
                    b.read = true;
                    return;
                }
            }
            if f.implicit.contains(name) {
                return;
            }
        }
        if self.memories.contains(name) || name == "None" {
            return;
        }
        self.warn("W203", format!("`{name}` is possibly undefined"), span);
    }

    // ---------------------------------------------------------------------------------
    // Blocks and statements
    // ---------------------------------------------------------------------------------

    fn block(&mut self, b: &'a ast::Block) {
        self.cur().scopes.push(Scope { vars: Vec::new() });
        self.block_in_place(b);
        self.cur().scopes.pop();
    }

    fn block_in_place(&mut self, b: &'a ast::Block) {
        let mut ended: Option<&'static str> = None;
        for s in &b.stmts {
            if let Some(what) = ended.take() {
                self.warn(
                    "W211",
                    format!("unreachable statement after `{what}`"),
                    s.span(),
                );
            }
            self.stmt(s);
            ended = match s {
                ast::Stmt::Return(_) => Some("return"),
                ast::Stmt::Break(_) => Some("break"),
                ast::Stmt::Continue(_) => Some("continue"),
                _ => None,
            };
        }
        if let Some(t) = &b.tail {
            if let Some(what) = ended {
                self.warn(
                    "W211",
                    format!("unreachable expression after `{what}`"),
                    t.span,
                );
            }
            self.expr(t);
        }
    }

    fn stmt(&mut self, s: &'a ast::Stmt) {
        match s {
            ast::Stmt::Let(l) => {
                self.expr(&l.value);
                if let Some(t) = &l.ty {
                    self.type_expr(t);
                    let ty = resolve_type_with(t, &self.types);
                    self.literal_conforms(&l.value, &ty, "the variable");
                }
                self.declare(l.binder.as_str(), l.binder.span, false);
            }
            ast::Stmt::If(i) => self.if_stmt(i),
            ast::Stmt::For(f) => {
                self.expr(&f.iter);
                self.cur().scopes.push(Scope { vars: Vec::new() });
                self.declare(f.binder.as_str(), f.binder.span, true);
                self.cur().loops += 1;
                self.block(&f.body);
                self.cur().loops -= 1;
                self.cur().scopes.pop();
            }
            ast::Stmt::While(w) => {
                self.expr(&w.cond);
                self.cur().loops += 1;
                self.block(&w.body);
                self.cur().loops -= 1;
            }
            ast::Stmt::Match(m) => {
                self.expr(&m.scrutinee);
                let mut exhaustive = false;
                for arm in &m.arms {
                    self.cur().scopes.push(Scope { vars: Vec::new() });
                    match &arm.pattern {
                        ast::ArmPattern::Wildcard(_) => exhaustive = true,
                        ast::ArmPattern::Binding(i) if i.as_str() != "None" => {
                            exhaustive = true;
                            self.declare(i.as_str(), i.span, true);
                        }
                        _ => {}
                    }
                    match &arm.body {
                        ast::ArmBody::Block(b) => self.block(b),
                        ast::ArmBody::Expr(e) => self.expr(e),
                    }
                    self.cur().scopes.pop();
                }
                if !exhaustive {
                    self.warn(
                        "W213",
                        "`match` has no `_` or binding arm; when no arm matches nothing runs",
                        m.span,
                    );
                }
            }
            ast::Stmt::Try(t) => {
                self.block(&t.body);
                if t.catches.is_empty() {
                    self.warn(
                        "W217",
                        "`try` without `catch` lets every error continue outward",
                        t.span,
                    );
                }
                for c in &t.catches {
                    self.cur().scopes.push(Scope { vars: Vec::new() });
                    self.declare(c.binding.as_str(), c.binding.span, true);
                    self.block(&c.body);
                    self.cur().scopes.pop();
                }
            }
            ast::Stmt::Return(r) => {
                if let Some(v) = &r.value {
                    self.expr(v);
                    let ret = self.fns.last().and_then(|f| f.agent_ret.clone());
                    if let (Some(ret), true) = (ret, self.fns.len() == 1) {
                        if let Some(found) = literal_kind(v) {
                            if ret.conform(found.1.clone()).is_err() {
                                self.err(
                                    "E116",
                                    format!("returns {} but the agent declares {ret}", found.0),
                                    v.span,
                                );
                            }
                        }
                    }
                }
            }
            ast::Stmt::Break(sp) | ast::Stmt::Continue(sp) => {
                if self.cur().loops == 0 {
                    let w = if matches!(s, ast::Stmt::Break(_)) {
                        "break"
                    } else {
                        "continue"
                    };
                    self.err("E109", format!("`{w}` outside of a loop"), *sp);
                }
            }
            ast::Stmt::Assign(a) => {
                if !a.target.is_place() {
                    self.err(
                        "E108",
                        "invalid assignment target: expected a variable, a member or an index",
                        a.target.span,
                    );
                } else {
                    self.place_reads(&a.target, a.op != ast::AssignOp::Assign);
                }
                self.expr(&a.value);
            }
            ast::Stmt::Expr(e) => self.expr(&e.expr),
        }
    }

    fn place_reads(&mut self, target: &'a Expr, compound: bool) {
        match &target.kind {
            ExprKind::Var(v) => {
                if compound {
                    self.read_var(v, target.span);
                }
            }
            ExprKind::Member { object, .. } => self.place_root(object),
            ExprKind::Index { object, index } => {
                self.place_root(object);
                self.expr(index);
            }
            _ => {}
        }
    }

    fn place_root(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Var(v) => self.read_var(v, e.span),
            ExprKind::Member { object, .. } => self.place_root(object),
            ExprKind::Index { object, index } => {
                self.place_root(object);
                self.expr(index);
            }
            _ => self.expr(e),
        }
    }

    fn if_stmt(&mut self, i: &'a ast::IfStmt) {
        self.cur().scopes.push(Scope { vars: Vec::new() });
        match &i.cond {
            ast::Cond::Expr(e) => self.expr(e),
            ast::Cond::Let { pattern, value, .. } => {
                self.expr(value);
                self.pattern(pattern);
            }
        }
        self.block(&i.then_block);
        self.cur().scopes.pop();
        match &i.else_branch {
            Some(ast::ElseBranch::If(n)) => self.if_stmt(n),
            Some(ast::ElseBranch::Block(b)) => self.block(b),
            None => {}
        }
    }

    fn pattern(&mut self, p: &ast::Pattern) {
        match p {
            ast::Pattern::Wildcard(_) => {}
            ast::Pattern::Binding(i) if i.as_str() == "None" => {}
            ast::Pattern::Binding(i) => self.declare(i.as_str(), i.span, true),
            ast::Pattern::Ctor { args, .. } => args.iter().for_each(|a| self.pattern(a)),
        }
    }

    // ---------------------------------------------------------------------------------
    // Expressions
    // ---------------------------------------------------------------------------------

    fn expr(&mut self, e: &'a Expr) {
        match &e.kind {
            ExprKind::Lit(_) | ExprKind::Vault(_) => {}
            ExprKind::Var(v) => self.read_var(v, e.span),
            ExprKind::TypeLit { name, fields } => {
                self.record(fields);
                self.type_literal(name, fields, e.span);
            }
            ExprKind::Record(fields) => self.record(fields),
            ExprKind::Array(xs) => xs.iter().for_each(|x| self.expr(x)),
            ExprKind::Lambda { param, body } => {
                let mut implicit = HashSet::new();
                collect_assigned_in_expr(body, &mut implicit);
                self.fns.push(FnScope {
                    scopes: vec![Scope { vars: Vec::new() }],
                    implicit,
                    loops: 0,
                    agent_ret: None,
                });
                self.declare(param.as_str(), param.span, true);
                self.lambda_body(body);
                self.end_fn();
            }
            ExprKind::If(i) => self.if_expr(i),
            ExprKind::Paren(x) | ExprKind::Unary { operand: x, .. } => self.expr(x),
            ExprKind::Binary { op, lhs, rhs } => {
                if op.is_comparison() {
                    if let ExprKind::Binary { op: inner, .. } = &lhs.kind {
                        if inner.is_comparison() {
                            self.warn(
                                "W214",
                                "chained comparison: `a < b < c` means `(a < b) < c`",
                                e.span,
                            );
                        }
                    }
                }
                self.expr(lhs);
                self.expr(rhs);
            }
            ExprKind::Member { object, .. } => self.expr(object),
            ExprKind::Index { object, index } => {
                self.expr(object);
                self.expr(index);
            }
            ExprKind::Call { callee, args } => self.call(callee, args),
        }
    }

    /// A lambda body: the enclosing function's variables are visible (captured), which
    /// `read_var` finds by searching outward through the function scopes.
    fn lambda_body(&mut self, body: &'a Expr) {
        self.expr(body);
    }

    fn if_expr(&mut self, i: &'a ast::IfExpr) {
        self.expr(&i.cond);
        self.block(&i.then_block);
        match &i.else_branch {
            ast::ElseExpr::If(n) => self.if_expr(n),
            ast::ElseExpr::Block(b) => self.block(b),
        }
    }

    fn record(&mut self, fields: &'a [ast::Field]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for f in fields {
            if let Some(first) = seen.get(f.key.as_str()) {
                let d = Diagnostic::error(
                    "E104",
                    format!("duplicate key `{}`", f.key.as_str()),
                    f.key.span(),
                )
                .with_label(*first, "first given here");
                self.diags.push(d);
            } else {
                seen.insert(f.key.as_str(), f.key.span());
            }
            self.expr(&f.value);
        }
    }

    fn type_literal(&mut self, name: &ast::Ident, fields: &[ast::Field], span: Span) {
        let Some(decl) = self.structs.get(name.as_str()).cloned() else {
            return;
        };
        for f in fields {
            match decl.iter().find(|(n, _)| n == f.key.as_str()) {
                None => self.err(
                    "E115",
                    format!("`{}` has no field `{}`", name, f.key.as_str()),
                    f.key.span(),
                ),
                Some((_, ty)) => {
                    self.literal_conforms(&f.value, ty, &format!("field `{}`", f.key.as_str()))
                }
            }
        }
        let missing: Vec<&str> = decl
            .iter()
            .filter(|(n, t)| !is_option_like(t) && !fields.iter().any(|f| f.key.as_str() == n))
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            self.warn(
                "W215",
                format!(
                    "`{}` literal is missing {}",
                    name,
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                span,
            );
        }
    }

    fn literal_conforms(&mut self, e: &Expr, ty: &Ty, what: &str) {
        if let Some((desc, v)) = literal_kind(e) {
            if ty.conform(v).is_err() {
                self.err(
                    "E115",
                    format!("expected `{ty}` for {what}, found {desc}"),
                    e.span,
                );
            }
        }
    }

    fn call(&mut self, callee: &'a Expr, args: &'a [ast::Arg]) {
        let mut seen_named = false;
        for a in args {
            if a.name.is_some() {
                seen_named = true;
            } else if seen_named {
                self.err("E112", "positional argument after a named argument", a.span);
            }
        }
        let names: Vec<Option<&str>> = args
            .iter()
            .map(|a| a.name.as_ref().map(|n| n.as_str()))
            .collect();
        match &callee.kind {
            ExprKind::Var(name) => {
                let is_var = self.lookup_quiet(name)
                    || self.fns.len() > 1
                        && self.fns[..self.fns.len() - 1].iter().any(|f| {
                            f.scopes
                                .iter()
                                .any(|s| s.vars.iter().any(|b| b.name == name.as_str()))
                        });
                if is_var {
                    // A variable holding a lambda may be called; it is read here.
                    self.read_var(name, callee.span);
                }
                let user = self
                    .agent_fns
                    .get(name.as_str())
                    .or_else(|| self.top_fns.get(name.as_str()))
                    .copied();
                if let Some(f) = user {
                    if !is_var {
                        self.user_call(f, args, &names, callee.span);
                    }
                } else if let Some(b) =
                    builtins::builtin(name).filter(|b| b.class != BuiltinClass::Mutating)
                {
                    if !is_var {
                        self.sig(name, b.params, b.variadic, &names, callee.span);
                    }
                } else if let Some(s) = builtins::service(name) {
                    if !is_var {
                        self.sig(name, s.params, false, &names, callee.span);
                    }
                } else if !is_var {
                    self.unresolved(name, callee.span);
                }
            }
            ExprKind::Member { object, name } => {
                let m = name.as_str();
                let qualified = match &object.kind {
                    ExprKind::Var(v)
                        if !self.lookup_quiet(v)
                            && !self.memories.contains(v.as_str())
                            && !self.fns.iter().any(|f| {
                                f.scopes
                                    .iter()
                                    .any(|s| s.vars.iter().any(|b| b.name == v.as_str()))
                            }) =>
                    {
                        Some(format!("{v}.{m}"))
                    }
                    _ => None,
                };
                match qualified {
                    Some(q) => match builtins::service(&q) {
                        Some(s) => self.sig(&q, s.params, false, &names, callee.span),
                        None => self.unresolved(&q, callee.span),
                    },
                    None => {
                        if builtins::is_mutating(m) {
                            if !object.is_place() {
                                self.err("E108", format!("`{m}` modifies its receiver, which must be a variable, member or index"), callee.span);
                            }
                            self.place_root(object);
                        } else {
                            self.expr(object);
                            if let Some(b) = builtins::method(m).filter(|b| b.method) {
                                let mut with_recv = vec![None];
                                with_recv.extend(names.iter().cloned());
                                self.sig(m, b.params, b.variadic, &with_recv, callee.span);
                            }
                        }
                    }
                }
            }
            _ => self.expr(callee),
        }
        for a in args {
            self.expr(&a.value);
        }
    }

    fn unresolved(&mut self, name: &str, span: Span) {
        if self.in_guard {
            return;
        }
        if self.opts.known_tools.iter().any(|t| t == name) || self.agent_names.contains(name) {
            return;
        }
        let msg = format!("unresolved call `{name}`; it will be resolved as a tool action");
        if self.opts.deny_unresolved {
            self.err("W201", msg, span);
        } else {
            self.warn("W201", msg, span);
        }
    }

    fn sig(
        &mut self,
        name: &str,
        params: &[builtins::ParamSig],
        variadic: bool,
        names: &[Option<&str>],
        span: Span,
    ) {
        if let Err((code, msg)) = builtins::bind_signature(name, params, variadic, names) {
            self.err(code, msg, span);
        }
    }

    fn user_call(
        &mut self,
        f: &ast::Function,
        args: &[ast::Arg],
        names: &[Option<&str>],
        span: Span,
    ) {
        let params: Vec<(String, ParamKind, Ty)> = f
            .params
            .iter()
            .map(|p| {
                let t = resolve_type_with(&p.ty, &self.types);
                let k = if t.is_option_like() {
                    ParamKind::Optional
                } else {
                    ParamKind::Required
                };
                (p.name.to_string(), k, t)
            })
            .collect();
        let pk: Vec<(&str, ParamKind)> = params.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        match builtins::bind_generic(f.name.as_str(), &pk, false, names) {
            Err((code, msg)) => self.err(code, msg, span),
            Ok(perm) => {
                for (i, a) in args.iter().enumerate() {
                    let (pname, _, ty) = &params[perm[i] as usize];
                    self.literal_conforms(
                        &a.value,
                        ty,
                        &format!("parameter `{pname}` of `{}`", f.name),
                    );
                }
            }
        }
    }
}

/// A literal's description and value, for static type checks.
fn literal_kind(e: &Expr) -> Option<(&'static str, crate::value::Value)> {
    match &e.kind {
        ExprKind::Lit(l) => {
            let desc = match l {
                ast::LitKind::Null => "null",
                ast::LitKind::Bool(_) => "a bool literal",
                ast::LitKind::Int(_) => "an int literal",
                ast::LitKind::Float(_) => "a float literal",
                ast::LitKind::Str(_) => "a string literal",
                ast::LitKind::Duration(_) => "a duration literal",
                ast::LitKind::Size(_) => "a size literal",
            };
            Some((desc, crate::compile::lit_value(l)))
        }
        _ => None,
    }
}

fn implicit_names(blocks: &[&ast::Block]) -> HashSet<String> {
    let mut out = HashSet::new();
    for b in blocks {
        collect_assigned(b, &mut out);
    }
    out
}

fn collect_assigned(b: &ast::Block, out: &mut HashSet<String>) {
    for s in &b.stmts {
        if let ast::Stmt::Assign(a) = s {
            if let Some(v) = a.target.as_var() {
                out.insert(v.to_string());
            }
        }
        let mut blocks: Vec<&ast::Block> = Vec::new();
        walk::stmt_exprs(s, &mut |e| collect_assigned_in_expr(e, out), &mut |nb| {
            blocks.push(nb)
        });
        for nb in blocks {
            collect_assigned(nb, out);
        }
    }
    if let Some(t) = &b.tail {
        collect_assigned_in_expr(t, out);
    }
}

fn collect_assigned_in_expr(e: &ast::Expr, out: &mut HashSet<String>) {
    if let ExprKind::If(i) = &e.kind {
        let mut cur = &**i;
        loop {
            collect_assigned(&cur.then_block, out);
            match &cur.else_branch {
                ast::ElseExpr::If(n) => cur = n,
                ast::ElseExpr::Block(b) => {
                    collect_assigned(b, out);
                    break;
                }
            }
        }
    }
}
