//! Small AST walkers shared by the checker and the compiler.

use crate::ast;

/// Calls `fe` on each direct sub-expression of a statement and `fb` on each direct
/// sub-block (in source order).
pub(crate) fn stmt_exprs<'a>(
    s: &'a ast::Stmt,
    fe: &mut dyn FnMut(&'a ast::Expr),
    fb: &mut dyn FnMut(&'a ast::Block),
) {
    match s {
        ast::Stmt::Let(l) => fe(&l.value),
        ast::Stmt::If(i) => if_exprs(i, fe, fb),
        ast::Stmt::For(f) => {
            fe(&f.iter);
            fb(&f.body);
        }
        ast::Stmt::While(w) => {
            fe(&w.cond);
            fb(&w.body);
        }
        ast::Stmt::Match(m) => {
            fe(&m.scrutinee);
            for a in &m.arms {
                match &a.body {
                    ast::ArmBody::Block(b) => fb(b),
                    ast::ArmBody::Expr(e) => fe(e),
                }
            }
        }
        ast::Stmt::Try(t) => {
            fb(&t.body);
            for c in &t.catches {
                fb(&c.body);
            }
        }
        ast::Stmt::Return(r) => {
            if let Some(v) = &r.value {
                fe(v)
            }
        }
        ast::Stmt::Break(_) | ast::Stmt::Continue(_) => {}
        ast::Stmt::Assign(a) => {
            fe(&a.target);
            fe(&a.value);
        }
        ast::Stmt::Expr(e) => fe(&e.expr),
    }
}

fn if_exprs<'a>(
    i: &'a ast::IfStmt,
    fe: &mut dyn FnMut(&'a ast::Expr),
    fb: &mut dyn FnMut(&'a ast::Block),
) {
    match &i.cond {
        ast::Cond::Expr(e) => fe(e),
        ast::Cond::Let { value, .. } => fe(value),
    }
    fb(&i.then_block);
    match &i.else_branch {
        Some(ast::ElseBranch::If(n)) => if_exprs(n, fe, fb),
        Some(ast::ElseBranch::Block(b)) => fb(b),
        None => {}
    }
}

/// Calls `f` on `e` and every sub-expression, entering lambdas and if-expression blocks.
pub(crate) fn each_expr(e: &ast::Expr, f: &mut dyn FnMut(&ast::Expr)) {
    f(e);
    match &e.kind {
        ast::ExprKind::Lit(_) | ast::ExprKind::Vault(_) | ast::ExprKind::Var(_) => {}
        ast::ExprKind::TypeLit { fields, .. } | ast::ExprKind::Record(fields) => {
            fields.iter().for_each(|x| each_expr(&x.value, f))
        }
        ast::ExprKind::Array(xs) => xs.iter().for_each(|x| each_expr(x, f)),
        ast::ExprKind::Lambda { body, .. } => each_expr(body, f),
        ast::ExprKind::If(i) => each_if(i, f),
        ast::ExprKind::Paren(x)
        | ast::ExprKind::Unary { operand: x, .. }
        | ast::ExprKind::Member { object: x, .. } => each_expr(x, f),
        ast::ExprKind::Binary { lhs, rhs, .. } => {
            each_expr(lhs, f);
            each_expr(rhs, f);
        }
        ast::ExprKind::Index { object, index } => {
            each_expr(object, f);
            each_expr(index, f);
        }
        ast::ExprKind::Call { callee, args } => {
            each_expr(callee, f);
            args.iter().for_each(|a| each_expr(&a.value, f));
        }
    }
}

fn each_if(i: &ast::IfExpr, f: &mut dyn FnMut(&ast::Expr)) {
    each_expr(&i.cond, f);
    each_block(&i.then_block, f);
    match &i.else_branch {
        ast::ElseExpr::If(n) => each_if(n, f),
        ast::ElseExpr::Block(b) => each_block(b, f),
    }
}

/// Calls `f` on every expression of a block, nested blocks included.
pub(crate) fn each_block(b: &ast::Block, f: &mut dyn FnMut(&ast::Expr)) {
    for s in &b.stmts {
        let mut blocks: Vec<&ast::Block> = Vec::new();
        stmt_exprs(s, &mut |e| each_expr(e, f), &mut |_| {});
        collect_blocks(s, &mut blocks);
        for nb in blocks {
            each_block(nb, f);
        }
    }
    if let Some(t) = &b.tail {
        each_expr(t, f);
    }
}

fn collect_blocks<'a>(s: &'a ast::Stmt, out: &mut Vec<&'a ast::Block>) {
    match s {
        ast::Stmt::If(i) => {
            let mut cur = i;
            loop {
                out.push(&cur.then_block);
                match &cur.else_branch {
                    Some(ast::ElseBranch::If(n)) => cur = n,
                    Some(ast::ElseBranch::Block(b)) => {
                        out.push(b);
                        break;
                    }
                    None => break,
                }
            }
        }
        ast::Stmt::For(f) => out.push(&f.body),
        ast::Stmt::While(w) => out.push(&w.body),
        ast::Stmt::Match(m) => {
            for a in &m.arms {
                if let ast::ArmBody::Block(b) = &a.body {
                    out.push(b);
                }
            }
        }
        ast::Stmt::Try(t) => {
            out.push(&t.body);
            for c in &t.catches {
                out.push(&c.body);
            }
        }
        _ => {}
    }
}
