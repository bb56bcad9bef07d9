//! The `RequestLogStore` trait: what every request-log backend provides.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{RequestRecord, StoreError};

/// Durable storage for [`RequestRecord`]s. Object safe: the server holds an
/// `Arc<dyn RequestLogStore>` chosen by configuration.
///
/// Borrowed arguments live as long as the returned future (`&'a str` → `BoxFuture<'a, _>`), so
/// callers can pass `&str` without allocating.
///
/// Invariants every implementation keeps (checked by the shared conformance suite in
/// `tests/it/conformance.rs`):
/// - `write_batch` is atomic (one transaction) and idempotent on `id`: writing a record whose id
///   already exists replaces it (last write wins) together with its attempts, so a retried
///   batch never duplicates rows.
/// - Attempts come back in the order they were written.
/// - `recent` is newest first by `started_at_ms` (ties broken by `id`, descending).
///
/// Cancel safety: dropping a returned future never leaves a half-written batch, but a write may
/// still commit after its future was dropped. Because writes are idempotent, retrying is safe.
pub trait RequestLogStore: Send + Sync {
    /// Writes (inserts or replaces) all `records` in one transaction. Shared, so a writer
    /// that retries a failed batch holds it without copying every record.
    fn write_shared(&self, records: Arc<[RequestRecord]>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// [`write_shared`](Self::write_shared) for an owned batch.
    fn write_batch(&self, records: Vec<RequestRecord>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write_shared(records.into())
    }

    /// The record with this id, attempts included.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>>;

    /// Up to `limit` records, newest first; `tenant: None` means all tenants.
    fn recent<'a>(
        &'a self,
        tenant: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RequestRecord>, StoreError>>;

    /// Number of stored records.
    fn count(&self) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Deletes the oldest records that started before `cutoff_ms`, at most `limit` of them,
    /// with their attempts; returns how many records went. Bounded so that retention over a
    /// large backlog is many short transactions between the writer's batches, never one that
    /// holds the database for minutes: callers repeat while a call deletes `limit`.
    fn purge_before(&self, cutoff_ms: i64, limit: u32) -> BoxFuture<'_, Result<u64, StoreError>>;
}
