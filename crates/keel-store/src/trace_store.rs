//! The `TraceStore` trait: durable, tenant-isolated storage for [`TraceRecord`]s, and [`Store`],
//! the combined trait the writer needs.

use std::sync::Arc;

use futures::future::BoxFuture;
use keel_types::trace::{TraceQuery, TraceRecord, TraceSummary};

use crate::{RequestLogStore, StoreError};

/// Largest page [`TraceStore::list_traces`] returns; `TraceQuery::limit` is clamped to
/// `1..=MAX_TRACE_PAGE`.
pub const MAX_TRACE_PAGE: u32 = 1_000;

/// One page of a trace listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TracePage {
    /// Newest first by `(started_at_ms, request_id)`, both descending.
    pub items: Vec<TraceSummary>,
    /// `(started_at_ms, request_id)` of the last item, to pass as `TraceQuery::after` for the
    /// next page; `None` when no further rows match.
    pub next: Option<(i64, String)>,
}

/// Durable storage for [`TraceRecord`]s. Object safe, like [`RequestLogStore`].
///
/// Invariants every implementation keeps (checked by the shared suite in
/// `tests/it/trace_conformance.rs`):
/// - `write_traces` is atomic (one transaction) and idempotent on `request_id`: rewriting a
///   trace replaces it; duplicates within one batch keep the last.
/// - Tenant isolation: `get_trace` and `list_traces` only ever return traces whose tenant equals
///   the given tenant exactly; `None` matches only traces without a tenant (never "all").
/// - `list_traces` is newest first by `(started_at_ms desc, request_id desc)`, with keyset
///   pagination: every matching row appears on exactly one page, ties on `started_at_ms`
///   included. Score filters never match a trace whose score is unset. `since_ms` is inclusive,
///   `until_ms` exclusive.
/// - Spans and content read back equal to what was written, except that JSON cannot hold
///   non-finite numbers: a `NaN`/`±∞` float attribute is stored as the string `"NaN"`, `"inf"`
///   or `"-inf"`.
pub trait TraceStore: Send + Sync {
    /// Writes (inserts or replaces) all `traces` in one transaction. Shared, so a writer that
    /// retries a failed batch holds it without copying every trace, and each trace may be
    /// held by others too (the OTLP exporter's queue) without being copied for the store.
    fn write_traces_shared(
        &self,
        traces: Arc<[Arc<TraceRecord>]>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// [`write_traces_shared`](Self::write_traces_shared) for an owned batch.
    fn write_traces(&self, traces: Vec<TraceRecord>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write_traces_shared(traces.into_iter().map(Arc::new).collect())
    }

    /// The trace of `request_id`, if it exists and belongs to `tenant` (see the isolation rule).
    fn get_trace<'a>(
        &'a self,
        tenant: Option<&'a str>,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TraceRecord>, StoreError>>;

    /// One page of summaries matching `q` (the tenant filter is always applied).
    fn list_traces<'a>(&'a self, q: &'a TraceQuery)
    -> BoxFuture<'a, Result<TracePage, StoreError>>;

    /// Deletes the oldest traces with `started_at_ms < cutoff_ms`, at most `limit` of them;
    /// returns how many went (bounded like [`RequestLogStore::purge_before`]).
    ///
    /// [`RequestLogStore::purge_before`]: crate::RequestLogStore::purge_before
    fn purge_traces_before(
        &self,
        cutoff_ms: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Number of stored traces (all tenants).
    fn count_traces(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
}

/// A backend holding both the request log and the traces: what
/// [`RequestLogWriter`](crate::RequestLogWriter) writes to. Implemented for every type that
/// implements both traits; `Arc<dyn Store>` upcasts to either.
pub trait Store: RequestLogStore + TraceStore {}

impl<T: RequestLogStore + TraceStore + ?Sized> Store for T {}
