//! Trace SQL shared by both backends: column lists, the encoding of a [`TraceRecord`] into
//! column values, the decoding of rows back, and the dynamic `list_traces` query.

use keel_types::trace::{
    ContentMode, Span, TraceContent, TraceId, TraceQuery, TraceRecord, TraceSummary,
};

use crate::record::{status_from_db, tokens_from_db};
use crate::spans_json::spans_json;
use crate::{MAX_TRACE_PAGE, StoreError, TracePage};

/// Columns of `traces` that make up a [`TraceSummary`], in the order [`SummaryRow`] is decoded
/// from.
macro_rules! trace_summary_columns {
    () => {
        "request_id, trace_id, started_at_ms, duration_ms, tenant, endpoint, route, model, \
         status, error_class, input_tokens, output_tokens, trust_score, grounding_score, \
         policy_action"
    };
}

/// The columns after the summary that complete a [`TraceRecord`] ([`DetailRow`]).
macro_rules! trace_detail_columns {
    () => {
        "content_mode, spans_json, content_json"
    };
}

/// The `DO UPDATE` half of the trace upsert: last write wins for every column.
macro_rules! trace_upsert_set {
    () => {
        "ON CONFLICT (request_id) DO UPDATE SET trace_id = excluded.trace_id, \
         started_at_ms = excluded.started_at_ms, duration_ms = excluded.duration_ms, \
         tenant = excluded.tenant, endpoint = excluded.endpoint, route = excluded.route, \
         model = excluded.model, status = excluded.status, error_class = excluded.error_class, \
         input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, \
         trust_score = excluded.trust_score, grounding_score = excluded.grounding_score, \
         policy_action = excluded.policy_action, content_mode = excluded.content_mode, \
         spans_json = excluded.spans_json, content_json = excluded.content_json"
    };
}

pub(crate) use {trace_detail_columns, trace_summary_columns, trace_upsert_set};

/// The summary columns of a `traces` row as the database returns them, before range checks.
pub(crate) struct SummaryRow {
    pub request_id: String,
    pub trace_id: String,
    pub started_at_ms: i64,
    pub duration_ms: f64,
    pub tenant: Option<String>,
    pub endpoint: String,
    pub route: Option<String>,
    pub model: Option<String>,
    pub status: i64,
    pub error_class: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub trust_score: Option<f64>,
    pub grounding_score: Option<f64>,
    pub policy_action: Option<String>,
}

/// The detail columns of a `traces` row.
pub(crate) struct DetailRow {
    pub content_mode: String,
    pub spans_json: String,
    pub content_json: String,
}

impl SummaryRow {
    pub(crate) fn into_summary(self) -> Result<TraceSummary, StoreError> {
        let id = self.request_id;
        let trace_id = TraceId::parse(&self.trace_id)
            .ok_or_else(|| StoreError::corrupt(&id, format!("trace_id = {:?}", self.trace_id)))?;
        Ok(TraceSummary {
            trace_id,
            status: status_from_db(&id, "traces.status", self.status)?,
            input_tokens: tokens_from_db(&id, "traces.input_tokens", self.input_tokens)?,
            output_tokens: tokens_from_db(&id, "traces.output_tokens", self.output_tokens)?,
            request_id: id,
            started_at_ms: self.started_at_ms,
            duration_ms: self.duration_ms,
            tenant: self.tenant,
            endpoint: self.endpoint,
            route: self.route,
            model: self.model,
            error_class: self.error_class,
            trust_score: self.trust_score,
            grounding_score: self.grounding_score,
            policy_action: self.policy_action,
        })
    }

    pub(crate) fn into_record(self, detail: DetailRow) -> Result<TraceRecord, StoreError> {
        let s = self.into_summary()?;
        let id = s.request_id.as_str();
        let content_mode = content_mode_from_db(&detail.content_mode).ok_or_else(|| {
            StoreError::corrupt(id, format!("content_mode = {:?}", detail.content_mode))
        })?;
        let spans: Vec<Span> = serde_json::from_str(&detail.spans_json)
            .map_err(|e| StoreError::corrupt(id, format!("spans_json: {e}")))?;
        let content: TraceContent = serde_json::from_str(&detail.content_json)
            .map_err(|e| StoreError::corrupt(id, format!("content_json: {e}")))?;
        Ok(TraceRecord {
            request_id: s.request_id,
            trace_id: s.trace_id,
            started_at_ms: s.started_at_ms,
            duration_ms: s.duration_ms,
            tenant: s.tenant,
            endpoint: s.endpoint,
            route: s.route,
            model: s.model,
            status: s.status,
            error_class: s.error_class,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            trust_score: s.trust_score,
            grounding_score: s.grounding_score,
            policy_action: s.policy_action,
            content_mode,
            spans,
            content,
        })
    }
}

/// The column values of a trace that need encoding (the rest are written as they are).
pub(crate) struct Encoded {
    pub trace_id: String,
    pub content_mode: &'static str,
    pub spans_json: String,
    pub content_json: String,
}

pub(crate) fn encode(t: &TraceRecord) -> Result<Encoded, StoreError> {
    Ok(Encoded {
        trace_id: t.trace_id.to_string(),
        content_mode: content_mode_to_db(t.content_mode),
        // JSON has no NaN/∞ (serde_json would write `null`, which reads back as no variant):
        // `spans_json` writes non-finite floats as strings.
        spans_json: spans_json(&t.spans),
        content_json: serde_json::to_string(&t.content)
            .map_err(|e| StoreError::encode(&t.request_id, format!("content: {e}")))?,
    })
}

pub(crate) fn content_mode_to_db(mode: ContentMode) -> &'static str {
    match mode {
        ContentMode::Full => "full",
        ContentMode::Redacted => "redacted",
        ContentMode::None => "none",
    }
}

fn content_mode_from_db(s: &str) -> Option<ContentMode> {
    match s {
        "full" => Some(ContentMode::Full),
        "redacted" => Some(ContentMode::Redacted),
        "none" => Some(ContentMode::None),
        _ => None,
    }
}

/// A bind parameter of the list query.
pub(crate) enum Param {
    Int(i64),
    Float(f64),
    Text(String),
}

/// The `list_traces` SELECT for one query: SQL, its parameters in order, and the page size.
/// The SQL asks for `limit + 1` rows; [`page`] turns the extra row into the next cursor.
pub(crate) struct ListQuery {
    pub sql: String,
    pub params: Vec<Param>,
    pub limit: usize,
}

/// Builds the list query; `placeholder(n, param)` renders the `n`th (1-based) parameter in the
/// backend's syntax. Only fixed column names and placeholders enter the SQL text.
pub(crate) fn list_query(q: &TraceQuery, placeholder: fn(usize, &Param) -> String) -> ListQuery {
    let limit = q.limit.clamp(1, MAX_TRACE_PAGE);
    let mut b = Builder {
        sql: String::from(concat!(
            "SELECT ",
            trace_summary_columns!(),
            " FROM traces WHERE "
        )),
        params: Vec::new(),
        placeholder,
    };
    // Tenant isolation: always applied; no tenant matches only rows without one.
    match &q.tenant {
        Some(tenant) => {
            b.sql.push_str("tenant = ");
            b.push(Param::Text(tenant.clone()));
        }
        None => b.sql.push_str("tenant IS NULL"),
    }
    let text = |v: &Option<String>| v.clone().map(Param::Text);
    let filters = [
        ("started_at_ms >= ", q.since_ms.map(Param::Int)),
        ("started_at_ms < ", q.until_ms.map(Param::Int)),
        ("route = ", text(&q.route)),
        ("model = ", text(&q.model)),
        ("status = ", q.status.map(|s| Param::Int(i64::from(s)))),
        ("error_class = ", text(&q.error_class)),
        ("trust_score >= ", q.min_trust.map(Param::Float)),
        ("trust_score <= ", q.max_trust.map(Param::Float)),
        ("grounding_score >= ", q.min_grounding.map(Param::Float)),
        ("grounding_score <= ", q.max_grounding.map(Param::Float)),
        ("policy_action = ", text(&q.policy_action)),
    ];
    for (condition, param) in filters {
        if let Some(param) = param {
            b.sql.push_str(" AND ");
            b.sql.push_str(condition);
            b.push(param);
        }
    }
    if let Some((started_at_ms, request_id)) = &q.after {
        b.sql.push_str(" AND (started_at_ms, request_id) < (");
        b.push(Param::Int(*started_at_ms));
        b.sql.push_str(", ");
        b.push(Param::Text(request_id.clone()));
        b.sql.push(')');
    }
    b.sql
        .push_str(" ORDER BY started_at_ms DESC, request_id DESC LIMIT ");
    b.push(Param::Int(i64::from(limit) + 1));
    ListQuery {
        sql: b.sql,
        params: b.params,
        limit: limit as usize,
    }
}

struct Builder {
    sql: String,
    params: Vec<Param>,
    placeholder: fn(usize, &Param) -> String,
}

impl Builder {
    fn push(&mut self, param: Param) {
        let rendered = (self.placeholder)(self.params.len() + 1, &param);
        self.sql.push_str(&rendered);
        self.params.push(param);
    }
}

/// Decodes up to `limit + 1` rows into a page; the extra row only says that a next page exists.
pub(crate) fn page(rows: Vec<SummaryRow>, limit: usize) -> Result<TracePage, StoreError> {
    let more = rows.len() > limit;
    let items = rows
        .into_iter()
        .take(limit)
        .map(SummaryRow::into_summary)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if more {
        items
            .last()
            .map(|s| (s.started_at_ms, s.request_id.clone()))
    } else {
        None
    };
    Ok(TracePage { items, next })
}
