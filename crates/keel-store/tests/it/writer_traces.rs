//! The batched writer carrying traces alongside request records: shared queue and batches,
//! drops, per-kind failure isolation, and the shutdown flush. Uses `writer.rs`'s test double.

use std::sync::Arc;
use std::time::Duration;

use keel_store::{RequestLogWriter, StoreError};
use keel_types::trace::TraceRecord;
use tokio_util::task::TaskTracker;

use crate::support::minimal_record;
use crate::trace_support::minimal_trace;
use crate::writer::{TestStore, options, records, sqlite};

fn traces(n: usize) -> impl Iterator<Item = TraceRecord> {
    (0..n).map(|i| minimal_trace(&format!("req_{i:06}"), None, i as i64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_traces_share_batches_and_are_flushed_at_shutdown() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::new(inner.clone()));
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(10_000, 100, Duration::from_secs(3600)),
        &tracker,
    );
    // 1 record, then 3 traces, repeated: every batch of 100 items holds 25 records and 75
    // traces, written as one call each.
    let mut all_traces = traces(750);
    for r in records(250) {
        writer.record(r);
        for t in all_traces.by_ref().take(3) {
            writer.record_trace(t);
        }
    }
    handle.shutdown().await.expect("shutdown");
    assert_eq!(inner.count().await.expect("count"), 250);
    assert_eq!(inner.count_traces().await.expect("count traces"), 750);
    assert_eq!(
        (writer.written(), writer.dropped(), writer.failed()),
        (1_000, 0, 0)
    );
    assert_eq!(store.batch_sizes(), [25; 10]);
    assert_eq!(store.trace_batch_sizes(), [75; 10]);
    assert_eq!(
        inner.get_trace(None, "req_000749").await.expect("get"),
        Some(minimal_trace("req_000749", None, 749))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_trace_never_waits_and_a_full_queue_drops_traces() {
    let (_fixture, inner) = sqlite();
    let store = Arc::new(TestStore::gated(inner.clone()));
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(4, 1, Duration::from_millis(1)),
        &tracker,
    );
    let mut all = traces(11);
    writer.record_trace(all.next().expect("first"));
    store.entered.notified().await; // trace 0 is in flight; the queue is empty
    writer.record(minimal_record("req_r", 1)); // records and traces share the queue
    for t in all {
        writer.record_trace(t); // 3 fit, 7 are dropped
    }
    assert_eq!(writer.queued(), 4);
    assert_eq!(writer.dropped(), 7);

    store.open_gate();
    handle.shutdown().await.expect("shutdown");
    assert_eq!(inner.count_traces().await.expect("count"), 4);
    assert_eq!(inner.count().await.expect("count"), 1);
    assert_eq!((writer.written(), writer.dropped()), (5, 7));
    writer.record_trace(minimal_trace("req_late", None, 1));
    assert_eq!(writer.dropped(), 8, "traces after shutdown are dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_trace_write_costs_neither_records_nor_other_traces() {
    let (_fixture, inner) = sqlite();
    let mut store = TestStore::new(inner.clone());
    store.trace_behaviour = Box::new(|batch| {
        if batch.iter().any(|t| t.request_id == "req_000003") {
            Err(StoreError::Config("poison".to_owned()))
        } else {
            Ok(())
        }
    });
    let store = Arc::new(store);
    let tracker = TaskTracker::new();
    let (writer, handle) = RequestLogWriter::spawn(
        store.clone(),
        options(100, 20, Duration::from_secs(3600)),
        &tracker,
    );
    for (r, t) in records(10).zip(traces(10)) {
        writer.record(r);
        writer.record_trace(t);
    }
    let result = handle.shutdown().await;
    assert!(matches!(result, Err(StoreError::Config(_))), "{result:?}");
    assert_eq!(inner.count().await.expect("count"), 10);
    assert_eq!(inner.count_traces().await.expect("count"), 9);
    assert_eq!((writer.written(), writer.failed()), (19, 1));
    assert_eq!(
        inner.get_trace(None, "req_000003").await.expect("get"),
        None
    );
}
