//! Inbound streaming: turns the OpenAI chunks of a canonical stream into the Anthropic events
//! a `POST /v1/messages` client with `stream: true` expects.

use super::events::{BlockDelta, DeltaUsage, MessageDeltaBody, StreamEvent};
use super::inbound::stop_reason_from;
use super::types::{ContentBlock, MessagesResponse, Role, Usage};
use crate::ids;
use crate::openai::{self, ChatCompletionChunk, FinishReason, ToolCallDelta};
use serde_json::json;

/// A stateful converter: feed it every chunk with [`push`](Self::push), then call
/// [`finish`](Self::finish) once the upstream stream ended. Events come out in Anthropic's
/// order: `message_start` first, one content block at a time (text or `tool_use`), then
/// `message_delta` with the stop reason and usage, then `message_stop`.
///
/// OpenAI reports usage only at the end, so `message_start` carries the input token count
/// given to [`with_input_tokens`](Self::with_input_tokens) (0 if none) and the final
/// `message_delta` carries the real input and output counts.
#[derive(Debug, Clone)]
pub struct OpenAiToAnthropicStream {
    id: String,
    model: String,
    input_tokens: u32,
    started: bool,
    finished: bool,
    next_index: u32,
    open: Option<u32>,
    /// OpenAI tool call index → Anthropic block index.
    tool_blocks: Vec<(u32, u32)>,
    finish_reason: Option<FinishReason>,
    usage: Option<openai::Usage>,
}

impl OpenAiToAnthropicStream {
    /// `model` is echoed in `message_start`: pass the name the client asked for.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            id: ids::message_id(),
            model: model.into(),
            input_tokens: 0,
            started: false,
            finished: false,
            next_index: 0,
            open: None,
            tool_blocks: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// Use this message id instead of a fresh `msg_...` one.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// An input token estimate for `message_start` (the final count comes in `message_delta`).
    pub fn with_input_tokens(mut self, input_tokens: u32) -> Self {
        self.input_tokens = input_tokens;
        self
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `message_stop` was emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The events for one upstream chunk (the first call also yields `message_start`).
    pub fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        self.start(&mut out);
        if self.finished {
            return out;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(text, &mut out);
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                self.tool_call(call, &mut out);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        out
    }

    /// The closing events: the open block's `content_block_stop`, `message_delta`,
    /// `message_stop`. Idempotent; later calls yield nothing.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        self.start(&mut out);
        if self.finished {
            return out;
        }
        self.close_open(&mut out);
        let stop_reason = stop_reason_from(self.finish_reason, !self.tool_blocks.is_empty());
        let usage = match self.usage {
            Some(u) => DeltaUsage {
                output_tokens: u.completion_tokens,
                input_tokens: Some(u.prompt_tokens),
                ..DeltaUsage::default()
            },
            None => DeltaUsage::default(),
        };
        out.push(StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(stop_reason),
                stop_sequence: None,
            },
            usage,
        });
        out.push(StreamEvent::MessageStop);
        self.finished = true;
        out
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(StreamEvent::MessageStart {
            message: MessagesResponse {
                id: self.id.clone(),
                kind: "message".into(),
                role: Role::Assistant,
                content: Vec::new(),
                model: self.model.clone(),
                stop_reason: None,
                stop_sequence: None,
                usage: Usage::new(self.input_tokens, 0),
            },
        });
    }

    fn text(&mut self, text: &str, out: &mut Vec<StreamEvent>) {
        let index = match self.open {
            Some(index) if !self.is_tool_block(index) => index,
            _ => {
                let index = self.open_block(ContentBlock::text(""), out);
                self.open = Some(index);
                index
            }
        };
        out.push(StreamEvent::ContentBlockDelta {
            index,
            delta: BlockDelta::TextDelta {
                text: text.to_owned(),
            },
        });
    }

    fn tool_call(&mut self, call: &ToolCallDelta, out: &mut Vec<StreamEvent>) {
        let known = self
            .tool_blocks
            .iter()
            .find(|(oi, _)| *oi == call.index)
            .map(|(_, bi)| *bi);
        let index = match known {
            // OpenAI streams tool calls one after another; should a server interleave them,
            // later fragments still go to their own block index.
            Some(index) => index,
            None => {
                let function = call.function.as_ref();
                let block = ContentBlock::ToolUse {
                    id: call.id.clone().unwrap_or_else(ids::tool_call_id),
                    name: function.and_then(|f| f.name.clone()).unwrap_or_default(),
                    input: json!({}),
                };
                let index = self.open_block(block, out);
                self.tool_blocks.push((call.index, index));
                self.open = Some(index);
                index
            }
        };
        let arguments = call.function.as_ref().and_then(|f| f.arguments.as_deref());
        if let Some(partial_json) = arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::InputJsonDelta {
                    partial_json: partial_json.to_owned(),
                },
            });
        }
    }

    /// Closes the open block and starts a new one, returning its index.
    fn open_block(&mut self, block: ContentBlock, out: &mut Vec<StreamEvent>) -> u32 {
        self.close_open(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: block,
        });
        index
    }

    fn close_open(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(index) = self.open.take() {
            out.push(StreamEvent::ContentBlockStop { index });
        }
    }

    fn is_tool_block(&self, index: u32) -> bool {
        self.tool_blocks.iter().any(|(_, bi)| *bi == index)
    }
}
