//! The OpenAI side of the mock: chat completions (plain and SSE), embeddings, models.

use crate::reply::{self, Answer, Content, Delivery, frame};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

/// The text of the last `user` message (string content or text parts).
pub(crate) fn last_user_text(body: &Value) -> String {
    let messages = body.get("messages").and_then(Value::as_array);
    let last = messages.and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
    last.map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

/// The default answer: `echo: <last user message>`. When the request ends with an assistant
/// message (a prefill) that the echo starts with, only the rest of the echo, the way a model
/// continues its prefill.
pub(crate) fn echo(body: &Value) -> String {
    let full = format!("echo: {}", last_user_text(body));
    let messages = body.get("messages").and_then(Value::as_array);
    let prefill = messages
        .and_then(|m| m.last())
        .filter(|m| m["role"] == "assistant")
        .map(|m| content_text(&m["content"]));
    match prefill {
        Some(p) if !p.is_empty() && full.starts_with(&p) && full.len() > p.len() => {
            full[p.len()..].to_owned()
        }
        _ => full,
    }
}

/// Whether the last message is the assistant's (a prefill).
pub(crate) fn ends_with_assistant(body: &Value) -> bool {
    let messages = body.get("messages").and_then(Value::as_array);
    messages
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "assistant")
}

/// Words across every message, as the prompt token count.
pub(crate) fn prompt_tokens(body: &Value) -> u32 {
    let messages = body.get("messages").and_then(Value::as_array);
    messages
        .into_iter()
        .flatten()
        .map(|m| reply::count_tokens(&content_text(&m["content"])))
        .sum()
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn ids(answer: &Answer) -> (String, String) {
    (
        format!("chatcmpl-mock-{}", answer.seq),
        format!("call_mock_{}", answer.seq),
    )
}

fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    })
}

/// A chat completion, plain or streamed as the request asked.
pub(crate) async fn chat(answer: &Answer, request: &Value, delivery: Delivery) -> Response {
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let frames = chat_frames(answer, request);
    if stream {
        return reply::sse_response(frames, delivery, None);
    }
    let (id, call_id) = ids(answer);
    let (message, finish) = match &answer.content {
        Content::Text(text) => (json!({"role": "assistant", "content": text}), "stop"),
        Content::ToolCall { name, arguments } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": call_id, "type": "function",
                "function": {"name": name, "arguments": arguments.to_string()}
            }]}),
            "tool_calls",
        ),
    };
    let finish = answer.finish.as_deref().unwrap_or(finish);
    let logprobs = match (&answer.content, answer.logprob) {
        (Content::Text(text), Some(lp)) => json!({"content": reply::pieces(text).iter()
            .map(|t| json!({"token": t, "logprob": lp, "bytes": null, "top_logprobs": []}))
            .collect::<Vec<_>>()}),
        _ => Value::Null,
    };
    let body = json!({
        "id": id, "object": "chat.completion", "created": 1_700_000_000u64, "model": answer.model,
        "choices": [{"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}],
        "usage": usage(answer),
    });
    reply::json_response(&body, delivery, frames.len()).await
}

/// The SSE frames of a streamed chat completion, `[DONE]` included. The usage chunk is sent
/// only when the request asked for it (`stream_options.include_usage`), as OpenAI does.
fn chat_frames(answer: &Answer, request: &Value) -> Vec<Bytes> {
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let (id, call_id) = ids(answer);
    let chunk = |delta: Value, finish: Value| {
        let data = json!({
            "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": answer.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        frame(None, &data.to_string())
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let finish = match &answer.content {
        Content::Text(text) => {
            for piece in reply::pieces(text) {
                frames.push(chunk(json!({"content": piece}), Value::Null));
            }
            "stop"
        }
        Content::ToolCall { name, arguments } => {
            frames.push(chunk(
                json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ));
            let arguments = arguments.to_string();
            let mid = arguments
                .char_indices()
                .nth(arguments.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            for part in [&arguments[..mid], &arguments[mid..]] {
                frames.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
            "tool_calls"
        }
    };
    frames.push(chunk(
        json!({}),
        json!(answer.finish.as_deref().unwrap_or(finish)),
    ));
    if include_usage {
        let data = json!({
            "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": answer.model,
            "choices": [], "usage": usage(answer),
        });
        frames.push(frame(None, &data.to_string()));
    }
    frames.push(frame(None, "[DONE]"));
    frames
}

/// The error body OpenAI sends with a non-2xx status.
pub(crate) fn error_body(code: u16, message: &str) -> String {
    json!({"error": {
        "message": message,
        "type": if code == 429 { "rate_limit_error" } else { "mock_error" },
        "param": null, "code": null,
    }})
    .to_string()
}

/// Deterministic unit vectors of 8 floats, one per input.
pub(crate) fn embeddings(request: &Value) -> Value {
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let tokens: u32 = inputs.iter().map(|s| reply::count_tokens(s).max(1)).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": vector(text)}))
        .collect();
    json!({
        "object": "list", "data": data,
        "model": request.get("model").cloned().unwrap_or(Value::Null),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}

fn vector(text: &str) -> Vec<f32> {
    // FNV-1a per dimension: same text, same vector.
    let raw: Vec<f32> = (0u64..8)
        .map(|d| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ d;
            for b in text.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            (h % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    raw.into_iter().map(|x| x / norm).collect()
}

pub(crate) fn models() -> Value {
    json!({"object": "list", "data": [
        {"id": "mock-model", "object": "model", "created": 1_700_000_000u64, "owned_by": "keel-testkit"},
        {"id": "mock-embedding", "object": "model", "created": 1_700_000_000u64, "owned_by": "keel-testkit"},
    ]})
}
