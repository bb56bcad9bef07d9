//! Embedding throughput of the embedded MiniLM on the texts of a file (one JSON string per
//! line, `KEEL_EMBED_TEXTS`), in batches of 32 and one at a time; `bench/embeddings.sh` runs
//! it beside sentence-transformers on the same texts. Prints one JSON line per setting.

use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("KEEL_EMBED_TEXTS")?;
    let texts: Vec<String> = std::fs::read_to_string(&path)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let cache = keel_local::fetch::default_cache_dir()?;
    let dir = keel_local::fetch::ensure_embeddings(&cache)?;
    let embedder = keel_local::embed::Embedder::load(&dir, Default::default())?;
    // Warm-up.
    embedder
        .embed(texts.iter().take(32).cloned().collect())
        .await?;
    for batch in [32usize, 1] {
        let n = if batch == 1 {
            texts.len().min(200)
        } else {
            texts.len()
        };
        let t = Instant::now();
        let mut tokens = 0u64;
        for group in texts[..n].chunks(batch) {
            let out = embedder.embed(group.to_vec()).await?;
            tokens += out.token_counts.iter().map(|&c| u64::from(c)).sum::<u64>();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({"impl": "keel (candle)", "batch": batch, "passages": n,
                "seconds": secs, "passages_per_s": n as f64 / secs, "tokens": tokens})
        );
    }
    Ok(())
}
