//! Helpers shared by the syntax conformance suites.
#![allow(dead_code)]

use symbi_dsl::ast::*;

/// Parses and asserts that there is no diagnostic at all.
pub fn ok(src: &str) -> Program {
    let p = symbi_dsl::parse(src, "t.symbi");
    assert!(
        p.diagnostics.is_empty(),
        "unexpected diagnostics for {src:?}:\n{}",
        p.render_diagnostics()
    );
    p.program
}

/// `(code, line, column)` of every diagnostic.
pub fn errs(src: &str) -> Vec<(&'static str, u32, u32)> {
    let p = symbi_dsl::parse(src, "t.symbi");
    p.diagnostics
        .iter()
        .map(|d| {
            let pos = p.source.position(d.span.start);
            (d.code, pos.line, pos.column)
        })
        .collect()
}

/// The codes of every diagnostic.
pub fn codes(src: &str) -> Vec<&'static str> {
    errs(src).into_iter().map(|e| e.0).collect()
}

/// The first diagnostic's message.
pub fn msg(src: &str) -> String {
    let p = symbi_dsl::parse(src, "t.symbi");
    p.diagnostics
        .first()
        .map(|d| d.message.clone())
        .unwrap_or_default()
}

/// Asserts that `src` has exactly one diagnostic, with this code at this position.
#[track_caller]
pub fn err1(src: &str, code: &str, line: u32, col: u32) {
    let e = errs(src);
    assert_eq!(
        e.first().map(|x| (x.0, x.1, x.2)),
        Some((code_static(code), line, col)),
        "for {src:?}: {e:?}\n{}",
        symbi_dsl::parse(src, "t.symbi").render_diagnostics()
    );
}

fn code_static(c: &str) -> &'static str {
    Box::leak(c.to_string().into_boxed_str())
}

/// The statements of `function f() { body }`.
pub fn body(src: &str) -> Block {
    let p = ok(&format!("function f() {{ {src} }}"));
    match p.items.into_iter().next() {
        Some(Item::Function(f)) => f.body,
        other => panic!("{other:?}"),
    }
}

/// The expression `src` (as `let _ = src;`) in S-expression form.
pub fn ex(src: &str) -> String {
    let b = body(&format!("let _ = {src};"));
    match &b.stmts[0] {
        Stmt::Let(l) => sx(&l.value),
        s => panic!("{s:?}"),
    }
}

/// Expression errors: `(code, column)` with the expression placed at column 1 of line 2.
pub fn ex_errs(src: &str) -> Vec<(&'static str, u32, u32)> {
    errs(&format!("function f() {{\nlet _ = {src};\n}}"))
}

pub fn sx(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Lit(l) => lit(l),
        ExprKind::Vault(p) => format!("vault({p})"),
        ExprKind::Var(n) => n.to_string(),
        ExprKind::TypeLit { name, fields } => format!("{}{}", name.name, fields_sx(fields)),
        ExprKind::Record(fields) => fields_sx(fields),
        ExprKind::Array(el) => format!("[{}]", el.iter().map(sx).collect::<Vec<_>>().join(", ")),
        ExprKind::Lambda { param, body } => format!("(=> {} {})", param.name, sx(body)),
        ExprKind::If(i) => if_sx(i),
        ExprKind::Paren(x) => format!("(paren {})", sx(x)),
        ExprKind::Unary { op, operand } => format!("({} {})", op.as_str(), sx(operand)),
        ExprKind::Binary { op, lhs, rhs } => format!("({} {} {})", op.as_str(), sx(lhs), sx(rhs)),
        ExprKind::Member { object, name } => format!("(. {} {})", sx(object), name.name),
        ExprKind::Call { callee, args } => {
            let mut s = format!("(call {}", sx(callee));
            for a in args {
                match &a.name {
                    Some(n) => s.push_str(&format!(" {}={}", n.name, sx(&a.value))),
                    None => s.push_str(&format!(" {}", sx(&a.value))),
                }
            }
            s + ")"
        }
        ExprKind::Index { object, index } => format!("([] {} {})", sx(object), sx(index)),
    }
}

fn if_sx(i: &IfExpr) -> String {
    let els = match &i.else_branch {
        ElseExpr::If(e) => if_sx(e),
        ElseExpr::Block(b) => block_sx(b),
    };
    format!("(if {} {} {})", sx(&i.cond), block_sx(&i.then_block), els)
}

pub fn block_sx(b: &Block) -> String {
    let mut parts: Vec<String> = b.stmts.iter().map(|s| stmt_kind(s).to_string()).collect();
    if let Some(t) = &b.tail {
        parts.push(sx(t));
    }
    format!("{{{}}}", parts.join("; "))
}

pub fn stmt_kind(s: &Stmt) -> &'static str {
    match s {
        Stmt::Let(_) => "let",
        Stmt::If(_) => "if",
        Stmt::For(_) => "for",
        Stmt::While(_) => "while",
        Stmt::Match(_) => "match",
        Stmt::Try(_) => "try",
        Stmt::Return(_) => "return",
        Stmt::Break(_) => "break",
        Stmt::Continue(_) => "continue",
        Stmt::Assign(_) => "assign",
        Stmt::Expr(_) => "expr",
    }
}

fn fields_sx(fields: &[Field]) -> String {
    let f: Vec<String> = fields
        .iter()
        .map(|f| format!("{}: {}", f.key.as_str(), sx(&f.value)))
        .collect();
    format!("{{{}}}", f.join(", "))
}

pub fn lit(l: &LitKind) -> String {
    match l {
        LitKind::Null => "null".into(),
        LitKind::Bool(b) => b.to_string(),
        LitKind::Int(i) => i.to_string(),
        LitKind::Float(f) => format!("{f:?}"),
        LitKind::Str(s) => format!("{s:?}"),
        LitKind::Duration(ms) => format!("dur({ms})"),
        LitKind::Size(b) => format!("size({b})"),
    }
}
