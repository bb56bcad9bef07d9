//! `TraceStore` for `PostgresStore`: the `traces` table (migration 2), written column-wise with
//! UNNEST like the request log, under the same connection lock, timeout and reconnect rule.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use keel_types::trace::{TraceQuery, TraceRecord};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::{OP_TIMEOUT, PgConnection, PostgresStore, connection_broken, pg_opt_text, pg_text};
use crate::trace_sql::{
    self, DetailRow, Encoded, Param, SummaryRow, trace_detail_columns, trace_summary_columns,
    trace_upsert_set,
};
use crate::{StoreError, TracePage, TraceStore};

/// Migration 2: the trace store. `request_id` uses the "C" collation so that ordering and the
/// keyset comparison are bytewise, as on SQLite. Spans and content are JSON kept as `text`
/// (exactly as written; `jsonb` would reject the `\u0000` escape).
pub(super) const MIGRATION: &str = r#"CREATE TABLE traces (
        request_id TEXT COLLATE "C" PRIMARY KEY,
        trace_id TEXT NOT NULL,
        started_at_ms BIGINT NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL,
        tenant TEXT,
        endpoint TEXT NOT NULL,
        route TEXT,
        model TEXT,
        status INTEGER NOT NULL,
        error_class TEXT,
        input_tokens BIGINT,
        output_tokens BIGINT,
        trust_score DOUBLE PRECISION,
        grounding_score DOUBLE PRECISION,
        policy_action TEXT,
        content_mode TEXT NOT NULL,
        spans_json TEXT NOT NULL,
        content_json TEXT NOT NULL
    );
    CREATE INDEX traces_tenant_started ON traces (tenant, started_at_ms DESC, request_id DESC);
    CREATE INDEX traces_started ON traces (started_at_ms);"#;

/// The oldest traces before a cutoff, at most a limit of them (`traces_started` finds them).
const PURGE_TRACES: &str = "DELETE FROM traces WHERE request_id IN (SELECT request_id FROM traces \
    WHERE started_at_ms < $1 ORDER BY started_at_ms LIMIT $2)";

const UPSERT_TRACES: &str = concat!(
    "INSERT INTO traces (",
    trace_summary_columns!(),
    ", ",
    trace_detail_columns!(),
    ") SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::float8[], $5::text[], \
     $6::text[], $7::text[], $8::text[], $9::int4[], $10::text[], $11::int8[], $12::int8[], \
     $13::float8[], $14::float8[], $15::text[], $16::text[], $17::text[], $18::text[]) ",
    trace_upsert_set!()
);
const SELECT_TRACE: &str = concat!(
    "SELECT ",
    trace_summary_columns!(),
    ", ",
    trace_detail_columns!(),
    " FROM traces WHERE request_id = $1 AND tenant IS NOT DISTINCT FROM $2"
);

/// The trace statements prepared on every connection.
pub(super) struct Statements {
    upsert: Statement,
    select_one: Statement,
}

impl Statements {
    pub(super) async fn prepare(client: &Client) -> Result<Statements, StoreError> {
        let err = StoreError::postgres;
        Ok(Statements {
            upsert: client
                .prepare(UPSERT_TRACES)
                .await
                .map_err(err("prepare"))?,
            select_one: client.prepare(SELECT_TRACE).await.map_err(err("prepare"))?,
        })
    }
}

async fn write_traces(
    conn: &mut PgConnection,
    traces: &[(&TraceRecord, Encoded)],
) -> Result<(), tokio_postgres::Error> {
    let id: Vec<Cow<'_, str>> = traces.iter().map(|(t, _)| pg_text(&t.request_id)).collect();
    let trace_id: Vec<&str> = traces.iter().map(|(_, e)| e.trace_id.as_str()).collect();
    let started: Vec<i64> = traces.iter().map(|(t, _)| t.started_at_ms).collect();
    let duration: Vec<f64> = traces.iter().map(|(t, _)| t.duration_ms).collect();
    let tenant: Vec<_> = traces.iter().map(|(t, _)| pg_opt_text(&t.tenant)).collect();
    let endpoint: Vec<_> = traces.iter().map(|(t, _)| pg_text(&t.endpoint)).collect();
    let route: Vec<_> = traces.iter().map(|(t, _)| pg_opt_text(&t.route)).collect();
    let model: Vec<_> = traces.iter().map(|(t, _)| pg_opt_text(&t.model)).collect();
    let status: Vec<i32> = traces.iter().map(|(t, _)| i32::from(t.status)).collect();
    let error_class: Vec<_> = traces
        .iter()
        .map(|(t, _)| pg_opt_text(&t.error_class))
        .collect();
    let input: Vec<Option<i64>> = traces
        .iter()
        .map(|(t, _)| t.input_tokens.map(i64::from))
        .collect();
    let output: Vec<Option<i64>> = traces
        .iter()
        .map(|(t, _)| t.output_tokens.map(i64::from))
        .collect();
    let trust: Vec<Option<f64>> = traces.iter().map(|(t, _)| t.trust_score).collect();
    let grounding: Vec<Option<f64>> = traces.iter().map(|(t, _)| t.grounding_score).collect();
    let policy: Vec<_> = traces
        .iter()
        .map(|(t, _)| pg_opt_text(&t.policy_action))
        .collect();
    let mode: Vec<&str> = traces.iter().map(|(_, e)| e.content_mode).collect();
    // serde_json escapes NUL, so the JSON text never contains one.
    let spans: Vec<&str> = traces.iter().map(|(_, e)| e.spans_json.as_str()).collect();
    let content: Vec<&str> = traces
        .iter()
        .map(|(_, e)| e.content_json.as_str())
        .collect();

    let upsert = &conn.statements.traces.upsert;
    let tx = conn.client.transaction().await?;
    tx.execute(
        upsert,
        &[
            &id,
            &trace_id,
            &started,
            &duration,
            &tenant,
            &endpoint,
            &route,
            &model,
            &status,
            &error_class,
            &input,
            &output,
            &trust,
            &grounding,
            &policy,
            &mode,
            &spans,
            &content,
        ],
    )
    .await?;
    tx.commit().await
}

fn summary_row(row: &tokio_postgres::Row) -> Result<SummaryRow, tokio_postgres::Error> {
    Ok(SummaryRow {
        request_id: row.try_get(0)?,
        trace_id: row.try_get(1)?,
        started_at_ms: row.try_get(2)?,
        duration_ms: row.try_get(3)?,
        tenant: row.try_get(4)?,
        endpoint: row.try_get(5)?,
        route: row.try_get(6)?,
        model: row.try_get(7)?,
        status: i64::from(row.try_get::<_, i32>(8)?),
        error_class: row.try_get(9)?,
        input_tokens: row.try_get(10)?,
        output_tokens: row.try_get(11)?,
        trust_score: row.try_get(12)?,
        grounding_score: row.try_get(13)?,
        policy_action: row.try_get(14)?,
    })
}

fn detail_row(row: &tokio_postgres::Row) -> Result<DetailRow, tokio_postgres::Error> {
    Ok(DetailRow {
        content_mode: row.try_get(15)?,
        spans_json: row.try_get(16)?,
        content_json: row.try_get(17)?,
    })
}

fn placeholder(n: usize, param: &Param) -> String {
    let cast = match param {
        Param::Int(_) => "int8",
        Param::Float(_) => "float8",
        Param::Text(_) => "text",
    };
    format!("${n}::{cast}")
}

impl TraceStore for PostgresStore {
    fn write_traces_shared(
        &self,
        traces: Arc<[Arc<TraceRecord>]>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // One statement cannot upsert the same id twice; keep the last occurrence, which is
            // what writing the batch row by row would leave behind.
            let mut seen = HashSet::new();
            let mut unique = traces
                .iter()
                .rev()
                .filter(|t| seen.insert(t.request_id.as_str()))
                .map(|t| Ok((&**t, trace_sql::encode(t)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            if unique.is_empty() {
                return Ok(());
            }
            unique.reverse();
            with_connection!(self, "write traces", |conn| write_traces(conn, &unique))
        })
    }

    fn get_trace<'a>(
        &'a self,
        tenant: Option<&'a str>,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<TraceRecord>, StoreError>> {
        Box::pin(async move {
            let tenant = tenant.map(pg_text);
            let request_id = pg_text(request_id);
            let row = with_connection!(self, "get trace", |conn| async {
                let rows = conn
                    .client
                    .query(&conn.statements.traces.select_one, &[&request_id, &tenant])
                    .await?;
                rows.first()
                    .map(|row| Ok((summary_row(row)?, detail_row(row)?)))
                    .transpose()
            })?;
            row.map(|(summary, detail)| summary.into_record(detail))
                .transpose()
        })
    }

    fn list_traces<'a>(
        &'a self,
        q: &'a TraceQuery,
    ) -> BoxFuture<'a, Result<TracePage, StoreError>> {
        Box::pin(async move {
            let query = trace_sql::list_query(q, placeholder);
            let params: Vec<Param> = query
                .params
                .into_iter()
                .map(|p| match p {
                    Param::Text(s) => Param::Text(pg_text(&s).into_owned()),
                    other => other,
                })
                .collect();
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| match p {
                    Param::Int(v) => v as &(dyn ToSql + Sync),
                    Param::Float(v) => v,
                    Param::Text(v) => v,
                })
                .collect();
            let sql = query.sql.as_str();
            let rows = with_connection!(self, "list traces", |conn| async {
                conn.client
                    .query(sql, &refs)
                    .await?
                    .iter()
                    .map(summary_row)
                    .collect::<Result<Vec<_>, _>>()
            })?;
            trace_sql::page(rows, query.limit)
        })
    }

    fn purge_traces_before(
        &self,
        cutoff_ms: i64,
        limit: u32,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        let limit = i64::from(limit);
        Box::pin(async move {
            with_connection!(self, "purge traces", |conn| conn
                .client
                .execute(PURGE_TRACES, &[&cutoff_ms, &limit]))
        })
    }

    fn count_traces(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let n: i64 = with_connection!(self, "count traces", |conn| async {
                conn.client
                    .query_one("SELECT COUNT(*) FROM traces", &[])
                    .await?
                    .try_get(0)
            })?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}
