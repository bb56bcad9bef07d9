//! Streaming: failover only before the first chunk, errors after it, usage handling, and the
//! record written when a client walks away.

use crate::support::{Harness, chat};
use futures::StreamExt;
use keel_testkit::Behavior;
use keel_types::openai::StreamOptions;
use std::time::Duration;

#[tokio::test]
async fn a_stream_fails_over_before_its_first_chunk() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::Reset);
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    assert_eq!(s.model, "b");
    let chunks: Vec<_> = s.stream.collect().await;
    let text: String = chunks
        .iter()
        .map(|c| c.as_ref().unwrap())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
        .collect();
    assert!(text.contains("hello upstream"), "{text}");
    assert!(
        chunks.iter().all(|c| c.as_ref().unwrap().usage.is_none()),
        "usage not asked for"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.attempts.len(), 2);
    assert!(
        rec.output_tokens.unwrap() > 0,
        "usage is recorded even when not sent"
    );
    assert!(rec.ttft_ms.is_some());
}

#[tokio::test]
async fn a_committed_stream_that_breaks_ends_with_an_error_not_silence() {
    let mut h = Harness::start().await;
    h.primary
        .push(Behavior::TruncatedStream { after_chunks: 2 });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    assert_eq!(s.model, "a");
    let items: Vec<_> = s.stream.collect().await;
    assert!(
        items.last().unwrap().is_err(),
        "the truncation must surface"
    );
    assert_eq!(
        h.secondary.request_count(),
        0,
        "no failover after the first chunk"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.error_class.as_deref(), Some("stream"));
}

#[tokio::test]
async fn include_usage_sends_the_usage_chunk_last() {
    let h = Harness::start().await;
    let mut req = chat("a", true);
    req.stream_options = Some(StreamOptions {
        include_usage: Some(true),
    });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h.pipeline.chat_stream(&ctx, req).await.unwrap();
    let chunks: Vec<_> = s.stream.map(|c| c.unwrap()).collect().await;
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    assert!(last.usage.unwrap().completion_tokens > 0);
    assert!(chunks.iter().all(|c| c.model == "a"));
}

#[tokio::test]
async fn a_client_that_walks_away_is_recorded() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::SlowStream {
        per_chunk: Duration::from_millis(50),
    });
    let ctx = h.ctx(Duration::from_secs(10));
    let mut s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    let _first = s.stream.next().await.unwrap().unwrap();
    drop(s);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.error_class.as_deref(), Some("client_closed"));
    assert!(rec.stream);
}
