//! `symbi bench vectors` and `symbi bench rag`: the context subsystem's load tests.

use super::super::Globals;
use clap::Args;
use std::process::ExitCode;

/// `symbi bench vectors`.
#[derive(Args, Debug)]
pub struct VectorsArgs {
    /// Vectors in the index (the SPEC figure is 1,000,000; 100,000 is the quick run).
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Dimension.
    #[arg(long, default_value_t = 1536)]
    pub dim: usize,
    /// Queries timed per setting.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Queries checked against brute force for recall@10.
    #[arg(long, default_value_t = 100)]
    pub recall_queries: usize,
    /// Search beams to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,128,256,512")]
    pub ef: Vec<usize>,
    /// Rescoring oversampling factors to sweep for quantized variants, comma-separated
    /// (candidates fetched per wanted result, rescored with the original vectors).
    /// Default: the store's own (12 for binary, 2 for int8).
    #[arg(long, value_delimiter = ',')]
    pub oversampling: Vec<f64>,
    /// Storage variants, comma-separated: none, scalar, binary.
    #[arg(long, value_delimiter = ',', default_value = "none,scalar,binary")]
    pub quantization: Vec<String>,
    /// HNSW degree.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW construction beam.
    #[arg(long, default_value_t = 200)]
    pub ef_construct: usize,
    /// Keep full vectors memory-mapped on disk.
    #[arg(long)]
    pub on_disk: bool,
    /// 0: uniformly random vectors (SPEC's workload; no structure, the worst case for ANN
    /// recall). N: vectors around N random centres, like topic-clustered embeddings.
    #[arg(long, default_value_t = 0)]
    pub clusters: usize,
    /// Print the report as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

/// `symbi bench rag`.
#[derive(Args, Debug)]
pub struct RagArgs {
    /// Synthetic documents.
    #[arg(long, default_value_t = 2_000)]
    pub documents: usize,
    /// Questions timed.
    #[arg(long, default_value_t = 300)]
    pub queries: usize,
    /// Long-term memories for the context-retrieval measurement.
    #[arg(long, default_value_t = 10_000)]
    pub memories: usize,
    /// Print the report as JSON.
    #[arg(long, value_enum, default_value_t)]
    pub format: crate::cli::Format,
}

fn bench_scratch(g: &Globals, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let loaded = g.load(None)?;
    Ok(loaded
        .data_dir()
        .join("bench")
        .join(format!("{name}-{}", std::process::id())))
}

use super::load_average;

pub fn bench_vectors(g: &Globals, a: VectorsArgs) -> anyhow::Result<ExitCode> {
    use symbi_context::vector::Quantization;
    let quantization = a
        .quantization
        .iter()
        .map(|q| match q.as_str() {
            "none" => Ok(Quantization::None),
            "scalar" => Ok(Quantization::Scalar),
            "binary" => Ok(Quantization::Binary),
            other => Err(crate::exit::usage(format!(
                "--quantization: `{other}` is not none, scalar or binary"
            ))),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let opts = symbi_context::bench::VectorBenchOptions {
        count: a.count,
        dim: a.dim,
        queries: a.queries,
        recall_queries: a.recall_queries,
        ef: a.ef,
        oversampling: a.oversampling,
        quantization,
        m: a.m,
        ef_construct: a.ef_construct,
        on_disk: a.on_disk,
        dir: bench_scratch(g, "vectors")?,
        seed: 42,
        clusters: a.clusters,
    };
    let load_before = load_average();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(symbi_context::bench::vector_bench(&opts, &|m| {
        eprintln!("bench vectors: {m}")
    }))?;
    let load_after = load_average();
    if a.format == crate::cli::Format::Json {
        let mut v = serde_json::to_value(&r)?;
        v["load_average"] = serde_json::json!({"before": load_before, "after": load_after});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let data = match a.clusters {
        0 => "uniformly random unit vectors".to_string(),
        n => format!("unit vectors around {n} random centres"),
    };
    println!(
        "vector search: {} x {}-d {data}, HNSW m={} ef_construct={}",
        r.count, r.dim, r.m, r.ef_construct
    );
    println!("load average before/after: {load_before} / {load_after}");
    println!(
        "brute force (in-process, exact top-10): {:.2} ms/query",
        r.brute_force_ms
    );
    for v in &r.variants {
        println!(
            "\n[{:?}] upsert {:.1}s, index build {:.1}s, RSS {:.0} MiB (peak {:.0}), disk {:.1} MiB, searched vectors {:.1} MiB ({:.1}% smaller than float32), indexed {}",
            v.quantization,
            v.upsert_secs,
            v.index_secs,
            v.rss_mib,
            v.peak_rss_mib,
            v.disk_bytes as f64 / 1048576.0,
            v.search_vector_bytes as f64 / 1048576.0,
            v.vector_size_reduction * 100.0,
            v.indexed
        );
        println!(
            "  exact search (Qdrant, brute force) p50 {:.2} ms, recall@10 {:.3} (check of the measurement)",
            v.exact_p50_ms, v.exact_recall_at_10
        );
        for e in &v.ef {
            let os = e
                .oversampling
                .map_or(String::new(), |o| format!(" oversampling {o:<5}"));
            println!(
                "  ef={:<4}{os} p50 {:>7.3} ms  p99 {:>7.3} ms  mean {:>7.3} ms  recall@10 {:.3}  speed-up vs exact {:.1}x",
                e.ef,
                e.p50_ms,
                e.p99_ms,
                e.mean_ms,
                e.recall_at_10,
                v.exact_p50_ms / e.p50_ms.max(1e-9)
            );
        }
        println!(
            "  update visible: p50 {:.3} ms, p99 {:.3} ms (upsert + search that finds it)",
            v.update_visible_p50_ms, v.update_visible_p99_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench_rag(g: &Globals, a: RagArgs) -> anyhow::Result<ExitCode> {
    let loaded = g.load(None)?;
    // The configured embedders (`[context] embedder`): a dense model's time counts too.
    let embedders = symbi_context::embed::Embedders::from_config(
        &loaded.config.context,
        &loaded.config.llm,
        &loaded.data_dir(),
    )?;
    let opts = symbi_context::bench::RagBenchOptions {
        documents: a.documents,
        queries: a.queries,
        memories: a.memories,
        dir: bench_scratch(g, "rag")?,
        seed: 42,
        embedders,
    };
    let load_before = load_average();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(symbi_context::bench::rag_bench(&opts, &|m| {
        eprintln!("bench rag: {m}")
    }))?;
    let load_after = load_average();
    if a.format == crate::cli::Format::Json {
        let mut v = serde_json::to_value(&r)?;
        v["load_average"] = serde_json::json!({"before": load_before, "after": load_after});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "RAG: {} documents, {} chunks (ingested in {:.1}s), embedders {}, extractive answers (no LLM time)",
        r.documents, r.chunks, r.ingest_secs, r.embedders
    );
    println!("load average before/after: {load_before} / {load_after}");
    println!(
        "knowledge search (baseline): p50 {:.2} ms, p99 {:.2} ms",
        r.search_p50_ms, r.search_p99_ms
    );
    println!(
        "RAG pipeline end to end:    p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms ({:.2}x the search baseline at p50)",
        r.rag_p50_ms,
        r.rag_p99_ms,
        r.rag_mean_ms,
        r.rag_p50_ms / r.search_p50_ms.max(1e-9)
    );
    println!(
        "top-1 citation is the source document: {:.1}%",
        r.top1_source_accuracy * 100.0
    );
    println!(
        "context retrieval ({} memories): mean {:.2} ms uncached, {:.3} ms cached",
        r.memories, r.context_retrieval_mean_ms, r.context_retrieval_cached_mean_ms
    );
    Ok(ExitCode::SUCCESS)
}
