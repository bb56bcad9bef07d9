//! Outbound translation: keel calls an Anthropic upstream. The canonical OpenAI request becomes
//! a Messages request, and the upstream's message becomes an OpenAI completion.
//!
//! Shape changes worth knowing:
//! - `system` and `developer` messages, wherever they appear, become the top-level `system`.
//! - `tool` messages become `tool_result` blocks of a user turn; consecutive same-role turns
//!   are merged (tool results first, as Anthropic requires), empty text is dropped (Anthropic
//!   rejects empty text blocks).
//! - Parameters Anthropic cannot honour (`n` > 1, `response_format` other than `text`,
//!   `logprobs`) are errors naming the field; sampling knobs it lacks (`seed`,
//!   `presence_penalty`, `frequency_penalty`, `logit_bias`) are dropped.

use super::inbound::arguments_to_input;
use super::types::{
    ContentBlock, ImageSource, Message, MessageContent, MessagesRequest, MessagesResponse,
    Metadata, Role, StopReason, SystemPrompt, ToolChoice, ToolDefinition, ToolResultContent,
};
use crate::ApiError;
use crate::openai::{
    self, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart,
    FinishReason, FunctionCall, ResponseFormat, Tool, ToolCall,
};
use serde_json::{Value, json};

/// `max_tokens` when the OpenAI request gave none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Translates keel's canonical OpenAI request into an Anthropic Messages request.
pub fn from_openai_request(req: &ChatCompletionRequest) -> Result<MessagesRequest, ApiError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(ApiError::unsupported(
            "n",
            "Anthropic models return one choice; `n` must be 1",
        ));
    }
    if matches!(
        req.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    ) {
        return Err(ApiError::unsupported(
            "response_format",
            "Anthropic models do not support `response_format`; describe the format in the prompt",
        ));
    }
    for field in ["logprobs", "top_logprobs"] {
        if req
            .extra
            .get(field)
            .is_some_and(|v| !v.is_null() && *v != json!(false))
        {
            return Err(ApiError::unsupported(
                field,
                format!("Anthropic models do not support `{field}`"),
            ));
        }
    }

    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(req.messages.len());
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            openai::Role::System | openai::Role::Developer => system.push(system_text(i, message)?),
            openai::Role::User => push_merged(&mut messages, Role::User, user_blocks(i, message)?),
            openai::Role::Assistant => {
                push_merged(&mut messages, Role::Assistant, assistant_blocks(message))
            }
            openai::Role::Tool => {
                push_merged(&mut messages, Role::User, vec![tool_result(i, message)?])
            }
        }
    }
    for message in &mut messages {
        simplify(message);
    }

    let parallel = req
        .extra
        .get("parallel_tool_calls")
        .and_then(Value::as_bool);
    Ok(MessagesRequest {
        model: req.model.clone(),
        messages,
        system: match system.len() {
            0 => None,
            1 => system.pop().map(SystemPrompt::Text),
            _ => Some(SystemPrompt::Blocks(
                system.into_iter().map(ContentBlock::text).collect(),
            )),
        },
        max_tokens: req.max_output_tokens().unwrap_or(DEFAULT_MAX_TOKENS),
        stop_sequences: Some(req.stop_sequences()).filter(|s| !s.is_empty()),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req
            .extra
            .get("top_k")
            .and_then(Value::as_u64)
            .and_then(|k| u32::try_from(k).ok()),
        stream: req.is_stream().then_some(true),
        tools: req
            .tools
            .as_ref()
            .map(|t| tools_from_openai(t))
            .transpose()?,
        tool_choice: tool_choice_from_openai(
            req.tool_choice.as_ref(),
            parallel,
            req.tools.is_some(),
        )?,
        metadata: req.user.clone().map(|user_id| Metadata {
            user_id: Some(user_id),
        }),
        extra: serde_json::Map::new(),
    })
}

/// Translates an Anthropic message into an OpenAI completion (one choice). Tool inputs become
/// `tool_calls` whose `arguments` are the input's JSON text.
pub fn to_openai_response(resp: &MessagesResponse) -> ChatCompletionResponse {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in &resp.content {
        match block {
            ContentBlock::Text { text: t } => text.push_str(t),
            ContentBlock::ToolUse { id, name, input } => calls.push(ToolCall {
                id: id.clone(),
                kind: "function".into(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: input.to_string(),
                },
            }),
            // thinking, server tool results...: nothing an OpenAI client can read.
            _ => {}
        }
    }
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    ChatCompletionResponse {
        id: resp.id.clone(),
        object: "chat.completion".into(),
        created: unix_now(),
        model: resp.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: openai::AssistantMessage {
                role: "assistant".into(),
                content,
                tool_calls: (!calls.is_empty()).then_some(calls),
                refusal: None,
            },
            finish_reason: Some(finish_reason_from(resp.stop_reason)),
            logprobs: None,
        }],
        usage: Some(openai::Usage::new(
            resp.usage.total_input_tokens(),
            resp.usage.output_tokens,
        )),
        system_fingerprint: None,
        keel: None,
    }
}

/// Anthropic stop reason → OpenAI finish reason.
pub(crate) fn finish_reason_from(stop: Option<StopReason>) -> FinishReason {
    match stop {
        Some(StopReason::MaxTokens) => FinishReason::Length,
        Some(StopReason::ToolUse) => FinishReason::ToolCalls,
        Some(StopReason::Refusal) => FinishReason::ContentFilter,
        Some(
            StopReason::EndTurn
            | StopReason::StopSequence
            | StopReason::PauseTurn
            | StopReason::Unknown,
        )
        | None => FinishReason::Stop,
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Appends `blocks` as a turn of `role`, merged into the previous turn if it has that role.
fn push_merged(messages: &mut Vec<Message>, role: Role, blocks: Vec<ContentBlock>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut().filter(|m| m.role == role) {
        let content = std::mem::replace(&mut last.content, MessageContent::Blocks(Vec::new()));
        let mut merged = content.into_blocks();
        merged.extend(blocks);
        last.content = MessageContent::Blocks(merged);
    } else {
        messages.push(Message::blocks(role, blocks));
    }
}

/// Puts tool results first (Anthropic requires it) and turns a lone text block into a string.
fn simplify(message: &mut Message) {
    let MessageContent::Blocks(blocks) = &mut message.content else {
        return;
    };
    blocks.sort_by_key(|b| !matches!(b, ContentBlock::ToolResult { .. }));
    if let [ContentBlock::Text { text }] = blocks.as_mut_slice() {
        message.content = MessageContent::Text(std::mem::take(text));
    }
}

fn system_text(i: usize, message: &ChatMessage) -> Result<String, ApiError> {
    if let Some(openai::MessageContent::Parts(parts)) = &message.content {
        for (j, part) in parts.iter().enumerate() {
            if !matches!(part, ContentPart::Text { .. }) {
                return Err(ApiError::unsupported(
                    format!("messages[{i}].content[{j}].type"),
                    "system messages may only contain text",
                ));
            }
        }
    }
    Ok(message.text_content())
}

fn user_blocks(i: usize, message: &ChatMessage) -> Result<Vec<ContentBlock>, ApiError> {
    let parts = match &message.content {
        None => return Ok(Vec::new()),
        Some(openai::MessageContent::Text(text)) => {
            return Ok(text_block(text).into_iter().collect());
        }
        Some(openai::MessageContent::Parts(parts)) => parts,
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        match part {
            ContentPart::Text { text } => blocks.extend(text_block(text)),
            ContentPart::ImageUrl { image_url } => {
                let url = image_url
                    .get("url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            format!("messages[{i}].content[{j}].image_url.url"),
                            "an image URL is required",
                        )
                    })?;
                blocks.push(ContentBlock::Image {
                    source: image_source(url),
                });
            }
            ContentPart::InputAudio { .. } | ContentPart::File { .. } => {
                return Err(ApiError::unsupported(
                    format!("messages[{i}].content[{j}].type"),
                    "Anthropic models accept only text and image parts here",
                ));
            }
        }
    }
    Ok(blocks)
}

fn assistant_blocks(message: &ChatMessage) -> Vec<ContentBlock> {
    let mut blocks: Vec<ContentBlock> = text_block(&message.text_content()).into_iter().collect();
    for call in message.tool_calls.iter().flatten() {
        blocks.push(ContentBlock::ToolUse {
            id: call.id.clone(),
            name: call.function.name.clone(),
            // Lenient: a model's malformed arguments in history must not fail the next turn.
            input: arguments_to_input(&call.function.arguments),
        });
    }
    blocks
}

fn tool_result(i: usize, message: &ChatMessage) -> Result<ContentBlock, ApiError> {
    let tool_use_id = message.tool_call_id.clone().ok_or_else(|| {
        ApiError::invalid(
            format!("messages[{i}].tool_call_id"),
            "tool messages need a `tool_call_id`",
        )
    })?;
    Ok(ContentBlock::ToolResult {
        tool_use_id,
        content: Some(ToolResultContent::Text(message.text_content())),
        is_error: None,
    })
}

fn text_block(text: &str) -> Option<ContentBlock> {
    (!text.is_empty()).then(|| ContentBlock::text(text))
}

/// A `data:<media type>;base64,<data>` URL becomes inline bytes; anything else a URL source.
fn image_source(url: &str) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    ImageSource::Url {
        url: url.to_owned(),
    }
}

fn tools_from_openai(tools: &[Tool]) -> Result<Vec<ToolDefinition>, ApiError> {
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            if tool.kind != "function" {
                return Err(ApiError::unsupported(
                    format!("tools[{i}].type"),
                    format!("tool type `{}` is not supported; use `function`", tool.kind),
                ));
            }
            Ok(ToolDefinition {
                name: tool.function.name.clone(),
                description: tool.function.description.clone(),
                input_schema: tool
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

fn tool_choice_from_openai(
    choice: Option<&Value>,
    parallel: Option<bool>,
    has_tools: bool,
) -> Result<Option<ToolChoice>, ApiError> {
    let disable = (parallel == Some(false)).then_some(true);
    let choice = match choice {
        None if disable.is_some() && has_tools => ToolChoice::Auto {
            disable_parallel_tool_use: disable,
        },
        None => return Ok(None),
        Some(Value::String(s)) if s == "auto" => ToolChoice::Auto {
            disable_parallel_tool_use: disable,
        },
        Some(Value::String(s)) if s == "required" => ToolChoice::Any {
            disable_parallel_tool_use: disable,
        },
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if v.get("type").and_then(Value::as_str) == Some("function") => {
                ToolChoice::Tool {
                    name: name.to_owned(),
                    disable_parallel_tool_use: disable,
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    "tool_choice",
                    "expected \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":...}}",
                ));
            }
        },
    };
    Ok(Some(choice))
}
