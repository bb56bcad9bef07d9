//! Cascade routes: a cheaper model's answer is judged and escalated when its trust is under
//! the threshold; streaming requests buffer the judged tiers and stream the last one live.

use super::{Routes, body, last_upstream_model, routing};
use crate::support::models;
use futures::StreamExt;
use keel_testkit::Behavior;
use serde_json::json;

const REFUSAL: &str = "I'm sorry, but I can't help with that.";

#[tokio::test]
async fn a_good_answer_is_not_escalated() {
    let mut h = Routes::start().await;
    let (ctx, resp) = h.ask(body("cascade", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "cheap");
    assert_eq!(h.fast.request_count(), 1);
    let r = routing(&resp);
    assert_eq!(r["strategy"], "cascade");
    assert_eq!(r["cascade"]["escalated"], false);
    assert_eq!(r["cascade"]["steps"][0]["trust"], 1.0);
    assert_eq!(r["reason"], "cascade: cheap trust 1.00");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.model_served.as_deref(), Some("cheap"));
    assert_eq!(
        rec.route_reason.as_deref(),
        Some("cascade: cheap trust 1.00")
    );
}

#[tokio::test]
async fn a_refusal_is_escalated_to_the_next_model() {
    let mut h = Routes::start().await;
    h.fast.push(Behavior::reply(REFUSAL));
    let (ctx, resp) = h.ask(body("cascade", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "mid");
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("echo: hello upstream"),
        "the escalated answer is served"
    );
    let r = routing(&resp);
    assert_eq!(r["cascade"]["escalated"], true);
    assert_eq!(r["cascade"]["steps"][0]["model"], "cheap");
    assert_eq!(r["cascade"]["steps"][0]["signals"]["refusal"], 0.0);
    assert_eq!(r["cascade"]["steps"][1]["model"], "mid");
    let want = "cascade: escalated cheap trust 0.00 < 0.50 (refusal) -> mid trust 1.00";
    assert_eq!(r["reason"], want);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["cheap", "mid"]);
    assert_eq!(rec.model_served.as_deref(), Some("mid"));
    assert_eq!(rec.route_reason.as_deref(), Some(want));
    // Tokens are the served answer's; the cost includes the escalated tier's. The mock counts
    // words: 2 prompt tokens; 8 for the refusal ($0.1/$0.4), 3 for mid's echo ($1/$4).
    assert_eq!((rec.input_tokens, rec.output_tokens), (Some(2), Some(3)));
    let want_cost = (2.0 * 0.1 + 8.0 * 0.4 + 2.0 * 1.0 + 3.0 * 4.0) / 1e6;
    assert!(
        (rec.cost_usd.unwrap() - want_cost).abs() < 1e-12,
        "{:?}",
        rec.cost_usd
    );
}

#[tokio::test]
async fn a_failing_tier_is_fallen_over_and_named() {
    let h = Routes::start().await;
    h.fast.push(Behavior::status(503));
    let (_, resp) = h.ask(body("cascade", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "mid");
    assert_eq!(
        routing(&resp)["reason"],
        "cascade: mid trust 1.00; no answer from cheap"
    );
}

#[tokio::test]
async fn a_truncated_answer_is_escalated() {
    let h = Routes::start().await;
    h.fast.push(Behavior::truncated("The capital of France is"));
    let (_, resp) = h.ask(body("cascade", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "mid");
    let step = &routing(&resp)["cascade"]["steps"][0];
    assert_eq!(step["signals"]["finish_reason"], 0.0);
    assert_eq!(step["trust"], 0.0);
}

#[tokio::test]
async fn invalid_json_is_escalated_when_json_was_asked_for() {
    let h = Routes::start().await;
    // `cheap` has no JSON mode: the cascade starts at `mid`.
    h.fast.script([
        Behavior::reply("{\"city\": "),
        Behavior::reply("{\"city\": \"Paris\"}"),
    ]);
    let (_, resp) = h
        .ask(body(
            "cascade",
            json!({"response_format": {"type": "json_object"}}),
        ))
        .await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "strong");
    assert_eq!(last_upstream_model(&h.fast), "strong-u");
    let r = routing(&resp);
    assert_eq!(r["order"], json!(["mid", "strong"]));
    assert_eq!(r["cascade"]["steps"][0]["signals"]["json"], 0.0);
    assert_eq!(r["cascade"]["steps"][1]["signals"]["json"], 1.0);
    // Valid JSON but no JSON asked for: not a signal.
    h.fast.push(Behavior::reply("{\"city\": "));
    let (_, resp) = h.ask(body("cascade", json!({}))).await;
    assert_eq!(resp.unwrap().model, "cheap");
}

#[tokio::test]
async fn low_token_probabilities_are_escalated_and_high_ones_kept() {
    let h = Routes::start().await;
    // Mean token probability e^-3 ≈ 0.05.
    h.fast.push(Behavior::with_logprob("maybe Lyon", -3.0));
    let (_, resp) = h.ask(body("cascade", json!({"logprobs": true}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "mid");
    let step = &routing(&resp)["cascade"]["steps"][0];
    assert_eq!(step["signals"]["logprobs"], 0.05);
    assert!(
        h.fast.requests()[0].body["logprobs"] == true,
        "the client's logprobs go upstream"
    );
    // e^-0.05 ≈ 0.95: trusted.
    h.fast.push(Behavior::with_logprob("Paris", -0.05));
    let (_, resp) = h.ask(body("cascade", json!({"logprobs": true}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "cheap");
    assert_eq!(
        routing(&resp)["cascade"]["steps"][0]["signals"]["logprobs"],
        0.951
    );
    assert!(
        resp.choices[0].logprobs.is_some(),
        "logprobs reach the client"
    );
}

#[tokio::test]
async fn the_last_tier_is_served_untrusted_and_a_failed_escalation_keeps_the_last_answer() {
    let h = Routes::start().await;
    h.fast.script((0..3).map(|_| Behavior::reply(REFUSAL)));
    let (_, resp) = h.ask(body("cascade", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "strong");
    let r = routing(&resp);
    assert_eq!(r["cascade"]["steps"].as_array().unwrap().len(), 3);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .ends_with("; strong is the last tier: served untrusted"),
        "{}",
        r["reason"]
    );

    h.fast.script([
        Behavior::reply(REFUSAL),
        Behavior::status(503),
        Behavior::status(503),
    ]);
    let (_, resp) = h.ask(body("cascade", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "cheap");
    assert_eq!(resp.choices[0].message.content.as_deref(), Some(REFUSAL));
    let reason = routing(&resp)["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("; escalation failed ("), "{reason}");
    assert!(reason.ends_with("): served cheap's answer"), "{reason}");
}

#[tokio::test]
async fn a_stream_replays_a_trusted_buffered_answer() {
    let mut h = Routes::start().await;
    let ctx = h.ctx();
    let s = h
        .pipeline
        .chat_stream(
            &ctx,
            super::request(body("cascade", json!({"stream": true}))),
        )
        .await
        .unwrap();
    assert_eq!(s.model, "cheap");
    assert!(
        s.route_reason.contains("buffered and replayed"),
        "{}",
        s.route_reason
    );
    let chunks: Vec<_> = s.stream.collect().await;
    let text: String = chunks
        .iter()
        .map(|c| c.as_ref().unwrap())
        .flat_map(|c| c.choices.iter().filter_map(|ch| ch.delta.content.clone()))
        .collect();
    assert_eq!(text, "echo: hello upstream");
    let upstream = h.fast.last_request().unwrap().body;
    assert_eq!(
        upstream.get("stream"),
        None,
        "the judged tier is asked without streaming"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.model_served.as_deref(), Some("cheap"));
    assert!(rec.stream);
    assert!(rec.output_tokens.is_some());
}

#[tokio::test]
async fn a_stream_escalates_past_untrusted_tiers_and_streams_the_last_live() {
    let mut h = Routes::start().await;
    h.fast
        .script([Behavior::reply(REFUSAL), Behavior::truncated("It is")]);
    let ctx = h.ctx();
    let s = h
        .pipeline
        .chat_stream(
            &ctx,
            super::request(body("cascade", json!({"stream": true}))),
        )
        .await
        .unwrap();
    assert_eq!(s.model, "strong");
    let want = "cascade: escalated cheap trust 0.00 < 0.50 (refusal) -> mid trust 0.00 < 0.50 \
                (finish_reason); strong streamed live (last tier, not judged)";
    assert_eq!(s.route_reason, want);
    let chunks: Vec<_> = s.stream.collect().await;
    assert!(chunks.iter().all(Result::is_ok));
    let bodies: Vec<_> = h.fast.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 3);
    assert_eq!(bodies[0].get("stream"), None);
    assert_eq!(bodies[1].get("stream"), None);
    assert_eq!(bodies[2]["stream"], true);
    assert_eq!(bodies[2]["model"], "strong-u");
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["cheap", "mid", "strong"]);
    assert_eq!(rec.model_served.as_deref(), Some("strong"));
    assert_eq!(rec.route_reason.as_deref(), Some(want));
    // The buffered tiers are paid for: 8 words of refusal on cheap, 2 on mid, echo on strong.
    let want_cost = (2.0 * 0.1 + 8.0 * 0.4 + 2.0 * 1.0 + 2.0 * 4.0 + 2.0 * 5.0 + 3.0 * 15.0) / 1e6;
    assert!(
        (rec.cost_usd.unwrap() - want_cost).abs() < 1e-12,
        "{:?}",
        rec.cost_usd
    );
}
