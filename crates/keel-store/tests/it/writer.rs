//! The batched writer over a real SQLite store, with test doubles that gate, count or fail
//! writes (trace-specific writer tests in `writer_traces.rs`). No timed assertions: ordering is forced with gates and checked with counters.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel_store::{
    BoxFuture, RequestLogStore, RequestLogWriter, RequestRecord, Store, StoreError, TracePage,
    TraceStore, WriterOptions,
};
use keel_types::trace::{TraceQuery, TraceRecord};
use tokio::sync::{Notify, Semaphore};
use tokio_util::task::TaskTracker;

use crate::support::{SqliteFixture, minimal_record, sqlite_store};

pub(crate) fn records(n: usize) -> impl Iterator<Item = RequestRecord> {
    (0..n).map(|i| minimal_record(&format!("req_{i:06}"), i as i64))
}

pub(crate) fn options(
    queue_capacity: usize,
    batch_size: usize,
    flush_interval: Duration,
) -> WriterOptions {
    WriterOptions {
        queue_capacity,
        batch_size,
        flush_interval,
    }
}

/// Decides, per call number and batch, whether a write fails before reaching the real store.
type Behaviour = Box<dyn Fn(usize, &[RequestRecord]) -> Result<(), StoreError> + Send + Sync>;
/// The same for trace writes.
pub(crate) type TraceBehaviour =
    Box<dyn Fn(&[Arc<TraceRecord>]) -> Result<(), StoreError> + Send + Sync>;

/// Wraps a store; `behaviour` decides per call whether to fail, `gate` (if closed) holds writes
/// (of records and traces alike).
pub(crate) struct TestStore {
    pub(crate) inner: Arc<dyn Store>,
    batch_sizes: Mutex<Vec<usize>>,
    trace_batch_sizes: Mutex<Vec<usize>>,
    pub(crate) entered: Notify,
    gate: Semaphore,
    behaviour: Behaviour,
    pub(crate) trace_behaviour: TraceBehaviour,
    calls: AtomicUsize,
}

impl TestStore {
    pub(crate) fn new(inner: Arc<dyn Store>) -> TestStore {
        TestStore {
            inner,
            batch_sizes: Mutex::new(Vec::new()),
            trace_batch_sizes: Mutex::new(Vec::new()),
            entered: Notify::new(),
            gate: Semaphore::new(Semaphore::MAX_PERMITS),
            behaviour: Box::new(|_, _| Ok(())),
            trace_behaviour: Box::new(|_| Ok(())),
            calls: AtomicUsize::new(0),
        }
    }

    /// Writes wait until [`TestStore::open_gate`].
    pub(crate) fn gated(inner: Arc<dyn Store>) -> TestStore {
        TestStore {
            gate: Semaphore::new(0),
            ..TestStore::new(inner)
        }
    }

    fn failing(
        inner: Arc<dyn Store>,
        behaviour: impl Fn(usize, &[RequestRecord]) -> Result<(), StoreError> + Send + Sync + 'static,
    ) -> TestStore {
        TestStore {
            behaviour: Box::new(behaviour),
            ..TestStore::new(inner)
        }
    }

    pub(crate) fn open_gate(&self) {
        self.gate.add_permits(1 << 20);
    }

    pub(crate) fn batch_sizes(&self) -> Vec<usize> {
        self.batch_sizes.lock().unwrap().clone()
    }

    pub(crate) fn trace_batch_sizes(&self) -> Vec<usize> {
        self.trace_batch_sizes.lock().unwrap().clone()
    }
}

impl RequestLogStore for TestStore {
    fn write_shared(&self, records: Arc<[RequestRecord]>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            self.entered.notify_one();
            let _permit = self.gate.acquire().await.expect("gate open");
            (self.behaviour)(call, &records)?;
            self.batch_sizes.lock().unwrap().push(records.len());
            self.inner.write_shared(records).await
        })
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>> {
        self.inner.get(id)
    }
    fn recent<'a>(
        &'a self,
        tenant: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RequestRecord>, StoreError>> {
        self.inner.recent(tenant, limit)
    }
    fn count(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.count()
    }
    fn purge_before(&self, cutoff_ms: i64, limit: u32) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.purge_before(cutoff_ms, limit)
    }
}

impl TraceStore for TestStore {
    fn write_traces_shared(
        &self,
        traces: Arc<[Arc<TraceRecord>]>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.entered.notify_one();
            let _permit = self.gate.acquire().await.expect("gate open");
            (self.trace_behaviour)(&traces)?;
            self.trace_batch_sizes.lock().unwrap().push(traces.len());
            self.inner.write_traces_shared(traces).await
        })
    }
    fn get_trace<'a>(
        &'a self,
        tenant: Option<&'a str>,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TraceRecord>, StoreError>> {
        self.inner.get_trace(tenant, request_id)
    }
    fn list_traces<'a>(
        &'a self,
        q: &'a TraceQuery,
    ) -> BoxFuture<'a, Result<TracePage, StoreError>> {
        self.inner.list_traces(q)
    }
    fn purge_traces_before(
        &self,
        cutoff_ms: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.purge_traces_before(cutoff_ms, limit)
    }
    fn count_traces(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.count_traces()
    }
}

pub(crate) fn sqlite() -> (SqliteFixture, Arc<dyn Store>) {
    let fixture = sqlite_store();
    let inner: Arc<dyn Store> = fixture.store.clone();
    (fixture, inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_records_land_after_shutdown_in_batches() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::new(inner.clone()));
    let tracker = TaskTracker::new();
    // A long flush interval: only full batches and the shutdown drain write.
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(10_000, 100, Duration::from_secs(3600)),
        &tracker,
    );
    for r in records(10_000) {
        writer.record(r);
    }
    handle.shutdown().await.expect("shutdown");

    assert_eq!(inner.count().await.expect("count"), 10_000);
    assert_eq!(writer.written(), 10_000);
    assert_eq!(writer.dropped(), 0);
    assert_eq!(writer.failed(), 0);
    let sizes = store.batch_sizes();
    assert_eq!(sizes.len(), 100, "10 000 records in batches of 100");
    assert!(sizes.iter().all(|&n| n == 100), "{sizes:?}");
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_does_not_wait_for_a_blocked_store() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::gated(inner.clone()));
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(1_000, 10, Duration::from_millis(1)),
        &tracker,
    );

    let mut all = records(501);
    writer.record(all.next().expect("first"));
    store.entered.notified().await; // the writer task is now stuck inside write_batch
    for r in all {
        writer.record(r); // returns although the store cannot make progress
    }
    assert_eq!(
        inner.count().await.expect("count"),
        0,
        "store still blocked"
    );
    assert_eq!(writer.written(), 0);
    assert_eq!(writer.dropped(), 0);
    assert_eq!(writer.queued(), 500);

    store.open_gate();
    handle.shutdown().await.expect("shutdown");
    assert_eq!(inner.count().await.expect("count"), 501);
    assert_eq!(writer.written(), 501);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_and_counts() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::gated(inner.clone()));
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(4, 1, Duration::from_millis(1)),
        &tracker,
    );

    let mut all = records(11);
    writer.record(all.next().expect("first"));
    store.entered.notified().await; // record 0 is in flight; the queue is empty
    for r in all {
        writer.record(r); // 4 fit, 6 are dropped
    }
    assert_eq!(writer.queued(), 4);
    assert_eq!(writer.dropped(), 6);

    store.open_gate();
    handle.shutdown().await.expect("shutdown");
    assert_eq!(inner.count().await.expect("count"), 5);
    assert_eq!(writer.written(), 5);
    assert_eq!(writer.dropped(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batch_is_flushed_after_the_interval() {
    let (_fixture, inner) = sqlite();
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        inner.clone(),
        options(100, 1_000, Duration::from_millis(20)),
        &tracker,
    );
    for r in records(5) {
        writer.record(r);
    }
    // No shutdown: the interval alone must flush. Poll (bounded) rather than assert on time.
    // `written()` moves after the store commits, so wait on it, then check the store.
    for _ in 0..1_000 {
        if writer.written() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(writer.written(), 5);
    assert_eq!(inner.count().await.expect("count"), 5);
    handle.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_trickling_in_are_gathered_into_one_batch_across_ticks() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::new(inner.clone()));
    let tracker = TaskTracker::new();
    // The interval spans many gather ticks; the items arrive over several of them.
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(100, 1_000, Duration::from_secs(2)),
        &tracker,
    );
    for r in records(8) {
        writer.record(r);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    for _ in 0..1_000 {
        if writer.written() == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(writer.written(), 8);
    assert_eq!(
        store.batch_sizes(),
        vec![8],
        "one batch, flushed by its interval"
    );
    handle.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::failing(inner.clone(), |call, _| {
        if call < 2 {
            Err(StoreError::Timeout {
                op: "test",
                seconds: 0,
            })
        } else {
            Ok(())
        }
    }));
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(100, 50, Duration::from_secs(3600)),
        &tracker,
    );
    for r in records(50) {
        writer.record(r);
    }
    handle.shutdown().await.expect("shutdown");
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
    assert_eq!(inner.count().await.expect("count"), 50);
    assert_eq!((writer.written(), writer.failed()), (50, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_loses_only_itself() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::failing(inner.clone(), |_, batch| {
        if batch.iter().any(|r| r.id == "req_000003") {
            Err(StoreError::Config("poison".to_owned()))
        } else {
            Ok(())
        }
    }));
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(100, 10, Duration::from_secs(3600)),
        &tracker,
    );
    for r in records(10) {
        writer.record(r);
    }
    let result = handle.shutdown().await;
    assert!(
        matches!(result, Err(StoreError::Config(_))),
        "shutdown reports the loss: {result:?}"
    );
    assert_eq!(inner.count().await.expect("count"), 9);
    assert_eq!((writer.written(), writer.failed()), (9, 1));
    assert_eq!(inner.get("req_000003").await.expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_after_shutdown_are_dropped() {
    let (_fixture, inner) = sqlite();
    let tracker = TaskTracker::new();
    let (writer, handle) =
        RequestLogWriter::spawn(inner.clone(), WriterOptions::default(), &tracker);
    writer.record(minimal_record("req_in", 1));
    handle.shutdown().await.expect("shutdown");
    writer.record(minimal_record("req_late", 2));
    assert_eq!(writer.dropped(), 1);
    assert_eq!(inner.count().await.expect("count"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_task_after_draining() {
    let (_fixture, inner) = sqlite();
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        inner.clone(),
        options(100, 1_000, Duration::from_secs(3600)),
        &tracker,
    );
    for r in records(7) {
        writer.record(r);
    }
    drop(handle);
    tracker.close();
    tracker.wait().await; // would hang if the task outlived its handle
    assert_eq!(inner.count().await.expect("count"), 7);
    drop(writer);
}

#[tokio::test]
async fn zero_sizes_are_clamped() {
    let (_fixture, inner) = sqlite();
    let tracker = TaskTracker::new();
    let (writer, handle) =
        RequestLogWriter::spawn(inner.clone(), options(0, 0, Duration::ZERO), &tracker);
    writer.record(minimal_record("req_one", 1));
    handle.shutdown().await.expect("shutdown");
    assert_eq!(inner.count().await.expect("count"), 1);
}
