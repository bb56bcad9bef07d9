//! `DriftState`: the synchronous core of drift detection. It takes samples with their embeddings
//! already computed and returns statistics and alerts; no tasks, no clocks, no randomness, so
//! the detection logic is tested deterministically.

use std::collections::HashMap;

use keel_config::DriftConfig;

use super::series::{Comparison, EmbeddingSeries, Evaluation, ScalarSeries, Sizes};
use super::{DriftAlert, DriftSample, MAX_ROUTES, SIGNALS};
use crate::metrics::FxBuild;

/// The numbers the state works with (from `[observe.drift]`, plus the route cap).
#[derive(Debug, Clone, PartialEq)]
pub struct DriftSettings {
    pub baseline_size: usize,
    pub window_size: usize,
    pub min_samples: usize,
    pub psi_threshold: f64,
    pub centroid_threshold: f64,
    /// Samples of a route during which a (route, signal) stays quiet after an alert.
    pub alert_cooldown: usize,
    /// Routes tracked at most; samples of other routes are ignored and counted.
    pub max_routes: usize,
    /// Which of [`SIGNALS`] are compared (`[observe.drift] signals`); others are skipped.
    pub enabled: [bool; SIGNALS.len()],
}

impl DriftSettings {
    pub fn from_config(cfg: &DriftConfig) -> Self {
        Self {
            baseline_size: cfg.baseline_size,
            window_size: cfg.window_size,
            min_samples: cfg.min_samples,
            psi_threshold: cfg.psi_threshold,
            centroid_threshold: cfg.centroid_threshold,
            alert_cooldown: cfg.alert_cooldown,
            max_routes: MAX_ROUTES,
            enabled: SIGNALS.map(|sig| cfg.signals.iter().any(|s| s == sig)),
        }
    }

    fn sizes(&self) -> Sizes {
        Sizes {
            baseline: self.baseline_size.max(1),
            window: self.window_size.max(1),
            min_samples: self.min_samples.clamp(1, self.window_size.max(1)),
        }
    }
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self::from_config(&DriftConfig::default())
    }
}

/// One comparison of a (route, signal): reported to [`super::AlertSink::statistic`].
#[derive(Debug, Clone, PartialEq)]
pub struct Statistic {
    pub signal: &'static str,
    pub value: f64,
    pub threshold: f64,
    pub window_n: usize,
}

/// What one sample caused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub statistics: Vec<Statistic>,
    pub alerts: Vec<DriftAlert>,
}

const SCALARS: usize = 5;

struct Route {
    /// Samples seen for this route since it was (re)started.
    samples: u64,
    scalars: [ScalarSeries; SCALARS],
    embeddings: [EmbeddingSeries; 2],
    /// Per signal (index into `SIGNALS`): alerts are suppressed while `samples <= quiet_until`.
    quiet_until: [u64; SIGNALS.len()],
}

impl Route {
    fn new() -> Self {
        Self {
            samples: 0,
            scalars: std::array::from_fn(|_| ScalarSeries::new()),
            embeddings: std::array::from_fn(|_| EmbeddingSeries::new()),
            quiet_until: [0; SIGNALS.len()],
        }
    }
}

/// Every route's series. See the module docs of [`super`] for the rules.
pub struct DriftState {
    settings: DriftSettings,
    /// Route names come from the configuration, so FxHash (see the metrics' series keys).
    routes: HashMap<String, Route, FxBuild>,
    routes_ignored: u64,
}

impl DriftState {
    pub fn new(settings: DriftSettings) -> Self {
        Self {
            settings,
            routes: HashMap::default(),
            routes_ignored: 0,
        }
    }

    pub fn settings(&self) -> &DriftSettings {
        &self.settings
    }

    /// Routes being tracked.
    pub fn routes(&self) -> usize {
        self.routes.len()
    }

    /// Samples ignored because `max_routes` routes were already tracked.
    pub fn routes_ignored(&self) -> u64 {
        self.routes_ignored
    }

    /// Forgets a route (or every route with `None`): its next samples form a new baseline.
    pub fn reset(&mut self, route: Option<&str>) {
        match route {
            Some(r) => {
                self.routes.remove(r);
            }
            None => self.routes.clear(),
        }
    }

    /// Adds one sample with its prompt and response embeddings (if computed) and compares every
    /// signal it carries whose window is ready.
    pub fn observe(
        &mut self,
        s: &DriftSample,
        prompt_embedding: Option<&[f32]>,
        response_embedding: Option<&[f32]>,
    ) -> Outcome {
        let mut out = Outcome::default();
        if !self.routes.contains_key(&s.route) {
            if self.routes.len() >= self.settings.max_routes {
                self.routes_ignored += 1;
                return out;
            }
            self.routes.insert(s.route.clone(), Route::new());
        }
        let Some(route) = self.routes.get_mut(&s.route) else {
            return out;
        };
        route.samples += 1;
        let sizes = self.settings.sizes();
        let mut judge = Judge {
            out: &mut out,
            sample: s,
            samples: route.samples,
            cooldown: self.settings.alert_cooldown as u64,
        };
        let scalars = [
            s.trust_score,
            s.grounding_score,
            Some(if s.refused { 1.0 } else { 0.0 }),
            s.output_tokens.map(f64::from),
            Some(s.latency_ms),
        ];
        let (scalar_quiet, embedding_quiet) = route.quiet_until.split_at_mut(SCALARS);
        let iter = scalars
            .into_iter()
            .zip(&mut route.scalars)
            .zip(scalar_quiet.iter_mut());
        let on = self.settings.enabled;
        for ((((v, series), quiet), signal), on) in iter.zip(SIGNALS).zip(on) {
            if on
                && let Some(v) = v
                && let Some(c) = series.push(v, sizes, self.settings.psi_threshold)
            {
                judge.judge(signal, quiet, &c, |e| series.detail(e));
            }
        }
        let embeddings = [prompt_embedding, response_embedding];
        let iter = embeddings
            .into_iter()
            .zip(&mut route.embeddings)
            .zip(embedding_quiet.iter_mut());
        let signals = SIGNALS.into_iter().zip(on).skip(SCALARS);
        for (((v, series), quiet), (signal, on)) in iter.zip(signals) {
            if on
                && let Some(v) = v
                && let Some(c) = series.push(v, sizes, self.settings.centroid_threshold)
            {
                judge.judge(signal, quiet, &c, |e| series.detail(e));
            }
        }
        out
    }
}

/// Turns comparisons into statistics and alerts for one sample.
struct Judge<'a> {
    out: &'a mut Outcome,
    sample: &'a DriftSample,
    /// The route's sample count, including this sample.
    samples: u64,
    cooldown: u64,
}

impl Judge<'_> {
    /// Records the whole window's statistic, and raises an alert when either span is over its
    /// threshold and the (route, signal) is not cooling down (`samples <= quiet`).
    fn judge(
        &mut self,
        signal: &'static str,
        quiet: &mut u64,
        c: &Comparison,
        detail: impl FnOnce(&Evaluation) -> serde_json::Value,
    ) {
        self.out.statistics.push(Statistic {
            signal,
            value: c.window.statistic,
            threshold: c.window.threshold,
            window_n: c.window.window_n,
        });
        let Some(e) = c.fired() else { return };
        if self.samples <= *quiet {
            return;
        }
        *quiet = self.samples.saturating_add(self.cooldown);
        self.out.alerts.push(DriftAlert {
            route: self.sample.route.clone(),
            signal,
            statistic: e.statistic,
            threshold: e.threshold,
            baseline_n: e.baseline_n,
            window_n: e.window_n,
            at_ms: self.sample.at_ms,
            detail: detail(e),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DriftSettings {
        DriftSettings {
            baseline_size: 10,
            window_size: 10,
            min_samples: 5,
            psi_threshold: 0.25,
            centroid_threshold: 0.15,
            alert_cooldown: 100,
            max_routes: 2,
            enabled: [true; SIGNALS.len()],
        }
    }

    #[test]
    fn disabled_signals_are_never_compared() {
        let cfg = DriftConfig {
            signals: vec!["output_tokens".into()],
            ..DriftConfig::default()
        };
        let mut on = DriftSettings::from_config(&cfg);
        assert_eq!(on.enabled.iter().filter(|e| **e).count(), 1);
        on.baseline_size = 10;
        on.window_size = 10;
        on.min_samples = 5;
        let mut st = DriftState::new(on);
        let mut compared = std::collections::BTreeSet::new();
        for i in 0..40 {
            let mut s = sample("r", if i < 20 { 10.0 } else { 900.0 });
            s.output_tokens = Some(100);
            for stat in st.observe(&s, None, None).statistics {
                compared.insert(stat.signal);
            }
        }
        assert_eq!(compared.into_iter().collect::<Vec<_>>(), ["output_tokens"]);
    }

    fn sample(route: &str, latency: f64) -> DriftSample {
        DriftSample {
            route: route.into(),
            latency_ms: latency,
            ..DriftSample::default()
        }
    }

    #[test]
    fn routes_beyond_the_cap_are_ignored_and_counted() {
        let mut st = DriftState::new(settings());
        for r in ["a", "b", "c", "a", "c"] {
            st.observe(&sample(r, 1.0), None, None);
        }
        assert_eq!(st.routes(), 2);
        assert_eq!(st.routes_ignored(), 2);
        st.reset(Some("a"));
        st.observe(&sample("c", 1.0), None, None);
        assert_eq!((st.routes(), st.routes_ignored()), (2, 2));
        st.reset(None);
        assert_eq!(st.routes(), 0);
    }

    #[test]
    fn only_carried_signals_are_compared() {
        let mut st = DriftState::new(settings());
        let mut last = Outcome::default();
        for i in 0..20 {
            last = st.observe(&sample("a", f64::from(i % 3)), None, None);
        }
        let signals: Vec<_> = last.statistics.iter().map(|s| s.signal).collect();
        assert_eq!(signals, vec!["refusal", "latency_ms"]);
    }

    #[test]
    fn a_reset_starts_a_new_baseline() {
        let mut st = DriftState::new(settings());
        for _ in 0..10 {
            st.observe(&sample("a", 1.0), None, None);
        }
        st.reset(Some("a"));
        for _ in 0..10 {
            let out = st.observe(&sample("a", 50.0), None, None);
            assert!(out.statistics.is_empty());
        }
        for _ in 0..10 {
            let out = st.observe(&sample("a", 50.0), None, None);
            assert!(out.alerts.is_empty());
        }
    }
}
