//! S16 accounting: the response and the request log name the model that answered; failed
//! attempts are logged but not billed.

use crate::support::{Harness, chat, models, outcomes};
use futures::StreamExt;
use keel_testkit::Behavior;
use keel_types::openai::StreamOptions;
use std::time::Duration;

const ROUTES: &str = r#"
[models.b-priced]
provider = "secondary"
upstream = "model-b"
input_price_per_mtok = 1.0
output_price_per_mtok = 2.0
[routes.priced]
models = ["a", "b-priced"]
retry = { max_retries = 2, base_backoff = "10ms", max_backoff = "20ms" }
"#;

/// b-priced's price for `usage`, in USD.
fn b_price(prompt: u32, completion: u32) -> f64 {
    (f64::from(prompt) + f64::from(completion) * 2.0) / 1_000_000.0
}

#[tokio::test]
async fn s16_the_fallback_is_named_and_billed_and_the_failures_only_logged() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.script([503, 503, 503].map(Behavior::status));
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ctx, chat("priced", false)).await.unwrap();
    assert_eq!(resp.model, "b-priced");
    let keel = resp.keel.as_ref().unwrap().to_value();
    assert_eq!(keel["model"], "b-priced");
    assert_eq!(keel["attempts"].as_array().unwrap().len(), 4);
    let usage = resp.usage.unwrap();

    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "a", "a", "b-priced"]);
    assert_eq!(
        outcomes(&rec),
        ["status_503", "status_503", "status_503", "ok"]
    );
    assert_eq!(keel_observe::logs::served_model(&rec), Some("b-priced"));
    assert_eq!(rec.input_tokens, Some(usage.prompt_tokens));
    assert_eq!(rec.output_tokens, Some(usage.completion_tokens));
    assert_eq!(
        rec.cost_usd,
        Some(b_price(usage.prompt_tokens, usage.completion_tokens)),
        "a (priced 3/15) answered nothing and costs nothing"
    );
}

#[tokio::test]
async fn s16_a_stream_names_and_bills_the_model_that_streamed() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.script([503, 503, 503].map(Behavior::status));
    let mut req = chat("priced", true);
    req.stream_options = Some(StreamOptions {
        include_usage: Some(true),
    });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h.pipeline.chat_stream(&ctx, req).await.unwrap();
    assert_eq!(s.model, "b-priced");
    let chunks: Vec<_> = s.stream.map(Result::unwrap).collect().await;
    assert!(chunks.iter().all(|c| c.model == "b-priced"));
    let usage = chunks.last().unwrap().usage.unwrap();
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "a", "a", "b-priced"]);
    assert_eq!(keel_observe::logs::served_model(&rec), Some("b-priced"));
    assert_eq!(
        rec.cost_usd,
        Some(b_price(usage.prompt_tokens, usage.completion_tokens))
    );
}
