//! Prometheus metrics: [`Metrics`], one registry per server, rendered in the text exposition
//! format 0.0.4 by [`Metrics::render`].
//!
//! keel keeps its own small registry rather than installing a `metrics` recorder:
//! - no global state: every `Metrics` (several servers may share a test process) is its own;
//! - histograms are fixed buckets of atomics, so memory is constant between scrapes
//!   (`metrics-exporter-prometheus` keeps every raw sample until a scrape or an upkeep task
//!   drains it);
//! - values owned elsewhere (request-log drops, OTLP drops) are sampled at scrape time with
//!   their proper `# TYPE` ([`Metrics::register_counter_fn`], [`Metrics::register_gauge_fn`]).
//!
//! Recording a request costs one lookup for the handles cached per (endpoint, route, model,
//! status), one per upstream attempt, fallback and policy action (shared read locks, FxHash
//! over a reused key buffer), then atomic adds; nothing allocates once a label set has been
//! seen. About 0.4 µs per request on one thread.
//!
//! Label values are bounded (see `labels`): `route` and `model` are configured names, `none`
//! or `other`; other labels are identifiers from keel's vocabularies or `other`; each family
//! holds at most 10,000 series. Metrics (all with `# HELP`):
//!
//! | name | type | labels |
//! |---|---|---|
//! | `keel_requests_total` | counter | endpoint, route, model, status |
//! | `keel_request_duration_seconds` | histogram | endpoint, route, model, status |
//! | `keel_stream_errors_total` | counter | route, error_class |
//! | `keel_time_to_first_token_seconds` | histogram | route, model |
//! | `keel_time_per_output_token_seconds` | histogram | route, model |
//! | `keel_tokens_total` | counter | route, model, direction (`input`/`output`) |
//! | `keel_cost_usd_total` | counter | route, model |
//! | `keel_upstream_attempts_total` | counter | route, model, outcome |
//! | `keel_fallbacks_total` | counter | route, reason |
//! | `keel_output_tokens` | histogram | route |
//! | `keel_trust_score`, `keel_grounding_score` | histogram | route |
//! | `keel_policy_actions_total` | counter | route, action |
//! | `keel_refusals_total`, `keel_escalations_total` | counter | route |
//! | `keel_inflight_requests` | gauge | |
//! | `keel_shed_requests_total` | counter | reason |
//! | `keel_admission_rejections_total` | counter | reason (the limit: `requests_per_minute`, `budget`, `scope`, ...) |
//! | `keel_budget_alerts_total` | counter | scope (`key`/`tenant`) |
//! | `keel_queue_depth` | gauge | queue |
//! | `keel_drift_alerts_total` | counter | route, signal |
//! | `keel_drift_statistic` | gauge | route, signal |
//! | `keel_circuit_state` | gauge | model (0 closed, 1 half-open, 2 open) |

mod family;
mod kinds;
mod labels;
mod pull;
mod text;

pub(crate) use kinds::FxBuild;

use std::fmt;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use keel_store::RequestRecord;
use keel_types::trace::TraceRecord;

use family::{Family, LabelMap, Render};
use kinds::{Counter, FloatCounter, Gauge, Histogram};
use labels::{Names, vocab};
pub use pull::MetricsError;
use pull::Pull;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The outcome of an attempt that answered.
const OK: &str = "ok";

const DURATION_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];
const TTFT_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0,
];
const TPOT_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
];
const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];
const SCORE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// keel's Prometheus metrics. Cloning is cheap and clones share the same values.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("known_names", &self.inner.names.len())
            .finish_non_exhaustive()
    }
}

/// Handles to the series one kind of request (endpoint, route, model, status) updates, so
/// recording it costs one lookup. Each is created on first use, so no empty series appear.
struct RequestSeries {
    /// The label values the entry is stored under (all `other` past the cap).
    labels: [Box<str>; 4],
    requests: OnceLock<Arc<Counter>>,
    duration: OnceLock<Arc<Histogram>>,
    ttft: OnceLock<Arc<Histogram>>,
    tpot: OnceLock<Arc<Histogram>>,
    input_tokens: OnceLock<Arc<Counter>>,
    output_tokens: OnceLock<Arc<Counter>>,
    cost: OnceLock<Arc<FloatCounter>>,
    output_length: OnceLock<Arc<Histogram>>,
    trust: OnceLock<Arc<Histogram>>,
    grounding: OnceLock<Arc<Histogram>>,
}

impl RequestSeries {
    fn new(labels: [&str; 4]) -> Self {
        Self {
            labels: labels.map(Box::from),
            requests: OnceLock::new(),
            duration: OnceLock::new(),
            ttft: OnceLock::new(),
            tpot: OnceLock::new(),
            input_tokens: OnceLock::new(),
            output_tokens: OnceLock::new(),
            cost: OnceLock::new(),
            output_length: OnceLock::new(),
            trust: OnceLock::new(),
            grounding: OnceLock::new(),
        }
    }
}

/// The handle in `cell`, made by `make` on first use.
fn get<T>(cell: &OnceLock<Arc<T>>, make: impl FnOnce() -> Arc<T>) -> &T {
    cell.get_or_init(make)
}

struct Inner {
    names: Names,
    by_request: LabelMap<RequestSeries, 4>,
    requests: Family<Counter, 4>,
    duration: Family<Histogram, 4>,
    stream_errors: Family<Counter, 2>,
    ttft: Family<Histogram, 2>,
    tpot: Family<Histogram, 2>,
    tokens: Family<Counter, 3>,
    cost: Family<FloatCounter, 2>,
    attempts: Family<Counter, 3>,
    fallbacks: Family<Counter, 2>,
    output_tokens: Family<Histogram, 1>,
    trust: Family<Histogram, 1>,
    grounding: Family<Histogram, 1>,
    policy: Family<Counter, 2>,
    refusals: Family<Counter, 1>,
    escalations: Family<Counter, 1>,
    inflight: Family<Gauge, 0>,
    shed: Family<Counter, 1>,
    admission_rejections: Family<Counter, 1>,
    budget_alerts: Family<Counter, 1>,
    queue_depth: Family<Gauge, 1>,
    drift_alerts: Family<Counter, 2>,
    drift_statistic: Family<Gauge, 2>,
    circuit_state: Family<Gauge, 1>,
    pulls: RwLock<Vec<Arc<Pull>>>,
    /// Run at the start of every render, to set gauges from state owned elsewhere.
    scrape_hooks: RwLock<Vec<pull::ScrapeHook>>,
}

impl Default for Inner {
    fn default() -> Self {
        Self::new(Names::default())
    }
}

impl Inner {
    #[rustfmt::skip]
    fn new(names: Names) -> Self {
        const RM: [&str; 2] = ["route", "model"];
        const R: [&str; 1] = ["route"];
        const REQUEST: [&str; 4] = ["endpoint", "route", "model", "status"];
        Self {
            names,
            by_request: LabelMap::default(),
            requests: Family::new("keel_requests_total",
                "Client requests finished, by the model that answered and the HTTP status.", REQUEST),
            duration: Family::with_buckets("keel_request_duration_seconds",
                "Time from request arrival to the end of the response.", REQUEST, &DURATION_BUCKETS),
            stream_errors: Family::new("keel_stream_errors_total",
                "Streams that failed after HTTP 200 was sent, by error class.", ["route", "error_class"]),
            ttft: Family::with_buckets("keel_time_to_first_token_seconds",
                "Time from request arrival to the first token (streams) or first byte.", RM, &TTFT_BUCKETS),
            tpot: Family::with_buckets("keel_time_per_output_token_seconds",
                "Time per output token after the first.", RM, &TPOT_BUCKETS),
            tokens: Family::new("keel_tokens_total",
                "Tokens processed, by direction (input or output).", ["route", "model", "direction"]),
            cost: Family::new("keel_cost_usd_total", "Cost of answered requests in US dollars.", RM),
            attempts: Family::new("keel_upstream_attempts_total",
                "Upstream calls made, by outcome (ok or an error class).", ["route", "model", "outcome"]),
            fallbacks: Family::new("keel_fallbacks_total",
                "Failed upstream attempts followed by another attempt, by the failure.", ["route", "reason"]),
            output_tokens: Family::with_buckets("keel_output_tokens",
                "Output length of answered requests in tokens.", R, &TOKEN_BUCKETS),
            trust: Family::with_buckets("keel_trust_score", "Trust score of answers.", R, &SCORE_BUCKETS),
            grounding: Family::with_buckets("keel_grounding_score",
                "Grounding score of answers.", R, &SCORE_BUCKETS),
            policy: Family::new("keel_policy_actions_total",
                "Requests by the strongest policy action taken.", ["route", "action"]),
            refusals: Family::new("keel_refusals_total", "Answers keel refused to serve.", R),
            escalations: Family::new("keel_escalations_total", "Requests escalated to a human.", R),
            inflight: Family::new("keel_inflight_requests", "Requests being served now.", []),
            shed: Family::new("keel_shed_requests_total",
                "Requests rejected by load shedding, by reason.", ["reason"]),
            admission_rejections: Family::new("keel_admission_rejections_total",
                "Requests refused by admission control (rate limits, budgets, key scopes), by reason.",
                ["reason"]),
            budget_alerts: Family::new("keel_budget_alerts_total",
                "Soft budgets reached (once per budget period), by scope.", ["scope"]),
            queue_depth: Family::new("keel_queue_depth", "Items waiting in a bounded queue.", ["queue"]),
            drift_alerts: Family::new("keel_drift_alerts_total",
                "Drift alerts raised, by route and signal.", ["route", "signal"]),
            drift_statistic: Family::new("keel_drift_statistic",
                "Latest drift statistic (e.g. PSI) of a route's signal against its baseline.",
                ["route", "signal"]),
            circuit_state: Family::new("keel_circuit_state",
                "Circuit breaker state of a model: 0 closed, 1 half-open, 2 open.", ["model"]),
            pulls: RwLock::new(Vec::new()),
            scrape_hooks: RwLock::new(Vec::new()),
        }
    }

    fn families(&self) -> [&dyn Render; 23] {
        [
            &self.requests,
            &self.duration,
            &self.stream_errors,
            &self.ttft,
            &self.tpot,
            &self.tokens,
            &self.cost,
            &self.attempts,
            &self.fallbacks,
            &self.output_tokens,
            &self.trust,
            &self.grounding,
            &self.policy,
            &self.refusals,
            &self.escalations,
            &self.inflight,
            &self.shed,
            &self.admission_rejections,
            &self.budget_alerts,
            &self.queue_depth,
            &self.drift_alerts,
            &self.drift_statistic,
            &self.circuit_state,
        ]
    }
}

impl Metrics {
    /// A registry whose `route` and `model` labels may take the given names (the configured
    /// routes and models); any other name is recorded as `other`.
    pub fn new<I, S>(known_names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            inner: Arc::new(Inner::new(Names::new(known_names))),
        }
    }

    /// Records one finished request from its request-log record and, when there is one, its
    /// trace (scores and policy action).
    ///
    /// `model` is the model of the last attempt with outcome `ok` (else `none`). A stream
    /// that failed after HTTP 200 (status 200 with an error class) counts as status `200` and
    /// in `keel_stream_errors_total`.
    pub fn record_request(&self, r: &RequestRecord, trace: Option<&TraceRecord>) {
        let m = &*self.inner;
        let route = m.names.get(r.route.as_deref());
        let answered = r.attempts.iter().rev().find(|a| a.outcome == OK);
        let model = m.names.get(answered.map(|a| a.model.as_str()));
        let mut status_buf = [0; 3];
        let status = labels::status(r.status, &mut status_buf);
        let key = [vocab(&r.endpoint), route, model, status];
        let series = |s: &RequestSeries| self.record_series(s, r, trace);
        m.by_request.with(key, RequestSeries::new, series);
        if r.status == 200
            && let Some(class) = &r.error_class
        {
            m.stream_errors.with([route, vocab(class)], Counter::inc);
        }
        let last = r.attempts.len().saturating_sub(1);
        for (i, a) in r.attempts.iter().enumerate() {
            let outcome = vocab(&a.outcome);
            let model = m.names.get(Some(&a.model));
            m.attempts.with([route, model, outcome], Counter::inc);
            if i < last && a.outcome != OK {
                m.fallbacks.with([route, outcome], Counter::inc);
            }
        }
        if let Some(action) = trace.and_then(|t| t.policy_action.as_deref()) {
            m.policy.with([route, vocab(action)], Counter::inc);
        }
    }

    /// A policy action on a request whose trace was not kept (`keel_policy_actions_total`;
    /// kept traces count through [`record_request`](Self::record_request)).
    pub fn record_policy_action(&self, route: Option<&str>, action: &str) {
        let route = self.inner.names.get(route);
        self.inner.policy.with([route, vocab(action)], Counter::inc);
    }

    /// The part of [`record_request`](Self::record_request) that goes through the cached
    /// handles of one request kind.
    fn record_series(&self, s: &RequestSeries, r: &RequestRecord, trace: Option<&TraceRecord>) {
        let m = &*self.inner;
        let key = s.labels.each_ref().map(|l| &**l);
        let [_, route, model, _] = key;
        let rm = [route, model];
        get(&s.requests, || m.requests.handle(key)).inc();
        get(&s.duration, || m.duration.handle(key)).observe(r.total_ms / 1000.0);
        if let Some(ttft_ms) = r.ttft_ms {
            get(&s.ttft, || m.ttft.handle(rm)).observe(ttft_ms / 1000.0);
            if let Some(out) = r.output_tokens
                && out > 1
                && r.total_ms >= ttft_ms
            {
                let tpot = (r.total_ms - ttft_ms) / 1000.0 / f64::from(out - 1);
                get(&s.tpot, || m.tpot.handle(rm)).observe(tpot);
            }
        }
        if let Some(n) = r.input_tokens {
            let labels = [route, model, "input"];
            get(&s.input_tokens, || m.tokens.handle(labels)).add(u64::from(n));
        }
        if let Some(n) = r.output_tokens {
            let labels = [route, model, "output"];
            get(&s.output_tokens, || m.tokens.handle(labels)).add(u64::from(n));
            get(&s.output_length, || m.output_tokens.handle([route])).observe(f64::from(n));
        }
        if let Some(cost) = r.cost_usd {
            get(&s.cost, || m.cost.handle(rm)).add(cost);
        }
        if let Some(score) = trace.and_then(|t| t.trust_score) {
            get(&s.trust, || m.trust.handle([route])).observe(score);
        }
        if let Some(score) = trace.and_then(|t| t.grounding_score) {
            get(&s.grounding, || m.grounding.handle([route])).observe(score);
        }
    }

    /// An answer keel refused to serve (`keel_refusals_total`).
    pub fn record_refusal(&self, route: &str) {
        let route = self.inner.names.get(Some(route));
        self.inner.refusals.with([route], Counter::inc);
    }

    /// A request escalated to a human (`keel_escalations_total`).
    pub fn record_escalation(&self, route: &str) {
        let route = self.inner.names.get(Some(route));
        self.inner.escalations.with([route], Counter::inc);
    }

    /// The number of requests being served (`keel_inflight_requests`).
    pub fn set_inflight(&self, n: usize) {
        self.inner.inflight.with([], |g| g.set(n as f64));
    }

    /// A request rejected by load shedding (`keel_shed_requests_total{reason}`).
    pub fn record_shed(&self, reason: &str) {
        self.inner.shed.with([vocab(reason)], Counter::inc);
    }

    /// A request refused by admission control (`keel_admission_rejections_total{reason}`).
    pub fn record_admission_rejection(&self, reason: &str) {
        self.inner
            .admission_rejections
            .with([vocab(reason)], Counter::inc);
    }

    /// A soft budget reached for the first time in its period
    /// (`keel_budget_alerts_total{scope}`).
    pub fn record_budget_alert(&self, scope: &str) {
        self.inner.budget_alerts.with([vocab(scope)], Counter::inc);
    }

    /// Items waiting in a bounded queue (`keel_queue_depth{queue}`), e.g. `local_chat`,
    /// `local_embed`, `request_log`, `otlp`.
    pub fn set_queue_depth(&self, queue: &str, n: usize) {
        self.inner
            .queue_depth
            .with([vocab(queue)], |g| g.set(n as f64));
    }

    /// A drift alert on a route's signal (`keel_drift_alerts_total{route,signal}`).
    pub fn record_drift_alert(&self, route: &str, signal: &str) {
        let route = self.inner.names.get(Some(route));
        self.inner
            .drift_alerts
            .with([route, vocab(signal)], Counter::inc);
    }

    /// The latest drift statistic of a route's signal (`keel_drift_statistic{route,signal}`).
    pub fn set_drift_statistic(&self, route: &str, signal: &str, value: f64) {
        let route = self.inner.names.get(Some(route));
        let labels = [route, vocab(signal)];
        self.inner.drift_statistic.with(labels, |g| g.set(value));
    }

    /// The circuit breaker state of a model (`keel_circuit_state{model}`): 0 closed,
    /// 1 half-open, 2 open.
    pub fn set_circuit_state(&self, model: &str, state: u8) {
        let model = self.inner.names.get(Some(model));
        self.inner
            .circuit_state
            .with([model], |g| g.set(f64::from(state)));
    }

    /// Every metric in the Prometheus text exposition format 0.0.4 ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let hooks = self
            .inner
            .scrape_hooks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for hook in hooks {
            hook(self);
        }
        let mut out = String::with_capacity(16 * 1024);
        for family in self.inner.families() {
            family.render(&mut out);
        }
        // Sampled outside the lock, so a slow or re-entrant `f` cannot block registration.
        let pulls = self
            .inner
            .pulls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for p in pulls {
            text::header(&mut out, &p.name, &p.help, p.kind);
            text::series(&mut out, &p.name, "", "", None);
            text::end_f64(&mut out, (p.value)());
        }
        out
    }
}
