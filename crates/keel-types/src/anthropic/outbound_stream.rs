//! Outbound streaming: turns an Anthropic upstream's events into OpenAI chunks.

use super::events::{BlockDelta, StreamEvent};
use super::outbound::{finish_reason_from, unix_now};
use super::types::{ContentBlock, StopReason, Usage};
use crate::openai::{
    self, ChatCompletionChunk, Delta, FinishReason, FunctionCallDelta, ToolCallDelta,
};
use crate::{ApiError, ErrorCode};
use serde_json::Value;

/// A stateful converter: feed it every event with [`push`](Self::push). Chunks come out as
/// OpenAI streams them: a role chunk, content and tool call deltas (tool calls numbered from
/// 0 in order of appearance), a chunk with `finish_reason`, and at `message_stop` a
/// usage-only chunk (prompt = every input token including cache reads and writes, completion
/// = output tokens).
///
/// A stream that ends before [`is_done`](Self::is_done) turned true was truncated.
#[derive(Debug, Clone)]
pub struct AnthropicToOpenAiStream {
    id: String,
    model: String,
    created: u64,
    /// Anthropic block index → OpenAI tool call index.
    tool_calls: Vec<(u32, u32)>,
    usage: Usage,
    stop_reason: Option<StopReason>,
    done: bool,
}

impl Default for AnthropicToOpenAiStream {
    fn default() -> Self {
        Self::new()
    }
}

impl AnthropicToOpenAiStream {
    pub fn new() -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created: unix_now(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            stop_reason: None,
            done: false,
        }
    }

    /// Whether `message_stop` arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The chunks for one event. An `error` event becomes `Err` (the upstream failed mid-stream);
    /// `ping` and unknown events yield nothing.
    pub fn push(&mut self, event: StreamEvent) -> Result<Vec<ChatCompletionChunk>, ApiError> {
        let chunk = match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.usage = message.usage;
                self.chunk(
                    Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                        tool_calls: None,
                    },
                    None,
                )
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                ContentBlock::Text { text } if !text.is_empty() => self.text(text),
                ContentBlock::ToolUse { id, name, input } => {
                    let tool_index = u32::try_from(self.tool_calls.len()).unwrap_or(u32::MAX);
                    self.tool_calls.push((index, tool_index));
                    // Input normally streams as `input_json_delta`; a non-empty start input is
                    // the whole input.
                    let arguments = match &input {
                        Value::Object(map) if !map.is_empty() => input.to_string(),
                        _ => String::new(),
                    };
                    self.tool_delta(ToolCallDelta {
                        index: tool_index,
                        id: Some(id),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(arguments),
                        }),
                    })
                }
                _ => return Ok(Vec::new()),
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } if !text.is_empty() => self.text(text),
                BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                    let Some(&(_, tool_index)) =
                        self.tool_calls.iter().find(|(bi, _)| *bi == index)
                    else {
                        return Ok(Vec::new());
                    };
                    self.tool_delta(ToolCallDelta {
                        index: tool_index,
                        id: None,
                        kind: None,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(partial_json),
                        }),
                    })
                }
                _ => return Ok(Vec::new()),
            },
            StreamEvent::MessageDelta { delta, usage } => {
                self.stop_reason = delta.stop_reason.or(self.stop_reason);
                self.usage.output_tokens = usage.output_tokens;
                if let Some(n) = usage.input_tokens {
                    self.usage.input_tokens = n;
                }
                if usage.cache_creation_input_tokens.is_some() {
                    self.usage.cache_creation_input_tokens = usage.cache_creation_input_tokens;
                }
                if usage.cache_read_input_tokens.is_some() {
                    self.usage.cache_read_input_tokens = usage.cache_read_input_tokens;
                }
                self.chunk(Delta::default(), Some(finish_reason_from(self.stop_reason)))
            }
            StreamEvent::MessageStop => {
                if self.done {
                    return Ok(Vec::new());
                }
                self.done = true;
                let usage =
                    openai::Usage::new(self.usage.total_input_tokens(), self.usage.output_tokens);
                ChatCompletionChunk::usage_only(&self.id, self.created, &self.model, usage)
            }
            StreamEvent::Error { error } => {
                let code = match error.kind.as_str() {
                    "overloaded_error" => ErrorCode::Overloaded,
                    "rate_limit_error" => ErrorCode::RateLimited,
                    _ => ErrorCode::UpstreamError,
                };
                return Err(ApiError::new(
                    code,
                    format!("{}: {}", error.kind, error.message),
                ));
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Unknown => {
                return Ok(Vec::new());
            }
        };
        Ok(vec![chunk])
    }

    fn text(&self, text: String) -> ChatCompletionChunk {
        self.chunk(
            Delta {
                role: None,
                content: Some(text),
                tool_calls: None,
            },
            None,
        )
    }

    fn tool_delta(&self, call: ToolCallDelta) -> ChatCompletionChunk {
        self.chunk(
            Delta {
                role: None,
                content: None,
                tool_calls: Some(vec![call]),
            },
            None,
        )
    }

    fn chunk(&self, delta: Delta, finish: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk::delta(&self.id, self.created, &self.model, delta, finish)
    }
}
