//! Least-latency routing: a decaying peak-EWMA of each model's attempt latency (one
//! [`LatencyStats`] per model, shared by its candidates like its breaker), and the power of
//! two choices over `ewma × (in flight + 1)`.
//!
//! Peak-EWMA: a latency above the estimate replaces it at once (a model that got slow is
//! avoided immediately); one below pulls it down by the weight `1 - e^(-Δt/τ)`, where `Δt`
//! is the time since the last observation and `τ` the model's `latency_decay`. A model never
//! measured has no estimate and is tried first, so every model gets measured.

use crate::catalog::Candidate;
use rand::Rng;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct LatencyStats {
    decay: Duration,
    /// (estimate in ms, when it was last updated); `None` until the first observation.
    ewma: Mutex<Option<(f64, Instant)>>,
    in_flight: AtomicU32,
}

/// Counts one attempt in flight until dropped.
pub struct InFlight<'a>(&'a LatencyStats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LatencyStats {
    pub fn new(decay: Duration) -> Self {
        Self {
            decay: decay.max(Duration::from_millis(1)),
            ewma: Mutex::new(None),
            in_flight: AtomicU32::new(0),
        }
    }

    /// Marks an attempt as started; it stops counting when the guard drops.
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Records the latency of a successful attempt that ended at `now`.
    pub fn observe(&self, latency: Duration, now: Instant) {
        let ms = latency.as_secs_f64() * 1000.0;
        let mut ewma = self.ewma.lock().unwrap_or_else(PoisonError::into_inner);
        let next = match *ewma {
            Some((est, _)) if ms > est => ms,
            Some((est, at)) => {
                let dt = now.saturating_duration_since(at).as_secs_f64();
                let w = (-dt / self.decay.as_secs_f64()).exp();
                est * w + ms * (1.0 - w)
            }
            None => ms,
        };
        *ewma = Some((next, now));
    }

    /// The latency estimate in milliseconds, `None` before the first observation.
    pub fn estimate_ms(&self) -> Option<f64> {
        self.ewma
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|(est, _)| est)
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// What P2C compares: `estimate × (in flight + 1)`; `None` when never measured.
    pub fn load_cost(&self) -> Option<f64> {
        self.estimate_ms()
            .map(|est| est * f64::from(self.in_flight() + 1))
    }
}

fn describe(c: &Candidate) -> String {
    match c.latency.estimate_ms() {
        Some(est) => format!("{} {est:.1} ms x {}", c.name, c.latency.in_flight() + 1),
        None => format!("{} unmeasured", c.name),
    }
}

/// Orders `candidates` (at least one) for least-latency routing: the first is the P2C
/// choice (or the first never-measured model), the rest follow by ascending cost.
pub fn order(mut candidates: Vec<Candidate>) -> (Vec<Candidate>, String) {
    let cost = |c: &Candidate| c.latency.load_cost().unwrap_or(f64::NEG_INFINITY);
    // Stable: unmeasured models first in route order, then by cost.
    candidates.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
    let Some(first) = candidates.first() else {
        return (candidates, String::new());
    };
    if first.latency.estimate_ms().is_none() {
        let reason = format!(
            "least_latency: {} has no latency measured yet, so it goes first",
            first.name
        );
        return (candidates, reason);
    }
    if candidates.len() == 1 {
        let reason = format!("least_latency: {} is the only candidate", describe(first));
        return (candidates, reason);
    }
    let mut rng = rand::rng();
    let i = rng.random_range(0..candidates.len());
    let mut j = rng.random_range(0..candidates.len() - 1);
    if j >= i {
        j += 1;
    }
    let (lo, hi) = (i.min(j), i.max(j));
    // Sorted by cost: the lower index is the cheaper (or equal) of the two.
    let chosen = candidates.remove(lo);
    let reason = format!(
        "least_latency: power of two choices between {} and {}: {} is cheaper",
        describe(&chosen),
        describe(&candidates[hi - 1]),
        chosen.name
    );
    candidates.insert(0, chosen);
    (candidates, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slower_answer_counts_at_once_and_faster_ones_decay_in() {
        let s = LatencyStats::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(s.estimate_ms(), None);
        s.observe(Duration::from_millis(100), t0);
        assert_eq!(s.estimate_ms(), Some(100.0));
        s.observe(Duration::from_millis(300), t0 + Duration::from_secs(1));
        assert_eq!(s.estimate_ms(), Some(300.0), "a peak replaces the estimate");
        // One time constant later, a 100 ms answer moves it (1 - 1/e) of the way.
        s.observe(Duration::from_millis(100), t0 + Duration::from_secs(11));
        let est = s.estimate_ms().unwrap();
        let want = 300.0 * (-1.0f64).exp() + 100.0 * (1.0 - (-1.0f64).exp());
        assert!((est - want).abs() < 1e-6, "{est} vs {want}");
    }

    #[test]
    fn cost_grows_with_requests_in_flight() {
        let s = LatencyStats::new(Duration::from_secs(10));
        s.observe(Duration::from_millis(10), Instant::now());
        assert_eq!(s.load_cost(), Some(10.0));
        let a = s.start();
        let b = s.start();
        assert_eq!(s.load_cost(), Some(30.0));
        drop(a);
        drop(b);
        assert_eq!(s.in_flight(), 0);
    }
}
