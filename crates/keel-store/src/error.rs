//! `StoreError`: what can go wrong in a store, and whether retrying can help.
//!
//! Messages never contain connection strings or passwords: Postgres errors are rendered from
//! the error kind and the server's SQLSTATE/message only, never from the configuration.

use std::path::PathBuf;

/// An error from a request-log store or the writer in front of it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed while doing `op`.
    #[error("sqlite {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// Postgres failed while doing `op`. `detail` is a safe rendering of the error (kind,
    /// SQLSTATE and server message) that never includes the connection string.
    #[error("postgres {op}: {detail}")]
    Postgres {
        op: &'static str,
        detail: String,
        retryable: bool,
        #[source]
        source: tokio_postgres::Error,
    },
    /// A Postgres operation did not finish in time; the connection was dropped.
    #[error("postgres {op}: timed out after {seconds}s")]
    Timeout { op: &'static str, seconds: u64 },
    /// A file-system operation on `path` failed (e.g. creating the database's directory).
    #[error("io {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The store was configured wrongly (e.g. an invalid schema name or connection string).
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The database was migrated by a newer keel than this one.
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A stored row could not be turned back into a record (e.g. a negative token count).
    #[error("corrupt row for request {id}: {reason}")]
    Corrupt { id: String, reason: String },
    /// A value could not be encoded for storage (e.g. a trace's spans as JSON); retrying cannot
    /// help.
    #[error("cannot encode request {id} for storage: {reason}")]
    Encode { id: String, reason: String },
    /// The worker behind the store (SQLite thread, writer task) is gone.
    #[error("{0} is closed")]
    Closed(&'static str),
}

impl StoreError {
    /// Whether the same operation may succeed if tried again (busy/locked database, broken
    /// connection, serialization failure, timeout). Writes are idempotent, so retrying is safe.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            StoreError::Postgres { retryable, .. } => *retryable,
            StoreError::Timeout { .. } => true,
            StoreError::Io { .. }
            | StoreError::Config(_)
            | StoreError::SchemaTooNew { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Encode { .. }
            | StoreError::Closed(_) => false,
        }
    }

    pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { op, source }
    }

    pub(crate) fn postgres(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
        move |source| StoreError::Postgres {
            op,
            detail: postgres_detail(&source),
            retryable: postgres_retryable(&source),
            source,
        }
    }

    /// Like [`StoreError::postgres`], for failures while establishing a connection: without a
    /// SQLSTATE (refused, reset, DNS, timeout) these are transient.
    pub(crate) fn postgres_connect(source: tokio_postgres::Error) -> StoreError {
        let retryable = match source.code() {
            Some(_) => postgres_retryable(&source),
            None => true,
        };
        StoreError::Postgres {
            op: "connect",
            detail: postgres_detail(&source),
            retryable,
            source,
        }
    }

    pub(crate) fn corrupt(id: &str, reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            id: id.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn encode(id: &str, reason: impl Into<String>) -> StoreError {
        StoreError::Encode {
            id: id.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Renders a Postgres error without its configuration: the kind, plus the server's SQLSTATE and
/// message for database errors, or the underlying I/O cause for connection errors.
fn postgres_detail(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// Connection-level failures and transient server conditions are retryable; data, constraint and
/// syntax errors are not.
fn postgres_retryable(error: &tokio_postgres::Error) -> bool {
    let Some(code) = error.code() else {
        // No SQLSTATE: transient only if the connection itself failed (closed, or an I/O error
        // underneath); encoding/decoding errors would fail again.
        let io = std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>());
        return error.is_closed() || io;
    };
    let code = code.code();
    // 08: connection exception, 40: transaction rollback (serialization, deadlock),
    // 53: insufficient resources, 57P: operator intervention (admin shutdown, crash),
    // 55P03: lock not available.
    code.starts_with("08")
        || code.starts_with("40")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "55P03"
}
