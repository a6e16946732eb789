//! `[context]`: memory, knowledge and the vector database.

use crate::validate::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use symbi_types::ByteSize;

/// Which dense embedder, if any, complements the built-in BM25 lexical embedder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    /// BM25 sparse vectors only (needs nothing).
    #[default]
    Lexical,
    /// Plus dense vectors from the `[llm]` provider's `/v1/embeddings`.
    Openai,
    /// Plus dense vectors from a sentence-transformer model on disk (`local_model_dir`).
    Local,
}

/// Compression of stored dense vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VectorQuantization {
    /// Full float32.
    #[default]
    None,
    /// int8 scalar quantization (4× smaller), rescored with the originals.
    Scalar,
    /// 1 bit per dimension (32× smaller), rescored with the originals.
    Binary,
}

/// `[context]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextSection {
    /// A Qdrant server (`QDRANT_URL`). Unset (default): the embedded Qdrant Edge store
    /// under the data directory.
    pub vector_db_url: Option<String>,
    /// Dimension of dense embeddings (1536 for OpenAI's models, 384 for all-MiniLM-L6-v2).
    #[serde(deserialize_with = "usize_in::<1, 65536, _>")]
    pub embedding_dimension: usize,
    /// Bound of the context cache (query results of memory and knowledge retrieval).
    #[serde(deserialize_with = "size_at_least::<0, _>")]
    pub context_cache_size: ByteSize,
    /// Knowledge older than this many days is removed by compaction.
    #[serde(deserialize_with = "u32_in::<1, 36500, _>")]
    pub knowledge_retention_days: u32,
    /// Dense embedder next to BM25: `lexical` (none, default), `openai`, `local`.
    pub embedder: EmbedderKind,
    /// Directory of the local embedding model (`embedder = "local"`); relative paths are
    /// under the data directory.
    pub local_model_dir: Option<PathBuf>,
    /// HNSW graph degree.
    #[serde(deserialize_with = "usize_in::<4, 128, _>")]
    pub hnsw_m: usize,
    /// HNSW construction beam.
    #[serde(deserialize_with = "usize_in::<4, 4096, _>")]
    pub hnsw_ef_construct: usize,
    /// Compression of dense vectors: `none`, `scalar`, `binary`.
    pub quantization: VectorQuantization,
    /// Binary quantization: candidates fetched per wanted result and rescored with the
    /// original vectors (recall against latency; see docs/context.md).
    #[serde(deserialize_with = "u32_in::<1, 1000, _>")]
    pub binary_oversampling: u32,
    /// Recent interactions kept per agent in short-term memory.
    #[serde(deserialize_with = "usize_in::<1, 100000, _>")]
    pub short_term_capacity: usize,
    /// Target chunk size of ingested documents, in tokens (words).
    #[serde(deserialize_with = "usize_in::<16, 8192, _>")]
    pub chunk_tokens: usize,
    /// Tokens repeated between consecutive chunks.
    #[serde(deserialize_with = "usize_in::<0, 4096, _>")]
    pub chunk_overlap_tokens: usize,
}

impl Default for ContextSection {
    fn default() -> Self {
        Self {
            vector_db_url: None,
            embedding_dimension: 1536,
            context_cache_size: ByteSize(1 << 30),
            knowledge_retention_days: 365,
            embedder: EmbedderKind::Lexical,
            local_model_dir: None,
            hnsw_m: 16,
            hnsw_ef_construct: 200,
            quantization: VectorQuantization::None,
            binary_oversampling: 100,
            short_term_capacity: 50,
            chunk_tokens: 200,
            chunk_overlap_tokens: 40,
        }
    }
}
