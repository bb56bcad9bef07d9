//! A circuit breaker per deployment (per model in `[models]`), configured by
//! [`CircuitConfig`]. One [`Breaker`] is shared by every candidate of its model.
//!
//! - Closed: every call is allowed; outcomes are counted in a rolling `window` (ten buckets
//!   of a tenth of it each, so memory is constant). When at least `min_requests` outcomes are
//!   in the window and `failures / total >= failure_rate`, the circuit opens.
//! - Open: no call is allowed until `cooldown` has passed since it opened; then the first
//!   [`allow`](Breaker::allow) turns it half-open.
//! - Half-open: up to `half_open_probes` trial calls at once. A success closes the circuit
//!   and empties the window; a failure opens it for another cooldown; a neutral outcome (a
//!   client error) frees the probe's slot. Probes that never report (their request was
//!   dropped) are forgotten after a cooldown, so a lost probe cannot wedge the circuit.
//!
//! Only faults saying the deployment is unhealthy count as failures
//! ([`counts_as_failure`]); a success reported while open (a call admitted before the circuit
//! opened, or one tried anyway) changes nothing: only probes close an open circuit.
//! Time is passed in (`now`), so the state machine is tested without sleeping.

use keel_config::CircuitConfig;
use keel_providers::ProviderError;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets of the rolling window.
const BUCKETS: usize = 10;

/// What a breaker does with the next call; the value is `keel_circuit_state`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    HalfOpen,
    Open,
}

impl CircuitState {
    /// 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// Whether `e` says the deployment is unhealthy: 408, 429 and 5xx statuses, connection
/// failures, timeouts, broken or malformed answers, an overloaded or loading local model.
/// Client errors (other 4xx, context length, unsupported parameters) say nothing about it.
pub fn counts_as_failure(e: &ProviderError) -> bool {
    match e {
        ProviderError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
        ProviderError::ContextLength { .. }
        | ProviderError::UpstreamContextLength(_)
        | ProviderError::Unsupported { .. }
        | ProviderError::InvalidRequest { .. } => false,
        ProviderError::Timeout(_)
        | ProviderError::Connect(_)
        | ProviderError::Stream(_)
        | ProviderError::InvalidResponse(_)
        | ProviderError::Overloaded
        | ProviderError::NotReady
        | ProviderError::Local(_) => true,
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which tenth-of-a-window since the breaker's origin this bucket counts.
    index: u64,
    total: u32,
    failures: u32,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Closed,
    Open {
        since: Instant,
    },
    /// `probes` trial calls admitted in the round that started at `since`.
    HalfOpen {
        probes: u32,
        since: Instant,
    },
}

#[derive(Debug)]
struct State {
    mode: Mode,
    buckets: [Bucket; BUCKETS],
}

#[derive(Debug)]
pub struct Breaker {
    config: CircuitConfig,
    /// Bucket indexes count from here.
    origin: Instant,
    bucket_len: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker with an empty window.
    pub fn new(config: CircuitConfig) -> Self {
        let bucket_len = (config.window / BUCKETS as u32).max(Duration::from_nanos(1));
        Self {
            config,
            origin: Instant::now(),
            bucket_len,
            state: Mutex::new(State {
                mode: Mode::Closed,
                buckets: [Bucket::default(); BUCKETS],
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bucket_index(&self, now: Instant) -> u64 {
        let nanos =
            now.saturating_duration_since(self.origin).as_nanos() / self.bucket_len.as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// The state as of `now`, without changing it (an open circuit past its cooldown reads
    /// as half-open).
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.lock().mode {
            Mode::Closed => CircuitState::Closed,
            Mode::HalfOpen { .. } => CircuitState::HalfOpen,
            Mode::Open { since } if self.cooled(since, now) => CircuitState::HalfOpen,
            Mode::Open { .. } => CircuitState::Open,
        }
    }

    fn cooled(&self, since: Instant, now: Instant) -> bool {
        now.saturating_duration_since(since) >= self.config.cooldown
    }

    /// Whether a call may go to this deployment now. In half-open, a `true` takes one of the
    /// probe slots: the caller must report the call's outcome.
    pub fn allow(&self, now: Instant) -> bool {
        let mut s = self.lock();
        match s.mode {
            Mode::Closed => true,
            Mode::Open { since } => {
                if self.cooled(since, now) {
                    s.mode = Mode::HalfOpen {
                        probes: 1,
                        since: now,
                    };
                    true
                } else {
                    false
                }
            }
            Mode::HalfOpen { probes, since } => {
                if probes < self.config.half_open_probes {
                    s.mode = Mode::HalfOpen {
                        probes: probes + 1,
                        since,
                    };
                    true
                } else if self.cooled(since, now) {
                    // The probes of this round never reported: start a new round.
                    s.mode = Mode::HalfOpen {
                        probes: 1,
                        since: now,
                    };
                    true
                } else {
                    false
                }
            }
        }
    }

    /// A call answered.
    pub fn record_success(&self, now: Instant) {
        let mut s = self.lock();
        match s.mode {
            Mode::Closed => self.count(&mut s, now, false),
            Mode::HalfOpen { .. } => {
                s.mode = Mode::Closed;
                s.buckets = [Bucket::default(); BUCKETS];
            }
            Mode::Open { .. } => {}
        }
    }

    /// A call failed in a way that says the deployment is unhealthy.
    pub fn record_failure(&self, now: Instant) {
        let mut s = self.lock();
        match s.mode {
            Mode::Closed => {
                self.count(&mut s, now, true);
                let (total, failures) = self.window(&s, now);
                if total >= self.config.min_requests
                    && f64::from(failures) >= self.config.failure_rate * f64::from(total)
                {
                    s.mode = Mode::Open { since: now };
                }
            }
            Mode::HalfOpen { .. } => s.mode = Mode::Open { since: now },
            Mode::Open { .. } => {}
        }
    }

    /// A call that says nothing about the deployment's health (a client error, or the
    /// request's own deadline): frees its probe slot when half-open.
    pub fn record_neutral(&self) {
        let mut s = self.lock();
        if let Mode::HalfOpen { probes, since } = s.mode {
            s.mode = Mode::HalfOpen {
                probes: probes.saturating_sub(1),
                since,
            };
        }
    }

    /// A call failed with `e`: a failure or neutral per [`counts_as_failure`].
    pub fn record_error(&self, now: Instant, e: &ProviderError) {
        if counts_as_failure(e) {
            self.record_failure(now);
        } else {
            self.record_neutral();
        }
    }

    fn count(&self, s: &mut State, now: Instant, failure: bool) {
        let index = self.bucket_index(now);
        let b = &mut s.buckets[(index % BUCKETS as u64) as usize];
        if b.index != index {
            *b = Bucket {
                index,
                total: 0,
                failures: 0,
            };
        }
        b.total = b.total.saturating_add(1);
        if failure {
            b.failures = b.failures.saturating_add(1);
        }
    }

    /// (outcomes, failures) in the window ending at `now`.
    fn window(&self, s: &State, now: Instant) -> (u32, u32) {
        let current = self.bucket_index(now);
        s.buckets
            .iter()
            .filter(|b| b.index <= current && current - b.index < BUCKETS as u64)
            .fold((0u32, 0u32), |(t, f), b| {
                (t.saturating_add(b.total), f.saturating_add(b.failures))
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> CircuitConfig {
        CircuitConfig {
            min_requests: 4,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            cooldown: Duration::from_secs(5),
            half_open_probes: 1,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A breaker opened at `t0 + 3 ms` by four failures.
    fn opened(config: CircuitConfig) -> (Breaker, Instant) {
        let b = Breaker::new(config);
        let t0 = Instant::now();
        for i in 0..4 {
            b.record_failure(t0 + ms(i));
        }
        assert_eq!(b.state(t0 + ms(4)), CircuitState::Open);
        (b, t0)
    }

    #[test]
    fn opens_only_after_min_requests() {
        let b = Breaker::new(cfg());
        let t0 = Instant::now();
        for i in 0..3 {
            b.record_failure(t0 + ms(i));
            assert!(b.allow(t0 + ms(i)), "{i} failures are below min_requests");
            assert_eq!(b.state(t0 + ms(i)), CircuitState::Closed);
        }
        b.record_failure(t0 + ms(3));
        assert_eq!(b.state(t0 + ms(3)), CircuitState::Open);
        assert!(!b.allow(t0 + ms(4)));
    }

    #[test]
    fn opens_at_the_failure_rate_within_the_window() {
        let b = Breaker::new(cfg());
        let t0 = Instant::now();
        // 1 failure in 4: below 0.5.
        b.record_success(t0);
        b.record_success(t0);
        b.record_success(t0);
        b.record_failure(t0);
        assert_eq!(b.state(t0), CircuitState::Closed);
        // 2 in 5: still below.
        b.record_failure(t0 + ms(1));
        assert_eq!(b.state(t0), CircuitState::Closed);
        // 3 in 6: exactly the rate opens.
        b.record_failure(t0 + ms(2));
        assert_eq!(b.state(t0 + ms(2)), CircuitState::Open);
    }

    #[test]
    fn outcomes_leave_the_window() {
        let b = Breaker::new(cfg());
        let t0 = Instant::now();
        for _ in 0..3 {
            b.record_failure(t0);
        }
        // 11 s later the first three failures are out of the 10 s window.
        let later = t0 + Duration::from_secs(11);
        b.record_failure(later);
        assert_eq!(b.state(later), CircuitState::Closed);
        for i in 1..3 {
            b.record_failure(later + ms(i));
        }
        assert_eq!(b.state(later), CircuitState::Closed, "3 in the window");
        b.record_failure(later + ms(3));
        assert_eq!(b.state(later + ms(3)), CircuitState::Open);
    }

    #[test]
    fn cooldown_leads_to_half_open() {
        let (b, t0) = opened(cfg());
        let before = t0 + ms(3) + Duration::from_secs(5) - ms(1);
        assert!(!b.allow(before));
        assert_eq!(b.state(before), CircuitState::Open);
        let after = t0 + ms(3) + Duration::from_secs(5);
        assert_eq!(b.state(after), CircuitState::HalfOpen);
        assert!(b.allow(after), "the first probe");
        assert_eq!(b.state(after), CircuitState::HalfOpen);
    }

    #[test]
    fn half_open_admits_only_its_probes() {
        let (b, t0) = opened(CircuitConfig {
            half_open_probes: 2,
            ..cfg()
        });
        let t = t0 + Duration::from_secs(6);
        assert!(b.allow(t));
        assert!(b.allow(t));
        assert!(!b.allow(t), "two probes at most");
        // A neutral outcome frees a slot.
        b.record_neutral();
        assert!(b.allow(t));
        assert!(!b.allow(t));
        // Probes that never report are forgotten after a cooldown.
        assert!(!b.allow(t + Duration::from_secs(4)));
        assert!(b.allow(t + Duration::from_secs(5)));
    }

    #[test]
    fn a_probe_success_closes_and_resets_the_window() {
        let (b, t0) = opened(cfg());
        let t = t0 + Duration::from_secs(6);
        assert!(b.allow(t));
        b.record_success(t);
        assert_eq!(b.state(t), CircuitState::Closed);
        assert!(b.allow(t));
        // The window was emptied: three more failures do not reopen it.
        for i in 0..3 {
            b.record_failure(t + ms(i));
        }
        assert_eq!(b.state(t + ms(3)), CircuitState::Closed);
    }

    #[test]
    fn a_probe_failure_reopens_for_another_cooldown() {
        let (b, t0) = opened(cfg());
        let t = t0 + Duration::from_secs(6);
        assert!(b.allow(t));
        b.record_failure(t + ms(10));
        assert_eq!(b.state(t + ms(10)), CircuitState::Open);
        assert!(!b.allow(t + Duration::from_secs(5)));
        assert!(b.allow(t + ms(10) + Duration::from_secs(5)));
    }

    #[test]
    fn a_success_while_open_changes_nothing() {
        let (b, t0) = opened(cfg());
        b.record_success(t0 + ms(5));
        assert_eq!(b.state(t0 + ms(5)), CircuitState::Open);
        assert!(!b.allow(t0 + ms(6)));
    }

    #[test]
    fn client_errors_are_neither_success_nor_failure() {
        let status = |s| ProviderError::Status {
            status: s,
            message: String::new(),
            retry_after: None,
        };
        for s in [400, 401, 404, 409, 413, 422] {
            assert!(!counts_as_failure(&status(s)), "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(counts_as_failure(&status(s)), "{s}");
        }
        assert!(counts_as_failure(&ProviderError::Timeout(ms(1))));
        assert!(counts_as_failure(&ProviderError::Connect("reset".into())));
        assert!(counts_as_failure(&ProviderError::Stream("cut".into())));

        let b = Breaker::new(cfg());
        let t0 = Instant::now();
        for i in 0..10 {
            b.record_error(t0 + ms(i), &status(400));
        }
        assert_eq!(b.state(t0 + ms(10)), CircuitState::Closed);
        // Nor do they dilute the failure rate: 4 faults among 10 client errors open it.
        for i in 0..4 {
            b.record_error(t0 + ms(20 + i), &status(503));
        }
        assert_eq!(b.state(t0 + ms(30)), CircuitState::Open);
    }

    #[test]
    fn gauge_values() {
        assert_eq!(CircuitState::Closed.gauge_value(), 0);
        assert_eq!(CircuitState::HalfOpen.gauge_value(), 1);
        assert_eq!(CircuitState::Open.gauge_value(), 2);
    }
}
