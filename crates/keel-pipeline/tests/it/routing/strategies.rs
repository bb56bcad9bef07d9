//! The ordering strategies: weighted, least latency and cost; what the response and the
//! request record say about the choice.

use super::{Routes, body, last_upstream_model, routing};
use crate::support::models;
use keel_testkit::Behavior;
use serde_json::json;

#[tokio::test]
async fn weighted_serves_exact_proportions_and_zero_weight_only_as_fallback() {
    let h = Routes::start().await;
    let mut served = Vec::new();
    for _ in 0..40 {
        let (_, resp) = h.ask(body("weighted", json!({}))).await;
        served.push(resp.unwrap().model);
    }
    assert_eq!(
        served[..4],
        ["cheap", "cheap", "mid", "cheap"],
        "interleaved, not bursts"
    );
    assert_eq!(served.iter().filter(|m| *m == "cheap").count(), 30);
    assert_eq!(served.iter().filter(|m| *m == "mid").count(), 10);
    assert_eq!(served.iter().filter(|m| *m == "strong").count(), 0);

    // The next pick is `cheap`; when it and `mid` fail, the weight-0 model still serves.
    h.fast
        .script([Behavior::status(503), Behavior::status(503)]);
    let (_, resp) = h.ask(body("weighted", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "strong");
    let r = routing(&resp);
    assert_eq!(r["strategy"], "weighted");
    assert_eq!(r["order"], json!(["cheap", "mid", "strong"]));
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.starts_with("weighted: cheap is next"), "{reason}");
    assert!(
        reason.ends_with("cheap failed: served by fallback strong"),
        "{reason}"
    );
}

#[tokio::test]
async fn least_latency_prefers_the_fast_model_once_measured_and_falls_back_to_the_slow() {
    let mut h = Routes::start().await;
    let mut served = Vec::new();
    for _ in 0..10 {
        let (_, resp) = h.ask(body("latency", json!({}))).await;
        served.push(resp.unwrap().model);
    }
    // Unmeasured models go first (route order), then P2C always picks the faster of the two.
    assert_eq!(served[..2], ["slowm", "fastm"]);
    assert!(served[2..].iter().all(|m| m == "fastm"), "{served:?}");
    assert_eq!(h.slow.request_count(), 1);

    let (_, resp) = h.ask(body("latency", json!({}))).await;
    let resp = resp.unwrap();
    assert!(
        routing(&resp)["reason"]
            .as_str()
            .unwrap()
            .starts_with("least_latency: power of two choices between fastm"),
        "{}",
        routing(&resp)["reason"]
    );

    h.fast.push(Behavior::status(503));
    let (ctx, resp) = h.ask(body("latency", json!({}))).await;
    assert_eq!(
        resp.unwrap().model,
        "slowm",
        "the slow model remains the fallback"
    );
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["fastm", "slowm"]);
    assert_eq!(rec.model_served.as_deref(), Some("slowm"));
    assert!(
        rec.route_reason
            .as_deref()
            .unwrap()
            .ends_with("fastm failed: served by fallback slowm"),
        "{:?}",
        rec.route_reason
    );
}

#[tokio::test]
async fn cost_picks_the_cheapest_model_able_to_serve_the_request() {
    let mut h = Routes::start().await;
    let tool = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    let image = json!([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    ]}]);
    let cases = [
        ("plain", json!({}), "cheap"),
        ("tools", json!({"tools": tool}), "mid"),
        (
            "json mode",
            json!({"response_format": {"type": "json_object"}}),
            "mid",
        ),
        ("image", json!({"messages": image}), "strong"),
        // ~1500 prompt tokens: over cheap's 1000, within mid's 4000.
        (
            "long prompt",
            json!({"messages": [{"role": "user", "content": "word ".repeat(1200)}]}),
            "mid",
        ),
        // ~5000 tokens: only strong's window fits.
        (
            "longer prompt",
            json!({"messages": [{"role": "user", "content": "word ".repeat(4000)}]}),
            "strong",
        ),
        // A short prompt with room for 3000 output tokens does not fit cheap either.
        ("output limit", json!({"max_tokens": 3000}), "mid"),
    ];
    let mut last = None;
    for (case, extra, want) in cases {
        let (ctx, resp) = h.ask(body("cost", extra)).await;
        let resp = resp.unwrap();
        assert_eq!(resp.model, want, "{case}: {}", routing(&resp)["reason"]);
        assert_eq!(last_upstream_model(&h.fast), format!("{want}-u"), "{case}");
        last = Some((ctx, resp));
    }
    let (ctx, resp) = last.unwrap();
    let reason = routing(&resp)["reason"].as_str().unwrap().to_owned();
    assert_eq!(
        reason,
        "cost: mid is the cheapest capable model ($5.00/Mtok in+out) whose context fits ~3004 \
         tokens; too small a context window: cheap"
    );
    let (tools_ctx, resp) = h.ask(body("cost", json!({"tools": tool}))).await;
    let tools_reason = routing(&resp.unwrap())["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        tools_reason.ends_with("; cannot serve this request: cheap"),
        "{tools_reason}"
    );

    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.model_served.as_deref(), Some("mid"));
    assert_eq!(rec.route_reason.as_deref(), Some(reason.as_str()));
    let rec = h.record(&tools_ctx.request_id).await;
    assert_eq!(rec.route_reason.as_deref(), Some(tools_reason.as_str()));
}

#[tokio::test]
async fn fallback_routes_say_so_and_a_failed_request_keeps_the_plan() {
    let mut h = Routes::start().await;
    let (_, resp) = h.ask(body("plain", json!({}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "strong");
    assert_eq!(
        routing(&resp)["reason"],
        "fallback: strong is first in the route's order"
    );
    h.fast.script((0..3).map(|_| Behavior::status(503)));
    let (ctx, resp) = h.ask(body("plain", json!({}))).await;
    assert_eq!(resp.unwrap_err().code.http_status(), 502);
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.model_served, None, "no model answered");
    assert_eq!(
        rec.route_reason.as_deref(),
        Some("fallback: strong is first in the route's order")
    );
}
