//! The behaviour every `TraceStore` must show, written once against `Arc<dyn Store>` and
//! instantiated per backend with `trace_conformance_suite!` (list cases in `trace_list.rs`).

use std::sync::Arc;
use std::time::Duration;

use keel_store::{RequestLogWriter, Store, WriterOptions};
use keel_types::trace::{AttrValue, TraceQuery, TraceSummary};
use tokio_util::task::TaskTracker;

use crate::support::full_record;
use crate::trace_support::{full_trace, minimal_trace};

/// Generates one `#[tokio::test]` per case (`module::case`, module relative to the crate root).
/// `$fixture` is an async expression yielding `Option<F>` where `F` has a `store` field (an
/// `Arc` of a store); `None` skips.
macro_rules! trace_conformance_suite {
    ($fixture:expr) => {
        trace_conformance_suite!(@cases $fixture;
            trace_conformance::trace_round_trip_full,
            trace_conformance::trace_round_trip_minimal,
            trace_conformance::trace_non_finite_floats_become_strings,
            trace_conformance::trace_rewrite_is_idempotent,
            trace_conformance::trace_duplicates_in_one_batch_keep_the_last,
            trace_conformance::trace_get_is_tenant_isolated,
            trace_conformance::trace_purge_deletes_only_older,
            trace_conformance::trace_count_and_empty_batch,
            trace_conformance::trace_writer_flushes_records_and_traces,
            trace_list::trace_list_is_tenant_isolated,
            trace_list::trace_list_filters_individually,
            trace_list::trace_list_score_filters_exclude_null,
            trace_list::trace_list_combined_filters,
            trace_list::trace_pagination_covers_every_row_once,
            trace_list::trace_pagination_with_filters_and_exact_pages,
            trace_list::trace_limit_is_clamped,
        );
    };
    (@cases $fixture:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = $fixture else { return };
                let store: std::sync::Arc<dyn keel_store::Store> = fixture.store.clone();
                $crate::$module::$case(store).await;
            }
        )*
    };
}
pub(crate) use trace_conformance_suite;

/// A query for `tenant` with no other filter.
pub fn query(tenant: Option<&str>, limit: u32) -> TraceQuery {
    TraceQuery {
        tenant: tenant.map(str::to_owned),
        limit,
        ..TraceQuery::default()
    }
}

pub async fn trace_round_trip_full(store: Arc<dyn Store>) {
    let trace = full_trace("req_full", Some("acme"), 1_700_000_000_123);
    store
        .write_traces(vec![trace.clone()])
        .await
        .expect("write");
    let got = store
        .get_trace(Some("acme"), "req_full")
        .await
        .expect("get")
        .expect("trace exists");
    assert_eq!(got, trace);
    let page = store
        .list_traces(&query(Some("acme"), 10))
        .await
        .expect("list");
    assert_eq!(page.items, vec![TraceSummary::from(&trace)]);
    assert_eq!(page.next, None);
    assert_eq!(
        store.count().await.expect("count"),
        0,
        "request log untouched"
    );
}

pub async fn trace_round_trip_minimal(store: Arc<dyn Store>) {
    let trace = minimal_trace("req_min", None, -5);
    store
        .write_traces(vec![trace.clone()])
        .await
        .expect("write");
    let got = store.get_trace(None, "req_min").await.expect("get");
    assert_eq!(got, Some(trace.clone()));
    let page = store.list_traces(&query(None, 10)).await.expect("list");
    assert_eq!(page.items, vec![TraceSummary::from(&trace)]);
}

pub async fn trace_non_finite_floats_become_strings(store: Arc<dyn Store>) {
    let mut trace = full_trace("req_nan", None, 1);
    let attrs = &mut trace.spans[2].attributes;
    attrs.push(("nan".into(), AttrValue::Float(f64::NAN)));
    attrs.push(("inf".into(), AttrValue::Float(f64::INFINITY)));
    attrs.push(("ninf".into(), AttrValue::Float(f64::NEG_INFINITY)));
    store
        .write_traces(vec![trace.clone()])
        .await
        .expect("write");
    let got = store
        .get_trace(None, "req_nan")
        .await
        .expect("get")
        .expect("exists");
    let span = &got.spans[2];
    assert_eq!(span.attr("nan"), Some(&AttrValue::from("NaN")));
    assert_eq!(span.attr("inf"), Some(&AttrValue::from("inf")));
    assert_eq!(span.attr("ninf"), Some(&AttrValue::from("-inf")));
    assert_eq!(got.spans[..2], trace.spans[..2], "other spans untouched");
}

pub async fn trace_rewrite_is_idempotent(store: Arc<dyn Store>) {
    let batch = vec![
        full_trace("req_a", Some("t"), 1),
        full_trace("req_b", Some("t"), 2),
    ];
    store.write_traces(batch.clone()).await.expect("first");
    store.write_traces(batch.clone()).await.expect("retried");
    assert_eq!(store.count_traces().await.expect("count"), 2);
    let page = store
        .list_traces(&query(Some("t"), 10))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 2, "no duplicate rows");
    assert_eq!(
        store.get_trace(Some("t"), "req_a").await.expect("get"),
        Some(batch[0].clone())
    );

    // A rewrite replaces every column, the tenant included.
    let mut changed = minimal_trace("req_a", Some("u"), 3);
    changed.spans = batch[1].spans[1..].to_vec();
    store
        .write_traces(vec![changed.clone()])
        .await
        .expect("rewrite");
    assert_eq!(store.count_traces().await.expect("count"), 2);
    assert_eq!(
        store.get_trace(Some("t"), "req_a").await.expect("get"),
        None
    );
    assert_eq!(
        store.get_trace(Some("u"), "req_a").await.expect("get"),
        Some(changed)
    );
}

pub async fn trace_duplicates_in_one_batch_keep_the_last(store: Arc<dyn Store>) {
    let first = full_trace("req_dup", Some("t"), 1);
    let last = minimal_trace("req_dup", Some("t"), 2);
    store
        .write_traces(vec![first, last.clone()])
        .await
        .expect("write");
    assert_eq!(store.count_traces().await.expect("count"), 1);
    assert_eq!(
        store.get_trace(Some("t"), "req_dup").await.expect("get"),
        Some(last)
    );
}

pub async fn trace_get_is_tenant_isolated(store: Arc<dyn Store>) {
    let a = full_trace("req_a", Some("a"), 1);
    let b = full_trace("req_b", Some("b"), 2);
    let none = full_trace("req_none", None, 3);
    store
        .write_traces(vec![a.clone(), b.clone(), none.clone()])
        .await
        .expect("write");

    let get = |tenant: Option<&'static str>, id: &'static str| {
        let store = store.clone();
        async move { store.get_trace(tenant, id).await.expect("get") }
    };
    assert_eq!(get(Some("a"), "req_a").await, Some(a));
    assert_eq!(get(Some("b"), "req_b").await, Some(b));
    assert_eq!(get(None, "req_none").await, Some(none));
    // Another tenant's trace, or a tenant's trace asked for without a tenant: nothing.
    assert_eq!(get(Some("b"), "req_a").await, None);
    assert_eq!(get(Some("a"), "req_b").await, None);
    assert_eq!(get(None, "req_a").await, None);
    // A trace without a tenant is not visible to any tenant, not even "".
    assert_eq!(get(Some("a"), "req_none").await, None);
    assert_eq!(get(Some(""), "req_none").await, None);
    // Case and padding matter.
    assert_eq!(get(Some("A"), "req_a").await, None);
    assert_eq!(get(Some("a "), "req_a").await, None);
    assert_eq!(get(Some("a"), "req_unknown").await, None);
}

pub async fn trace_purge_deletes_only_older(store: Arc<dyn Store>) {
    store
        .write_traces(vec![
            minimal_trace("req_100", Some("a"), 100),
            minimal_trace("req_150", None, 150),
            minimal_trace("req_199", Some("b"), 199),
            minimal_trace("req_200", Some("a"), 200),
            full_trace("req_300", Some("b"), 300),
        ])
        .await
        .expect("write");
    store
        .write_batch(vec![full_record("req_100", Some("a"), 100)])
        .await
        .expect("write record");
    // Bounded: two of the three older ones, oldest first, then the last.
    assert_eq!(store.purge_traces_before(200, 2).await.expect("purge"), 2);
    assert_eq!(store.count_traces().await.expect("count"), 3);
    assert!(
        store
            .get_trace(Some("b"), "req_199")
            .await
            .expect("get")
            .is_some(),
        "the newest of the older ones waits for the next call"
    );
    assert_eq!(store.purge_traces_before(200, 2).await.expect("purge"), 1);
    assert_eq!(store.count_traces().await.expect("count"), 2);
    assert_eq!(store.count().await.expect("count"), 1, "request log kept");
    assert!(
        store
            .get_trace(Some("a"), "req_200")
            .await
            .expect("get")
            .is_some(),
        "the cutoff itself is kept"
    );
    assert_eq!(
        store.get_trace(Some("a"), "req_100").await.expect("get"),
        None
    );
    assert_eq!(
        store.purge_traces_before(200, 1000).await.expect("purge"),
        0
    );
    assert_eq!(
        store
            .purge_traces_before(i64::MAX, 1000)
            .await
            .expect("purge"),
        2
    );
    assert_eq!(store.count_traces().await.expect("count"), 0);
}

pub async fn trace_count_and_empty_batch(store: Arc<dyn Store>) {
    assert_eq!(store.count_traces().await.expect("count"), 0);
    store.write_traces(Vec::new()).await.expect("empty write");
    assert_eq!(store.count_traces().await.expect("count"), 0);
    let batch = (0..300)
        .map(|i| full_trace(&format!("req_{i:03}"), Some("bulk"), i))
        .collect::<Vec<_>>();
    store.write_traces(batch.clone()).await.expect("write");
    assert_eq!(store.count_traces().await.expect("count"), 300);
    assert_eq!(
        store.get_trace(Some("bulk"), "req_123").await.expect("get"),
        Some(batch[123].clone())
    );
}

/// The writer carries records and traces through one queue; shutdown flushes both.
pub async fn trace_writer_flushes_records_and_traces(store: Arc<dyn Store>) {
    let tracker = TaskTracker::new();
    let options = WriterOptions {
        queue_capacity: 10_000,
        batch_size: 64,
        // Only full batches and the shutdown drain write.
        flush_interval: Duration::from_secs(3600),
    };
    let (writer, handle) = RequestLogWriter::spawn(store.clone(), options, &tracker);
    for i in 0..300 {
        writer.record(full_record(&format!("req_{i:03}"), Some("w"), i));
        writer.record_trace(full_trace(&format!("req_{i:03}"), Some("w"), i));
    }
    writer.record_trace(minimal_trace("req_last", None, 1_000));
    handle.shutdown().await.expect("shutdown");
    assert_eq!(store.count().await.expect("count"), 300);
    assert_eq!(store.count_traces().await.expect("count traces"), 301);
    assert_eq!(
        (writer.written(), writer.dropped(), writer.failed()),
        (601, 0, 0)
    );
    assert_eq!(
        store.get_trace(Some("w"), "req_042").await.expect("get"),
        Some(full_trace("req_042", Some("w"), 42))
    );
    assert_eq!(
        store.get_trace(None, "req_last").await.expect("get"),
        Some(minimal_trace("req_last", None, 1_000))
    );
    tracker.close();
    tracker.wait().await;
}
