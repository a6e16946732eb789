//! GRAMMAR §2.9: expressions, precedence and associativity.

mod common;
use common::*;

#[test]
fn s2_9_precedence_table() {
    assert_eq!(ex("a || b && c"), "(|| a (&& b c))");
    assert_eq!(ex("a && b == c"), "(&& a (== b c))");
    assert_eq!(ex("a == b < c"), "(== a (< b c))");
    assert_eq!(ex("a < b + c"), "(< a (+ b c))");
    assert_eq!(ex("a + b * c"), "(+ a (* b c))");
    assert_eq!(ex("-a * b"), "(* (- a) b)");
    assert_eq!(ex("a % b / c * d"), "(* (/ (% a b) c) d)");
}

#[test]
fn s2_9_left_associativity() {
    assert_eq!(ex("a - b - c"), "(- (- a b) c)");
    assert_eq!(ex("a < b < c"), "(< (< a b) c)");
    assert_eq!(ex("a == b != c in d"), "(in (!= (== a b) c) d)");
    assert_eq!(ex("a || b || c"), "(|| (|| a b) c)");
}

#[test]
fn s2_9_documented_consequences() {
    assert_eq!(ex("not a == b"), "(== (not a) b)");
    assert_eq!(ex("-x.y"), "(- (. x y))");
    assert_eq!(ex("a in b && c"), "(&& (in a b) c)");
    assert_eq!(ex("a + x => x + 1"), "(+ a (=> x (+ x 1)))");
    assert_eq!(ex("if c { 1 } else { 2 } + 3"), "(+ (if c {1} {2}) 3)");
}

#[test]
fn s2_9_unary_nests() {
    assert_eq!(ex("- -x"), "(- (- x))");
    assert_eq!(ex("not !x"), "(not (! x))");
    assert_eq!(ex("!!x"), "(! (! x))");
}

#[test]
fn s2_9_postfix_chains() {
    assert_eq!(ex("f(x)(y)"), "(call (call f x) y)");
    assert_eq!(ex("a.b(c)"), "(call (. a b) c)");
    assert_eq!(ex("xs[0](1)"), "(call ([] xs 0) 1)");
    assert_eq!(ex("a.b.c[1].d"), "(. ([] (. (. a b) c) 1) d)");
    assert_eq!(ex("x.if.match"), "(. (. x if) match)");
}

#[test]
fn s2_9_arguments_named_and_positional() {
    assert_eq!(
        ex("f(1, limit: 3, type = \"x\",)"),
        "(call f 1 limit=3 type=\"x\")"
    );
    assert_eq!(ex("f(if: 1)"), "(call f if=1)");
    // E112 (positional after named) is the checker's: the parser keeps the order.
    assert_eq!(ex("f(a: 1, 2)"), "(call f a=1 2)");
    assert_eq!(ex_errs("f(,)"), [("P001", 2, 11)]);
    assert_eq!(ex_errs("f(a,,b)"), [("P001", 2, 13)]);
    assert_eq!(ex_errs("f(a b)"), [("P001", 2, 13)]);
}

#[test]
fn s2_9_records_arrays_and_type_literals() {
    assert_eq!(ex("{ a: 1 \"b c\": 2, if: 3, }"), "{a: 1, b c: 2, if: 3}");
    assert_eq!(ex("[1, 2, 3,]"), "[1, 2, 3]");
    assert_eq!(ex("[]"), "[]");
    assert_eq!(ex("{}"), "{}");
    assert_eq!(ex("Point { x: 1 y: 2 }"), "Point{x: 1, y: 2}");
    assert_eq!(ex("Point {}"), "Point{}");
    assert_eq!(ex_errs("[1 2]"), [("P001", 2, 12)]);
    assert_eq!(ex_errs("[, 1]"), [("P001", 2, 10)]);
    assert_eq!(ex_errs("[1,, 2]"), [("P001", 2, 12)]);
    assert_eq!(ex_errs("{ a: 1,, b: 2 }"), [("P001", 2, 16)]);
    assert_eq!(ex_errs("{ a 1 }"), [("P001", 2, 12)]);
}

#[test]
fn s2_9_lambdas() {
    assert_eq!(ex("x => x * 2"), "(=> x (* x 2))");
    assert_eq!(
        ex("xs.map(s => if s > 1 { \"a\" } else { \"b\" })"),
        "(call (. xs map) (=> s (if (> s 1) {\"a\"} {\"b\"})))"
    );
    assert_eq!(ex_errs("(a, b) => a")[0].0, "P001");
    // `{` after `=>` in a lambda is a record.
    assert_eq!(ex("x => { a: x }"), "(=> x {a: x})");
    assert_eq!(ex_errs("x => { return 1; }")[0].0, "P001");
}

#[test]
fn s2_9_if_expression_needs_else() {
    assert_eq!(
        ex("if a { 1 } else if b { 2 } else { 3 }"),
        "(if a {1} (if b {2} {3}))"
    );
    assert_eq!(ex_errs("if a { 1 }"), [("P001", 2, 19)]);
}

#[test]
fn s2_9_no_assignment_ternary_or_word_operators() {
    assert_eq!(ex_errs("a and b")[0].0, "P002");
    assert_eq!(ex_errs("a ? b : c")[0].0, "L003");
    assert_eq!(ex_errs("a..b")[0].0, "P001");
}

#[test]
fn s2_9_parentheses_are_kept() {
    assert_eq!(ex("(a + b) * c"), "(* (paren (+ a b)) c)");
    assert_eq!(ex_errs("(a + b"), [("P001", 2, 15)]);
}

#[test]
fn s2_9_expression_spans() {
    let src = "function f() { let v = a.b(1, c: [2]) + 3; }";
    let p = ok(src);
    let symbi_dsl::ast::Item::Function(f) = &p.items[0] else {
        panic!()
    };
    let symbi_dsl::ast::Stmt::Let(l) = &f.body.stmts[0] else {
        panic!()
    };
    assert_eq!(l.value.span.text(src), "a.b(1, c: [2]) + 3");
    let symbi_dsl::ast::ExprKind::Binary { lhs, .. } = &l.value.kind else {
        panic!()
    };
    assert_eq!(lhs.span.text(src), "a.b(1, c: [2])");
}
