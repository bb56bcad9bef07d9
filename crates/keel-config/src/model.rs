//! The configuration as serde reads it. `FooConfig` is what the file says; the running
//! components are built from it after [`crate::validate`] accepted it.

use crate::defaults;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeelConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    #[serde(default)]
    pub observe: crate::observe::ObserveConfig,
    #[serde(default)]
    pub admission: crate::admission::AdmissionConfig,
    #[serde(default)]
    pub retrieval: crate::retrieval::RetrievalConfig,
    /// Policy enforcement: scanners, policies, which tenant gets which policy.
    #[serde(default)]
    pub guard: keel_guard::GuardConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "defaults::listen")]
    pub listen: SocketAddr,
    /// Largest accepted request body; larger bodies get a 413.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Upper bound on one whole request, all attempts included.
    #[serde(default = "defaults::request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests and streams before closing them.
    #[serde(default = "defaults::shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Most requests served at once; beyond it keel answers 503 rather than queue unbounded.
    #[serde(default = "defaults::max_concurrency")]
    pub max_concurrency: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: defaults::listen(),
            max_body_bytes: defaults::max_body_bytes(),
            request_timeout: defaults::request_timeout(),
            shutdown_grace: defaults::shutdown_grace(),
            max_concurrency: defaults::max_concurrency(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// API keys. Empty means no auth, which keel allows only on a loopback address.
    #[serde(default)]
    pub keys: Vec<ApiKeyConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A public id for logs and the request log (never the key itself).
    pub id: String,
    pub tenant: String,
    /// Hex SHA-256 of the key; `keel keys new` prints one. keel never stores the key.
    pub sha256: String,
    /// An admin key may also read operator endpoints (`/metrics`). Traces stay per tenant.
    #[serde(default)]
    pub admin: bool,
    /// Routes (or model names) this key may ask for; absent: all.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// Shedding class: `low` requests are shed first, `high` last.
    #[serde(default)]
    pub priority: crate::admission::Priority,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum StoreConfig {
    Sqlite {
        #[serde(default = "defaults::sqlite_path")]
        path: PathBuf,
        /// Request-log records older than this are deleted (checked every minute).
        #[serde(default = "defaults::request_retention", with = "humantime_serde")]
        request_retention: Duration,
        #[serde(default, flatten)]
        writer: WriterConfig,
    },
    Postgres {
        /// Environment variable holding the connection string (it may carry a password).
        #[serde(default = "defaults::postgres_url_env")]
        url_env: String,
        /// Schema for keel's tables; created if missing.
        #[serde(default = "defaults::postgres_schema")]
        schema: String,
        /// Request-log records older than this are deleted (checked every minute).
        #[serde(default = "defaults::request_retention", with = "humantime_serde")]
        request_retention: Duration,
        #[serde(default, flatten)]
        writer: WriterConfig,
    },
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self::Sqlite {
            path: defaults::sqlite_path(),
            request_retention: defaults::request_retention(),
            writer: WriterConfig::default(),
        }
    }
}

impl StoreConfig {
    pub fn writer(&self) -> &WriterConfig {
        match self {
            Self::Sqlite { writer, .. } | Self::Postgres { writer, .. } => writer,
        }
    }

    /// How long request-log records are kept.
    pub fn request_retention(&self) -> Duration {
        match self {
            Self::Sqlite {
                request_retention, ..
            }
            | Self::Postgres {
                request_retention, ..
            } => *request_retention,
        }
    }
}

/// The request-log writer: a bounded channel drained in batches off the request path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    #[serde(default = "defaults::log_queue_capacity")]
    pub queue_capacity: usize,
    #[serde(default = "defaults::log_batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::log_flush_interval", with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: defaults::log_queue_capacity(),
            batch_size: defaults::log_batch_size(),
            flush_interval: defaults::log_flush_interval(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum ProviderConfig {
    /// Any server speaking OpenAI's protocol: OpenAI, vLLM, Ollama, llama.cpp, Groq, Together.
    OpenaiCompat(HttpProviderConfig),
    /// Anthropic's Messages API.
    Anthropic(HttpProviderConfig),
    /// The embedded candle models.
    Local(LocalProviderConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderConfig {
    /// Base URL up to and including the version segment, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// Environment variable holding the API key; unset means no key is sent.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Deadline for one attempt (connect to last byte).
    #[serde(default = "defaults::upstream_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "defaults::connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest silence allowed between two events of a stream before it counts as stalled
    /// (a timeout); default: `timeout`.
    #[serde(default, with = "humantime_serde")]
    pub stream_idle_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalProviderConfig {
    /// Where fetched model packages are unpacked; default `~/.cache/keel/models`.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// A GGUF chat model file to use instead of the packaged SmolLM2.
    #[serde(default)]
    pub chat_gguf: Option<PathBuf>,
    /// A directory with `config.json`, `tokenizer.json`, `model.safetensors` to use instead of
    /// the packaged MiniLM.
    #[serde(default)]
    pub embeddings_dir: Option<PathBuf>,
    /// Chat requests waiting beyond the active ones; more get a 503.
    #[serde(default = "defaults::chat_queue")]
    pub chat_queue: usize,
    /// Sequences decoded at once, interleaved token by token.
    #[serde(default = "defaults::chat_max_active")]
    pub chat_max_active: usize,
    /// Most texts in one embedding forward pass.
    #[serde(default = "defaults::embed_max_batch")]
    pub embed_max_batch: usize,
    /// Embedding requests waiting; more get a 503.
    #[serde(default = "defaults::embed_queue")]
    pub embed_queue: usize,
}

/// What a model can do. Requests needing a missing capability get a 400 naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Chat,
    Embeddings,
    Stream,
    Tools,
    JsonMode,
    JsonSchema,
    MultipleChoices,
    Images,
    /// Accepts a request ending with an assistant message and continues that message
    /// (prefill); used by mid-stream recovery.
    AssistantPrefill,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A key of `[providers]`.
    pub provider: String,
    /// The id the upstream knows the model by.
    pub upstream: String,
    #[serde(default = "defaults::context_window")]
    pub context_window: u32,
    /// USD per million input tokens.
    #[serde(default)]
    pub input_price_per_mtok: f64,
    /// USD per million output tokens.
    #[serde(default)]
    pub output_price_per_mtok: f64,
    #[serde(default = "defaults::capabilities")]
    pub capabilities: Vec<Capability>,
    /// The circuit breaker of this deployment.
    #[serde(default)]
    pub circuit: CircuitConfig,
    /// Time constant of the decaying peak-EWMA of this model's latency, which `least_latency`
    /// routes compare: a slower answer counts at once, faster ones pull it down over this.
    #[serde(default = "defaults::latency_decay", with = "humantime_serde")]
    pub latency_decay: Duration,
}

/// A circuit breaker per model: while closed, the outcomes of the last `window` are counted;
/// at least `min_requests` of them with a failure share of at least `failure_rate` open the
/// circuit. An open circuit is skipped (unless every candidate is open) for `cooldown`, then
/// admits up to `half_open_probes` trial calls at once: a success closes it, a failure opens
/// it again. Only upstream faults count as failures (429, 5xx, connection failures,
/// timeouts, broken streams); client errors count as nothing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    #[serde(default = "defaults::circuit_min_requests")]
    pub min_requests: u32,
    /// Failures / outcomes in the window at or above which the circuit opens, in (0, 1].
    #[serde(default = "defaults::circuit_failure_rate")]
    pub failure_rate: f64,
    #[serde(default = "defaults::circuit_window", with = "humantime_serde")]
    pub window: Duration,
    #[serde(default = "defaults::circuit_cooldown", with = "humantime_serde")]
    pub cooldown: Duration,
    #[serde(default = "defaults::circuit_half_open_probes")]
    pub half_open_probes: u32,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        Self {
            min_requests: defaults::circuit_min_requests(),
            failure_rate: defaults::circuit_failure_rate(),
            window: defaults::circuit_window(),
            cooldown: defaults::circuit_cooldown(),
            half_open_probes: defaults::circuit_half_open_probes(),
        }
    }
}

impl ModelConfig {
    pub fn can(&self, c: Capability) -> bool {
        self.capabilities.contains(&c)
    }

    /// Cost in USD of a call with these token counts.
    pub fn cost_usd(&self, input_tokens: u32, output_tokens: u32) -> f64 {
        (f64::from(input_tokens) * self.input_price_per_mtok
            + f64::from(output_tokens) * self.output_price_per_mtok)
            / 1_000_000.0
    }
}

/// A virtual model name clients ask for, served by `models`: `strategy` decides which is tried
/// first, the others remain fallbacks in the order it gives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub models: Vec<String>,
    #[serde(default)]
    pub strategy: RouteStrategy,
    /// `weighted` only: relative share of requests each model serves first (unnamed: 1).
    #[serde(default)]
    pub weights: BTreeMap<String, u32>,
    /// `cascade` only: when the cheaper model's answer is trusted enough.
    #[serde(default)]
    pub cascade: Option<CascadeConfig>,
    /// Retries on the same model before falling over to the next one.
    #[serde(default)]
    pub retry: RetryConfig,
    /// How long a streaming attempt may wait for its first chunk before it counts as timed
    /// out and the route falls over to the next model; `None`: no limit of its own.
    #[serde(default, with = "humantime_serde")]
    pub ttft_timeout: Option<Duration>,
    /// Continue a stream broken mid-answer on another model; `None`: off (an error event).
    #[serde(default, deserialize_with = "crate::resilience::stream_recovery")]
    pub stream_recovery: Option<crate::resilience::StreamRecoveryConfig>,
    /// Hedged requests for non-streaming calls; `None`: off.
    #[serde(default)]
    pub hedge: Option<crate::resilience::HedgeConfig>,
    /// Ground answers in a collection's passages; `None`: no retrieval.
    #[serde(default)]
    pub retrieval: Option<crate::retrieval::RouteRetrievalConfig>,
    /// The `[guard.policies.<name>]` whose rails run on this route (after the tenant's).
    #[serde(default)]
    pub policy: Option<String>,
}

/// How a route orders its (capable) models for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStrategy {
    /// The order of `models`.
    #[default]
    Fallback,
    /// Smooth weighted round-robin over `weights`: exact proportions, no randomness.
    Weighted,
    /// Power of two choices over each model's peak-EWMA latency times its requests in flight.
    LeastLatency,
    /// The cheapest model (input + output price) whose capabilities and context window fit.
    Cost,
    /// `models` from cheapest to strongest: an answer whose trust is under the threshold is
    /// escalated to the next model.
    Cascade,
}

impl RouteStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fallback => "fallback",
            Self::Weighted => "weighted",
            Self::LeastLatency => "least_latency",
            Self::Cost => "cost",
            Self::Cascade => "cascade",
        }
    }
}

/// A trust signal a cascade judges an answer by; each is a value in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustSignal {
    /// 0 when the answer was cut (`length`) or filtered (`content_filter`), else 1.
    FinishReason,
    /// 0 when the answer is a refusal, else 1.
    Refusal,
    /// 0 when the answer has neither text nor tool calls, else 1.
    Empty,
    /// 0 when `response_format` asks for JSON and the answer does not parse as such, else 1.
    Json,
    /// The mean token probability, when the upstream returned logprobs.
    Logprobs,
}

/// A cascade's judge: an answer's trust is the lowest of its `signals`; under `threshold` the
/// request is escalated to the next model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeConfig {
    #[serde(default = "defaults::cascade_threshold")]
    pub threshold: f64,
    #[serde(default = "defaults::cascade_signals")]
    pub signals: Vec<TrustSignal>,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        Self {
            threshold: defaults::cascade_threshold(),
            signals: defaults::cascade_signals(),
        }
    }
}

/// Per-route retries on the same model: up to `max_retries` more attempts after a 429, 500,
/// 502, 503, 504 or a connection failure, waiting `Retry-After` when the upstream sent one (up
/// to `max_retry_after`; longer means fall over at once), else a full-jitter exponential
/// backoff: uniform in `[0, min(max_backoff, base_backoff * 2^(n-1))]` before retry `n`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    #[serde(default = "defaults::base_backoff", with = "humantime_serde")]
    pub base_backoff: Duration,
    #[serde(default = "defaults::max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// The longest `Retry-After` keel waits out on the same model.
    #[serde(default = "defaults::max_retry_after", with = "humantime_serde")]
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: defaults::max_retries(),
            base_backoff: defaults::base_backoff(),
            max_backoff: defaults::max_backoff(),
            max_retry_after: defaults::max_retry_after(),
        }
    }
}
