//! What the mock upstream does with one model request: answer, fail, or misbehave.

use serde_json::Value;
use std::time::Duration;

/// One scripted answer. [`MockUpstream`](crate::MockUpstream) consumes one per model request
/// (chat, messages, embeddings), first in first out; with the script empty it answers with
/// the default echo. Each applies to whichever protocol the request used (OpenAI or
/// Anthropic), plain or streaming.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Answer with this text.
    Reply { text: String },
    /// Answer with this text and finish reason (`stop`, `length`, `content_filter`); with
    /// `logprob`, a non-streaming OpenAI answer carries `logprobs.content` giving every token
    /// that log probability. An Anthropic answer maps `length` to `max_tokens`.
    Completion {
        text: String,
        finish_reason: String,
        logprob: Option<f64>,
    },
    /// Answer with one tool call (`tool_calls` / `tool_use`) with these arguments.
    ToolCall { name: String, arguments: Value },
    /// Answer with this HTTP status. `body` defaults to the protocol's error shape with the
    /// message `mock upstream status <code>`; `retry_after` is sent verbatim as `Retry-After`.
    Status {
        code: u16,
        body: Option<String>,
        retry_after: Option<String>,
    },
    /// Wait, then answer with the default echo.
    Delay(Duration),
    /// Read the request and never answer.
    Stall,
    /// Read the request and close the connection without an answer.
    Reset,
    /// Stream this many SSE events, then end the body without `[DONE]` / `message_stop`.
    /// A non-streaming request gets half a JSON body.
    TruncatedStream { after_chunks: usize },
    /// Stream one good event, then a `data:` line that is not JSON. A non-streaming request
    /// gets a body that is not JSON.
    MalformedStream,
    /// Stream the default echo, waiting this long before each event. A non-streaming request
    /// waits that long per would-be event before answering.
    SlowStream { per_chunk: Duration },
    /// Stream this many SSE events, then fall silent with the connection held open (a stalled
    /// upstream). A non-streaming request never gets an answer.
    StalledStream { after_chunks: usize },
}

impl Behavior {
    pub fn reply(text: impl Into<String>) -> Self {
        Self::Reply { text: text.into() }
    }

    /// A text answer cut short by the token limit (`finish_reason: length`).
    pub fn truncated(text: impl Into<String>) -> Self {
        Self::Completion {
            text: text.into(),
            finish_reason: "length".into(),
            logprob: None,
        }
    }

    /// A text answer whose every token has log probability `logprob`.
    pub fn with_logprob(text: impl Into<String>, logprob: f64) -> Self {
        Self::Completion {
            text: text.into(),
            finish_reason: "stop".into(),
            logprob: Some(logprob),
        }
    }

    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::ToolCall {
            name: name.into(),
            arguments,
        }
    }

    /// A status with the default error body and no `Retry-After`.
    pub fn status(code: u16) -> Self {
        Self::Status {
            code,
            body: None,
            retry_after: None,
        }
    }

    /// `429` with `Retry-After: <seconds>`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::Status {
            code: 429,
            body: None,
            retry_after: Some(retry_after_secs.to_string()),
        }
    }
}
