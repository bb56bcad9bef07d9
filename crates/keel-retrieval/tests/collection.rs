//! A collection end to end in process, with a deterministic bag-of-words embedder (so tests
//! need no model): reconciliation after a lost vector snapshot or a keyword index that missed
//! writes, max age, MMR, selective filters in dense search, and a model change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures::future::BoxFuture;
use keel_retrieval::collection::{Collection, DocInput, Settings};
use keel_retrieval::embed::{Embedder, EmbedderSource};
use keel_retrieval::extract::Format;
use keel_retrieval::filter::Filter;
use keel_retrieval::store::Store;
use keel_retrieval::{Mode, SearchQuery};
use serde_json::json;
use std::sync::Arc;

/// Each word adds 1 to dimension hash(word) % 64.
struct Words(&'static str);
impl Embedder for Words {
    fn model(&self) -> &str {
        self.0
    }
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, String>> {
        let salt = self.0.len() as u64;
        Box::pin(async move {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0.0f32; 64];
                    for w in t.split_whitespace() {
                        let w = w
                            .trim_matches(|c: char| !c.is_alphanumeric())
                            .to_lowercase();
                        let h = w.bytes().fold(1469598103934665603u64 ^ salt, |h, b| {
                            (h ^ u64::from(b)).wrapping_mul(1099511628211)
                        });
                        v[(h % 64) as usize] += 1.0;
                    }
                    v
                })
                .collect())
        })
    }
}

fn source() -> EmbedderSource {
    let a: Arc<dyn Embedder> = Arc::new(Words("words"));
    let b: Arc<dyn Embedder> = Arc::new(Words("other-words"));
    Arc::new(move |name: &str| match name {
        "words" => Some(a.clone()),
        "other-words" => Some(b.clone()),
        _ => None,
    })
}

fn settings(max_age: Option<u64>) -> Settings {
    Settings {
        embedding_model: "words".into(),
        chunking: Default::default(),
        max_age_seconds: max_age,
    }
}

fn doc(id: &str, text: &str, meta: serde_json::Value) -> DocInput {
    DocInput {
        id: id.into(),
        title: None,
        source: "inline".into(),
        format: Format::Text,
        text: text.into(),
        metadata: meta.as_object().cloned().unwrap_or_default(),
    }
}

fn open(dir: &std::path::Path, s: Option<Settings>) -> Collection {
    Collection::open("c", dir, s, keel_retrieval::chunk::TokenCounter::Estimate).unwrap()
}

async fn ids(c: &Collection, q: &str, mode: Mode) -> Vec<String> {
    let hits = c
        .search(&SearchQuery::new(q, 5, mode), &source())
        .await
        .unwrap();
    hits.into_iter().map(|h| h.document_id).collect()
}

#[tokio::test]
async fn a_lost_vector_snapshot_and_a_stale_keyword_index_are_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = open(dir.path(), Some(settings(None)));
        c.upsert(
            vec![
                doc("a", "red apples grow on trees", json!({})),
                doc("b", "blue whales swim in oceans", json!({})),
            ],
            &source(),
        )
        .await
        .unwrap();
    }
    // Lose every vector snapshot, and make the keyword index look behind the store.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("hnsw-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    let store = Store::open(&dir.path().join("collection.db")).unwrap();
    let g = store.generation().unwrap();
    store.set_meta("generation", &(g + 5).to_string()).unwrap();
    drop(store);

    let c = open(dir.path(), None);
    assert_eq!(c.stats().chunks, 2);
    assert_eq!(ids(&c, "whales in the ocean", Mode::Dense).await[0], "b");
    assert_eq!(ids(&c, "apples", Mode::Bm25).await, ["a"]);
}

#[tokio::test]
async fn documents_older_than_the_max_age_drop_out_of_results() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), Some(settings(Some(1))));
    c.upsert(
        vec![doc("old", "tide tables for the harbour", json!({}))],
        &source(),
    )
    .await
    .unwrap();
    assert_eq!(ids(&c, "tide tables", Mode::Hybrid).await, ["old"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(ids(&c, "tide tables", Mode::Hybrid).await.is_empty());
    // Ingested again, even unchanged, it is current again (a nightly re-crawl keeps it).
    let out = c
        .upsert(
            vec![doc("old", "tide tables for the harbour", json!({}))],
            &source(),
        )
        .await
        .unwrap();
    assert_eq!(out[0].embedded, 0);
    assert_eq!(ids(&c, "tide tables", Mode::Bm25).await, ["old"]);
}

#[tokio::test]
async fn mmr_trades_a_near_duplicate_for_a_different_passage() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), Some(settings(None)));
    c.upsert(
        vec![
            doc("d1", "engine oil change every season engine oil", json!({})),
            doc(
                "d2",
                "engine oil change every season engine oil filter",
                json!({}),
            ),
            doc("d3", "oil lamps light the cabin", json!({})),
        ],
        &source(),
    )
    .await
    .unwrap();
    let mut q = SearchQuery::new("engine oil change", 2, Mode::Dense);
    let plain: Vec<String> = c
        .search(&q, &source())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.document_id)
        .collect();
    assert!(
        plain.contains(&"d1".to_owned()) && plain.contains(&"d2".to_owned()),
        "{plain:?}"
    );
    q.mmr = Some(0.3);
    let diverse: Vec<String> = c
        .search(&q, &source())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.document_id)
        .collect();
    assert!(diverse.contains(&"d3".to_owned()), "{diverse:?}");
}

#[tokio::test]
async fn a_selective_filter_still_returns_k_matching_chunks_in_dense_search() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), Some(settings(None)));
    let docs = (0..400)
        .map(|i| {
            doc(
                &format!("d{i}"),
                &format!("note number {i} about ropes and knots {}", i % 7),
                json!({"shard": i % 50}),
            )
        })
        .collect();
    c.upsert(docs, &source()).await.unwrap();
    let f = Filter::parse(&json!({"shard": 7}), "filters").unwrap();
    let q = SearchQuery::new("ropes and knots", 8, Mode::Dense);
    let v = vec_of(&c, "ropes and knots").await;
    let hits = c.search_with(&q, Some(f), Some(&v)).unwrap();
    assert_eq!(hits.len(), 8, "400 / 50 = 8 chunks match");
    assert!(hits.iter().all(|h| h.metadata["shard"] == 7));
}

async fn vec_of(_c: &Collection, text: &str) -> Vec<f32> {
    let e = source()("words").unwrap();
    keel_retrieval::embed::normalise(e.embed(vec![text.into()]).await.unwrap().remove(0))
}

#[tokio::test]
async fn a_model_change_reembeds_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = open(dir.path(), Some(settings(None)));
        c.upsert(
            vec![
                doc("a", "compass and chart", json!({})),
                doc("b", "bread and butter", json!({})),
            ],
            &source(),
        )
        .await
        .unwrap();
        assert_eq!(c.change_model("other-words", &source()).await.unwrap(), 2);
        assert_eq!(c.settings().embedding_model, "other-words");
        assert_eq!(ids(&c, "compass chart", Mode::Dense).await[0], "a");
        assert!(c.change_model("missing", &source()).await.is_err());
    }
    let c = open(dir.path(), None);
    assert_eq!(c.settings().embedding_model, "other-words");
    assert_eq!(ids(&c, "bread butter", Mode::Dense).await[0], "b");
}
