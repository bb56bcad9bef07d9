//! Persistence behind traits: the request log on SQLite (embedded default) and Postgres, with a non-blocking batched writer.
//!
//! Code map:
//! - [`record`]: `RequestRecord` / `AttemptRecord`, what one client request left behind.
//! - [`store`]: the object-safe `RequestLogStore` trait and the invariants every backend keeps.
//! - [`sqlite`]: `SqliteStore`, one WAL-mode file driven from a dedicated connection thread.
//! - [`postgres`]: `PostgresStore`, a schema in a shared Postgres, reconnecting when broken.
//! - [`writer`]: `RequestLogWriter`, the bounded queue + batching task the request path feeds.
//! - [`error`]: `StoreError`, with `is_retryable()`; never prints connection strings.
//! - `sql` (private): column lists and row decoding shared by both SQL backends.
//!
//! Both backends keep their schema versioned in a `schema_version` table and migrate at open.

pub mod error;
pub mod postgres;
pub mod record;
mod sql;
pub mod sqlite;
pub mod store;
pub mod writer;

pub use error::StoreError;
pub use futures::future::BoxFuture;
pub use postgres::PostgresStore;
pub use record::{AttemptRecord, RequestRecord};
pub use sqlite::SqliteStore;
pub use store::RequestLogStore;
pub use writer::{RequestLogWriter, WriterHandle, WriterOptions};
