//! Translation tests: both directions, round trips, streams, and errors that name their field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::ErrorCode;
use crate::openai::{
    self, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, FinishReason,
};
use serde_json::{Value, json};

fn anthropic_req(v: Value) -> MessagesRequest {
    serde_json::from_value(v).unwrap()
}

fn openai_req(v: Value) -> ChatCompletionRequest {
    serde_json::from_value(v).unwrap()
}

fn tool_conversation() -> MessagesRequest {
    anthropic_req(json!({
        "model": "claude-x", "max_tokens": 256, "system": "be brief",
        "temperature": 0.5, "top_k": 40, "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "thanks"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
            ]}
        ]
    }))
}

// ---- inbound: Anthropic client → canonical OpenAI ----

#[test]
fn inbound_request_maps_tools_system_and_tool_results() {
    let r = to_openai_request(&tool_conversation()).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["model"], "claude-x");
    assert_eq!(v["max_tokens"], 256);
    assert_eq!(v["top_k"], 40);
    assert_eq!(v["parallel_tool_calls"], false);
    assert_eq!(v["stop"], json!(["END"]));
    assert_eq!(v["user"], "u1");
    assert_eq!(v["tool_choice"], "auto");
    assert_eq!(
        v["tools"][0]["function"]["parameters"]["properties"]["city"]["type"],
        "string"
    );
    let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
    // The tool result moves before the user's text: OpenAI wants it right after the call.
    assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
    let call = &r.messages[2].tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.id, "toolu_1");
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("toolu_1"));
    assert_eq!(r.messages[3].text_content(), "sunny");
    assert_eq!(r.messages[4].text_content(), "thanks");
    assert!(r.stream_options.is_none());
}

#[test]
fn inbound_stream_request_asks_for_usage() {
    let r = anthropic_req(json!({"model": "m", "max_tokens": 5, "stream": true,
    "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "text", "text": "what is this"}
    ]}]}));
    let r = to_openai_request(&r).unwrap();
    assert!(r.is_stream() && r.wants_stream_usage());
    let v = serde_json::to_value(&r.messages[0]).unwrap();
    assert_eq!(
        v["content"][0]["image_url"]["url"],
        "data:image/png;base64,AAAA"
    );
    assert_eq!(v["content"][1]["text"], "what is this");
}

#[test]
fn inbound_errors_name_the_field() {
    let cases = [
        (
            json!([{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]),
            "messages[0].content[0].type",
        ),
        (
            json!([{"role": "user", "content": "hi"}, {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "document", "source": {}}]}]),
            "messages[1].content[1].type",
        ),
        (
            json!([{"role": "user", "content": [{"type": "text"}]}]),
            "messages[0].content[0]",
        ),
        (
            json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "text", "text": "a"}, {"type": "image", "source": {"type": "url", "url": "u"}}]}]}]),
            "messages[0].content[0].content[1].type",
        ),
        (
            json!([{"role": "assistant", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}]),
            "messages[0].content[0].type",
        ),
        (json!([]), "messages"),
    ];
    for (messages, param) in cases {
        let r = anthropic_req(json!({"model": "m", "max_tokens": 5, "messages": messages}));
        let e = to_openai_request(&r).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(param), "{e}");
    }
    let r = anthropic_req(
        json!({"model": "m", "max_tokens": 5, "thinking": {"type": "enabled"},
        "messages": [{"role": "user", "content": "hi"}]}),
    );
    let e = to_openai_request(&r).unwrap_err();
    assert_eq!(
        (e.code, e.param.as_deref()),
        (ErrorCode::UnsupportedParameter, Some("thinking"))
    );
    let r = anthropic_req(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
    );
    assert!(
        to_openai_request(&r)
            .unwrap_err()
            .message
            .contains("missing field `text`")
    );
}

#[test]
fn inbound_drops_echoed_thinking_blocks() {
    let r = anthropic_req(json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "..", "signature": "s"}, {"type": "text", "text": "hello"}]}
    ]}));
    let r = to_openai_request(&r).unwrap();
    assert_eq!(r.messages[1].text_content(), "hello");
}

#[test]
fn inbound_response_maps_tool_calls_and_usage() {
    let resp: ChatCompletionResponse = serde_json::from_value(json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1, "model": "my-route",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    }))
    .unwrap();
    let m = from_openai_response(&resp);
    assert_eq!(m.id, "msg_abc");
    assert_eq!(m.model, "my-route");
    assert_eq!(m.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(m.usage, Usage::new(11, 7));
    assert_eq!(
        m.content,
        vec![ContentBlock::ToolUse {
            id: "call_1".into(),
            name: "weather".into(),
            input: json!({"city": "Paris"})
        }]
    );
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
}

#[test]
fn inbound_response_maps_finish_reasons() {
    for (finish, stop) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
    ] {
        let resp: ChatCompletionResponse = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "hi"}}]
        }))
        .unwrap();
        let v = serde_json::to_value(from_openai_response(&resp)).unwrap();
        assert_eq!(v["stop_reason"], stop);
        assert_eq!(v["content"][0]["text"], "hi");
    }
}

// ---- outbound: canonical OpenAI → Anthropic upstream ----

fn openai_tool_conversation() -> ChatCompletionRequest {
    openai_req(json!({
        "model": "claude-x", "user": "u1", "stop": "END", "parallel_tool_calls": false, "top_k": 3,
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "no emojis"},
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rainy"},
            {"role": "user", "content": "and tomorrow?"}
        ]
    }))
}

#[test]
fn outbound_request_merges_turns_and_maps_tools() {
    let r = from_openai_request(&openai_tool_conversation()).unwrap();
    assert_eq!(r.max_tokens, DEFAULT_MAX_TOKENS);
    assert_eq!(r.top_k, Some(3));
    assert_eq!(r.stop_sequences, Some(vec!["END".to_string()]));
    assert_eq!(r.metadata.as_ref().unwrap().user_id.as_deref(), Some("u1"));
    assert_eq!(
        r.tool_choice,
        Some(ToolChoice::Tool {
            name: "weather".into(),
            disable_parallel_tool_use: Some(true)
        })
    );
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(
        v["system"],
        json!([{"type": "text", "text": "be brief"}, {"type": "text", "text": "no emojis"}])
    );
    assert_eq!(v["tools"][0]["input_schema"], json!({"type": "object"}));
    let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    assert_eq!(
        v["messages"][1]["content"][1],
        json!({"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}})
    );
    let last = &v["messages"][2]["content"];
    assert_eq!(
        last[0],
        json!({"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"})
    );
    assert_eq!(last[1]["tool_use_id"], "call_2");
    assert_eq!(last[2], json!({"type": "text", "text": "and tomorrow?"}));
    assert!(v.get("stream").is_none());
}

#[test]
fn outbound_request_maps_images_and_limits() {
    let r = openai_req(
        json!({"model": "m", "max_completion_tokens": 77, "stream": true, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
        ]}]}),
    );
    let r = from_openai_request(&r).unwrap();
    assert_eq!(r.max_tokens, 77);
    assert_eq!(r.stream, Some(true));
    let MessageContent::Blocks(blocks) = &r.messages[0].content else {
        panic!("blocks")
    };
    assert_eq!(
        blocks[1],
        ContentBlock::Image {
            source: ImageSource::Base64 {
                media_type: "image/jpeg".into(),
                data: "/9j/".into()
            }
        }
    );
    assert_eq!(
        blocks[2],
        ContentBlock::Image {
            source: ImageSource::Url {
                url: "https://example.com/cat.png".into()
            }
        }
    );
}

#[test]
fn outbound_errors_name_the_field() {
    let base = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        openai_req(b)
    };
    let cases = [
        (with("n", json!(2)), "n", ErrorCode::UnsupportedParameter),
        (
            with("response_format", json!({"type": "json_object"})),
            "response_format",
            ErrorCode::UnsupportedParameter,
        ),
        (
            with("logprobs", json!(true)),
            "logprobs",
            ErrorCode::UnsupportedParameter,
        ),
        (
            with("tool_choice", json!({"type": "bogus"})),
            "tool_choice",
            ErrorCode::InvalidRequest,
        ),
        (
            with(
                "tools",
                json!([{"type": "code_interpreter", "function": {"name": "x"}}]),
            ),
            "tools[0].type",
            ErrorCode::UnsupportedParameter,
        ),
        (
            with("messages", json!([{"role": "tool", "content": "x"}])),
            "messages[0].tool_call_id",
            ErrorCode::InvalidRequest,
        ),
        (
            with(
                "messages",
                json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
            ),
            "messages[0].content[0].type",
            ErrorCode::UnsupportedParameter,
        ),
        (
            with(
                "messages",
                json!([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]),
            ),
            "messages[0].content[0].type",
            ErrorCode::UnsupportedParameter,
        ),
    ];
    for (req, param, code) in cases {
        let e = from_openai_request(&req).unwrap_err();
        assert_eq!((e.param.as_deref(), e.code), (Some(param), code), "{e}");
    }
    assert!(from_openai_request(&with("n", json!(1))).is_ok());
    assert!(from_openai_request(&with("response_format", json!({"type": "text"}))).is_ok());
}

#[test]
fn outbound_response_maps_tool_use_to_tool_calls() {
    let m: MessagesResponse = serde_json::from_value(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 5}
    }))
    .unwrap();
    let r = to_openai_response(&m);
    let choice = &r.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content.as_deref(), Some("Checking."));
    let call = &choice.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (call.id.as_str(), call.function.name.as_str()),
        ("toolu_9", "weather")
    );
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(r.usage, Some(openai::Usage::new(25, 9)));
    for (stop, finish) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
    ] {
        let mut m = m.clone();
        m.stop_reason = serde_json::from_value(json!(stop)).unwrap();
        assert_eq!(
            to_openai_response(&m).choices[0].finish_reason,
            Some(finish)
        );
    }
}

// ---- round trips ----

#[test]
fn anthropic_request_round_trips_through_openai() {
    let mut original = tool_conversation();
    let back = from_openai_request(&to_openai_request(&original).unwrap()).unwrap();
    // The only reordering: tool results first within a user turn.
    if let MessageContent::Blocks(blocks) = &mut original.messages[2].content {
        blocks.swap(0, 1);
    }
    assert_eq!(back, original);
}

#[test]
fn openai_request_round_trips_through_anthropic() {
    let original = openai_tool_conversation();
    let back = to_openai_request(&from_openai_request(&original).unwrap()).unwrap();
    let kept: Vec<_> = original
        .messages
        .iter()
        .filter(|m| m.role != openai::Role::Developer)
        .collect();
    assert_eq!(back.messages.len(), kept.len());
    for (a, b) in back.messages.iter().zip(kept).skip(1) {
        assert_eq!(
            (a.role, a.text_content(), &a.tool_calls, &a.tool_call_id),
            (b.role, b.text_content(), &b.tool_calls, &b.tool_call_id)
        );
    }
    assert_eq!(back.messages[0].text_content(), "be brief\nno emojis");
    assert_eq!(back.tool_choice, original.tool_choice);
    assert_eq!(back.extra, original.extra);
}

#[test]
fn responses_round_trip() {
    let m: MessagesResponse = serde_json::from_value(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Hi"}, {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": [1, 2]}}],
        "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": 3, "output_tokens": 4}
    }))
    .unwrap();
    assert_eq!(from_openai_response(&to_openai_response(&m)), m);
}

// ---- streams ----

fn chunk(v: Value) -> ChatCompletionChunk {
    let mut base =
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "up"});
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn openai_chunks() -> Vec<ChatCompletionChunk> {
    let tc = |d: Value| {
        chunk(
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [d]}, "finish_reason": null}]}),
        )
    };
    vec![
        chunk(
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}),
        ),
        chunk(
            json!({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]}),
        ),
        chunk(
            json!({"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": null}]}),
        ),
        tc(
            json!({"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}),
        ),
        tc(json!({"index": 0, "function": {"arguments": "{\"x\":"}})),
        tc(json!({"index": 0, "function": {"arguments": "1}"}})),
        tc(
            json!({"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}),
        ),
        chunk(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})),
        chunk(
            json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}}),
        ),
    ]
}

#[test]
fn openai_chunks_become_anthropic_events_in_order() {
    let mut s = OpenAiToAnthropicStream::new("requested-model").with_id("msg_x");
    let mut events: Vec<StreamEvent> = openai_chunks().iter().flat_map(|c| s.push(c)).collect();
    events.extend(s.finish());
    assert!(s.finish().is_empty() && s.is_finished());
    let names: Vec<&str> = events.iter().map(StreamEvent::event_name).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let StreamEvent::MessageStart { message } = &events[0] else {
        panic!()
    };
    assert_eq!(
        (message.id.as_str(), message.model.as_str()),
        ("msg_x", "requested-model")
    );
    let v = serde_json::to_value(&events[5]).unwrap();
    assert_eq!(
        v,
        json!({"type": "content_block_start", "index": 1,
        "content_block": {"type": "tool_use", "id": "call_a", "name": "f", "input": {}}})
    );
    let v = serde_json::to_value(&events[12]).unwrap();
    assert_eq!(v["delta"]["stop_reason"], "tool_use");
    assert_eq!(v["usage"], json!({"output_tokens": 8, "input_tokens": 12}));
}

#[test]
fn empty_openai_stream_still_yields_a_complete_message() {
    let mut s = OpenAiToAnthropicStream::new("m");
    let names: Vec<&str> = s.finish().iter().map(StreamEvent::event_name).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
}

/// Reassembles chunks into (text, [(id, name, arguments)], finish, usage).
type Assembled = (
    String,
    Vec<(String, String, String)>,
    Option<FinishReason>,
    Option<openai::Usage>,
);

fn assemble(chunks: &[ChatCompletionChunk]) -> Assembled {
    let mut out: Assembled = Default::default();
    for c in chunks {
        if c.usage.is_some() {
            out.3 = c.usage;
        }
        for choice in &c.choices {
            out.0
                .push_str(choice.delta.content.as_deref().unwrap_or(""));
            for t in choice.delta.tool_calls.iter().flatten() {
                let i = t.index as usize;
                if out.1.len() <= i {
                    out.1.resize(i + 1, Default::default());
                }
                let f = t.function.clone().unwrap_or_default();
                out.1[i].0.push_str(t.id.as_deref().unwrap_or(""));
                out.1[i].1.push_str(f.name.as_deref().unwrap_or(""));
                out.1[i].2.push_str(f.arguments.as_deref().unwrap_or(""));
            }
            out.2 = choice.finish_reason.or(out.2);
        }
    }
    out
}

#[test]
fn anthropic_events_become_openai_chunks() {
    let events: Vec<StreamEvent> = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " world"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"x\": 1}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
        json!({"type": "message_stop"}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect();
    let mut s = AnthropicToOpenAiStream::new();
    let mut chunks = Vec::new();
    for e in events {
        assert!(!s.is_done());
        chunks.extend(s.push(e).unwrap());
    }
    assert!(s.is_done());
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert!(
        chunks
            .iter()
            .all(|c| c.id == "msg_1" && c.model == "claude-x")
    );
    let last = chunks.last().unwrap();
    assert!(last.choices.is_empty());
    let (text, calls, finish, usage) = assemble(&chunks);
    assert_eq!(text, "Hello world");
    assert_eq!(
        calls,
        vec![("toolu_1".into(), "f".into(), "{\"x\": 1}".into())]
    );
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    assert_eq!(usage, Some(openai::Usage::new(25, 15)));
}

#[test]
fn anthropic_error_event_is_an_error() {
    let mut s = AnthropicToOpenAiStream::new();
    let e: StreamEvent = serde_json::from_value(
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
    .unwrap();
    let err = s.push(e).unwrap_err();
    assert_eq!(err.code, ErrorCode::Overloaded);
    assert!(err.message.contains("Overloaded"));
}

#[test]
fn streams_round_trip_openai_to_anthropic_to_openai() {
    let original = openai_chunks();
    let mut inbound = OpenAiToAnthropicStream::new("m");
    let mut events: Vec<StreamEvent> = original.iter().flat_map(|c| inbound.push(c)).collect();
    events.extend(inbound.finish());
    let mut outbound = AnthropicToOpenAiStream::new();
    let chunks: Vec<ChatCompletionChunk> = events
        .into_iter()
        .flat_map(|e| outbound.push(e).unwrap())
        .collect();
    assert!(outbound.is_done());
    assert_eq!(assemble(&chunks), assemble(&original));
}
