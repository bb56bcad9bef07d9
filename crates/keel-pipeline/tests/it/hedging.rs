//! Hedged requests: a slow attempt gets company from the next model after `hedge.after`; the
//! first success wins and the other is cancelled, recorded but not billed. Streams are
//! never hedged.

use crate::support::{Harness, chat, models, outcomes};
use futures::StreamExt;
use keel_testkit::Behavior;
use std::time::Duration;

const ROUTES: &str = r#"
[models.b-priced]
provider = "secondary"
upstream = "model-b"
input_price_per_mtok = 1.0
output_price_per_mtok = 2.0
[routes.hedged]
models = ["a", "b-priced"]
hedge = { after = "100ms", max = 1 }
[routes.hedged-patient]
models = ["a", "b-priced"]
hedge = { after = "5s" }
"#;

#[tokio::test]
async fn a_slow_primary_is_hedged_and_the_fallback_answers() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(Behavior::Delay(Duration::from_millis(1500)));
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ctx, chat("hedged", false)).await.unwrap();
    assert_eq!(resp.model, "b-priced");
    let keel = resp.keel.as_ref().unwrap().to_value();
    assert_eq!(keel["model"], "b-priced");
    assert_eq!(keel["attempts"][0]["outcome"], "hedged_cancelled");
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 1);
    let usage = resp.usage.unwrap();
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "b-priced"], "in the order they started");
    assert_eq!(outcomes(&rec), ["hedged_cancelled", "ok"]);
    assert_eq!(rec.attempts[0].http_status, None);
    // Billed for the winner only, at its price.
    assert_eq!(rec.input_tokens, Some(usage.prompt_tokens));
    assert_eq!(rec.output_tokens, Some(usage.completion_tokens));
    let price = f64::from(usage.prompt_tokens) + f64::from(usage.completion_tokens) * 2.0;
    assert_eq!(rec.cost_usd, Some(price / 1_000_000.0));
    assert_eq!(rec.error_class, None);
}

/// "Fast" is relative to `after` (5 s here, so a loaded machine cannot make it flaky).
#[tokio::test]
async fn a_primary_answering_before_after_is_never_hedged() {
    let mut h = Harness::start_with(ROUTES).await;
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h
        .pipeline
        .chat(&ctx, chat("hedged-patient", false))
        .await
        .unwrap();
    assert_eq!(resp.model, "a");
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["ok"]);
}

#[tokio::test]
async fn a_failed_attempt_falls_over_at_once_without_same_model_retries() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(Behavior::status(503));
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ctx, chat("hedged", false)).await.unwrap();
    assert_eq!(resp.model, "b-priced");
    assert_eq!(h.primary.request_count(), 1);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_503", "ok"]);
}

#[tokio::test]
async fn a_client_error_stops_the_hedged_route() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(Behavior::status(400));
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("hedged", false))
        .await
        .unwrap_err();
    assert_eq!(err.code.http_status(), 400);
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["status_400"]);
}

#[tokio::test]
async fn streams_are_never_hedged() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(Behavior::Delay(Duration::from_millis(500)));
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("hedged", true))
        .await
        .unwrap();
    assert_eq!(s.model, "a");
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok));
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["ok"]);
}
