//! `GET /v1/models` and `GET /v1/models/{id}`: every route and model name a client may ask for.

use crate::error::OpenAiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use keel_types::openai::{ModelList, ModelObject};
use keel_types::{ApiError, ErrorCode};

pub async fn list_handler(State(state): State<AppState>) -> Json<ModelList> {
    Json(state.pipeline.models())
}

pub async fn get_handler(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, OpenAiError> {
    state
        .pipeline
        .models()
        .data
        .into_iter()
        .find(|m| m.id == id)
        .map(Json)
        .ok_or_else(|| {
            OpenAiError(
                ApiError::new(
                    ErrorCode::ModelNotFound,
                    format!("the model \"{id}\" does not exist"),
                )
                .with_param("model"),
            )
        })
}
