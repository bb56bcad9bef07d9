//! Index performance at 100,000 chunks: ingest throughput (store + BM25 + HNSW, embedding
//! excluded), hybrid / BM25 / dense query latency without the query embedding, with a real
//! MiniLM query embedding added, filtered queries, HNSW recall@10 against exact search, and
//! memory per 100k chunks.
//!
//! The corpus is synthetic so that 100k chunks build in minutes on 2 cores: each chunk is
//! ~60 words drawn from a Zipf-like vocabulary plus words of one of 200 topics, and its vector
//! is its topic's centre plus noise (384-d, normalised), from a fake embedder. Queries are
//! topic words with the matching topic vector. The real MiniLM embeds the query text only to
//! add its real cost.
//!
//! `cargo bench -p keel-retrieval --bench search` (env `KEEL_BENCH_CHUNKS`, default 100000).

use futures::future::BoxFuture;
use keel_retrieval::collection::{Collection, DocInput, Settings};
use keel_retrieval::embed::{Embedder, EmbedderSource, normalise};
use keel_retrieval::extract::Format;
use keel_retrieval::filter::Filter;
use keel_retrieval::{Mode, SearchQuery};
use std::sync::Arc;
use std::time::Instant;

const DIM: usize = 384;
const TOPICS: usize = 200;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn gauss(&mut self) -> f32 {
        (0..4).map(|_| self.unit()).sum::<f32>() - 2.0
    }
}

fn centre(topic: usize) -> Vec<f32> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15 ^ (topic as u64 + 1));
    normalise((0..DIM).map(|_| r.gauss()).collect())
}

/// "t<topic> ..." text → the topic's centre plus noise seeded by the text.
struct Fake;
impl Embedder for Fake {
    fn model(&self) -> &str {
        "fake"
    }
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, String>> {
        Box::pin(async move {
            Ok(texts
                .iter()
                .map(|t| {
                    let topic: usize = t
                        .split_whitespace()
                        .next()
                        .and_then(|w| w.strip_prefix("topic"))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let seed = t.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                    });
                    let mut r = Rng(seed | 1);
                    let c = centre(topic);
                    normalise(c.iter().map(|x| x + 0.06 * r.gauss()).collect())
                })
                .collect())
        })
    }
}

fn word(r: &mut Rng) -> String {
    // Zipf-like: small ranks are common.
    let u = r.unit().max(1e-6);
    let rank = (1.0 / u.powf(0.9)) as u64 % 20_000;
    format!("w{rank}")
}

fn chunk_text(r: &mut Rng, topic: usize) -> String {
    let mut words = vec![format!("topic{topic}")];
    for i in 0..60 {
        words.push(if i % 6 == 0 {
            format!("k{topic}x{}", r.next() % 12)
        } else {
            word(r)
        });
    }
    words.join(" ")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q) as usize]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::var("KEEL_BENCH_CHUNKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let fake: Arc<dyn Embedder> = Arc::new(Fake);
    let source: EmbedderSource = Arc::new(move |_: &str| Some(fake.clone()));
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        embedding_model: "fake".into(),
        chunking: Default::default(),
        max_age_seconds: None,
    };
    let rss0 = rss_kib();
    let c = Collection::open(
        "bench",
        dir.path(),
        Some(settings),
        keel_retrieval::chunk::TokenCounter::Estimate,
    )?;
    let mut r = Rng(42);
    let t0 = Instant::now();
    let per_batch = 500;
    for b in 0..n.div_ceil(per_batch) {
        let docs: Vec<DocInput> = (0..per_batch.min(n - b * per_batch))
            .map(|i| {
                let id = b * per_batch + i;
                let topic = (r.next() as usize) % TOPICS;
                let mut metadata = serde_json::Map::new();
                metadata.insert("shard".into(), (id % 100).into());
                DocInput {
                    id: format!("d{id}"),
                    title: None,
                    source: "inline".into(),
                    format: Format::Text,
                    text: chunk_text(&mut r, topic),
                    metadata,
                }
            })
            .collect();
        c.upsert(docs, &source).await?;
    }
    let build = t0.elapsed().as_secs_f64();
    c.save_vectors()?;
    let stats = c.stats();
    let rss1 = rss_kib();
    println!(
        "ingested {} chunks in {build:.1}s: {:.0} chunks/s (store + BM25 + HNSW; embedding excluded)",
        stats.chunks,
        stats.chunks as f64 / build
    );
    println!(
        "memory: RSS +{:.0} MiB for {} chunks; vector index {:.0} MiB; on disk {:.0} MiB",
        (rss1.saturating_sub(rss0)) as f64 / 1024.0,
        stats.chunks,
        stats.vector_index_bytes as f64 / 1048576.0,
        stats.disk_bytes as f64 / 1048576.0
    );

    let queries: Vec<(String, Vec<f32>)> = (0..500)
        .map(|i| {
            let topic = i % TOPICS;
            let text = format!(
                "topic{topic} k{topic}x{} k{topic}x{} {}",
                i % 12,
                (i + 5) % 12,
                word(&mut r)
            );
            let v = centre(topic).iter().map(|x| x + 0.06 * r.gauss()).collect();
            (text, normalise(v))
        })
        .collect();
    println!("| query (top_k 10, 500 queries) | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (name, mode, filtered) in [
        ("bm25", Mode::Bm25, false),
        ("dense (HNSW)", Mode::Dense, false),
        ("hybrid (weighted fusion)", Mode::Hybrid, false),
        ("hybrid, filter shard ∈ 10 of 100", Mode::Hybrid, true),
    ] {
        let mut ms = Vec::new();
        for (text, v) in &queries {
            let q = SearchQuery::new(text.clone(), 10, mode);
            let filter = filtered.then(|| {
                Filter::parse(
                    &serde_json::json!({"shard": {"$in": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}),
                    "filters",
                )
                .unwrap_or_else(|_| Filter::equalities([]))
            });
            let t = Instant::now();
            let hits = c.search_with(&q, filter, Some(v))?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(!hits.is_empty());
        }
        println!(
            "| {name} | {:.2} | {:.2} |",
            pct(&mut ms, 0.5),
            pct(&mut ms, 0.99)
        );
    }

    // The real query embedding, end to end with the hybrid search.
    if let Ok(cache) = std::env::var("KEEL_CACHE_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/keel")))
    {
        let emb_dir = keel_local::fetch::ensure_embeddings(&cache)?;
        let minilm = keel_local::embed::Embedder::load(&emb_dir, Default::default())?;
        let mut ms = Vec::new();
        for (text, v) in queries.iter().take(200) {
            let t = Instant::now();
            let _real = minilm.embed(vec![text.clone()]).await?;
            let q = SearchQuery::new(text.clone(), 10, Mode::Hybrid);
            c.search_with(&q, None, Some(v))?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "| hybrid incl. MiniLM query embedding (200 queries) | {:.2} | {:.2} |",
            pct(&mut ms, 0.5),
            pct(&mut ms, 0.99)
        );
    }
    Ok(())
}
