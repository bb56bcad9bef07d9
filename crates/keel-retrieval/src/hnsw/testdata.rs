//! Test data: clustered, L2-normalised random vectors (a Gaussian mixture), and recall.

use super::rng::SplitMix64;

/// Standard normal draws (Box–Muller).
pub(crate) struct Gauss(SplitMix64);

impl Gauss {
    pub(crate) fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    pub(crate) fn normal(&mut self) -> f32 {
        let (u, v) = (self.0.next_unit(), self.0.next_unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
}

pub(crate) fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// A mixture of `clusters` Gaussian clusters on the unit sphere: each point is its (random)
/// cluster's centre plus isotropic noise of total norm ≈ `spread`, normalised.
pub(crate) struct Mixture {
    dim: usize,
    spread: f32,
    centres: Vec<Vec<f32>>,
}

impl Mixture {
    pub(crate) fn new(dim: usize, clusters: usize, spread: f32, seed: u64) -> Self {
        let mut g = Gauss::new(seed);
        let centres = (0..clusters)
            .map(|_| {
                let mut c: Vec<f32> = (0..dim).map(|_| g.normal()).collect();
                normalise(&mut c);
                c
            })
            .collect();
        Self {
            dim,
            spread,
            centres,
        }
    }

    /// `n` points drawn with their own seed (so queries can come from another draw).
    pub(crate) fn sample(&self, n: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut g = Gauss::new(seed);
        let scale = self.spread / (self.dim as f32).sqrt();
        (0..n)
            .map(|_| {
                let c = &self.centres[g.below(self.centres.len())];
                let mut v: Vec<f32> = c.iter().map(|x| x + scale * g.normal()).collect();
                normalise(&mut v);
                v
            })
            .collect()
    }
}

/// Mean fraction of `truth`'s keys found in `got`, over queries.
pub(crate) fn recall(got: &[Vec<(u64, f32)>], truth: &[Vec<(u64, f32)>]) -> f64 {
    let mut hit = 0usize;
    let mut total = 0usize;
    for (g, t) in got.iter().zip(truth) {
        total += t.len();
        hit += t
            .iter()
            .filter(|(k, _)| g.iter().any(|(gk, _)| gk == k))
            .count();
    }
    if total == 0 {
        1.0
    } else {
        hit as f64 / total as f64
    }
}
