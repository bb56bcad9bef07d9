//! Request validation before any stage runs: every error names the offending field, the way
//! OpenAI's `param` does (`messages[2].tool_call_id`), and capability checks against a model.

use keel_config::{Capability, ModelConfig};
use keel_types::ApiError;
use keel_types::openai::{
    ChatCompletionRequest, ContentPart, EmbeddingInput, EmbeddingRequest, MessageContent,
    ResponseFormat, Role,
};

/// Most stop sequences OpenAI accepts.
const MAX_STOP: usize = 4;
/// Most inputs in one embeddings request.
const MAX_EMBED_INPUTS: usize = 2048;

pub fn chat_request(req: &ChatCompletionRequest) -> Result<(), ApiError> {
    if req.model.is_empty() {
        return Err(ApiError::invalid("model", "must not be empty"));
    }
    if req.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "must contain at least one message",
        ));
    }
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::Tool if m.tool_call_id.is_none() => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].tool_call_id"),
                    "is required for messages with role \"tool\"",
                ));
            }
            Role::Assistant if m.content.is_none() && m.tool_calls.is_none() => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].content"),
                    "an assistant message needs content or tool_calls",
                ));
            }
            Role::System | Role::Developer | Role::User | Role::Tool if m.content.is_none() => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].content"),
                    "is required",
                ));
            }
            _ => {}
        }
    }
    if let Some(t) = req.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::invalid(
            "temperature",
            format!("must be between 0 and 2, got {t}"),
        ));
    }
    if let Some(p) = req.top_p
        && !(0.0..=1.0).contains(&p)
    {
        return Err(ApiError::invalid(
            "top_p",
            format!("must be between 0 and 1, got {p}"),
        ));
    }
    if req.n == Some(0) {
        return Err(ApiError::invalid("n", "must be at least 1"));
    }
    for (field, v) in [
        ("max_tokens", req.max_tokens),
        ("max_completion_tokens", req.max_completion_tokens),
    ] {
        if v == Some(0) {
            return Err(ApiError::invalid(field, "must be at least 1"));
        }
    }
    let stops = req.stop_sequences();
    if stops.len() > MAX_STOP {
        return Err(ApiError::invalid(
            "stop",
            format!("at most {MAX_STOP} stop sequences, got {}", stops.len()),
        ));
    }
    if let Some(i) = stops.iter().position(String::is_empty) {
        return Err(ApiError::invalid(format!("stop[{i}]"), "must not be empty"));
    }
    for (i, tool) in req.tools.iter().flatten().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid(
                format!("tools[{i}].type"),
                format!("must be \"function\", got \"{}\"", tool.kind),
            ));
        }
        let name_ok = !tool.function.name.is_empty()
            && tool.function.name.len() <= 64
            && tool
                .function
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(ApiError::invalid(
                format!("tools[{i}].function.name"),
                "must be 1-64 characters of a-z, A-Z, 0-9, _ or -",
            ));
        }
    }
    if req.stream_options.is_some() && !req.is_stream() {
        return Err(ApiError::invalid(
            "stream_options",
            "is only allowed when \"stream\" is true",
        ));
    }
    Ok(())
}

/// The first request field `model` cannot honour, as a 400 naming it.
pub fn chat_capabilities(
    req: &ChatCompletionRequest,
    name: &str,
    model: &ModelConfig,
) -> Result<(), ApiError> {
    let need = |cap: Capability, param: &str, what: &str| {
        if model.can(cap) {
            Ok(())
        } else {
            Err(ApiError::unsupported(
                param,
                format!("model \"{name}\" does not support {what}"),
            ))
        }
    };
    need(Capability::Chat, "model", "chat completions")?;
    if req.is_stream() {
        need(Capability::Stream, "stream", "streaming")?;
    }
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        need(Capability::Tools, "tools", "tool calling")?;
    }
    match req.response_format {
        Some(ResponseFormat::JsonObject) => {
            need(Capability::JsonMode, "response_format", "JSON mode")?
        }
        Some(ResponseFormat::JsonSchema { .. }) => need(
            Capability::JsonSchema,
            "response_format",
            "structured output (json_schema)",
        )?,
        Some(ResponseFormat::Text) | None => {}
    }
    if req.n.is_some_and(|n| n > 1) {
        need(
            Capability::MultipleChoices,
            "n",
            "more than one choice (n > 1)",
        )?;
    }
    for (i, m) in req.messages.iter().enumerate() {
        if let Some(MessageContent::Parts(parts)) = &m.content
            && let Some(j) = parts
                .iter()
                .position(|p| !matches!(p, ContentPart::Text { .. }))
        {
            need(
                Capability::Images,
                &format!("messages[{i}].content[{j}]"),
                "non-text content",
            )?;
        }
    }
    Ok(())
}

pub fn embedding_request(req: &EmbeddingRequest) -> Result<(), ApiError> {
    if req.model.is_empty() {
        return Err(ApiError::invalid("model", "must not be empty"));
    }
    let count = match &req.input {
        EmbeddingInput::One(s) if s.is_empty() => {
            return Err(ApiError::invalid("input", "must not be empty"));
        }
        EmbeddingInput::One(_) => 1,
        EmbeddingInput::Many(v) => {
            if let Some(i) = v.iter().position(String::is_empty) {
                return Err(ApiError::invalid(
                    format!("input[{i}]"),
                    "must not be empty",
                ));
            }
            v.len()
        }
        EmbeddingInput::Tokens(v) => usize::from(!v.is_empty()),
        EmbeddingInput::ManyTokens(v) => v.len(),
    };
    if count == 0 {
        return Err(ApiError::invalid(
            "input",
            "must contain at least one input",
        ));
    }
    if count > MAX_EMBED_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!("at most {MAX_EMBED_INPUTS} inputs, got {count}"),
        ));
    }
    if req.dimensions == Some(0) {
        return Err(ApiError::invalid("dimensions", "must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(v: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tool_message_needs_its_call_id() {
        let r = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "y"}]}),
        );
        assert_eq!(
            chat_request(&r).unwrap_err().param.as_deref(),
            Some("messages[1].tool_call_id")
        );
    }

    #[test]
    fn ranges_name_the_field() {
        let r = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3.0}),
        );
        assert_eq!(
            chat_request(&r).unwrap_err().param.as_deref(),
            Some("temperature")
        );
        let r = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a", ""]}),
        );
        assert_eq!(
            chat_request(&r).unwrap_err().param.as_deref(),
            Some("stop[1]")
        );
    }

    #[test]
    fn capabilities_name_the_unsupported_field() {
        let model: ModelConfig =
            toml::from_str("provider = \"p\"\nupstream = \"u\"\ncapabilities = [\"chat\"]")
                .unwrap();
        let r = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}]}),
        );
        let e = chat_capabilities(&r, "m", &model).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools"));
        assert_eq!(e.code.http_status(), 400);
        let r = chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}));
        assert_eq!(
            chat_capabilities(&r, "m", &model)
                .unwrap_err()
                .param
                .as_deref(),
            Some("n")
        );
        let r = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true}),
        );
        assert_eq!(
            chat_capabilities(&r, "m", &model)
                .unwrap_err()
                .param
                .as_deref(),
            Some("stream")
        );
    }

    #[test]
    fn empty_embedding_inputs_are_rejected() {
        let r: EmbeddingRequest =
            serde_json::from_value(json!({"model": "e", "input": ["a", ""]})).unwrap();
        assert_eq!(
            embedding_request(&r).unwrap_err().param.as_deref(),
            Some("input[1]")
        );
        let r: EmbeddingRequest =
            serde_json::from_value(json!({"model": "e", "input": []})).unwrap();
        assert_eq!(
            embedding_request(&r).unwrap_err().param.as_deref(),
            Some("input")
        );
    }
}
