//! The lexical default: BM25 term vectors from Qdrant's own tokenizer (English stop words
//! and Snowball stemming), so documents and queries are processed exactly as a Qdrant
//! server would.

use super::*;
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};

/// BM25 sparse embeddings. Needs no model and no network.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use symbi_context::embed::{Bm25Embedder, Embedder, Embedding, Purpose};
/// let e = Bm25Embedder::new().unwrap();
/// let v = e.embed(&["Foxes jump over the lazy dogs".to_string()], Purpose::Document).await.unwrap();
/// let Embedding::Lexical(s) = &v[0] else { panic!() };
/// assert_eq!(s.indices.len(), 4); // fox, jump, lazi, dog: "over"/"the" are stop words
/// # });
/// ```
pub struct Bm25Embedder {
    model: EdgeBm25,
}

impl Bm25Embedder {
    /// English BM25 with k1 = 1.2, b = 0.75 and an average chunk length of 200 tokens (the
    /// default chunk size of ingestion).
    pub fn new() -> Result<Self, ContextError> {
        let mut cfg = EdgeBm25Config {
            language: Some("english".into()),
            ..EdgeBm25Config::default()
        };
        cfg.avg_len = qdrant_edge::external::ordered_float::NotNan::new(200.0).expect("not NaN");
        let model =
            EdgeBm25::new(cfg).map_err(|e| ContextError::Embedding(format!("bm25: {e}")))?;
        Ok(Self { model })
    }

    /// The sparse vector of one text.
    pub fn embed_one(&self, text: &str, purpose: Purpose) -> SparseVec {
        let v = match purpose {
            Purpose::Document => self.model.embed_document(text),
            Purpose::Query => self.model.embed_query(text),
        };
        // Sorted indices make vectors comparable and are what both backends expect.
        let mut pairs: Vec<(u32, f32)> = v.indices.into_iter().zip(v.values).collect();
        pairs.sort_unstable_by_key(|p| p.0);
        pairs.dedup_by_key(|p| p.0);
        let (indices, values) = pairs.into_iter().unzip();
        SparseVec { indices, values }
    }
}

#[async_trait]
impl Embedder for Bm25Embedder {
    fn name(&self) -> String {
        "bm25".into()
    }
    fn kind(&self) -> EmbeddingKind {
        EmbeddingKind::Lexical
    }
    async fn embed(
        &self,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<Vec<Embedding>, ContextError> {
        Ok(texts
            .iter()
            .map(|t| Embedding::Lexical(self.embed_one(t, purpose)))
            .collect())
    }
}
