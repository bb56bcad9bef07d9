//! The Anthropic adapter: translation on the wire, streaming, tools, unsupported fields.

use crate::support::{KEY, Kind, assemble, chat, drain, on_mock};
use keel_providers::ProviderError;
use keel_testkit::{Behavior, MockUpstream};
use keel_types::openai::{
    ChatCompletionRequest, EmbeddingInput, EmbeddingRequest, FinishReason, Usage,
};
use serde_json::{Value, json};

#[tokio::test]
async fn chat_translates_the_request_and_sends_the_key() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::Anthropic, &mock);
    let resp = p.chat(chat("hello world")).await.unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("echo: hello world")
    );
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(resp.usage, Some(Usage::new(4, 3)));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert!(seen.header("authorization").is_none());
    assert_eq!(seen.body["system"], "be brief");
    assert_eq!(seen.body["max_tokens"], 4096);
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "user", "content": "hello world"}])
    );
    assert!(seen.body.get("stream").is_none());
}

#[tokio::test]
async fn stream_reassembles_with_a_final_usage_chunk() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::Anthropic, &mock);
    let (chunks, error) = drain(p.chat_stream(chat("hello streaming world")).await.unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    let a = assemble(&chunks);
    assert_eq!(a.text, "echo: hello streaming world");
    assert_eq!(a.finish, Some(FinishReason::Stop));
    assert_eq!(a.usage, Some(Usage::new(5, 4)));
    assert!(a.usage_chunk_is_last);
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    assert_eq!(mock.last_request().unwrap().body["stream"], true);
}

#[tokio::test]
async fn tool_use_translates_both_ways() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::Anthropic, &mock);
    let args = json!({"city": "Paris"});
    mock.script([
        Behavior::tool_call("weather", args.clone()),
        Behavior::tool_call("weather", args.clone()),
    ]);
    let req: ChatCompletionRequest = serde_json::from_value(json!({
        "model": "claude-mock",
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "messages": [
            {"role": "user", "content": "weather in Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny"},
            {"role": "user", "content": "and Paris?"}
        ]
    }))
    .unwrap();

    let resp = p.chat(req.clone()).await.unwrap();
    let call = &resp.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.name, "weather");
    assert!(call.id.starts_with("toolu_"));
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        args
    );
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));

    let body = mock.last_request().unwrap().body;
    assert_eq!(
        body["tools"][0],
        json!({"name": "weather", "input_schema": {"type": "object"}})
    );
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Rome"}})
    );
    assert_eq!(
        body["messages"][2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"},
            {"type": "text", "text": "and Paris?"}
        ])
    );

    let (chunks, error) = drain(p.chat_stream(req).await.unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    let a = assemble(&chunks);
    assert_eq!(a.tool_calls.len(), 1);
    assert_eq!(a.tool_calls[0].1, "weather");
    assert_eq!(
        serde_json::from_str::<Value>(&a.tool_calls[0].2).unwrap(),
        args
    );
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn unsupported_fields_fail_before_any_request() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::Anthropic, &mock);
    let mut req = chat("x");
    req.n = Some(2);
    let e = p.chat(req).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Unsupported { param, .. } if param == "n"),
        "{e:?}"
    );
    assert!(!e.retryable());
    let e = p
        .embed(EmbeddingRequest {
            model: "m".into(),
            input: EmbeddingInput::One("x".into()),
            encoding_format: None,
            dimensions: None,
            user: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Unsupported { param, .. } if param == "model"),
        "{e:?}"
    );
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn anthropic_status_errors_are_parsed() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::Anthropic, &mock);
    mock.push(Behavior::Status {
        code: 529,
        body: Some(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into(),
        ),
        retry_after: Some("2".into()),
    });
    let e = p.chat(chat("x")).await.unwrap_err();
    let ProviderError::Status {
        status,
        message,
        retry_after,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(
        (*status, message.as_str(), *retry_after),
        (529, "Overloaded", Some(std::time::Duration::from_secs(2)))
    );
    assert!(e.retryable());
}
