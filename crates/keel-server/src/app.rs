//! The router and its middleware stack, built in one function.

use crate::auth::auth_layer;
use crate::error::OpenAiError;
use crate::request_id::request_id_layer;
use crate::routes;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use futures::StreamExt;
use keel_types::{ApiError, ErrorCode};
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;

/// The whole HTTP surface. Layers, outermost first (a request passes them in this order):
///
/// 1. `request_id_layer` — writes a fresh id into the request extensions and the
///    `x-request-id` response header, so even a panic or a 401 carries one.
/// 2. `CatchPanicLayer` — turns a handler panic into an OpenAI-shaped 500 instead of a
///    dropped connection.
/// 3. `shed_layer` — takes one permit of `server.max_concurrency` for the request (for an SSE
///    response, until the stream ends); none left is a 503.
/// 4. `auth_layer` — reads `Authorization`, writes a `Caller`; routes in `auth::ALLOW_LIST`
///    pass without a key.
/// 5. The routes; unknown paths and methods get OpenAI-shaped 404/405s.
///
/// Body size is bounded in each handler by `body::read_limited` (413), not by a layer, so
/// the error has keel's shape.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(routes::chat::chat_handler))
        .route(
            "/v1/embeddings",
            post(routes::embeddings::embeddings_handler),
        )
        .route("/v1/messages", post(routes::messages::messages_handler))
        .route("/v1/models", get(routes::models::list_handler))
        .route("/v1/models/{id}", get(routes::models::get_handler))
        .route("/healthz", get(routes::health::healthz_handler))
        .route("/readyz", get(routes::health::readyz_handler))
        .route("/metrics", get(routes::metrics::metrics_handler))
        .route("/v1/guard/check", post(routes::guard::check_handler))
        .route("/v1/traces", get(routes::traces::list_handler))
        .route("/v1/traces/{id}", get(routes::traces::get_handler))
        .route(
            "/v1/collections",
            post(routes::collections::create_handler).get(routes::collections::list_handler),
        )
        .route(
            "/v1/collections/{name}",
            get(routes::collections::get_handler).patch(routes::collections::patch_handler),
        )
        .route(
            "/v1/collections/{name}/documents",
            post(routes::collections::documents_handler).layer(DefaultBodyLimit::max(
                state
                    .pipeline
                    .library()
                    .map_or(state.max_body_bytes, |l| l.max_document_bytes() * 2),
            )),
        )
        .route(
            "/v1/collections/{name}/documents/{*id}",
            delete(routes::collections::delete_document_handler),
        )
        .route(
            "/v1/collections/{name}/search",
            post(routes::collections::search_handler),
        )
        .fallback(not_found_handler)
        .method_not_allowed_fallback(method_not_allowed_handler)
        .layer(from_fn_with_state(state.clone(), auth_layer))
        .layer(from_fn_with_state(state.clone(), shed_layer))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(request_id_layer))
        .with_state(state)
}

async fn shed_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match state.in_flight.clone().try_acquire_owned() {
        Ok(permit) => {
            let resp = next.run(req).await;
            let is_stream = resp
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if !is_stream {
                return resp;
            }
            // A stream holds its permit until its last byte is sent (or the client leaves).
            let (parts, body) = resp.into_parts();
            let body = body.into_data_stream().map(move |chunk| {
                let _held = &permit;
                chunk
            });
            Response::from_parts(parts, axum::body::Body::from_stream(body))
        }
        Err(_) => {
            if let Some(m) = &state.metrics {
                m.record_shed("concurrency");
            }
            OpenAiError(
                ApiError::new(
                    ErrorCode::Overloaded,
                    "keel is at its concurrency limit (server.max_concurrency); retry shortly",
                )
                .with_retry_after(1),
            )
            .into_response()
        }
    }
}

async fn not_found_handler(method: Method, uri: Uri) -> OpenAiError {
    OpenAiError(ApiError::new(
        ErrorCode::NotFound,
        format!("unknown request URL: {method} {}", uri.path()),
    ))
}

async fn method_not_allowed_handler(method: Method, uri: Uri) -> OpenAiError {
    OpenAiError(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("method {method} is not allowed for {}", uri.path()),
    ))
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    OpenAiError(ApiError::internal(
        "internal error; the request was not completed",
    ))
    .into_response()
}
