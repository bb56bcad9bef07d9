//! One signal of one route: a baseline (the first `baseline_size` values, frozen once full)
//! and a rolling window of the values that came after it. Memory is bounded by the settings:
//! a scalar series keeps its bin counts plus a ring of `window_size` values; an embedding series
//! keeps running sums only (see [`EmbeddingSeries`]).
//!
//! Each comparison looks at two spans of the window against the baseline: the whole window
//! (up to `window_size` values: most sensitive to small persistent shifts) and, when the window
//! is longer than `min_samples`, its latest `min_samples` values (the "recent" span: an abrupt
//! shift fills it quickly, so detection takes about `min_samples` samples whatever the window
//! size, instead of waiting for the new values to outweigh the old ones in a long window).
//! Each span has its own sample-size-aware threshold.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::stats::{self, VectorSum};

/// Blocks an embedding window is split into (see [`EmbeddingSeries`]).
const EMBEDDING_BLOCKS: usize = 10;

/// The result of comparing one span of the window with the baseline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evaluation {
    /// `"window"` or `"recent"`.
    pub span: &'static str,
    pub statistic: f64,
    pub threshold: f64,
    pub expected_noise: f64,
    pub baseline_n: usize,
    pub window_n: usize,
}

impl Evaluation {
    pub fn over(&self) -> bool {
        self.statistic > self.threshold
    }
}

/// The comparisons made after one value: the whole window and, if longer, the recent span.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    pub window: Evaluation,
    pub recent: Option<Evaluation>,
}

impl Comparison {
    /// The evaluation over its threshold, if any (the whole window first).
    pub fn fired(&self) -> Option<&Evaluation> {
        std::iter::once(&self.window)
            .chain(&self.recent)
            .find(|e| e.over())
    }
}

/// The noise multiplier of a span: the recent span is short (noisier than the chi-square
/// approximation says, with few values per bin) and overlaps itself from one sample to the next,
/// so it only reports the large, abrupt shifts it exists for.
fn noise_k(span: &str) -> f64 {
    if span == "recent" {
        stats::RECENT_NOISE_K
    } else {
        stats::NOISE_K
    }
}

/// Sizes shared by every series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub baseline: usize,
    pub window: usize,
    /// At least 1 and at most `window`.
    pub min_samples: usize,
}

struct FrozenScalar {
    cuts: Vec<f64>,
    counts: Vec<u64>,
    n: usize,
    mean: f64,
}

impl FrozenScalar {
    fn evaluate(
        &self,
        span: &'static str,
        counts: &[u64],
        m: usize,
        configured: f64,
    ) -> Evaluation {
        let bins = stats::occupied_bins(&self.counts, counts);
        Evaluation {
            span,
            statistic: stats::psi_from_counts(&self.counts, counts),
            threshold: configured + noise_k(span) * stats::expected_psi(bins, self.n, m),
            expected_noise: stats::expected_psi(bins, self.n, m),
            baseline_n: self.n,
            window_n: m,
        }
    }
}

/// A scalar signal compared by PSI over the baseline's quantile bins.
pub(crate) struct ScalarSeries {
    filling: Vec<f64>,
    frozen: Option<FrozenScalar>,
    window: VecDeque<f64>,
    window_counts: Vec<u64>,
    /// Bin counts of the latest `min_samples` values of `window`.
    recent_counts: Vec<u64>,
    /// The last evaluation of each span, reused while the span's counts and size are unchanged
    /// (a value that lands in the bin of the value it pushes out changes nothing): the same
    /// inputs, so the same result, without the logarithms.
    last_window: Option<(f64, Evaluation)>,
    last_recent: Option<(f64, Evaluation)>,
}

/// `last` when `same` (nothing it was computed from changed) and it was made for `configured`,
/// else a new evaluation, kept in `last`.
fn reuse(
    last: &mut Option<(f64, Evaluation)>,
    same: bool,
    configured: f64,
    evaluate: impl FnOnce() -> Evaluation,
) -> Evaluation {
    if same
        && let Some((made_for, e)) = last
        && *made_for == configured
    {
        return e.clone();
    }
    let e = evaluate();
    *last = Some((configured, e.clone()));
    e
}

fn bump(counts: &mut [u64], bin: usize, up: bool) {
    if let Some(c) = counts.get_mut(bin) {
        *c = if up { *c + 1 } else { c.saturating_sub(1) };
    }
}

impl ScalarSeries {
    pub fn new() -> Self {
        Self {
            filling: Vec::new(),
            frozen: None,
            window: VecDeque::new(),
            window_counts: Vec::new(),
            recent_counts: Vec::new(),
            last_window: None,
            last_recent: None,
        }
    }

    /// Adds a value; returns a comparison once the window holds `min_samples` values that
    /// arrived after the baseline was complete. Non-finite values are ignored.
    pub fn push(&mut self, v: f64, sizes: Sizes, configured: f64) -> Option<Comparison> {
        if !v.is_finite() {
            return None;
        }
        let Some(base) = &self.frozen else {
            self.filling.push(v);
            if self.filling.len() >= sizes.baseline {
                let values = std::mem::take(&mut self.filling);
                let cuts = stats::quantile_cuts(&values, stats::PSI_BINS);
                let counts = stats::histogram(&cuts, &values);
                self.window_counts = vec![0; counts.len()];
                self.recent_counts = vec![0; counts.len()];
                self.frozen = Some(FrozenScalar {
                    mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
                    n: values.len(),
                    cuts,
                    counts,
                });
            }
            return None;
        };
        // With window == min_samples the recent span is the window: it is not tracked.
        let track_recent = sizes.min_samples < sizes.window;
        let bin = stats::bin_of(&base.cuts, v);
        let mut window_same = false;
        if self.window.len() >= sizes.window
            && let Some(old) = self.window.pop_front()
        {
            let old = stats::bin_of(&base.cuts, old);
            bump(&mut self.window_counts, old, false);
            window_same = old == bin;
        }
        self.window.push_back(v);
        bump(&mut self.window_counts, bin, true);
        let mut recent_same = false;
        if track_recent {
            bump(&mut self.recent_counts, bin, true);
            let m = self.window.len();
            if m > sizes.min_samples
                && let Some(&left) = self.window.get(m - 1 - sizes.min_samples)
            {
                let left = stats::bin_of(&base.cuts, left);
                bump(&mut self.recent_counts, left, false);
                recent_same = left == bin;
            }
        }
        let m = self.window.len();
        if m < sizes.min_samples {
            return None;
        }
        let recent = (track_recent && m > sizes.min_samples).then(|| {
            reuse(&mut self.last_recent, recent_same, configured, || {
                base.evaluate("recent", &self.recent_counts, sizes.min_samples, configured)
            })
        });
        let window = reuse(&mut self.last_window, window_same, configured, || {
            base.evaluate("window", &self.window_counts, m, configured)
        });
        Some(Comparison { window, recent })
    }

    /// What an alert says beyond the statistic.
    pub fn detail(&self, e: &Evaluation) -> Value {
        let n = self.window.len();
        let values = self.window.iter().skip(if e.span == "recent" {
            n - e.window_n.min(n)
        } else {
            0
        });
        let mean = values.sum::<f64>() / e.window_n.max(1) as f64;
        let counts = if e.span == "recent" {
            &self.recent_counts
        } else {
            &self.window_counts
        };
        json!({
            "method": "psi",
            "span": e.span,
            "bins": counts.len(),
            "expected_noise": e.expected_noise,
            "baseline_mean": self.frozen.as_ref().map(|b| b.mean),
            "window_mean": mean,
            "baseline_counts": self.frozen.as_ref().map(|b| b.counts.clone()),
            "window_counts": counts,
        })
    }
}

/// An embedding signal compared by the cosine distance of centroids.
///
/// Only sums are kept: the baseline is one [`VectorSum`]; the window is up to
/// [`EMBEDDING_BLOCKS`] full blocks of `ceil(window_size / EMBEDDING_BLOCKS)` vectors plus the
/// block being filled, and the oldest whole block is dropped once the window would exceed
/// `window_size`. The window therefore covers between `window_size − block + 1` and
/// `window_size` of the latest vectors, and costs about 12 vectors of memory (with the
/// baseline), not `window_size`.
/// The recent span is the block being filled plus as many of the latest blocks as it takes to
/// reach `min_samples` (so it may hold up to a block more).
pub(crate) struct EmbeddingSeries {
    baseline: VectorSum,
    frozen: bool,
    blocks: VecDeque<VectorSum>,
    current: VectorSum,
}

impl EmbeddingSeries {
    pub fn new() -> Self {
        Self {
            baseline: VectorSum::default(),
            frozen: false,
            blocks: VecDeque::new(),
            current: VectorSum::default(),
        }
    }

    fn window_n(&self) -> usize {
        self.blocks.iter().map(|b| b.n).sum::<usize>() + self.current.n
    }

    fn evaluate(&self, span: &'static str, sum: &VectorSum, configured: f64) -> Evaluation {
        let noise = stats::centroid_noise(&self.baseline, sum.n);
        Evaluation {
            span,
            statistic: stats::cosine_distance(&self.baseline.centroid(), &sum.centroid()),
            threshold: configured + noise_k(span) * noise,
            expected_noise: noise,
            baseline_n: self.baseline.n,
            window_n: sum.n,
        }
    }

    /// Adds a vector (ignored when its length differs from the baseline's or it is not finite).
    pub fn push(&mut self, v: &[f32], sizes: Sizes, configured: f64) -> Option<Comparison> {
        if !self.frozen {
            self.baseline.add(v);
            self.frozen = self.baseline.n >= sizes.baseline;
            return None;
        }
        if v.len() != self.baseline.sum.len() || !self.current.add(v) {
            return None;
        }
        let block = sizes.window.div_ceil(EMBEDDING_BLOCKS).max(1);
        if self.current.n >= block {
            self.blocks.push_back(std::mem::take(&mut self.current));
        }
        while self.window_n() > sizes.window && self.blocks.pop_front().is_some() {}
        if self.window_n() < sizes.min_samples {
            return None;
        }
        let mut window = self.current.clone();
        let mut recent = (window.n >= sizes.min_samples).then(|| window.clone());
        for b in self.blocks.iter().rev() {
            window.merge(b);
            if recent.is_none() && window.n >= sizes.min_samples {
                recent = Some(window.clone());
            }
        }
        let recent = recent
            .filter(|r| r.n < window.n)
            .map(|r| self.evaluate("recent", &r, configured));
        Some(Comparison {
            window: self.evaluate("window", &window, configured),
            recent,
        })
    }

    pub fn detail(&self, e: &Evaluation) -> Value {
        json!({
            "method": "centroid_cosine_distance",
            "span": e.span,
            "dimensions": self.baseline.sum.len(),
            "expected_noise": e.expected_noise,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: Sizes = Sizes {
        baseline: 4,
        window: 3,
        min_samples: 2,
    };

    #[test]
    fn scalar_window_starts_after_the_baseline_and_rolls() {
        let mut s = ScalarSeries::new();
        for v in [1.0, 2.0, 3.0, 4.0] {
            assert_eq!(s.push(v, SIZES, 0.25), None);
        }
        assert_eq!(s.push(f64::NAN, SIZES, 0.25), None);
        assert_eq!(s.push(1.0, SIZES, 0.25), None);
        let e = s.push(2.0, SIZES, 0.25).map(|e| e.window.window_n);
        assert_eq!(e, Some(2));
        s.push(3.0, SIZES, 0.25);
        let e = s.push(4.0, SIZES, 0.25).unwrap();
        assert_eq!((e.window.window_n, e.window.baseline_n), (3, 4));
        assert_eq!(e.recent.map(|r| (r.span, r.window_n)), Some(("recent", 2)));
        assert_eq!(s.window_counts, vec![0, 1, 1, 1]);
        assert_eq!(s.recent_counts, vec![0, 0, 1, 1]);
    }

    #[test]
    fn reused_evaluations_equal_fresh_ones() {
        let sizes = Sizes {
            baseline: 40,
            window: 30,
            min_samples: 10,
        };
        // Few distinct values, so the value pushed out often shares the new value's bin.
        let value = |i: u64| ((i * 7919) % 13 / 4) as f64;
        let (mut cached, mut fresh) = (ScalarSeries::new(), ScalarSeries::new());
        let mut reused = 0;
        for i in 0..400 {
            let before = cached.last_window.clone();
            fresh.last_window = None;
            fresh.last_recent = None;
            let got = cached.push(value(i), sizes, 0.25);
            assert_eq!(got, fresh.push(value(i), sizes, 0.25), "value {i}");
            if before.is_some() && before == cached.last_window {
                reused += 1;
            }
        }
        assert!(reused > 20, "only {reused} reuses");
    }

    #[test]
    fn embedding_window_is_bounded_by_blocks() {
        let sizes = Sizes {
            baseline: 2,
            window: 40,
            min_samples: 1,
        };
        let mut s = EmbeddingSeries::new();
        assert_eq!(s.push(&[1.0, 0.0], sizes, 0.15), None);
        assert_eq!(s.push(&[1.0, 0.1], sizes, 0.15), None);
        assert_eq!(s.push(&[1.0, 0.0, 0.0], sizes, 0.15), None);
        for i in 0..200 {
            let e = s.push(&[1.0, 0.05], sizes, 0.15);
            let n = e.map(|e| e.window.window_n).unwrap_or_default();
            assert!(n == (i + 1).min(40) || (n > 36 && n <= 40), "{i}: {n}");
        }
        assert!(s.blocks.len() <= EMBEDDING_BLOCKS);
    }
}
