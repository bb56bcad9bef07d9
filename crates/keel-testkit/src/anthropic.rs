//! The Anthropic side of the mock: `POST /v1/messages`, plain and SSE.

use crate::reply::{self, Answer, Content, Delivery, frame};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

/// The text of the last user turn (string content or its text blocks).
pub(crate) fn last_user_text(body: &Value) -> String {
    let messages = body.get("messages").and_then(Value::as_array);
    let last = messages.and_then(|m| m.iter().rev().find(|m| m["role"] == "user"));
    last.map(|m| content_text(&m["content"]))
        .unwrap_or_default()
}

/// Words across `system` and every message, as the input token count.
pub(crate) fn prompt_tokens(body: &Value) -> u32 {
    let system = reply::count_tokens(&content_text(&body["system"]));
    let messages = body.get("messages").and_then(Value::as_array);
    system
        + messages
            .into_iter()
            .flatten()
            .map(|m| reply::count_tokens(&content_text(&m["content"])))
            .sum::<u32>()
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Why Anthropic would reject this request before answering, if it would.
pub(crate) fn reject_reason(request: &Value, has_version_header: bool) -> Option<String> {
    if !has_version_header {
        return Some("anthropic-version: header is required".into());
    }
    if request.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Some("max_tokens: Field required".into());
    }
    None
}

fn usage(answer: &Answer) -> Value {
    json!({"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens})
}

fn block(answer: &Answer) -> (Value, &'static str) {
    match &answer.content {
        Content::Text(text) => {
            let stop = match answer.finish.as_deref() {
                Some("length") => "max_tokens",
                Some("content_filter") => "refusal",
                _ => "end_turn",
            };
            (json!({"type": "text", "text": text}), stop)
        }
        Content::ToolCall { name, arguments } => (
            json!({"type": "tool_use", "id": format!("toolu_mock_{}", answer.seq), "name": name, "input": arguments}),
            "tool_use",
        ),
    }
}

/// A message, plain or streamed as the request asked.
pub(crate) async fn messages(answer: &Answer, request: &Value, delivery: Delivery) -> Response {
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let frames = message_frames(answer);
    if stream {
        return reply::sse_response(frames, delivery, Some("content_block_delta"));
    }
    let (content, stop_reason) = block(answer);
    let body = json!({
        "id": format!("msg_mock_{}", answer.seq), "type": "message", "role": "assistant",
        "content": [content], "model": answer.model,
        "stop_reason": stop_reason, "stop_sequence": null, "usage": usage(answer),
    });
    reply::json_response(&body, delivery, frames.len()).await
}

/// The SSE events of a streamed message, `message_stop` included.
fn message_frames(answer: &Answer) -> Vec<Bytes> {
    let event = |name: &str, data: Value| frame(Some(name), &data.to_string());
    let (content, stop_reason) = block(answer);
    let mut frames = vec![event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": format!("msg_mock_{}", answer.seq), "type": "message", "role": "assistant",
            "content": [], "model": answer.model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1},
        }}),
    )];
    let delta = |delta: Value| {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        )
    };
    match &answer.content {
        Content::Text(text) => {
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            frames.push(event("ping", json!({"type": "ping"})));
            for piece in reply::pieces(text) {
                frames.push(delta(json!({"type": "text_delta", "text": piece})));
            }
        }
        Content::ToolCall { arguments, .. } => {
            let mut start = content;
            start["input"] = json!({});
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": start}),
            ));
            let arguments = arguments.to_string();
            let mid = arguments
                .char_indices()
                .nth(arguments.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            for part in [&arguments[..mid], &arguments[mid..]] {
                frames.push(delta(
                    json!({"type": "input_json_delta", "partial_json": part}),
                ));
            }
        }
    }
    frames.push(event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    frames.push(event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": answer.completion_tokens}}),
    ));
    frames.push(event("message_stop", json!({"type": "message_stop"})));
    frames
}

/// The error body Anthropic sends with a non-2xx status.
pub(crate) fn error_body(code: u16, message: &str) -> String {
    let kind = match code {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
}
