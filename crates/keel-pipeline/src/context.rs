//! `RequestContext`: the facts about one request every stage may read.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The tenant of the API key; `None` when keel runs without keys (loopback only).
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub started: Instant,
    pub started_at_ms: i64,
    /// No attempt starts after this, and none runs past it.
    pub deadline: Instant,
}

impl RequestContext {
    pub fn new(
        request_id: String,
        tenant: Option<String>,
        key_id: Option<String>,
        timeout: Duration,
    ) -> Self {
        let started = Instant::now();
        let started_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self {
            request_id,
            tenant,
            key_id,
            started,
            started_at_ms,
            deadline: started + timeout,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }
}
