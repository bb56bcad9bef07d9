//! Persistence behind traits: the request log and the trace store on SQLite (embedded default)
//! and Postgres, with a non-blocking batched writer.
//!
//! Code map:
//! - [`record`]: `RequestRecord` / `AttemptRecord`, what one client request left behind.
//! - [`store`]: the object-safe `RequestLogStore` trait and the invariants every backend keeps.
//! - [`trace_store`]: the object-safe `TraceStore` trait (write, tenant-isolated get and
//!   filtered keyset-paginated list of `keel_types::trace::TraceRecord`s, purge), `TracePage`,
//!   and `Store`, the combined trait (blanket impl) the writer holds.
//! - [`sqlite`]: `SqliteStore`, one WAL-mode file driven from a dedicated connection thread;
//!   `sqlite/traces.rs` implements `TraceStore` for it.
//! - [`postgres`]: `PostgresStore`, a schema in a shared Postgres, reconnecting when broken;
//!   `postgres/traces.rs` implements `TraceStore` for it.
//! - [`writer`]: `RequestLogWriter`, the bounded queue + batching task the request path feeds
//!   with request records and traces.
//! - [`background`]: lowers the priority of the threads that write behind requests.
//! - [`error`]: `StoreError`, with `is_retryable()`; never prints connection strings.
//! - `sql` (private): request-log column lists and row decoding shared by both SQL backends.
//! - `trace_sql` (private): the same for traces, plus the dynamic `list_traces` query builder.
//!
//! Both backends keep their schema versioned in a `schema_version` table and migrate at open
//! (1: request log and attempts; 2: traces).

pub mod background;
pub mod error;
pub mod postgres;
pub mod record;
mod spans_json;
mod sql;
pub mod sqlite;
pub mod store;
mod trace_sql;
pub mod trace_store;
pub mod writer;

pub use error::StoreError;
pub use futures::future::BoxFuture;
pub use postgres::PostgresStore;
pub use record::{AttemptRecord, RequestRecord};
pub use sqlite::SqliteStore;
pub use store::RequestLogStore;
pub use trace_store::{MAX_TRACE_PAGE, Store, TracePage, TraceStore};
pub use writer::{RequestLogWriter, WriterHandle, WriterOptions};
