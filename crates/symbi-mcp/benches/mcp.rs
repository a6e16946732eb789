//! `cargo bench -p symbi-mcp --bench mcp`: the same measurement as `symbi bench mcp`
//! (tool-call round trips over stdio and HTTP against the Python `mcp` client on the same
//! server; SchemaPin verification latency with a pinned key), built with only this crate.
//! Environment: MCP_BENCH_ITERATIONS (default 500), SYMBI_TEST_DEPS.

fn main() {
    // `cargo test --benches` runs bench targets with no arguments to check they build; only
    // measure when cargo bench passes `--bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let deps =
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into());
    let iterations = std::env::var("MCP_BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let opts = symbi_mcp::bench::BenchOptions {
        python: std::path::Path::new(&deps).join("mcp-venv/bin/python"),
        iterations,
        warmup: 50,
        verify_iterations: 2000,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(symbi_mcp::bench::run(&opts))
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    for t in &r.transports {
        println!(
            "{:<5} symbi p50 {:.0} µs p99 {:.0} µs | python p50 {:.0} µs p99 {:.0} µs | ratio p50 {:.2} p99 {:.2}",
            t.transport,
            t.symbi.p50_us,
            t.symbi.p99_us,
            t.python_client.p50_us,
            t.python_client.p99_us,
            t.ratio_p50,
            t.ratio_p99
        );
    }
    println!(
        "verify pinned p50 {:.1} µs p99 {:.1} µs | bare ecdsa p50 {:.1} µs | ratio {:.2} | first use {:.0} µs | load {} -> {}",
        r.verify_pinned.p50_us,
        r.verify_pinned.p99_us,
        r.verify_bare_ecdsa.p50_us,
        r.verify_ratio_p50,
        r.verify_first_use_us,
        r.load_before,
        r.load_after
    );
}
