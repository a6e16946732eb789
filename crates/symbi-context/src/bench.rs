//! Load tests behind `symbi bench vectors` and `symbi bench rag` (SPEC §12). Each measures
//! its baseline in the same run: exact brute-force search (computed here, and Qdrant's own
//! `exact` search) for the vector index, bare knowledge search for the RAG pipeline.

use crate::chunk::ChunkOptions;
use crate::embed::Embedders;
use crate::error::ContextError;
use crate::hybrid::{IndexFactory, Weights};
use crate::knowledge::{KnowledgeBase, KnowledgeDocument};
use crate::rag::{RagOptions, answer};
use crate::vector::{
    CollectionSpec, EdgeStore, Quantization, QueryVector, SearchRequest, VectorPoint, VectorStore,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Map;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Settings of the vector benchmark.
#[derive(Clone, Debug)]
pub struct VectorBenchOptions {
    /// Vectors in the index.
    pub count: usize,
    /// Dimension.
    pub dim: usize,
    /// Queries timed per setting.
    pub queries: usize,
    /// Queries whose recall is checked against brute force.
    pub recall_queries: usize,
    /// `ef` values to sweep at search time.
    pub ef: Vec<usize>,
    /// Rescoring oversampling factors to sweep for quantized variants (empty: the
    /// store's default only).
    pub oversampling: Vec<f64>,
    /// Storage variants to build.
    pub quantization: Vec<Quantization>,
    /// HNSW degree.
    pub m: usize,
    /// HNSW construction beam.
    pub ef_construct: usize,
    /// Keep full vectors memory-mapped on disk (needed at 1M × 1536 to bound RAM).
    pub on_disk: bool,
    /// Where to build (a scratch directory; removed afterwards).
    pub dir: PathBuf,
    /// Random seed.
    pub seed: u64,
    /// 0: uniformly random unit vectors (no structure: the worst case for any ANN index,
    /// every point is almost equidistant from every other). N > 0: vectors (and queries)
    /// scattered around N random centres, as real embeddings cluster by topic.
    pub clusters: usize,
}

/// Latency and recall at one `ef`.
#[derive(Clone, Debug, Serialize)]
pub struct EfResult {
    /// Search beam.
    pub ef: usize,
    /// Rescoring oversampling (`None`: the store's default).
    pub oversampling: Option<f64>,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Mean recall@10 against exact brute force.
    pub recall_at_10: f64,
}

/// One storage variant.
#[derive(Clone, Debug, Serialize)]
pub struct VariantReport {
    /// `none`, `scalar`, `binary`.
    pub quantization: Quantization,
    /// Seconds to upsert every vector (batches of 1,000).
    pub upsert_secs: f64,
    /// Seconds to build the HNSW index (and quantized storage).
    pub index_secs: f64,
    /// Resident memory of the process after building, MiB.
    pub rss_mib: f64,
    /// Peak resident memory of the process so far, MiB.
    pub peak_rss_mib: f64,
    /// Bytes on disk for the whole collection.
    pub disk_bytes: u64,
    /// Bytes of the vector representation searched in RAM: float32 vectors without
    /// quantization, the quantized codes with it (originals stay on disk for rescoring).
    pub search_vector_bytes: u64,
    /// `1 - search_vector_bytes / float32 bytes`.
    pub vector_size_reduction: f64,
    /// Points covered by HNSW.
    pub indexed: usize,
    /// Qdrant's exact (brute-force) search over the same collection: median ms.
    pub exact_p50_ms: f64,
    /// recall@10 of Qdrant's exact search against the in-process brute force (a check of
    /// the measurement itself: 1.0 unless ids or distances disagree).
    pub exact_recall_at_10: f64,
    /// Per-`ef` results.
    pub ef: Vec<EfResult>,
    /// Update visibility: median ms from upsert call to the point being found by search.
    pub update_visible_p50_ms: f64,
    /// Same, 99th percentile.
    pub update_visible_p99_ms: f64,
}

/// The vector benchmark's report.
#[derive(Clone, Debug, Serialize)]
pub struct VectorBenchReport {
    /// Vectors.
    pub count: usize,
    /// Dimension.
    pub dim: usize,
    /// HNSW m / ef_construct.
    pub m: usize,
    /// HNSW construction beam.
    pub ef_construct: usize,
    /// In-process brute force (the recall reference): mean ms per query.
    pub brute_force_ms: f64,
    /// float32 bytes of the raw vectors.
    pub float32_bytes: u64,
    /// One entry per variant.
    pub variants: Vec<VariantReport>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    (percentile(&v, 0.5), percentile(&v, 0.99), mean)
}

/// `VmRSS` and `VmHWM` of this process in MiB (Linux).
pub fn rss_mib() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn random_unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    normalize(&mut v);
    v
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

/// A unit vector near a random one of `centres`: the centre plus a random direction of
/// norm `SPREAD` (cosine to its centre ≈ 0.9).
fn clustered_unit(rng: &mut StdRng, centres: &[Vec<f32>]) -> Vec<f32> {
    const SPREAD: f32 = 0.5;
    let c = &centres[rng.random_range(0..centres.len())];
    let noise = random_unit(rng, c.len());
    let mut v: Vec<f32> = c.iter().zip(&noise).map(|(a, b)| a + SPREAD * b).collect();
    normalize(&mut v);
    v
}

/// Exact top-k ids (indices into `data`) by dot product, on all cores.
fn brute_force(data: &[f32], dim: usize, queries: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let per = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(per)
            .map(|qs| {
                s.spawn(move || {
                    qs.iter()
                        .map(|q| {
                            let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
                            for (i, row) in data.chunks_exact(dim).enumerate() {
                                let d: f32 = row.iter().zip(q).map(|(a, b)| a * b).sum();
                                if best.len() < k || d > best[best.len() - 1].0 {
                                    let pos = best.partition_point(|x| x.0 >= d);
                                    best.insert(pos, (d, i));
                                    best.truncate(k);
                                }
                            }
                            best.into_iter().map(|(_, i)| i).collect()
                        })
                        .collect::<Vec<Vec<usize>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("brute-force thread"))
            .collect()
    })
}

/// Runs the vector benchmark on the embedded engine. `progress` receives status lines.
pub async fn vector_bench(
    o: &VectorBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<VectorBenchReport, ContextError> {
    let mut rng = StdRng::seed_from_u64(o.seed);
    let centres: Vec<Vec<f32>> = (0..o.clusters)
        .map(|_| random_unit(&mut rng, o.dim))
        .collect();
    let draw = |rng: &mut StdRng| {
        if centres.is_empty() {
            random_unit(rng, o.dim)
        } else {
            clustered_unit(rng, &centres)
        }
    };
    match o.clusters {
        0 => progress(&format!(
            "generating {} uniformly random {}-d unit vectors",
            o.count, o.dim
        )),
        n => progress(&format!(
            "generating {} {}-d unit vectors around {n} random centres",
            o.count, o.dim
        )),
    }
    let mut data = Vec::with_capacity(o.count * o.dim);
    for _ in 0..o.count {
        data.extend(draw(&mut rng));
    }
    let ids: Vec<uuid::Uuid> = (0..o.count)
        .map(|i| uuid::Uuid::from_u128(i as u128 + 1))
        .collect();
    let queries: Vec<Vec<f32>> = (0..o.queries.max(o.recall_queries))
        .map(|_| draw(&mut rng))
        .collect();
    let recall_qs = &queries[..o.recall_queries.min(queries.len())];
    progress(&format!(
        "exact top-10 by brute force for {} queries",
        recall_qs.len()
    ));
    let t = Instant::now();
    let truth = brute_force(&data, o.dim, recall_qs, 10);
    let brute_force_ms = t.elapsed().as_secs_f64() * 1e3 / recall_qs.len().max(1) as f64;
    let data = Arc::new(data);

    let mut variants = Vec::new();
    for &q in &o.quantization {
        let root = o.dir.join(format!("bench-{q:?}").to_lowercase());
        let _ = std::fs::remove_dir_all(&root);
        let store = EdgeStore::open(&root)?;
        let spec = CollectionSpec {
            dense_dim: Some(o.dim),
            lexical: false,
            hnsw_m: o.m,
            hnsw_ef_construct: o.ef_construct,
            quantization: q,
            on_disk: o.on_disk,
        };
        store.ensure_collection("bench", &spec).await?;
        progress(&format!("[{q:?}] upserting {} vectors", o.count));
        let t = Instant::now();
        for start in (0..o.count).step_by(1000) {
            let end = (start + 1000).min(o.count);
            let points = (start..end)
                .map(|i| VectorPoint {
                    id: ids[i],
                    dense: Some(data[i * o.dim..(i + 1) * o.dim].to_vec()),
                    lexical: None,
                    payload: Map::new(),
                })
                .collect();
            store.upsert("bench", points).await?;
        }
        let upsert_secs = t.elapsed().as_secs_f64();
        progress(&format!(
            "[{q:?}] building the HNSW index (m={}, ef_construct={})",
            o.m, o.ef_construct
        ));
        let t = Instant::now();
        store.optimize("bench").await?;
        let index_secs = t.elapsed().as_secs_f64();
        store.flush("bench")?;
        let (rss, peak) = rss_mib();
        let info = store.info("bench").await?;
        let disk_bytes = store.disk_usage("bench")?;
        let quant_bytes = quantized_bytes(&root.join("bench"));
        let float32 = (o.count * o.dim * 4) as u64;
        let search_vector_bytes = if q == Quantization::None {
            float32
        } else {
            quant_bytes
        };
        progress(&format!(
            "[{q:?}] index built in {index_secs:.1}s; searching"
        ));

        // Baseline: Qdrant's exact search over the same collection.
        let mut exact = Vec::new();
        let mut exact_recall = Vec::new();
        for (qi, qv) in queries.iter().take(20).enumerate() {
            let req = SearchRequest {
                vector: QueryVector::Dense(qv.clone()),
                filter: None,
                limit: 10,
                hnsw_ef: None,
                oversampling: None,
                exact: true,
            };
            let t = Instant::now();
            let hits = store.search("bench", &req).await?;
            exact.push(t.elapsed().as_secs_f64() * 1e3);
            if let Some(tr) = truth.get(qi) {
                exact_recall.push(
                    hits.iter()
                        .filter(|h| tr.iter().any(|&i| ids[i] == h.id))
                        .count() as f64
                        / 10.0,
                );
            }
        }
        let exact_p50_ms = stats(exact).0;
        let exact_recall_at_10 =
            exact_recall.iter().sum::<f64>() / exact_recall.len().max(1) as f64;

        let mut efs = Vec::new();
        let oversamplings: Vec<Option<f64>> =
            if o.oversampling.is_empty() || q == Quantization::None {
                vec![None]
            } else {
                o.oversampling.iter().copied().map(Some).collect()
            };
        for (ef, oversampling) in
            o.ef.iter()
                .flat_map(|&ef| oversamplings.iter().map(move |&os| (ef, os)))
        {
            let mut lat = Vec::with_capacity(queries.len());
            let mut recall_sum = 0.0;
            for (qi, qv) in queries.iter().enumerate() {
                let req = SearchRequest {
                    vector: QueryVector::Dense(qv.clone()),
                    filter: None,
                    limit: 10,
                    hnsw_ef: Some(ef),
                    oversampling,
                    exact: false,
                };
                let t = Instant::now();
                let hits = store.search("bench", &req).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                if let Some(tr) = truth.get(qi) {
                    let found = hits
                        .iter()
                        .filter(|h| tr.iter().any(|&i| ids[i] == h.id))
                        .count();
                    recall_sum += found as f64 / 10.0;
                }
            }
            let (p50, p99, mean) = stats(lat);
            let recall = recall_sum / truth.len().max(1) as f64;
            let os = oversampling.map_or(String::new(), |o| format!(" oversampling={o}"));
            progress(&format!(
                "[{q:?}] ef={ef}{os}: p50 {p50:.2} ms, p99 {p99:.2} ms, recall@10 {recall:.3}"
            ));
            efs.push(EfResult {
                ef,
                oversampling,
                p50_ms: p50,
                p99_ms: p99,
                mean_ms: mean,
                recall_at_10: recall,
            });
        }

        // Update visibility: upsert a new point, then search for it by its own vector.
        let mut vis = Vec::new();
        for i in 0..200u128 {
            let v = random_unit(&mut rng, o.dim);
            let id = uuid::Uuid::from_u128(u128::MAX - i);
            let t = Instant::now();
            store
                .upsert(
                    "bench",
                    vec![VectorPoint {
                        id,
                        dense: Some(v.clone()),
                        lexical: None,
                        payload: Map::new(),
                    }],
                )
                .await?;
            let req = SearchRequest {
                vector: QueryVector::Dense(v),
                filter: None,
                limit: 1,
                hnsw_ef: Some(64),
                oversampling: None,
                exact: false,
            };
            let hits = store.search("bench", &req).await?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if hits.first().map(|h| h.id) != Some(id) {
                return Err(ContextError::Vector(format!(
                    "update {id} was not visible to the next search"
                )));
            }
            vis.push(ms);
        }
        let (vp50, vp99, _) = stats(vis);
        variants.push(VariantReport {
            quantization: q,
            upsert_secs,
            index_secs,
            rss_mib: rss,
            peak_rss_mib: peak,
            disk_bytes,
            search_vector_bytes,
            vector_size_reduction: 1.0 - search_vector_bytes as f64 / float32 as f64,
            indexed: info.indexed,
            exact_p50_ms,
            exact_recall_at_10,
            ef: efs,
            update_visible_p50_ms: vp50,
            update_visible_p99_ms: vp99,
        });
        drop(store);
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(VectorBenchReport {
        count: o.count,
        dim: o.dim,
        m: o.m,
        ef_construct: o.ef_construct,
        brute_force_ms,
        float32_bytes: (o.count * o.dim * 4) as u64,
        variants,
    })
}

/// Bytes of quantized-vector files in a collection directory (Qdrant keeps them in
/// directories named after quantization).
fn quantized_bytes(dir: &Path) -> u64 {
    fn walk(p: &Path, inside: bool) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        let mut total = 0;
        for e in rd.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().to_lowercase();
            let here = inside || name.contains("quantiz");
            match e.metadata() {
                Ok(m) if m.is_dir() => total += walk(&path, here),
                Ok(m) if here => total += m.len(),
                _ => {}
            }
        }
        total
    }
    walk(dir, false)
}

/// Settings of the RAG benchmark.
#[derive(Clone, Debug)]
pub struct RagBenchOptions {
    /// Synthetic documents in the knowledge base.
    pub documents: usize,
    /// Questions timed.
    pub queries: usize,
    /// Long-term memories per agent for the context-retrieval measurement.
    pub memories: usize,
    /// Scratch directory (removed afterwards).
    pub dir: PathBuf,
    /// Random seed.
    pub seed: u64,
    /// The embedders (lexical only, or with a dense one: its time is part of every figure).
    pub embedders: Embedders,
}

/// The RAG benchmark's report.
#[derive(Clone, Debug, Serialize)]
pub struct RagBenchReport {
    /// The embedders used (`bm25`, `bm25+local:all-MiniLM-L6-v2`, …).
    pub embedders: String,
    /// Documents.
    pub documents: usize,
    /// Chunks indexed.
    pub chunks: usize,
    /// Seconds to ingest.
    pub ingest_secs: f64,
    /// Baseline: knowledge search alone (lexical hybrid), median ms.
    pub search_p50_ms: f64,
    /// Baseline: knowledge search alone, p99 ms.
    pub search_p99_ms: f64,
    /// Whole pipeline (analysis, search, retrieval, ranking, extractive answer), median ms.
    pub rag_p50_ms: f64,
    /// Whole pipeline, p99 ms.
    pub rag_p99_ms: f64,
    /// Whole pipeline, mean ms.
    pub rag_mean_ms: f64,
    /// Share of questions whose source document is the first citation.
    pub top1_source_accuracy: f64,
    /// Context retrieval (an agent's long-term memory, by query, cache missed): mean ms.
    pub context_retrieval_mean_ms: f64,
    /// The same, answered from the context cache: mean ms.
    pub context_retrieval_cached_mean_ms: f64,
    /// Long-term memories stored for that agent.
    pub memories: usize,
}

const WORDS: &[&str] = &[
    "audit",
    "ledger",
    "policy",
    "sandbox",
    "gvisor",
    "docker",
    "vector",
    "cedar",
    "signature",
    "merkle",
    "proof",
    "checkpoint",
    "agent",
    "schedule",
    "webhook",
    "channel",
    "budget",
    "timeout",
    "retry",
    "backoff",
    "circuit",
    "breaker",
    "token",
    "secret",
    "vault",
    "rotation",
    "encryption",
    "nonce",
    "cipher",
    "digest",
    "stream",
    "topic",
    "subscriber",
    "publisher",
    "quorum",
    "replica",
    "shard",
    "segment",
    "compaction",
    "retention",
    "snapshot",
    "restore",
    "migration",
    "schema",
    "index",
    "cluster",
    "latency",
    "throughput",
    "memory",
    "cache",
    "eviction",
    "session",
    "tenant",
    "quota",
    "alert",
    "metric",
    "trace",
    "span",
    "exporter",
    "collector",
    "dashboard",
    "probe",
    "health",
    "readiness",
    "liveness",
    "deploy",
    "rollback",
    "canary",
    "release",
    "artifact",
    "registry",
    "image",
    "layer",
    "manifest",
    "runtime",
    "kernel",
    "syscall",
    "seccomp",
    "namespace",
    "cgroup",
    "limit",
    "request",
];

/// Runs the RAG benchmark on the embedded engine with the given embedders.
pub async fn rag_bench(
    o: &RagBenchOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RagBenchReport, ContextError> {
    let _ = std::fs::remove_dir_all(&o.dir);
    let store: Arc<dyn VectorStore> = Arc::new(EdgeStore::open(&o.dir.join("vectors"))?);
    let factory = IndexFactory {
        store: store.clone(),
        embedders: o.embedders.clone(),
        base: CollectionSpec::default(),
        cache: Arc::new(crate::cache::QueryCache::new(64 << 20)),
    };
    let kb = KnowledgeBase::new(
        factory.open("knowledge").await?,
        ChunkOptions::default(),
        365,
    );
    let mut rng = StdRng::seed_from_u64(o.seed);
    // Each document has a distinctive code name plus ordinary vocabulary; a question asks
    // about the code name, so its source is known.
    let sentence = |rng: &mut StdRng, code: &str| {
        let n = rng.random_range(8..16);
        let mut w: Vec<&str> = (0..n)
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect();
        w.insert(rng.random_range(0..w.len()), code);
        let mut s = w.join(" ");
        s.push('.');
        s
    };
    progress(&format!("ingesting {} synthetic documents", o.documents));
    let t = Instant::now();
    let mut chunks = 0;
    for d in 0..o.documents {
        let code = format!("project{d:05}");
        let text: Vec<String> = (0..rng.random_range(6..20))
            .map(|_| sentence(&mut rng, &code))
            .collect();
        let doc = KnowledgeDocument {
            id: Some(format!("doc-{d:05}")),
            ..KnowledgeDocument::text(text.join(" "))
        };
        chunks += kb.add(doc).await?.1;
    }
    let ingest_secs = t.elapsed().as_secs_f64();
    progress(&format!(
        "{chunks} chunks in {ingest_secs:.1}s; timing {} questions",
        o.queries
    ));

    let mut search_lat = Vec::new();
    let mut rag_lat = Vec::new();
    let mut correct = 0usize;
    for i in 0..o.queries {
        let d = rng.random_range(0..o.documents);
        let w1 = WORDS[rng.random_range(0..WORDS.len())];
        let q = format!("What does project{d:05} say about {w1} (question {i})?");
        let t = Instant::now();
        kb.search(&format!("project{d:05} {w1} q{i}"), 5, None)
            .await?;
        search_lat.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let a = answer(&kb, None, &q, RagOptions::default()).await?;
        rag_lat.push(t.elapsed().as_secs_f64() * 1e3);
        if a.citations.first().map(|c| c.document.as_str()) == Some(format!("doc-{d:05}").as_str())
        {
            correct += 1;
        }
    }
    let (sp50, sp99, _) = stats(search_lat);
    let (rp50, rp99, rmean) = stats(rag_lat);

    progress(&format!(
        "storing {} long-term memories and timing retrieval",
        o.memories
    ));
    let mem = factory.open("memory").await?;
    for start in (0..o.memories).step_by(500) {
        let items = (start..(start + 500).min(o.memories))
            .map(|i| {
                let code = format!("mem{i:06}");
                let text = sentence(&mut rng, &code);
                let mut p = Map::new();
                p.insert("agent".into(), "bench_agent".into());
                p.insert("text".into(), text.clone().into());
                (uuid::Uuid::new_v4(), text, p)
            })
            .collect();
        mem.upsert(items).await?;
    }
    let filter = crate::vector::MetaFilter::eq("agent", "bench_agent");
    let mut miss = Vec::new();
    let mut hit = Vec::new();
    for i in 0..o.queries {
        let q = format!(
            "mem{:06} {}",
            rng.random_range(0..o.memories.max(1)),
            WORDS[i % WORDS.len()]
        );
        let t = Instant::now();
        mem.search(&q, Some(&filter), 5, Weights::default()).await?;
        miss.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        mem.search(&q, Some(&filter), 5, Weights::default()).await?;
        hit.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let report = RagBenchReport {
        embedders: match &o.embedders.dense {
            Some(d) => format!("{}+{}", o.embedders.lexical.name(), d.name()),
            None => o.embedders.lexical.name(),
        },
        documents: o.documents,
        chunks,
        ingest_secs,
        search_p50_ms: sp50,
        search_p99_ms: sp99,
        rag_p50_ms: rp50,
        rag_p99_ms: rp99,
        rag_mean_ms: rmean,
        top1_source_accuracy: correct as f64 / o.queries.max(1) as f64,
        context_retrieval_mean_ms: stats(miss).2,
        context_retrieval_cached_mean_ms: stats(hit).2,
        memories: o.memories,
    };
    drop(kb);
    drop(mem);
    drop(factory);
    drop(store);
    let _ = std::fs::remove_dir_all(&o.dir);
    Ok(report)
}
