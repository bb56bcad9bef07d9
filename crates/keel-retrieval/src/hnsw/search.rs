//! Searching: the beam search of one layer (shared with insertion), the k-NN query with the
//! filter applied inside the beam, and the exact scan it falls back to.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::Hnsw;
use super::distance::dot;
use super::rng::mix;

/// Filters are sampled on this many nodes to estimate the fraction they admit.
const SELECTIVITY_SAMPLE: usize = 256;

/// Cost model of [`Hnsw::search`], in similarity computations, fitted on `benches/hnsw.rs`
/// (100k × 384-d, M=16; crossover between 5% and 10% admitted there). An unfiltered beam
/// computes about `BEAM_BASE · ef`; when only a fraction `p` of the nodes is admitted the beam
/// must reach `ef / p` nodes before it can stop, and its walk grows like
/// `BEAM_SPARSE · (ef / p)^1.5` on top, up to the whole graph. The scan computes `p · n` and,
/// with a filter, calls it `n` times at `FILTER_COST` each. Near the crossover both cost about
/// the same, so the estimate only has to be roughly right.
const BEAM_BASE: f64 = 36.0;
const BEAM_SPARSE: f64 = 0.15;
const FILTER_COST: f64 = 0.02;

/// Whether the exact scan is expected to be cheaper than the beam.
pub(crate) fn prefer_exact(nodes: usize, admitted: f64, ef: usize, filtered: bool) -> bool {
    if admitted <= 0.0 {
        return true;
    }
    let n = nodes as f64;
    let reach = ef as f64 / admitted;
    let beam = (BEAM_BASE * ef as f64 + BEAM_SPARSE * reach * reach.sqrt()).min(2.0 * n);
    let scan = admitted * n + if filtered { FILTER_COST * n } else { 0.0 };
    scan <= beam
}

fn finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// A node and its similarity to the query; ordered by similarity (then by node id, so that
/// orderings are total and deterministic).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cand {
    pub(crate) sim: f32,
    pub(crate) node: u32,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Cand {}

impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim
            .total_cmp(&other.sim)
            .then_with(|| other.node.cmp(&self.node))
    }
}

impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A visited set: one bit per node, owned by one search call.
pub(crate) struct Visited {
    bits: Vec<u64>,
}

impl Visited {
    pub(crate) fn new(nodes: usize) -> Self {
        Self {
            bits: vec![0; nodes.div_ceil(64)],
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bits.fill(0);
    }

    /// Marks `node`; true if it was not marked before.
    #[inline]
    pub(crate) fn insert(&mut self, node: u32) -> bool {
        let (word, bit) = (node as usize / 64, 1u64 << (node % 64));
        match self.bits.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }
}

impl Hnsw {
    /// Beam search on one layer from `eps` (Malkov & Yashunin, alg. 2). Every reached node is
    /// traversed; only nodes for which `admit` holds enter the result (at most `ef`, best
    /// first). The walk stops when the best unexpanded candidate is worse than the worst of a
    /// full result.
    pub(crate) fn search_layer(
        &self,
        q: &[f32],
        eps: &[Cand],
        ef: usize,
        level: usize,
        visited: &mut Visited,
        admit: impl Fn(u32) -> bool,
    ) -> Vec<Cand> {
        let mut candidates: BinaryHeap<Cand> = BinaryHeap::with_capacity(ef * 2);
        let mut results: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(ef + 1);
        for &ep in eps {
            if visited.insert(ep.node) {
                candidates.push(ep);
                if admit(ep.node) {
                    results.push(Reverse(ep));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        while let Some(c) = candidates.pop() {
            let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.sim);
            if results.len() >= ef && c.sim < worst {
                break;
            }
            for &nb in self.links(c.node, level) {
                if !visited.insert(nb) {
                    continue;
                }
                let sim = dot(q, self.vector(nb));
                let worst = results.peek().map_or(f32::NEG_INFINITY, |r| r.0.sim);
                if results.len() < ef || sim > worst {
                    let cand = Cand { sim, node: nb };
                    candidates.push(cand);
                    if admit(nb) {
                        results.push(Reverse(cand));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
        }
        let mut out: Vec<Cand> = results.into_iter().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }

    /// The `k` most similar live vectors, best first, as `(key, similarity)`.
    ///
    /// `filter` is applied inside the graph walk: rejected nodes still route but never enter
    /// the beam's results, so `k` results come back whenever `k` admitted vectors exist. When
    /// the scan is expected to be cheaper (a selective filter, estimated on a sample of 256
    /// nodes, many tombstones, or a small index) the exact scan answers instead, and so it does
    /// when the beam comes back short. `ef` is the beam width (at least `k`;
    /// `None` = `params.ef_search`). A query of the wrong dimension or with a NaN or infinite
    /// component finds nothing.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        filter: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        if k == 0 || query.len() != self.dim || self.is_empty() || !finite(query) {
            return Vec::new();
        }
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let ef = ef.unwrap_or(self.params.ef_search).max(k);
        let admit = |n: u32| {
            let n = n as usize;
            !self.deleted[n] && filter.is_none_or(|f| f(self.keys[n]))
        };
        let nodes = self.keys.len();
        let admitted = match filter {
            None => self.len() as f64 / nodes as f64,
            Some(_) => self.admitted_fraction(&admit),
        };
        if prefer_exact(nodes, admitted, ef, filter.is_some()) {
            return self.exact(query, k, filter);
        }

        let mut ep = Cand {
            sim: dot(query, self.vector(entry)),
            node: entry,
        };
        for lc in (1..=self.max_level).rev() {
            ep = self.greedy_closest(query, ep, lc);
        }
        let mut visited = Visited::new(self.keys.len());
        let found = self.search_layer(query, &[ep], ef, 0, &mut visited, admit);
        if found.len() < k {
            // The beam ran dry (unreachable or scarce admitted nodes): the scan is exact.
            return self.exact(query, k, filter);
        }
        found
            .into_iter()
            .take(k)
            .map(|c| (self.keys[c.node as usize], c.sim))
            .collect()
    }

    /// Exact k-NN by scanning every live vector (that `filter` admits), best first.
    pub fn exact(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        if k == 0 || query.len() != self.dim || !finite(query) {
            return Vec::new();
        }
        let mut top: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(k + 1);
        for (n, (&key, &dead)) in self.keys.iter().zip(&self.deleted).enumerate() {
            if dead || filter.is_some_and(|f| !f(key)) {
                continue;
            }
            let cand = Cand {
                sim: dot(query, self.vector(n as u32)),
                node: n as u32,
            };
            if top.len() < k {
                top.push(Reverse(cand));
            } else if top.peek().is_some_and(|w| cand > w.0) {
                top.pop();
                top.push(Reverse(cand));
            }
        }
        let mut out: Vec<Cand> = top.into_iter().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.into_iter()
            .map(|c| (self.keys[c.node as usize], c.sim))
            .collect()
    }

    /// Fraction of nodes that `admit` accepts, estimated on a sample.
    fn admitted_fraction(&self, admit: &impl Fn(u32) -> bool) -> f64 {
        let nodes = self.keys.len();
        if nodes == 0 {
            return 0.0;
        }
        let samples = nodes.min(SELECTIVITY_SAMPLE);
        // Hashed positions, not a stride: a stride can alias with filters on key patterns
        // (`key % 10 == 0`). Fixed per index size, so a query always takes the same path.
        let hits = (0..samples as u64)
            .filter(|&i| admit((mix(self.seed ^ i) % nodes as u64) as u32))
            .count();
        hits as f64 / samples as f64
    }
}

#[cfg(test)]
mod tests {
    use super::prefer_exact;

    #[test]
    fn hnsw_cost_model_picks_the_cheaper_path_measured_in_the_bench() {
        // 100k nodes, ef 64: the scan won at 1/2/5% admitted, the beam at 10% and above.
        for p in [0.0, 0.01, 0.02, 0.05] {
            assert!(prefer_exact(100_000, p, 64, true), "{p}");
        }
        for p in [0.1, 0.2, 0.5, 1.0] {
            assert!(!prefer_exact(100_000, p, 64, true), "{p}");
        }
        // 10k nodes: the beam at 50%, the scan at 10%; tiny indexes are scanned.
        assert!(!prefer_exact(10_000, 0.5, 64, true));
        assert!(prefer_exact(10_000, 0.1, 64, true));
        assert!(prefer_exact(1_000, 1.0, 64, false));
    }
}
