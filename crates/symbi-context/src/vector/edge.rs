//! The embedded backend: Qdrant Edge (`qdrant-edge`), in process, one shard directory per
//! collection under `<data dir>/vectors/<collection>/` (segments, write-ahead log and
//! `edge_config.json`). Operations are synchronous in the engine, so they run on tokio's
//! blocking pool.

use super::*;
use parking_lot::RwLock;
use qdrant_edge as qe;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Qdrant Edge collections under one directory.
pub struct EdgeStore {
    root: PathBuf,
    shards: RwLock<HashMap<String, Arc<qe::EdgeShard>>>,
    binary_oversampling: f64,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn edge_err(e: impl std::fmt::Display) -> ContextError {
    ContextError::Vector(format!("qdrant-edge: {e}"))
}

/// Collection names become directory names: keep them to a safe alphabet.
pub(crate) fn check_name(name: &str) -> Result<(), ContextError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ContextError::InvalidArgument(format!(
            "collection name `{name}` must be 1-128 characters of A-Z, a-z, 0-9, `_` or `-`"
        )));
    }
    Ok(())
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ContextError> {
    serde_json::from_value(v).map_err(edge_err)
}

fn filter_of(f: Option<&MetaFilter>) -> Result<Option<qe::Filter>, ContextError> {
    match f {
        Some(f) if !f.is_empty() => Ok(Some(from_json(f.to_qdrant_json())?)),
        _ => Ok(None),
    }
}

fn uuid_of(id: &qe::PointId) -> Result<uuid::Uuid, ContextError> {
    match id {
        qe::PointId::Uuid(u) => Ok(*u),
        qe::PointId::NumId(n) => Err(ContextError::Vector(format!(
            "unexpected numeric point id {n}"
        ))),
    }
}

fn sparse(v: &SparseVec) -> Result<qe::SparseVector, ContextError> {
    qe::SparseVector::new(v.indices.clone(), v.values.clone()).map_err(edge_err)
}

fn edge_config(spec: &CollectionSpec) -> Result<qe::EdgeConfig, ContextError> {
    let hnsw: qe::HnswIndexConfig = from_json(serde_json::json!({
        "m": spec.hnsw_m,
        "ef_construct": spec.hnsw_ef_construct,
        "full_scan_threshold": 10_000,
        "max_indexing_threads": 0,
    }))?;
    let quantization: Option<qe::QuantizationConfig> = match spec.quantization {
        Quantization::None => None,
        Quantization::Scalar => Some(from_json(serde_json::json!({
            "scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}
        }))?),
        Quantization::Binary => Some(from_json(
            serde_json::json!({"binary": {"always_ram": true}}),
        )?),
    };
    let mut vectors = HashMap::new();
    if let Some(dim) = spec.dense_dim {
        vectors.insert(
            DENSE.to_string(),
            qe::EdgeVectorParams {
                size: dim,
                distance: qe::Distance::Cosine,
                on_disk: Some(spec.on_disk),
                multivector_config: None,
                datatype: None,
                quantization_config: quantization,
                hnsw_config: None,
            },
        );
    }
    let mut sparse_vectors = HashMap::new();
    if spec.lexical {
        sparse_vectors.insert(
            LEXICAL.to_string(),
            qe::EdgeSparseVectorParams {
                modifier: Some(qe::Modifier::Idf),
                ..Default::default()
            },
        );
    }
    Ok(qe::EdgeConfig {
        vectors,
        sparse_vectors,
        hnsw_config: hnsw,
        ..Default::default()
    })
}

impl EdgeStore {
    /// Opens (creating if needed) the store rooted at `root` (normally
    /// `<data dir>/vectors`).
    pub fn open(root: &Path) -> Result<Self, ContextError> {
        std::fs::create_dir_all(root).map_err(|e| ContextError::io(root, e))?;
        Ok(Self {
            root: root.to_path_buf(),
            shards: RwLock::new(HashMap::new()),
            binary_oversampling: DEFAULT_BINARY_OVERSAMPLING,
        })
    }

    /// Sets the candidates fetched per wanted result from binary-quantized collections
    /// before rescoring (`[context] binary_oversampling`).
    pub fn with_binary_oversampling(mut self, factor: f64) -> Self {
        self.binary_oversampling = factor.max(1.0);
        self
    }

    /// The directory holding the collections.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The shard of an existing collection, loading it from disk on first use.
    fn shard(&self, name: &str) -> Result<Arc<qe::EdgeShard>, ContextError> {
        check_name(name)?;
        if let Some(s) = self.shards.read().get(name) {
            return Ok(s.clone());
        }
        let mut shards = self.shards.write();
        if let Some(s) = shards.get(name) {
            return Ok(s.clone());
        }
        let dir = self.dir(name);
        if !dir.join("edge_config.json").exists() {
            return Err(ContextError::NotFound(format!("collection `{name}`")));
        }
        let shard = Arc::new(qe::EdgeShard::load(&dir, None).map_err(edge_err)?);
        shards.insert(name.to_string(), shard.clone());
        Ok(shard)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&qe::EdgeShard) -> Result<T, ContextError> + Send + 'static,
    ) -> Result<T, ContextError> {
        let shard = self.shard(name)?;
        tokio::task::spawn_blocking(move || f(&shard))
            .await
            .map_err(|e| ContextError::Vector(format!("qdrant-edge task failed: {e}")))?
    }

    /// On-disk size of a collection in bytes (for the compression benchmark).
    pub fn disk_usage(&self, name: &str) -> Result<u64, ContextError> {
        fn walk(p: &Path) -> std::io::Result<u64> {
            let mut total = 0;
            for e in std::fs::read_dir(p)? {
                let e = e?;
                let m = e.metadata()?;
                total += if m.is_dir() {
                    walk(&e.path())?
                } else {
                    m.len()
                };
            }
            Ok(total)
        }
        let dir = self.dir(name);
        walk(&dir).map_err(|e| ContextError::io(&dir, e))
    }

    /// Flushes a collection's write-ahead log and segments to disk.
    pub fn flush(&self, name: &str) -> Result<(), ContextError> {
        self.shard(name)?.flush();
        Ok(())
    }
}

#[async_trait]
impl VectorStore for EdgeStore {
    fn backend(&self) -> &'static str {
        "qdrant-edge"
    }

    async fn ensure_collection(
        &self,
        name: &str,
        spec: &CollectionSpec,
    ) -> Result<(), ContextError> {
        check_name(name)?;
        if self.dir(name).join("edge_config.json").exists() {
            let shard = self.shard(name)?;
            let cfg = shard.config();
            let have = cfg.vectors.get(DENSE).map(|v| v.size);
            if have != spec.dense_dim {
                return Err(ContextError::Vector(format!(
                    "collection `{name}` under {} has dense dimension {} but {} is configured; \
                     re-create it (symbi knowledge reindex) or restore the embedder it was built with",
                    self.root.display(),
                    have.map(|d| d.to_string()).unwrap_or("none".into()),
                    spec.dense_dim
                        .map(|d| d.to_string())
                        .unwrap_or("none".into()),
                )));
            }
            return Ok(());
        }
        let dir = self.dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| ContextError::io(&dir, e))?;
        let config = edge_config(spec)?;
        let shard = tokio::task::spawn_blocking(move || qe::EdgeShard::new(&dir, config))
            .await
            .map_err(|e| ContextError::Vector(format!("qdrant-edge task failed: {e}")))?
            .map_err(edge_err)?;
        self.shards
            .write()
            .insert(name.to_string(), Arc::new(shard));
        Ok(())
    }

    async fn has_collection(&self, name: &str) -> Result<bool, ContextError> {
        check_name(name)?;
        Ok(self.dir(name).join("edge_config.json").exists())
    }

    async fn drop_collection(&self, name: &str) -> Result<(), ContextError> {
        check_name(name)?;
        let shard = self.shards.write().remove(name);
        drop(shard);
        let dir = self.dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| ContextError::io(&dir, e))?;
        }
        Ok(())
    }

    async fn upsert(&self, collection: &str, points: Vec<VectorPoint>) -> Result<(), ContextError> {
        if points.is_empty() {
            return Ok(());
        }
        self.blocking(collection, move |shard| {
            let mut list = Vec::with_capacity(points.len());
            for p in points {
                let mut named: Vec<(String, qe::Vector)> = Vec::with_capacity(2);
                if let Some(d) = p.dense {
                    named.push((DENSE.to_string(), qe::Vector::from(d)));
                }
                if let Some(s) = &p.lexical {
                    named.push((LEXICAL.to_string(), qe::Vector::from(sparse(s)?)));
                }
                let point = qe::PointStruct::new(
                    qe::PointId::Uuid(p.id),
                    qe::Vectors::new_named(named),
                    Value::Object(p.payload),
                );
                list.push(qe::PointStructPersisted::from(point));
            }
            shard
                .update(qe::UpdateOperation::PointOperation(
                    qe::PointOperations::UpsertPoints(qe::PointInsertOperations::PointsList(list)),
                ))
                .map_err(edge_err)
        })
        .await
    }

    async fn delete(&self, collection: &str, ids: &[uuid::Uuid]) -> Result<(), ContextError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<qe::PointId> = ids.iter().map(|u| qe::PointId::Uuid(*u)).collect();
        self.blocking(collection, move |shard| {
            shard
                .update(qe::UpdateOperation::PointOperation(
                    qe::PointOperations::DeletePoints { ids },
                ))
                .map_err(edge_err)
        })
        .await
    }

    async fn delete_where(
        &self,
        collection: &str,
        filter: &MetaFilter,
    ) -> Result<(), ContextError> {
        let f = filter_of(Some(filter))?.ok_or_else(|| {
            ContextError::InvalidArgument("delete_where needs a non-empty filter".into())
        })?;
        self.blocking(collection, move |shard| {
            shard
                .update(qe::UpdateOperation::PointOperation(
                    qe::PointOperations::DeletePointsByFilter(f),
                ))
                .map_err(edge_err)
        })
        .await
    }

    async fn search(
        &self,
        collection: &str,
        req: &SearchRequest,
    ) -> Result<Vec<Hit>, ContextError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let filter = filter_of(req.filter.as_ref())?;
        let (query, using): (qe::VectorInternal, &str) = match &req.vector {
            QueryVector::Dense(v) => (qe::VectorInternal::from(v.clone()), DENSE),
            QueryVector::Lexical(s) => {
                if s.is_empty() {
                    return Ok(Vec::new()); // nothing to match (only stop words)
                }
                (qe::VectorInternal::from(sparse(s)?), LEXICAL)
            }
        };
        // Quantized candidates are rescored with the original vectors; 1-bit codes lose
        // more ordering than int8 ones, so binary collections fetch more candidates.
        let binary = self
            .shard(collection)?
            .config()
            .vectors
            .get(DENSE)
            .and_then(|v| v.quantization_config.as_ref())
            .and_then(|q| serde_json::to_value(q).ok())
            .is_some_and(|q| q.get("binary").is_some());
        let oversampling = req.oversampling.unwrap_or(if binary {
            self.binary_oversampling
        } else {
            SCALAR_OVERSAMPLING
        });
        let params: qe::SearchParams = from_json(serde_json::json!({
            "hnsw_ef": req.hnsw_ef,
            "exact": req.exact,
            "quantization": {"ignore": false, "rescore": true, "oversampling": oversampling},
        }))?;
        let request = qe::QueryRequest {
            prefetches: vec![],
            query: Some(qe::ScoringQuery::Vector(qe::QueryEnum::Nearest(
                qe::NamedQuery {
                    query,
                    using: Some(using.to_string()),
                },
            ))),
            filter,
            score_threshold: None,
            limit: req.limit,
            offset: 0,
            params: Some(params),
            with_vector: qe::WithVector::Bool(false),
            with_payload: qe::WithPayloadInterface::Bool(true),
        };
        self.blocking(collection, move |shard| {
            let points = shard.query(request).map_err(edge_err)?;
            points
                .into_iter()
                .map(|p| {
                    Ok(Hit {
                        id: uuid_of(&p.id)?,
                        score: p.score,
                        payload: p.payload.map(|p| p.0).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .await
    }

    async fn get(
        &self,
        collection: &str,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<StoredPoint>, ContextError> {
        let ids: Vec<qe::PointId> = ids.iter().map(|u| qe::PointId::Uuid(*u)).collect();
        self.blocking(collection, move |shard| {
            let recs = shard
                .retrieve(
                    &ids,
                    Some(qe::WithPayloadInterface::Bool(true)),
                    Some(qe::WithVector::Bool(false)),
                )
                .map_err(edge_err)?;
            recs.into_iter()
                .map(|r| {
                    Ok(StoredPoint {
                        id: uuid_of(&r.id)?,
                        payload: r.payload.map(|p| p.0).unwrap_or_default(),
                    })
                })
                .collect()
        })
        .await
    }

    async fn scroll(
        &self,
        collection: &str,
        filter: Option<&MetaFilter>,
        limit: usize,
    ) -> Result<Vec<StoredPoint>, ContextError> {
        let filter = filter_of(filter)?;
        self.blocking(collection, move |shard| {
            let mut out = Vec::new();
            let mut offset = None;
            while out.len() < limit {
                let page = (limit - out.len()).min(1000);
                let (recs, next) = shard
                    .scroll(qe::ScrollRequest {
                        offset,
                        limit: Some(page),
                        filter: filter.clone(),
                        with_payload: Some(qe::WithPayloadInterface::Bool(true)),
                        with_vector: qe::WithVector::Bool(false),
                        order_by: None,
                    })
                    .map_err(edge_err)?;
                for r in recs {
                    out.push(StoredPoint {
                        id: uuid_of(&r.id)?,
                        payload: r.payload.map(|p| p.0).unwrap_or_default(),
                    });
                }
                match next {
                    Some(n) => offset = Some(n),
                    None => break,
                }
            }
            Ok(out)
        })
        .await
    }

    async fn count(
        &self,
        collection: &str,
        filter: Option<&MetaFilter>,
    ) -> Result<usize, ContextError> {
        let filter = filter_of(filter)?;
        self.blocking(collection, move |shard| {
            shard
                .count(qe::CountRequest {
                    filter,
                    exact: true,
                })
                .map_err(edge_err)
        })
        .await
    }

    async fn optimize(&self, collection: &str) -> Result<(), ContextError> {
        self.blocking(collection, |shard| {
            shard.optimize().map(|_| ()).map_err(edge_err)
        })
        .await
    }

    async fn info(&self, collection: &str) -> Result<CollectionInfo, ContextError> {
        self.blocking(collection, |shard| {
            let i = shard.info();
            Ok(CollectionInfo {
                points: i.points_count,
                indexed: i.indexed_vectors_count,
            })
        })
        .await
    }
}
