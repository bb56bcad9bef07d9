//! Load shedding on this node: bounded requests in flight, globally (`admission.max_in_flight`)
//! and per route (`[admission.routes.X] max_in_flight`). A priority class may fill only its
//! share of a bound (`priority_shares`), so under pressure low requests are refused first and
//! high ones still find room. In-flight counts are per node on purpose: they protect this
//! node's memory and connections, which another node's load does not use.

use keel_config::Priority;
use keel_config::admission::PriorityShares;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One bound: at most `max` in flight.
struct Bound {
    max: usize,
    current: Arc<AtomicUsize>,
}

impl Bound {
    fn new(max: usize) -> Self {
        Self {
            max,
            current: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many may be in flight when a request of this class arrives (at least one).
    fn allowed(&self, share: f64) -> usize {
        ((self.max as f64 * share).floor() as usize).clamp(1, self.max)
    }

    /// Takes one slot if fewer than `allowed` are in use.
    fn try_take(&self, allowed: usize) -> Option<Arc<AtomicUsize>> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < allowed).then_some(n + 1)
            })
            .ok()
            .map(|_| self.current.clone())
    }
}

/// Which bound refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedScope {
    Global,
    Route,
}

impl ShedScope {
    /// The `reason` label of `keel_shed_requests_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Global => "admission_in_flight",
            Self::Route => "route_in_flight",
        }
    }
}

pub struct Shedder {
    global: Option<Bound>,
    routes: HashMap<String, Bound>,
    shares: PriorityShares,
}

/// Slots held by one request; dropping it frees them.
#[derive(Default)]
pub struct InFlight(Vec<Arc<AtomicUsize>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        for c in &self.0 {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Shedder {
    pub fn new(
        global: Option<usize>,
        routes: impl IntoIterator<Item = (String, usize)>,
        shares: PriorityShares,
    ) -> Self {
        Self {
            global: global.map(Bound::new),
            routes: routes
                .into_iter()
                .map(|(r, max)| (r, Bound::new(max)))
                .collect(),
            shares,
        }
    }

    /// A slot in the route's bound and the global one, or which bound is full.
    pub fn try_acquire(&self, route: &str, priority: Priority) -> Result<InFlight, ShedScope> {
        let share = self.shares.of(priority);
        let mut held = InFlight::default();
        if let Some(b) = self.routes.get(route) {
            held.0
                .push(b.try_take(b.allowed(share)).ok_or(ShedScope::Route)?);
        }
        if let Some(b) = &self.global {
            // On refusal `held` drops and frees the route slot taken above.
            held.0
                .push(b.try_take(b.allowed(share)).ok_or(ShedScope::Global)?);
        }
        Ok(held)
    }

    /// Requests in flight on a route's bound (tests, diagnostics).
    pub fn in_flight(&self, route: &str) -> usize {
        self.routes
            .get(route)
            .map_or(0, |b| b.current.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_priority_is_shed_first_and_high_may_fill_the_bound() {
        let s = Shedder::new(None, [("r".to_owned(), 4)], PriorityShares::default());
        // low: 50% of 4 = 2; normal: 80% = 3; high: 4.
        let a = s.try_acquire("r", Priority::Low).unwrap();
        let b = s.try_acquire("r", Priority::Low).unwrap();
        assert_eq!(
            s.try_acquire("r", Priority::Low).err(),
            Some(ShedScope::Route)
        );
        let c = s.try_acquire("r", Priority::Normal).unwrap();
        assert!(s.try_acquire("r", Priority::Normal).is_err());
        let d = s.try_acquire("r", Priority::High).unwrap();
        assert!(s.try_acquire("r", Priority::High).is_err());
        assert_eq!(s.in_flight("r"), 4);
        drop((a, b, c, d));
        assert_eq!(s.in_flight("r"), 0);
        assert!(s.try_acquire("other", Priority::Low).is_ok());
    }

    #[test]
    fn a_global_refusal_frees_the_route_slot() {
        let s = Shedder::new(Some(1), [("r".to_owned(), 2)], PriorityShares::default());
        let _a = s.try_acquire("x", Priority::High).unwrap();
        assert_eq!(
            s.try_acquire("r", Priority::High).err(),
            Some(ShedScope::Global)
        );
        assert_eq!(s.in_flight("r"), 0);
    }
}
