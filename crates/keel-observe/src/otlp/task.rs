//! The export task: batches queued spans and POSTs them, retrying transient failures.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use keel_store::background::BackgroundThread;

use super::{Queued, Stats, WARN_INTERVAL, encode, proto};

/// Tries per batch (the first POST plus retries) for retryable failures.
const MAX_TRIES: u32 = 3;
/// Backoff before the first retry; doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

pub(super) struct TaskParts {
    pub client: reqwest::Client,
    /// Encodes batches (and drops their spans) off the runtime, below the request-serving
    /// threads' priority: a full batch is hundreds of microseconds of work that would
    /// otherwise hold a tokio worker while requests wait on it.
    pub encoder: BackgroundThread<()>,
    pub url: reqwest::Url,
    pub service_name: Arc<str>,
    pub rx: mpsc::UnboundedReceiver<Queued>,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub stats: Arc<Stats>,
    /// Graceful stop: refuse new spans, flush the queue, return.
    pub stop: CancellationToken,
    /// Give up now: every await races this.
    pub abort: CancellationToken,
}

/// Consecutive spans of one trace, waiting or in a batch (a trace may straddle two batches).
struct Run {
    item: Queued,
    spans: Range<usize>,
}

pub(super) struct ExportTask {
    p: TaskParts,
    /// Traces taken off the queue whose spans are not yet in a batch.
    pending: VecDeque<Run>,
    /// How many spans `pending` holds (counted in `stats.queued`).
    pending_spans: usize,
    /// Spans of the batch being encoded or sent (also counted in `stats.queued`).
    in_flight: usize,
    last_warn: Option<Instant>,
    suppressed_warnings: u64,
}

enum Flow {
    Continue,
    Aborted,
}

enum Outcome {
    Delivered { rejected: u64, message: String },
    Failed(String),
    Aborted,
}

impl ExportTask {
    pub(super) fn new(p: TaskParts) -> Self {
        Self {
            pending: VecDeque::new(),
            pending_spans: 0,
            in_flight: 0,
            p,
            last_warn: None,
            suppressed_warnings: 0,
        }
    }

    /// Runs until stopped (or every exporter is gone), then drains. Returns how many spans were
    /// abandoned because of `abort`.
    pub(super) async fn run(mut self) -> u64 {
        if let Flow::Continue = self.running().await {
            self.p.rx.close();
            while let Some(item) = self.p.rx.recv().await {
                self.push(item);
            }
            if let Flow::Continue = self.flush_pending().await {
                return 0;
            }
        }
        self.abandon()
    }

    /// Phase 1: flush full or aged batches until stopped.
    async fn running(&mut self) -> Flow {
        loop {
            tokio::select! {
                biased;
                () = self.p.stop.cancelled() => return Flow::Continue,
                item = self.p.rx.recv() => match item {
                    Some(item) => self.push(item),
                    None => return Flow::Continue,
                },
            }
            let deadline = Instant::now() + self.p.flush_interval;
            while self.pending_spans < self.p.batch_size {
                tokio::select! {
                    biased;
                    () = self.p.stop.cancelled() => return Flow::Continue,
                    item = self.p.rx.recv() => match item {
                        Some(item) => self.push(item),
                        None => return Flow::Continue,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            if let Flow::Aborted = self.flush_pending().await {
                return Flow::Aborted;
            }
        }
    }

    fn push(&mut self, item: Queued) {
        let n = item.trace.spans.len();
        self.pending_spans += n;
        self.pending.push_back(Run { item, spans: 0..n });
    }

    /// Takes the next `batch_size` spans (or all, when fewer wait) off `pending`.
    fn next_batch(&mut self) -> (Vec<Run>, usize) {
        let mut batch = Vec::new();
        let mut n = 0;
        while n < self.p.batch_size {
            let Some(mut run) = self.pending.pop_front() else {
                break;
            };
            let room = self.p.batch_size - n;
            if run.spans.len() > room {
                let split = run.spans.start + room;
                self.pending.push_front(Run {
                    item: run.item.clone(),
                    spans: split..run.spans.end,
                });
                run.spans.end = split;
            }
            n += run.spans.len();
            batch.push(run);
        }
        self.pending_spans -= n;
        (batch, n)
    }

    /// Sends everything pending, `batch_size` spans per request.
    async fn flush_pending(&mut self) -> Flow {
        while self.pending_spans > 0 {
            let (batch, n) = self.next_batch();
            self.in_flight = n;
            let outcome = self.send(batch).await;
            let count = n as u64;
            match outcome {
                Outcome::Aborted => return Flow::Aborted,
                Outcome::Delivered { rejected, message } => {
                    let rejected = rejected.min(count);
                    self.p
                        .stats
                        .exported
                        .fetch_add(count - rejected, Ordering::Relaxed);
                    if rejected > 0 {
                        self.p.stats.failed.fetch_add(rejected, Ordering::Relaxed);
                        self.warn("OTLP collector rejected spans", rejected, &message);
                    }
                }
                Outcome::Failed(reason) => {
                    self.p.stats.failed.fetch_add(count, Ordering::Relaxed);
                    self.warn("OTLP export failed; spans lost", count, &reason);
                }
            }
            self.in_flight = 0;
            self.p.stats.release(n);
        }
        Flow::Continue
    }

    /// Counts everything still held as failed (after `abort`).
    fn abandon(&mut self) -> u64 {
        self.p.rx.close();
        while let Ok(item) = self.p.rx.try_recv() {
            self.push(item);
        }
        let n = self.pending_spans + self.in_flight;
        self.pending.clear();
        self.pending_spans = 0;
        self.in_flight = 0;
        self.p.stats.release(n);
        let count = n as u64;
        self.p.stats.failed.fetch_add(count, Ordering::Relaxed);
        if count > 0 {
            tracing::warn!(
                spans = count,
                "OTLP exporter shutdown deadline passed; spans not exported"
            );
        }
        count
    }

    /// One batch: encode once (on the encoder thread), POST with retries.
    async fn send(&self, batch: Vec<Run>) -> Outcome {
        let service_name = self.p.service_name.clone();
        let encoded = self.p.encoder.run(move |()| {
            // The content strings of the root spans in this batch, made first so that the
            // spans can borrow them.
            let content: Vec<_> = batch
                .iter()
                .map(|run| {
                    if run.item.span_content && run.spans.contains(&0) {
                        encode::content_attributes(&run.item.trace)
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            let spans = batch.iter().zip(&content).flat_map(|(run, content)| {
                let trace = &run.item.trace;
                run.spans.clone().map(move |i| encode::SpanRef {
                    trace_id: trace.trace_id,
                    span: &trace.spans[i],
                    extra: if i == 0 { content.as_slice() } else { &[] },
                })
            });
            prost::bytes::Bytes::from(encode::export_request(&service_name, spans))
        });
        let body = tokio::select! {
            biased;
            () = self.p.abort.cancelled() => return Outcome::Aborted,
            body = encoded => match body {
                Some(body) => body,
                None => return Outcome::Failed("the OTLP encoder thread is gone".to_owned()),
            },
        };
        let mut backoff = FIRST_BACKOFF;
        let mut last_error = String::new();
        for attempt in 1..=MAX_TRIES {
            let post = self
                .p
                .client
                .post(self.p.url.clone())
                .header(CONTENT_TYPE, "application/x-protobuf")
                .body(body.clone())
                .send();
            let result = tokio::select! {
                biased;
                () = self.p.abort.cancelled() => return Outcome::Aborted,
                result = post => result,
            };
            let delay = match result {
                Ok(response) if response.status().is_success() => {
                    let bytes = tokio::select! {
                        biased;
                        () = self.p.abort.cancelled() => return Outcome::Aborted,
                        bytes = response.bytes() => bytes,
                    };
                    return delivered(bytes.ok());
                }
                Ok(response) if retryable(response.status()) => {
                    last_error = format!("HTTP {}", response.status());
                    retry_after(response.headers()).unwrap_or(backoff)
                }
                Ok(response) => {
                    return Outcome::Failed(format!("HTTP {} (not retried)", response.status()));
                }
                Err(error) => {
                    last_error = error_chain(&error.without_url());
                    backoff
                }
            };
            if attempt < MAX_TRIES {
                tracing::debug!(attempt, error = %last_error, "OTLP export failed; retrying");
                tokio::select! {
                    biased;
                    () = self.p.abort.cancelled() => return Outcome::Aborted,
                    () = tokio::time::sleep(delay) => {}
                }
                backoff *= 2;
            }
        }
        Outcome::Failed(format!("{last_error} (after {MAX_TRIES} tries)"))
    }

    /// At most one warning per [`WARN_INTERVAL`]; the rest go to debug and are counted.
    fn warn(&mut self, what: &'static str, spans: u64, reason: &str) {
        let now = Instant::now();
        if self
            .last_warn
            .is_none_or(|last| now.duration_since(last) >= WARN_INTERVAL)
        {
            let failed_total = self.p.stats.failed.load(Ordering::Relaxed);
            tracing::warn!(
                spans,
                failed_spans_total = failed_total,
                suppressed_warnings = self.suppressed_warnings,
                reason,
                "{what}"
            );
            self.last_warn = Some(now);
            self.suppressed_warnings = 0;
        } else {
            self.suppressed_warnings += 1;
            tracing::debug!(spans, reason, "{what}");
        }
    }
}

/// A 2xx answer; a partial success names the spans the collector rejected.
fn delivered(body: Option<impl prost::bytes::Buf>) -> Outcome {
    let partial = body
        .and_then(|b| proto::ExportTraceServiceResponse::decode(b).ok())
        .and_then(|r| r.partial_success);
    match partial {
        Some(p) => Outcome::Delivered {
            rejected: u64::try_from(p.rejected_spans).unwrap_or(0),
            message: p.error_message,
        },
        None => Outcome::Delivered {
            rejected: 0,
            message: String::new(),
        },
    }
}

/// Statuses the OTLP/HTTP spec calls retryable.
fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` in seconds (the HTTP-date form is ignored), capped at [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// An error and its sources on one line (reqwest's own message alone hides the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_is_parsed_and_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 502, 503, 504] {
            assert!(retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 500] {
            assert!(!retryable(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn partial_success_counts_rejections() {
        let body = proto::ExportTraceServiceResponse {
            partial_success: Some(proto::ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        match delivered(Some(body.as_slice())) {
            Outcome::Delivered { rejected, message } => {
                assert_eq!((rejected, message.as_str()), (2, "too old"));
            }
            _ => panic!("not delivered"),
        }
        let empty: &[u8] = &[];
        assert!(matches!(
            delivered(Some(empty)),
            Outcome::Delivered { rejected: 0, .. }
        ));
    }
}
