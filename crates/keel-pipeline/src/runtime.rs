//! `Runtime`: everything a running keel needs, built from a validated config: the store and
//! its writer (request log and traces), the providers (local models loading in the
//! background), the catalog, the observability sinks (metrics, OTLP exporter, drift monitor),
//! retention (`retention.rs`) and the pipeline. The server and `keel ask` both start one, so
//! both run the same path.

use crate::observer::Sinks;
use crate::{Catalog, Observer, Pipeline};
use keel_config::{KeelConfig, StoreConfig};
use keel_observe::bridge::DriftMetrics;
use keel_observe::drift::{DriftHandle, DriftMonitor, EmbedFn};
use keel_observe::metrics::Metrics;
use keel_observe::otlp::OtlpHandle;
use keel_providers::ProviderRegistry;
use keel_store::{
    PostgresStore, RequestLogWriter, SqliteStore, Store, TraceStore, WriterHandle, WriterOptions,
};
use keel_types::openai::{EmbeddingInput, EmbeddingRequest, EmbeddingVector};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(String),
    #[error("providers: {0}")]
    Providers(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("observe: {0}")]
    Observe(String),
    #[error("{0}")]
    Admission(String),
    #[error("guard: {0}")]
    Guard(String),
}

pub struct Runtime {
    pub pipeline: Pipeline,
    pub registry: ProviderRegistry,
    pub tracker: TaskTracker,
    /// The trace store behind `/v1/traces`; `None` when `observe.store_traces` is off.
    pub traces: Option<Arc<dyn TraceStore>>,
    writer: WriterHandle,
    otlp: Option<OtlpHandle>,
    drift: Option<DriftHandle>,
    stop_retention: CancellationToken,
}

impl Runtime {
    /// Opens the store, starts the writer, the providers and the observability sinks. Needs
    /// a tokio runtime.
    pub async fn start(config: &KeelConfig) -> Result<Self, StartError> {
        let store = open_store(&config.store).await?;
        let w = config.store.writer();
        let tracker = TaskTracker::new();
        let (log, writer) = RequestLogWriter::spawn(
            store.clone(),
            WriterOptions {
                queue_capacity: w.queue_capacity,
                batch_size: w.batch_size,
                flush_interval: w.flush_interval,
            },
            &tracker,
        );
        let registry =
            ProviderRegistry::build(config).map_err(|e| StartError::Providers(e.to_string()))?;
        let catalog = Catalog::build(config, &registry).map_err(StartError::Catalog)?;
        let admission = keel_admit::Admission::from_config(config)
            .await
            .map_err(StartError::Admission)?;

        let (observer, otlp_handle, drift_handle) = start_observe(config, &catalog, log, &tracker)?;
        let o = &config.observe;
        let stop_retention = CancellationToken::new();
        crate::retention::spawn(
            &tracker,
            store.clone(),
            crate::retention::Retention {
                requests: config.store.request_retention(),
                traces: o.store_traces.then_some(o.trace_retention),
            },
            stop_retention.clone(),
        );
        let traces = o.store_traces.then(|| {
            let t: Arc<dyn TraceStore> = store.clone();
            t
        });
        let library = Arc::new(crate::collections::library(config, &catalog));
        let guarding =
            crate::guard::Guarding::from_config(config, &catalog).map_err(StartError::Guard)?;
        let mut pipeline = Pipeline::new(catalog, observer)
            .with_admission(Arc::new(admission))
            .with_library(library);
        if let Some(g) = guarding {
            pipeline = pipeline.with_guard(g);
        }
        Ok(Self {
            pipeline,
            registry,
            tracker,
            traces,
            writer,
            otlp: otlp_handle,
            drift: drift_handle,
            stop_retention,
        })
    }

    /// Flushes every queued request record, trace and span, and stops the background tasks.
    pub async fn shutdown(self) {
        self.stop_retention.cancel();
        if let Some(l) = self.pipeline.library() {
            let l = l.clone();
            // Vector snapshots (the store replays whatever they miss on the next start).
            let _ = tokio::task::spawn_blocking(move || l.flush()).await;
        }
        if let Some(d) = self.drift {
            d.shutdown().await;
        }
        if let Err(e) = self.writer.shutdown().await {
            tracing::error!(error = %e, "request log flush failed at shutdown");
        }
        if let Some(o) = self.otlp
            && let Err(e) = o.shutdown(Duration::from_secs(5)).await
        {
            tracing::warn!(error = %e, "OTLP flush at shutdown incomplete");
        }
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// The observability sinks (metrics, OTLP exporter, drift monitor) and the `Observer` that
/// feeds them, with the handles that flush them at shutdown.
fn start_observe(
    config: &KeelConfig,
    catalog: &Catalog,
    log: RequestLogWriter,
    tracker: &TaskTracker,
) -> Result<(Observer, Option<OtlpHandle>, Option<DriftHandle>), StartError> {
    let o = &config.observe;
    let known = config.models.keys().chain(config.routes.keys()).cloned();
    let metrics = Metrics::new(known);
    {
        let log = log.clone();
        metrics
            .register_counter_fn(
                "keel_request_log_dropped_total",
                "Request records and traces dropped because the store queue was full.",
                move || log.dropped(),
            )
            .map_err(|e| StartError::Observe(e.to_string()))?;
    }
    let (otlp, otlp_handle) = match &o.otlp {
        Some(cfg) => {
            let (exp, handle) = keel_observe::otlp::spawn(cfg, tracker)
                .map_err(|e| StartError::Observe(format!("observe.otlp: {e}")))?;
            let exp = exp.with_span_content(o.span_content);
            let e = exp.clone();
            metrics
                .register_counter_fn(
                    "keel_otlp_dropped_spans_total",
                    "Spans dropped because the OTLP export queue was full.",
                    move || e.dropped_spans(),
                )
                .map_err(|e| StartError::Observe(e.to_string()))?;
            (Some(exp), Some(handle))
        }
        None => (None, None),
    };
    {
        let (log, otlp) = (log.clone(), otlp.clone());
        let breakers = catalog.breakers();
        metrics.on_scrape(move |m| {
            m.set_queue_depth("request_log", log.queued());
            if let Some(o) = &otlp {
                m.set_queue_depth("otlp", o.queued_spans());
            }
            let now = std::time::Instant::now();
            for (model, breaker) in &breakers {
                m.set_circuit_state(model, breaker.state(now).gauge_value());
            }
        });
    }
    let (drift, drift_handle) = if o.drift.enabled {
        let embed = o
            .drift
            .embeddings_model
            .as_deref()
            .map(|name| embed_fn(catalog, name))
            .transpose()?;
        let sink = Arc::new(DriftMetrics(metrics.clone()));
        let (m, h) = DriftMonitor::spawn(&o.drift, embed, sink, tracker)
            .map_err(|e| StartError::Observe(format!("observe.drift: {e}")))?;
        (Some(m), Some(h))
    } else {
        (None, None)
    };

    let sinks = Sinks {
        log,
        metrics,
        otlp,
        drift,
    };
    Ok((Observer::new(sinks, o), otlp_handle, drift_handle))
}

/// Embeds drift samples with the configured embeddings model, straight through its provider.
pub(crate) fn embed_fn(catalog: &Catalog, name: &str) -> Result<EmbedFn, StartError> {
    let c = catalog
        .resolve(name)
        .and_then(|r| r.candidates.first().cloned())
        .ok_or_else(|| {
            StartError::Observe(format!("drift embeddings model \"{name}\" is unknown"))
        })?;
    Ok(Arc::new(move |texts: Vec<String>| {
        let provider = c.provider.clone();
        let upstream = c.config.upstream.clone();
        Box::pin(async move {
            let resp = provider
                .embed(EmbeddingRequest {
                    model: upstream,
                    input: EmbeddingInput::Many(texts),
                    encoding_format: None,
                    dimensions: None,
                    user: None,
                })
                .await
                .map_err(|e| e.to_string())?;
            resp.data
                .into_iter()
                .map(|d| match d.embedding {
                    EmbeddingVector::Float(v) => Ok(v),
                    EmbeddingVector::Base64(_) => Err("unexpected base64 embedding".to_owned()),
                })
                .collect()
        })
    }))
}

async fn open_store(config: &StoreConfig) -> Result<Arc<dyn Store>, StartError> {
    match config {
        StoreConfig::Sqlite { path, .. } => {
            let store = SqliteStore::open(path).map_err(|e| StartError::Store(e.to_string()))?;
            Ok(Arc::new(store))
        }
        StoreConfig::Postgres {
            url_env, schema, ..
        } => {
            let url = std::env::var(url_env).map_err(|_| {
                StartError::Store(format!(
                    "environment variable {url_env} (store.url_env) is not set"
                ))
            })?;
            let store = PostgresStore::connect(&url, schema)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?;
            Ok(Arc::new(store))
        }
    }
}
