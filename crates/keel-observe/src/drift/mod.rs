//! Behavioural drift detection: per route, the first `baseline_size` values of each signal form
//! a baseline, later values a rolling window of `window_size`, and after every sample (once the
//! window holds `min_samples`) the window is compared with the baseline — the whole window, and
//! separately its latest `min_samples` values, so an abrupt shift is caught within about
//! `min_samples` samples however long the window is (see `series`).
//!
//! Signals ([`SIGNALS`]): `trust_score` and `grounding_score` (when samples carry them),
//! `refusal` (0/1), `output_tokens` and `latency_ms` are compared by the population stability
//! index over the baseline's deciles; `prompt_embedding` and `response_embedding` (only with an
//! embedder, for an `embed_sample_rate` fraction of samples) by the cosine distance between the
//! window's and the baseline's mean embedding. Thresholds grow with the noise expected from the
//! sample sizes; [`stats`] derives both noise terms.
//!
//! Code map:
//! - [`stats`]: the statistics, pure functions.
//! - `series`: one signal's baseline and window (bounded memory).
//! - [`DriftState`]: the synchronous core, every route and signal; deterministic, no tasks.
//! - [`DriftMonitor`]: the async front: `observe` never blocks (bounded queue, full → dropped
//!   and counted); one task embeds in batches, feeds the state and emits alerts.
//! - `webhook`: signed deliveries on their own task and queue, with retries.
//! - [`is_refusal`]: the phrase heuristic behind the refusal signal.
//!
//! An alert is a `tracing::warn!` event with target `keel::drift`, a call to
//! [`AlertSink::alert`] and, when `webhook_url` is set, a webhook. After an alert a
//! (route, signal) pair stays quiet for `alert_cooldown` samples of that route; the baseline is
//! kept, so a persistent shift alerts once per cooldown period.

mod monitor;
mod refusal;
mod series;
mod state;
pub mod stats;
mod webhook;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;

pub use monitor::{DriftHandle, DriftMonitor, DriftStats};
pub use refusal::is_refusal;
pub use state::{DriftSettings, DriftState, Outcome, Statistic};
pub use webhook::Signer;

/// Signal names, as they appear in alerts and statistics.
pub const TRUST_SCORE: &str = "trust_score";
pub const GROUNDING_SCORE: &str = "grounding_score";
pub const REFUSAL: &str = "refusal";
pub const OUTPUT_TOKENS: &str = "output_tokens";
pub const LATENCY_MS: &str = "latency_ms";
pub const PROMPT_EMBEDDING: &str = "prompt_embedding";
pub const RESPONSE_EMBEDDING: &str = "response_embedding";
/// Every signal, scalar ones first.
pub const SIGNALS: [&str; 7] = [
    TRUST_SCORE,
    GROUNDING_SCORE,
    REFUSAL,
    OUTPUT_TOKENS,
    LATENCY_MS,
    PROMPT_EMBEDDING,
    RESPONSE_EMBEDDING,
];

/// Routes tracked at most; samples of further routes are ignored and counted. A route costs
/// about 10 KB for the scalar signals (default sizes) plus, with embeddings, 2 × ~12 vectors of
/// f64 (≈ 75 KB at 384 dimensions): the worst case at the cap is under 100 MB.
pub const MAX_ROUTES: usize = 1_000;

/// What one finished request contributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftSample {
    pub route: String,
    /// Unix milliseconds; copied into alerts.
    pub at_ms: i64,
    pub trust_score: Option<f64>,
    pub grounding_score: Option<f64>,
    /// Whether the answer was a refusal (see [`is_refusal`]).
    pub refused: bool,
    pub output_tokens: Option<u32>,
    pub latency_ms: f64,
    /// Embedded (when an embedder is configured and the sample is picked) for the centroids.
    pub prompt_text: Option<String>,
    pub response_text: Option<String>,
}

/// Embeds a batch of texts: one vector per text, in order.
pub type EmbedFn =
    Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, Result<Vec<Vec<f32>>, String>> + Send + Sync>;

/// One detected drift; also the webhook body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftAlert {
    pub route: String,
    /// One of [`SIGNALS`].
    pub signal: &'static str,
    /// PSI or cosine distance.
    pub statistic: f64,
    /// Configured threshold plus the sample-size correction.
    pub threshold: f64,
    pub baseline_n: usize,
    pub window_n: usize,
    pub at_ms: i64,
    /// Method, expected noise and signal-specific figures (means, bin counts, dimensions).
    pub detail: serde_json::Value,
}

/// Where alerts and statistics go besides the log (e.g. metrics). Called from the monitor's
/// task: implementations must be quick and must not block.
pub trait AlertSink: Send + Sync {
    fn alert(&self, alert: &DriftAlert);
    /// The whole-window statistic of a (route, signal), after every comparison (e.g. a gauge).
    fn statistic(&self, route: &str, signal: &str, value: f64);
}

/// A sink that discards everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopSink;

impl AlertSink for NoopSink {
    fn alert(&self, _: &DriftAlert) {}
    fn statistic(&self, _: &str, _: &str, _: f64) {}
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error(
        "observe.drift.webhook_secret_env: environment variable {0} is not set (or is empty); \
         it must hold the webhook's HMAC secret"
    )]
    MissingSecret(String),
    #[error("observe.drift.webhook_secret_env is required with webhook_url")]
    NoSecretEnv,
    #[error("observe.drift.webhook_secret_env: the secret must not be empty")]
    EmptySecret,
    #[error("drift webhook HTTP client: {0}")]
    Http(String),
}
