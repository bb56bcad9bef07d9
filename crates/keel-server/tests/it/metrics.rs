//! `/metrics` end to end: admin-only, Prometheus text, request counters by route/model/status,
//! and no user text in labels.

use crate::support::{ACME_KEY, ADMIN_KEY, Keel};
use keel_testkit::Behavior;
use serde_json::json;

/// The value of the first sample of `name` whose labels contain every `labels` pair.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b'{') | Some(b' '))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_are_admin_only_and_count_requests_by_route_model_and_status() {
    let keel = Keel::start("").await;
    for _ in 0..2 {
        let r = keel.say(ACME_KEY, "one two three").await;
        assert_eq!(r.status(), 200);
    }
    keel.mock.push(Behavior::reply(
        "I'm sorry, but I can't help with that request.",
    ));
    let r = keel.say(ACME_KEY, "x").await;
    assert_eq!(r.status(), 200);
    keel.mock.push(Behavior::status(503));
    let r = keel.say(ACME_KEY, "x").await;
    assert_eq!(r.status(), 502);
    let r = keel
        .chat(
            ACME_KEY,
            json!({"model": "user-typed-name", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.status(), 404);

    let denied = keel.get(ACME_KEY, "/metrics").await;
    assert_eq!(denied.status(), 403);
    let anonymous = keel.http.get(keel.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let resp = keel.get(ADMIN_KEY, "/metrics").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    let ok = [("route", "chain"), ("model", "a"), ("status", "200")];
    assert_eq!(sample(&text, "keel_requests_total", &ok), Some(3.0));
    assert_eq!(
        sample(&text, "keel_request_duration_seconds_count", &ok),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "keel_refusals_total", &[("route", "chain")]),
        Some(1.0),
        "the one refusal among three answers"
    );
    assert_eq!(
        sample(
            &text,
            "keel_requests_total",
            &[("route", "chain"), ("status", "502")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "keel_upstream_attempts_total",
            &[("route", "chain"), ("outcome", "status_503")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "keel_tokens_total",
            &[("route", "chain"), ("direction", "input")]
        ),
        Some(7.0),
        "3 words × 2 requests + 1 word"
    );
    assert_eq!(
        sample(
            &text,
            "keel_requests_total",
            &[("route", "none"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert!(!text.contains("user-typed-name"), "no user text in labels");
    assert!(sample(&text, "keel_inflight_requests", &[]).is_some());
    assert_eq!(
        sample(&text, "keel_request_log_dropped_total", &[]),
        Some(0.0)
    );
    assert!(text.contains("# TYPE keel_request_duration_seconds histogram"));
    assert_eq!(
        sample(&text, "keel_circuit_state", &[("model", "a")]),
        Some(0.0),
        "set at scrape: one 503 does not open the circuit"
    );
    keel.stop().await;
}
