//! The one-node backend: counters in a map behind one mutex, so a reservation checks and
//! increments every counter under the same lock. A counter keeps only its current window;
//! a new window replaces it, so memory stays bounded by the number of configured scopes.

use crate::counter::{Counter, Held, Outcome};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

#[derive(Default)]
pub struct Memory {
    /// base → (window id, total).
    counters: Mutex<HashMap<String, (i64, i64)>>,
    /// (base, window id) of soft alerts already raised.
    alerted: Mutex<HashSet<(String, i64)>>,
}

impl Memory {
    pub fn reserve(&self, counters: &[Counter], now: i64) -> Outcome {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let current =
            |map: &HashMap<String, (i64, i64)>, c: &Counter, wid: i64| match map.get(&c.base) {
                Some((w, v)) if *w == wid => *v,
                _ => 0,
            };
        for (index, c) in counters.iter().enumerate() {
            let wid = c.window.id(now);
            if let Some(limit) = c.limit
                && current(&map, c, wid) + c.amount > limit
            {
                return Outcome::Rejected { index, now };
            }
        }
        let mut held = Vec::with_capacity(counters.len());
        let mut values = Vec::with_capacity(counters.len());
        for c in counters {
            let wid = c.window.id(now);
            let v = current(&map, c, wid) + c.amount;
            map.insert(c.base.clone(), (wid, v));
            held.push(Held {
                base: c.base.clone(),
                window_id: wid,
                amount: c.amount,
                metric: c.metric,
            });
            values.push(v);
        }
        Outcome::Reserved { held, values }
    }

    /// Adds `delta` to each held counter still in the window it was reserved in (a counter
    /// whose window has ended has nothing to refund).
    pub fn settle(&self, deltas: &[(&Held, i64)]) {
        let mut map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for (h, delta) in deltas {
            if let Some((w, v)) = map.get_mut(&h.base)
                && *w == h.window_id
            {
                *v = (*v + delta).max(0);
            }
        }
    }

    /// True the first time it is asked for this counter and window.
    pub fn mark_alert(&self, base: &str, window_id: i64) -> bool {
        self.alerted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((base.to_owned(), window_id))
    }

    /// The current total of a counter in window `window_id` (tests, diagnostics).
    pub fn value(&self, base: &str, window_id: i64) -> i64 {
        let map = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(base) {
            Some((w, v)) if *w == window_id => *v,
            _ => 0,
        }
    }
}
