//! `Observer`: where a finished request goes. One call fans the request's record and trace out
//! to the request log line, metrics, the drift monitor, the OTLP exporter and the store. None
//! of these blocks: each is a counter update or a `try_send` into a bounded queue.

use crate::record::Finished;
use crate::trace::Seen;
use keel_config::ObserveConfig;
use keel_observe::drift::{DriftMonitor, DriftSample, is_refusal};
use keel_observe::logs;
use keel_observe::metrics::Metrics;
use keel_observe::otlp::OtlpExporter;
use keel_observe::sampling::{Sampler, Signals};
use keel_store::{RequestLogWriter, RequestRecord};
use keel_types::trace::ContentMode;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct Observer {
    inner: Arc<Inner>,
}

struct Inner {
    log: RequestLogWriter,
    metrics: Metrics,
    otlp: Option<OtlpExporter>,
    drift: Option<DriftMonitor>,
    store_traces: bool,
    sampler: Sampler,
    metrics_on: bool,
    /// Drift embeds prompts and answers (an embeddings model is configured).
    drift_texts: bool,
    default_content: ContentMode,
    tenant_content: HashMap<String, ContentMode>,
}

/// The sinks an [`Observer`] feeds; only the request log is mandatory.
pub struct Sinks {
    pub log: RequestLogWriter,
    pub metrics: Metrics,
    pub otlp: Option<OtlpExporter>,
    pub drift: Option<DriftMonitor>,
}

impl Observer {
    pub fn new(sinks: Sinks, cfg: &ObserveConfig) -> Self {
        // The config's tenant table, flattened for one hash lookup per request.
        let tenant_content = cfg
            .tenants
            .iter()
            .filter_map(|(t, c)| c.content.map(|m| (t.clone(), m)))
            .collect();
        Self {
            inner: Arc::new(Inner {
                log: sinks.log,
                metrics: sinks.metrics,
                otlp: sinks.otlp,
                drift: sinks.drift,
                store_traces: cfg.store_traces,
                sampler: Sampler::new(&cfg.sampling),
                metrics_on: cfg.metrics,
                drift_texts: cfg.drift.embeddings_model.is_some(),
                default_content: cfg.content,
                tenant_content,
            }),
        }
    }

    /// An observer that only writes the request log: no traces, metrics or drift (tests that
    /// build a pipeline by hand).
    pub fn log_only(log: RequestLogWriter) -> Self {
        let cfg = ObserveConfig {
            store_traces: false,
            metrics: false,
            ..ObserveConfig::default()
        };
        Self::new(
            Sinks {
                log,
                metrics: Metrics::new(Vec::<String>::new()),
                otlp: None,
                drift: None,
            },
            &cfg,
        )
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn log(&self) -> &RequestLogWriter {
        &self.inner.log
    }

    /// Whether anything consumes spans (the OTLP exporter or the trace store); without a
    /// consumer the recorder builds none.
    pub fn wants_spans(&self) -> bool {
        self.inner.otlp.is_some() || self.inner.store_traces
    }

    /// How much message content this tenant's traces keep (`none` when nothing keeps traces).
    pub fn content_mode(&self, tenant: Option<&str>) -> ContentMode {
        if !self.wants_spans() {
            return ContentMode::None;
        }
        tenant
            .and_then(|t| self.inner.tenant_content.get(t))
            .copied()
            .unwrap_or(self.inner.default_content)
    }

    /// Hands a finished request to every sink. `seen` lends what the model saw and said;
    /// it is read only if the trace is kept (or drift embeds texts).
    pub fn emit(&self, f: Finished, seen: Seen<'_>) {
        let Finished { record, raw } = f;
        let i = &self.inner;
        logs::request_line(&record, &raw.ids.trace_id.to_string());
        let signals = Signals {
            trust_score: raw.trust_score,
            policy_action: raw.policy_action.as_deref(),
        };
        let keep = self.wants_spans() && i.sampler.decide(&record, signals).kept();
        let policy_action = raw.policy_action.clone();
        let trace = keep.then(|| {
            let mode = self.content_mode(record.tenant.as_deref());
            raw.materialize(&record, &seen, mode)
        });
        let answered =
            record.status == 200 && record.error_class.is_none() && record.endpoint != "embeddings";
        let refused = answered && seen.answer_text().is_some_and(is_refusal);
        if i.metrics_on {
            i.metrics.record_request(&record, trace.as_ref());
            if let (true, Some(route)) = (refused, &record.route) {
                i.metrics.record_refusal(route);
            }
            if let (None, Some(action)) = (&trace, policy_action.as_deref()) {
                i.metrics
                    .record_policy_action(record.route.as_deref(), action);
            }
            if let (Some("escalate"), Some(route)) = (policy_action.as_deref(), &record.route) {
                i.metrics.record_escalation(route);
            }
        }
        if let (Some(drift), true) = (&i.drift, answered) {
            self.feed_drift(drift, &record, &seen, refused);
        }
        if let Some(trace) = trace {
            let trace = Arc::new(trace);
            if let Some(otlp) = &i.otlp {
                otlp.export(trace.clone());
            }
            if i.store_traces {
                i.log.record_trace(trace);
            }
        }
        i.log.record(record);
    }

    fn feed_drift(
        &self,
        drift: &DriftMonitor,
        record: &RequestRecord,
        seen: &Seen<'_>,
        refused: bool,
    ) {
        let Some(route) = &record.route else { return };
        let answer = seen.answer_text();
        let texts = self.inner.drift_texts;
        drift.observe(DriftSample {
            route: route.clone(),
            at_ms: record.started_at_ms,
            trust_score: None,
            grounding_score: None,
            refused,
            output_tokens: record.output_tokens,
            latency_ms: record.total_ms,
            prompt_text: if texts { seen.prompt_text() } else { None },
            response_text: if texts {
                answer.map(str::to_owned)
            } else {
                None
            },
        });
    }
}
