//! `RequestLogWriter`: the request path hands request records and traces to one bounded queue
//! without waiting; one background task batches them into the store, retrying transient failures.
//!
//! Items are dropped (and counted) rather than ever blocking a request: when the queue is full,
//! when the writer has shut down, or when a batch still fails after its retries.
//!
//! A batch holds up to `batch_size` items of either kind. It is written as two store calls, each
//! its own transaction: first its request records (`RequestLogStore::write_batch`), then its
//! traces (`TraceStore::write_traces`). Each call has the same retry semantics, independently
//! (retryable errors back off and retry; a batch rejected otherwise is retried item by item): a
//! failing trace write never costs request records, and vice versa.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use keel_types::trace::TraceRecord;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::{RequestRecord, Store, StoreError};

/// Tries per batch (the first write plus retries) for retryable errors.
const MAX_TRIES: u32 = 4;
/// Backoff before the first retry; doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// At most one "queue full" warning per this interval.
const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);
/// How often a batch that is filling looks for more items: while it fills, the writer wakes
/// once per tick, whatever the request rate.
const GATHER_TICK: Duration = Duration::from_millis(10);
/// Largest queue accepted (tokio's channel limit is far higher; this bounds memory).
const MAX_QUEUE_CAPACITY: usize = 1 << 24;

/// How the writer batches. Zero sizes are treated as 1. "Items" are request records and traces
/// alike: they share the queue and the batches.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterOptions {
    /// Items that may wait in memory; beyond it `record()` and `record_trace()` drop.
    pub queue_capacity: usize,
    /// Most items per batch.
    pub batch_size: usize,
    /// Longest an item waits for its batch to fill (measured from the batch's first item).
    pub flush_interval: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            queue_capacity: 10_000,
            batch_size: 256,
            flush_interval: Duration::from_millis(500),
        }
    }
}

/// What waits in the queue.
#[allow(
    clippy::large_enum_variant,
    reason = "every request queues a record by value; boxing it would cost an allocation each"
)]
enum Queued {
    Request(RequestRecord),
    Trace(Arc<TraceRecord>),
}

/// Cheap to clone; every clone feeds the same queue and shares the counters. The counters count
/// items: request records and traces together.
#[derive(Clone)]
pub struct RequestLogWriter {
    queue: mpsc::Sender<Queued>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for RequestLogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLogWriter")
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .field("failed", &self.failed())
            .finish_non_exhaustive()
    }
}

/// Owned by whoever runs shutdown; dropping it without calling [`WriterHandle::shutdown`] also
/// stops the writer (after it drains), but nobody learns the outcome.
#[derive(Debug)]
pub struct WriterHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StoreError>>,
}

struct Stats {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Milliseconds after `epoch` of the last drop warning, plus one (0 = never warned).
    last_drop_warn: AtomicU64,
    epoch: Instant,
}

impl RequestLogWriter {
    /// Starts the writer task on `tracker` and returns the producer side and the shutdown handle.
    pub fn spawn(
        store: Arc<dyn Store>,
        cfg: WriterOptions,
        tracker: &TaskTracker,
    ) -> (RequestLogWriter, WriterHandle) {
        let capacity = cfg.queue_capacity.clamp(1, MAX_QUEUE_CAPACITY);
        let (queue, rx) = mpsc::channel(capacity);
        let (stop, stop_rx) = oneshot::channel();
        let stats = Arc::new(Stats {
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_drop_warn: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let task = BatchTask {
            store,
            rx,
            batch_size: cfg.batch_size.max(1),
            flush_interval: cfg.flush_interval,
            stats: stats.clone(),
            last_error: None,
        };
        let task = tracker.spawn(task.run(stop_rx));
        (
            RequestLogWriter { queue, stats },
            WriterHandle { stop, task },
        )
    }

    /// Queues `r` for writing. Never blocks or awaits: if the queue is full (or the writer has
    /// shut down) the record is dropped, counted in [`dropped`](Self::dropped), and a warning is
    /// logged at most once per 10 s.
    pub fn record(&self, r: RequestRecord) {
        self.enqueue(Queued::Request(r));
    }

    /// Queues the trace `t` for writing, on the same queue and terms as [`record`](Self::record):
    /// never blocks; a full or closed queue drops it and counts it in
    /// [`dropped`](Self::dropped).
    pub fn record_trace(&self, t: impl Into<Arc<TraceRecord>>) {
        self.enqueue(Queued::Trace(t.into()));
    }

    fn enqueue(&self, item: Queued) {
        if self.queue.try_send(item).is_err() {
            let total = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.stats.warn_dropped(total, self.queue.is_closed());
        }
    }

    /// Items (records and traces) dropped without being written because the queue was full or
    /// closed.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Items (records and traces) the store has acknowledged.
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Items (records and traces) lost because the store kept failing.
    pub fn failed(&self) -> u64 {
        self.stats.failed.load(Ordering::Relaxed)
    }

    /// Items (records and traces) waiting in the queue right now.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

impl Stats {
    fn warn_dropped(&self, total: u64, closed: bool) {
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last_drop_warn.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= DROP_WARN_INTERVAL.as_millis() as u64;
        // Only the caller that wins the exchange warns, so concurrent drops log once.
        if due
            && self
                .last_drop_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let reason = if closed {
                "writer shut down"
            } else {
                "queue full"
            };
            tracing::warn!(
                dropped_total = total,
                reason,
                "request log records/traces dropped"
            );
        }
    }
}

impl WriterHandle {
    /// Stops accepting records and traces, writes everything still queued (both kinds), and
    /// returns once the final batch is flushed. Returns the last store error if any items were
    /// lost (after retries) since the writer started; [`RequestLogWriter::failed`] says how
    /// many. Wrap in `tokio::time::timeout` to bound how long shutdown may take (retries back
    /// off up to ~0.7 s per call, and a batch makes up to two calls).
    pub async fn shutdown(self) -> Result<(), StoreError> {
        // The task also stops if it finished early; a failed send is fine.
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Closed("request log writer task")),
        }
    }
}

/// A kind of item the writer writes, with the store call that writes a batch of it.
trait Writable: Clone + Send + Sync + 'static {
    /// For log messages.
    const KIND: &'static str;
    fn write(store: &dyn Store, batch: Arc<[Self]>) -> BoxFuture<'_, Result<(), StoreError>>;
}

impl Writable for RequestRecord {
    const KIND: &'static str = "request log";
    fn write(store: &dyn Store, batch: Arc<[Self]>) -> BoxFuture<'_, Result<(), StoreError>> {
        store.write_shared(batch)
    }
}

impl Writable for Arc<TraceRecord> {
    const KIND: &'static str = "trace";
    fn write(store: &dyn Store, batch: Arc<[Self]>) -> BoxFuture<'_, Result<(), StoreError>> {
        store.write_traces_shared(batch)
    }
}

struct BatchTask {
    store: Arc<dyn Store>,
    rx: mpsc::Receiver<Queued>,
    batch_size: usize,
    flush_interval: Duration,
    stats: Arc<Stats>,
    /// The error that last cost records; reported by `shutdown`.
    last_error: Option<StoreError>,
}

impl BatchTask {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), StoreError> {
        // Reused for every batch: a fresh 256-item vector is fresh pages from the OS each time.
        let mut batch = Vec::with_capacity(self.batch_size);
        // Phase 1: until stopped (or every producer is gone), flush full or aged batches.
        'running: loop {
            tokio::select! {
                biased;
                _ = &mut stop => break 'running,
                n = self.rx.recv_many(&mut batch, self.batch_size) => if n == 0 { break 'running },
            }
            // The rest of the batch is gathered on a tick, not on a wake-up per item: waiting
            // in `recv_many` woke this task (and moved it between workers) once per request.
            let deadline = tokio::time::Instant::now() + self.flush_interval;
            loop {
                let open = self.gather(&mut batch);
                let now = tokio::time::Instant::now();
                if !open || batch.len() >= self.batch_size || now >= deadline {
                    break;
                }
                tokio::select! {
                    biased;
                    _ = &mut stop => break 'running,
                    () = tokio::time::sleep_until(deadline.min(now + GATHER_TICK)) => {}
                }
            }
            self.flush(&mut batch).await;
        }
        // Phase 2: refuse new records, then write what is queued, in full batches.
        self.rx.close();
        loop {
            let room = self.batch_size - batch.len();
            let n = self.rx.recv_many(&mut batch, room).await;
            if batch.len() >= self.batch_size || (n == 0 && !batch.is_empty()) {
                self.flush(&mut batch).await;
            }
            if n == 0 {
                return self.last_error.take().map_or(Ok(()), Err);
            }
        }
    }

    /// Moves what is queued now into `batch`, up to the batch size, without waiting.
    /// Returns false once every producer is gone and the queue is empty.
    fn gather(&mut self, batch: &mut Vec<Queued>) -> bool {
        while batch.len() < self.batch_size {
            match self.rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// Writes one batch, leaving `batch` empty: its request records, then its traces (see
    /// the module docs).
    async fn flush(&mut self, batch: &mut Vec<Queued>) {
        let mut records = Vec::with_capacity(batch.len());
        let mut traces = Vec::new();
        for item in batch.drain(..) {
            match item {
                Queued::Request(r) => records.push(r),
                Queued::Trace(t) => traces.push(t),
            }
        }
        self.flush_kind(records).await;
        self.flush_kind(traces).await;
    }

    /// Writes the items of one kind, retrying retryable errors with backoff. A batch failing with
    /// a non-retryable error is written item by item so one bad item cannot sink the rest.
    async fn flush_kind<T: Writable>(&mut self, batch: Vec<T>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len();
        // Shared, not copied: every try writes the same items.
        let batch: Arc<[T]> = batch.into();
        let error = match self.write_with_retry(batch.clone()).await {
            Ok(()) => {
                self.stats
                    .written
                    .fetch_add(count as u64, Ordering::Relaxed);
                return;
            }
            Err(error) if count > 1 && !error.is_retryable() => error,
            Err(error) => return self.lost(count, error),
        };
        tracing::warn!(count, kind = T::KIND, %error, "batch rejected; writing items one by one");
        for item in batch.iter() {
            match self.write_with_retry(Arc::from([item.clone()])).await {
                Ok(()) => {
                    self.stats.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => self.lost(1, error),
            }
        }
    }

    async fn write_with_retry<T: Writable>(&self, batch: Arc<[T]>) -> Result<(), StoreError> {
        let mut backoff = FIRST_BACKOFF;
        for tries in 1..MAX_TRIES {
            match T::write(&*self.store, batch.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) if error.is_retryable() => {
                    tracing::debug!(tries, kind = T::KIND, %error, "write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => return Err(error),
            }
        }
        T::write(&*self.store, batch).await
    }

    fn lost(&mut self, count: usize, error: StoreError) {
        self.stats.failed.fetch_add(count as u64, Ordering::Relaxed);
        tracing::warn!(count, %error, "request log records/traces lost");
        self.last_error = Some(error);
    }
}
