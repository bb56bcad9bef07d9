//! What every protocol's answer is made of: the answer (echo, text or tool call) with
//! deterministic token counts, and turning SSE frames into a response body that can be
//! complete, truncated, malformed or slow.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use std::convert::Infallible;
use std::time::Duration;

/// The content of a successful answer.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    Text(String),
    ToolCall { name: String, arguments: Value },
}

/// A successful answer, protocol-neutral.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub model: String,
    pub content: Content,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// A per-server sequence number, for ids.
    pub seq: u64,
    /// The finish reason to report instead of the content's natural one.
    pub finish: Option<String>,
    /// Every token's log probability, reported in a non-streaming OpenAI answer.
    pub logprob: Option<f64>,
}

impl Answer {
    pub fn new(model: String, content: Content, prompt_tokens: u32, seq: u64) -> Self {
        let completion_tokens = match &content {
            Content::Text(text) => count_tokens(text),
            Content::ToolCall { arguments, .. } => count_tokens(&arguments.to_string()) + 1,
        };
        Self {
            model,
            content,
            prompt_tokens: prompt_tokens.max(1),
            completion_tokens,
            seq,
            finish: None,
            logprob: None,
        }
    }
}

/// How a stream's frames are delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delivery {
    Complete,
    Truncated { after_chunks: usize },
    Malformed,
    Slow { per_chunk: Duration },
    Stalled { after_chunks: usize },
}

/// Deterministic stand-in for a tokenizer: whitespace-separated words.
pub(crate) fn count_tokens(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

/// `text` in stream-sized pieces (words with their leading space), never empty.
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' && i > start {
            out.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() || out.is_empty() {
        out.push(&text[start..]);
    }
    out
}

/// One SSE frame: `event: <name>` (if any) and `data: <data>`.
pub(crate) fn frame(event: Option<&str>, data: &str) -> Bytes {
    let mut s = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        s.push_str("event: ");
        s.push_str(event);
        s.push('\n');
    }
    s.push_str("data: ");
    s.push_str(data);
    s.push_str("\n\n");
    Bytes::from(s)
}

/// An SSE response. `frames` is the complete stream including its terminator; `delivery`
/// decides how much of it is sent and how fast.
pub(crate) fn sse_response(
    mut frames: Vec<Bytes>,
    delivery: Delivery,
    malformed_event: Option<&str>,
) -> Response {
    let body = match delivery {
        Delivery::Complete => Body::from(frames.concat()),
        Delivery::Truncated { after_chunks } => {
            frames.truncate(after_chunks);
            Body::from(frames.concat())
        }
        Delivery::Malformed => {
            frames.truncate(1);
            frames.push(frame(
                malformed_event,
                "{\"id\": \"broken\", \"choices\": [ this is not json",
            ));
            Body::from(frames.concat())
        }
        Delivery::Slow { per_chunk } => Body::from_stream(async_stream::stream! {
            for f in frames {
                tokio::time::sleep(per_chunk).await;
                yield Ok::<_, Infallible>(f);
            }
        }),
        Delivery::Stalled { after_chunks } => Body::from_stream(async_stream::stream! {
            for f in frames.into_iter().take(after_chunks) {
                yield Ok::<_, Infallible>(f);
            }
            std::future::pending::<()>().await;
        }),
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON response; `delivery` other than complete breaks it as the behaviour asks.
pub(crate) async fn json_response(body: &Value, delivery: Delivery, frames: usize) -> Response {
    let mut text = body.to_string();
    match delivery {
        Delivery::Complete => {}
        Delivery::Truncated { .. } => {
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Delivery::Malformed => text = "{\"id\": \"broken\", this is not json".into(),
        Delivery::Slow { per_chunk } => {
            tokio::time::sleep(per_chunk.saturating_mul(u32::try_from(frames).unwrap_or(u32::MAX)))
                .await;
        }
        Delivery::Stalled { .. } => std::future::pending::<()>().await,
    }
    raw_json(StatusCode::OK, text)
}

/// A response with a JSON content type and this body text.
pub(crate) fn raw_json(status: StatusCode, text: String) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_every_character() {
        assert_eq!(
            pieces("echo: hello  world"),
            vec!["echo:", " hello", " ", " world"]
        );
        assert_eq!(pieces(""), vec![""]);
        assert_eq!(pieces("one").concat(), "one");
    }
}
