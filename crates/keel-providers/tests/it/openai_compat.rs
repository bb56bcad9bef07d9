//! The OpenAI-compatible adapter: plain, streaming, tools, embeddings, status errors.

use crate::support::{KEY, Kind, assemble, chat, drain, on_mock};
use keel_providers::ProviderError;
use keel_testkit::{Behavior, MockUpstream};
use keel_types::openai::{EmbeddingInput, EmbeddingRequest, EmbeddingVector, FinishReason, Usage};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn chat_returns_the_echo_and_sends_the_bearer_key() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::OpenAi, &mock);
    let mut req = chat("hello world");
    // A client's streaming leftovers must not reach a non-streaming upstream call.
    req.stream_options = Some(Default::default());
    let resp = p.chat(req).await.unwrap();
    assert_eq!(
        resp.choices[0].message.content.as_deref(),
        Some("echo: hello world")
    );
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(resp.usage, Some(Usage::new(4, 3)));
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(seen.body.get("stream_options").is_none());
    assert_eq!(seen.body["messages"][1]["content"], "hello world");
}

#[tokio::test]
async fn stream_reassembles_and_always_asks_for_usage() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::OpenAi, &mock);
    let (chunks, error) = drain(p.chat_stream(chat("hello streaming world")).await.unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    assert!(chunks.len() > 3);
    let a = assemble(&chunks);
    assert_eq!(a.text, "echo: hello streaming world");
    assert_eq!(a.finish, Some(FinishReason::Stop));
    assert_eq!(a.usage, Some(Usage::new(5, 4)));
    assert!(a.usage_chunk_is_last);
    let body = mock.last_request().unwrap().body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn tool_calls_come_back_plain_and_streamed() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::OpenAi, &mock);
    let args = json!({"city": "Paris", "unit": "c"});
    mock.script([
        Behavior::tool_call("weather", args.clone()),
        Behavior::tool_call("weather", args.clone()),
    ]);
    let resp = p.chat(chat("weather?")).await.unwrap();
    let call = &resp.choices[0].message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.name, "weather");
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        args
    );
    assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::ToolCalls));

    let (chunks, error) = drain(p.chat_stream(chat("weather?")).await.unwrap()).await;
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
async fn embeddings_are_floats() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::OpenAi, &mock);
    let req = EmbeddingRequest {
        model: "mock-embedding".into(),
        input: EmbeddingInput::Many(vec!["a b".into(), "c".into()]),
        encoding_format: None,
        dimensions: None,
        user: None,
    };
    let resp = p.embed(req).await.unwrap();
    assert_eq!(resp.data.len(), 2);
    let EmbeddingVector::Float(v) = &resp.data[1].embedding else {
        panic!("floats")
    };
    assert_eq!(v.len(), 8);
    assert_eq!(resp.usage.prompt_tokens, 3);
    let seen = mock.last_request().unwrap();
    assert_eq!(
        (seen.path.as_str(), &seen.body["encoding_format"]),
        ("/v1/embeddings", &json!("float"))
    );
}

#[tokio::test]
async fn status_errors_carry_message_and_retry_after() {
    let mock = MockUpstream::start().await;
    let p = on_mock(Kind::OpenAi, &mock);
    let date = "Wed, 21 Oct 2015 07:28:00 GMT";
    mock.script([
        Behavior::rate_limited(3),
        Behavior::Status {
            code: 503,
            body: Some(r#"{"error":{"message":"engine overloaded","type":"server_error"}}"#.into()),
            retry_after: Some(date.into()),
        },
        Behavior::Status {
            code: 400,
            body: Some("plain text, not json".into()),
            retry_after: None,
        },
        Behavior::rate_limited(1),
    ]);
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
        (
            429,
            "mock upstream status 429",
            Some(Duration::from_secs(3))
        )
    );
    assert!(e.retryable());

    let e = p.chat(chat("x")).await.unwrap_err();
    let ProviderError::Status {
        status,
        message,
        retry_after,
    } = &e
    else {
        panic!("{e:?}")
    };
    // A date in the past means "retry now".
    assert_eq!(
        (*status, message.as_str(), *retry_after),
        (503, "engine overloaded", Some(Duration::ZERO))
    );
    assert!(e.retryable());

    let e = p.chat(chat("x")).await.unwrap_err();
    let ProviderError::Status {
        status, message, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!((*status, message.as_str()), (400, "plain text, not json"));
    assert!(!e.retryable());

    // Streams surface the status when opened, before any chunk.
    let Err(e) = p.chat_stream(chat("x")).await else {
        panic!("stream opened")
    };
    assert!(
        matches!(
            e,
            ProviderError::Status {
                status: 429,
                retry_after: Some(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn no_key_means_no_authorization_header() {
    let mock = MockUpstream::start().await;
    let cfg = crate::support::config(&mock.base_url(), Duration::from_secs(5));
    let p = keel_providers::openai_compat::OpenAiCompatProvider::new("plain".into(), &cfg, None)
        .unwrap();
    use keel_providers::Provider as _;
    p.chat(chat("hi")).await.unwrap();
    assert!(
        mock.last_request()
            .unwrap()
            .header("authorization")
            .is_none()
    );
}
