//! Anthropic streaming events: the JSON of each SSE `data:` line, whose `type` is also the SSE
//! `event:` name.
//!
//! Order on the wire: `message_start`, then per content block `content_block_start`,
//! `content_block_delta`*, `content_block_stop`, then `message_delta` (stop reason and
//! cumulative output tokens) and `message_stop`. `ping` may appear anywhere; `error` ends a
//! stream that failed after it started.

use super::types::{ContentBlock, MessagesResponse, StopReason};
use crate::ApiError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessagesResponse,
    },
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: DeltaUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: StreamError,
    },
    /// An event type newer than keel; ignored by the translators.
    #[serde(other)]
    Unknown,
}

impl StreamEvent {
    /// The SSE `event:` name for this event.
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
            Self::Unknown => "unknown",
        }
    }

    /// The `error` event a server sends when a stream fails after it started.
    pub fn from_api_error(error: &ApiError) -> Self {
        let body = error.to_anthropic_body();
        let kind = body["error"]["type"]
            .as_str()
            .unwrap_or("api_error")
            .to_owned();
        Self::Error {
            error: StreamError {
                kind,
                message: error.message.clone(),
            },
        }
    }
}

/// The `delta` of a `content_block_delta` event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// `thinking_delta`, `signature_delta`, `citations_delta`...: not translated.
    #[serde(other)]
    Unknown,
}

/// The `delta` of a `message_delta` event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// The `usage` of a `message_delta` event. `output_tokens` is cumulative; newer API versions
/// also repeat the input counts here.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeltaUsage {
    #[serde(default)]
    pub output_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u32>,
}

/// The `error` of an `error` event (`overloaded_error`, `api_error`...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamError {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_parse_from_the_wire() {
        let e: StreamEvent = serde_json::from_value(json!({
            "type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}
        }))
        .unwrap();
        assert_eq!(
            e,
            StreamEvent::ContentBlockDelta {
                index: 1,
                delta: BlockDelta::InputJsonDelta {
                    partial_json: "{\"a\":".into()
                }
            }
        );
        let e: StreamEvent = serde_json::from_value(json!({
            "type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 15}
        }))
        .unwrap();
        assert_eq!(e.event_name(), "message_delta");
        let e: StreamEvent = serde_json::from_value(json!({"type": "brand_new", "x": 1})).unwrap();
        assert_eq!(e, StreamEvent::Unknown);
        let d: BlockDelta =
            serde_json::from_value(json!({"type": "thinking_delta", "thinking": "x"})).unwrap();
        assert_eq!(d, BlockDelta::Unknown);
    }

    #[test]
    fn error_event_from_api_error() {
        let e = StreamEvent::from_api_error(&ApiError::new(crate::ErrorCode::Overloaded, "busy"));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
        );
    }
}
