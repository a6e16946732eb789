//! The `symbi bench vectors` / `symbi bench rag` load tests, runnable from the test build
//! (dependencies — Qdrant Edge included — are optimised at opt-level 2 in the dev profile).
//! Long: ignored by default. Run with
//!
//! ```text
//! SYMBI_BENCH_COUNT=100000 cargo test -p symbi-context --test bench_run -- --ignored --nocapture
//! ```
//!
//! Environment: `SYMBI_BENCH_COUNT` (vectors, default 100000), `SYMBI_BENCH_DIM` (1536),
//! `SYMBI_BENCH_EF` (comma list, default 64,128,256,512), `SYMBI_BENCH_QUANT` (comma list
//! of none/scalar/binary), `SYMBI_BENCH_ON_DISK` (1 = memory-mapped vectors),
//! `SYMBI_BENCH_DIR` (scratch directory, default a temporary one).

use symbi_context::bench::*;
use symbi_context::vector::Quantization;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long-running benchmark; run explicitly"]
async fn bench_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var("SYMBI_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().to_path_buf());
    let ef = std::env::var("SYMBI_BENCH_EF").unwrap_or("64,128,256,512".into());
    let quant = std::env::var("SYMBI_BENCH_QUANT").unwrap_or("none,scalar,binary".into());
    let opts = VectorBenchOptions {
        count: env("SYMBI_BENCH_COUNT", 100_000),
        dim: env("SYMBI_BENCH_DIM", 1536),
        queries: env("SYMBI_BENCH_QUERIES", 200),
        recall_queries: env("SYMBI_BENCH_RECALL_QUERIES", 100),
        ef: ef.split(',').map(|s| s.trim().parse().unwrap()).collect(),
        oversampling: std::env::var("SYMBI_BENCH_OVERSAMPLING")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse().unwrap())
            .collect(),
        quantization: quant
            .split(',')
            .map(|s| match s.trim() {
                "none" => Quantization::None,
                "scalar" => Quantization::Scalar,
                "binary" => Quantization::Binary,
                other => panic!("unknown quantization {other}"),
            })
            .collect(),
        m: env("SYMBI_BENCH_M", 16),
        ef_construct: env("SYMBI_BENCH_EF_CONSTRUCT", 200),
        on_disk: env("SYMBI_BENCH_ON_DISK", 0) == 1,
        dir,
        seed: 42,
        clusters: env("SYMBI_BENCH_CLUSTERS", 0),
    };
    let before = load();
    let r = vector_bench(&opts, &|m| eprintln!("bench vectors: {m}"))
        .await
        .unwrap();
    let mut v = serde_json::to_value(&r).unwrap();
    v["load_average"] = serde_json::json!({"before": before, "after": load()});
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long-running benchmark; run explicitly"]
async fn bench_rag() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = RagBenchOptions {
        documents: env("SYMBI_BENCH_DOCS", 2_000),
        queries: env("SYMBI_BENCH_QUERIES", 300),
        memories: env("SYMBI_BENCH_MEMORIES", 10_000),
        dir: tmp.path().join("rag"),
        seed: 42,
        embedders: symbi_context::embed::Embedders::lexical_only().unwrap(),
    };
    let before = load();
    let r = rag_bench(&opts, &|m| eprintln!("bench rag: {m}"))
        .await
        .unwrap();
    let mut v = serde_json::to_value(&r).unwrap();
    v["load_average"] = serde_json::json!({"before": before, "after": load()});
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
