//! Pull-style metrics: values owned elsewhere, sampled when metrics are rendered.

use std::sync::{Arc, PoisonError};

use super::{Metrics, text};

/// Why a pull-style metric could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// Not `[a-zA-Z_:][a-zA-Z0-9_:]*`, or a counter name without the `_total` suffix.
    #[error("invalid metric name {0:?}")]
    InvalidName(String),
    /// The name is taken by a built-in metric or an earlier registration.
    #[error("metric {0:?} is already registered")]
    Duplicate(String),
}

/// A value sampled when metrics are rendered.
pub(super) struct Pull {
    pub(super) name: String,
    pub(super) help: String,
    pub(super) kind: &'static str,
    pub(super) value: Box<dyn Fn() -> f64 + Send + Sync>,
}

/// A function run before each render (e.g. to set `keel_queue_depth` from queues elsewhere).
pub(super) type ScrapeHook = Arc<dyn Fn(&Metrics) + Send + Sync>;

impl Metrics {
    /// Runs `f` at the start of every [`render`](Self::render), so gauges such as
    /// [`set_queue_depth`](Self::set_queue_depth) can be sampled from state owned elsewhere.
    /// `f` must not register further hooks.
    pub fn on_scrape(&self, f: impl Fn(&Metrics) + Send + Sync + 'static) {
        self.inner
            .scrape_hooks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(f));
    }

    /// A counter owned elsewhere (e.g. `keel_request_log_dropped_total` from the request-log
    /// writer's `dropped()`), read at every [`render`](Self::render). The name must end in
    /// `_total`.
    pub fn register_counter_fn(
        &self,
        name: &str,
        help: &str,
        f: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        if !name.ends_with("_total") {
            return Err(MetricsError::InvalidName(name.to_owned()));
        }
        self.register(name, help, "counter", Box::new(move || f() as f64))
    }

    /// A gauge owned elsewhere, read at every [`render`](Self::render).
    pub fn register_gauge_fn(
        &self,
        name: &str,
        help: &str,
        f: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricsError> {
        self.register(name, help, "gauge", Box::new(f))
    }

    fn register(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        value: Box<dyn Fn() -> f64 + Send + Sync>,
    ) -> Result<(), MetricsError> {
        if !text::valid_name(name) {
            return Err(MetricsError::InvalidName(name.to_owned()));
        }
        let builtin = self.inner.families().into_iter().any(|f| {
            let base = f.name();
            name.strip_prefix(base)
                .is_some_and(|rest| matches!(rest, "" | "_bucket" | "_sum" | "_count"))
        });
        let mut pulls = self
            .inner
            .pulls
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if builtin || pulls.iter().any(|p| p.name == name) {
            return Err(MetricsError::Duplicate(name.to_owned()));
        }
        pulls.push(Arc::new(Pull {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            value,
        }));
        Ok(())
    }
}
