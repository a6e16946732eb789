//! The vector database: one [`VectorStore`] trait with two implementations over Qdrant —
//! [`EdgeStore`] (the embedded `qdrant-edge` engine, in process, on disk; the default) and
//! [`RemoteStore`] (a Qdrant server through the official `qdrant-client`).
//!
//! A *collection* holds points with up to two named vectors — `dense` (cosine HNSW) and
//! `lexical` (sparse BM25 with IDF) — and a JSON payload. Both backends get the same
//! behavioural test suite (`tests/vector_store.rs`).

mod edge;
mod remote;

pub use edge::EdgeStore;
pub use remote::RemoteStore;

use crate::error::ContextError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Name of the dense vector in every collection.
pub const DENSE: &str = "dense";
/// Name of the sparse (lexical) vector in every collection.
pub const LEXICAL: &str = "lexical";

/// Compression of stored dense vectors (the "compressed embeddings" goal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    /// Full float32 vectors only.
    #[default]
    None,
    /// int8 scalar quantization (4× smaller vectors), rescored with the originals.
    Scalar,
    /// 1 bit per dimension (32× smaller), rescored with the originals; best with
    /// high-dimensional embeddings such as OpenAI's 1536-d.
    Binary,
}

/// How a collection is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionSpec {
    /// Dimension of the dense vector; `None` = lexical only.
    pub dense_dim: Option<usize>,
    /// Whether points carry a sparse `lexical` vector.
    pub lexical: bool,
    /// HNSW graph degree (default 16).
    pub hnsw_m: usize,
    /// HNSW construction beam (default 200).
    pub hnsw_ef_construct: usize,
    /// Compression of dense vectors.
    pub quantization: Quantization,
    /// Keep full-precision dense vectors on disk (memory-mapped) instead of RAM; with
    /// quantization the compressed copy stays in RAM.
    pub on_disk: bool,
}

impl Default for CollectionSpec {
    fn default() -> Self {
        Self {
            dense_dim: None,
            lexical: true,
            hnsw_m: 16,
            hnsw_ef_construct: 200,
            quantization: Quantization::None,
            on_disk: false,
        }
    }
}

/// A sparse vector: sorted unique dimension ids and their weights.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseVec {
    /// Dimension ids.
    pub indices: Vec<u32>,
    /// Weights, one per id.
    pub values: Vec<f32>,
}

impl SparseVec {
    /// Whether it has no dimensions (a text of only stop words).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// One point to store.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorPoint {
    /// Point id (a UUID; the store's primary key).
    pub id: uuid::Uuid,
    /// Dense embedding, when the collection has one.
    pub dense: Option<Vec<f32>>,
    /// Lexical embedding, when the collection has one.
    pub lexical: Option<SparseVec>,
    /// Payload (JSON object).
    pub payload: Map<String, Value>,
}

/// A query vector.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryVector {
    /// Nearest by cosine on the `dense` vector.
    Dense(Vec<f32>),
    /// Highest BM25 (dot product with IDF) on the `lexical` vector.
    Lexical(SparseVec),
}

/// A condition on one payload field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldMatch {
    /// Equal to a string, integer or bool.
    Eq(Value),
    /// Equal to any of these strings (or integers).
    Any(Vec<Value>),
    /// A numeric range; unset bounds are open.
    Range {
        /// `>=`.
        gte: Option<f64>,
        /// `<`.
        lt: Option<f64>,
    },
}

/// A payload filter: every `must` condition holds and no `must_not` condition holds.
/// Keys may be dotted paths into nested objects (`metadata.source`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaFilter {
    /// Conditions that must hold.
    pub must: Vec<(String, FieldMatch)>,
    /// Conditions that must not hold.
    pub must_not: Vec<(String, FieldMatch)>,
}

impl MetaFilter {
    /// A filter with one equality condition.
    ///
    /// ```
    /// use symbi_context::vector::MetaFilter;
    /// let f = MetaFilter::eq("agent", "scout").and_eq("kind", "note");
    /// assert_eq!(f.must.len(), 2);
    /// ```
    pub fn eq(key: &str, value: impl Into<Value>) -> Self {
        Self::default().and_eq(key, value)
    }

    /// Adds an equality condition.
    pub fn and_eq(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.must
            .push((key.to_string(), FieldMatch::Eq(value.into())));
        self
    }

    /// Adds a condition.
    pub fn and(mut self, key: &str, m: FieldMatch) -> Self {
        self.must.push((key.to_string(), m));
        self
    }

    /// Whether there are no conditions.
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.must_not.is_empty()
    }

    /// The filter in Qdrant's JSON filter language (used for the embedded engine, whose
    /// filter types deserialize from exactly this form).
    pub fn to_qdrant_json(&self) -> Value {
        fn cond(key: &str, m: &FieldMatch) -> Value {
            match m {
                FieldMatch::Eq(v) => serde_json::json!({"key": key, "match": {"value": v}}),
                FieldMatch::Any(vs) => serde_json::json!({"key": key, "match": {"any": vs}}),
                FieldMatch::Range { gte, lt } => {
                    let mut r = Map::new();
                    if let Some(g) = gte {
                        r.insert("gte".into(), (*g).into());
                    }
                    if let Some(l) = lt {
                        r.insert("lt".into(), (*l).into());
                    }
                    serde_json::json!({"key": key, "range": r})
                }
            }
        }
        let mut f = Map::new();
        if !self.must.is_empty() {
            f.insert(
                "must".into(),
                self.must.iter().map(|(k, m)| cond(k, m)).collect(),
            );
        }
        if !self.must_not.is_empty() {
            f.insert(
                "must_not".into(),
                self.must_not.iter().map(|(k, m)| cond(k, m)).collect(),
            );
        }
        Value::Object(f)
    }

    /// Whether `payload` satisfies the filter (same semantics as the stores; used to
    /// check both backends agree and for in-memory filtering).
    pub fn matches(&self, payload: &Map<String, Value>) -> bool {
        fn get<'a>(p: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
            let mut parts = key.split('.');
            let mut cur = p.get(parts.next()?)?;
            for part in parts {
                cur = cur.as_object()?.get(part)?;
            }
            Some(cur)
        }
        fn holds(v: Option<&Value>, m: &FieldMatch) -> bool {
            let values: Vec<&Value> = match v {
                None => return false,
                Some(Value::Array(a)) => a.iter().collect(),
                Some(x) => vec![x],
            };
            values.iter().any(|x| match m {
                FieldMatch::Eq(e) => *x == e,
                FieldMatch::Any(es) => es.iter().any(|e| *x == e),
                FieldMatch::Range { gte, lt } => x
                    .as_f64()
                    .is_some_and(|n| gte.is_none_or(|g| n >= g) && lt.is_none_or(|l| n < l)),
            })
        }
        self.must.iter().all(|(k, m)| holds(get(payload, k), m))
            && !self.must_not.iter().any(|(k, m)| holds(get(payload, k), m))
    }
}

/// Candidates fetched per wanted result from a binary-quantized collection before they are
/// rescored with the original vectors, unless configured (`[context] binary_oversampling`)
/// or set per request. Measured (docs/benchmarks/context.md): on 1M clustered 1536-d vectors
/// 12 reaches recall@10 0.40, 100 reaches 0.999 at p99 3–4 ms; 1-bit codes only rank
/// coarsely, so the rescored set has to cover a whole neighbourhood.
pub const DEFAULT_BINARY_OVERSAMPLING: f64 = 100.0;

/// The same for int8 (scalar) quantization, whose codes keep the order almost exactly.
pub const SCALAR_OVERSAMPLING: f64 = 2.0;

/// A search request.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRequest {
    /// What to look for.
    pub vector: QueryVector,
    /// Payload filter.
    pub filter: Option<MetaFilter>,
    /// Results wanted.
    pub limit: usize,
    /// HNSW search beam (`ef`); `None` = the engine's default.
    pub hnsw_ef: Option<usize>,
    /// Candidates fetched from a quantized index per wanted result before they are
    /// rescored with the original vectors; `None` = the store's setting for the
    /// collection's quantization ([`DEFAULT_BINARY_OVERSAMPLING`] unless configured,
    /// [`SCALAR_OVERSAMPLING`]). Ignored without quantization.
    pub oversampling: Option<f64>,
    /// Exact (brute-force) search, for measuring recall.
    pub exact: bool,
}

impl SearchRequest {
    /// A plain request for `limit` results.
    pub fn new(vector: QueryVector, limit: usize) -> Self {
        Self {
            vector,
            filter: None,
            limit,
            hnsw_ef: None,
            oversampling: None,
            exact: false,
        }
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Point id.
    pub id: uuid::Uuid,
    /// Similarity (cosine for dense, BM25 for lexical); higher is better.
    pub score: f32,
    /// Payload.
    pub payload: Map<String, Value>,
}

/// A stored point as read back by id.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPoint {
    /// Point id.
    pub id: uuid::Uuid,
    /// Payload.
    pub payload: Map<String, Value>,
}

/// Facts about a collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionInfo {
    /// Points stored.
    pub points: usize,
    /// Points covered by an HNSW index (the rest are searched by full scan).
    pub indexed: usize,
}

/// A Qdrant collection store. Writes are visible to searches as soon as the call returns
/// (real-time updates).
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// The backend's name (`qdrant-edge`, `qdrant-server`).
    fn backend(&self) -> &'static str;
    /// Creates the collection if it does not exist; if it does, checks that `spec` matches
    /// it (a different dense dimension is an error naming both).
    async fn ensure_collection(
        &self,
        name: &str,
        spec: &CollectionSpec,
    ) -> Result<(), ContextError>;
    /// Whether the collection exists.
    async fn has_collection(&self, name: &str) -> Result<bool, ContextError>;
    /// Deletes the collection and its data.
    async fn drop_collection(&self, name: &str) -> Result<(), ContextError>;
    /// Inserts or replaces points (one batch, applied atomically per point).
    async fn upsert(&self, collection: &str, points: Vec<VectorPoint>) -> Result<(), ContextError>;
    /// Deletes points by id; unknown ids are ignored.
    async fn delete(&self, collection: &str, ids: &[uuid::Uuid]) -> Result<(), ContextError>;
    /// Deletes every point matching the filter.
    async fn delete_where(&self, collection: &str, filter: &MetaFilter)
    -> Result<(), ContextError>;
    /// Nearest points, best first.
    async fn search(&self, collection: &str, req: &SearchRequest)
    -> Result<Vec<Hit>, ContextError>;
    /// Points by id (missing ids are left out).
    async fn get(
        &self,
        collection: &str,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<StoredPoint>, ContextError>;
    /// Every point matching the filter (payloads only), up to `limit`.
    async fn scroll(
        &self,
        collection: &str,
        filter: Option<&MetaFilter>,
        limit: usize,
    ) -> Result<Vec<StoredPoint>, ContextError>;
    /// Number of points (matching the filter, if given).
    async fn count(
        &self,
        collection: &str,
        filter: Option<&MetaFilter>,
    ) -> Result<usize, ContextError>;
    /// Builds indexes for what was written (HNSW for large segments, merges, vacuum).
    /// The embedded engine does this only when asked; a server does it in the background.
    async fn optimize(&self, collection: &str) -> Result<(), ContextError>;
    /// Points and indexed points.
    async fn info(&self, collection: &str) -> Result<CollectionInfo, ContextError>;
}
