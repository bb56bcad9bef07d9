//! OTLP/HTTP (protobuf) trace export.
//!
//! [`OtlpExporter::export`] hands a trace's spans to a bounded in-memory queue and returns at
//! once; one background task ([`spawn`]) batches them and POSTs `application/x-protobuf`
//! `ExportTraceServiceRequest`s to the configured endpoint.
//!
//! - The queue is counted in **spans**: at most `queue_capacity` spans are held in memory at
//!   any time, counting those waiting in the queue, the batch being assembled and the batch
//!   being sent (or retried). A trace that does not fit is dropped whole and its spans counted
//!   in [`OtlpExporter::dropped_spans`]; `export` never waits.
//! - A batch holds at most `batch_size` spans (of any number of traces, under one resource and
//!   one scope) and is sent once full or `flush_interval` after its first span arrived.
//! - Each POST has the deadline `timeout`. Network errors, 429, 502, 503 and 504 are retried
//!   (3 tries in all, backoff 200 ms then 400 ms, or `Retry-After` seconds capped at 5 s);
//!   other statuses are not. Spans of a batch that still fails are counted in
//!   [`OtlpExporter::failed_spans`]; failures are logged at most once per 10 s.
//! - Batches are encoded on their own thread (`keel-otlp`), in the idle scheduling class
//!   while it keeps up (`keel_store::background`), not on a runtime worker.
//! - Header values come from environment variables named in `headers_env`, read once by
//!   [`spawn`]; they are never logged.
//! - [`OtlpHandle::shutdown`] stops accepting spans and flushes what is queued, giving up at
//!   its deadline.

mod encode;
pub mod proto;
mod task;
mod wire;

pub use encode::{KEEL_VERSION, SCOPE_NAME, SpanRef, content_attributes, export_request};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_config::OtlpConfig;
use keel_types::trace::TraceRecord;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest queue accepted, in spans (bounds memory whatever the configuration says).
const MAX_QUEUE_CAPACITY: usize = 1 << 22;
/// At most one warning of each kind (drops, failed exports) per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// How long shutdown waits for the task to notice it was told to give up.
const ABORT_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("observe.otlp.endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error(
        "observe.otlp.headers_env: environment variable `{var}` (for header `{header}`) is not set"
    )]
    MissingEnv { header: String, var: String },
    #[error("observe.otlp.headers_env: `{header}` is not a valid HTTP header name")]
    InvalidHeaderName { header: String },
    #[error(
        "observe.otlp.headers_env: the value of environment variable `{var}` (for header `{header}`) is not a valid HTTP header value"
    )]
    InvalidHeaderValue { header: String, var: String },
    #[error("OTLP HTTP client: {0}")]
    Client(String),
    #[error("OTLP encoder thread: {0}")]
    Thread(String),
    #[error("OTLP exporter shutdown deadline passed; {abandoned_spans} spans were not exported")]
    ShutdownDeadline { abandoned_spans: u64 },
    #[error("OTLP exporter task failed")]
    TaskFailed,
}

/// The producer side. Cheap to clone; every clone feeds the same queue and shares the counters.
#[derive(Clone)]
pub struct OtlpExporter {
    queue: mpsc::UnboundedSender<Queued>,
    stats: Arc<Stats>,
    span_content: bool,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("queued_spans", &self.queued_spans())
            .field("exported_spans", &self.exported_spans())
            .field("failed_spans", &self.failed_spans())
            .field("dropped_spans", &self.dropped_spans())
            .finish_non_exhaustive()
    }
}

/// Owned by whoever runs shutdown. Dropping it without [`OtlpHandle::shutdown`] leaves the
/// task running until every [`OtlpExporter`] clone is dropped; it then flushes and stops.
pub struct OtlpHandle {
    stop: CancellationToken,
    abort: CancellationToken,
    task: JoinHandle<u64>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for OtlpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHandle")
            .field("stopping", &self.stop.is_cancelled())
            .field("queued_spans", &self.stats.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// One trace on its way to the task, shared with whatever else keeps it (the trace store):
/// queueing it copies nothing.
#[derive(Clone)]
struct Queued {
    trace: Arc<TraceRecord>,
    /// Whether the root span carries the trace's content ([`content_attributes`]).
    span_content: bool,
}

/// Counters shared by the exporter clones and the task.
struct Stats {
    /// Spans accepted and not yet exported or failed (queue + batch + in flight).
    queued: AtomicUsize,
    capacity: usize,
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    drop_warn: WarnLimiter,
}

/// Starts the export task on `tracker` (call from within a tokio runtime) and returns the
/// producer side and the shutdown handle. Fails when the endpoint is not an http(s) URL or a
/// `headers_env` variable is missing or unusable (the error names the variable, never its
/// value).
pub fn spawn(
    cfg: &OtlpConfig,
    tracker: &TaskTracker,
) -> Result<(OtlpExporter, OtlpHandle), OtlpError> {
    let url = reqwest::Url::parse(&cfg.endpoint).map_err(|e| OtlpError::InvalidEndpoint {
        endpoint: cfg.endpoint.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OtlpError::InvalidEndpoint {
            endpoint: cfg.endpoint.clone(),
            reason: "the scheme must be http or https".into(),
        });
    }
    let headers = headers_from_env(&cfg.headers_env)?;
    let client = reqwest::Client::builder()
        .timeout(cfg.timeout)
        .default_headers(headers)
        .build()
        .map_err(|e| OtlpError::Client(e.to_string()))?;

    let (queue, rx) = mpsc::unbounded_channel();
    let stats = Arc::new(Stats {
        queued: AtomicUsize::new(0),
        capacity: cfg.queue_capacity.clamp(1, MAX_QUEUE_CAPACITY),
        dropped: AtomicU64::new(0),
        exported: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        drop_warn: WarnLimiter::new(),
    });
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let encoder = keel_store::background::BackgroundThread::spawn("keel-otlp", ())
        .map_err(|e| OtlpError::Thread(e.to_string()))?;
    let task = task::ExportTask::new(task::TaskParts {
        client,
        encoder,
        url,
        service_name: cfg.service_name.as_str().into(),
        rx,
        batch_size: cfg.batch_size.max(1),
        flush_interval: cfg.flush_interval,
        stats: stats.clone(),
        stop: stop.clone(),
        abort: abort.clone(),
    });
    let task = tracker.spawn(task.run());
    Ok((
        OtlpExporter {
            queue,
            stats: stats.clone(),
            span_content: false,
        },
        OtlpHandle {
            stop,
            abort,
            task,
            stats,
        },
    ))
}

fn headers_from_env(headers_env: &BTreeMap<String, String>) -> Result<HeaderMap, OtlpError> {
    let mut headers = HeaderMap::new();
    for (header, var) in headers_env {
        let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
            OtlpError::InvalidHeaderName {
                header: header.clone(),
            }
        })?;
        let value = std::env::var(var).map_err(|_| OtlpError::MissingEnv {
            header: header.clone(),
            var: var.clone(),
        })?;
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| OtlpError::InvalidHeaderValue {
                header: header.clone(),
                var: var.clone(),
            })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

impl OtlpExporter {
    /// This exporter (and its later clones) with the root span of every trace carrying
    /// `gen_ai.input.messages` and `gen_ai.output.messages` (`observe.span_content`), taken from
    /// the content the trace kept. Off by default. The JSON text is made at encoding time, on
    /// the encoder thread.
    #[must_use]
    pub fn with_span_content(mut self, on: bool) -> Self {
        self.span_content = on;
        self
    }

    /// Queues the spans of `trace` for export. Never blocks or awaits: when the queue cannot
    /// take all of the trace's spans (or the exporter has shut down) the trace is dropped, its
    /// spans counted in [`dropped_spans`](Self::dropped_spans), and a warning is logged at most
    /// once per 10 s. The trace is shared, not copied: pass an `Arc` that the trace store
    /// holds too.
    pub fn export(&self, trace: impl Into<Arc<TraceRecord>>) {
        let trace = trace.into();
        let n = trace.spans.len();
        if n == 0 {
            return;
        }
        if !self.stats.reserve(n) {
            self.stats.dropped(n, "queue full");
            return;
        }
        let item = Queued {
            trace,
            span_content: self.span_content,
        };
        if self.queue.send(item).is_err() {
            self.stats.release(n);
            self.stats.dropped(n, "exporter shut down");
        }
    }

    /// Spans dropped without an export attempt because the queue was full or closed.
    pub fn dropped_spans(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Spans the collector accepted.
    pub fn exported_spans(&self) -> u64 {
        self.stats.exported.load(Ordering::Relaxed)
    }

    /// Spans lost after being queued: rejected by the collector, still failing after the
    /// retries, or abandoned at the shutdown deadline.
    pub fn failed_spans(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }

    /// Spans held right now (queued, batching or being sent).
    pub fn queued_spans(&self) -> usize {
        self.stats.queued.load(Ordering::Relaxed)
    }
}

impl OtlpHandle {
    /// Stops accepting spans, exports everything still queued (in batches, with retries) and
    /// stops the task. Gives up once `deadline` has passed: the spans not yet exported are
    /// counted as failed and reported in [`OtlpError::ShutdownDeadline`].
    pub async fn shutdown(self, deadline: Duration) -> Result<(), OtlpError> {
        let OtlpHandle {
            stop,
            abort,
            mut task,
            stats,
        } = self;
        stop.cancel();
        match tokio::time::timeout(deadline, &mut task).await {
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(abandoned_spans)) => return Err(OtlpError::ShutdownDeadline { abandoned_spans }),
            Ok(Err(_)) => return Err(OtlpError::TaskFailed),
            Err(_elapsed) => {}
        }
        // Every await of the task races `abort`, so it returns promptly.
        abort.cancel();
        match tokio::time::timeout(ABORT_GRACE, &mut task).await {
            Ok(Ok(abandoned_spans)) => Err(OtlpError::ShutdownDeadline { abandoned_spans }),
            Ok(Err(_)) => Err(OtlpError::TaskFailed),
            Err(_elapsed) => {
                task.abort();
                let abandoned_spans = stats.queued.load(Ordering::Relaxed) as u64;
                Err(OtlpError::ShutdownDeadline { abandoned_spans })
            }
        }
    }
}

impl Stats {
    /// Takes room for `n` spans; false when they do not fit.
    fn reserve(&self, n: usize) -> bool {
        let mut current = self.queued.load(Ordering::Relaxed);
        loop {
            match current.checked_add(n) {
                Some(total) if total <= self.capacity => {}
                _ => return false,
            }
            match self.queued.compare_exchange_weak(
                current,
                current + n,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives back room for `n` spans that were reserved.
    fn release(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }

    fn dropped(&self, n: usize, reason: &'static str) {
        let total = self.dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if self.drop_warn.allow() {
            tracing::warn!(dropped_spans_total = total, reason, "OTLP spans dropped");
        }
    }
}

/// Lets one caller through per [`WARN_INTERVAL`], across threads.
struct WarnLimiter {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last allowed warning, plus one (0 = never).
    last: AtomicU64,
}

impl WarnLimiter {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn allow(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        let interval = WARN_INTERVAL.as_millis() as u64;
        let due = last == 0 || now.saturating_sub(last) >= interval;
        // Only the caller that wins the exchange warns, so concurrent callers log once.
        due && self
            .last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_bounded_and_released() {
        let stats = Stats {
            queued: AtomicUsize::new(0),
            capacity: 5,
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            drop_warn: WarnLimiter::new(),
        };
        assert!(stats.reserve(3));
        assert!(!stats.reserve(3));
        assert!(stats.reserve(2));
        assert!(!stats.reserve(1));
        assert!(!stats.reserve(usize::MAX));
        stats.release(4);
        assert!(stats.reserve(4));
    }

    #[test]
    fn warnings_are_rate_limited() {
        let limiter = WarnLimiter::new();
        assert!(limiter.allow());
        assert!(!limiter.allow());
    }

    #[test]
    fn missing_env_names_the_variable() {
        let mut env = BTreeMap::new();
        env.insert(
            "x-api-key".to_owned(),
            "KEEL_OTLP_SURELY_UNSET_7f3a".to_owned(),
        );
        let err = headers_from_env(&env).unwrap_err().to_string();
        assert!(err.contains("KEEL_OTLP_SURELY_UNSET_7f3a"), "{err}");
        assert!(err.contains("x-api-key"), "{err}");
    }
}
