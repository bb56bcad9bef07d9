//! Upstream faults (scenarios S07–S13): a slow first token, a stream cut, stalled, malformed
//! or left without `[DONE]`, a context-length error and a content-filter refusal. Each fault is answered with a
//! failover (before the first chunk), an error item (after it), or the upstream's own error,
//! never with silence or a false success; every case leaves its request record.

use crate::support::{Harness, chat, models, outcomes};
use futures::StreamExt;
use keel_testkit::Behavior;
use keel_types::ApiError;
use keel_types::openai::ChatCompletionChunk;
use std::time::{Duration, Instant};

fn finish_reasons(items: &[Result<ChatCompletionChunk, ApiError>]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.finish_reason))
        .map(|r| r.as_str())
        .collect()
}

#[tokio::test]
async fn s07_a_slow_first_token_falls_over_after_the_routes_ttft_timeout() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::SlowStream {
        per_chunk: Duration::from_secs(1),
    });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("ttft", true))
        .await
        .unwrap();
    assert_eq!(s.model, "b");
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok), "b answers in full");
    assert_eq!(finish_reasons(&items), ["stop"]);
    assert_eq!(
        h.primary.request_count(),
        1,
        "a timeout is not retried on the same model"
    );
    assert_eq!(h.secondary.request_count(), 1);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["timeout", "ok"]);
    assert_eq!(models(&rec), ["a", "b"]);
    assert_eq!(rec.error_class, None);
}

/// `streams::a_committed_stream_that_breaks_ends_with_an_error_not_silence` already covers
/// the error item, the absence of failover and the record's class for this fault; this adds
/// that the client saw the first chunk and never a `stop`.
#[tokio::test]
async fn s08_a_stream_cut_mid_answer_is_never_reported_as_complete() {
    let mut h = Harness::start().await;
    h.primary
        .push(Behavior::TruncatedStream { after_chunks: 2 });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert!(
        items.first().unwrap().is_ok(),
        "the first chunk was delivered"
    );
    assert!(items.last().unwrap().is_err());
    assert!(finish_reasons(&items).is_empty(), "no stop: {items:?}");
    let rec = h.record(&ctx.request_id).await;
    assert!(rec.error_class.is_some());
    assert_eq!(
        outcomes(&rec),
        ["ok"],
        "the attempt itself had started fine"
    );
}

/// The SSE idle timeout is the provider's `timeout` (300 ms for the `quick` route's model).
#[tokio::test]
async fn s09_a_stream_stalled_after_its_first_chunk_ends_with_an_error() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::StalledStream { after_chunks: 2 });
    let ctx = h.ctx(Duration::from_secs(30));
    let started = Instant::now();
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("quick", true))
        .await
        .unwrap();
    assert_eq!(s.model, "a-quick");
    let items: Vec<_> = s.stream.collect().await;
    let elapsed = started.elapsed();
    assert!(items.first().unwrap().is_ok());
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert!(
        elapsed < Duration::from_secs(3),
        "bounded by the idle timeout, not the request deadline: {elapsed:?}"
    );
    assert_eq!(h.secondary.request_count(), 0, "committed: no failover");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.error_class.as_deref(), Some("timeout"));
}

#[tokio::test]
async fn s10_a_malformed_chunk_after_the_first_ends_the_stream_with_an_error() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::MalformedStream);
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    assert_eq!(s.model, "a");
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.first().unwrap().is_ok());
    assert!(items.last().unwrap().is_err(), "not silence: {items:?}");
    assert!(finish_reasons(&items).is_empty());
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert!(rec.error_class.is_some());
}

#[tokio::test]
async fn s10b_a_malformed_first_chunk_falls_over() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::Status {
        code: 200,
        body: Some("data: {\"id\": \"broken\", this is not json\n\n".into()),
        retry_after: None,
    });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    assert_eq!(s.model, "b");
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok));
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 1);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "b"]);
    assert_eq!(outcomes(&rec).last(), Some(&"ok"));
    assert_ne!(outcomes(&rec)[0], "ok");
}

/// Every frame but `data: [DONE]`: the answer, its `stop` and its usage all arrived, yet the
/// end without the terminator is an error (the body may have been cut anywhere), and the
/// record keeps the tokens it saw.
#[tokio::test]
async fn s11_a_stream_without_done_ends_with_an_error_and_keeps_its_usage() {
    let mut h = Harness::start().await;
    // role, 3 content pieces ("echo: hello upstream"), finish, usage; then [DONE], left out.
    h.primary
        .push(Behavior::TruncatedStream { after_chunks: 6 });
    let ctx = h.ctx(Duration::from_secs(10));
    let started = Instant::now();
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert!(started.elapsed() < Duration::from_secs(2), "ends promptly");
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert!(err.message.contains("[DONE]"), "{}", err.message);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.error_class.as_deref(), Some("stream"));
    assert!(rec.input_tokens.unwrap() > 0);
    assert!(rec.output_tokens.unwrap() > 0);
}

#[tokio::test]
async fn s13_a_content_filter_400_is_neither_retried_nor_fallen_over() {
    let mut h = Harness::start().await;
    let reason = "The response was filtered due to the prompt triggering content management policy";
    h.primary.push(Behavior::Status {
        code: 400,
        body: Some(
            serde_json::json!({"error": {
                "message": reason,
                "type": "invalid_request_error",
                "param": "prompt",
                "code": "content_filter",
            }})
            .to_string(),
        ),
        retry_after: None,
    });
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap_err();
    assert_eq!(err.code.http_status(), 400);
    assert!(err.message.contains(reason), "{}", err.message);
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_400"]);
    assert_eq!(rec.attempts[0].http_status, Some(400));
    assert_eq!(rec.status, 400);
}

fn context_length_error() -> Behavior {
    Behavior::Status {
        code: 400,
        body: Some(
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#
                .into(),
        ),
        retry_after: None,
    }
}

#[tokio::test]
async fn s12_a_context_length_error_moves_to_a_larger_context_model() {
    let mut h = Harness::start().await;
    h.primary.push(context_length_error());
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ctx, chat("long", false)).await.unwrap();
    assert_eq!(resp.model, "b-long");
    assert_eq!(
        h.primary.request_count(),
        1,
        "not retried on the same model"
    );
    assert_eq!(h.secondary.request_count(), 1);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["context_length", "ok"]);
    assert_eq!(models(&rec), ["a", "b-long"]);
}

#[tokio::test]
async fn s12b_without_a_larger_context_model_the_client_gets_the_400() {
    let mut h = Harness::start().await;
    h.primary.push(context_length_error());
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("narrow", false))
        .await
        .unwrap_err();
    assert_eq!(err.code, keel_types::ErrorCode::ContextLengthExceeded);
    assert_eq!(err.code.http_status(), 400);
    assert_eq!(err.param.as_deref(), Some("messages"));
    assert!(
        err.message.contains("maximum context length is 8192"),
        "{}",
        err.message
    );
    // `a-quick` (same context window) is skipped: the primary saw one request only.
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["context_length"]);
    assert_eq!(rec.status, 400);
}
