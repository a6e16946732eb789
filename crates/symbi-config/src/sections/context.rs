//! `[context]`: memory, knowledge and the vector database.

use crate::validate::*;
use serde::{Deserialize, Serialize};
use symbi_types::ByteSize;

/// `[context]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContextSection {
    /// A Qdrant server (`QDRANT_URL`). Unset (default): the embedded Qdrant Edge store
    /// under the data directory.
    pub vector_db_url: Option<String>,
    /// Dimension of dense embeddings (1536 for OpenAI's models).
    #[serde(deserialize_with = "usize_in::<1, 65536, _>")]
    pub embedding_dimension: usize,
    /// Bound of the context cache.
    #[serde(deserialize_with = "size_at_least::<0, _>")]
    pub context_cache_size: ByteSize,
    /// Knowledge older than this many days is removed by compaction.
    #[serde(deserialize_with = "u32_in::<1, 36500, _>")]
    pub knowledge_retention_days: u32,
}

impl Default for ContextSection {
    fn default() -> Self {
        Self {
            vector_db_url: None,
            embedding_dimension: 1536,
            context_cache_size: ByteSize(1 << 30),
            knowledge_retention_days: 365,
        }
    }
}
