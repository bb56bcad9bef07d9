//! Server-sent events from an upstream HTTP response: decoding, with an idle timeout between
//! body chunks so a stalled upstream cannot hold a client stream open forever.

use crate::ProviderError;
use crate::openai_compat::http::error_chain;
use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::time::Duration;

pub use eventsource_stream::Event;

/// Why the body stopped before its end.
#[derive(Debug)]
enum BodyError {
    Transport(reqwest::Error),
    Idle,
}

/// The SSE events of `response`'s body, each body chunk due within `idle_timeout` of the
/// previous one (SSE comments such as keep-alives count as activity).
///
/// Items after the first `Err` are never produced: a transport failure is a
/// [`ProviderError::Stream`], an undecodable event stream an [`ProviderError::InvalidResponse`],
/// and a silence longer than `idle_timeout` a [`ProviderError::Timeout`]. The stream simply
/// ends when the body does; whether that end was expected (`[DONE]`, `message_stop`) is the
/// protocol layer's call.
///
/// Cancel safety: dropping the stream drops the response body, closing the upstream request.
pub fn events(
    response: reqwest::Response,
    idle_timeout: Duration,
) -> BoxStream<'static, Result<Event, ProviderError>> {
    let mut events = idle_limited(response, idle_timeout).eventsource();
    Box::pin(async_stream::stream! {
        while let Some(item) = events.next().await {
            match item {
                Ok(event) => yield Ok(event),
                Err(error) => {
                    yield Err(stream_error(error, idle_timeout));
                    break;
                }
            }
        }
    })
}

/// Whether an event's data is OpenAI's end-of-stream sentinel.
pub fn is_done_sentinel(data: &str) -> bool {
    data.trim() == "[DONE]"
}

/// The body's chunks, ending with `BodyError::Idle` after `idle_timeout` of silence.
fn idle_limited(
    response: reqwest::Response,
    idle_timeout: Duration,
) -> BoxStream<'static, Result<Bytes, BodyError>> {
    let mut body = response.bytes_stream();
    Box::pin(async_stream::stream! {
        // One timer, re-armed per chunk, rather than a new timer per poll.
        let deadline = tokio::time::sleep(idle_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = body.next() => match next {
                    None => break,
                    Some(Ok(chunk)) => {
                        deadline.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                        yield Ok(chunk);
                    }
                    Some(Err(error)) => {
                        yield Err(BodyError::Transport(error));
                        break;
                    }
                },
                () = &mut deadline => {
                    yield Err(BodyError::Idle);
                    break;
                }
            }
        }
    })
}

fn stream_error(error: EventStreamError<BodyError>, idle_timeout: Duration) -> ProviderError {
    match error {
        EventStreamError::Transport(BodyError::Idle) => ProviderError::Timeout(idle_timeout),
        EventStreamError::Transport(BodyError::Transport(e)) => {
            ProviderError::Stream(error_chain(&e.without_url()))
        }
        EventStreamError::Utf8(e) => {
            ProviderError::InvalidResponse(format!("stream is not UTF-8: {e}"))
        }
        EventStreamError::Parser(e) => {
            ProviderError::InvalidResponse(format!("stream is not valid SSE: {e}"))
        }
    }
}
