//! `RequestContext`: the facts about one request every stage may read.

use keel_observe::spans::TraceIds;
use keel_types::trace::TraceParent;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    /// The tenant of the API key; `None` when keel runs without keys (loopback only).
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    /// When the request arrived at the server (before authentication); the trace starts here.
    pub received: Instant,
    /// When the pipeline took the request over (after authentication).
    pub started: Instant,
    pub started_at_ms: i64,
    /// This request's trace and root span, continuing an incoming `traceparent`.
    pub trace: TraceIds,
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
            received: started,
            started,
            started_at_ms,
            trace: TraceIds::new(None),
            deadline: started + timeout,
        }
    }

    /// Sets when the request arrived and the caller's trace context, as the server saw them.
    pub fn with_arrival(mut self, received: Instant, parent: Option<TraceParent>) -> Self {
        self.received = received.min(self.started);
        self.trace = TraceIds::new(parent);
        self
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }
}
