//! Building the graph: the layer draw, neighbour lists, insertion (Malkov & Yashunin, alg. 1)
//! and the neighbour-selection heuristic (alg. 4, with fill-up).

use super::distance::dot;
use super::search::{Cand, Visited};
use super::{Hnsw, MAX_LEVEL};

impl Hnsw {
    /// Neighbours kept per node on `level`: `2*m` on layer 0, `m` above.
    pub(crate) fn capacity(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.params.m
        } else {
            self.params.m
        }
    }

    /// Where the `[count, ids…]` block of `node` on `level` starts, in `layer0` (level 0) or in
    /// the node's `upper` slice.
    fn slot(&self, node: u32, level: usize) -> usize {
        if level == 0 {
            node as usize * (2 * self.params.m + 1)
        } else {
            (level - 1) * (self.params.m + 1)
        }
    }

    /// The neighbours of `node` on `level` (empty if the node does not reach that level).
    pub(crate) fn links(&self, node: u32, level: usize) -> &[u32] {
        let start = self.slot(node, level);
        let block = if level == 0 {
            self.layer0.get(start..)
        } else {
            self.upper.get(node as usize).and_then(|u| u.get(start..))
        };
        match block {
            Some(b) if !b.is_empty() => {
                let count = (b[0] as usize).min(b.len() - 1);
                &b[1..1 + count]
            }
            _ => &[],
        }
    }

    fn set_links(&mut self, node: u32, level: usize, ids: &[u32]) {
        let start = self.slot(node, level);
        let cap = self.capacity(level);
        let n = ids.len().min(cap);
        let block = if level == 0 {
            self.layer0.get_mut(start..start + cap + 1)
        } else {
            self.upper
                .get_mut(node as usize)
                .and_then(|u| u.get_mut(start..start + cap + 1))
        };
        if let Some(b) = block {
            b[0] = n as u32;
            b[1..1 + n].copy_from_slice(&ids[..n]);
        }
    }

    /// Geometric layer draw with normalisation factor `1/ln(m)`.
    fn draw_level(&mut self) -> usize {
        let ml = 1.0 / (self.params.m as f64).ln();
        let level = (-self.rng.next_unit().ln() * ml).floor();
        (level as usize).min(MAX_LEVEL)
    }

    /// Appends a node for `key`/`vector` (dimension already checked) and links it into the
    /// graph. Returns its id; the key map is the caller's business.
    pub(crate) fn insert_node(&mut self, key: u64, vector: &[f32]) -> u32 {
        let node = self.keys.len() as u32;
        let level = self.draw_level();
        self.vectors.extend_from_slice(vector);
        self.keys.push(key);
        self.levels.push(level as u8);
        self.deleted.push(false);
        self.layer0
            .extend(std::iter::repeat_n(0, 2 * self.params.m + 1));
        self.upper
            .push(vec![0u32; level * (self.params.m + 1)].into_boxed_slice());

        let Some(entry) = self.entry else {
            self.entry = Some(node);
            self.max_level = level;
            return node;
        };

        // Greedy descent through the layers above the new node's top.
        let mut ep = Cand {
            sim: dot(vector, self.vector(entry)),
            node: entry,
        };
        for lc in (level + 1..=self.max_level).rev() {
            ep = self.greedy_closest(vector, ep, lc);
        }

        let mut eps = vec![ep];
        let mut visited = Visited::new(self.keys.len());
        for lc in (0..=level.min(self.max_level)).rev() {
            visited.clear();
            let found = self.search_layer(
                vector,
                &eps,
                self.params.ef_construction,
                lc,
                &mut visited,
                |_| true,
            );
            // New links go to live nodes when there are any; tombstones still route (`eps`).
            let live: Vec<Cand> = found
                .iter()
                .copied()
                .filter(|c| c.node != node && !self.deleted[c.node as usize])
                .collect();
            let pool = if live.is_empty() { &found } else { &live };
            let chosen = self.select_neighbours(pool, self.params.m);
            self.set_links(node, lc, &chosen);
            for &nb in &chosen {
                self.link_back(nb, node, lc);
            }
            eps = found;
        }

        if level > self.max_level {
            self.max_level = level;
            self.entry = Some(node);
        }
        node
    }

    /// Adds `new` to the list of `nb` on `level`; on overflow the list is re-selected with the
    /// heuristic among its old members and `new`.
    fn link_back(&mut self, nb: u32, new: u32, level: usize) {
        let cap = self.capacity(level);
        let current = self.links(nb, level);
        if current.contains(&new) {
            return;
        }
        if current.len() < cap {
            let mut ids = current.to_vec();
            ids.push(new);
            self.set_links(nb, level, &ids);
            return;
        }
        let base = self.vector(nb);
        let mut cands: Vec<Cand> = current
            .iter()
            .chain(std::iter::once(&new))
            .map(|&c| Cand {
                sim: dot(base, self.vector(c)),
                node: c,
            })
            .collect();
        cands.sort_unstable_by(|a, b| b.cmp(a));
        let chosen = self.select_neighbours(&cands, cap);
        self.set_links(nb, level, &chosen);
    }

    /// Heuristic selection among `cands` (sorted best first by similarity to the base point):
    /// keep a candidate only if it is more similar to the base than to every neighbour already
    /// kept (this spreads links across directions and keeps clusters connected), then fill up
    /// with the best discarded ones until `m`.
    pub(crate) fn select_neighbours(&self, cands: &[Cand], m: usize) -> Vec<u32> {
        let mut chosen: Vec<u32> = Vec::with_capacity(m);
        let mut discarded: Vec<u32> = Vec::new();
        for c in cands {
            if chosen.len() >= m {
                break;
            }
            let v = self.vector(c.node);
            let diverse = chosen.iter().all(|&r| dot(v, self.vector(r)) < c.sim);
            if diverse {
                chosen.push(c.node);
            } else {
                discarded.push(c.node);
            }
        }
        for d in discarded {
            if chosen.len() >= m {
                break;
            }
            chosen.push(d);
        }
        chosen
    }

    /// Hill-climbs on one layer from `ep` to the node most similar to `q` (beam of 1).
    pub(crate) fn greedy_closest(&self, q: &[f32], mut ep: Cand, level: usize) -> Cand {
        loop {
            let mut improved = false;
            for &nb in self.links(ep.node, level) {
                let sim = dot(q, self.vector(nb));
                if sim > ep.sim {
                    ep = Cand { sim, node: nb };
                    improved = true;
                }
            }
            if !improved {
                return ep;
            }
        }
    }
}
