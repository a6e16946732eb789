//! GRAMMAR §2.8: blocks and statements.

mod common;
use common::*;
use symbi_dsl::ast::*;

fn kinds(b: &Block) -> Vec<&'static str> {
    b.stmts.iter().map(stmt_kind).collect()
}

#[test]
fn s2_8_every_statement_kind() {
    let b = body(
        "let x = 1; let y: int = 2; if x { } for i in xs { } while c { break; continue; } match x { _ => 1 } try { } catch (e) { } return; x = 1; x += 1; f();",
    );
    assert_eq!(
        kinds(&b),
        [
            "let", "let", "if", "for", "while", "match", "try", "return", "assign", "assign",
            "expr"
        ]
    );
}

#[test]
fn s2_8_let_binders_and_typed_let() {
    let b = body("let _ = f(); let v: Map<String, int> = {};");
    let Stmt::Let(l0) = &b.stmts[0] else { panic!() };
    assert!(l0.binder.is_wildcard());
    let Stmt::Let(l1) = &b.stmts[1] else { panic!() };
    assert_eq!(l1.ty.as_ref().unwrap().args.len(), 2);
    err1("function f() { let = 1; }", "P001", 1, 20);
    err1("function f() { let x 1; }", "P001", 1, 21);
    err1("function f() { let x == 1; }", "P001", 1, 22);
}

#[test]
fn s2_8_semicolons_required_and_forbidden() {
    err1("function f() {\n  let x = 1\n  y();\n}", "P002", 2, 12);
    err1("function f() { return 1 }", "P002", 1, 24);
    err1("function f() { break }", "P002", 1, 21);
    err1("function f() { x = 1 }", "P002", 1, 21);
    err1("function f() { if a { };  }", "P001", 1, 24);
    err1("function f() { x();; }", "P001", 1, 20);
    err1("function f() { for i in x { }; }", "P001", 1, 30);
}

#[test]
fn s2_8_trailing_expression_is_the_block_value() {
    let b = body("let a = 1; a + 1");
    assert_eq!(block_sx(&b), "{let; (+ a 1)}");
    assert!(body("f();").tail.is_none());
    // A trailing expression must be last.
    err1("function f() { a b }", "P002", 1, 17);
}

#[test]
fn s2_8_a_block_is_not_a_statement() {
    err1("function f() { { let x = 1; } }", "P001", 1, 21);
}

#[test]
fn s2_8_if_else_chains() {
    let b = body("if a { 1 } else if b { 2 } else { 3 }");
    let Stmt::If(i) = &b.stmts[0] else { panic!() };
    let Some(ElseBranch::If(i2)) = &i.else_branch else {
        panic!()
    };
    assert!(matches!(i2.else_branch, Some(ElseBranch::Block(_))));
    // `if let`
    let b = body("if let Some(x) = opt { x }");
    let Stmt::If(i) = &b.stmts[0] else { panic!() };
    let Cond::Let { pattern, value, .. } = &i.cond else {
        panic!()
    };
    assert!(
        matches!(pattern, Pattern::Ctor { name, args, .. } if name.name == "Some" && args.len() == 1)
    );
    assert_eq!(sx(value), "opt");
}

#[test]
fn s2_8_patterns() {
    let b = body(
        "if let Pair(a, _ b) = p { } if let _ = x { } if let None = y { } if let Ok(Some(v)) = z { }",
    );
    let pats: Vec<_> = b
        .stmts
        .iter()
        .map(|s| match s {
            Stmt::If(IfStmt {
                cond: Cond::Let { pattern, .. },
                ..
            }) => pattern.clone(),
            _ => panic!(),
        })
        .collect();
    assert!(matches!(&pats[0], Pattern::Ctor { args, .. } if args.len() == 3));
    assert!(matches!(&pats[1], Pattern::Wildcard(_)));
    assert!(matches!(&pats[2], Pattern::Binding(i) if i.name == "None"));
    assert!(
        matches!(&pats[3], Pattern::Ctor { args, .. } if matches!(&args[0], Pattern::Ctor { .. }))
    );
    err1("function f() { if let 1 = x { } }", "P001", 1, 23);
}

#[test]
fn s2_8_for_and_while() {
    let b = body("for _ in range(3) { } while i < 3 { i += 1; }");
    let Stmt::For(f) = &b.stmts[0] else { panic!() };
    assert!(f.binder.is_wildcard());
    assert_eq!(sx(&f.iter), "(call range 3)");
    let Stmt::While(w) = &b.stmts[1] else {
        panic!()
    };
    assert_eq!(sx(&w.cond), "(< i 3)");
    err1("function f() { for x xs { } }", "P001", 1, 21);
    let p = ok("function f() { while true { break; } }");
    let notes: Vec<_> = p.syntax_notes.iter().map(|n| n.kind).collect();
    assert_eq!(notes, [SyntaxNoteKind::While, SyntaxNoteKind::Break]);
}

#[test]
fn s2_8_match_arms() {
    let b = body(
        "match x { \"a\" => 1, 2 => { f(); } 2.5 => x true => 1 null => {} y => y + 1, _ => { a: 1 } }",
    );
    let Stmt::Match(m) = &b.stmts[0] else {
        panic!()
    };
    let pats: Vec<String> = m
        .arms
        .iter()
        .map(|a| match &a.pattern {
            ArmPattern::Lit(l) => lit(&l.kind),
            ArmPattern::Wildcard(_) => "_".into(),
            ArmPattern::Binding(i) => format!("bind {}", i.name),
        })
        .collect();
    assert_eq!(pats, ["\"a\"", "2", "2.5", "true", "null", "bind y", "_"]);
    assert!(matches!(m.arms[1].body, ArmBody::Block(_)));
    assert!(matches!(&m.arms[4].body, ArmBody::Block(b) if b.stmts.is_empty()));
    assert!(matches!(
        &m.arms[6].body,
        ArmBody::Expr(Expr {
            kind: ExprKind::Record(_),
            ..
        })
    ));
    ok("function f() { match x { } }");
}

#[test]
fn s2_8_match_is_a_statement_and_arms_are_one_expression() {
    err1(
        "function f() { let y = match x { _ => 1 }; }",
        "P001",
        1,
        24,
    );
    err1(
        "function f() { match x { \"x\" => return y; } }",
        "P001",
        1,
        33,
    );
    err1("function f() { match x { -1 => 0 } }", "P001", 1, 26);
    err1(
        "function f() { match x { _ => 1,, _ => 2 } }",
        "P001",
        1,
        33,
    );
}

#[test]
fn s2_8_try_and_catch_clauses() {
    let b = body("try { a(); } catch (ValidationError e) { } catch (e) { } try { }");
    let Stmt::Try(t) = &b.stmts[0] else { panic!() };
    assert_eq!(t.catches.len(), 2);
    assert_eq!(t.catches[0].kind.as_ref().unwrap().name, "ValidationError");
    assert_eq!(t.catches[0].binding.name, "e");
    assert!(t.catches[1].kind.is_none());
    let Stmt::Try(t) = &b.stmts[1] else { panic!() };
    assert!(t.catches.is_empty());
    err1("function f() { try { } catch e { } }", "P001", 1, 29);
    // `finally { }` alone would be an empty type literal (D2); with a statement it is an error.
    err1("function f() { try { } finally { x(); } }", "P002", 1, 31);
    err1("function f() { try { } catch (a b c) { } }", "P001", 1, 34);
}

#[test]
fn s2_8_return_forms() {
    let b = body("return; return 1 + 2;");
    let Stmt::Return(r) = &b.stmts[0] else {
        panic!()
    };
    assert!(r.value.is_none());
    let Stmt::Return(r) = &b.stmts[1] else {
        panic!()
    };
    assert_eq!(sx(r.value.as_ref().unwrap()), "(+ 1 2)");
}

#[test]
fn s2_8_assignments_and_places() {
    let b = body("a = 1; a.b += 2; a[i].c -= 3; x *= 2; x /= 2; x %= 2; f() = 1; (a) = 2;");
    let ops: Vec<_> = b
        .stmts
        .iter()
        .map(|s| match s {
            Stmt::Assign(a) => (a.op, a.target.is_place()),
            _ => panic!(),
        })
        .collect();
    assert_eq!(
        ops,
        [
            (AssignOp::Assign, true),
            (AssignOp::Add, true),
            (AssignOp::Sub, true),
            (AssignOp::Mul, true),
            (AssignOp::Div, true),
            (AssignOp::Rem, true),
            (AssignOp::Assign, false), // E108 is the checker's (Appendix A)
            (AssignOp::Assign, false),
        ]
    );
    err1("function f() { a = b = c; }", "P001", 1, 22);
}

#[test]
fn statement_spans_include_semicolons() {
    let src = "function f() { let x = 1 ; y(); }";
    let p = ok(src);
    let Item::Function(f) = &p.items[0] else {
        panic!()
    };
    assert_eq!(f.body.stmts[0].span().text(src), "let x = 1 ;");
    assert_eq!(f.body.stmts[1].span().text(src), "y();");
    assert_eq!(f.body.span.text(src), "{ let x = 1 ; y(); }");
}
