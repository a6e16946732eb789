//! One behavioural suite for every `VectorStore` backend: Qdrant Edge (always) and a Qdrant
//! server (when `QDRANT_URL` names one; otherwise the remote run says it was skipped).

use serde_json::{Map, Value, json};
use std::sync::Arc;
use symbi_context::vector::*;

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn payload(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

fn sparse(pairs: &[(u32, f32)]) -> SparseVec {
    SparseVec {
        indices: pairs.iter().map(|p| p.0).collect(),
        values: pairs.iter().map(|p| p.1).collect(),
    }
}

/// Four points in 4-d with payloads for filtering.
fn corpus() -> Vec<VectorPoint> {
    vec![
        VectorPoint {
            id: id(1),
            dense: Some(unit(&[1.0, 0.0, 0.0, 0.0])),
            lexical: Some(sparse(&[(1, 1.0), (2, 1.0)])),
            payload: payload(json!({"agent": "a", "kind": "note", "n": 1, "meta": {"src": "x"}})),
        },
        VectorPoint {
            id: id(2),
            dense: Some(unit(&[0.9, 0.1, 0.0, 0.0])),
            lexical: Some(sparse(&[(2, 1.0), (3, 1.0)])),
            payload: payload(json!({"agent": "a", "kind": "fact", "n": 5, "meta": {"src": "y"}})),
        },
        VectorPoint {
            id: id(3),
            dense: Some(unit(&[0.0, 1.0, 0.0, 0.0])),
            lexical: Some(sparse(&[(3, 1.0)])),
            payload: payload(json!({"agent": "b", "kind": "note", "n": 10, "meta": {"src": "x"}})),
        },
        VectorPoint {
            id: id(4),
            dense: Some(unit(&[0.0, 0.0, 1.0, 0.0])),
            lexical: Some(sparse(&[(4, 1.0)])),
            payload: payload(json!({"agent": "b", "kind": "fact", "n": 20, "meta": {"src": "z"}})),
        },
    ]
}

fn spec() -> CollectionSpec {
    CollectionSpec {
        dense_dim: Some(4),
        ..CollectionSpec::default()
    }
}

fn dense(v: &[f32], limit: usize) -> SearchRequest {
    SearchRequest::new(QueryVector::Dense(unit(v)), limit)
}

async fn suite(store: Arc<dyn VectorStore>, c: &str) {
    store.drop_collection(c).await.unwrap();
    assert!(!store.has_collection(c).await.unwrap());
    store.ensure_collection(c, &spec()).await.unwrap();
    store.ensure_collection(c, &spec()).await.unwrap(); // idempotent
    assert!(store.has_collection(c).await.unwrap());
    let wrong = CollectionSpec {
        dense_dim: Some(8),
        ..spec()
    };
    let err = store
        .ensure_collection(c, &wrong)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("dimension"), "{err}");

    // Batch upsert; visible at once (real-time updates).
    store.upsert(c, corpus()).await.unwrap();
    assert_eq!(store.count(c, None).await.unwrap(), 4);

    // Dense nearest neighbours, best first, cosine scores.
    let hits = store
        .search(c, &dense(&[1.0, 0.05, 0.0, 0.0], 3))
        .await
        .unwrap();
    let ids: Vec<_> = hits.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![id(1), id(2), id(3)]);
    assert!(hits[0].score > hits[1].score && hits[1].score > hits[2].score);
    assert!(
        (hits[0].score - 0.99875).abs() < 1e-3,
        "cosine {}",
        hits[0].score
    );
    assert_eq!(hits[0].payload["kind"], "note");

    // Lexical (sparse, IDF-weighted): term 2 is in points 1 and 2; term 3 is rarer-weighted.
    let lex = SearchRequest::new(QueryVector::Lexical(sparse(&[(2, 1.0)])), 10);
    let ids: Vec<_> = store
        .search(c, &lex)
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id(1)) && ids.contains(&id(2)));
    let empty = SearchRequest::new(QueryVector::Lexical(SparseVec::default()), 10);
    assert!(store.search(c, &empty).await.unwrap().is_empty());

    // Filters: equality, any, range, nested keys, must_not.
    let with = |f: MetaFilter| SearchRequest {
        filter: Some(f),
        ..dense(&[1.0, 0.0, 0.0, 0.0], 10)
    };
    let got = |hits: Vec<Hit>| {
        let mut v: Vec<u128> = hits.iter().map(|h| h.id.as_u128()).collect();
        v.sort();
        v
    };
    assert_eq!(
        got(store
            .search(c, &with(MetaFilter::eq("agent", "b")))
            .await
            .unwrap()),
        vec![3, 4]
    );
    assert_eq!(
        got(store
            .search(
                c,
                &with(MetaFilter::eq("agent", "a").and_eq("kind", "fact"))
            )
            .await
            .unwrap()),
        vec![2]
    );
    assert_eq!(
        got(store
            .search(
                c,
                &with(MetaFilter::default().and("kind", FieldMatch::Any(vec![json!("fact")])))
            )
            .await
            .unwrap()),
        vec![2, 4]
    );
    assert_eq!(
        got(store
            .search(
                c,
                &with(MetaFilter::default().and(
                    "n",
                    FieldMatch::Range {
                        gte: Some(5.0),
                        lt: Some(20.0)
                    }
                ))
            )
            .await
            .unwrap()),
        vec![2, 3]
    );
    assert_eq!(
        got(store
            .search(c, &with(MetaFilter::eq("meta.src", "x")))
            .await
            .unwrap()),
        vec![1, 3]
    );
    let not_a = MetaFilter {
        must: vec![],
        must_not: vec![("agent".into(), FieldMatch::Eq(json!("a")))],
    };
    assert_eq!(
        got(store.search(c, &with(not_a.clone())).await.unwrap()),
        vec![3, 4]
    );
    assert_eq!(store.count(c, Some(&not_a)).await.unwrap(), 2);
    // The in-memory evaluator agrees with the store on every point.
    for p in corpus() {
        assert_eq!(not_a.matches(&p.payload), p.payload["agent"] != "a");
    }

    // Get, scroll.
    let got_pts = store.get(c, &[id(4), id(99), id(1)]).await.unwrap();
    let mut gids: Vec<u128> = got_pts.iter().map(|p| p.id.as_u128()).collect();
    gids.sort();
    assert_eq!(gids, vec![1, 4], "missing ids are left out");
    assert_eq!(store.scroll(c, None, 100).await.unwrap().len(), 4);
    assert_eq!(
        store
            .scroll(c, Some(&MetaFilter::eq("kind", "note")), 100)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.scroll(c, None, 3).await.unwrap().len(), 3);

    // Upsert replaces; delete by id and by filter; all visible immediately.
    store
        .upsert(
            c,
            vec![VectorPoint {
                id: id(1),
                dense: Some(unit(&[0.0, 0.0, 0.0, 1.0])),
                lexical: None,
                payload: payload(json!({"agent": "a", "kind": "moved", "n": 1})),
            }],
        )
        .await
        .unwrap();
    let top = store
        .search(c, &dense(&[0.0, 0.0, 0.0, 1.0], 1))
        .await
        .unwrap();
    assert_eq!(
        (top[0].id, top[0].payload["kind"].clone()),
        (id(1), json!("moved"))
    );
    store.delete(c, &[id(1), id(42)]).await.unwrap();
    assert_eq!(store.count(c, None).await.unwrap(), 3);
    store
        .delete_where(c, &MetaFilter::eq("agent", "b"))
        .await
        .unwrap();
    assert_eq!(
        got(store
            .scroll(c, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|p| Hit {
                id: p.id,
                score: 0.0,
                payload: p.payload
            })
            .collect()),
        vec![2]
    );

    store.optimize(c).await.unwrap();
    assert_eq!(store.info(c).await.unwrap().points, 1);
    store.drop_collection(c).await.unwrap();
    assert!(!store.has_collection(c).await.unwrap());
}

/// Writers and readers at once: every search sees a consistent set and, once a writer's
/// upsert returned, finds its point.
async fn concurrent(store: Arc<dyn VectorStore>, c: &str) {
    store.drop_collection(c).await.unwrap();
    store.ensure_collection(c, &spec()).await.unwrap();
    store.upsert(c, corpus()).await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..2u128 {
        let s = store.clone();
        let c = c.to_string();
        tasks.push(tokio::spawn(async move {
            for i in 0..100u128 {
                let pid = id(1000 + w * 1000 + i);
                let v = unit(&[1.0, (i as f32) / 100.0, w as f32, 0.5]);
                s.upsert(
                    &c,
                    vec![VectorPoint {
                        id: pid,
                        dense: Some(v.clone()),
                        lexical: None,
                        payload: payload(json!({"w": w as i64})),
                    }],
                )
                .await
                .unwrap();
                let hit = s.get(&c, &[pid]).await.unwrap();
                assert_eq!(hit.len(), 1, "own write visible");
            }
        }));
    }
    for _ in 0..2 {
        let s = store.clone();
        let c = c.to_string();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                let hits = s
                    .search(&c, &dense(&[1.0, 0.5, 0.5, 0.5], 5))
                    .await
                    .unwrap();
                assert!(!hits.is_empty() && hits.len() <= 5);
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.count(c, None).await.unwrap(), 4 + 200);
    store.drop_collection(c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_backend_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn VectorStore> = Arc::new(EdgeStore::open(dir.path()).unwrap());
    assert_eq!(store.backend(), "qdrant-edge");
    suite(store.clone(), "suite").await;
    concurrent(store, "concurrent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EdgeStore::open(dir.path()).unwrap();
        store.ensure_collection("keep", &spec()).await.unwrap();
        store.upsert("keep", corpus()).await.unwrap();
    } // dropped: flushed
    let store = EdgeStore::open(dir.path()).unwrap();
    assert!(store.has_collection("keep").await.unwrap());
    store.ensure_collection("keep", &spec()).await.unwrap();
    assert_eq!(store.count("keep", None).await.unwrap(), 4);
    let hits = store
        .search("keep", &dense(&[0.0, 1.0, 0.0, 0.0], 1))
        .await
        .unwrap();
    assert_eq!(hits[0].id, id(3));
    assert_eq!(hits[0].payload["meta"]["src"], "x");
    assert!(dir.path().join("keep/edge_config.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_quantized_collections_search_with_rescoring() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(dir.path()).unwrap();
    for q in [Quantization::Scalar, Quantization::Binary] {
        let name = format!("q{q:?}").to_lowercase();
        store
            .ensure_collection(
                &name,
                &CollectionSpec {
                    quantization: q,
                    ..spec()
                },
            )
            .await
            .unwrap();
        store.upsert(&name, corpus()).await.unwrap();
        store.optimize(&name).await.unwrap();
        let hits = store
            .search(&name, &dense(&[1.0, 0.05, 0.0, 0.0], 2))
            .await
            .unwrap();
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![id(1), id(2)],
            "{q:?}"
        );
    }
}

#[tokio::test]
async fn bad_collection_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(dir.path()).unwrap();
    for bad in ["", "../x", "a/b", "with space"] {
        assert!(
            store.ensure_collection(bad, &spec()).await.is_err(),
            "{bad:?}"
        );
    }
    let err = store.count("absent", None).await.unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_backend_behaviour() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!(
            "SKIPPED remote_backend_behaviour: set QDRANT_URL to a Qdrant server (e.g. http://127.0.0.1:6334) to run the remote suite"
        );
        return;
    };
    let store: Arc<dyn VectorStore> = Arc::new(
        RemoteStore::connect(&url, std::env::var("QDRANT_API_KEY").ok().as_deref()).unwrap(),
    );
    assert_eq!(store.backend(), "qdrant-server");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    suite(store.clone(), &format!("symbi_suite_{suffix}")).await;
    concurrent(store, &format!("symbi_conc_{suffix}")).await;
}
