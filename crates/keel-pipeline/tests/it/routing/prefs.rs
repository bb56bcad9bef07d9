//! Per-request preferences in the `keel.route` extension field: order, only, ignore, sort;
//! their 400s; and the extension never reaching an upstream.

use super::{Routes, body, last_upstream_model, routing};
use keel_testkit::Behavior;
use serde_json::{Value, json};

fn prefs(route: &str, prefs: Value) -> Value {
    body(route, json!({"keel": {"route": prefs}}))
}

#[tokio::test]
async fn order_only_and_ignore_reshape_the_route() {
    let h = Routes::start().await;
    let (_, resp) = h
        .ask(prefs("plain", json!({"order": ["cheap", "mid"]})))
        .await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "cheap");
    let r = routing(&resp);
    assert_eq!(r["order"], json!(["cheap", "mid", "strong"]));
    assert_eq!(r["preferences"], json!({"order": ["cheap", "mid"]}));
    assert_eq!(
        r["reason"],
        "fallback: strong is first in the route's order; request preferences order=[cheap, mid]"
    );
    let sent = h.fast.last_request().unwrap().body;
    assert!(
        sent.get("keel").is_none(),
        "keel's extension is not forwarded: {sent}"
    );
    assert_eq!(sent["model"], "cheap-u");

    let (_, resp) = h.ask(prefs("plain", json!({"ignore": ["strong"]}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "mid");
    assert_eq!(routing(&resp)["order"], json!(["mid", "cheap"]));

    // `only` leaves no fallback: a failing `mid` is the answer.
    h.fast.push(Behavior::status(503));
    let (_, resp) = h.ask(prefs("plain", json!({"only": ["mid"]}))).await;
    assert_eq!(resp.unwrap_err().code.http_status(), 502);
    assert_eq!(last_upstream_model(&h.fast), "mid-u");
    let before = h.fast.request_count();
    let (_, resp) = h
        .ask(prefs(
            "plain",
            json!({"only": ["mid", "cheap"], "order": ["cheap"]}),
        ))
        .await;
    assert_eq!(resp.unwrap().model, "cheap");
    assert_eq!(h.fast.request_count(), before + 1);
}

#[tokio::test]
async fn sort_by_price_or_measured_latency() {
    let h = Routes::start().await;
    let (_, resp) = h.ask(prefs("plain", json!({"sort": "price"}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "cheap");
    assert_eq!(routing(&resp)["order"], json!(["cheap", "mid", "strong"]));

    // Measure both models of `pair`, then ask for the lowest latency: the route's order says
    // slowm first, the preference puts the measured faster model first.
    for first in ["slowm", "fastm"] {
        let (_, resp) = h.ask(prefs("pair", json!({"order": [first]}))).await;
        assert_eq!(resp.unwrap().model, first);
    }
    let (_, resp) = h.ask(prefs("pair", json!({"sort": "latency"}))).await;
    let resp = resp.unwrap();
    assert_eq!(resp.model, "fastm");
    assert_eq!(routing(&resp)["order"], json!(["fastm", "slowm"]));
    assert_eq!(h.slow.request_count(), 1);
}

#[tokio::test]
async fn bad_preferences_are_400s_naming_the_field() {
    let mut h = Routes::start().await;
    let tool = json!([{"type": "function", "function": {"name": "lookup"}}]);
    let cases = [
        (
            prefs("plain", json!({"only": ["nope"]})),
            "keel.route.only[0]",
        ),
        (
            prefs("plain", json!({"order": ["cheap", "slowm"]})),
            "keel.route.order[1]",
        ),
        (
            prefs("plain", json!({"ignore": ["strong", "mid", "cheap"]})),
            "keel.route.ignore",
        ),
        (prefs("plain", json!({"sort": "speed"})), "keel.route"),
        (prefs("plain", json!({"onyl": ["cheap"]})), "keel.route"),
        (body("plain", json!({"keel": "fast please"})), "keel"),
        // `cheap` cannot call tools: `only` leaves nothing able to serve this request.
        (
            {
                let mut b = prefs("plain", json!({"only": ["cheap"]}));
                b["tools"] = tool;
                b
            },
            "keel.route.only",
        ),
    ];
    let mut last = None;
    for (request, param) in cases {
        let (ctx, resp) = h.ask(request).await;
        let e = resp.unwrap_err();
        assert_eq!(e.code.http_status(), 400, "{param}: {}", e.message);
        assert_eq!(e.param.as_deref(), Some(param), "{}", e.message);
        last = Some((ctx, e));
    }
    assert_eq!(h.fast.request_count(), 0, "no upstream is asked");
    let (ctx, e) = last.unwrap();
    let rec = h.record(&ctx.request_id).await;
    assert_eq!(rec.status, 400);
    assert_eq!(rec.error_message.as_deref(), Some(e.message.as_str()));
}

#[tokio::test]
async fn a_model_asked_by_name_accepts_its_own_name_only() {
    let h = Routes::start().await;
    let (_, resp) = h.ask(prefs("mid", json!({"only": ["mid"]}))).await;
    assert_eq!(resp.unwrap().model, "mid");
    let (_, resp) = h.ask(prefs("mid", json!({"order": ["cheap"]}))).await;
    let e = resp.unwrap_err();
    assert_eq!(e.param.as_deref(), Some("keel.route.order[0]"));
    assert!(
        e.message.contains("is not a model of route \"mid\""),
        "{}",
        e.message
    );
}
