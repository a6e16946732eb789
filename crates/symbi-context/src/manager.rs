//! The context manager: one object the runtime builds at start-up and the action gateway
//! calls for every memory, knowledge and RAG builtin.

use crate::cache::{CacheStats, QueryCache};
use crate::chunk::ChunkOptions;
use crate::embed::Embedders;
use crate::error::ContextError;
use crate::hybrid::{IndexFactory, Scored, Weights};
use crate::knowledge::{KNOWLEDGE_COLLECTION, KnowledgeBase, KnowledgeDocument};
use crate::rag::{RagAnswer, RagOptions};
use crate::state::{AgentState, StateScope};
use crate::stores::{MarkdownStore, MemoryStoreSpec};
use crate::vector::{
    CollectionSpec, EdgeStore, FieldMatch, MetaFilter, Quantization, RemoteStore, VectorStore,
};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use symbi_config::sections::context::VectorQuantization;
use symbi_config::{ContextSection, LlmSection};
use symbi_llm::{Engines, LlmClient};
use symbi_types::{
    ActionCategory, AgentRuleSet, Decision, EventDraft, EventSink, ExecutionId,
    PolicyDecisionPoint, PolicyRequest, Principal, Subject, SubjectKind,
};

/// The data set name of the shared knowledge base in policy requests (`DataSet::"shared"`,
/// the subject the action gateway uses for the knowledge builtins too).
pub const KNOWLEDGE_DATASET: &str = "shared";
/// The collection of agents' long-term memory.
pub const MEMORY_COLLECTION: &str = "memory";

/// Who is asking, for the policy-gated operations (shared knowledge, RAG).
pub struct Caller<'a> {
    /// The acting agent (name, id, capabilities).
    pub principal: Principal,
    /// The execution the call belongs to.
    pub execution: Option<ExecutionId>,
    /// The agent's own DSL policy rules, combined with Cedar by the decision point.
    pub rules: Option<&'a dyn AgentRuleSet>,
    /// Request context (`has_human_approval`, `session`, …).
    pub context: Map<String, Value>,
}

impl<'a> Caller<'a> {
    /// A caller with no rules and an empty context.
    pub fn agent(principal: Principal) -> Self {
        Self {
            principal,
            execution: None,
            rules: None,
            context: Map::new(),
        }
    }
}

/// One entry of short-term memory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interaction {
    /// `user`, `agent`, `tool`, … as the caller labels it.
    pub role: String,
    /// What was said or done.
    pub content: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One result of long-term memory retrieval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryHit {
    /// Memory id.
    pub id: String,
    /// The remembered text.
    pub text: String,
    /// Fused hybrid score in (0, 1].
    pub score: f32,
    /// Metadata given when it was stored.
    pub metadata: Map<String, Value>,
}

/// What a compaction removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactionReport {
    /// Knowledge chunks past `knowledge_retention_days`.
    pub knowledge_chunks: usize,
    /// Long-term memories past `knowledge_retention_days`.
    pub memories: usize,
    /// Memory-store entries past their store's retention, per store.
    pub store_entries: HashMap<String, usize>,
}

struct Inner {
    data_dir: PathBuf,
    factory: IndexFactory,
    knowledge: KnowledgeBase,
    memory: crate::hybrid::HybridIndex,
    state: AgentState,
    short_term: Mutex<HashMap<String, VecDeque<Interaction>>>,
    short_term_capacity: usize,
    working: Mutex<HashMap<ExecutionId, Map<String, Value>>>,
    stores: RwLock<HashMap<String, Arc<MarkdownStore>>>,
    llm: Option<Engines>,
    pdp: Arc<dyn PolicyDecisionPoint>,
    sink: Arc<dyn EventSink>,
}

/// The context manager. Cheap to clone.
#[derive(Clone)]
pub struct ContextManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ContextManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextManager")
            .field("data_dir", &self.inner.data_dir)
            .field("backend", &self.inner.factory.store.backend())
            .field("embedders", &self.inner.factory.embedders)
            .finish_non_exhaustive()
    }
}

/// Everything [`ContextManager::open_with`] needs; [`ContextManager::open`] fills it from the
/// configuration.
pub struct ContextParts {
    /// The data directory.
    pub data_dir: PathBuf,
    /// `[context]`.
    pub context: ContextSection,
    /// The vector store.
    pub store: Arc<dyn VectorStore>,
    /// The embedders.
    pub embedders: Embedders,
    /// The model provider, if configured (RAG answers, the LLM builtins).
    pub llm: Option<LlmClient>,
    /// The policy decision point.
    pub pdp: Arc<dyn PolicyDecisionPoint>,
    /// The audit sink.
    pub sink: Arc<dyn EventSink>,
}

/// The vector store the configuration names: a Qdrant server when `vector_db_url` (or
/// `QDRANT_URL`) is set, else Qdrant Edge under `<data dir>/vectors`.
pub fn vector_store_from_config(
    ctx: &ContextSection,
    data_dir: &Path,
) -> Result<Arc<dyn VectorStore>, ContextError> {
    Ok(match &ctx.vector_db_url {
        Some(url) => Arc::new(
            RemoteStore::connect(url, None)?
                .with_binary_oversampling(f64::from(ctx.binary_oversampling)),
        ),
        None => Arc::new(
            EdgeStore::open(&data_dir.join("vectors"))?
                .with_binary_oversampling(f64::from(ctx.binary_oversampling)),
        ),
    })
}

/// The collection template of the configuration (HNSW and quantization).
pub fn collection_spec(ctx: &ContextSection) -> CollectionSpec {
    CollectionSpec {
        hnsw_m: ctx.hnsw_m,
        hnsw_ef_construct: ctx.hnsw_ef_construct,
        quantization: match ctx.quantization {
            VectorQuantization::None => Quantization::None,
            VectorQuantization::Scalar => Quantization::Scalar,
            VectorQuantization::Binary => Quantization::Binary,
        },
        ..CollectionSpec::default()
    }
}

impl ContextManager {
    /// Builds the context manager from the configuration: vector store (`[context]
    /// vector_db_url` or Qdrant Edge under `<data dir>/vectors`), embedders (`[context]
    /// embedder`), model provider (`[llm]`, optional). Fails closed on anything configured
    /// but unavailable.
    pub async fn open(
        config: &symbi_config::Config,
        pdp: Arc<dyn PolicyDecisionPoint>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, ContextError> {
        let data_dir = config.data_dir();
        Self::open_sections(&data_dir, &config.context, &config.llm, pdp, sink).await
    }

    /// [`Self::open`] from the two sections and a data directory.
    pub async fn open_sections(
        data_dir: &Path,
        context: &ContextSection,
        llm: &LlmSection,
        pdp: Arc<dyn PolicyDecisionPoint>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, ContextError> {
        let store = vector_store_from_config(context, data_dir)?;
        let embedders = Embedders::from_config(context, llm, data_dir)?;
        let llm = LlmClient::from_section(llm)?;
        Self::open_with(ContextParts {
            data_dir: data_dir.to_path_buf(),
            context: context.clone(),
            store,
            embedders,
            llm,
            pdp,
            sink,
        })
        .await
    }

    /// Builds the context manager from explicit parts.
    pub async fn open_with(p: ContextParts) -> Result<Self, ContextError> {
        std::fs::create_dir_all(&p.data_dir).map_err(|e| ContextError::io(&p.data_dir, e))?;
        let factory = IndexFactory {
            store: p.store,
            embedders: p.embedders,
            base: collection_spec(&p.context),
            cache: Arc::new(QueryCache::<Vec<Scored>>::new(
                p.context.context_cache_size.0.min(usize::MAX as u64) as usize,
            )),
        };
        let opts = ChunkOptions {
            max_tokens: p.context.chunk_tokens,
            overlap_tokens: p.context.chunk_overlap_tokens,
        };
        let knowledge = KnowledgeBase::new(
            factory.open(KNOWLEDGE_COLLECTION).await?,
            opts,
            p.context.knowledge_retention_days,
        );
        let memory = factory.open(MEMORY_COLLECTION).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                state: AgentState::new(&p.data_dir.join("memory").join("agents")),
                data_dir: p.data_dir,
                factory,
                knowledge,
                memory,
                short_term: Mutex::new(HashMap::new()),
                short_term_capacity: p.context.short_term_capacity,
                working: Mutex::new(HashMap::new()),
                stores: RwLock::new(HashMap::new()),
                llm: p.llm.map(Engines::new),
                pdp: p.pdp,
                sink: p.sink,
            }),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The vector store in use.
    pub fn vector_store(&self) -> &Arc<dyn VectorStore> {
        &self.inner.factory.store
    }

    /// The embedders in use.
    pub fn embedders(&self) -> &Embedders {
        &self.inner.factory.embedders
    }

    /// The model builtins (`llm_call`, `reason`, …), when a provider is configured.
    pub fn llm(&self) -> Option<&Engines> {
        self.inner.llm.as_ref()
    }

    /// The knowledge base without policy checks (operator tools: `symbi knowledge`).
    pub fn knowledge(&self) -> &KnowledgeBase {
        &self.inner.knowledge
    }

    /// Cache figures.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.factory.cache.stats()
    }

    // ---- key/value state: remember / recall / forget ----

    /// The agents' key/value state (`remember`, `recall`, `forget`).
    pub fn state(&self) -> &AgentState {
        &self.inner.state
    }

    /// `remember(key, value)`.
    pub fn remember(
        &self,
        scope: &StateScope,
        key: &str,
        value: Value,
    ) -> Result<(), ContextError> {
        self.inner.state.remember(scope, key, value)
    }

    /// `recall(key)`.
    pub fn recall(&self, scope: &StateScope, key: &str) -> Result<Option<Value>, ContextError> {
        self.inner.state.recall(scope, key)
    }

    /// `forget(key)`.
    pub fn forget(&self, scope: &StateScope, key: &str) -> Result<bool, ContextError> {
        self.inner.state.forget(scope, key)
    }

    // ---- short-term memory ----

    /// Appends to an agent's recent interactions (the oldest fall off beyond
    /// `short_term_capacity`).
    pub fn record_interaction(&self, agent: &str, role: &str, content: &str) {
        let mut g = self.inner.short_term.lock();
        let q = g.entry(agent.to_string()).or_default();
        q.push_back(Interaction {
            role: role.into(),
            content: content.into(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        while q.len() > self.inner.short_term_capacity {
            q.pop_front();
        }
    }

    /// The `n` most recent interactions, oldest first.
    pub fn recent(&self, agent: &str, n: usize) -> Vec<Interaction> {
        let g = self.inner.short_term.lock();
        g.get(agent)
            .map(|q| q.iter().skip(q.len().saturating_sub(n)).cloned().collect())
            .unwrap_or_default()
    }

    /// Clears an agent's short-term memory.
    pub fn clear_recent(&self, agent: &str) {
        self.inner.short_term.lock().remove(agent);
    }

    // ---- working memory ----

    /// Sets a value in an execution's scratch state.
    pub fn working_set(&self, execution: ExecutionId, key: &str, value: Value) {
        self.inner
            .working
            .lock()
            .entry(execution)
            .or_default()
            .insert(key.to_string(), value);
    }

    /// Reads a value of an execution's scratch state.
    pub fn working_get(&self, execution: ExecutionId, key: &str) -> Option<Value> {
        self.inner
            .working
            .lock()
            .get(&execution)
            .and_then(|m| m.get(key).cloned())
    }

    /// Ends an execution: its working memory and its ephemeral key/value state are gone.
    pub fn end_execution(&self, execution: ExecutionId) {
        self.inner.working.lock().remove(&execution);
        self.inner.state.end_execution(execution);
    }

    // ---- long-term memory ----

    /// Stores a long-term memory for `agent` (persistent, searchable); returns its id.
    pub async fn memorize(
        &self,
        agent: &str,
        text: &str,
        metadata: Map<String, Value>,
    ) -> Result<String, ContextError> {
        let id = uuid::Uuid::new_v4();
        let mut p = Map::new();
        p.insert("agent".into(), agent.into());
        p.insert("text".into(), text.into());
        p.insert("created_at".into(), chrono::Utc::now().timestamp().into());
        p.insert("metadata".into(), Value::Object(metadata));
        self.inner
            .memory
            .upsert(vec![(id, text.to_string(), p)])
            .await?;
        Ok(id.to_string())
    }

    /// An agent's memories most relevant to `query`, best first.
    pub async fn retrieve(
        &self,
        agent: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<MemoryHit>, ContextError> {
        let f = MetaFilter::eq("agent", agent);
        let hits = self
            .inner
            .memory
            .search(query, Some(&f), limit, Weights::default())
            .await?;
        Ok(hits
            .iter()
            .map(|h| memory_hit(h.id, h.score, &h.payload))
            .collect())
    }

    /// One memory by id (only the agent's own).
    pub async fn memory_get(
        &self,
        agent: &str,
        id: &str,
    ) -> Result<Option<MemoryHit>, ContextError> {
        let Ok(uid) = uuid::Uuid::parse_str(id) else {
            return Ok(None);
        };
        let pts = self
            .inner
            .factory
            .store
            .get(MEMORY_COLLECTION, &[uid])
            .await?;
        Ok(pts
            .into_iter()
            .find(|p| p.payload.get("agent").and_then(Value::as_str) == Some(agent))
            .map(|p| memory_hit(p.id, 1.0, &p.payload)))
    }

    /// Deletes one of an agent's memories; whether it existed.
    pub async fn forget_memory(&self, agent: &str, id: &str) -> Result<bool, ContextError> {
        if self.memory_get(agent, id).await?.is_none() {
            return Ok(false);
        }
        let uid = uuid::Uuid::parse_str(id).expect("checked by memory_get");
        self.inner.memory.delete(&[uid]).await?;
        Ok(true)
    }

    // ---- named memory stores (DSL `memory` items) ----

    /// Opens a `memory` item's store (idempotent for the same spec). Call when a program
    /// with `memory` items is loaded.
    pub async fn register_store(&self, spec: MemoryStoreSpec) -> Result<(), ContextError> {
        if let Some(s) = self.inner.stores.read().get(&spec.name) {
            if s.spec() == &spec {
                return Ok(());
            }
        }
        let store =
            MarkdownStore::open(spec.clone(), &self.inner.data_dir, &self.inner.factory).await?;
        self.inner
            .stores
            .write()
            .insert(spec.name.clone(), Arc::new(store));
        Ok(())
    }

    fn store(&self, name: &str) -> Result<Arc<MarkdownStore>, ContextError> {
        self.inner.stores.read().get(name).cloned().ok_or_else(|| {
            ContextError::NotFound(format!(
                "memory store `{name}` (no `memory {name} {{ … }}` item is loaded)"
            ))
        })
    }

    /// `memory_write(store, record)` → entry id.
    pub async fn memory_write(
        &self,
        store: &str,
        record: Map<String, Value>,
    ) -> Result<String, ContextError> {
        self.store(store)?.write(record).await
    }

    /// `memory_search(store, query, limit)` → stored maps with `id` and `score`, best first.
    pub async fn memory_search(
        &self,
        store: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Value>, ContextError> {
        self.store(store)?.search(query, limit).await
    }

    /// `memory_delete(store, id)` → whether it existed.
    pub async fn memory_delete(&self, store: &str, id: &str) -> Result<bool, ContextError> {
        self.store(store)?.delete(id).await
    }

    // ---- shared knowledge (policy-gated, audited) ----

    /// Decides `category` on the knowledge data set for `caller`, records the decision in
    /// the audit log (before anything happens), and fails unless it is a plain Allow. An
    /// AllowWithConditions is refused here: its conditions (approvals, rate limits) are the
    /// action gateway's to satisfy.
    async fn authorize(
        &self,
        caller: &Caller<'_>,
        category: ActionCategory,
        name: &str,
        details: Value,
    ) -> Result<(), ContextError> {
        let subject = Subject::named(SubjectKind::DataSet, KNOWLEDGE_DATASET);
        let mut req = PolicyRequest::new(caller.principal.clone(), category, name, subject.clone());
        req.context = caller.context.clone();
        req.execution = caller.execution;
        let decision = self.inner.pdp.decide(&req, caller.rules);
        let mut d = json!({
            "action": name,
            "subject": {"kind": "data_set", "name": KNOWLEDGE_DATASET},
            "decision": decision.outcome(),
            "reasons": decision.reason(),
        });
        if let (Value::Object(m), Value::Object(extra)) = (&mut d, details) {
            m.extend(extra);
        }
        let mut draft = EventDraft::new(category.as_str(), d);
        if let Some(id) = caller.principal.agent_id {
            draft = draft.agent(id, caller.principal.name.clone());
        } else {
            draft.agent_name = Some(caller.principal.name.clone());
        }
        if let Some(e) = caller.execution {
            draft = draft.execution(e);
        }
        self.inner
            .sink
            .record(draft)
            .await
            .map_err(|e| ContextError::Audit(e.to_string()))?;
        match decision {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny { .. } => Err(ContextError::PolicyDenied {
                action: category.as_str().into(),
                reason: decision.reason(),
            }),
            Decision::AllowWithConditions { ref conditions, .. } => {
                Err(ContextError::PolicyDenied {
                    action: category.as_str().into(),
                    reason: format!(
                        "allowed only under conditions ({}) that must be satisfied by the action gateway",
                        serde_json::to_string(conditions).unwrap_or_default()
                    ),
                })
            }
        }
    }

    /// `knowledge_add(document)` → document id. Policy: `knowledge_write` on
    /// `DataSet::"shared"`.
    pub async fn knowledge_add(
        &self,
        caller: &Caller<'_>,
        document: &Value,
    ) -> Result<String, ContextError> {
        let doc = KnowledgeDocument::from_value(document)?;
        let details = json!({"document_sha256": symbi_llm::digest(document), "id": doc.id});
        self.authorize(
            caller,
            ActionCategory::KnowledgeWrite,
            "knowledge_add",
            details,
        )
        .await?;
        Ok(self.inner.knowledge.add(doc).await?.0)
    }

    /// `knowledge_search(query, limit)` → `[{id, text, score, metadata}]`. Policy:
    /// `knowledge_read` on `DataSet::"shared"`.
    pub async fn knowledge_search(
        &self,
        caller: &Caller<'_>,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Value>, ContextError> {
        let details = json!({"query_sha256": symbi_llm::digest(query), "limit": limit});
        self.authorize(
            caller,
            ActionCategory::KnowledgeRead,
            "knowledge_search",
            details,
        )
        .await?;
        let hits = self.inner.knowledge.search(query, limit, None).await?;
        Ok(hits.iter().map(|h| h.to_dsl()).collect())
    }

    /// `rag_query(question, limit)` → the full answer (use [`RagAnswer::to_dsl`] for the DSL
    /// value `{answer, citations}`). Policy: `knowledge_read`, and `use_llm` on the
    /// configured model when a model writes the answer (its call record is in
    /// `llm_record`, for the gateway's audit event).
    pub async fn rag_query(
        &self,
        caller: &Caller<'_>,
        question: &str,
        limit: usize,
    ) -> Result<RagAnswer, ContextError> {
        let details =
            json!({"query_sha256": symbi_llm::digest(question), "limit": limit, "rag": true});
        self.authorize(caller, ActionCategory::KnowledgeRead, "rag_query", details)
            .await?;
        let client = self.inner.llm.as_ref().map(|e| e.client());
        if let Some(c) = client {
            let subject = Subject::named(SubjectKind::Llm, c.config().model.clone())
                .with("model", c.config().model.clone())
                .with("provider", "openai-compatible");
            let mut req = PolicyRequest::new(
                caller.principal.clone(),
                ActionCategory::UseLlm,
                "rag_query",
                subject,
            );
            req.context = caller.context.clone();
            req.execution = caller.execution;
            let decision = self.inner.pdp.decide(&req, caller.rules);
            let mut draft = EventDraft::new(
                ActionCategory::UseLlm.as_str(),
                json!({"action": "rag_query", "model": c.config().model, "decision": decision.outcome(), "reasons": decision.reason()}),
            );
            draft.agent = caller.principal.agent_id;
            draft.agent_name = Some(caller.principal.name.clone());
            draft.execution = caller.execution;
            self.inner
                .sink
                .record(draft)
                .await
                .map_err(|e| ContextError::Audit(e.to_string()))?;
            if !matches!(decision, Decision::Allow { .. }) {
                return Err(ContextError::PolicyDenied {
                    action: "use_llm".into(),
                    reason: decision.reason(),
                });
            }
        }
        crate::rag::answer(
            &self.inner.knowledge,
            client,
            question,
            RagOptions {
                limit: limit.max(1),
                rerank: true,
            },
        )
        .await
    }

    // ---- the same, for a caller that has already decided and audited ----

    /// `knowledge_add` for the action gateway, which has already taken and recorded the
    /// `knowledge_write` decision: no second policy request.
    pub async fn knowledge_add_decided(&self, document: &Value) -> Result<String, ContextError> {
        Ok(self
            .inner
            .knowledge
            .add(KnowledgeDocument::from_value(document)?)
            .await?
            .0)
    }

    /// `knowledge_search` for the action gateway (decision already taken and recorded).
    pub async fn knowledge_search_decided(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Value>, ContextError> {
        Ok(self
            .inner
            .knowledge
            .search(query, limit, None)
            .await?
            .iter()
            .map(|h| h.to_dsl())
            .collect())
    }

    /// `rag_query` for the action gateway (the `knowledge_read` decision, and `use_llm` when
    /// [`Self::llm`] is configured, already taken and recorded). The answer's `llm_record`
    /// carries the model call's audit facts.
    pub async fn rag_query_decided(
        &self,
        question: &str,
        limit: usize,
    ) -> Result<RagAnswer, ContextError> {
        self.rag_query_decided_with(question, limit, true).await
    }

    /// As [`Self::rag_query_decided`], with the model writing the answer only when
    /// `use_llm` is true (the caller's `use_llm` decision allowed it) and a provider is
    /// configured; otherwise the answer is extractive.
    pub async fn rag_query_decided_with(
        &self,
        question: &str,
        limit: usize,
        use_llm: bool,
    ) -> Result<RagAnswer, ContextError> {
        let client = if use_llm {
            self.inner.llm.as_ref().map(|e| e.client())
        } else {
            None
        };
        crate::rag::answer(
            &self.inner.knowledge,
            client,
            question,
            RagOptions {
                limit: limit.max(1),
                rerank: true,
            },
        )
        .await
    }

    // ---- retention ----

    /// Applies retention everywhere: knowledge and long-term memories older than
    /// `knowledge_retention_days`, memory-store entries older than their store's retention.
    pub async fn compact(&self) -> Result<CompactionReport, ContextError> {
        let mut r = CompactionReport {
            knowledge_chunks: self.inner.knowledge.compact().await?,
            ..Default::default()
        };
        let days = self.knowledge_retention_days();
        let cutoff = chrono::Utc::now().timestamp() - days as i64 * 86_400;
        let f = MetaFilter::default().and(
            "created_at",
            FieldMatch::Range {
                gte: None,
                lt: Some(cutoff as f64),
            },
        );
        r.memories = self
            .inner
            .factory
            .store
            .count(MEMORY_COLLECTION, Some(&f))
            .await?;
        if r.memories > 0 {
            self.inner.memory.delete_where(&f).await?;
        }
        let stores: Vec<Arc<MarkdownStore>> = self.inner.stores.read().values().cloned().collect();
        for s in stores {
            r.store_entries
                .insert(s.spec().name.clone(), s.compact().await?);
        }
        Ok(r)
    }

    fn knowledge_retention_days(&self) -> u32 {
        self.inner.knowledge.retention_days()
    }
}

fn memory_hit(id: uuid::Uuid, score: f32, p: &Map<String, Value>) -> MemoryHit {
    MemoryHit {
        id: id.to_string(),
        text: p
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        score,
        metadata: p
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}
