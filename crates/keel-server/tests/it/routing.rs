//! Routing over HTTP: a stream says which model answered and why in its headers; request
//! preferences arrive in the `keel` body field and bad ones are OpenAI-shaped 400s.

use crate::support::{ACME_KEY, Keel};
use futures::StreamExt;
use keel_testkit::Behavior;
use serde_json::{Value, json};

const ROUTES: &str = r#"
[models.b]
provider = "mock"
upstream = "mock-b"
input_price_per_mtok = 5.0
output_price_per_mtok = 15.0
[routes.cascade]
models = ["a", "b"]
strategy = "cascade"
retry = { max_retries = 0 }
"#;

#[tokio::test]
async fn a_cascade_stream_names_the_model_and_the_reason_in_its_headers() {
    let keel = Keel::start(ROUTES).await;
    keel.mock
        .push(Behavior::reply("I'm sorry, but I can't help with that."));
    let resp = keel
        .chat(
            ACME_KEY,
            json!({"model": "cascade", "stream": true,
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-keel-model"], "b");
    assert_eq!(
        resp.headers()["x-keel-route-reason"],
        "cascade: a trust 0.00 < 0.50 (refusal); b streamed live (last tier, not judged)"
    );
    let body: Vec<_> = resp.bytes_stream().collect().await;
    assert!(body.iter().all(Result::is_ok));
    let sent: Vec<Value> = keel.mock.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].get("stream"), None, "the judged tier is buffered");
    assert_eq!(sent[1]["stream"], true);
    keel.stop().await;
}

#[tokio::test]
async fn preferences_come_in_the_keel_field_and_bad_ones_are_400s() {
    let keel = Keel::start(ROUTES).await;
    let resp = keel
        .chat(
            ACME_KEY,
            json!({"model": "cascade", "keel": {"route": {"only": ["b"]}},
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-keel-model"], "b");
    let reason = resp.headers()["x-keel-route-reason"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["model"], "b");
    assert_eq!(body["keel"]["routing"]["reason"], reason);
    assert_eq!(
        body["keel"]["routing"]["preferences"],
        json!({"only": ["b"]})
    );
    assert!(keel.mock.last_request().unwrap().body.get("keel").is_none());

    let resp = keel
        .chat(
            ACME_KEY,
            json!({"model": "cascade", "keel": {"route": {"ignore": ["a", "c"]}},
                   "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["param"], "keel.route.ignore[1]");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    keel.stop().await;
}

/// The Anthropic endpoint says why too, plain and streaming (its bodies have no `keel` object).
#[tokio::test]
async fn the_messages_endpoint_names_the_reason_in_its_headers() {
    let keel = Keel::start(ROUTES).await;
    for stream in [false, true] {
        keel.mock
            .push(Behavior::reply("I'm sorry, but I can't help with that."));
        let resp = keel
            .http
            .post(keel.url("/v1/messages"))
            .bearer_auth(ACME_KEY)
            .header("anthropic-version", "2023-06-01")
            .json(
                &json!({"model": "cascade", "max_tokens": 64, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "stream {stream}");
        assert_eq!(resp.headers()["x-keel-model"], "b", "stream {stream}");
        let reason = resp.headers()["x-keel-route-reason"].to_str().unwrap();
        assert!(
            reason.starts_with("cascade: ") && reason.contains("a trust 0.00 < 0.50 (refusal)"),
            "stream {stream}: {reason}"
        );
    }
    keel.stop().await;
}
