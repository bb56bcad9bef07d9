//! `POST /v1/messages`: the Anthropic Messages API, translated onto the same pipeline as chat
//! completions and back. Errors use Anthropic's body shape.

use super::{accept, route_reason_header, routing_reason, served_headers};
use crate::auth::Caller;
use crate::error::AnthropicError;
use crate::request_id::RequestId;
use crate::sse;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use keel_types::anthropic::{
    MessagesRequest, OpenAiToAnthropicStream, StreamEvent, from_openai_response, to_openai_request,
};
use keel_types::openai::StreamOptions;

pub async fn messages_handler(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Response {
    let (ctx, req) =
        match accept::<MessagesRequest>(&state, &request_id, &caller, "messages", body).await {
            Ok(v) => v,
            Err(e) => return AnthropicError(e).into_response(),
        };
    let mut chat = match to_openai_request(&req) {
        Ok(c) => c,
        Err(e) => {
            state
                .pipeline
                .record_rejected(&ctx, "messages", &req.model, &e);
            return AnthropicError(e).into_response();
        }
    };
    if req.is_stream() {
        chat.stream = Some(true);
        // Anthropic's closing message_delta carries usage, so always ask for it.
        chat.stream_options = Some(StreamOptions {
            include_usage: Some(true),
        });
        match state.pipeline.chat_stream(&ctx, chat).await {
            Ok(stream) => {
                let mut converter = OpenAiToAnthropicStream::new(stream.model.clone());
                let mut chunks = stream.stream;
                let events = async_stream::stream! {
                    while let Some(item) = chunks.next().await {
                        match item {
                            Ok(chunk) => for event in converter.push(&chunk) { yield event },
                            Err(e) => {
                                yield StreamEvent::from_api_error(&e);
                                return;
                            }
                        }
                    }
                    for event in converter.finish() {
                        yield event;
                    }
                };
                let mut resp = sse::anthropic(events.boxed(), state.streams_deadline.clone());
                served_headers(&mut resp, &stream.route, &stream.model);
                route_reason_header(&mut resp, &stream.route_reason);
                resp
            }
            Err(e) => AnthropicError(e).into_response(),
        }
    } else {
        chat.stream = None;
        match state.pipeline.chat(&ctx, chat).await {
            Ok(resp) => {
                let model = resp.model.clone();
                let reason = routing_reason(resp.keel.as_deref());
                let mut out = Json(from_openai_response(&resp)).into_response();
                served_headers(&mut out, &req.model, &model);
                route_reason_header(&mut out, &reason);
                out
            }
            Err(e) => AnthropicError(e).into_response(),
        }
    }
}
