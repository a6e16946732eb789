//! Hybrid search over one collection: BM25 (lexical) and, when a dense embedder is
//! configured, dense vectors — each searched by the vector store, then fused with
//! weighted reciprocal rank fusion (RRF, k = 60).
//!
//! The fusion runs here rather than in Qdrant's server-side `fusion: rrf` because memory
//! stores weight the two sides (`vector_weight` / `keyword_weight`, GRAMMAR.md §4.11.3)
//! and the embedded and remote backends must rank identically.

use crate::cache::QueryCache;
use crate::embed::{Embedders, Purpose};
use crate::error::ContextError;
use crate::vector::{
    CollectionSpec, Hit, MetaFilter, QueryVector, SearchRequest, VectorPoint, VectorStore,
};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The RRF constant: a result at rank r (1-based) contributes `w / (K + r)`.
pub const RRF_K: f32 = 60.0;

/// Relative weight of the dense and lexical result lists.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// Dense (semantic) side.
    pub vector: f32,
    /// Lexical (BM25) side.
    pub keyword: f32,
}

impl Default for Weights {
    /// Equal weights.
    fn default() -> Self {
        Self {
            vector: 0.5,
            keyword: 0.5,
        }
    }
}

impl Weights {
    /// Weights normalised to sum to 1 (both zero gives equal weights).
    pub fn normalized(self) -> Self {
        let s = self.vector + self.keyword;
        if s <= 0.0 {
            Self::default()
        } else {
            Self {
                vector: self.vector / s,
                keyword: self.keyword / s,
            }
        }
    }
}

/// One fused result.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// Point id.
    pub id: uuid::Uuid,
    /// Fused score in (0, 1]: 1 means ranked first by every side that was searched.
    pub score: f32,
    /// Rank in the lexical list (1-based), if it appeared there.
    pub lexical_rank: Option<usize>,
    /// Rank in the dense list (1-based), if it appeared there.
    pub dense_rank: Option<usize>,
    /// Payload.
    pub payload: Map<String, Value>,
}

/// Weighted RRF of ranked lists. Scores are normalised by the best achievable sum, so a
/// point ranked first in every list scores 1.0.
///
/// ```
/// use symbi_context::hybrid::fuse;
/// use symbi_context::vector::Hit;
/// let h = |n: u128| Hit { id: uuid::Uuid::from_u128(n), score: 0.0, payload: Default::default() };
/// let fused = fuse(&[(0.5, vec![h(1), h(2)]), (0.5, vec![h(2), h(3)])], 10);
/// assert_eq!(fused[0].id, uuid::Uuid::from_u128(2)); // in both lists
/// ```
pub fn fuse(lists: &[(f32, Vec<Hit>)], limit: usize) -> Vec<Scored> {
    let mut acc: Vec<Scored> = Vec::new();
    let mut pos: std::collections::HashMap<uuid::Uuid, usize> = std::collections::HashMap::new();
    let best: f32 = lists
        .iter()
        .filter(|(w, _)| *w > 0.0)
        .map(|(w, _)| w / (RRF_K + 1.0))
        .sum();
    for (side, (w, hits)) in lists.iter().enumerate() {
        if *w <= 0.0 {
            continue;
        }
        for (i, h) in hits.iter().enumerate() {
            let rank = i + 1;
            let contribution = w / (RRF_K + rank as f32);
            let slot = *pos.entry(h.id).or_insert_with(|| {
                acc.push(Scored {
                    id: h.id,
                    score: 0.0,
                    lexical_rank: None,
                    dense_rank: None,
                    payload: h.payload.clone(),
                });
                acc.len() - 1
            });
            let s = &mut acc[slot];
            s.score += contribution;
            if side == 0 {
                s.lexical_rank.get_or_insert(rank);
            } else {
                s.dense_rank.get_or_insert(rank);
            }
        }
    }
    if best > 0.0 {
        acc.iter_mut().for_each(|s| s.score /= best);
    }
    // Stable order: score, then lexical rank, then id, so results are deterministic.
    acc.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(
                a.lexical_rank
                    .unwrap_or(usize::MAX)
                    .cmp(&b.lexical_rank.unwrap_or(usize::MAX)),
            )
            .then(a.id.cmp(&b.id))
    });
    acc.truncate(limit);
    acc
}

/// A collection indexed for hybrid search.
#[derive(Clone)]
pub struct HybridIndex {
    store: Arc<dyn VectorStore>,
    embedders: Embedders,
    collection: String,
    cache: Arc<QueryCache<Vec<Scored>>>,
}

impl std::fmt::Debug for HybridIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridIndex")
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl HybridIndex {
    /// Opens (creating if needed) `collection` with the embedders' dense dimension.
    pub async fn open(
        store: Arc<dyn VectorStore>,
        embedders: Embedders,
        collection: &str,
        base: &CollectionSpec,
        cache: Arc<QueryCache<Vec<Scored>>>,
    ) -> Result<Self, ContextError> {
        let spec = CollectionSpec {
            dense_dim: embedders.dense_dim(),
            lexical: true,
            ..base.clone()
        };
        store.ensure_collection(collection, &spec).await?;
        Ok(Self {
            store,
            embedders,
            collection: collection.to_string(),
            cache,
        })
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The vector store.
    pub fn store(&self) -> &Arc<dyn VectorStore> {
        &self.store
    }

    /// The embedders.
    pub fn embedders(&self) -> &Embedders {
        &self.embedders
    }

    /// Indexes `(id, text, payload)` items in one batch upsert.
    pub async fn upsert(
        &self,
        items: Vec<(uuid::Uuid, String, Map<String, Value>)>,
    ) -> Result<(), ContextError> {
        if items.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = items.iter().map(|(_, t, _)| t.clone()).collect();
        let (lexical, dense) = self.embedders.embed_all(&texts, Purpose::Document).await?;
        let mut dense = dense.map(|d| d.into_iter());
        let points = items
            .into_iter()
            .zip(lexical)
            .map(|((id, _, payload), lex)| VectorPoint {
                id,
                dense: dense.as_mut().and_then(|d| d.next()),
                lexical: Some(lex),
                payload,
            })
            .collect();
        let r = self.store.upsert(&self.collection, points).await;
        self.cache.invalidate(&self.collection);
        r
    }

    /// Deletes points by id.
    pub async fn delete(&self, ids: &[uuid::Uuid]) -> Result<(), ContextError> {
        let r = self.store.delete(&self.collection, ids).await;
        self.cache.invalidate(&self.collection);
        r
    }

    /// Deletes points matching a filter.
    pub async fn delete_where(&self, filter: &MetaFilter) -> Result<(), ContextError> {
        let r = self.store.delete_where(&self.collection, filter).await;
        self.cache.invalidate(&self.collection);
        r
    }

    /// Hybrid search: best `limit` points for `query`, fused from the lexical and dense
    /// lists (each fetched 4× deeper than `limit`, at least 20). Results are cached until
    /// the next write to the collection.
    pub async fn search(
        &self,
        query: &str,
        filter: Option<&MetaFilter>,
        limit: usize,
        weights: Weights,
    ) -> Result<Arc<Vec<Scored>>, ContextError> {
        let w = weights.normalized();
        let key = format!(
            "{limit}\u{0}{}\u{0}{}\u{0}{}\u{0}{query}",
            w.vector,
            w.keyword,
            filter
                .map(|f| f.to_qdrant_json().to_string())
                .unwrap_or_default()
        );
        if let Some(hit) = self.cache.get(&self.collection, &key) {
            return Ok(hit);
        }
        let depth = (limit * 4).max(20);
        let q = vec![query.to_string()];
        let (mut lexical, dense) = self.embedders.embed_all(&q, Purpose::Query).await?;
        let lex_req = SearchRequest {
            vector: QueryVector::Lexical(lexical.pop().unwrap_or_default()),
            filter: filter.cloned(),
            limit: depth,
            hnsw_ef: None,
            oversampling: None,
            exact: false,
        };
        let lex_hits = self.store.search(&self.collection, &lex_req).await?;
        let mut lists = vec![(if dense.is_some() { w.keyword } else { 1.0 }, lex_hits)];
        if let Some(mut d) = dense {
            let req = SearchRequest {
                vector: QueryVector::Dense(d.pop().unwrap_or_default()),
                filter: filter.cloned(),
                limit: depth,
                hnsw_ef: None,
                oversampling: None,
                exact: false,
            };
            lists.push((w.vector, self.store.search(&self.collection, &req).await?));
        }
        let fused = fuse(&lists, limit);
        let bytes = fused
            .iter()
            .map(|s| 64 + Value::Object(s.payload.clone()).to_string().len())
            .sum::<usize>()
            + key.len();
        Ok(self.cache.put(&self.collection, &key, fused, bytes))
    }
}

/// Opens hybrid indexes that share one store, one set of embedders, one collection
/// template and one cache.
#[derive(Clone)]
pub struct IndexFactory {
    /// The vector store.
    pub store: Arc<dyn VectorStore>,
    /// The embedders.
    pub embedders: Embedders,
    /// HNSW and quantization settings for new collections.
    pub base: CollectionSpec,
    /// The shared context cache.
    pub cache: Arc<QueryCache<Vec<Scored>>>,
}

impl IndexFactory {
    /// Opens (creating if needed) a collection.
    pub async fn open(&self, collection: &str) -> Result<HybridIndex, ContextError> {
        HybridIndex::open(
            self.store.clone(),
            self.embedders.clone(),
            collection,
            &self.base,
            self.cache.clone(),
        )
        .await
    }
}
