//! S08 over HTTP: a stream cut mid-answer reaches the client as an error event (recovery
//! off), or as one stitched SSE stream marked `keel.recovered` (recovery on); never as a
//! truncated answer ending with `finish_reason: "stop"`.

use crate::support::{ACME_KEY, Keel};
use keel_testkit::Behavior;
use serde_json::{Value, json};

const RECOVER: &str = r#"
[models.b-prefill]
provider = "mock"
upstream = "mock-b"
capabilities = ["chat", "stream", "assistant_prefill"]
[routes.recover]
models = ["a", "b-prefill"]
retry = { max_retries = 0 }
stream_recovery = true
"#;

/// The `data:` payloads of an SSE body, in order.
fn events(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(str::to_owned)
        .collect()
}

async fn stream(keel: &Keel, route: &str) -> Vec<String> {
    let resp = keel
        .chat(
            ACME_KEY,
            json!({"model": route, "stream": true,
                   "messages": [{"role": "user", "content": "hello upstream"}]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    events(&resp.text().await.unwrap())
}

fn json_events(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

fn content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn s08_a_cut_stream_ends_with_an_error_event_not_a_stop() {
    let keel = Keel::start("").await;
    keel.mock
        .push(Behavior::TruncatedStream { after_chunks: 3 });
    let events = stream(&keel, "chain").await;
    let chunks = json_events(&events);
    assert_eq!(content(&chunks), "echo: hello");
    let last = chunks.last().unwrap();
    assert!(
        last["error"]["message"].is_string(),
        "an error event: {last}"
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"] != "stop"),
        "{events:?}"
    );
    keel.stop().await;
}

#[tokio::test]
async fn s08_a_recovered_stream_is_one_stitched_sse_stream_marked_recovered() {
    let keel = Keel::start(RECOVER).await;
    keel.mock.script([
        Behavior::TruncatedStream { after_chunks: 3 },
        Behavior::reply(" upstream"),
    ]);
    let events = stream(&keel, "recover").await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = json_events(&events);
    assert!(
        chunks.iter().all(|c| c.get("error").is_none()),
        "{events:?}"
    );
    assert_eq!(content(&chunks), "echo: hello upstream");
    let ids: Vec<&Value> = chunks.iter().map(|c| &c["id"]).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one response id: {ids:?}"
    );
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"] == "stop")
        .unwrap();
    assert_eq!(
        finish["keel"],
        json!({"model": "b-prefill", "recovered": [
            {"from": "a", "to": "b-prefill", "after_chars": 11}
        ]})
    );
    let sent = keel.mock.last_request().unwrap().body;
    assert_eq!(
        sent["messages"][1],
        json!({"role": "assistant", "content": "echo: hello"})
    );
    keel.stop().await;
}
