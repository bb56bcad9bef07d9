//! Tail sampling of traces: which finished requests keep their trace (trace store and OTLP).
//!
//! Every request is still counted in metrics, fed to the drift monitor and written to the
//! request log; sampling only bounds the cost of the full trace. A request is *notable* when it
//! failed, fell back to another model, had a policy action or a trust score below 0.5: notable
//! traces are always kept, up to `keep_notable_per_second`. Ordinary traces are kept with
//! probability `rate`, up to `max_per_second`. Both caps are token buckets (burst = one second
//! of budget), so a quiet keel keeps every trace and a saturated one keeps a bounded number.

use keel_config::SamplingConfig;
use keel_store::RequestRecord;
use std::sync::Mutex;
use std::time::Instant;

/// Why a trace was kept or dropped (for tests and the metrics of sampling).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    KeepNotable,
    Keep,
    /// Dropped by `rate`.
    DropRate,
    /// Dropped because the per-second budget was spent.
    DropBudget,
}

impl Decision {
    pub fn kept(self) -> bool {
        matches!(self, Self::KeepNotable | Self::Keep)
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_second: f64, now: Instant) -> Self {
        Self {
            tokens: per_second.max(1.0),
            per_second,
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_second).min(self.per_second.max(1.0));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
pub struct Sampler {
    rate: f64,
    buckets: Mutex<(Bucket, Bucket)>,
}

impl Sampler {
    pub fn new(cfg: &SamplingConfig) -> Self {
        let now = Instant::now();
        Self {
            rate: cfg.rate,
            buckets: Mutex::new((
                Bucket::new(cfg.keep_notable_per_second, now),
                Bucket::new(cfg.max_per_second, now),
            )),
        }
    }

    /// Whether a finished request's trace is kept.
    pub fn decide(&self, record: &RequestRecord, signals: Signals<'_>) -> Decision {
        self.decide_at(record, signals, Instant::now(), rand::random::<f64>())
    }

    /// [`Self::decide`] with the clock and the random draw given (tests).
    pub fn decide_at(
        &self,
        record: &RequestRecord,
        signals: Signals<'_>,
        now: Instant,
        draw: f64,
    ) -> Decision {
        let notable = is_notable(record, signals);
        if !notable && draw >= self.rate {
            return Decision::DropRate;
        }
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (notable, notable && b.0.take(now)) {
            (true, true) => Decision::KeepNotable,
            // A notable trace over its own budget competes for the ordinary one.
            _ if b.1.take(now) => Decision::Keep,
            _ => Decision::DropBudget,
        }
    }
}

/// What later stages said about the answer, as far as sampling cares.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals<'a> {
    pub trust_score: Option<f64>,
    pub policy_action: Option<&'a str>,
}

/// Failed, fell back, acted on by policy, or answered with low trust.
pub fn is_notable(record: &RequestRecord, signals: Signals<'_>) -> bool {
    record.status >= 400
        || record.error_class.is_some()
        || record.attempts.len() > 1
        || signals.policy_action.is_some_and(|a| a != "allow")
        || signals.trust_score.is_some_and(|t| t < 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(status: u16) -> RequestRecord {
        RequestRecord {
            id: "req_1".into(),
            started_at_ms: 0,
            tenant: None,
            key_id: None,
            endpoint: "chat.completions".into(),
            model_requested: "m".into(),
            route: Some("m".into()),
            model_served: None,
            route_reason: None,
            stream: false,
            attempts: Vec::new(),
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            ttft_ms: None,
            total_ms: 1.0,
            status,
            error_class: None,
            error_message: None,
        }
    }

    fn trace() -> Signals<'static> {
        Signals::default()
    }

    fn cfg(max: f64, notable: f64, rate: f64) -> SamplingConfig {
        SamplingConfig {
            max_per_second: max,
            keep_notable_per_second: notable,
            rate,
        }
    }

    #[test]
    fn ordinary_traces_are_capped_per_second_and_notable_ones_kept() {
        let s = Sampler::new(&cfg(10.0, 100.0, 1.0));
        let t0 = Instant::now();
        let (ok, err, t) = (record(200), record(502), trace());
        // A burst of 50 ordinary requests in the same instant: one second of budget kept.
        let kept = (0..50)
            .filter(|_| s.decide_at(&ok, t, t0, 0.0).kept())
            .count();
        assert_eq!(kept, 10);
        // Failures are still kept while the ordinary budget is spent.
        assert_eq!(s.decide_at(&err, t, t0, 0.0), Decision::KeepNotable);
        // Half a second later, five more ordinary ones fit.
        let later = t0 + Duration::from_millis(500);
        let kept = (0..50)
            .filter(|_| s.decide_at(&ok, t, later, 0.0).kept())
            .count();
        assert_eq!(kept, 5);
    }

    #[test]
    fn rate_drops_ordinary_traces_but_never_notable_ones() {
        let s = Sampler::new(&cfg(1e9, 1e9, 0.25));
        let t0 = Instant::now();
        let (ok, t) = (record(200), trace());
        assert_eq!(s.decide_at(&ok, t, t0, 0.30), Decision::DropRate);
        assert_eq!(s.decide_at(&ok, t, t0, 0.20), Decision::Keep);
        let mut fell_back = record(200);
        let attempt = keel_store::AttemptRecord {
            model: "a".into(),
            provider: "p".into(),
            outcome: "status_503".into(),
            http_status: Some(503),
            latency_ms: 1.0,
            error: None,
        };
        fell_back.attempts = vec![attempt.clone(), attempt];
        assert!(is_notable(&fell_back, t));
        assert_eq!(s.decide_at(&fell_back, t, t0, 0.99), Decision::KeepNotable);
        let low = Signals {
            trust_score: Some(0.2),
            policy_action: None,
        };
        assert_eq!(s.decide_at(&ok, low, t0, 0.99), Decision::KeepNotable);
    }
}
