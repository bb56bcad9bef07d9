//! `[observe]`: logs, traces (OTLP export and the trace store), metrics and drift detection.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub use keel_types::trace::ContentMode;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveConfig {
    /// `text` (human) or `json` (one JSON object per line).
    #[serde(default)]
    pub log_format: LogFormat,
    /// Message content on exported OTLP spans (`gen_ai.input.messages` etc.). Off by default.
    #[serde(default)]
    pub span_content: bool,
    /// Content kept in the trace store for tenants without their own setting.
    #[serde(default)]
    pub content: ContentMode,
    /// Per-tenant overrides: `[observe.tenants.acme] content = "full"`.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantObserveConfig>,
    /// Keep traces in the store; off means only OTLP (if configured) sees them.
    #[serde(default = "yes")]
    pub store_traces: bool,
    /// Traces older than this are deleted (checked every minute).
    #[serde(default = "retention", with = "humantime_serde")]
    pub trace_retention: Duration,
    /// Prometheus metrics on `/metrics` (admin keys only when keys are configured).
    #[serde(default = "yes")]
    pub metrics: bool,
    /// Which traces are kept (stored and exported); see [`SamplingConfig`].
    #[serde(default)]
    pub sampling: SamplingConfig,
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
    #[serde(default)]
    pub drift: DriftConfig,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::default(),
            span_content: false,
            content: ContentMode::default(),
            tenants: BTreeMap::new(),
            store_traces: true,
            trace_retention: retention(),
            metrics: true,
            sampling: SamplingConfig::default(),
            otlp: None,
            drift: DriftConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantObserveConfig {
    #[serde(default)]
    pub content: Option<ContentMode>,
}

/// Tail sampling of traces. Metrics, drift and the request log always see every request;
/// this bounds what full traces cost under load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingConfig {
    /// Ordinary traces kept per second at most (a token bucket; a burst of one second).
    #[serde(default = "max_per_second")]
    pub max_per_second: f64,
    /// Traces of failed, fallen-back, policy-acted or low-trust requests kept per second at
    /// most; beyond it they compete for the ordinary budget.
    #[serde(default = "notable_per_second")]
    pub keep_notable_per_second: f64,
    /// Fraction of ordinary requests considered before the per-second cap.
    #[serde(default = "one")]
    pub rate: f64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            max_per_second: max_per_second(),
            keep_notable_per_second: notable_per_second(),
            rate: one(),
        }
    }
}

fn max_per_second() -> f64 {
    100.0
}
fn notable_per_second() -> f64 {
    1000.0
}

/// OTLP/HTTP (protobuf) trace export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// Full URL of the traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    /// `service.name` resource attribute.
    #[serde(default = "service_name")]
    pub service_name: String,
    /// Spans waiting for export; beyond this new traces are dropped and counted, never waited on.
    #[serde(default = "otlp_queue")]
    pub queue_capacity: usize,
    /// Most spans per export request.
    #[serde(default = "otlp_batch")]
    pub batch_size: usize,
    /// Export at least this often when spans are waiting.
    #[serde(default = "otlp_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Deadline of one export request.
    #[serde(default = "otlp_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra headers (e.g. an auth header for a collector), values read from env vars:
    /// `headers_env = { "x-api-key" = "OTLP_KEY" }`.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
}

/// Behavioural drift: rolling windows per route compared with a baseline window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Requests in the baseline window (the first ones seen per route, or after a reset).
    #[serde(default = "drift_window")]
    pub baseline_size: usize,
    /// Requests in the rolling window compared with the baseline.
    #[serde(default = "drift_window")]
    pub window_size: usize,
    /// Fewest samples in the rolling window before any comparison is made.
    #[serde(default = "drift_min")]
    pub min_samples: usize,
    /// Population stability index above which a scalar signal has drifted (0.25 is the
    /// conventional "significant shift"); a sample-size correction is added on top.
    #[serde(default = "psi_threshold")]
    pub psi_threshold: f64,
    /// Cosine distance between window and baseline embedding centroids above which prompts
    /// or answers have drifted; a sample-size correction is added on top.
    #[serde(default = "centroid_threshold")]
    pub centroid_threshold: f64,
    /// Embed prompts and answers with this embeddings model (a `[models]` key) for the
    /// centroid signals; unset turns those two signals off.
    #[serde(default)]
    pub embeddings_model: Option<String>,
    /// Fraction of requests whose prompt and answer are embedded (embedding costs CPU).
    #[serde(default = "one")]
    pub embed_sample_rate: f64,
    /// Signals compared (default: all): `trust_score`, `grounding_score`, `refusal`,
    /// `output_tokens`, `latency_ms`, `prompt_embedding`, `response_embedding`.
    #[serde(default = "all_signals")]
    pub signals: Vec<String>,
    /// After an alert for a signal, stay quiet about that signal for this many requests.
    #[serde(default = "drift_window")]
    pub alert_cooldown: usize,
    /// POST alerts here as JSON, signed with HMAC-SHA256 in `x-keel-signature`.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Environment variable holding the HMAC secret for the webhook.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    /// Delivery attempts per alert (exponential backoff between them).
    #[serde(default = "webhook_attempts")]
    pub webhook_attempts: u32,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            baseline_size: drift_window(),
            window_size: drift_window(),
            min_samples: drift_min(),
            psi_threshold: psi_threshold(),
            centroid_threshold: centroid_threshold(),
            embeddings_model: None,
            embed_sample_rate: one(),
            signals: all_signals(),
            alert_cooldown: drift_window(),
            webhook_url: None,
            webhook_secret_env: None,
            webhook_attempts: webhook_attempts(),
        }
    }
}

/// Every drift signal keel computes.
pub const DRIFT_SIGNALS: [&str; 7] = [
    "trust_score",
    "grounding_score",
    "refusal",
    "output_tokens",
    "latency_ms",
    "prompt_embedding",
    "response_embedding",
];

fn all_signals() -> Vec<String> {
    DRIFT_SIGNALS.iter().map(|s| (*s).to_owned()).collect()
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn retention() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn service_name() -> String {
    "keel".into()
}
fn otlp_queue() -> usize {
    16_384
}
fn otlp_batch() -> usize {
    512
}
fn otlp_interval() -> Duration {
    Duration::from_secs(1)
}
fn otlp_timeout() -> Duration {
    Duration::from_secs(10)
}
fn drift_window() -> usize {
    200
}
fn drift_min() -> usize {
    50
}
fn psi_threshold() -> f64 {
    0.25
}
fn centroid_threshold() -> f64 {
    0.15
}
fn webhook_attempts() -> u32 {
    5
}
