//! `PostgresStore`: the shared request log for multi-node deployments, in its own schema.
//!
//! One connection, serialized by an async mutex (a transaction needs `&mut Client`). A broken
//! connection is dropped and re-opened on the next call; because every operation is idempotent,
//! a call that finds the connection broken reconnects and retries once before failing.
//!
//! Postgres `text` cannot hold NUL, so NUL characters in strings are stored as U+FFFD.
//!
//! The trace store (`TraceStore`) lives in the submodule `traces`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, Statement};

use crate::sql::{AttemptRow, RequestRow, attempt_columns, request_columns, request_upsert_set};
use crate::{RequestLogStore, RequestRecord, StoreError};

/// Upper bound for establishing a connection (TCP, startup, `SET search_path`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for one store operation; past it the connection is dropped.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Versioned migrations, run with `search_path` set to the store's schema;
/// `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: request log and attempts.
    "CREATE TABLE request_log (
        id TEXT PRIMARY KEY,
        started_at_ms BIGINT NOT NULL,
        tenant TEXT,
        key_id TEXT,
        endpoint TEXT NOT NULL,
        model_requested TEXT NOT NULL,
        route TEXT,
        stream BOOLEAN NOT NULL,
        input_tokens BIGINT,
        output_tokens BIGINT,
        cost_usd DOUBLE PRECISION,
        ttft_ms DOUBLE PRECISION,
        total_ms DOUBLE PRECISION NOT NULL,
        status INTEGER NOT NULL,
        error_class TEXT,
        error_message TEXT
    );
    CREATE INDEX request_log_started ON request_log (started_at_ms DESC, id DESC);
    CREATE INDEX request_log_tenant_started ON request_log (tenant, started_at_ms DESC, id DESC);
    CREATE TABLE request_attempts (
        request_id TEXT NOT NULL REFERENCES request_log (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        latency_ms DOUBLE PRECISION NOT NULL,
        error TEXT,
        PRIMARY KEY (request_id, idx)
    );",
    // 2: traces.
    traces::MIGRATION,
    // 3: the model served and the routing reason.
    crate::sql::ROUTING_MIGRATION,
];

// Batches are written column-wise with UNNEST: three statements per batch whatever its size.
const UPSERT_REQUESTS: &str = concat!(
    "INSERT INTO request_log (",
    request_columns!(),
    ") SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::text[], $8::bool[], $9::int8[], $10::int8[], $11::float8[], $12::float8[], \
     $13::float8[], $14::int4[], $15::text[], $16::text[], $17::text[], $18::text[]) ",
    request_upsert_set!()
);
const DELETE_ATTEMPTS: &str = "DELETE FROM request_attempts WHERE request_id = ANY($1::text[])";
const INSERT_ATTEMPTS: &str = concat!(
    "INSERT INTO request_attempts (request_id, ",
    attempt_columns!(),
    ") SELECT * FROM UNNEST($1::text[], $2::int4[], $3::text[], $4::text[], $5::text[], \
     $6::int4[], $7::float8[], $8::text[])"
);
/// The oldest records before a cutoff, at most a limit of them (`request_log_started` finds
/// them); their attempts go by `ON DELETE CASCADE`.
const PURGE_REQUESTS: &str = "DELETE FROM request_log WHERE id IN (SELECT id FROM request_log \
    WHERE started_at_ms < $1 ORDER BY started_at_ms LIMIT $2)";
const SELECT_ONE: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM request_log WHERE id = $1"
);
const SELECT_RECENT: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM request_log ORDER BY started_at_ms DESC, id DESC LIMIT $1"
);
const SELECT_RECENT_TENANT: &str = concat!(
    "SELECT ",
    request_columns!(),
    " FROM request_log WHERE tenant = $1 ORDER BY started_at_ms DESC, id DESC LIMIT $2"
);
const SELECT_ATTEMPTS: &str = concat!(
    "SELECT request_id, ",
    attempt_columns!(),
    " FROM request_attempts WHERE request_id = ANY($1::text[]) ORDER BY request_id, idx"
);

/// The request log in a Postgres schema.
pub struct PostgresStore {
    config: tokio_postgres::Config,
    schema: String,
    conn: Mutex<Option<PgConnection>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `tokio_postgres::Config`'s Debug redacts the password.
        f.debug_struct("PostgresStore")
            .field("config", &self.config)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// A live connection, its prepared statements, and the task driving its socket. The task is
/// owned here (aborted on drop) rather than tracked globally: it lives exactly as long as the
/// connection.
struct PgConnection {
    client: Client,
    statements: Statements,
    driver: JoinHandle<()>,
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

struct Statements {
    upsert_requests: Statement,
    delete_attempts: Statement,
    insert_attempts: Statement,
    select_one: Statement,
    select_recent: Statement,
    select_recent_tenant: Statement,
    select_attempts: Statement,
    traces: traces::Statements,
}

/// Runs `$body` (an expression using `$conn: &mut PgConnection`) under the connection lock with
/// [`OP_TIMEOUT`], reconnecting first if needed and retrying once if the connection broke.
macro_rules! with_connection {
    ($store:expr, $op:literal, |$conn:ident| $body:expr) => {{
        let mut slot = $store.conn.lock().await;
        let mut tries = 0;
        loop {
            tries += 1;
            let $conn = $store.connected(&mut slot).await?;
            match tokio::time::timeout(OP_TIMEOUT, $body).await {
                Ok(Ok(value)) => break Ok(value),
                Ok(Err(source)) => {
                    let broken = connection_broken(&source, &$conn.client);
                    let error = StoreError::postgres($op)(source);
                    if broken {
                        *slot = None;
                        if tries < 2 {
                            tracing::warn!(%error, "postgres connection broke; reconnecting");
                            continue;
                        }
                    }
                    break Err(error);
                }
                Err(_elapsed) => {
                    *slot = None;
                    break Err(StoreError::Timeout { op: $op, seconds: OP_TIMEOUT.as_secs() });
                }
            }
        }
    }};
}

// After `with_connection!`, so the submodule can use it.
mod traces;

/// Whether `error` means the connection is unusable (so reconnecting and retrying can help).
fn connection_broken(error: &tokio_postgres::Error, client: &Client) -> bool {
    let fatal_code = error.code().is_some_and(|code| {
        let code = code.code();
        // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now.
        code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
    });
    let io = std::error::Error::source(error).is_some_and(|cause| cause.is::<std::io::Error>());
    error.is_closed() || client.is_closed() || fatal_code || io
}

impl PostgresStore {
    /// The schema version this binary migrates to.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Connects with `url` (a libpq-style `key=value` string or a `postgres://` URL; no TLS),
    /// creates `schema` if missing, points `search_path` at it and runs pending migrations.
    ///
    /// `schema` must be a plain lowercase identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub async fn connect(url: &str, schema: &str) -> Result<PostgresStore, StoreError> {
        validate_schema(schema)?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                let cause = std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                StoreError::Config(format!("invalid postgres connection string: {cause}"))
            })?;
        if config.get_application_name().is_none() {
            config.application_name("keel");
        }
        let open = open_connection(&config, schema, Migrate::Yes);
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, open)
            .await
            .map_err(|_| StoreError::Timeout {
                op: "connect",
                seconds: CONNECT_TIMEOUT.as_secs(),
            })??;
        Ok(PostgresStore {
            config,
            schema: schema.to_owned(),
            conn: Mutex::new(Some(conn)),
        })
    }

    /// The schema this store reads and writes.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The live connection in `slot`, opening a new one if there is none or it has closed.
    async fn connected<'s>(
        &self,
        slot: &'s mut Option<PgConnection>,
    ) -> Result<&'s mut PgConnection, StoreError> {
        if slot.as_ref().is_some_and(|c| c.client.is_closed()) {
            *slot = None;
        }
        if slot.is_none() {
            let open = open_connection(&self.config, &self.schema, Migrate::No);
            let conn = tokio::time::timeout(CONNECT_TIMEOUT, open)
                .await
                .map_err(|_| StoreError::Timeout {
                    op: "connect",
                    seconds: CONNECT_TIMEOUT.as_secs(),
                })??;
            *slot = Some(conn);
        }
        slot.as_mut()
            .ok_or(StoreError::Closed("postgres connection"))
    }
}

fn validate_schema(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let valid = schema.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "postgres schema {schema:?} must match [a-z_][a-z0-9_]* and be at most 63 bytes"
        )))
    }
}

/// Whether opening a connection also runs migrations (only the first, in `connect`).
#[derive(Clone, Copy, PartialEq)]
enum Migrate {
    Yes,
    No,
}

async fn open_connection(
    config: &tokio_postgres::Config,
    schema: &str,
    migrate_first: Migrate,
) -> Result<PgConnection, StoreError> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(StoreError::postgres_connect)?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(error = %StoreError::postgres("connection")(error), "postgres connection ended");
        }
    });
    match set_up(&mut client, schema, migrate_first).await {
        Ok(statements) => Ok(PgConnection {
            client,
            statements,
            driver,
        }),
        Err(error) => {
            driver.abort();
            Err(error)
        }
    }
}

/// Migrates (if asked), points `search_path` at `schema` and prepares the statements.
async fn set_up(
    client: &mut Client,
    schema: &str,
    migrate_first: Migrate,
) -> Result<Statements, StoreError> {
    if migrate_first == Migrate::Yes {
        migrate(client, schema).await?;
    }
    // `schema` is validated to a plain identifier, so it can be spliced in.
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .map_err(StoreError::postgres("set search_path"))?;
    Statements::prepare(client).await
}

impl Statements {
    async fn prepare(client: &Client) -> Result<Statements, StoreError> {
        let err = StoreError::postgres;
        Ok(Statements {
            upsert_requests: client
                .prepare(UPSERT_REQUESTS)
                .await
                .map_err(err("prepare"))?,
            delete_attempts: client
                .prepare(DELETE_ATTEMPTS)
                .await
                .map_err(err("prepare"))?,
            insert_attempts: client
                .prepare(INSERT_ATTEMPTS)
                .await
                .map_err(err("prepare"))?,
            select_one: client.prepare(SELECT_ONE).await.map_err(err("prepare"))?,
            select_recent: client
                .prepare(SELECT_RECENT)
                .await
                .map_err(err("prepare"))?,
            select_recent_tenant: client
                .prepare(SELECT_RECENT_TENANT)
                .await
                .map_err(err("prepare"))?,
            select_attempts: client
                .prepare(SELECT_ATTEMPTS)
                .await
                .map_err(err("prepare"))?,
            traces: traces::Statements::prepare(client).await?,
        })
    }
}

/// Creates the schema and applies pending migrations in one transaction, under an advisory lock
/// so concurrent nodes starting together migrate once. Idempotent.
async fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    let err = StoreError::postgres;
    let tx = client.transaction().await.map_err(err("migrate"))?;
    let lock_key = format!("keel-store:{schema}");
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
        .await
        .map_err(err("lock for migration"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (
             version BIGINT PRIMARY KEY,
             applied_at_ms BIGINT NOT NULL
         );"
    ))
    .await
    .map_err(err("create schema"))?;
    // Unqualified names in MIGRATIONS resolve to the store's schema.
    tx.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
        .await
        .map_err(err("set search_path"))?;
    let current: i64 = tx
        .query_one(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {schema}.schema_version"),
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(err("read schema_version"))?;
    if current > PostgresStore::SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: PostgresStore::SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1_i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.batch_execute(sql).await.map_err(err("migrate"))?;
        tx.execute(
            &format!(
                "INSERT INTO {schema}.schema_version (version, applied_at_ms) VALUES ($1, $2)"
            ),
            &[&version, &crate::sql::now_ms()],
        )
        .await
        .map_err(err("record schema_version"))?;
        tracing::info!(version, schema, "postgres request log migrated");
    }
    tx.commit().await.map_err(err("commit migration"))
}

/// Postgres `text` rejects NUL; store it as U+FFFD instead of failing the whole batch.
fn pg_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn pg_opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(pg_text)
}

async fn write_batch(
    conn: &mut PgConnection,
    records: &[RequestRecord],
) -> Result<(), tokio_postgres::Error> {
    // One statement cannot upsert the same id twice; keep the last occurrence, which is what
    // writing the batch row by row would leave behind.
    let mut seen = HashSet::new();
    let mut unique: Vec<&RequestRecord> = records
        .iter()
        .rev()
        .filter(|r| seen.insert(r.id.as_str()))
        .collect();
    unique.reverse();

    let ids: Vec<Cow<'_, str>> = unique.iter().map(|r| pg_text(&r.id)).collect();
    let started: Vec<i64> = unique.iter().map(|r| r.started_at_ms).collect();
    let tenant: Vec<_> = unique.iter().map(|r| pg_opt_text(&r.tenant)).collect();
    let key_id: Vec<_> = unique.iter().map(|r| pg_opt_text(&r.key_id)).collect();
    let endpoint: Vec<_> = unique.iter().map(|r| pg_text(&r.endpoint)).collect();
    let model: Vec<_> = unique.iter().map(|r| pg_text(&r.model_requested)).collect();
    let route: Vec<_> = unique.iter().map(|r| pg_opt_text(&r.route)).collect();
    let stream: Vec<bool> = unique.iter().map(|r| r.stream).collect();
    let input: Vec<Option<i64>> = unique
        .iter()
        .map(|r| r.input_tokens.map(i64::from))
        .collect();
    let output: Vec<Option<i64>> = unique
        .iter()
        .map(|r| r.output_tokens.map(i64::from))
        .collect();
    let cost: Vec<Option<f64>> = unique.iter().map(|r| r.cost_usd).collect();
    let ttft: Vec<Option<f64>> = unique.iter().map(|r| r.ttft_ms).collect();
    let total: Vec<f64> = unique.iter().map(|r| r.total_ms).collect();
    let status: Vec<i32> = unique.iter().map(|r| i32::from(r.status)).collect();
    let error_class: Vec<_> = unique.iter().map(|r| pg_opt_text(&r.error_class)).collect();
    let error_message: Vec<_> = unique
        .iter()
        .map(|r| pg_opt_text(&r.error_message))
        .collect();
    let model_served: Vec<_> = unique
        .iter()
        .map(|r| pg_opt_text(&r.model_served))
        .collect();
    let route_reason: Vec<_> = unique
        .iter()
        .map(|r| pg_opt_text(&r.route_reason))
        .collect();

    let attempts: Vec<(&Cow<'_, str>, i32, &crate::AttemptRecord)> = ids
        .iter()
        .zip(&unique)
        .flat_map(|(id, r)| (0_i32..).zip(&r.attempts).map(move |(idx, a)| (id, idx, a)))
        .collect();
    let a_request: Vec<&Cow<'_, str>> = attempts.iter().map(|(id, _, _)| *id).collect();
    let a_idx: Vec<i32> = attempts.iter().map(|(_, idx, _)| *idx).collect();
    let a_model: Vec<_> = attempts.iter().map(|(_, _, a)| pg_text(&a.model)).collect();
    let a_provider: Vec<_> = attempts
        .iter()
        .map(|(_, _, a)| pg_text(&a.provider))
        .collect();
    let a_outcome: Vec<_> = attempts
        .iter()
        .map(|(_, _, a)| pg_text(&a.outcome))
        .collect();
    let a_status: Vec<Option<i32>> = attempts
        .iter()
        .map(|(_, _, a)| a.http_status.map(i32::from))
        .collect();
    let a_latency: Vec<f64> = attempts.iter().map(|(_, _, a)| a.latency_ms).collect();
    let a_error: Vec<_> = attempts
        .iter()
        .map(|(_, _, a)| pg_opt_text(&a.error))
        .collect();

    let st = &conn.statements;
    let tx = conn.client.transaction().await?;
    tx.execute(
        &st.upsert_requests,
        &[
            &ids,
            &started,
            &tenant,
            &key_id,
            &endpoint,
            &model,
            &route,
            &stream,
            &input,
            &output,
            &cost,
            &ttft,
            &total,
            &status,
            &error_class,
            &error_message,
            &model_served,
            &route_reason,
        ],
    )
    .await?;
    tx.execute(&st.delete_attempts, &[&ids]).await?;
    if !attempts.is_empty() {
        tx.execute(
            &st.insert_attempts,
            &[
                &a_request,
                &a_idx,
                &a_model,
                &a_provider,
                &a_outcome,
                &a_status,
                &a_latency,
                &a_error,
            ],
        )
        .await?;
    }
    tx.commit().await
}

fn request_row(row: &tokio_postgres::Row) -> Result<RequestRow, tokio_postgres::Error> {
    Ok(RequestRow {
        id: row.try_get(0)?,
        started_at_ms: row.try_get(1)?,
        tenant: row.try_get(2)?,
        key_id: row.try_get(3)?,
        endpoint: row.try_get(4)?,
        model_requested: row.try_get(5)?,
        route: row.try_get(6)?,
        stream: row.try_get(7)?,
        input_tokens: row.try_get(8)?,
        output_tokens: row.try_get(9)?,
        cost_usd: row.try_get(10)?,
        ttft_ms: row.try_get(11)?,
        total_ms: row.try_get(12)?,
        status: i64::from(row.try_get::<_, i32>(13)?),
        error_class: row.try_get(14)?,
        error_message: row.try_get(15)?,
        model_served: row.try_get(16)?,
        route_reason: row.try_get(17)?,
    })
}

/// Request rows with their attempts (one extra query for all of them), still undecoded.
async fn with_attempts(
    conn: &PgConnection,
    rows: Vec<tokio_postgres::Row>,
) -> Result<Vec<(RequestRow, Vec<AttemptRow>)>, tokio_postgres::Error> {
    let rows = rows
        .iter()
        .map(request_row)
        .collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut by_request: HashMap<String, Vec<AttemptRow>> = HashMap::new();
    for row in conn
        .client
        .query(&conn.statements.select_attempts, &[&ids])
        .await?
    {
        let attempt = AttemptRow {
            model: row.try_get(2)?,
            provider: row.try_get(3)?,
            outcome: row.try_get(4)?,
            http_status: row.try_get::<_, Option<i32>>(5)?.map(i64::from),
            latency_ms: row.try_get(6)?,
            error: row.try_get(7)?,
        };
        by_request.entry(row.try_get(0)?).or_default().push(attempt);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let attempts = by_request.remove(&row.id).unwrap_or_default();
            (row, attempts)
        })
        .collect())
}

fn decode(rows: Vec<(RequestRow, Vec<AttemptRow>)>) -> Result<Vec<RequestRecord>, StoreError> {
    rows.into_iter()
        .map(|(row, attempts)| row.into_record(attempts))
        .collect()
}

impl RequestLogStore for PostgresStore {
    fn write_shared(&self, records: Arc<[RequestRecord]>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if records.is_empty() {
                return Ok(());
            }
            with_connection!(self, "write batch", |conn| write_batch(conn, &records))
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>> {
        Box::pin(async move {
            let rows = with_connection!(self, "get", |conn| async {
                let rows = conn
                    .client
                    .query(&conn.statements.select_one, &[&id])
                    .await?;
                with_attempts(conn, rows).await
            })?;
            Ok(decode(rows)?.pop())
        })
    }

    fn recent<'a>(
        &'a self,
        tenant: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RequestRecord>, StoreError>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            let rows = with_connection!(self, "recent", |conn| async {
                let st = &conn.statements;
                let rows = match tenant {
                    Some(tenant) => {
                        conn.client
                            .query(&st.select_recent_tenant, &[&tenant, &limit])
                            .await?
                    }
                    None => conn.client.query(&st.select_recent, &[&limit]).await?,
                };
                with_attempts(conn, rows).await
            })?;
            decode(rows)
        })
    }

    fn count(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let n: i64 = with_connection!(self, "count", |conn| async {
                conn.client
                    .query_one("SELECT COUNT(*) FROM request_log", &[])
                    .await?
                    .try_get(0)
            })?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn purge_before(&self, cutoff_ms: i64, limit: u32) -> BoxFuture<'_, Result<u64, StoreError>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            with_connection!(self, "purge requests", |conn| conn
                .client
                .execute(PURGE_REQUESTS, &[&cutoff_ms, &limit]))
        })
    }
}
