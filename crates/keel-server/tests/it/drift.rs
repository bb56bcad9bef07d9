//! Drift end to end: the mock upstream changes behaviour mid-stream (long on-topic answers,
//! then short off-topic ones) and keel raises a signed webhook alert within a bounded number
//! of requests; with a stable upstream it raises none.

use crate::support::{ACME_KEY, ADMIN_KEY, Keel, Webhook};
use hmac::{Hmac, Mac};
use keel_testkit::Behavior;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;

/// The webhook secret comes from an env var; cargo sets this one for every test process.
const SECRET_ENV: &str = "CARGO_MANIFEST_DIR";
const BASELINE: usize = 60;
const WINDOW: usize = 40;
const MIN_SAMPLES: usize = 30;

fn drift_config(hook: &Webhook) -> String {
    format!(
        r#"
[observe.drift]
baseline_size = {BASELINE}
window_size = {WINDOW}
min_samples = {MIN_SAMPLES}
signals = ["output_tokens", "refusal"]
webhook_url = "{}"
webhook_secret_env = "{SECRET_ENV}"
"#,
        hook.url()
    )
}

/// A prompt of 150..250 words; the mock echoes it, so the answer is about as long.
fn long_prompt(rng: &mut StdRng) -> String {
    let n = rng.random_range(150..250);
    (0..n)
        .map(|i| ["river", "boat", "harbour", "tide", "sail"][i % 5])
        .collect::<Vec<_>>()
        .join(" ")
}

async fn ask(keel: &Keel, prompt: String) {
    let r = keel
        .chat(
            ACME_KEY,
            json!({"model": "chain", "messages": [{"role": "user", "content": prompt}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

fn verify_signature(headers: &axum::http::HeaderMap, body: &[u8]) {
    let ts = headers["x-keel-timestamp"].to_str().unwrap();
    let sig = headers["x-keel-signature"].to_str().unwrap();
    let secret = std::env::var(SECRET_ENV).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(sig, expected);
}

#[tokio::test]
async fn shorter_off_topic_answers_raise_a_signed_alert_within_a_bounded_number_of_requests() {
    let hook = Webhook::start().await;
    let keel = Keel::start(&drift_config(&hook)).await;
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..BASELINE + WINDOW {
        ask(&keel, long_prompt(&mut rng)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.calls().is_empty(), "no alert before the change");

    // The upstream changes: short, off-topic answers.
    let mut sent = 0;
    while hook.calls().is_empty() {
        assert!(
            sent <= WINDOW + 20,
            "no alert after {sent} requests of changed behaviour"
        );
        keel.mock.push(Behavior::reply(
            "Bananas are an excellent source of potassium.",
        ));
        ask(&keel, long_prompt(&mut rng)).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (headers, body) = hook.calls().remove(0);
    verify_signature(&headers, &body);
    let alert: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(alert["route"], "chain");
    assert_eq!(alert["signal"], "output_tokens");
    assert!(alert["statistic"].as_f64().unwrap() > alert["threshold"].as_f64().unwrap());

    let metrics = keel.get(ADMIN_KEY, "/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keel_drift_alerts_total{")
                && l.contains("signal=\"output_tokens\"")
                && !l.ends_with(" 0")),
        "{metrics}"
    );
    keel.stop().await;
}

#[tokio::test]
async fn a_stable_upstream_raises_no_alert() {
    let hook = Webhook::start().await;
    let keel = Keel::start(&drift_config(&hook)).await;
    let mut rng = StdRng::seed_from_u64(11);
    for _ in 0..BASELINE + 4 * WINDOW {
        ask(&keel, long_prompt(&mut rng)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.calls().is_empty(), "{:?}", hook.calls());
    let metrics = keel.get(ADMIN_KEY, "/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("keel_drift_statistic{") && l.contains("output_tokens")),
        "the monitor compared windows: {metrics}"
    );
    keel.stop().await;
}
