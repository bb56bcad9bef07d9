//! Signed webhook deliveries to a real axum receiver on 127.0.0.1: signature, retries on 5xx,
//! no retry on 4xx, giving up after the configured attempts, network errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use keel_config::DriftConfig;
use keel_observe::drift::{DriftHandle, DriftMonitor, DriftSample};
use keel_types::Secret;
use sha2::Sha256;
use tokio_util::task::TaskTracker;

use super::{TestSink, small, wait_for};

const SECRET: &str = "whsec-test-0123456789";

#[derive(Clone, Default)]
struct Receiver {
    /// Statuses to answer with, in order; 200 once they run out.
    statuses: Arc<Mutex<VecDeque<u16>>>,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    fn got(&self) -> Vec<(HeaderMap, Bytes)> {
        self.got.lock().unwrap().clone()
    }
}

async fn hook(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.got.lock().unwrap().push((headers, body));
    let code = r.statuses.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

async fn receiver(statuses: &[u16]) -> (String, Receiver) {
    let r = Receiver {
        statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
        ..Receiver::default()
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, r)
}

/// A monitor posting to `url`, fed a refusal shift that raises exactly one alert.
async fn alert_once(url: String) -> (DriftMonitor, DriftHandle, Arc<TestSink>) {
    let cfg = DriftConfig {
        baseline_size: 20,
        window_size: 20,
        min_samples: 10,
        webhook_url: Some(url),
        webhook_secret_env: Some("NOT_CONSULTED".into()),
        webhook_attempts: 4,
        ..small(DriftConfig::default())
    };
    let sink = Arc::new(TestSink::default());
    let secret = Some(Secret::new(SECRET.to_string()));
    let (monitor, handle) =
        DriftMonitor::spawn_with_secret(&cfg, secret, None, sink.clone(), &TaskTracker::new())
            .unwrap();
    for i in 0..40 {
        monitor.observe(DriftSample {
            route: "chat".into(),
            at_ms: 1_700_000_000_000 + i,
            refused: i >= 20,
            latency_ms: 100.0,
            ..DriftSample::default()
        });
    }
    wait_for("the alert", || sink.alerts().len() == 1).await;
    (monitor, handle, sink)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).unwrap().to_str().unwrap()
}

#[tokio::test]
async fn the_alert_arrives_signed() {
    let (url, r) = receiver(&[]).await;
    let (monitor, handle, sink) = alert_once(url).await;
    wait_for("delivery", || monitor.stats().webhook_delivered == 1).await;
    let got = r.got();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    assert_eq!(header(headers, "content-type"), "application/json");
    let ts: u64 = header(headers, "x-keel-timestamp").parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ts.abs_diff(now) < 300, "{ts} vs {now}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header(headers, "x-keel-signature"), want);
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json, serde_json::to_value(&sink.alerts()[0]).unwrap());
    assert_eq!(json["route"], "chat");
    assert_eq!(json["signal"], "refusal");
    assert_eq!(
        (json["baseline_n"].as_u64(), json["window_n"].as_u64()),
        (Some(20), Some(10))
    );
    assert!(json["statistic"].as_f64() > json["threshold"].as_f64());
    assert_eq!(monitor.stats().webhook_failed, 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let (url, r) = receiver(&[500, 500]).await;
    let (monitor, handle, _) = alert_once(url).await;
    wait_for("delivery", || monitor.stats().webhook_delivered == 1).await;
    let got = r.got();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|(_, b)| b == &got[0].1),
        "same body every attempt"
    );
    assert_eq!(monitor.stats().webhook_failed, 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (url, r) = receiver(&[400]).await;
    let (monitor, handle, _) = alert_once(url).await;
    wait_for("the failure", || monitor.stats().webhook_failed == 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(r.got().len(), 1);
    assert_eq!(monitor.stats().webhook_delivered, 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn delivery_gives_up_after_the_configured_attempts() {
    let (url, r) = receiver(&[503; 10]).await;
    let (monitor, handle, _) = alert_once(url).await;
    wait_for("the failure", || monitor.stats().webhook_failed == 1).await;
    assert_eq!(r.got().len(), 4);
    assert_eq!(monitor.stats().webhook_delivered, 0);
    handle.shutdown().await;
}

#[tokio::test]
async fn network_errors_are_retried_then_counted() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let (monitor, handle, _) = alert_once(url).await;
    wait_for("the failure", || monitor.stats().webhook_failed == 1).await;
    assert_eq!(monitor.stats().webhook_delivered, 0);
    handle.shutdown().await;
}
