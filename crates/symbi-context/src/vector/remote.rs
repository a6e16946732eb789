//! The remote backend: a Qdrant server (`QDRANT_URL` / `[context] vector_db_url`) through
//! the official `qdrant-client` (gRPC). Writes use `wait = true`, so they are searchable
//! when the call returns, as with the embedded engine.

use super::*;
use qdrant_client::Qdrant;
use qdrant_client::qdrant::{
    self as q, Condition, CountPointsBuilder, CreateCollectionBuilder, DeletePointsBuilder,
    Distance, Filter, GetPointsBuilder, HnswConfigDiffBuilder, Modifier, PointStruct,
    PointsIdsList, QueryPointsBuilder, ScrollPointsBuilder, SearchParamsBuilder,
    SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpsertPointsBuilder, VectorInput,
    VectorParamsBuilder, VectorsConfigBuilder,
};
use std::collections::HashMap;

/// Collections on a Qdrant server.
pub struct RemoteStore {
    client: Qdrant,
    url: String,
    binary_oversampling: f64,
    /// Collections ensured here with binary quantization (searched with
    /// `binary_oversampling`; others with the server's default).
    binary: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn remote_err(e: impl std::fmt::Display) -> ContextError {
    ContextError::Vector(format!("qdrant server: {e}"))
}

fn conds(list: &[(String, FieldMatch)]) -> Result<Vec<Condition>, ContextError> {
    list.iter()
        .map(|(k, m)| {
            Ok(match m {
                FieldMatch::Eq(Value::String(s)) => Condition::matches(k.clone(), s.clone()),
                FieldMatch::Eq(Value::Bool(b)) => Condition::matches(k.clone(), *b),
                FieldMatch::Eq(Value::Number(n)) if n.is_i64() => Condition::matches(k.clone(), n.as_i64().unwrap_or_default()),
                FieldMatch::Any(vs) if vs.iter().all(Value::is_string) => Condition::matches(
                    k.clone(),
                    vs.iter().filter_map(|v| v.as_str().map(str::to_string)).collect::<Vec<_>>(),
                ),
                FieldMatch::Any(vs) if vs.iter().all(Value::is_i64) => {
                    Condition::matches(k.clone(), vs.iter().filter_map(Value::as_i64).collect::<Vec<_>>())
                }
                FieldMatch::Range { gte, lt } => {
                    Condition::range(k.clone(), q::Range { gte: *gte, lt: *lt, gt: None, lte: None })
                }
                other => {
                    return Err(ContextError::InvalidArgument(format!(
                        "filter on `{k}`: {other:?} is not supported (match strings, integers or booleans)"
                    )));
                }
            })
        })
        .collect()
}

fn filter_of(f: Option<&MetaFilter>) -> Result<Option<Filter>, ContextError> {
    let Some(f) = f.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    Ok(Some(Filter {
        must: conds(&f.must)?,
        must_not: conds(&f.must_not)?,
        ..Default::default()
    }))
}

fn uuid_of(id: Option<q::PointId>) -> Result<uuid::Uuid, ContextError> {
    match id.and_then(|p| p.point_id_options) {
        Some(q::point_id::PointIdOptions::Uuid(s)) => s.parse().map_err(remote_err),
        other => Err(ContextError::Vector(format!(
            "unexpected point id {other:?}"
        ))),
    }
}

fn json_payload(p: HashMap<String, q::Value>) -> Map<String, Value> {
    Map::from(qdrant_client::Payload::from(p))
}

impl RemoteStore {
    /// Connects to the server at `url` (`http://host:6334` gRPC; an `:6333` REST port in
    /// the URL is accepted and mapped to 6334, the gRPC port the client speaks).
    pub fn connect(url: &str, api_key: Option<&str>) -> Result<Self, ContextError> {
        let grpc = if url.ends_with(":6333") {
            format!("{}:6334", &url[..url.len() - 5])
        } else {
            url.to_string()
        };
        let mut b = Qdrant::from_url(&grpc).timeout(std::time::Duration::from_secs(30));
        if let Some(k) = api_key {
            b = b.api_key(k.to_string());
        }
        let client = b.build().map_err(remote_err)?;
        Ok(Self {
            client,
            url: grpc,
            binary_oversampling: DEFAULT_BINARY_OVERSAMPLING,
            binary: Default::default(),
        })
    }

    /// Sets the candidates fetched per wanted result from binary-quantized collections
    /// before rescoring (`[context] binary_oversampling`).
    pub fn with_binary_oversampling(mut self, factor: f64) -> Self {
        self.binary_oversampling = factor.max(1.0);
        self
    }

    /// The server URL in use.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[async_trait]
impl VectorStore for RemoteStore {
    fn backend(&self) -> &'static str {
        "qdrant-server"
    }

    async fn ensure_collection(
        &self,
        name: &str,
        spec: &CollectionSpec,
    ) -> Result<(), ContextError> {
        super::edge::check_name(name)?;
        if spec.quantization == Quantization::Binary {
            self.binary.lock().insert(name.to_string());
        }
        if self
            .client
            .collection_exists(name)
            .await
            .map_err(remote_err)?
        {
            let info = self
                .client
                .collection_info(name)
                .await
                .map_err(remote_err)?;
            let have = info
                .result
                .and_then(|r| r.config)
                .and_then(|c| c.params)
                .and_then(|p| p.vectors_config)
                .and_then(|v| match v.config {
                    Some(q::vectors_config::Config::ParamsMap(m)) => {
                        m.map.get(DENSE).map(|p| p.size as usize)
                    }
                    _ => None,
                });
            if have != spec.dense_dim {
                return Err(ContextError::Vector(format!(
                    "collection `{name}` on {} has dense dimension {have:?} but {:?} is configured",
                    self.url, spec.dense_dim
                )));
            }
            return Ok(());
        }
        let mut b = CreateCollectionBuilder::new(name).hnsw_config(
            HnswConfigDiffBuilder::default()
                .m(spec.hnsw_m as u64)
                .ef_construct(spec.hnsw_ef_construct as u64),
        );
        if let Some(dim) = spec.dense_dim {
            let mut params =
                VectorParamsBuilder::new(dim as u64, Distance::Cosine).on_disk(spec.on_disk);
            params = match spec.quantization {
                Quantization::None => params,
                Quantization::Scalar => params.quantization_config(
                    q::ScalarQuantizationBuilder::default()
                        .quantile(0.99)
                        .always_ram(true),
                ),
                Quantization::Binary => {
                    params.quantization_config(q::BinaryQuantizationBuilder::new(true))
                }
            };
            let mut vc = VectorsConfigBuilder::default();
            vc.add_named_vector_params(DENSE, params);
            b = b.vectors_config(vc);
        }
        if spec.lexical {
            let mut sc = SparseVectorsConfigBuilder::default();
            sc.add_named_vector_params(
                LEXICAL,
                SparseVectorParamsBuilder::default().modifier(Modifier::Idf),
            );
            b = b.sparse_vectors_config(sc);
        }
        self.client.create_collection(b).await.map_err(remote_err)?;
        Ok(())
    }

    async fn has_collection(&self, name: &str) -> Result<bool, ContextError> {
        self.client
            .collection_exists(name)
            .await
            .map_err(remote_err)
    }

    async fn drop_collection(&self, name: &str) -> Result<(), ContextError> {
        if self.has_collection(name).await? {
            self.client
                .delete_collection(name)
                .await
                .map_err(remote_err)?;
        }
        Ok(())
    }

    async fn upsert(&self, collection: &str, points: Vec<VectorPoint>) -> Result<(), ContextError> {
        if points.is_empty() {
            return Ok(());
        }
        let points: Vec<PointStruct> = points
            .into_iter()
            .map(|p| {
                let mut vectors: HashMap<String, q::Vector> = HashMap::new();
                if let Some(d) = p.dense {
                    vectors.insert(DENSE.into(), q::Vector::new_dense(d));
                }
                if let Some(s) = p.lexical {
                    vectors.insert(LEXICAL.into(), q::Vector::new_sparse(s.indices, s.values));
                }
                PointStruct::new(
                    p.id.to_string(),
                    vectors,
                    qdrant_client::Payload::from(p.payload),
                )
            })
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(collection, points).wait(true))
            .await
            .map_err(remote_err)?;
        Ok(())
    }

    async fn delete(&self, collection: &str, ids: &[uuid::Uuid]) -> Result<(), ContextError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<q::PointId> = ids
            .iter()
            .map(|u| q::PointId::from(u.to_string()))
            .collect();
        self.client
            .delete_points(
                DeletePointsBuilder::new(collection)
                    .points(PointsIdsList { ids })
                    .wait(true),
            )
            .await
            .map_err(remote_err)?;
        Ok(())
    }

    async fn delete_where(
        &self,
        collection: &str,
        filter: &MetaFilter,
    ) -> Result<(), ContextError> {
        let f = filter_of(Some(filter))?.ok_or_else(|| {
            ContextError::InvalidArgument("delete_where needs a non-empty filter".into())
        })?;
        self.client
            .delete_points(DeletePointsBuilder::new(collection).points(f).wait(true))
            .await
            .map_err(remote_err)?;
        Ok(())
    }

    async fn search(
        &self,
        collection: &str,
        req: &SearchRequest,
    ) -> Result<Vec<Hit>, ContextError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let (input, using) = match &req.vector {
            QueryVector::Dense(v) => (VectorInput::new_dense(v.clone()), DENSE),
            QueryVector::Lexical(s) => {
                if s.is_empty() {
                    return Ok(Vec::new());
                }
                (
                    VectorInput::new_sparse(s.indices.clone(), s.values.clone()),
                    LEXICAL,
                )
            }
        };
        let mut params = SearchParamsBuilder::default().exact(req.exact);
        if let Some(ef) = req.hnsw_ef {
            params = params.hnsw_ef(ef as u64);
        }
        let oversampling = req.oversampling.or_else(|| {
            self.binary
                .lock()
                .contains(collection)
                .then_some(self.binary_oversampling)
        });
        if let Some(oversampling) = oversampling {
            params = params.quantization(
                q::QuantizationSearchParamsBuilder::default()
                    .rescore(true)
                    .oversampling(oversampling),
            );
        }
        let mut b = QueryPointsBuilder::new(collection)
            .query(q::Query::new_nearest(input))
            .using(using)
            .limit(req.limit as u64)
            .with_payload(true)
            .params(params);
        if let Some(f) = filter_of(req.filter.as_ref())? {
            b = b.filter(f);
        }
        let resp = self.client.query(b).await.map_err(remote_err)?;
        resp.result
            .into_iter()
            .map(|p| {
                Ok(Hit {
                    id: uuid_of(p.id)?,
                    score: p.score,
                    payload: json_payload(p.payload),
                })
            })
            .collect()
    }

    async fn get(
        &self,
        collection: &str,
        ids: &[uuid::Uuid],
    ) -> Result<Vec<StoredPoint>, ContextError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let pids: Vec<q::PointId> = ids
            .iter()
            .map(|u| q::PointId::from(u.to_string()))
            .collect();
        let resp = self
            .client
            .get_points(GetPointsBuilder::new(collection, pids).with_payload(true))
            .await
            .map_err(remote_err)?;
        resp.result
            .into_iter()
            .map(|p| {
                Ok(StoredPoint {
                    id: uuid_of(p.id)?,
                    payload: json_payload(p.payload),
                })
            })
            .collect()
    }

    async fn scroll(
        &self,
        collection: &str,
        filter: Option<&MetaFilter>,
        limit: usize,
    ) -> Result<Vec<StoredPoint>, ContextError> {
        let filter = filter_of(filter)?;
        let mut out = Vec::new();
        let mut offset: Option<q::PointId> = None;
        while out.len() < limit {
            let page = (limit - out.len()).min(1000) as u32;
            let mut b = ScrollPointsBuilder::new(collection)
                .limit(page)
                .with_payload(true);
            if let Some(f) = &filter {
                b = b.filter(f.clone());
            }
            if let Some(o) = offset.take() {
                b = b.offset(o);
            }
            let resp = self.client.scroll(b).await.map_err(remote_err)?;
            for p in resp.result {
                out.push(StoredPoint {
                    id: uuid_of(p.id)?,
                    payload: json_payload(p.payload),
                });
            }
            match resp.next_page_offset {
                Some(n) => offset = Some(n),
                None => break,
            }
        }
        Ok(out)
    }

    async fn count(
        &self,
        collection: &str,
        filter: Option<&MetaFilter>,
    ) -> Result<usize, ContextError> {
        let mut b = CountPointsBuilder::new(collection).exact(true);
        if let Some(f) = filter_of(filter)? {
            b = b.filter(f);
        }
        let resp = self.client.count(b).await.map_err(remote_err)?;
        Ok(resp.result.map(|r| r.count as usize).unwrap_or(0))
    }

    async fn optimize(&self, _collection: &str) -> Result<(), ContextError> {
        // A server optimizes in the background on its own schedule.
        Ok(())
    }

    async fn info(&self, collection: &str) -> Result<CollectionInfo, ContextError> {
        let info = self
            .client
            .collection_info(collection)
            .await
            .map_err(remote_err)?;
        let r = info
            .result
            .ok_or_else(|| ContextError::NotFound(format!("collection `{collection}`")))?;
        Ok(CollectionInfo {
            points: r.points_count.unwrap_or(0) as usize,
            indexed: r.indexed_vectors_count.unwrap_or(0) as usize,
        })
    }
}
