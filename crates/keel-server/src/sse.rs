//! Server-sent events for streamed chat. Chunks are written as they arrive (never buffered);
//! a failure after the stream started is sent as an error event, since the 200 status is
//! already out. Streams end early when the shutdown grace period runs out.

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, BoxStream, StreamExt};
use keel_types::ApiError;
use keel_types::anthropic::StreamEvent;
use keel_types::openai::ChatCompletionChunk;
use std::convert::Infallible;
use tokio_util::sync::CancellationToken;

/// OpenAI's format: `data: <chunk>` events, then `data: [DONE]`.
pub fn openai(
    chunks: BoxStream<'static, Result<ChatCompletionChunk, ApiError>>,
    deadline: CancellationToken,
) -> Response {
    let events = chunks
        .map(|item| match item {
            Ok(chunk) => Event::default()
                .json_data(&chunk)
                .unwrap_or_else(|e| error_event(&ApiError::internal(e.to_string()))),
            Err(e) => error_event(&e),
        })
        .chain(stream::once(async { Event::default().data("[DONE]") }))
        .take_until(deadline.cancelled_owned())
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn error_event(e: &ApiError) -> Event {
    Event::default().data(e.to_openai_body().to_string())
}

/// Anthropic's format: named events (`event: message_start` ...) with JSON data.
pub fn anthropic(events: BoxStream<'static, StreamEvent>, deadline: CancellationToken) -> Response {
    let events = events
        .map(|event| {
            let name = event.event_name();
            Event::default()
                .event(name)
                .json_data(&event)
                .unwrap_or_else(|e| Event::default().event("error").data(e.to_string()))
        })
        .take_until(deadline.cancelled_owned())
        .map(Ok::<_, Infallible>);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
