//! Drift end to end: the mock upstream changes behaviour mid-stream (long on-topic answers,
//! then short off-topic ones) and keel raises a signed webhook alert within a bounded number
//! of requests; with a stable upstream it raises none.

use crate::support::{ACME_KEY, ADMIN_KEY, Keel, Webhook};
use hmac::{Hmac, Mac};
use keel_testkit::Behavior;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
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
    let r = keel.say(ACME_KEY, prompt).await;
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

const SAILING: [&str; 6] = [
    "Reef the mainsail early when the wind rises above twenty knots.",
    "Trim the jib until the telltales stream evenly on both sides.",
    "A close-hauled boat sails about forty-five degrees off the wind.",
    "Check the tide tables before leaving the harbour at dawn.",
    "Ease the sheets and bear away to run before the swell.",
    "The skipper called for a tack as the channel buoy came abeam.",
];
const COOKING: [&str; 6] = [
    "Whisk the eggs with a pinch of salt before folding in the flour.",
    "Simmer the tomato sauce for forty minutes until it thickens.",
    "Rest the dough in the fridge overnight for a better crumb.",
    "Sear the steak in a hot cast-iron pan, then baste it with butter.",
    "Roast the peppers until the skins blister, then peel them.",
    "Season the soup at the end, after the stock has reduced.",
];

/// Answers drift off-topic at the same length: only the embedding centroid can see it. Runs
/// the real MiniLM embedder through the configured embeddings model.
#[tokio::test]
async fn off_topic_answers_of_the_same_length_move_the_answer_embedding_centroid() {
    let hook = Webhook::start().await;
    let extra = format!(
        r#"
[providers.local]
kind = "local"
chat_max_active = 1
[models.minilm]
provider = "local"
upstream = "embeddings"
capabilities = ["embeddings"]
[observe.drift]
baseline_size = {BASELINE}
window_size = {WINDOW}
min_samples = {MIN_SAMPLES}
signals = ["response_embedding"]
embeddings_model = "minilm"
webhook_url = "{}"
webhook_secret_env = "{SECRET_ENV}"
"#,
        hook.url()
    );
    let keel = Keel::start(&extra).await;
    for _ in 0..600 {
        let r = keel.http.get(keel.url("/readyz")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rng = StdRng::seed_from_u64(3);
    let ask_with = async |answer: &str| {
        keel.mock.push(Behavior::reply(answer));
        ask(&keel, "tell me something".into()).await;
    };
    for _ in 0..BASELINE + 2 * WINDOW {
        ask_with(SAILING[rng.random_range(0..SAILING.len())]).await;
    }
    // Let the monitor embed and compare everything sent so far: no alert on a stable topic.
    let stats_seen = async || {
        let m = keel.get(ADMIN_KEY, "/metrics").await.text().await.unwrap();
        m.contains("signal=\"response_embedding\"")
    };
    for _ in 0..200 {
        if stats_seen().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(hook.calls().is_empty(), "alert on a stable topic");

    let mut sent_at = Vec::new();
    for _ in 0..WINDOW + 20 {
        sent_at.push(now_ms());
        ask_with(COOKING[rng.random_range(0..COOKING.len())]).await;
    }
    let mut alert = None;
    for _ in 0..300 {
        if let Some((headers, body)) = hook.calls().first().cloned() {
            verify_signature(&headers, &body);
            alert = Some(serde_json::from_slice::<Value>(&body).unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alert = alert.expect("an alert after the topic changed");
    assert_eq!(alert["signal"], "response_embedding");
    let at = alert["at_ms"].as_i64().unwrap();
    let after = sent_at.iter().filter(|t| **t <= at).count();
    eprintln!("alert after {after} off-topic answers: {alert}");
    assert!(
        after <= MIN_SAMPLES + 20,
        "alerted only after {after} off-topic answers"
    );
    keel.stop().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
