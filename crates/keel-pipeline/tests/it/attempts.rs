//! The attempts stage: fallback on upstream faults, none on client faults, deadlines.

use crate::support::{Harness, chat};
use keel_testkit::Behavior;
use keel_types::ErrorCode;
use std::time::Duration;

#[tokio::test]
async fn a_503_falls_back_to_the_next_model_and_both_attempts_are_recorded() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::status(503));
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ctx, chat("chain", false)).await.unwrap();
    assert_eq!(resp.model, "b");
    assert!(
        resp.choices[0]
            .message
            .content
            .as_deref()
            .unwrap()
            .contains("hello upstream")
    );
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 1);
    // The upstream saw its own model id, not the route name.
    assert_eq!(h.secondary.last_request().unwrap().body["model"], "model-b");
    let rec = h.record(&ctx.request_id).await;
    let outcomes: Vec<_> = rec.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["status_503", "ok"]);
    assert_eq!(rec.attempts[0].http_status, Some(503));
    assert_eq!(rec.route.as_deref(), Some("chain"));
    assert_eq!(rec.status, 200);
    assert_eq!(rec.tenant.as_deref(), Some("acme"));
    assert!(rec.input_tokens.unwrap() > 0);
    // Model b has no price: its cost is zero, not model a's.
    assert_eq!(rec.cost_usd, Some(0.0));
}

#[tokio::test]
async fn a_client_error_does_not_fall_back() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::status(400));
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("chain", false))
        .await
        .unwrap_err();
    assert_eq!(err.code.http_status(), 400);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.status, 400);
    assert_eq!(rec.attempts.len(), 1);
}

#[tokio::test]
async fn when_every_upstream_fails_the_error_names_each() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::status(500));
    h.secondary.push(Behavior::Reset);
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("chain", false))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamError);
    assert!(err.message.contains("primary/model-a"), "{}", err.message);
    assert!(err.message.contains("secondary/model-b"), "{}", err.message);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.status, 502);
    assert_eq!(rec.error_class.as_deref(), Some("upstream_error"));
    assert_eq!(rec.attempts.len(), 2);
}

#[tokio::test]
async fn the_request_deadline_bounds_a_stalled_upstream() {
    let mut h = Harness::start().await;
    h.primary.push(Behavior::Stall);
    let ctx = h.ctx(Duration::from_millis(300));
    let err = h
        .pipeline
        .chat(&ctx, chat("chain", false))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamTimeout);
    assert_eq!(
        h.secondary.request_count(),
        0,
        "no attempt starts after the deadline"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.status, 504);
    assert_eq!(rec.attempts[0].outcome, "timeout");
}

#[tokio::test]
async fn an_unknown_model_is_404_and_still_recorded() {
    let mut h = Harness::start().await;
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("nope", false))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ModelNotFound);
    assert!(
        err.message.contains("chain"),
        "lists what exists: {}",
        err.message
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.status, 404);
    assert!(rec.attempts.is_empty());
}
