//! Context and knowledge for symbi agents (SPEC §7).
//!
//! * [`ContextManager`] — the one object the runtime builds ([`ContextManager::open`] from
//!   the configuration, a policy decision point and an audit sink) and the action gateway
//!   calls: the agents' key/value state (`remember`/`recall`/`forget`, [`state`]),
//!   short-term memory (recent interactions, bounded), working memory (per execution),
//!   long-term memory (persistent, searchable), the named memory stores of DSL `memory`
//!   items ([`stores`]), and the shared knowledge base ([`knowledge`]) with RAG ([`rag`]),
//!   policy-gated (`knowledge_read` / `knowledge_write` on `DataSet::"shared"`) and
//!   audited.
//! * [`vector`] — the vector database: Qdrant Edge embedded (default, on disk under
//!   `<data dir>/vectors/`) or a Qdrant server (`QDRANT_URL`), behind one trait.
//! * [`embed`] — embedders: BM25 (built in), OpenAI-compatible dense embeddings, a local
//!   sentence-transformer; [`hybrid`] fuses lexical and dense search (weighted RRF).
//! * [`chunk`] — document chunking for text, Markdown and JSON.
//! * [`cache`] — the bounded context cache (`context_cache_size`).
//!
//! On disk, under the data directory:
//!
//! ```text
//! memory/agents/<agent>/state.json   remember/recall state of persistent agents (atomic)
//! vectors/knowledge/                 Qdrant Edge shard of the shared knowledge base
//! vectors/memory/                    Qdrant Edge shard of long-term memories
//! vectors/store_<name>_<hash>/       index of a memory store
//! <store path>/<id>.md               memory-store entries (the source of truth)
//! ```

pub mod bench;
pub mod cache;
pub mod chunk;
pub mod embed;
pub mod error;
pub mod hybrid;
pub mod knowledge;
mod manager;
pub mod rag;
pub mod state;
pub mod stores;
pub mod vector;

pub use error::ContextError;
pub use manager::{
    Caller, CompactionReport, ContextManager, ContextParts, Interaction, KNOWLEDGE_DATASET,
    MEMORY_COLLECTION, MemoryHit, collection_spec, vector_store_from_config,
};
pub use rag::RagAnswer;
pub use state::StateScope;
pub use stores::MemoryStoreSpec;
