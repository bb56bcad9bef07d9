//! Retrieval quality on HaluEval QA development rows (0–4999 only; the held-out rows are never
//! read): corpus = the rows' `knowledge` passages, query = `question`, the relevant item = the
//! question's own passage (rows sharing an identical passage count as one item). Reports
//! recall@1/5/10 and MRR@10 for BM25, dense (MiniLM), hybrid RRF and hybrid weighted.
//!
//! `cargo bench -p keel-retrieval --bench quality` (env: `KEEL_BENCH_ROWS`, default 5000;
//! `KEEL_CACHE_DIR` for the models and data). Ingestion goes through `Collection::upsert`,
//! searches through `Collection::search_with`, as the server does.

use futures::future::BoxFuture;
use keel_retrieval::chunk::{LazyTokenizer, TokenCounter};
use keel_retrieval::collection::{Collection, DocInput, Settings};
use keel_retrieval::embed::{Embedder, EmbedderSource, normalise};
use keel_retrieval::extract::Format;
use keel_retrieval::fusion::Fusion;
use keel_retrieval::{Mode, SearchQuery};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

struct Local(keel_local::embed::Embedder);

impl Embedder for Local {
    fn model(&self) -> &str {
        "all-minilm-l6-v2"
    }
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, String>> {
        Box::pin(async move {
            self.0
                .embed(texts)
                .await
                .map(|o| o.vectors)
                .map_err(|e| e.to_string())
        })
    }
}

#[derive(Default)]
struct Score {
    r1: f64,
    r5: f64,
    r10: f64,
    mrr: f64,
    n: usize,
    micros: Vec<u128>,
}

impl Score {
    fn add(&mut self, rank: Option<usize>, micros: u128) {
        self.n += 1;
        self.micros.push(micros);
        if let Some(r) = rank {
            self.r1 += f64::from(u8::from(r < 1));
            self.r5 += f64::from(u8::from(r < 5));
            self.r10 += f64::from(u8::from(r < 10));
            self.mrr += 1.0 / (r as f64 + 1.0);
        }
    }
    fn row(&mut self, name: &str) -> String {
        let n = self.n as f64;
        self.micros.sort_unstable();
        let p = |q: f64| self.micros[((self.micros.len() - 1) as f64 * q) as usize];
        format!(
            "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {} |",
            self.r1 / n,
            self.r5 / n,
            self.r10 / n,
            self.mrr / n,
            p(0.5),
            p(0.99)
        )
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::var("KEEL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let cache = keel_config_cache();
    let lines = keel_local::fetch::halueval_dev_rows(&cache, rows)?;
    let mut passages: Vec<String> = Vec::new();
    let mut questions: Vec<(String, usize)> = Vec::new();
    let mut by_text: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let knowledge = v["knowledge"].as_str().unwrap_or_default().to_owned();
        let question = v["question"].as_str().unwrap_or_default().to_owned();
        let item = *by_text.entry(knowledge.clone()).or_insert_with(|| {
            passages.push(knowledge);
            passages.len() - 1
        });
        questions.push((question, item));
    }
    eprintln!(
        "{} questions over {} distinct passages",
        questions.len(),
        passages.len()
    );
    let emb_dir = keel_local::fetch::ensure_embeddings(&cache)?;
    let local = keel_local::embed::Embedder::load(&emb_dir, Default::default())?;
    let embedder: Arc<dyn Embedder> = Arc::new(Local(local));
    let source: EmbedderSource = {
        let e = embedder.clone();
        Arc::new(move |_: &str| Some(e.clone()))
    };
    let dir = tempfile::tempdir()?;
    let counter = TokenCounter::File(Arc::new(LazyTokenizer::new(emb_dir.join("tokenizer.json"))));
    let settings = Settings {
        embedding_model: "all-minilm-l6-v2".into(),
        chunking: Default::default(),
        max_age_seconds: None,
    };
    let c = Collection::open("halueval", dir.path(), Some(settings), counter)?;
    let t0 = Instant::now();
    let docs: Vec<DocInput> = passages
        .iter()
        .enumerate()
        .map(|(i, p)| DocInput {
            id: i.to_string(),
            title: None,
            source: "inline".into(),
            format: Format::Text,
            text: p.clone(),
            metadata: Default::default(),
        })
        .collect();
    for group in docs.chunks(256) {
        c.upsert(group.to_vec(), &source).await?;
    }
    let ingest = t0.elapsed();
    let stats = c.stats();
    eprintln!(
        "ingested {} documents, {} chunks in {:.1}s ({:.1} chunks/s)",
        stats.documents,
        stats.chunks,
        ingest.as_secs_f64(),
        stats.chunks as f64 / ingest.as_secs_f64()
    );
    // Query vectors, embedded once and shared by the dense and hybrid runs.
    let t1 = Instant::now();
    let mut qvecs = Vec::with_capacity(questions.len());
    for group in questions.chunks(64) {
        let texts = group.iter().map(|(q, _)| q.clone()).collect();
        qvecs.extend(embedder.embed(texts).await?.into_iter().map(normalise));
    }
    eprintln!(
        "embedded {} queries in {:.1}s",
        qvecs.len(),
        t1.elapsed().as_secs_f64()
    );
    let configs: [(&str, Mode, Fusion); 4] = [
        ("bm25", Mode::Bm25, Fusion::Rrf),
        ("dense", Mode::Dense, Fusion::Rrf),
        ("hybrid rrf", Mode::Hybrid, Fusion::Rrf),
        ("hybrid weighted (α=0.5)", Mode::Hybrid, Fusion::Weighted),
    ];
    println!("| mode | recall@1 | recall@5 | recall@10 | MRR@10 | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|---|---|");
    for (name, mode, fusion) in configs {
        let mut score = Score::default();
        for ((q, item), v) in questions.iter().zip(&qvecs) {
            let mut sq = SearchQuery::new(q.clone(), 20, mode);
            sq.fusion = fusion;
            let t = Instant::now();
            let hits = c.search_with(&sq, None, Some(v))?;
            let micros = t.elapsed().as_micros();
            // Rank of the relevant passage among distinct documents.
            let mut seen = Vec::new();
            for h in &hits {
                if !seen.contains(&h.document_id) {
                    seen.push(h.document_id.clone());
                }
            }
            let rank = seen.iter().take(10).position(|d| *d == item.to_string());
            score.add(rank, micros);
        }
        println!("{}", score.row(name));
    }
    Ok(())
}

fn keel_config_cache() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("KEEL_CACHE_DIR") {
        return d.into();
    }
    std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_default()
        .join(".cache/keel")
}
