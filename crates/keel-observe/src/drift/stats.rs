//! Drift statistics as pure functions: the population stability index (PSI) of a scalar signal,
//! the cosine distance between embedding centroids, and the noise each statistic shows when
//! nothing has drifted, so thresholds can grow for small samples.
//!
//! Thresholds: `configured + NOISE_K · expected_noise` (`RECENT_NOISE_K` for the short recent
//! span). The configured value
//! (`psi_threshold`, `centroid_threshold`) is the effect size worth an alert; the noise term is
//! what two finite samples of one unchanged distribution show on average. Both statistics are,
//! under no drift, roughly a scaled chi-square whose standard deviation is at most √2 times its
//! mean (one degree of freedom, the worst case) and usually far less, so `NOISE_K = 3` puts the
//! noise term above mean + 1.4 sd in the worst case (mean + 4.2 sd for ten PSI bins) before the
//! configured effect size is even added. A monitor evaluates after every sample, so a
//! per-comparison false-alarm rate of a few percent would be far too many alerts; this errs on
//! the side of silence.

/// Most bins for the PSI (deciles of the baseline).
pub const PSI_BINS: usize = 10;
/// Added to every bin count of both samples before computing proportions (a Jeffreys prior).
/// It plays the part of the usual "epsilon for empty bins" without depending on the unit of the
/// proportions: an empty bin in a baseline of 200 counts as 0.25 %, not as 0.01 %.
pub const PSEUDO_COUNT: f64 = 0.5;
/// Multiple of the expected no-drift noise added to a configured threshold (see module docs).
pub const NOISE_K: f64 = 3.0;
/// The multiplier for the short "recent" span of a window (the latest `min_samples` values;
/// see `series`). With ~5 values per PSI bin, or a rare binary event expected once or twice,
/// the statistic's upper tail is much heavier than the chi-square approximation, and the span
/// is re-tested after every sample. Calibration (the `drift_false_alarm_survey` test, defaults,
/// 500 seeded stable streams of 2,000 samples): with 3, 4 % of streams raised a false alarm;
/// with 5, none on continuous signals and 1 % on a 2 % refusal rate (a baseline that saw 1
/// refusal in 200 against a recent span with 7 in 50), while abrupt shifts (output length,
/// refusal rate 2 → 40 %, answer topic) are still caught 20–45 samples after they start.
pub const RECENT_NOISE_K: f64 = 5.0;

/// Upper-inclusive cut points splitting `baseline` into at most `max_bins` bins of about equal
/// mass: bin `i` holds values `v` with `cuts[i-1] < v <= cuts[i]` (see [`bin_of`]).
///
/// Ties are merged rather than split: cut points come from the baseline quantiles, duplicates are
/// dropped and so is a cut at the baseline maximum (its upper bin would be empty). A binary signal
/// (refusal 0/1) therefore gets two bins, and a mostly-one binary signal too (the minimum is
/// used as the single cut when no quantile is below the maximum). A constant baseline `c` gets
/// three bins: below `c`, exactly `c`, above `c`. Non-finite values are ignored; an empty
/// baseline gives no cuts (one bin).
pub fn quantile_cuts(baseline: &[f64], max_bins: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = baseline.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
        return Vec::new();
    };
    if min == max {
        return vec![min.next_down(), min];
    }
    let n = sorted.len();
    let bins = max_bins.max(2);
    let mut cuts: Vec<f64> = Vec::with_capacity(bins - 1);
    for k in 1..bins {
        let idx = (k * n).div_ceil(bins).saturating_sub(1);
        if let Some(&c) = sorted.get(idx)
            && c < max
            && cuts.last().is_none_or(|&last| last < c)
        {
            cuts.push(c);
        }
    }
    if cuts.is_empty() {
        cuts.push(min);
    }
    cuts
}

/// The bin of `v` for cut points from [`quantile_cuts`] (`0..=cuts.len()`).
pub fn bin_of(cuts: &[f64], v: f64) -> usize {
    cuts.partition_point(|&c| c < v)
}

/// Bin counts of `values` (non-finite values skipped).
pub fn histogram(cuts: &[f64], values: &[f64]) -> Vec<u64> {
    let mut counts = vec![0u64; cuts.len() + 1];
    for &v in values.iter().filter(|v| v.is_finite()) {
        if let Some(c) = counts.get_mut(bin_of(cuts, v)) {
            *c += 1;
        }
    }
    counts
}

/// PSI `Σ (q_i − p_i) · ln(q_i / p_i)` between baseline counts `p` and window counts `q` (same
/// bins), with [`PSEUDO_COUNT`] added to every bin of both. Bins empty in both samples are left
/// out (they carry no information, and padding them would make equal proportions in samples
/// of different sizes look different). 0 for identical proportions.
pub fn psi_from_counts(baseline: &[u64], window: &[u64]) -> f64 {
    let bins = occupied_bins(baseline, window);
    if bins == 0 {
        return 0.0;
    }
    let pad = PSEUDO_COUNT * bins as f64;
    let n = baseline.iter().sum::<u64>() as f64 + pad;
    let m = window.iter().sum::<u64>() as f64 + pad;
    baseline
        .iter()
        .zip(window)
        .filter(|&(&b, &w)| b + w > 0)
        .map(|(&b, &w)| {
            let p = (b as f64 + PSEUDO_COUNT) / n;
            let q = (w as f64 + PSEUDO_COUNT) / m;
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Bins holding at least one value of either sample: the degrees of freedom (+1) of the PSI.
pub fn occupied_bins(baseline: &[u64], window: &[u64]) -> usize {
    baseline
        .iter()
        .zip(window)
        .filter(|&(&b, &w)| b + w > 0)
        .count()
}

/// Expected PSI of two samples (sizes `n`, `m`) of one distribution over `bins` bins.
///
/// For small differences PSI ≈ Σ (q_i − p_i)² / π_i (the symmetrised KL divergence), and
/// q_i − p_i has variance π_i (1 − π_i) (1/n + 1/m), so PSI ≈ (1/n + 1/m) · χ²(B − 1): mean
/// (B − 1)(1/n + 1/m), standard deviation √(2(B − 1)) (1/n + 1/m). Infinite for an empty sample.
pub fn expected_psi(bins: usize, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return f64::INFINITY;
    }
    bins.saturating_sub(1) as f64 * (1.0 / n as f64 + 1.0 / m as f64)
}

/// Alert threshold for a PSI: `configured + NOISE_K · expected_psi(bins, n, m)`.
pub fn psi_threshold(configured: f64, bins: usize, n: usize, m: usize) -> f64 {
    configured + NOISE_K * expected_psi(bins, n, m)
}

/// PSI of `window` against `baseline` with deciles of the baseline as bins.
pub fn psi(baseline: &[f64], window: &[f64]) -> f64 {
    let cuts = quantile_cuts(baseline, PSI_BINS);
    psi_from_counts(&histogram(&cuts, baseline), &histogram(&cuts, window))
}

/// Running sums of a set of equally long vectors: all a centroid comparison needs, so windows
/// of embeddings cost one vector of memory each, not one per sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VectorSum {
    pub sum: Vec<f64>,
    /// Σ ‖x‖².
    pub sq_norms: f64,
    pub n: usize,
}

impl VectorSum {
    /// Adds `v`; false (and nothing added) when its length differs from earlier vectors or it
    /// holds a non-finite value.
    pub fn add(&mut self, v: &[f32]) -> bool {
        if v.is_empty() || (self.n > 0 && v.len() != self.sum.len()) {
            return false;
        }
        if v.iter().any(|x| !x.is_finite()) {
            return false;
        }
        if self.n == 0 {
            self.sum = vec![0.0; v.len()];
        }
        for (s, &x) in self.sum.iter_mut().zip(v) {
            *s += f64::from(x);
        }
        self.sq_norms += v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
        self.n += 1;
        true
    }

    /// Adds every vector summed in `other` (ignored when the lengths differ).
    pub fn merge(&mut self, other: &VectorSum) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = other.clone();
            return;
        }
        if other.sum.len() != self.sum.len() {
            return;
        }
        for (s, &o) in self.sum.iter_mut().zip(&other.sum) {
            *s += o;
        }
        self.sq_norms += other.sq_norms;
        self.n += other.n;
    }

    /// The mean vector (empty when nothing was added).
    pub fn centroid(&self) -> Vec<f64> {
        let n = self.n.max(1) as f64;
        self.sum.iter().map(|s| s / n).collect()
    }
}

/// `1 − cos(a, b)`, in `[0, 2]`; 1 (orthogonal) when either vector is zero or lengths differ.
pub fn cosine_distance(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return 1.0;
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 1.0;
    }
    (1.0 - dot / (na * nb)).clamp(0.0, 2.0)
}

/// Expected cosine distance between the centroid of `baseline` and the centroid of `m` further
/// vectors from the same distribution (infinite when it cannot be estimated).
///
/// Derivation: let μ be the true mean and σ² = E‖x − μ‖² the total variance. The two centroids
/// are μ + e₁ and μ + e₂ with E‖e₁‖² = σ²/n and E‖e₂‖² = σ²/m. To first order, normalising
/// removes the error along μ, and for unit vectors u, v, 1 − cos = ‖u − v‖²/2, so
/// 1 − cos ≈ ‖P⊥(e₁ − e₂)‖² / (2‖μ‖²), with expectation σ⊥² (1/n + 1/m) / (2‖μ‖²), where σ⊥² is
/// the variance orthogonal to μ. We estimate σ² from the baseline's own spread,
/// s² = (Σ‖x‖² − n‖x̄‖²)/(n − 1), use it for σ⊥² (an upper bound; for embeddings nearly all
/// spread is orthogonal to the mean anyway), and ‖μ‖² by ‖x̄‖² − s²/n (‖x̄‖² is biased up by
/// σ²/n). When the centroid is indistinguishable from noise (‖μ‖² estimate ≤ 0) the distance
/// means nothing and the noise is infinite, so no alert can fire.
pub fn centroid_noise(baseline: &VectorSum, m: usize) -> f64 {
    let n = baseline.n;
    if n < 2 || m == 0 {
        return f64::INFINITY;
    }
    let nf = n as f64;
    let mean_sq: f64 = baseline.centroid().iter().map(|x| x * x).sum();
    let spread = ((baseline.sq_norms - nf * mean_sq) / (nf - 1.0)).max(0.0);
    let signal = mean_sq - spread / nf;
    if signal <= 1e-12 {
        return f64::INFINITY;
    }
    spread * (1.0 / nf + 1.0 / m as f64) / (2.0 * signal)
}

/// Alert threshold for a centroid distance: `configured + NOISE_K · centroid_noise(..)`.
pub fn centroid_threshold(configured: f64, baseline: &VectorSum, m: usize) -> f64 {
    configured + NOISE_K * centroid_noise(baseline, m)
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
