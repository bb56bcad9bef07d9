//! SQL shared by both backends: the column lists (so SELECT order and decoding cannot drift
//! apart) and the conversion from raw rows back to records.

use crate::record::{status_from_db, tokens_from_db};
use crate::{AttemptRecord, RequestRecord, StoreError};

/// Columns of `request_log`, in the order [`RequestRow`] is decoded from.
macro_rules! request_columns {
    () => {
        "id, started_at_ms, tenant, key_id, endpoint, model_requested, route, stream, \
         input_tokens, output_tokens, cost_usd, ttft_ms, total_ms, status, error_class, \
         error_message, model_served, route_reason"
    };
}

/// The `DO UPDATE` half of the request upsert: last write wins for every column.
macro_rules! request_upsert_set {
    () => {
        "ON CONFLICT (id) DO UPDATE SET started_at_ms = excluded.started_at_ms, \
         tenant = excluded.tenant, key_id = excluded.key_id, endpoint = excluded.endpoint, \
         model_requested = excluded.model_requested, route = excluded.route, \
         stream = excluded.stream, input_tokens = excluded.input_tokens, \
         output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd, \
         ttft_ms = excluded.ttft_ms, total_ms = excluded.total_ms, status = excluded.status, \
         error_class = excluded.error_class, error_message = excluded.error_message, \
         model_served = excluded.model_served, route_reason = excluded.route_reason"
    };
}

/// Columns of `request_attempts` (after `request_id`), in the order [`AttemptRow`] is decoded
/// from.
macro_rules! attempt_columns {
    () => {
        "idx, model, provider, outcome, http_status, latency_ms, error"
    };
}

pub(crate) use {attempt_columns, request_columns, request_upsert_set};

/// A `request_log` row as the database returns it, before range checks.
pub(crate) struct RequestRow {
    pub id: String,
    pub started_at_ms: i64,
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    pub endpoint: String,
    pub model_requested: String,
    pub route: Option<String>,
    pub stream: bool,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub total_ms: f64,
    pub status: i64,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub model_served: Option<String>,
    pub route_reason: Option<String>,
}

/// A `request_attempts` row (without `request_id` and `idx`).
pub(crate) struct AttemptRow {
    pub model: String,
    pub provider: String,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub latency_ms: f64,
    pub error: Option<String>,
}

impl RequestRow {
    pub(crate) fn into_record(
        self,
        attempts: Vec<AttemptRow>,
    ) -> Result<RequestRecord, StoreError> {
        let id = self.id;
        let attempts = attempts
            .into_iter()
            .map(|a| {
                Ok(AttemptRecord {
                    http_status: a
                        .http_status
                        .map(|s| status_from_db(&id, "request_attempts.http_status", s))
                        .transpose()?,
                    model: a.model,
                    provider: a.provider,
                    outcome: a.outcome,
                    latency_ms: a.latency_ms,
                    error: a.error,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(RequestRecord {
            input_tokens: tokens_from_db(&id, "input_tokens", self.input_tokens)?,
            output_tokens: tokens_from_db(&id, "output_tokens", self.output_tokens)?,
            status: status_from_db(&id, "status", self.status)?,
            id,
            started_at_ms: self.started_at_ms,
            tenant: self.tenant,
            key_id: self.key_id,
            endpoint: self.endpoint,
            model_requested: self.model_requested,
            route: self.route,
            model_served: self.model_served,
            route_reason: self.route_reason,
            stream: self.stream,
            attempts,
            cost_usd: self.cost_usd,
            ttft_ms: self.ttft_ms,
            total_ms: self.total_ms,
            error_class: self.error_class,
            error_message: self.error_message,
        })
    }
}

/// Migration 3 of both backends: which model answered and why routing chose it.
pub(crate) const ROUTING_MIGRATION: &str = "ALTER TABLE request_log ADD COLUMN model_served TEXT;
    ALTER TABLE request_log ADD COLUMN route_reason TEXT;";

/// Milliseconds since the unix epoch, for `schema_version.applied_at_ms`.
pub(crate) fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}
