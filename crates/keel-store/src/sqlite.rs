//! `SqliteStore`: the embedded default request log, one SQLite file in WAL mode.
//!
//! rusqlite is blocking, so the connection lives on a dedicated thread (`keel-sqlite`, a
//! [`BackgroundThread`]: idle scheduling class while it keeps up) that runs jobs sent over a
//! channel and answers through oneshots; async callers never block a runtime worker. The
//! thread exits when the store is dropped, after finishing queued jobs.
//!
//! The trace store (`TraceStore`) lives in the submodule `traces`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::background::BackgroundThread;
use crate::sql::{AttemptRow, RequestRow, attempt_columns, request_columns, request_upsert_set};
use crate::{RequestLogStore, RequestRecord, StoreError};

mod traces;

/// How long a statement waits for another process's write lock before failing with `busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Versioned migrations; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: request log and attempts.
    "CREATE TABLE request_log (
        id TEXT PRIMARY KEY NOT NULL,
        started_at_ms INTEGER NOT NULL,
        tenant TEXT,
        key_id TEXT,
        endpoint TEXT NOT NULL,
        model_requested TEXT NOT NULL,
        route TEXT,
        stream INTEGER NOT NULL,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cost_usd REAL,
        ttft_ms REAL,
        total_ms REAL NOT NULL,
        status INTEGER NOT NULL,
        error_class TEXT,
        error_message TEXT
    ) STRICT;
    CREATE INDEX request_log_started ON request_log (started_at_ms DESC, id DESC);
    CREATE INDEX request_log_tenant_started ON request_log (tenant, started_at_ms DESC, id DESC);
    CREATE TABLE request_attempts (
        request_id TEXT NOT NULL REFERENCES request_log (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        latency_ms REAL NOT NULL,
        error TEXT,
        PRIMARY KEY (request_id, idx)
    ) STRICT;",
    // 2: traces.
    traces::MIGRATION,
    // 3: the model served and the routing reason.
    crate::sql::ROUTING_MIGRATION,
];

const UPSERT_REQUEST: &str = concat!(
    "INSERT INTO request_log (",
    request_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) ",
    request_upsert_set!()
);
const DELETE_ATTEMPTS: &str = "DELETE FROM request_attempts WHERE request_id = ?1";
const INSERT_ATTEMPT: &str = concat!(
    "INSERT INTO request_attempts (request_id, ",
    attempt_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
);
/// The oldest records before a cutoff, at most a limit of them (`request_log_started` finds
/// them); their attempts go by `ON DELETE CASCADE`.
const PURGE_REQUESTS: &str = "DELETE FROM request_log WHERE id IN (SELECT id FROM request_log \
    WHERE started_at_ms < ?1 ORDER BY started_at_ms LIMIT ?2)";
const SELECT_ONE: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM request_log WHERE id = ?1"
);
const SELECT_RECENT: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM request_log ORDER BY started_at_ms DESC, id DESC LIMIT ?1"
);
const SELECT_RECENT_TENANT: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM request_log WHERE tenant = ?1 ORDER BY started_at_ms DESC, id DESC LIMIT ?2"
);
const SELECT_ATTEMPTS: &str = concat!(
    "SELECT ",
    attempt_columns!(),
    " FROM request_attempts WHERE request_id = ?1 ORDER BY idx"
);

/// The request log in one SQLite file. Cheap to share behind an `Arc`; all calls are serialized
/// on the store's connection thread.
pub struct SqliteStore {
    thread: BackgroundThread<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The schema version this binary migrates to.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens (creating it and its parent directories if needed) the database at `path`, sets WAL
    /// mode, `synchronous=NORMAL` and a busy timeout, and runs pending migrations.
    ///
    /// Blocking (file I/O, migrations): call it at startup or from `spawn_blocking`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                op: "create directory",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(StoreError::sqlite("open"))?;
        Self::start(conn, path.to_path_buf())
    }

    /// An in-memory database (no WAL), for tests of code that needs a store.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(StoreError::sqlite("open"))?;
        Self::start(conn, PathBuf::from(":memory:"))
    }

    /// The database file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn start(mut conn: Connection, path: PathBuf) -> Result<SqliteStore, StoreError> {
        configure(&conn, &path)?;
        migrate(&mut conn)?;
        let thread =
            BackgroundThread::spawn("keel-sqlite", conn).map_err(|source| StoreError::Io {
                op: "spawn thread for",
                path: path.clone(),
                source,
            })?;
        Ok(SqliteStore { thread, path })
    }

    /// Runs `f` on the connection thread and awaits its result.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.thread
            .run(f)
            .await
            .ok_or(StoreError::Closed("sqlite connection thread"))?
    }
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // journal_mode answers with the mode it ended up in; in-memory databases stay "memory".
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(StoreError::sqlite("set journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        tracing::warn!(path = %path.display(), mode, "sqlite refused WAL mode; writes will block readers");
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(StoreError::sqlite("set pragmas"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::sqlite("set busy_timeout"))?;
    Ok(())
}

/// Applies every migration newer than the recorded `schema_version`, in one immediate
/// transaction so two processes opening the same file cannot both migrate. Idempotent.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let err = StoreError::sqlite;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("migrate"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY NOT NULL,
            applied_at_ms INTEGER NOT NULL
        ) STRICT",
    )
    .map_err(err("create schema_version"))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |row| row.get(0),
        )
        .map_err(err("read schema_version"))?;
    if current > SqliteStore::SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SqliteStore::SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.execute_batch(sql).map_err(err("migrate"))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at_ms) VALUES (?1, ?2)",
            params![version, crate::sql::now_ms()],
        )
        .map_err(err("record schema_version"))?;
        tracing::info!(version, "sqlite request log migrated");
    }
    tx.commit().map_err(err("commit migration"))
}

fn write_batch(conn: &mut Connection, records: &[RequestRecord]) -> Result<(), StoreError> {
    let err = StoreError::sqlite;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("begin"))?;
    {
        let mut upsert = tx.prepare_cached(UPSERT_REQUEST).map_err(err("prepare"))?;
        let mut delete_attempts = tx.prepare_cached(DELETE_ATTEMPTS).map_err(err("prepare"))?;
        let mut insert_attempt = tx.prepare_cached(INSERT_ATTEMPT).map_err(err("prepare"))?;
        for r in records {
            upsert
                .execute(params![
                    r.id,
                    r.started_at_ms,
                    r.tenant,
                    r.key_id,
                    r.endpoint,
                    r.model_requested,
                    r.route,
                    r.stream,
                    r.input_tokens.map(i64::from),
                    r.output_tokens.map(i64::from),
                    r.cost_usd,
                    r.ttft_ms,
                    r.total_ms,
                    i64::from(r.status),
                    r.error_class,
                    r.error_message,
                    r.model_served,
                    r.route_reason,
                ])
                .map_err(err("upsert request"))?;
            delete_attempts
                .execute([&r.id])
                .map_err(err("delete attempts"))?;
            for (idx, a) in (0_i64..).zip(&r.attempts) {
                insert_attempt
                    .execute(params![
                        r.id,
                        idx,
                        a.model,
                        a.provider,
                        a.outcome,
                        a.http_status.map(i64::from),
                        a.latency_ms,
                        a.error,
                    ])
                    .map_err(err("insert attempt"))?;
            }
        }
    }
    tx.commit().map_err(err("commit"))
}

fn request_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: row.get(0)?,
        started_at_ms: row.get(1)?,
        tenant: row.get(2)?,
        key_id: row.get(3)?,
        endpoint: row.get(4)?,
        model_requested: row.get(5)?,
        route: row.get(6)?,
        stream: row.get(7)?,
        input_tokens: row.get(8)?,
        output_tokens: row.get(9)?,
        cost_usd: row.get(10)?,
        ttft_ms: row.get(11)?,
        total_ms: row.get(12)?,
        status: row.get(13)?,
        error_class: row.get(14)?,
        error_message: row.get(15)?,
        model_served: row.get(16)?,
        route_reason: row.get(17)?,
    })
}

fn attempts_of(conn: &Connection, id: &str) -> Result<Vec<AttemptRow>, StoreError> {
    let err = StoreError::sqlite;
    let mut stmt = conn
        .prepare_cached(SELECT_ATTEMPTS)
        .map_err(err("prepare"))?;
    let rows = stmt
        .query_map([id], |row| {
            Ok(AttemptRow {
                model: row.get(1)?,
                provider: row.get(2)?,
                outcome: row.get(3)?,
                http_status: row.get(4)?,
                latency_ms: row.get(5)?,
                error: row.get(6)?,
            })
        })
        .map_err(err("select attempts"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(err("select attempts"))
}

fn with_attempts(
    conn: &Connection,
    rows: Vec<RequestRow>,
) -> Result<Vec<RequestRecord>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let attempts = attempts_of(conn, &row.id)?;
            row.into_record(attempts)
        })
        .collect()
}

fn get(conn: &Connection, id: &str) -> Result<Option<RequestRecord>, StoreError> {
    let err = StoreError::sqlite;
    let mut stmt = conn.prepare_cached(SELECT_ONE).map_err(err("prepare"))?;
    let row = stmt
        .query_row([id], request_row)
        .optional()
        .map_err(err("select request"))?;
    Ok(with_attempts(conn, row.into_iter().collect())?.pop())
}

fn recent(
    conn: &Connection,
    tenant: Option<&str>,
    limit: u32,
) -> Result<Vec<RequestRecord>, StoreError> {
    let err = StoreError::sqlite;
    let rows = match tenant {
        Some(tenant) => {
            let mut stmt = conn
                .prepare_cached(SELECT_RECENT_TENANT)
                .map_err(err("prepare"))?;
            let rows = stmt
                .query_map(params![tenant, limit], request_row)
                .map_err(err("select recent"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        }
        None => {
            let mut stmt = conn.prepare_cached(SELECT_RECENT).map_err(err("prepare"))?;
            let rows = stmt
                .query_map([limit], request_row)
                .map_err(err("select recent"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        }
    }
    .map_err(err("select recent"))?;
    with_attempts(conn, rows)
}

impl RequestLogStore for SqliteStore {
    fn write_shared(&self, records: Arc<[RequestRecord]>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if records.is_empty() {
                return Ok(());
            }
            self.call(move |conn| write_batch(conn, &records)).await
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>> {
        let id = id.to_owned();
        Box::pin(self.call(move |conn| get(conn, &id)))
    }

    fn recent<'a>(
        &'a self,
        tenant: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RequestRecord>, StoreError>> {
        let tenant = tenant.map(str::to_owned);
        Box::pin(self.call(move |conn| recent(conn, tenant.as_deref(), limit)))
    }

    fn count(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.call(|conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM request_log", [], |row| row.get(0))
                .map_err(StoreError::sqlite("count"))?;
            Ok(u64::try_from(n).unwrap_or(0))
        }))
    }

    fn purge_before(&self, cutoff_ms: i64, limit: u32) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.call(move |conn| {
            let n = conn
                .prepare_cached(PURGE_REQUESTS)
                .and_then(|mut stmt| stmt.execute(params![cutoff_ms, limit]))
                .map_err(StoreError::sqlite("purge requests"))?;
            Ok(n as u64)
        }))
    }
}
