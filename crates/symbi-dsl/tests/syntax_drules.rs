//! GRAMMAR §3: the ambiguity rules D1–D21, each with valid and invalid cases.

mod common;
use common::*;
use symbi_dsl::ast::*;

#[test]
fn d1_keywords_by_position_and_reserved_words_as_names() {
    // Contextual keywords are identifiers elsewhere.
    body("let policy = 1; let memory = policy; let allow = memory; let search = allow;");
    ok("schedule s { policy: \"p\" agent: a }");
    // Reserved words are rejected in every binding position with P007.
    err1("function f() { let if = 1; }", "P007", 1, 20);
    err1("function f() { let true = 2; }", "P007", 1, 20);
    err1("function f() { let null = 3; }", "P007", 1, 20);
    err1("function f(in: int) { }", "P007", 1, 12);
    err1("agent return {}", "P007", 1, 7);
    err1("function f() { for match in x { } }", "P007", 1, 20);
    err1("function f() { try { } catch (let) { } }", "P007", 1, 31);
    assert_eq!(
        msg("function f() { let if = 1; }"),
        "reserved word `if` cannot be used as a name"
    );
    // In Name positions any word is fine.
    assert_eq!(
        ex("{ type: \"a\", if: 1 }.if"),
        "(. {type: \"a\", if: 1} if)"
    );
}

#[test]
fn d2_type_literal_versus_block_after_a_word() {
    // Condition position: `Ident {` starts the body unless `Name :` follows.
    let b = body("if ok { x } if x == Point { a: 1 } { y } for i in items { }");
    let Stmt::If(i0) = &b.stmts[0] else { panic!() };
    assert!(matches!(&i0.cond, Cond::Expr(e) if sx(e) == "ok"));
    let Stmt::If(i1) = &b.stmts[1] else { panic!() };
    assert!(matches!(&i1.cond, Cond::Expr(e) if sx(e) == "(== x Point{a: 1})"));
    let Stmt::For(f) = &b.stmts[2] else { panic!() };
    assert_eq!(sx(&f.iter), "items");
    // `Ident {}` in a condition: the name ends the expression, `{}` is the body.
    let b = body("while running {} if Foo {} else {}");
    assert!(matches!(&b.stmts[0], Stmt::While(w) if sx(&w.cond) == "running"));
    // Elsewhere `Ident {}` is an empty type literal.
    assert_eq!(ex("Empty {}"), "Empty{}");
    // `if x == Foo {} {}` is accepted by Symbiont, rejected by symbi (Appendix A).
    assert!(!codes("function f() { if x == Foo {} { y(); } }").is_empty());
    // A string key also makes a type literal.
    assert_eq!(ex("T { \"k\": 1 }"), "T{k: 1}");
}

#[test]
fn d3_record_versus_block() {
    // A `{` at statement start is a record expression.
    let b = body("{ a: 1 };");
    assert!(matches!(&b.stmts[0], Stmt::Expr(e) if matches!(e.expr.kind, ExprKind::Record(_))));
    // After `=>`: record if `Name :`/`STRING :` follows, otherwise a block.
    let b = body("match x { 1 => { a: 1 } 2 => {} 3 => { \"k\": 2 } 4 => { f(); } }");
    let Stmt::Match(m) = &b.stmts[0] else {
        panic!()
    };
    let shapes: Vec<_> = m
        .arms
        .iter()
        .map(|a| matches!(a.body, ArmBody::Block(_)))
        .collect();
    assert_eq!(shapes, [false, true, false, true]);
}

#[test]
fn d4_named_argument_versus_expression() {
    assert_eq!(ex("f(x == 1)"), "(call f (== x 1))");
    assert_eq!(ex("f(x = 1)"), "(call f x=1)");
    assert_eq!(ex("f(x: 1)"), "(call f x=1)");
    assert_eq!(ex("f(x => x)"), "(call f (=> x x))");
    assert_eq!(ex("f(\"x\")"), "(call f \"x\")");
    assert_eq!(ex_errs("f(\"x\": 1)")[0].0, "P001");
}

#[test]
fn d5_lambda_versus_match_arm() {
    assert_eq!(ex("y => y + 1"), "(=> y (+ y 1))");
    let b = body("match v { y => y + 1 }");
    let Stmt::Match(m) = &b.stmts[0] else {
        panic!()
    };
    assert!(matches!(&m.arms[0].pattern, ArmPattern::Binding(i) if i.name == "y"));
    assert!(matches!(&m.arms[0].body, ArmBody::Expr(e) if sx(e) == "(+ y 1)"));
}

#[test]
fn d6_with_attribute_values_are_single_values() {
    let p = ok("agent a { with sandbox = Tier1 { x(); } }");
    let Item::Agent(a) = &p.items[0] else {
        panic!()
    };
    let w = a.with_blocks().next().unwrap();
    assert!(matches!(&w.attrs[0].value, PropValue::Value(Value::Word(v)) if v.name == "Tier1"));
    assert_eq!(w.body.stmts.len(), 1);
    err1("agent a { with t = 1 + 2 { } }", "P001", 1, 22);
    err1("agent a { with t = f(x) { } }", "P001", 1, 21);
    err1("agent a { with , t = 1 { } }", "P001", 1, 16);
    err1("agent a { with t = 1,, u = 2 { } }", "P001", 1, 22);
    err1("agent a { with t: 1 { } }", "P001", 1, 17);
    // The header recovers at the body `{`: errors in the body are still reported.
    assert_eq!(
        codes("agent a { with t = 1 + 2 { let x = ; } }"),
        ["P001", "P001"]
    );
}

#[test]
fn d7_memory_and_webhook_entries_read_pairwise() {
    let p = ok("memory m { store markdown path \"/p\" search { vector_weight 0.5 } retention 1y }");
    let Item::Memory(m) = &p.items[0] else {
        panic!()
    };
    assert_eq!(m.entries.len(), 4);
    let p = ok("webhook w { filter { equals \"x\" } path \"/p\" }");
    let Item::Webhook(w) = &p.items[0] else {
        panic!()
    };
    assert!(matches!(w.entries[0], WebhookEntry::Filter(_)));
    // `search` / `filter` cannot be property keys there.
    err1("memory m { search \"x\" }", "P001", 1, 18);
}

#[test]
fn d8_end_of_a_policy_rule() {
    let p = ok("policy p { allow: a.b(x) if x.domain in hosts deny: c audit: all }");
    let Item::Policy(pol) = &p.items[0] else {
        panic!()
    };
    assert_eq!(
        sx(pol.rules[0].guard.as_ref().unwrap()),
        "(in (. x domain) hosts)"
    );
    assert_eq!(pol.rules.len(), 3);
    err1("policy p { allow: x without y }", "P001", 1, 21);
    err1("policy p { allow: x for y }", "P001", 1, 21);
    // Recovery resumes at the next rule: both errors are reported.
    assert_eq!(
        codes("policy p { allow: x with y deny: a b allow: c }"),
        ["P001", "P001"]
    );
}

#[test]
fn d9_if_at_statement_start_is_a_statement() {
    let b = body("if a { 1 } else { 2 }");
    assert!(matches!(b.stmts[0], Stmt::If(_)));
    assert!(b.tail.is_none());
    // …so `if … {} + 1` is a statement followed by `+ 1`-error; parenthesise instead.
    assert!(!codes("function f() { if a { 1 } else { 2 } + 1; }").is_empty());
    let b = body("(if a { 1 } else { 2 }) + 1;");
    assert!(matches!(b.stmts[0], Stmt::Expr(_)));
}

#[test]
fn d10_dangling_else_and_else_on_new_line() {
    let b = body("if a { } \n else if b { } \n else { }");
    let Stmt::If(i) = &b.stmts[0] else { panic!() };
    assert!(matches!(&i.else_branch, Some(ElseBranch::If(e)) if e.else_branch.is_some()));
    err1("function f() { if a { } else x(); }", "P001", 1, 30);
    err1("function f() { else { } }", "P001", 1, 16);
}

#[test]
fn d11_statement_or_trailing_expression() {
    assert!(matches!(body("f();").stmts[0], Stmt::Expr(_)));
    assert!(matches!(body("a.b = 1;").stmts[0], Stmt::Assign(_)));
    assert!(body("f()").tail.is_some());
    err1(
        "function f() {\n    let r = http.get(url)\n    x;\n}",
        "P002",
        2,
        26,
    );
    let p = symbi_dsl::parse(
        "function f() {\n    let r = http.get(url)\n    x;\n}",
        "probe.symbi",
    );
    let d = &p.diagnostics[0];
    assert_eq!(d.message, "expected `;` after the `let` statement");
    assert_eq!(d.primary_label.as_deref(), Some("add `;` here"));
}

#[test]
fn d12_type_application_in_expression_fails() {
    assert_eq!(ex_errs("Array<int>")[0].0, "P001");
    assert_eq!(ex("a < b > c"), "(> (< a b) c)");
}

#[test]
fn d13_assignment_targets_are_any_expression_for_the_checker() {
    let b = body("f() = 1; 1 = 2; a[i].c = 3;");
    let places: Vec<_> = b
        .stmts
        .iter()
        .map(|s| match s {
            Stmt::Assign(a) => a.target.is_place(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(places, [false, false, true]);
}

#[test]
fn d14_first_in_after_the_binder_is_the_for_syntax() {
    let b = body("for x in a in b { }");
    let Stmt::For(f) = &b.stmts[0] else { panic!() };
    assert_eq!(sx(&f.iter), "(in a b)");
}

#[test]
fn d15_unary_versus_binary_minus() {
    assert_eq!(ex("a - b"), "(- a b)");
    assert_eq!(ex("a - -b"), "(- a (- b))");
    assert_eq!(ex("- 5m"), "(- dur(300000))");
    assert_eq!(ex("f(-1)"), "(call f (- 1))");
}

#[test]
fn d16_not_is_only_prefix() {
    assert_eq!(ex("not a"), "(not a)");
    assert_eq!(ex("!(a in b)"), "(! (paren (in a b)))");
    let p = symbi_dsl::parse("function f() { let x = a not in b; }", "t");
    assert_eq!(p.diagnostics[0].code, "P002");
    assert!(
        p.diagnostics[0]
            .help
            .as_deref()
            .unwrap()
            .contains("!(a in b)")
    );
}

#[test]
fn d17_commas() {
    // Optional between params, fields, struct fields, attrs, pairs, properties, data
    // classification rules, sub-patterns and arms.
    ok(
        "agent a(x: int y: int) { with a = 1 b = 2 { let r = { p: 1 q: 2 }; if let P(a b) = r { } match r { 1 => 1 2 => 2 } } }",
    );
    ok("type T = { a: int b: int } metadata { a = 1 b = 2 } schedule s { cron: \"x\" at: \"y\" }");
    ok("channel c { platform: \"s\" data_classification { pii: redact api_key: block } }");
    // Required between array elements and arguments.
    assert_eq!(ex_errs("[1 2]")[0].0, "P001");
    assert_eq!(ex_errs("f(1 2)")[0].0, "P001");
    // At most one comma between elements, one trailing, none leading.
    for bad in [
        "[1,,2]",
        "[,1]",
        "f(,1)",
        "f(1,,)",
        "{ a: 1,, }",
        "{ , a: 1 }",
    ] {
        assert_eq!(ex_errs(bad)[0].0, "P001", "{bad}");
    }
    err1("metadata { , a = 1 }", "P001", 1, 12);
    err1("function f() { match x { , 1 => 1 } }", "P001", 1, 26);
}

#[test]
fn d18_catch_clause_words() {
    let b = body("try { } catch (e) { } catch (Kind e) { }");
    let Stmt::Try(t) = &b.stmts[0] else { panic!() };
    assert_eq!(
        (
            t.catches[0].kind.is_none(),
            t.catches[1].kind.as_ref().map(|k| k.name.as_str())
        ),
        (true, Some("Kind"))
    );
    err1("function f() { try { } catch () { } }", "P001", 1, 31);
}

#[test]
fn d19_capabilities_any_array() {
    let p = ok("agent a { capabilities = [\"x\", y, 1 + 2, f()] }");
    let Item::Agent(a) = &p.items[0] else {
        panic!()
    };
    let AgentItem::Capabilities(c) = &a.items[0] else {
        panic!()
    };
    assert_eq!(c.list.elems.len(), 4);
}

#[test]
fn d20_while_break_continue_are_reserved() {
    err1("function f() { let break = 1; }", "P007", 1, 20);
    err1("function f(continue: int) { }", "P007", 1, 12);
    err1("function f() { let while = 1; }", "P007", 1, 20);
    // Called as functions: the syntax error of the statement the word begins.
    err1("function f() { while(x); }", "P001", 1, 24);
    err1("function f() { break(1); }", "P002", 1, 21);
    // `break;` / `continue;` outside a loop parse (E109 is the checker's).
    ok("function f() { break; continue; }");
}

#[test]
fn d21_recovery_reports_several_errors_in_one_pass() {
    let src = "function f() {\n  let a = ;\n  let b = 1\n  c();\n  let = 2;\n}\nfunction g() { x( }\nagent z { with { y = [1 2]; } }";
    let e = errs(src);
    assert_eq!(
        e,
        [
            ("P001", 2, 11),
            ("P002", 3, 12),
            ("P001", 5, 7),
            ("P001", 7, 19),
            ("P001", 8, 25)
        ]
    );
}

#[test]
fn d21_recovery_stops_at_a_top_level_item_at_column_1() {
    // The unclosed agent body ends where the next item starts at column 1.
    let src = "agent a {\n  with {\n    let x = 1;\n\nagent b {\n  with { }\n}\n";
    let p = symbi_dsl::parse(src, "t");
    assert_eq!(p.diagnostics.len(), 1, "{}", p.render_diagnostics());
    assert_eq!(p.diagnostics[0].code, "P003");
    assert_eq!(
        p.diagnostics[0].labels[0].message,
        "unclosed `{` opened here"
    );
    assert_eq!(
        p.program.items.len(),
        2,
        "both agents are in the partial program"
    );
}

#[test]
fn d21_at_most_50_errors() {
    let src = "function f() {\n".to_string() + &"  let = 1;\n".repeat(80) + "}\n";
    let p = symbi_dsl::parse(&src, "t");
    assert_eq!(p.diagnostics.len(), 50);
    let lexical = "|".repeat(200);
    assert_eq!(
        symbi_dsl::parse(&lexical, "t").diagnostics.len(),
        1,
        "a run of bad characters is one error"
    );
    let many = "| ".repeat(200);
    assert_eq!(symbi_dsl::parse(&many, "t").diagnostics.len(), 50);
}

#[test]
fn d21_recovery_never_makes_an_invalid_file_valid() {
    for src in [
        "agent a { with { let = ; } }",
        "agent a {",
        "}",
        "agent a { with { f( } }",
        "policy p { allow x }",
    ] {
        assert!(symbi_dsl::parse(src, "t").has_errors(), "{src}");
    }
}

#[test]
fn d21_agent_items_at_column_1_are_not_new_top_level_items() {
    ok(
        "agent a {\ncapabilities = []\npolicy p { allow: x }\nfunction f() { }\nwith { }\n}\nchannel c {\npolicy p { allow: x }\n}",
    );
    // …but inside a `with` block they are the sign of an unclosed block.
    let e = errs("agent a {\n  with {\npolicy p { allow: x }\n}\n");
    assert_eq!(e[0].0, "P003");
}
