//! `TraceStore` for `SqliteStore`: the `traces` table (migration 2), on the store's connection
//! thread like everything else.

use std::sync::Arc;

use futures::future::BoxFuture;
use keel_types::trace::{TraceQuery, TraceRecord};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::SqliteStore;
use crate::trace_sql::{
    self, DetailRow, Param, SummaryRow, trace_detail_columns, trace_summary_columns,
    trace_upsert_set,
};
use crate::{StoreError, TracePage, TraceStore};

/// Migration 2: the trace store. `request_id` compares bytewise (SQLite's BINARY collation), the
/// order `list_traces` pages by.
pub(super) const MIGRATION: &str = "CREATE TABLE traces (
        request_id TEXT PRIMARY KEY NOT NULL,
        trace_id TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        tenant TEXT,
        endpoint TEXT NOT NULL,
        route TEXT,
        model TEXT,
        status INTEGER NOT NULL,
        error_class TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        trust_score REAL,
        grounding_score REAL,
        policy_action TEXT,
        content_mode TEXT NOT NULL,
        spans_json TEXT NOT NULL,
        content_json TEXT NOT NULL
    ) STRICT;
    CREATE INDEX traces_tenant_started ON traces (tenant, started_at_ms DESC, request_id DESC);
    CREATE INDEX traces_started ON traces (started_at_ms);";

/// The oldest traces before a cutoff, at most a limit of them (`traces_started` finds them).
const PURGE_TRACES: &str = "DELETE FROM traces WHERE request_id IN (SELECT request_id FROM traces \
    WHERE started_at_ms < ?1 ORDER BY started_at_ms LIMIT ?2)";

const UPSERT_TRACE: &str = concat!(
    "INSERT INTO traces (",
    trace_summary_columns!(),
    ", ",
    trace_detail_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) ",
    trace_upsert_set!()
);
const SELECT_TRACE: &str = concat!(
    "SELECT ",
    trace_summary_columns!(),
    ", ",
    trace_detail_columns!(),
    " FROM traces WHERE request_id = ?1 AND tenant IS ?2"
);

fn write_traces(conn: &mut Connection, traces: &[Arc<TraceRecord>]) -> Result<(), StoreError> {
    let err = StoreError::sqlite;
    let encoded = traces
        .iter()
        .map(|t| trace_sql::encode(t))
        .collect::<Result<Vec<_>, _>>()?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("begin"))?;
    {
        let mut upsert = tx.prepare_cached(UPSERT_TRACE).map_err(err("prepare"))?;
        for (t, e) in traces.iter().zip(&encoded) {
            upsert
                .execute(params![
                    t.request_id,
                    e.trace_id,
                    t.started_at_ms,
                    t.duration_ms,
                    t.tenant,
                    t.endpoint,
                    t.route,
                    t.model,
                    i64::from(t.status),
                    t.error_class,
                    t.input_tokens.map(i64::from),
                    t.output_tokens.map(i64::from),
                    t.trust_score,
                    t.grounding_score,
                    t.policy_action,
                    e.content_mode,
                    e.spans_json,
                    e.content_json,
                ])
                .map_err(err("upsert trace"))?;
        }
    }
    tx.commit().map_err(err("commit"))
}

fn summary_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok(SummaryRow {
        request_id: row.get(0)?,
        trace_id: row.get(1)?,
        started_at_ms: row.get(2)?,
        duration_ms: row.get(3)?,
        tenant: row.get(4)?,
        endpoint: row.get(5)?,
        route: row.get(6)?,
        model: row.get(7)?,
        status: row.get(8)?,
        error_class: row.get(9)?,
        input_tokens: row.get(10)?,
        output_tokens: row.get(11)?,
        trust_score: row.get(12)?,
        grounding_score: row.get(13)?,
        policy_action: row.get(14)?,
    })
}

fn get_trace(
    conn: &Connection,
    tenant: Option<&str>,
    request_id: &str,
) -> Result<Option<TraceRecord>, StoreError> {
    let err = StoreError::sqlite;
    let mut stmt = conn.prepare_cached(SELECT_TRACE).map_err(err("prepare"))?;
    // `tenant IS ?2`: equal strings, or both NULL; a NULL tenant never matches a string.
    let row = stmt
        .query_row(params![request_id, tenant], |row| {
            let detail = DetailRow {
                content_mode: row.get(15)?,
                spans_json: row.get(16)?,
                content_json: row.get(17)?,
            };
            Ok((summary_row(row)?, detail))
        })
        .optional()
        .map_err(err("select trace"))?;
    row.map(|(summary, detail)| summary.into_record(detail))
        .transpose()
}

fn placeholder(n: usize, _: &Param) -> String {
    format!("?{n}")
}

fn list_traces(conn: &Connection, q: &TraceQuery) -> Result<TracePage, StoreError> {
    let err = StoreError::sqlite;
    let query = trace_sql::list_query(q, placeholder);
    let params = query.params.into_iter().map(|p| match p {
        Param::Int(v) => Value::Integer(v),
        Param::Float(v) => Value::Real(v),
        Param::Text(v) => Value::Text(v),
    });
    let mut stmt = conn.prepare_cached(&query.sql).map_err(err("prepare"))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), summary_row)
        .map_err(err("list traces"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(err("list traces"))?;
    trace_sql::page(rows, query.limit)
}

impl TraceStore for SqliteStore {
    fn write_traces_shared(
        &self,
        traces: Arc<[Arc<TraceRecord>]>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if traces.is_empty() {
                return Ok(());
            }
            self.call(move |conn| write_traces(conn, &traces)).await
        })
    }

    fn get_trace<'a>(
        &'a self,
        tenant: Option<&'a str>,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TraceRecord>, StoreError>> {
        let tenant = tenant.map(str::to_owned);
        let request_id = request_id.to_owned();
        Box::pin(self.call(move |conn| get_trace(conn, tenant.as_deref(), &request_id)))
    }

    fn list_traces<'a>(
        &'a self,
        q: &'a TraceQuery,
    ) -> BoxFuture<'a, Result<TracePage, StoreError>> {
        let q = q.clone();
        Box::pin(self.call(move |conn| list_traces(conn, &q)))
    }

    fn purge_traces_before(
        &self,
        cutoff_ms: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.call(move |conn| {
            let n = conn
                .prepare_cached(PURGE_TRACES)
                .and_then(|mut stmt| stmt.execute(rusqlite::params![cutoff_ms, limit]))
                .map_err(StoreError::sqlite("purge traces"))?;
            Ok(n as u64)
        }))
    }

    fn count_traces(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.call(|conn| {
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM traces", [], |row| row.get(0))
                .map_err(StoreError::sqlite("count traces"))?;
            Ok(u64::try_from(n).unwrap_or(0))
        }))
    }
}
