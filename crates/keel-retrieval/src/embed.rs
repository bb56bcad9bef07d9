//! How a collection turns text into vectors: any embeddings model keel serves (the embedded
//! MiniLM or a configured provider), behind one small trait the pipeline implements.

use futures::future::BoxFuture;
use std::sync::Arc;

pub trait Embedder: Send + Sync {
    /// The keel model name (`[models.<name>]`), recorded with the collection's vectors.
    fn model(&self) -> &str;

    /// One vector per text, in order. The collection L2-normalises them.
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, String>>;
}

/// Finds the embedder for a model name (`None`: no such embeddings model).
pub type EmbedderSource = Arc<dyn Fn(&str) -> Option<Arc<dyn Embedder>> + Send + Sync>;

/// Texts per embedding call during ingestion.
pub const BATCH: usize = 64;

pub fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Embeds `texts` in batches of [`BATCH`], two batches in flight, normalised; checks that
/// every vector has the same dimension (and `dim`, when known).
pub async fn embed_all(
    embedder: &dyn Embedder,
    texts: Vec<String>,
    dim: Option<usize>,
    pending: &std::sync::atomic::AtomicUsize,
) -> Result<Vec<Vec<f32>>, String> {
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    let batches: Vec<Vec<String>> = texts.chunks(BATCH).map(<[String]>::to_vec).collect();
    let mut results = futures::stream::iter(batches.into_iter().map(|b| {
        let n = b.len();
        async move {
            let out = embedder.embed(b).await;
            pending.fetch_sub(n, Ordering::Relaxed);
            match out {
                Ok(v) if v.len() == n => Ok(v),
                Ok(v) => Err(format!(
                    "the embeddings model returned {} vectors for {n} texts",
                    v.len()
                )),
                Err(e) => Err(e),
            }
        }
    }))
    .buffered(2);
    let mut all = Vec::with_capacity(texts.len());
    while let Some(batch) = results.next().await {
        all.extend(batch?.into_iter().map(normalise));
    }
    let expected = dim.or_else(|| all.first().map(Vec::len));
    if let Some(d) = expected
        && let Some(v) = all.iter().find(|v| v.len() != d)
    {
        return Err(format!(
            "the embeddings model returned a {}-dimensional vector; the collection holds {d}-dimensional ones",
            v.len()
        ));
    }
    Ok(all)
}
