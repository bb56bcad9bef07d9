//! `GET /healthz` (the process is up) and `GET /readyz` (every provider can serve: local
//! models fetched and loaded). Both are on the auth allow list.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

pub async fn healthz_handler() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz_handler(
    State(state): State<AppState>,
) -> (StatusCode, Json<serde_json::Value>) {
    if state.registry.all_ready() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
    }
}
