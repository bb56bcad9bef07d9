//! Weighted routing by smooth weighted round-robin (as nginx does it): each pick adds every
//! eligible model's weight to its running score, takes the highest score and subtracts the
//! total from it. Over any `sum(weights)` consecutive picks each model is first exactly
//! `weight` times, interleaved rather than in bursts, with no randomness.

use crate::catalog::Candidate;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

#[derive(Debug)]
pub struct Weighted {
    /// The route's models with their weights (a model not named in `weights` weighs 1).
    weights: Vec<(String, i64)>,
    current: Mutex<Vec<i64>>,
}

impl Weighted {
    pub fn new(models: &[String], weights: &BTreeMap<String, u32>) -> Self {
        let weights: Vec<(String, i64)> = models
            .iter()
            .map(|m| (m.clone(), i64::from(weights.get(m).copied().unwrap_or(1))))
            .collect();
        let current = Mutex::new(vec![0; weights.len()]);
        Self { weights, current }
    }

    fn weight(&self, name: &str) -> (Option<usize>, i64) {
        match self.weights.iter().position(|(m, _)| m == name) {
            Some(i) => (Some(i), self.weights[i].1),
            None => (None, 0),
        }
    }

    /// Orders `candidates`: the round-robin's pick among them first (only models with a
    /// weight above 0 take part), then the others by descending weight, route order on ties.
    pub fn order(&self, mut candidates: Vec<Candidate>) -> (Vec<Candidate>, String) {
        let names: Vec<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
        let picked = self.pick(&names);
        candidates.sort_by_key(|c| std::cmp::Reverse(self.weight(&c.name).1));
        let Some(name) = picked else {
            let reason = "weighted: no candidate has a weight above 0; by weight".to_owned();
            return (candidates, reason);
        };
        if let Some(pos) = candidates.iter().position(|c| c.name == name) {
            let chosen = candidates.remove(pos);
            candidates.insert(0, chosen);
        }
        let shares = self
            .weights
            .iter()
            .map(|(m, w)| format!("{m}={w}"))
            .collect::<Vec<_>>()
            .join(", ");
        let reason =
            format!("weighted: {name} is next in smooth weighted round-robin (weights {shares})");
        (candidates, reason)
    }

    /// One round-robin step over the eligible models: the name of the one picked.
    fn pick(&self, names: &[&str]) -> Option<String> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = 0;
        let mut best: Option<(usize, usize)> = None; // (candidate index, weight index)
        for (ci, name) in names.iter().enumerate() {
            let (Some(wi), w) = self.weight(name) else {
                continue;
            };
            if w == 0 {
                continue;
            }
            current[wi] += w;
            total += w;
            if best.is_none_or(|(_, bw)| current[wi] > current[bw]) {
                best = Some((ci, wi));
            }
        }
        let (ci, wi) = best?;
        current[wi] -= total;
        Some(names[ci].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_are_exact_and_interleaved() {
        let models = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let weights = BTreeMap::from([
            ("a".to_owned(), 5),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1),
        ]);
        let w = Weighted::new(&models, &weights);
        let picks: Vec<String> = (0..7).filter_map(|_| w.pick(&["a", "b", "c"])).collect();
        assert_eq!(picks, ["a", "a", "b", "a", "c", "a", "a"]);
    }

    #[test]
    fn only_eligible_models_with_weight_take_part() {
        let models = vec!["a".to_owned(), "b".to_owned(), "z".to_owned()];
        let weights = BTreeMap::from([("a".to_owned(), 3), ("z".to_owned(), 0)]);
        let w = Weighted::new(&models, &weights);
        let picks: Vec<String> = (0..4).filter_map(|_| w.pick(&["a", "b", "z"])).collect();
        assert_eq!(picks.iter().filter(|p| *p == "a").count(), 3);
        assert_eq!(picks.iter().filter(|p| *p == "b").count(), 1);
        assert_eq!(w.pick(&["b"]).as_deref(), Some("b"));
        assert_eq!(w.pick(&["z"]), None);
    }
}
