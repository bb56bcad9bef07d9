//! Signed webhook deliveries of drift alerts.
//!
//! Each alert is POSTed as JSON (the [`DriftAlert`] itself) with
//! - `content-type: application/json`,
//! - `x-keel-timestamp: <unix seconds>` (fresh per attempt, so receivers can reject replays),
//! - `x-keel-signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
//!
//! Deliveries run one at a time on their own task behind a bounded queue: a slow or dead
//! receiver never slows the monitor (a full queue counts the alert as failed). Network errors,
//! 5xx and 429 are retried up to `webhook_attempts` in all, with exponential backoff
//! ([`backoff`]); other statuses are final. Redirects are not followed. On shutdown, queued
//! deliveries are abandoned.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::monitor::Counters;
use super::{DriftAlert, DriftError};

/// Alerts waiting for delivery; beyond this an alert counts as failed.
const QUEUE: usize = 64;
/// Deadline of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff before the first retry; doubles per retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Signs webhook bodies. Holds the key only inside the HMAC state; `Debug` shows nothing.
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

impl Signer {
    /// An empty secret is refused: it would make every signature forgeable.
    pub fn new(secret: &[u8]) -> Result<Self, DriftError> {
        if secret.is_empty() {
            return Err(DriftError::EmptySecret);
        }
        let mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(|_| DriftError::EmptySecret)?;
        Ok(Self { mac })
    }

    /// `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
    pub fn sign(&self, timestamp: u64, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// The monitor's end of the delivery queue.
pub(crate) struct WebhookSender {
    tx: mpsc::Sender<DriftAlert>,
    counters: Arc<Counters>,
}

impl WebhookSender {
    /// Queues an alert without waiting; a full queue counts it as failed.
    pub fn send(&self, alert: &DriftAlert) {
        if self.tx.try_send(alert.clone()).is_err() {
            self.counters.webhook_failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "keel::drift",
                route = %alert.route,
                signal = alert.signal,
                "drift webhook queue full; alert not delivered"
            );
        }
    }
}

struct Delivery {
    client: reqwest::Client,
    url: String,
    signer: Signer,
    attempts: u32,
    counters: Arc<Counters>,
}

/// Starts the delivery task.
pub(crate) fn spawn(
    url: String,
    signer: Signer,
    attempts: u32,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Result<(WebhookSender, JoinHandle<()>), DriftError> {
    let client = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| DriftError::Http(e.to_string()))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let d = Delivery {
        client,
        url,
        signer,
        attempts: attempts.max(1),
        counters: Arc::clone(&counters),
    };
    let task = tracker.spawn(d.run(rx, cancel));
    Ok((WebhookSender { tx, counters }, task))
}

impl Delivery {
    async fn run(self, mut rx: mpsc::Receiver<DriftAlert>, cancel: CancellationToken) {
        loop {
            let alert = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                a = rx.recv() => match a {
                    Some(a) => a,
                    None => return,
                },
            };
            let delivered = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                ok = self.deliver(&alert) => ok,
            };
            let counter = if delivered {
                &self.counters.webhook_delivered
            } else {
                &self.counters.webhook_failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// True once a 2xx arrives; false after a final status or the last attempt.
    async fn deliver(&self, alert: &DriftAlert) -> bool {
        let body = match serde_json::to_vec(alert) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(target: "keel::drift", error = %e, "drift alert not serialisable");
                return false;
            }
        };
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let sent = self
                .client
                .post(&self.url)
                .header(CONTENT_TYPE, "application/json")
                .header("x-keel-timestamp", ts.to_string())
                .header("x-keel-signature", self.signer.sign(ts, &body))
                .body(body.clone())
                .send()
                .await;
            let retry_after = match sent {
                Ok(r) if r.status().is_success() => return true,
                Ok(r) if retryable(r.status()) => {
                    last = format!("status {}", r.status().as_u16());
                    retry_after(r.headers())
                }
                Ok(r) => {
                    tracing::warn!(
                        target: "keel::drift",
                        route = %alert.route,
                        signal = alert.signal,
                        status = r.status().as_u16(),
                        "drift webhook refused the alert; not retried"
                    );
                    return false;
                }
                Err(e) => {
                    // Without the URL: it may carry a token.
                    last = e.without_url().to_string();
                    None
                }
            };
            if attempt < self.attempts {
                tokio::time::sleep(backoff(attempt, retry_after)).await;
            }
        }
        tracing::warn!(
            target: "keel::drift",
            route = %alert.route,
            signal = alert.signal,
            attempts = self.attempts,
            last_error = %last,
            "drift webhook delivery failed"
        );
        false
    }
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// `Retry-After` in seconds (the HTTP-date form is ignored), capped at [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Wait before retry number `attempt` (1-based): `200 ms · 2^(attempt−1)`, capped at 10 s,
/// scaled by a random factor in [0.5, 1] so receivers recovering from an outage are not hit in
/// lockstep; at least the server's `Retry-After` when it sent one.
pub(crate) fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = FIRST_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
    retry_after.map_or(jittered, |r| r.max(jittered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        let s = Signer::new(b"key").unwrap();
        // HMAC-SHA256("key", "1700000000.{}"), computed independently.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(s.sign(1_700_000_000, b"{}"), want);
        assert_ne!(s.sign(1_700_000_001, b"{}"), want);
        assert!(matches!(Signer::new(b""), Err(DriftError::EmptySecret)));
        assert_eq!(format!("{s:?}"), "Signer(<redacted>)");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        for _ in 0..50 {
            let b1 = backoff(1, None);
            assert!(b1 >= Duration::from_millis(100) && b1 <= Duration::from_millis(200));
            let b3 = backoff(3, None);
            assert!(b3 >= Duration::from_millis(400) && b3 <= Duration::from_millis(800));
            assert!(backoff(40, None) <= MAX_BACKOFF);
        }
        assert_eq!(
            backoff(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn retry_classes() {
        assert!(retryable(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(retryable(StatusCode::SERVICE_UNAVAILABLE));
        assert!(retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(StatusCode::BAD_REQUEST));
        assert!(!retryable(StatusCode::UNAUTHORIZED));
        assert!(!retryable(StatusCode::MOVED_PERMANENTLY));
    }
}
