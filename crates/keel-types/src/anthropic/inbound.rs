//! Inbound translation: keel serves `POST /v1/messages`. An Anthropic request becomes keel's
//! canonical OpenAI request, and an OpenAI answer becomes an Anthropic message.
//!
//! Shape changes worth knowing:
//! - `tool_result` blocks of a user turn become OpenAI `tool` messages placed *before* the
//!   turn's remaining text, because OpenAI requires tool messages right after the assistant
//!   message that called them.
//! - `thinking` / `redacted_thinking` blocks echoed back in assistant turns are dropped (no
//!   OpenAI equivalent); any other block type keel does not know is an error naming it.
//! - `top_k` rides in `extra` (vLLM, Ollama and keel's local engine honour it).

use super::types::{
    ContentBlock, ImageSource, MessageContent, MessagesRequest, MessagesResponse, Role, StopReason,
    SystemPrompt, ToolChoice, ToolDefinition, ToolResultContent, Usage,
};
use crate::ApiError;
use crate::openai::{
    self, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, ContentPart, FinishReason,
    FunctionCall, FunctionDef, StopSequences, StreamOptions, Tool, ToolCall,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Translates an Anthropic Messages request into keel's canonical OpenAI request.
///
/// Streaming requests ask for usage (`stream_options.include_usage`) because Anthropic's
/// `message_delta` must carry the output token count.
pub fn to_openai_request(req: &MessagesRequest) -> Result<ChatCompletionRequest, ApiError> {
    if let Some(field) = req.extra.keys().next() {
        return Err(ApiError::unsupported(
            field.as_str(),
            format!("`{field}` is not supported by keel's Messages endpoint"),
        ));
    }
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "at least one message is required",
        ));
    }
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(ChatMessage::text(
            openai::Role::System,
            system_text(system)?,
        ));
    }
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::User => user_messages(i, &message.content, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(i, &message.content)?),
        }
    }

    let mut extra = Map::new();
    if let Some(top_k) = req.top_k {
        extra.insert("top_k".into(), top_k.into());
    }
    if req
        .tool_choice
        .as_ref()
        .and_then(ToolChoice::disable_parallel_tool_use)
        == Some(true)
    {
        extra.insert("parallel_tool_calls".into(), false.into());
    }
    let stop = req
        .stop_sequences
        .clone()
        .filter(|s| !s.is_empty())
        .map(StopSequences::Many);
    Ok(ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        temperature: req.temperature,
        top_p: req.top_p,
        max_tokens: Some(req.max_tokens),
        stop,
        stream: req.stream,
        stream_options: req.is_stream().then_some(StreamOptions {
            include_usage: Some(true),
        }),
        tools: req
            .tools
            .as_ref()
            .map(|tools| tools.iter().map(tool_to_openai).collect()),
        tool_choice: req.tool_choice.as_ref().map(tool_choice_to_openai),
        user: req.metadata.as_ref().and_then(|m| m.user_id.clone()),
        extra,
        ..ChatCompletionRequest::default()
    })
}

/// Translates an OpenAI answer into an Anthropic message. The first choice is used; `model`
/// is taken from the response, so callers set it to the name the client asked for.
pub fn from_openai_response(resp: &ChatCompletionResponse) -> MessagesResponse {
    let mut content = Vec::new();
    let mut finish = None;
    if let Some(choice) = resp.choices.first() {
        finish = choice.finish_reason;
        let msg = &choice.message;
        match (&msg.content, &msg.refusal) {
            (Some(text), _) if !text.is_empty() => content.push(ContentBlock::text(text)),
            (_, Some(refusal)) => {
                content.push(ContentBlock::text(refusal));
                finish = Some(FinishReason::ContentFilter);
            }
            _ => {}
        }
        for call in msg.tool_calls.iter().flatten() {
            content.push(ContentBlock::ToolUse {
                id: call.id.clone(),
                name: call.function.name.clone(),
                input: arguments_to_input(&call.function.arguments),
            });
        }
    }
    let has_tool_use = content
        .iter()
        .any(|b| matches!(b, ContentBlock::ToolUse { .. }));
    if content.is_empty() {
        // Clients index `content[0]`; an empty answer is an empty text block, not no block.
        content.push(ContentBlock::text(""));
    }
    let usage = resp
        .usage
        .map(|u| Usage::new(u.prompt_tokens, u.completion_tokens));
    MessagesResponse {
        id: message_id_from(&resp.id),
        kind: "message".into(),
        role: Role::Assistant,
        content,
        model: resp.model.clone(),
        stop_reason: Some(stop_reason_from(finish, has_tool_use)),
        stop_sequence: None,
        usage: usage.unwrap_or_default(),
    }
}

/// OpenAI finish reason → Anthropic stop reason. Some servers finish a tool call with
/// `stop`; Anthropic clients run their tool loop only on `tool_use`, so tool calls win.
pub(crate) fn stop_reason_from(finish: Option<FinishReason>, has_tool_use: bool) -> StopReason {
    match finish {
        Some(FinishReason::Length) => StopReason::MaxTokens,
        Some(FinishReason::ContentFilter) => StopReason::Refusal,
        _ if has_tool_use => StopReason::ToolUse,
        Some(FinishReason::ToolCalls) => StopReason::ToolUse,
        Some(FinishReason::Stop) | None => StopReason::EndTurn,
    }
}

/// An Anthropic-looking id (`msg_...`) for an OpenAI completion id.
pub(crate) fn message_id_from(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{}", id.strip_prefix("chatcmpl-").unwrap_or(id))
    }
}

/// Tool call arguments (JSON text) → a `tool_use` input object. Anthropic inputs are objects;
/// text that is not a JSON object is kept under `_raw_arguments` rather than lost.
pub(crate) fn arguments_to_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "_raw_arguments": arguments }),
    }
}

fn system_text(system: &SystemPrompt) -> Result<String, ApiError> {
    match system {
        SystemPrompt::Text(text) => Ok(text.clone()),
        SystemPrompt::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text { text } => texts.push(text.as_str()),
                    other => return Err(block_error(&format!("system[{j}]"), other, "system")),
                }
            }
            Ok(texts.join("\n"))
        }
    }
}

/// A user turn: its tool results first (as `tool` messages), then its text and images.
fn user_messages(
    i: usize,
    content: &MessageContent,
    out: &mut Vec<ChatMessage>,
) -> Result<(), ApiError> {
    let blocks = match content {
        MessageContent::Text(text) => {
            out.push(ChatMessage::text(openai::Role::User, text.clone()));
            return Ok(());
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        match block {
            ContentBlock::Text { text } => parts.push(ContentPart::Text { text: text.clone() }),
            ContentBlock::Image { source } => parts.push(ContentPart::ImageUrl {
                image_url: json!({ "url": image_source_url(source) }),
            }),
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let text = tool_result_text(&at, content.as_ref(), is_error.unwrap_or(false))?;
                out.push(ChatMessage {
                    role: openai::Role::Tool,
                    content: Some(openai::MessageContent::Text(text)),
                    name: None,
                    tool_calls: None,
                    tool_call_id: Some(tool_use_id.clone()),
                });
            }
            other => return Err(block_error(&at, other, "user messages")),
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = match parts.as_slice() {
        [ContentPart::Text { text }] => openai::MessageContent::Text(text.clone()),
        _ => openai::MessageContent::Parts(parts),
    };
    out.push(ChatMessage {
        role: openai::Role::User,
        content: Some(content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
    });
    Ok(())
}

fn assistant_message(i: usize, content: &MessageContent) -> Result<ChatMessage, ApiError> {
    let blocks = match content {
        MessageContent::Text(text) => {
            return Ok(ChatMessage::text(openai::Role::Assistant, text.clone()));
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block {
            ContentBlock::Text { text } => texts.push(text.clone()),
            ContentBlock::ToolUse { id, name, input } => calls.push(ToolCall {
                id: id.clone(),
                kind: "function".into(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: input.to_string(),
                },
            }),
            ContentBlock::Other(_)
                if matches!(block.type_name(), "thinking" | "redacted_thinking") => {}
            other => {
                return Err(block_error(
                    &format!("messages[{i}].content[{j}]"),
                    other,
                    "assistant messages",
                ));
            }
        }
    }
    let content = match texts.len() {
        0 if !calls.is_empty() => None,
        0 => Some(openai::MessageContent::Text(String::new())),
        1 => texts.pop().map(openai::MessageContent::Text),
        _ => Some(openai::MessageContent::Parts(
            texts
                .into_iter()
                .map(|text| ContentPart::Text { text })
                .collect(),
        )),
    };
    Ok(ChatMessage {
        role: openai::Role::Assistant,
        content,
        name: None,
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
    })
}

/// A tool result as the text of an OpenAI `tool` message. OpenAI has no `is_error`, so a
/// failed tool's output is prefixed with `Error: ` for the model to see.
fn tool_result_text(
    at: &str,
    content: Option<&ToolResultContent>,
    is_error: bool,
) -> Result<String, ApiError> {
    let text = match content {
        None => String::new(),
        Some(ToolResultContent::Text(text)) => text.clone(),
        Some(ToolResultContent::Blocks(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (k, block) in blocks.iter().enumerate() {
                match block {
                    ContentBlock::Text { text } => texts.push(text.as_str()),
                    other => {
                        return Err(block_error(
                            &format!("{at}.content[{k}]"),
                            other,
                            "tool results",
                        ));
                    }
                }
            }
            texts.join("\n")
        }
    };
    Ok(if is_error {
        format!("Error: {text}")
    } else {
        text
    })
}

fn image_source_url(source: &ImageSource) -> String {
    match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url { url } => url.clone(),
    }
}

fn tool_to_openai(tool: &ToolDefinition) -> Tool {
    Tool {
        kind: "function".into(),
        function: FunctionDef {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters: Some(tool.input_schema.clone()),
            strict: None,
        },
    }
}

fn tool_choice_to_openai(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto { .. } => json!("auto"),
        ToolChoice::Any { .. } => json!("required"),
        ToolChoice::None => json!("none"),
        ToolChoice::Tool { name, .. } => json!({"type": "function", "function": {"name": name}}),
    }
}

/// The error for a block that cannot appear where it is (`at` is the block's path). A known
/// block type whose body failed to parse gets the parser's reason instead.
fn block_error(at: &str, block: &ContentBlock, place: &str) -> ApiError {
    let kind = block.type_name();
    if let ContentBlock::Other(raw) = block
        && let Err(e) = StrictBlock::deserialize(raw)
        && matches!(kind, "text" | "image" | "tool_use" | "tool_result")
    {
        return ApiError::invalid(at, format!("invalid `{kind}` block: {e}"));
    }
    ApiError::invalid(
        format!("{at}.type"),
        format!("`{kind}` blocks are not supported in {place}"),
    )
}

/// The known block types without the catch-all, to explain why a known type did not parse.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(dead_code)] // only the parse error is used
enum StrictBlock {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Option<ToolResultContent>,
        is_error: Option<bool>,
    },
}
