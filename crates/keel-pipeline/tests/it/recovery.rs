//! Mid-stream recovery (S08 with `stream_recovery`, S14): a stream cut after part of the
//! answer is continued on another model and stitched into one stream, with the partial answer
//! as assistant prefill only where the model supports it; otherwise the client gets an error
//! event, never a truncated answer reported as complete.

use crate::support::{Harness, chat, models, outcomes};
use futures::StreamExt;
use keel_pipeline::recover::CONTINUE_INSTRUCTION;
use keel_testkit::Behavior;
use keel_types::ApiError;
use keel_types::openai::{ChatCompletionChunk, StreamOptions};
use serde_json::{Value, json};
use std::time::Duration;

const ROUTES: &str = r#"
[models.b-prefill]
provider = "secondary"
upstream = "model-b-prefill"
input_price_per_mtok = 1.0
output_price_per_mtok = 2.0
capabilities = ["chat", "stream", "assistant_prefill"]
[routes.recover]
models = ["a", "b-prefill"]
retry = { max_retries = 0 }
stream_recovery = true
[routes.recover-instruct]
models = ["a", "b"]
retry = { max_retries = 0 }
stream_recovery = true
[routes.recover-skip]
models = ["a", "b", "b-prefill"]
retry = { max_retries = 0 }
stream_recovery = { without_prefill = "skip" }
[routes.recover-skip-only]
models = ["a", "b"]
retry = { max_retries = 0 }
stream_recovery = { without_prefill = "skip" }
[routes.recover-stall]
models = ["a-quick", "b-prefill"]
retry = { max_retries = 0 }
stream_recovery = true
"#;

/// The primary's echo, cut after the role chunk and two pieces: "echo: hello".
fn cut_after_partial() -> Behavior {
    Behavior::TruncatedStream { after_chunks: 3 }
}

const PARTIAL: &str = "echo: hello";

fn with_usage(model: &str) -> keel_types::openai::ChatCompletionRequest {
    let mut req = chat(model, true);
    req.stream_options = Some(StreamOptions {
        include_usage: Some(true),
    });
    req
}

fn text(items: &[Result<ChatCompletionChunk, ApiError>]) -> String {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
        .collect()
}

fn finish_reasons(items: &[Result<ChatCompletionChunk, ApiError>]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.finish_reason))
        .map(|r| r.as_str())
        .collect()
}

fn keel_marks(items: &[Result<ChatCompletionChunk, ApiError>]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .filter_map(|c| c.keel.as_ref().map(|k| k.to_value()))
        .collect()
}

/// The roles of a recorded upstream request's messages, and its last message's text.
fn roles_and_last(body: &Value) -> (Vec<String>, String) {
    let messages = body["messages"].as_array().unwrap();
    let roles = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect();
    let last = messages.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    (roles, last)
}

#[tokio::test]
async fn s08a_without_recovery_a_cut_stream_ends_with_an_error_never_a_stop() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(cut_after_partial());
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, with_usage("chain"))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert_eq!(
        text(&items),
        PARTIAL,
        "the partial answer reached the client"
    );
    assert!(items.last().unwrap().is_err(), "an error event ends it");
    assert!(finish_reasons(&items).is_empty(), "no stop: {items:?}");
    assert!(keel_marks(&items).is_empty());
    assert_eq!(h.secondary.request_count(), 0, "recovery is off by default");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.error_class.as_deref(), Some("stream"));
    assert_eq!(models(&rec), ["a"]);
}

#[tokio::test]
async fn s08b_a_cut_stream_is_continued_with_prefill_and_stitched_into_one_answer() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(cut_after_partial());
    h.secondary.push(Behavior::reply(" upstream, continued."));
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, with_usage("recover"))
        .await
        .unwrap();
    assert_eq!(s.model, "a");
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok), "no error: {items:?}");
    let chunks: Vec<&ChatCompletionChunk> = items.iter().map(|i| i.as_ref().unwrap()).collect();
    assert_eq!(text(&items), "echo: hello upstream, continued.");
    assert_eq!(
        finish_reasons(&items),
        ["stop"],
        "the continuation's finish"
    );
    let first_id = &chunks[0].id;
    assert!(chunks.iter().all(|c| &c.id == first_id), "one response id");
    let roles = chunks
        .iter()
        .flat_map(|c| c.choices.iter().filter(|ch| ch.delta.role.is_some()))
        .count();
    assert_eq!(roles, 1, "the continuation's role delta is not repeated");
    assert_eq!(chunks.last().unwrap().model, "b-prefill");

    // The fallback was asked to continue: the partial answer as the last, assistant, message.
    let sent = h.secondary.last_request().unwrap().body;
    assert_eq!(sent["model"], "model-b-prefill");
    let (roles, last) = roles_and_last(&sent);
    assert_eq!(roles, ["user", "assistant"]);
    assert_eq!(last, PARTIAL);

    // Marked on the last chunks (finish and usage), which name the model that finished.
    let marks = keel_marks(&items);
    assert!(!marks.is_empty());
    let expected = json!({"model": "b-prefill", "recovered": [
        {"from": "a", "to": "b-prefill", "after_chars": PARTIAL.chars().count()}
    ]});
    assert!(marks.iter().all(|m| *m == expected), "{marks:?}");
    let last = chunks.last().unwrap();
    assert_eq!(
        last.keel.as_ref().map(|k| k.to_value()),
        Some(expected),
        "the usage chunk is last"
    );
    let usage = last.usage.unwrap();

    // Recorded: the cut attempt and the continuation; billed at the continuation's price.
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "b-prefill"]);
    assert_eq!(outcomes(&rec), ["stream", "ok"]);
    assert_eq!(rec.status, 200);
    assert_eq!(rec.error_class, None);
    assert_eq!(rec.input_tokens, Some(usage.prompt_tokens));
    assert_eq!(rec.output_tokens, Some(usage.completion_tokens));
    let price = f64::from(usage.prompt_tokens) * 1.0 + f64::from(usage.completion_tokens) * 2.0;
    assert_eq!(rec.cost_usd, Some(price / 1_000_000.0));
    assert_eq!(
        keel_observe::logs::served_model(&rec),
        Some("b-prefill"),
        "the request line names the model that finished the answer"
    );
    let reason = rec.route_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("from a continued by b-prefill"), "{reason}");
}

#[tokio::test]
async fn s14_a_fallback_without_prefill_is_asked_to_continue_not_prefilled() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(cut_after_partial());
    // Like providers without prefill: a request ending with an assistant message is a 400.
    h.secondary.reject_assistant_prefill();
    h.secondary.push(Behavior::reply(" upstream"));
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("recover-instruct", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok), "no error: {items:?}");
    assert_eq!(text(&items), "echo: hello upstream");
    assert_eq!(finish_reasons(&items), ["stop"]);

    let requests = h.secondary.requests();
    assert_eq!(requests.len(), 1);
    let (roles, last) = roles_and_last(&requests[0].body);
    assert_eq!(roles, ["user", "assistant", "user"], "never assistant-last");
    assert_eq!(last, CONTINUE_INSTRUCTION);
    assert_eq!(requests[0].body["messages"][1]["content"], PARTIAL);
    let marks = keel_marks(&items);
    assert_eq!(marks.last().unwrap()["recovered"][0]["to"], "b");

    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["stream", "ok"]);
    assert_eq!(rec.error_class, None);
}

#[tokio::test]
async fn s14_skip_passes_over_a_model_without_prefill_to_one_with_it() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(cut_after_partial());
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("recover-skip", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok), "no error: {items:?}");
    assert!(text(&items).starts_with(PARTIAL));
    let requests = h.secondary.requests();
    assert_eq!(requests.len(), 1, "b (no prefill) was not asked");
    assert_eq!(requests[0].body["model"], "model-b-prefill");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "b-prefill"]);
}

#[tokio::test]
async fn s14_skip_with_no_prefill_model_left_ends_with_a_clean_error() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(cut_after_partial());
    h.secondary.reject_assistant_prefill();
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("recover-skip-only", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert_eq!(text(&items), PARTIAL);
    assert!(items.last().unwrap().is_err());
    assert!(finish_reasons(&items).is_empty());
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.error_class.as_deref(), Some("stream"));
}

#[tokio::test]
async fn a_continuation_that_fails_leaves_the_error_and_both_attempts() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(cut_after_partial());
    h.secondary.push(Behavior::status(503));
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("recover", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert_eq!(text(&items), PARTIAL);
    assert!(items.last().unwrap().is_err());
    assert!(finish_reasons(&items).is_empty());
    assert!(keel_marks(&items).is_empty());
    assert_eq!(h.secondary.request_count(), 1, "one try, no retries");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["stream", "status_503"]);
    assert_eq!(rec.error_class.as_deref(), Some("stream"));
}

#[tokio::test]
async fn recovery_is_bounded_by_max() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(cut_after_partial());
    // The continuation breaks too: with max = 1 that is the end.
    h.secondary
        .push(Behavior::TruncatedStream { after_chunks: 2 });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("recover", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.last().unwrap().is_err());
    assert!(finish_reasons(&items).is_empty());
    assert_eq!(h.primary.request_count(), 1);
    assert_eq!(h.secondary.request_count(), 1);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "b-prefill"]);
    assert_eq!(rec.error_class.as_deref(), Some("stream"));
}

#[tokio::test]
async fn an_answer_that_had_finished_is_not_continued() {
    let mut h = Harness::start_with(ROUTES).await;
    // role, 3 pieces, finish: everything but the usage chunk and [DONE].
    h.primary
        .push(Behavior::TruncatedStream { after_chunks: 5 });
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("recover", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert!(
        items.last().unwrap().is_err(),
        "the missing terminator still surfaces"
    );
    assert_eq!(h.secondary.request_count(), 0);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a"]);
    assert_eq!(rec.error_class.as_deref(), Some("stream"));
}

/// The `recover-stall` route's first model has a 300 ms idle timeout.
#[tokio::test]
async fn a_stalled_stream_is_recovered_too() {
    let mut h = Harness::start_with(ROUTES).await;
    h.primary.push(Behavior::StalledStream { after_chunks: 3 });
    h.secondary.push(Behavior::reply(" upstream"));
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("recover-stall", true))
        .await
        .unwrap();
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok), "{items:?}");
    assert_eq!(text(&items), "echo: hello upstream");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(outcomes(&rec), ["timeout", "ok"]);
    assert_eq!(models(&rec), ["a-quick", "b-prefill"]);
}
