//! Series keyed by label values: [`LabelMap`] (read-mostly map with a series cap) and
//! [`Family`] (a named metric whose series are rendered together).
//!
//! A lookup joins the label values into a reused thread-local key (no allocation) and takes
//! the map's read lock, which recorders share; only the first use of a new label set takes
//! the write lock. A map holds at most `cap` entries; past that, new label sets share one
//! entry whose labels are all `other`.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use super::kinds::{FxBuild, Metric};
use super::labels::OTHER;
use super::text;

/// Default entry cap per map.
pub(crate) const MAX_SERIES: usize = 10_000;

/// Ends each label value in a key (label values are bounded, known identifiers).
const KEY_SEP: char = '\u{1f}';

thread_local! {
    /// Reused buffer for keys, so a lookup does not allocate.
    static KEY: Cell<String> = const { Cell::new(String::new()) };
}

/// Values keyed by `N` label values.
pub(crate) struct LabelMap<V, const N: usize> {
    cap: usize,
    map: RwLock<HashMap<Box<str>, V, FxBuild>>,
}

impl<V, const N: usize> Default for LabelMap<V, N> {
    fn default() -> Self {
        Self {
            cap: MAX_SERIES,
            map: RwLock::new(HashMap::default()),
        }
    }
}

impl<V, const N: usize> LabelMap<V, N> {
    /// Runs `f` on the value for these label values, made by `make` if absent. `make` gets
    /// the label values the entry is stored under (all `other` past the cap).
    pub(crate) fn with<R>(
        &self,
        values: [&str; N],
        make: impl FnOnce([&str; N]) -> V,
        f: impl FnOnce(&V) -> R,
    ) -> R {
        let mut key = KEY.take();
        key.clear();
        for v in values {
            key.push_str(v);
            key.push(KEY_SEP);
        }
        let result = self.with_key(&key, values, make, f);
        KEY.set(key);
        result
    }

    fn with_key<R>(
        &self,
        key: &str,
        values: [&str; N],
        make: impl FnOnce([&str; N]) -> V,
        f: impl FnOnce(&V) -> R,
    ) -> R {
        {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = map.get(key) {
                return f(v);
            }
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let (key, values) = if map.len() >= self.cap && !map.contains_key(key) {
            let other = [OTHER; N];
            let key = other.iter().fold(String::new(), |k, v| k + v + "\u{1f}");
            (key, other)
        } else {
            (key.to_owned(), values)
        };
        f(map
            .entry(key.into_boxed_str())
            .or_insert_with(|| make(values)))
    }

    /// Runs `f` on every value.
    fn for_each(&self, f: impl FnMut(&V)) {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .for_each(f);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

struct Series<T> {
    /// Rendered label pairs, `a="x",b="y"`.
    labels: Box<str>,
    metric: Arc<T>,
}

/// A metric family: a name, its label names, and its series keyed by label values.
pub(crate) struct Family<T, const N: usize> {
    name: &'static str,
    help: &'static str,
    label_names: [&'static str; N],
    bounds: &'static [f64],
    series: LabelMap<Series<T>, N>,
}

impl<T: Metric, const N: usize> Family<T, N> {
    pub(crate) fn new(
        name: &'static str,
        help: &'static str,
        label_names: [&'static str; N],
    ) -> Self {
        Self::with_buckets(name, help, label_names, &[])
    }

    pub(crate) fn with_buckets(
        name: &'static str,
        help: &'static str,
        label_names: [&'static str; N],
        bounds: &'static [f64],
    ) -> Self {
        let family = Self {
            name,
            help,
            label_names,
            bounds,
            series: LabelMap::default(),
        };
        if N == 0 {
            // An unlabelled metric always has its one series, so it renders from the start.
            family.with([""; N], |_| ());
        }
        family
    }

    /// Sets the series cap (tests use a small one).
    #[cfg(test)]
    pub(crate) fn cap(mut self, cap: usize) -> Self {
        self.series.cap = cap;
        self
    }

    fn make(&self, values: [&str; N]) -> Series<T> {
        Series {
            labels: text::label_pairs(&self.label_names, &values).into_boxed_str(),
            metric: Arc::new(T::new(self.bounds)),
        }
    }

    /// Runs `f` on the series with these label values, creating it if needed.
    pub(crate) fn with<R>(&self, values: [&str; N], f: impl FnOnce(&T) -> R) -> R {
        self.series.with(values, |v| self.make(v), |s| f(&s.metric))
    }

    /// A handle to the series with these label values, to keep and update without lookups.
    pub(crate) fn handle(&self, values: [&str; N]) -> Arc<T> {
        self.series
            .with(values, |v| self.make(v), |s| Arc::clone(&s.metric))
    }
}

/// A family as the renderer sees it.
pub(crate) trait Render: Send + Sync {
    fn name(&self) -> &'static str;
    /// Writes `# HELP`, `# TYPE` and every series, sorted by labels.
    fn render(&self, out: &mut String);
}

impl<T: Metric, const N: usize> Render for Family<T, N> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn render(&self, out: &mut String) {
        text::header(out, self.name, self.help, T::TYPE);
        let mut series = Vec::new();
        self.series
            .for_each(|s| series.push((s.labels.clone(), Arc::clone(&s.metric))));
        series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (labels, metric) in series {
            metric.render(out, self.name, &labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::kinds::{Counter, Gauge, Histogram};

    #[test]
    fn histogram_buckets_are_cumulative_and_le_inclusive() {
        static B: [f64; 3] = [0.1, 1.0, 10.0];
        let f = Family::<Histogram, 1>::with_buckets("h", "help", ["route"], &B);
        for v in [0.1, 0.5, 1.0, 11.0, f64::NAN, f64::INFINITY] {
            f.with(["a"], |h| h.observe(v));
        }
        let mut out = String::new();
        f.render(&mut out);
        let expected = "# HELP h help\n# TYPE h histogram\n\
            h_bucket{route=\"a\",le=\"0.1\"} 1\nh_bucket{route=\"a\",le=\"1\"} 3\n\
            h_bucket{route=\"a\",le=\"10\"} 3\nh_bucket{route=\"a\",le=\"+Inf\"} 4\n\
            h_sum{route=\"a\"} 12.6\nh_count{route=\"a\"} 4\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn series_past_the_cap_collapse_into_other() {
        let f = Family::<Counter, 2>::new("c_total", "help", ["a", "b"]).cap(3);
        for i in 0..100 {
            let v = format!("v{i}");
            f.with([&v, "x"], Counter::inc);
        }
        assert_eq!(f.series.len(), 4);
        let mut out = String::new();
        f.render(&mut out);
        assert!(
            out.contains("c_total{a=\"other\",b=\"other\"} 97\n"),
            "{out}"
        );
        assert!(out.contains("c_total{a=\"v0\",b=\"x\"} 1\n"), "{out}");
    }

    #[test]
    fn map_past_the_cap_makes_entries_under_other() {
        let m = LabelMap::<String, 2> {
            cap: 1,
            ..LabelMap::default()
        };
        let make = |v: [&str; 2]| v.join("/");
        assert_eq!(m.with(["a", "b"], make, Clone::clone), "a/b");
        assert_eq!(m.with(["c", "d"], make, Clone::clone), "other/other");
        assert_eq!(m.with(["a", "b"], make, Clone::clone), "a/b");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn unlabelled_family_renders_from_the_start() {
        let f = Family::<Gauge, 0>::new("g", "a \\ b\nc", []);
        let mut out = String::new();
        f.render(&mut out);
        assert_eq!(out, "# HELP g a \\\\ b\\nc\n# TYPE g gauge\ng 0\n");
        f.with([], |g| g.set(-2.5));
        out.clear();
        f.render(&mut out);
        assert!(out.ends_with("g -2.5\n"));
    }
}
