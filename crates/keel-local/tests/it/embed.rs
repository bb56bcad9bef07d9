//! MiniLM embeddings: published reference values, padding invariance, batching, limits.

use keel_local::{Embedder, EmbedderOptions, LocalError};
use std::time::Instant;

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| s.to_string()).collect()
}

/// sentence-transformers' README example for all-MiniLM-L6-v2.
#[tokio::test]
async fn reproduces_sentence_transformers_similarity_matrix() {
    let e = crate::embedder();
    assert_eq!(e.dimensions(), 384);
    let out = e
        .embed(strings(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
        ]))
        .await
        .unwrap();
    let expected = [
        [1.0f32, 0.6660, 0.1046],
        [0.6660, 1.0, 0.1411],
        [0.1046, 0.1411, 1.0],
    ];
    for (i, row) in expected.iter().enumerate() {
        let norm = cos(&out.vectors[i], &out.vectors[i]).sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "vector {i} has norm {norm}");
        for (j, want) in row.iter().enumerate() {
            let got = cos(&out.vectors[i], &out.vectors[j]);
            assert!(
                (got - want).abs() < 1e-3,
                "sim[{i}][{j}] = {got:.4}, expected {want:.4}"
            );
        }
    }
    assert_eq!(out.truncated, [false, false, false]);
    // [CLS] the weather is lovely today . [SEP]
    assert_eq!(out.token_counts[0], 8);
}

#[tokio::test]
async fn batched_vectors_equal_single_vectors() {
    let e = crate::embedder();
    let texts = strings(&[
        "short",
        "",
        "A considerably longer sentence that forces every other text in the batch to be padded.",
        "Ünïcödé and emoji 🚀 text",
        "short",
    ]);
    let batched = e.embed(texts.clone()).await.unwrap();
    for (i, t) in texts.iter().enumerate() {
        let single = e.embed(vec![t.clone()]).await.unwrap();
        assert_eq!(single.token_counts[0], batched.token_counts[i]);
        let max_diff = single.vectors[0]
            .iter()
            .zip(&batched.vectors[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-5, "text {i}: max diff {max_diff}");
    }
    assert_eq!(batched.vectors[0], batched.vectors[4]);
    assert_eq!(batched.token_counts[1], 2, "empty string is [CLS][SEP]");
}

#[tokio::test]
async fn long_text_is_truncated_at_256_tokens_and_reported() {
    let e = crate::embedder();
    assert_eq!(e.max_seq_len(), 256);
    let long = "word ".repeat(400);
    let out = e.embed(vec![long, "tiny".into()]).await.unwrap();
    assert_eq!(out.token_counts, [256, 3]);
    assert_eq!(out.truncated, [true, false]);
}

#[tokio::test]
async fn empty_input_list_is_rejected() {
    let err = crate::embedder().embed(Vec::new()).await.unwrap_err();
    assert!(matches!(err, LocalError::InvalidRequest(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_are_batched() {
    // A private embedder so other tests' traffic does not blur the counters.
    let e = Embedder::load(
        &crate::models().embeddings_dir,
        EmbedderOptions {
            max_batch: 64,
            queue_capacity: 64,
            ..Default::default()
        },
    )
    .unwrap();
    let calls = 24;
    let texts: Vec<String> = (0..calls)
        .map(|i| format!("Concurrent request number {i} about the weather."))
        .collect();
    let tasks: Vec<_> = texts
        .iter()
        .cloned()
        .map(|t| {
            let e = e.clone();
            tokio::spawn(async move { e.embed(vec![t]).await })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap().unwrap());
    }
    let stats = e.stats();
    assert_eq!(stats.requests, calls as u64);
    assert!(stats.forward_passes < calls as u64, "{stats:?}");
    assert!(stats.largest_batch > 1, "{stats:?}");
    // Each caller got its own text's vector.
    for (i, r) in results.iter().enumerate() {
        let single = e.embed(vec![texts[i].clone()]).await.unwrap();
        assert!(
            cos(&r.vectors[0], &single.vectors[0]) > 0.99999,
            "call {i} got someone else's vector"
        );
    }
}

#[tokio::test]
async fn queue_full_is_immediate() {
    let e = Embedder::load(
        &crate::models().embeddings_dir,
        EmbedderOptions {
            max_batch: 1,
            queue_capacity: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let big: Vec<String> = (0..64)
        .map(|i| format!("{i} {}", "filler text ".repeat(40)))
        .collect();
    let futures: Vec<_> = (0..6).map(|_| e.embed(big.clone())).collect();
    let results = futures::future::join_all(futures).await;
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(LocalError::QueueFull { .. })))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(full >= 1 && ok >= 1, "ok={ok} full={full}");
    assert_eq!(ok + full, 6);
}

/// Throughput numbers for the report (run with `--nocapture`). Not a timed test: shared
/// machines are too noisy to assert a ratio; benchmarks compare side by side.
#[tokio::test]
async fn measure_single_vs_batched_throughput() {
    let e = crate::embedder();
    let texts: Vec<String> = (0..64)
        .map(|i| {
            format!("Passage {i}: the quick brown fox jumps over the lazy dog near the river bank.")
        })
        .collect();
    e.embed(texts[..4].to_vec()).await.unwrap(); // warm up

    let started = Instant::now();
    for t in &texts {
        e.embed(vec![t.clone()]).await.unwrap();
    }
    let single = texts.len() as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    for chunk in texts.chunks(32) {
        e.embed(chunk.to_vec()).await.unwrap();
    }
    let batched = texts.len() as f64 / started.elapsed().as_secs_f64();
    println!(
        "embedding throughput: single {single:.0} passages/s, batched(32) {batched:.0} passages/s"
    );
    assert!(single > 0.0 && batched > 0.0);
}

#[tokio::test]
async fn shutdown_stops_the_embedder() {
    let e = Embedder::load(&crate::models().embeddings_dir, EmbedderOptions::default()).unwrap();
    assert_eq!(
        e.embed(vec!["before".into()]).await.unwrap().vectors.len(),
        1
    );
    e.shutdown();
    assert!(matches!(
        e.embed(vec!["after".into()]).await,
        Err(LocalError::EngineStopped)
    ));
}
