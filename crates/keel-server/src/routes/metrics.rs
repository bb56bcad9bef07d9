//! `GET /metrics`: Prometheus text exposition. With API keys configured only admin keys
//! (`[[auth.keys]] admin = true`) may read it; without keys keel serves loopback only.

use crate::auth::Caller;
use crate::error::OpenAiError;
use crate::state::AppState;
use axum::extract::{Extension, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use keel_types::{ApiError, ErrorCode};

pub async fn metrics_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if !caller.admin {
        return OpenAiError(ApiError::new(
            ErrorCode::PermissionDenied,
            "/metrics needs an admin key ([[auth.keys]] admin = true)",
        ))
        .into_response();
    }
    let Some(metrics) = state.metrics.as_ref() else {
        return OpenAiError(ApiError::new(
            ErrorCode::NotFound,
            "metrics are off (observe.metrics = false)",
        ))
        .into_response();
    };
    // Sampled at scrape time: the request reading /metrics counts itself.
    let available = state.in_flight.available_permits();
    metrics.set_inflight(state.max_concurrency.saturating_sub(available));
    (
        [(CONTENT_TYPE, keel_observe::metrics::CONTENT_TYPE)],
        metrics.render(),
    )
        .into_response()
}
