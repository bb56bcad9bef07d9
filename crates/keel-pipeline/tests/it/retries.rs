//! Retries on the same model before falling over (scenarios S01–S06): which faults are
//! retried, `Retry-After`, bounded backoff, the deadline, and every attempt recorded.

use crate::support::{Harness, chat, models, outcomes};
use keel_testkit::Behavior;
use keel_types::ErrorCode;
use std::time::{Duration, Instant};

#[tokio::test]
async fn s01_a_429_with_retry_after_waits_it_out_then_retries_the_same_model() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::rate_limited(1));
    let ctx = h.ctx(Duration::from_secs(10));
    let started = Instant::now();
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.model, "a");
    assert_eq!(h.primary.request_count(), 2);
    assert_eq!(h.secondary.request_count(), 0);
    assert!(
        elapsed >= Duration::from_millis(900),
        "the retry waited for Retry-After: {elapsed:?}"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_429", "ok"]);
    assert_eq!(models(&rec), ["a", "a"]);
    assert_eq!(rec.attempts[0].http_status, Some(429));
    assert_eq!(rec.status, 200);
}

#[tokio::test]
async fn s01b_a_retry_after_beyond_the_limit_falls_over_without_waiting() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::rate_limited(30));
    let ctx = h.ctx(Duration::from_secs(10));
    let started = Instant::now();
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.model, "b");
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 1);
    assert!(
        elapsed < Duration::from_secs(5),
        "did not wait out a 30 s Retry-After: {elapsed:?}"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_429", "ok"]);
    assert_eq!(models(&rec), ["a", "b"]);
}

#[tokio::test]
async fn s01c_a_retry_after_past_the_deadline_falls_over_at_once() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::rate_limited(1));
    let ctx = h.ctx(Duration::from_millis(800));
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    assert_eq!(resp.model, "b");
    assert_eq!(
        h.primary.request_count(),
        1,
        "a wait past the deadline is not taken"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_429", "ok"]);
    assert_eq!(models(&rec), ["a", "b"]);
}

#[tokio::test]
async fn s02_429s_without_retry_after_back_off_and_retry_the_same_model() {
    let mut h = Harness::start().await;
    h.primary
        .script([Behavior::status(429), Behavior::status(429)]);
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    assert_eq!(resp.model, "a");
    assert_eq!(h.primary.request_count(), 3);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_429", "status_429", "ok"]);
    assert_eq!(models(&rec), ["a", "a", "a"]);
}

#[tokio::test]
async fn s02b_retries_are_bounded_by_max_retries() {
    let mut h = Harness::start().await;
    h.primary.script([
        Behavior::status(429),
        Behavior::status(429),
        Behavior::status(429),
    ]);
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    assert_eq!(resp.model, "b");
    assert_eq!(h.primary.request_count(), 3, "1 + max_retries, no more");
    assert_eq!(h.secondary.request_count(), 1);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(
        outcomes(&rec),
        ["status_429", "status_429", "status_429", "ok"]
    );
    assert_eq!(models(&rec), ["a", "a", "a", "b"]);
}

#[tokio::test]
async fn s03_a_single_500_is_retried_on_the_same_model() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::status(500));
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    assert_eq!(resp.model, "a");
    assert_eq!(h.primary.request_count(), 2);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_500", "ok"]);
    assert_eq!(rec.attempts[0].http_status, Some(500));
}

#[tokio::test]
async fn s04_a_persistent_503_falls_over_after_the_retries() {
    let mut h = Harness::start().await;
    h.primary.script((0..10).map(|_| Behavior::status(503)));
    let ctx = h.ctx(Duration::from_secs(10));
    let started = Instant::now();
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.model, "b");
    assert_eq!(h.primary.request_count(), 3);
    assert_eq!(h.secondary.request_count(), 1);
    assert!(
        elapsed < Duration::from_secs(5),
        "backoff is bounded well within the 10 s deadline: {elapsed:?}"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(
        outcomes(&rec),
        ["status_503", "status_503", "status_503", "ok"]
    );
    assert_eq!(models(&rec), ["a", "a", "a", "b"]);
}

#[tokio::test]
async fn s04b_a_bare_model_retries_with_the_defaults_and_names_the_attempts() {
    let mut h = Harness::start().await;
    h.primary.script((0..10).map(|_| Behavior::status(503)));
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h.pipeline.chat(&ctx, chat("a", false)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamError);
    assert!(err.message.contains("primary/model-a"), "{}", err.message);
    assert!(err.message.contains("3 attempts"), "{}", err.message);
    assert_eq!(h.primary.request_count(), 3, "default max_retries = 2");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.status, 502);
    assert_eq!(outcomes(&rec), ["status_503", "status_503", "status_503"]);
}

#[tokio::test]
async fn s05_a_reset_connection_is_retried_on_the_same_model() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::Reset);
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap();
    assert_eq!(resp.model, "a");
    assert_eq!(h.primary.request_count(), 2);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["connect", "ok"]);
}

#[tokio::test]
async fn s06_a_silent_upstream_is_not_retried_but_falls_over_at_once() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::Stall);
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ctx, chat("quick", false)).await.unwrap();
    assert_eq!(resp.model, "b");
    assert_eq!(h.primary.request_count(), 1, "a timeout is not retried");
    assert_eq!(h.secondary.request_count(), 1);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["timeout", "ok"]);
    assert_eq!(models(&rec), ["a-quick", "b"]);
}

#[tokio::test]
async fn a_client_error_is_neither_retried_nor_fallen_over() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::status(400));
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("retrying", false))
        .await
        .unwrap_err();
    assert_eq!(err.code.http_status(), 400);
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_400"]);
}

#[tokio::test]
async fn a_stream_is_retried_on_the_same_model_before_its_first_chunk() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::status(503));
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("retrying", true))
        .await
        .unwrap();
    assert_eq!(s.model, "a");
    let chunks: Vec<_> = futures::StreamExt::collect(s.stream).await;
    assert!(chunks.iter().all(Result::is_ok));
    assert_eq!(h.primary.request_count(), 2);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_503", "ok"]);
}
