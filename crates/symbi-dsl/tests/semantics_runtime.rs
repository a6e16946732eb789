//! Conformance tests for the run-time semantics of GRAMMAR §4–5 and the budgets of §4.8.

mod semantics_support;

use semantics_support::*;
use serde_json::json;
use std::sync::Arc;
use symbi_dsl::host::ActionError;

fn agent(body: &str) -> String {
    format!("agent t(x: Any) {{ with timeout = 10s {{ {body} }} }}")
}

fn eval(body: &str) -> serde_json::Value {
    match run_src(&agent(body), "t", json!({"x": null})) {
        Ok(o) => o.result,
        Err(f) => panic!("{}", f.render()),
    }
}

fn eval_text(body: &str) -> String {
    let o =
        run_src(&agent(body), "t", json!({"x": null})).unwrap_or_else(|f| panic!("{}", f.render()));
    text(&o)
}

fn fails(body: &str) -> symbi_dsl::ExecutionFailure {
    run_src(&agent(body), "t", json!({"x": null})).expect_err("should fail")
}

// ---- budgets (GRAMMAR 4.8) ---------------------------------------------------------

#[test]
fn infinite_loop_exhausts_the_step_budget() {
    let src = "agent spin() { with timeout = 60s, max_steps = 5000 { let i = 0; while true { i += 1; } } }";
    let f = run_src(src, "spin", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "BudgetExhausted");
    let b = f.budget.clone().unwrap();
    assert_eq!((b.budget, b.limit), ("steps", 5000));
    assert!(b.used > 5000);
    assert!(
        f.location.as_deref().unwrap().starts_with("t.symbi:1:"),
        "{f}"
    );
}

#[test]
fn budget_errors_are_not_catchable() {
    let src = "agent spin() { with max_steps = 2000 { try { while true { } } catch (e) { return \"caught\"; } } }";
    let f = run_src(src, "spin", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "BudgetExhausted");
}

#[test]
fn memory_hungry_loop_exhausts_the_heap_budget() {
    let src = r#"agent hog() { with max_memory = 1MB, max_steps = 100000000 {
        let xs = [];
        let s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
        while true { xs.push(s + xs.length); }
    } }"#;
    let f = run_src(src, "hog", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "BudgetExhausted", "{f}");
    let b = f.budget.clone().unwrap();
    assert_eq!((b.budget, b.limit), ("memory", 1 << 20));
}

#[test]
fn string_doubling_is_stopped_before_allocating() {
    let src = r#"agent hog() { with max_memory = 1MB { let s = "x"; while true { s = s + s; } } }"#;
    let f = run_src(src, "hog", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "BudgetExhausted", "{f}");
}

#[test]
fn discarded_garbage_does_not_count_against_the_heap() {
    // 2000 iterations each building and dropping a ~4 KB string: ~8 MB allocated in
    // total, never more than a few KB live.
    let src = r#"agent churn() { with max_memory = 1MB, max_steps = 10000000 {
        let n = 0;
        for i in range(2000) { let s = join(range(1000), ","); n += s.length; }
        n
    } }"#;
    let o = run_src(src, "churn", json!({})).unwrap_or_else(|f| panic!("{f}"));
    assert!(o.result.as_i64().unwrap() > 0);
}

#[test]
fn slow_action_times_out() {
    let src = "agent slow() { with timeout = 200ms { try { return remember(\"k\", 1); } catch (e) { return \"caught\"; } } }";
    let prog = load("t.symbi", src);
    let mut host = TestHost::new(prog);
    host.allow_all = true;
    host.delay = Some(std::time::Duration::from_secs(5));
    let started = std::time::Instant::now();
    let f = run_with(Arc::new(host), "slow", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "Timeout", "{f}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn pure_loop_times_out() {
    let src = "agent spin() { with timeout = 100ms, max_steps = 1000000000000 { while true { } } }";
    let f = run_src(src, "spin", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "Timeout");
    assert_eq!(f.budget.unwrap().budget, "time");
}

#[test]
fn steps_are_counted_per_block() {
    let src = "agent two() { with max_steps = 3000 { let i = 0; while i < 200 { i += 1; } } with max_steps = 3000 { while i < 400 { i += 1; } i } }";
    let o = run_src(src, "two", json!({})).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(o.result, json!(400));
}

// ---- values and operators (4.2, 4.5) -------------------------------------------------

#[test]
fn arithmetic_rules() {
    assert_eq!(eval_text("7 / 2"), "3.5");
    assert_eq!(eval("-7 % 2"), json!(-1));
    assert_eq!(eval("idiv(-7, 2)"), json!(-3));
    assert_eq!(eval_text("\"x\" + 2.0"), "\"x2.0\"");
    assert_eq!(eval_text("1 + 2.5"), "3.5");
    assert_eq!(eval("1 == 1.0"), json!(true));
    assert_eq!(eval("60s == 1m"), json!(true));
    assert_eq!(eval_text("90s + 0s"), "\"90s\"");
    assert_eq!(eval_text("1500ms"), "\"1500ms\"");
    assert_eq!(eval("8MB"), json!(8 << 20));
    assert_eq!(
        fails("9223372036854775807 + 1").kind.as_str(),
        "ArithmeticError"
    );
    assert_eq!(fails("1 / 0").kind.as_str(), "ArithmeticError");
    assert_eq!(fails("null < 1").kind.as_str(), "TypeError");
    assert_eq!(fails("{} - 1").kind.as_str(), "TypeError");
    assert_eq!(eval_text("[1, 2] + [3]"), "[1,2,3]");
    assert_eq!(
        eval_text("{a: 1, b: 2} + {c: 3, a: 9}"),
        r#"{"a":9,"b":2,"c":3}"#
    );
}

#[test]
fn float_text_everywhere() {
    assert_eq!(eval_text("to_string(2.0)"), "\"2.0\"");
    assert_eq!(
        eval_text("format(\"{} {} {}\", 0.1, 10000000000000000.0, 0.000015)"),
        "\"0.1 1e16 1.5e-5\""
    );
    assert_eq!(eval_text("join([1.0, 2], \"-\")"), "\"1.0-2\"");
    assert_eq!(eval_text("-0.0"), "-0.0");
}

#[test]
fn truthiness() {
    assert_eq!(
        eval("[!0, !0.0, !\"\", ![], !{}, !null, !0s, !\"0\"]"),
        json!([true, true, true, true, true, true, false, false])
    );
    assert_eq!(eval("1 && \"a\""), json!(true));
    assert_eq!(eval("0 || null"), json!(false));
}

#[test]
fn members_and_indexes() {
    assert_eq!(eval("{a: 1}.b"), json!(null));
    assert_eq!(eval("[1, 2, 3].length + \"héllo\".length"), json!(8));
    assert_eq!(eval("[1, 2, 3][-1]"), json!(3));
    assert_eq!(eval("\"héllo\"[1]"), json!("é"));
    assert_eq!(fails("[1][5]").kind.as_str(), "IndexError");
    let f = fails("let n = null; n.x");
    assert_eq!(f.kind.as_str(), "NullError");
    assert_eq!(f.message, "cannot read `x` of null");
}

#[test]
fn value_semantics_copy_on_assignment() {
    assert_eq!(
        eval("let a = [1]; let b = a; b.push(2); a.push(3); [a, b]"),
        json!([[1, 3], [1, 2]])
    );
    assert_eq!(
        eval("let m = {k: [1]}; let n = m; n.k.push(2); [m, n]"),
        json!([{"k": [1]}, {"k": [1, 2]}])
    );
}

#[test]
fn mutating_methods_and_compound_assignment() {
    assert_eq!(
        eval(
            "let xs = [1, 2, 3]; let p = xs.pop(); xs.insert(0, 9); let r = xs.remove(1); xs.extend([7]); [xs, p, r]"
        ),
        json!([[9, 2, 7], 3, 1])
    );
    assert_eq!(
        eval("let m = {a: 1}; m.set(\"b\", 2); let r = m.remove(\"a\"); [m, r]"),
        json!([{"b": 2}, 1])
    );
    assert_eq!(
        eval("let m = {c: {n: 1}}; m.c.n += 4; m[\"c\"][\"n\"] *= 2; m"),
        json!({"c": {"n": 10}})
    );
    assert_eq!(
        eval("let s = \"a\"; for i in range(3) { s += i; } s"),
        json!("a012")
    );
    // The place is read before the value mutates it (GRAMMAR 4.4 order).
    assert_eq!(
        eval("let xs = [1, 2]; xs = xs + [xs.pop()]; xs"),
        json!([1, 2, 2])
    );
    assert_eq!(fails("let xs = []; xs[3] = 1;").kind.as_str(), "IndexError");
    assert_eq!(fails("let m = {}; m.k += 1;").kind.as_str(), "TypeError");
}

#[test]
fn scopes_and_implicit_variables() {
    assert_eq!(
        eval("try { results = [1]; error(\"boom\"); } catch (e) { results.push(2); } results"),
        json!([1, 2])
    );
    assert_eq!(eval("let x = 1; if true { let x = 2; } x"), json!(1));
    let f = fails("if false { y = 1; } y");
    assert_eq!(f.kind.as_str(), "NameError");
    assert_eq!(f.message, "`y` is not defined");
}

#[test]
fn lambdas_capture_by_value() {
    assert_eq!(
        eval("let k = 10; let f = v => v + k; k = 0; [f(1), [1, 2].map(f)]"),
        json!([11, [11, 12]])
    );
    assert_eq!(eval("let add = n => (m => n + m); add(2)(3)"), json!(5));
    assert_eq!(eval("[3, 1, 2].sort(v => -v)"), json!([3, 2, 1]));
    assert_eq!(eval("reduce([1, 2, 3], 0, p => p[0] + p[1])"), json!(6));
}

#[test]
fn block_values_from_if_match_try() {
    let src = r#"function f(s: String) -> String { match s { "a" => "A", _ => "?" } }
        function g(n: int) -> int { if n > 0 { 1 } else { 2 } }
        agent t() { with { [f("a"), f("b"), g(1), g(0)] } }"#;
    assert_eq!(
        run_src(src, "t", json!({})).unwrap().result,
        json!(["A", "?", 1, 2])
    );
}

#[test]
fn if_let_patterns() {
    assert_eq!(
        eval("let v = null; if let Some(x) = v { 1 } else { 2 }"),
        json!(2)
    );
    assert_eq!(eval("if let Some(x) = 5 { x } else { 0 }"), json!(5));
    assert_eq!(
        eval("if let Point(a, b) = {kind: \"Point\", values: [1, 2]} { a + b } else { 0 }"),
        json!(3)
    );
}

#[test]
fn recursion_limit_is_256() {
    let src = "function r(n: int) -> int { r(n + 1) } function ok(n: int) -> int { if n == 0 { 0 } else { 1 + ok(n - 1) } }
        agent t() { with { let depth = ok(200); try { r(0); } catch (StackOverflow e) { return [depth, e.kind]; } } }";
    assert_eq!(
        run_src(src, "t", json!({})).unwrap().result,
        json!([200, "StackOverflow"])
    );
}

#[test]
fn fib_recursion() {
    let src = "function fib(n: int) -> int { if n < 2 { return n; } fib(n - 1) + fib(n - 2) } agent t(n: int) -> int { with { fib(n) } }";
    assert_eq!(
        run_src(src, "t", json!({"n": 20})).unwrap().result,
        json!(6765)
    );
}

// ---- errors (4.9) ------------------------------------------------------------------

#[test]
fn errors_have_kind_location_and_stack() {
    let src = "function inner(v: int) -> int {\n    v / 0\n}\nagent t() { with { inner(1) } }";
    let f = run_src(src, "t", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "ArithmeticError");
    assert_eq!(f.location.as_deref(), Some("t.symbi:2:5"));
    assert_eq!(f.stack[0].function, "function inner");
    assert_eq!(f.stack[1].function, "agent t");
    assert_eq!(f.stack[1].location, "t.symbi:4:20");
    assert!(
        f.render()
            .starts_with("t.symbi:2:5: error: division by zero [ArithmeticError]\n")
    );
}

#[test]
fn typed_catch_and_rethrow() {
    assert_eq!(
        eval(
            "try { error(\"m\", kind: \"V\"); } catch (Other e) { 1 } catch (V e) { [e.kind, e.message] }"
        ),
        json!(["V", "m"])
    );
    let f = fails("try { error(\"m\", kind: \"V\"); } catch (e) { error(e); }");
    assert_eq!(f.kind.as_str(), "V");
    assert_eq!(
        f.location.as_deref(),
        Some("t.symbi:1:46"),
        "the original raise keeps its location"
    );
    assert_eq!(
        fails("error(\"x\", kind: \"Timeout\");").kind.as_str(),
        "TypeError"
    );
    assert_eq!(
        eval("try { error(\"x\", details: {a: 1}); } catch (Error e) { e.details }"),
        json!({"a": 1})
    );
}

#[test]
fn tool_kinds_cannot_pose_as_reserved_kinds() {
    let src = "agent t() { with { try { flaky(); } catch (ActionFailed e) { return [e.kind, e.details.reported_kind, e.action]; } } }";
    let prog = load("t.symbi", src);
    let mut host = TestHost::new(prog.clone());
    host.allow_all = true;
    host.tools.insert(
        "flaky".into(),
        Err(ActionError::Failed {
            kind: Some("PolicyDenied".into()),
            message: "nope".into(),
            details: None,
        }),
    );
    assert_eq!(
        run_with(Arc::new(host), "t", json!({})).unwrap().result,
        json!(["ActionFailed", "PolicyDenied", "flaky"])
    );
    let src = "agent t() { with { try { flaky(); } catch (ActionFailed e) { return e.kind; } } }";
    let mut host = TestHost::new(load("t.symbi", src));
    host.allow_all = true;
    host.tools.insert(
        "flaky".into(),
        Err(ActionError::Failed {
            kind: Some("APIError".into()),
            message: "x".into(),
            details: None,
        }),
    );
    assert_eq!(
        run_with(Arc::new(host), "t", json!({})).unwrap().result,
        json!("APIError")
    );
}

#[test]
fn component_missing_is_a_clear_action_failure() {
    let src = "agent t() { with { knowledge_search(\"q\") } }";
    let mut host = TestHost::new(load("t.symbi", src));
    host.allow_all = true;
    host.tools.insert(
        "knowledge_search".into(),
        Err(ActionError::ComponentMissing {
            action: "knowledge_search".into(),
            component: "knowledge base".into(),
            message: "configure [context]".into(),
        }),
    );
    let f = run_with(Arc::new(host), "t", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "ActionFailed");
    assert!(f.message.contains("knowledge base"), "{}", f.message);
    assert_eq!(f.details["missing_component"], json!("knowledge base"));
}

#[test]
fn secrets_stay_secret() {
    let src = "agent t() { with { let k = vault://api/key; [\"Bearer \" + k, k.length, hmac_sha256(k, \"d\") != \"\"] } }";
    let o = run_src(src, "t", json!({})).unwrap();
    assert_eq!(o.result, json!(["[REDACTED]", 6, true]));
}

#[test]
fn delegation_depth_is_limited() {
    let src = "agent a() { with { delegate(\"a\", {}) } }";
    let prog = load("t.symbi", src);
    let mut host = TestHost::new(prog);
    host.allow_all = true;
    let f = run_with(Arc::new(host), "a", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "ActionFailed");
    assert!(f.message.contains("delegation depth"), "{}", f.message);
}

#[test]
fn intrinsics_are_recorded_and_replayable() {
    let src =
        "agent t() { with { log(\"debug\", \"hi\"); print(\"a\", 1); [now(), generate_id()] } }";
    let prog = load("t.symbi", src);
    let mut host = TestHost::new(prog.clone());
    host.allow_all = true;
    let host = Arc::new(host);
    let o = run_with(host.clone(), "t", json!({})).unwrap();
    assert_eq!(o.log.lines.len(), 2);
    assert_eq!(o.log.lines[1].message, "a 1");
    assert_eq!(o.log.recorded.len(), 2);
    let ctx = symbi_dsl::ExecutionContext {
        replay: Some(o.log.recorded.clone()),
        ..Default::default()
    };
    let h: Arc<dyn symbi_dsl::ActionHost> = host;
    let again = block_on(symbi_dsl::execute(prog, "t", json!({}), ctx, h)).unwrap();
    assert_eq!(again.result, o.result);
}

#[test]
fn builtins_sample() {
    assert_eq!(
        eval("[round(2.5), round(-2.5), round(1.25, 1), round(1.005, 2)]"),
        json!([3, -3, 1.3, 1.0])
    );
    assert_eq!(
        eval("[to_int(\"12\"), to_int(-2.7), to_bool(\"TRUE\"), type_of(1s)]"),
        json!([12, -2, true, "duration"])
    );
    assert_eq!(
        eval(
            "[substring(\"hello\", -3), substring(\"hello\", 1, 3), replace(\"aaa\", \"a\", \"bb\")]"
        ),
        json!(["llo", "el", "bbbbbb"])
    );
    assert_eq!(
        eval("[unique([1, 1.0, \"1\", 2]), flatten([[1], 2, [3, [4]]]), range(5, 0, -2)]"),
        json!([[1, "1", 2], [1, 2, 3, [4]], [5, 3, 1]])
    );
    assert_eq!(
        eval("[matches(\"abc123\", \"[0-9]+$\"), \"a,b\".split(\",\"), \"  x \".trim()]"),
        json!([true, ["a", "b"], "x"])
    );
    assert_eq!(
        eval("[sum([1, 2]), sum([1, 2.5]), avg([]), min(3, 1, 2), max([1, 5])]"),
        json!([3, 3.5, null, 1, 5])
    );
    assert_eq!(
        eval("[base64_decode(base64_encode(\"hé\")), hash_sha256(\"abc\")]"),
        json!([
            "hé",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        ])
    );
    assert_eq!(
        eval("parse_json(\"{\\\"b\\\": 1, \\\"a\\\": [2.0]}\")"),
        json!({"b": 1, "a": [2.0]})
    );
    assert_eq!(
        eval("to_json({a: 2.0, d: 90s})"),
        json!("{\"a\":2.0,\"d\":\"90s\"}")
    );
    assert_eq!(fails("format(\"{} {}\", 1)").kind.as_str(), "ArityError");
    assert_eq!(fails("range(0, 10, 0)").kind.as_str(), "ArithmeticError");
}

#[test]
fn input_binding_rules() {
    let src = "agent one(cfg: Map<String, int>) { with { cfg } } agent two(a: int, b: Option<float>) { with { [a, b] } }";
    assert_eq!(
        run_src(src, "one", json!({"x": 1})).unwrap().result,
        json!({"x": 1})
    );
    let o = run_src(src, "two", json!({"a": 1, "b": 2, "extra": true})).unwrap();
    assert_eq!(
        symbi_dsl::value::json_to_string(&o.result, false),
        "[1,2.0]"
    );
    assert_eq!(o.ignored_input_keys, vec!["extra".to_string()]);
    assert_eq!(
        run_src(src, "two", json!({"b": 2}))
            .unwrap_err()
            .kind
            .as_str(),
        "InputError"
    );
    assert_eq!(
        run_src(src, "two", json!({"a": "x"}))
            .unwrap_err()
            .kind
            .as_str(),
        "InputError"
    );
}

#[test]
fn return_type_is_enforced() {
    let src = "agent t() -> int { with { let s = \"no\"; return s; } }";
    let f = run_src(src, "t", json!({})).unwrap_err();
    assert_eq!(f.kind.as_str(), "TypeError");
}

#[test]
fn requires_is_checked_against_the_principal() {
    let src = "agent t() { with requires = [\"clearance_a\"] { 1 } }";
    let prog = load("t.symbi", src);
    let mut h = TestHost::new(prog.clone());
    h.allow_all = true;
    let h: Arc<dyn symbi_dsl::ActionHost> = Arc::new(h);
    let f = block_on(symbi_dsl::execute(
        prog.clone(),
        "t",
        json!({}),
        Default::default(),
        h.clone(),
    ))
    .unwrap_err();
    assert_eq!(f.kind.as_str(), "PolicyDenied");
    let mut p = symbi_types::Principal::agent("alice");
    p.attributes
        .insert("clearances".into(), json!(["clearance_a"]));
    let ctx = symbi_dsl::ExecutionContext {
        initiator: Some(p),
        ..Default::default()
    };
    assert_eq!(
        block_on(symbi_dsl::execute(prog, "t", json!({}), ctx, h))
            .unwrap()
            .result,
        json!(1)
    );
}

#[test]
fn execution_pool_gives_send_futures() {
    let prog = load("t.symbi", "agent t(n: int) { with { n * 2 } }");
    let mut host = TestHost::new(prog.clone());
    host.allow_all = true;
    let host: Arc<dyn symbi_dsl::ActionHost> = Arc::new(host);
    let pool = symbi_dsl::ExecutionPool::new(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let mut hs = Vec::new();
        for i in 0..8 {
            let fut = pool.execute(
                prog.clone(),
                "t".into(),
                json!({"n": i}),
                Default::default(),
                host.clone(),
            );
            hs.push(fut);
        }
        futures::future::join_all(hs).await
    });
    let got: Vec<i64> = results
        .into_iter()
        .map(|r| r.unwrap().result.as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![0, 2, 4, 6, 8, 10, 12, 14]);
}

#[test]
fn dropping_a_suspended_execution_unwinds_it_cleanly() {
    // The caller gives up while an action is pending: the execution future (and its
    // suspended coroutine) is dropped; nothing leaks or aborts, and later executions on
    // the same thread run normally (the pooled stack is still usable).
    let src = "agent t() { with timeout = 60s { let keep = [1, 2, 3]; remember(\"k\", keep) } }";
    let prog = load("t.symbi", src);
    let mut host = TestHost::new(prog.clone());
    host.allow_all = true;
    host.delay = Some(std::time::Duration::from_secs(30));
    let h: Arc<dyn symbi_dsl::ActionHost> = Arc::new(host);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_millis(100),
            symbi_dsl::execute(prog.clone(), "t", json!({}), Default::default(), h),
        )
        .await
    });
    assert!(r.is_err(), "the caller's timeout fired");
    assert_eq!(
        run_src("agent t() { with { 41 + 1 } }", "t", json!({}))
            .unwrap()
            .result,
        json!(42)
    );
}
