//! Interpreter speed against rhai 1.27 on the same workloads, in the same run
//! (docs/benchmarks/dsl-interp.md). Each symbi iteration is a whole execution (coroutine,
//! input binding, budgets, result to JSON); each rhai iteration evaluates a pre-compiled
//! AST. Run: `cargo bench -p symbi-dsl --bench interp`.

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use symbi_dsl::host::{ActionError, ActionHost, ActionRequest, ExecutionInfo, SourceLocation};
use symbi_dsl::{ExecutionContext, Value};

struct NoActions;

#[async_trait(?Send)]
impl ActionHost for NoActions {
    async fn perform(&self, r: ActionRequest) -> Result<Value, ActionError> {
        Err(ActionError::UnknownAction { name: r.name })
    }
    async fn audit_log(
        &self,
        _: &ExecutionInfo,
        _: &str,
        _: &serde_json::Value,
        _: &SourceLocation,
    ) -> Result<(), String> {
        Ok(())
    }
}

const FIB_DSL: &str = r#"
function fib(n: int) -> int { if n < 2 { return n; } fib(n - 1) + fib(n - 2) }
agent bench() { with max_steps = 1000000000, timeout = 600s { fib(25) } }"#;
const FIB_RHAI: &str = r#"
fn fib(n) { if n < 2 { return n; } fib(n - 1) + fib(n - 2) }
fib(25)"#;

const STR_DSL: &str = r#"
agent bench() { with max_steps = 1000000000, timeout = 600s {
    let s = "";
    for i in range(20000) { s += "x" + i; }
    s.length
} }"#;
const STR_RHAI: &str = r#"
let s = "";
for i in 0..20000 { s += "x" + i; }
s.len()"#;

const MAP_DSL: &str = r#"
agent bench() { with max_steps = 1000000000, timeout = 600s {
    let items = [];
    for i in range(5000) { items.push({ id: i, group: "g" + (i % 10), value: i * 2 }); }
    let totals = {};
    for it in items {
        let g = it.group;
        if has(totals, g) { totals[g] += it.value; } else { totals[g] = it.value; }
    }
    let big = items.filter(x => x.value > 5000).map(x => x.id);
    [totals.length, big.length, totals["g3"]]
} }"#;
const MAP_RHAI: &str = r#"
let items = [];
for i in 0..5000 { items.push(#{ id: i, group: "g" + (i % 10), value: i * 2 }); }
let totals = #{};
for it in items {
    let g = it.group;
    if g in totals { totals[g] += it.value; } else { totals[g] = it.value; }
}
let big = items.filter(|x| x.value > 5000).map(|x| x.id);
[totals.len(), big.len(), totals["g3"]]"#;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let host: Arc<dyn ActionHost> = Arc::new(NoActions);
    let mut engine = rhai::Engine::new();
    engine.set_max_expr_depths(0, 0);
    engine.set_max_call_levels(1000);
    for (name, dsl, rh) in [
        ("fib25", FIB_DSL, FIB_RHAI),
        ("string_loop", STR_DSL, STR_RHAI),
        ("map_list", MAP_DSL, MAP_RHAI),
    ] {
        let prog =
            symbi_dsl::load("bench.symbi", dsl, &Default::default()).expect("bench program loads");
        // Same answer from both engines before timing anything.
        let ours = rt
            .block_on(symbi_dsl::execute(
                prog.clone(),
                "bench",
                serde_json::Value::Null,
                ExecutionContext::default(),
                host.clone(),
            ))
            .unwrap();
        let ast = engine.compile(rh).unwrap();
        let theirs: rhai::Dynamic = engine.eval_ast(&ast).unwrap();
        eprintln!("{name}: symbi = {}, rhai = {theirs}", ours.result);
        let mut g = c.benchmark_group(name);
        g.sample_size(20);
        g.bench_function("symbi", |b| {
            b.iter(|| {
                rt.block_on(symbi_dsl::execute(
                    prog.clone(),
                    "bench",
                    serde_json::Value::Null,
                    ExecutionContext::default(),
                    host.clone(),
                ))
                .unwrap()
            })
        });
        g.bench_function("rhai", |b| {
            b.iter(|| engine.eval_ast::<rhai::Dynamic>(&ast).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
