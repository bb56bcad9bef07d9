//! The request-log record: one row per client request, with the upstream attempts it made.

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// What keel did for one client request, written once when the request finishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request id, `req_...`; the primary key (writes are idempotent on it).
    pub id: String,
    /// When the request arrived, unix epoch milliseconds.
    pub started_at_ms: i64,
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    /// `chat.completions` | `embeddings` | `messages`.
    pub endpoint: String,
    /// The model the client asked for.
    pub model_requested: String,
    /// The resolved route/model name.
    pub route: Option<String>,
    /// The model that answered (`None` when none did).
    pub model_served: Option<String>,
    /// Why routing chose that model (strategy, preferences, fallback, cascade verdict).
    pub route_reason: Option<String>,
    pub stream: bool,
    /// Upstream attempts in the order they were made.
    pub attempts: Vec<AttemptRecord>,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub cost_usd: Option<f64>,
    /// Time to first token (streams) or first byte.
    pub ttft_ms: Option<f64>,
    pub total_ms: f64,
    /// HTTP status returned to the client.
    pub status: u16,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
}

/// One upstream call made on behalf of a request (shared with the response's `keel` report).
pub use keel_types::AttemptRecord;

/// Decodes an optional token count stored as a 64-bit integer.
pub(crate) fn tokens_from_db(
    id: &str,
    column: &str,
    value: Option<i64>,
) -> Result<Option<u32>, StoreError> {
    value
        .map(|v| u32::try_from(v).map_err(|_| StoreError::corrupt(id, format!("{column} = {v}"))))
        .transpose()
}

/// Decodes an HTTP status stored as an integer.
pub(crate) fn status_from_db(id: &str, column: &str, value: i64) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| StoreError::corrupt(id, format!("{column} = {value}")))
}
