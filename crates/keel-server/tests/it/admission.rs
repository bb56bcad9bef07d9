//! Admission end to end on one node (memory backend): key scopes (403), rate limits per
//! key, tenant and route (429 with Retry-After), hard and soft budgets, priority shedding
//! (503 with Retry-After), and the `keel.admission` entry of an answer.

use crate::metrics::sample;
use crate::support::{ACME_KEY, ADMIN_KEY, GLOBEX_KEY, Keel, eventually};
use keel_server::auth::hash_key;
use keel_testkit::Behavior;
use serde_json::{Value, json};

const LOW_KEY: &str = "sk-low-0123456789";
const HIGH_KEY: &str = "sk-high-0123456789";

/// Two more acme keys: `low` (priority low, only route `chain`) and `high` (priority high).
fn keys() -> String {
    format!(
        "[[auth.keys]]\nid = \"low\"\ntenant = \"acme\"\nsha256 = \"{}\"\npriority = \"low\"\nroutes = [\"chain\"]\n[[auth.keys]]\nid = \"high\"\ntenant = \"acme\"\nsha256 = \"{}\"\npriority = \"high\"\n",
        hash_key(LOW_KEY),
        hash_key(HIGH_KEY)
    )
}

fn body(max_tokens: u32) -> Value {
    json!({"model": "chain", "max_tokens": max_tokens,
           "messages": [{"role": "user", "content": "hello world"}]})
}

/// Waits while the current minute has less than 10 s left, so a per-minute test does not
/// straddle a window boundary.
async fn fresh_minute() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if secs % 60 >= 50 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - secs % 60)).await;
    }
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn error_code(r: reqwest::Response) -> (String, Option<String>, String) {
    let b: Value = r.json().await.unwrap();
    let e = &b["error"];
    (
        e["code"].as_str().unwrap().to_owned(),
        e["param"].as_str().map(str::to_owned),
        e["message"].as_str().unwrap().to_owned(),
    )
}

/// Opens a stream that stalls after its first chunk and holds it (its reservation and
/// in-flight slot stay taken until the response is dropped).
async fn held_stream(keel: &Keel, key: &str, max_tokens: u32) -> reqwest::Response {
    keel.mock.push(Behavior::StalledStream { after_chunks: 1 });
    let mut b = body(max_tokens);
    b["stream"] = json!(true);
    let r = keel.chat(key, b).await;
    assert_eq!(r.status(), 200);
    r
}

#[tokio::test]
async fn a_key_outside_its_routes_gets_403_naming_model() {
    let keel = Keel::start(&keys()).await;
    let r = keel
        .chat(
            LOW_KEY,
            json!({"model": "a", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let (code, param, msg) = error_code(r).await;
    assert_eq!(code, "permission_denied");
    assert_eq!(param.as_deref(), Some("model"));
    assert!(msg.contains("\"a\""), "{msg}");
    assert_eq!(keel.say(LOW_KEY, "hi").await.status(), 200);
    assert_eq!(
        keel.mock.request_count(),
        1,
        "the denied request never went upstream"
    );
    keel.stop().await;
}

#[tokio::test]
async fn requests_per_minute_per_key_answer_429_with_retry_after() {
    fresh_minute().await;
    let keel = Keel::start("[admission.keys.acme-1]\nrequests_per_minute = 2\n").await;
    for _ in 0..2 {
        let r = keel.chat(ACME_KEY, body(10)).await;
        assert_eq!(r.status(), 200);
        let b: Value = r.json().await.unwrap();
        assert_eq!(
            b["keel"]["stages"][1],
            json!({"stage": "admit", "outcome": "ok"})
        );
        let a = &b["keel"]["admission"];
        // Reserved: (prompt estimate + 10 output tokens) at $1/$2 per million.
        assert!(a["reserved_usd"].as_f64().unwrap() > 20e-6, "{a}");
        // Settled: 2 prompt + 3 output tokens ("echo: hello world").
        assert!(
            (a["settled_usd"].as_f64().unwrap() - 8e-6).abs() < 1e-12,
            "{a}"
        );
    }
    let r = keel.chat(ACME_KEY, body(10)).await;
    assert_eq!(r.status(), 429);
    assert!((1..=60).contains(&retry_after(&r)));
    let (code, _, msg) = error_code(r).await;
    assert_eq!(code, "rate_limit_exceeded");
    assert!(msg.contains("requests_per_minute"), "{msg}");
    // Another tenant's key is not limited.
    assert_eq!(keel.chat(GLOBEX_KEY, body(10)).await.status(), 200);
    assert_eq!(keel.mock.request_count(), 3);
    let text = keel.get(ADMIN_KEY, "/metrics").await.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            "keel_admission_rejections_total",
            &[("reason", "requests_per_minute")]
        ),
        Some(1.0)
    );
    keel.stop().await;
}

#[tokio::test]
async fn tokens_per_minute_per_route_settle_to_actual_usage() {
    fresh_minute().await;
    let keel = Keel::start("[admission.routes.chain]\ntokens_per_minute = 150\n").await;
    // Each reserves ~100 tokens and settles to 5: without settlement the second would fail.
    for _ in 0..3 {
        assert_eq!(keel.chat(ACME_KEY, body(100)).await.status(), 200);
    }
    let r = keel.chat(GLOBEX_KEY, body(200)).await;
    assert_eq!(r.status(), 429);
    assert!((1..=60).contains(&retry_after(&r)));
    let (code, _, msg) = error_code(r).await;
    assert_eq!(code, "rate_limit_exceeded");
    assert!(msg.contains("route \"chain\" tokens_per_minute"), "{msg}");
    keel.stop().await;
}

#[tokio::test]
async fn cost_per_day_per_tenant_answers_429() {
    // max_tokens 1000 reserves ~$0.002; 2000 reserves ~$0.004, beyond $0.003 alone.
    let keel = Keel::start("[admission.tenants.acme]\ncost_per_day_usd = 0.003\n").await;
    for _ in 0..3 {
        assert_eq!(keel.chat(ACME_KEY, body(1000)).await.status(), 200);
    }
    let r = keel.chat(ACME_KEY, body(2000)).await;
    assert_eq!(r.status(), 429);
    assert!((1..=86_400).contains(&retry_after(&r)));
    let (code, _, msg) = error_code(r).await;
    assert_eq!(code, "rate_limit_exceeded");
    assert!(msg.contains("tenant \"acme\" cost_per_day_usd"), "{msg}");
    keel.stop().await;
}

#[tokio::test]
async fn a_hard_budget_counts_open_reservations_and_a_dropped_stream_releases_its_own() {
    let keel = Keel::start(&format!(
        "{}[admission.tenants.acme]\nbudget = {{ hard_usd = 0.005, period = \"day\" }}\n",
        keys()
    ))
    .await;
    // Two open streams hold ~$0.002 each; a third reservation would pass $0.005.
    let s1 = held_stream(&keel, ACME_KEY, 1000).await;
    let _s2 = held_stream(&keel, HIGH_KEY, 1000).await;
    let r = keel.chat(LOW_KEY, body(1000)).await;
    assert_eq!(r.status(), 429);
    let (code, _, msg) = error_code(r).await;
    assert_eq!(code, "insufficient_quota");
    assert!(msg.contains("budget"), "{msg}");
    // The client leaves the first stream: its reservation is released (nothing was used).
    drop(s1);
    eventually(async || {
        let r = keel.chat(LOW_KEY, body(1000)).await;
        (r.status() == 200).then_some(())
    })
    .await;
    keel.stop().await;
}

#[tokio::test]
async fn a_soft_budget_alerts_once_per_period() {
    let keel = Keel::start(
        "[admission.keys.acme-1]\nbudget = { soft_usd = 0.001, hard_usd = 1.0, period = \"month\" }\n",
    )
    .await;
    for _ in 0..3 {
        assert_eq!(keel.chat(ACME_KEY, body(1000)).await.status(), 200);
    }
    let text = keel.get(ADMIN_KEY, "/metrics").await.text().await.unwrap();
    assert_eq!(
        sample(&text, "keel_budget_alerts_total", &[("scope", "key")]),
        Some(1.0)
    );
    keel.stop().await;
}

#[tokio::test]
async fn a_full_route_sheds_low_priority_first_with_503_and_retry_after() {
    let keel = Keel::start(&format!(
        "{}[admission.routes.chain]\nmax_in_flight = 2\n",
        keys()
    ))
    .await;
    // Low may fill half of 2 (one slot): the held stream takes it.
    let _held = held_stream(&keel, LOW_KEY, 10).await;
    let r = keel.chat(LOW_KEY, body(10)).await;
    assert_eq!(r.status(), 503);
    assert_eq!(retry_after(&r), 1);
    let (code, _, _) = error_code(r).await;
    assert_eq!(code, "overloaded");
    // High may fill the whole bound.
    assert_eq!(keel.chat(HIGH_KEY, body(10)).await.status(), 200);
    let text = keel.get(ADMIN_KEY, "/metrics").await.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            "keel_shed_requests_total",
            &[("reason", "route_in_flight")]
        ),
        Some(1.0)
    );
    keel.stop().await;
}

#[tokio::test]
async fn the_reservation_is_priced_at_the_dearest_candidate_and_settled_at_the_served_one() {
    let keel = Keel::start(
        "[models.b]\nprovider = \"mock\"\nupstream = \"mock-b\"\ninput_price_per_mtok = 10.0\noutput_price_per_mtok = 20.0\n[routes.pricey]\nmodels = [\"a\", \"b\"]\n",
    )
    .await;
    let mut req = body(50);
    req["model"] = json!("pricey");
    let parsed: keel_types::openai::ChatCompletionRequest =
        serde_json::from_value(req.clone()).unwrap();
    let prompt_estimate = serde_json::to_vec(&parsed.messages)
        .unwrap()
        .len()
        .div_ceil(4);
    let r = keel.chat(ACME_KEY, req).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["keel"]["model"], "a");
    let a = &b["keel"]["admission"];
    // Model b's prices: $10/M in, $20/M out, for the estimate and 50 output tokens.
    let want = (prompt_estimate as f64 * 10.0 + 50.0 * 20.0) / 1e6;
    assert!(
        (a["reserved_usd"].as_f64().unwrap() - want).abs() < 1e-9,
        "{a} vs {want}"
    );
    // Served by a: 2 prompt tokens at $1/M, 3 output tokens at $2/M.
    assert!(
        (a["settled_usd"].as_f64().unwrap() - 8e-6).abs() < 1e-12,
        "{a}"
    );
    keel.stop().await;
}
