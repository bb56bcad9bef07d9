//! Series values: counters, gauges and fixed-bucket histograms made of atomics.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::text;

/// FxHash: series keys are short, bounded and never attacker-chosen, so a fast
/// non-cryptographic hash is enough.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// An `f64` stored as bits in an `AtomicU64`.
#[derive(Default)]
pub(crate) struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub(crate) fn add(&self, v: f64) {
        let mut cur = self.0.load(Relaxed);
        loop {
            let new = (f64::from_bits(cur) + v).to_bits();
            match self.0.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }
    pub(crate) fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed);
    }
    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
}

/// One series' value: how it is created, updated and rendered.
pub(crate) trait Metric: Send + Sync + 'static {
    /// The `# TYPE` of the family.
    const TYPE: &'static str;
    /// `bounds` are the histogram bucket upper bounds (ignored by other kinds).
    fn new(bounds: &'static [f64]) -> Self;
    /// Writes the sample line(s) of one series; `labels` is `a="x",b="y"` (maybe empty).
    fn render(&self, out: &mut String, name: &str, labels: &str);
}

/// A monotonic integer counter.
#[derive(Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }
    pub(crate) fn inc(&self) {
        self.add(1);
    }
}

impl Metric for Counter {
    const TYPE: &'static str = "counter";
    fn new(_: &'static [f64]) -> Self {
        Self::default()
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        text::series(out, name, "", labels, None);
        text::end_u64(out, self.0.load(Relaxed));
    }
}

/// A monotonic counter of a real quantity (e.g. dollars).
#[derive(Default)]
pub(crate) struct FloatCounter(AtomicF64);

impl FloatCounter {
    /// Adds `v`; negative and non-finite values are ignored (a counter never goes down).
    pub(crate) fn add(&self, v: f64) {
        if v.is_finite() && v > 0.0 {
            self.0.add(v);
        }
    }
}

impl Metric for FloatCounter {
    const TYPE: &'static str = "counter";
    fn new(_: &'static [f64]) -> Self {
        Self::default()
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        text::series(out, name, "", labels, None);
        text::end_f64(out, self.0.get());
    }
}

/// A value that goes up and down.
#[derive(Default)]
pub(crate) struct Gauge(AtomicF64);

impl Gauge {
    pub(crate) fn set(&self, v: f64) {
        self.0.set(v);
    }
}

impl Metric for Gauge {
    const TYPE: &'static str = "gauge";
    fn new(_: &'static [f64]) -> Self {
        Self::default()
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        text::series(out, name, "", labels, None);
        text::end_f64(out, self.0.get());
    }
}

/// A fixed-bucket histogram. Buckets hold non-cumulative counts; the count is their sum, so
/// `_count` always equals the `+Inf` bucket even while observations race with a scrape.
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One per bound, plus the `+Inf` bucket.
    buckets: Box<[AtomicU64]>,
    sum: AtomicF64,
}

impl Histogram {
    /// Records `v`; NaN and infinities are ignored.
    pub(crate) fn observe(&self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let i = self.bounds.partition_point(|b| *b < v);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Relaxed);
        }
        self.sum.add(v);
    }
}

impl Metric for Histogram {
    const TYPE: &'static str = "histogram";
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicF64::default(),
        }
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        let les = self.bounds.iter().copied().chain([f64::INFINITY]);
        for (le, bucket) in les.zip(self.buckets.iter()) {
            cumulative += bucket.load(Relaxed);
            text::series(out, name, "_bucket", labels, Some(le));
            text::end_u64(out, cumulative);
        }
        text::series(out, name, "_sum", labels, None);
        text::end_f64(out, self.sum.get());
        text::series(out, name, "_count", labels, None);
        text::end_u64(out, cumulative);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_counter_adds_concurrently() {
        let c = FloatCounter::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..1000).for_each(|_| c.add(0.5)));
            }
        });
        c.add(-1.0);
        c.add(f64::NAN);
        assert!((c.0.get() - 2000.0).abs() < f64::EPSILON);
    }
}
