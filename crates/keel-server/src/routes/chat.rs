//! `POST /v1/chat/completions`, plain JSON or SSE when `stream: true`.

use super::{accept, route_reason_header, routing_reason, served_headers};
use crate::auth::Caller;
use crate::error::OpenAiError;
use crate::request_id::RequestId;
use crate::sse;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use keel_types::openai::ChatCompletionRequest;

pub async fn chat_handler(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Response {
    let (ctx, req) = match accept::<ChatCompletionRequest>(
        &state,
        &request_id,
        &caller,
        "chat.completions",
        body,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return OpenAiError(e).into_response(),
    };
    if req.is_stream() {
        match state.pipeline.chat_stream(&ctx, req).await {
            Ok(stream) => {
                let (route, model) = (stream.route.clone(), stream.model.clone());
                let reason = stream.route_reason.clone();
                let mut resp = sse::openai(stream.stream, state.streams_deadline.clone());
                served_headers(&mut resp, &route, &model);
                route_reason_header(&mut resp, &reason);
                resp
            }
            Err(e) => OpenAiError(e).into_response(),
        }
    } else {
        // A route resolves under the name it was asked by, so the request names it.
        let route = req.model.clone();
        match state.pipeline.chat(&ctx, req).await {
            Ok(resp) => {
                let model = resp.model.clone();
                let reason = routing_reason(resp.keel.as_deref());
                let mut out = Json(resp).into_response();
                served_headers(&mut out, &route, &model);
                route_reason_header(&mut out, &reason);
                out
            }
            Err(e) => OpenAiError(e).into_response(),
        }
    }
}
