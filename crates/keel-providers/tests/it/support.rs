//! Shared helpers: provider construction against a mock, requests, stream draining.

use futures::StreamExt;
use keel_config::model::HttpProviderConfig;
use keel_providers::anthropic::AnthropicProvider;
use keel_providers::openai_compat::OpenAiCompatProvider;
use keel_providers::{ChunkStream, Provider, ProviderError};
use keel_testkit::MockUpstream;
use keel_types::Secret;
use keel_types::openai::{ChatCompletionChunk, ChatCompletionRequest, FinishReason, Usage};
use serde_json::json;
use std::time::Duration;

pub const KEY: &str = "sk-test-very-secret-0123456789";

/// Which adapter a fault test runs against.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    OpenAi,
    Anthropic,
}

pub const KINDS: [Kind; 2] = [Kind::OpenAi, Kind::Anthropic];

pub fn config(base_url: &str, timeout: Duration) -> HttpProviderConfig {
    HttpProviderConfig {
        base_url: base_url.to_owned(),
        api_key_env: None,
        timeout,
        connect_timeout: Duration::from_secs(2),
        stream_idle_timeout: None,
    }
}

pub fn provider(kind: Kind, base_url: &str, timeout: Duration) -> Box<dyn Provider> {
    let cfg = config(base_url, timeout);
    let key = Some(Secret::new(KEY.to_owned()));
    match kind {
        Kind::OpenAi => Box::new(OpenAiCompatProvider::new("mock".into(), &cfg, key).unwrap()),
        Kind::Anthropic => Box::new(AnthropicProvider::new("mock".into(), &cfg, key).unwrap()),
    }
}

/// The concrete provider's `Debug` output (the trait object has none).
pub fn debug_of(kind: Kind, base_url: &str) -> String {
    let cfg = config(base_url, Duration::from_secs(1));
    let key = Some(Secret::new(KEY.to_owned()));
    match kind {
        Kind::OpenAi => format!(
            "{:?}",
            OpenAiCompatProvider::new("mock".into(), &cfg, key).unwrap()
        ),
        Kind::Anthropic => format!(
            "{:?}",
            AnthropicProvider::new("mock".into(), &cfg, key).unwrap()
        ),
    }
}

pub fn on_mock(kind: Kind, mock: &MockUpstream) -> Box<dyn Provider> {
    provider(kind, &mock.base_url(), Duration::from_secs(10))
}

pub fn chat(text: &str) -> ChatCompletionRequest {
    serde_json::from_value(json!({
        "model": "mock-model",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    }))
    .unwrap()
}

/// Every item up to and including the first error; asserts nothing follows an error.
pub async fn drain(mut stream: ChunkStream) -> (Vec<ChatCompletionChunk>, Option<ProviderError>) {
    let mut chunks = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => chunks.push(chunk),
            Err(error) => {
                assert!(stream.next().await.is_none(), "items after an error");
                return (chunks, Some(error));
            }
        }
    }
    (chunks, None)
}

/// A stream reassembled: text, tool calls `(id, name, arguments)`, finish reason, usage.
#[derive(Debug, Default)]
pub struct Assembled {
    pub text: String,
    pub tool_calls: Vec<(String, String, String)>,
    pub finish: Option<FinishReason>,
    pub usage: Option<Usage>,
    pub usage_chunk_is_last: bool,
}

pub fn assemble(chunks: &[ChatCompletionChunk]) -> Assembled {
    let mut out = Assembled::default();
    for chunk in chunks {
        if chunk.usage.is_some() {
            out.usage = chunk.usage;
        }
        for choice in &chunk.choices {
            out.text
                .push_str(choice.delta.content.as_deref().unwrap_or(""));
            for call in choice.delta.tool_calls.iter().flatten() {
                let i = call.index as usize;
                if out.tool_calls.len() <= i {
                    out.tool_calls.resize(i + 1, Default::default());
                }
                let f = call.function.clone().unwrap_or_default();
                out.tool_calls[i]
                    .0
                    .push_str(call.id.as_deref().unwrap_or(""));
                out.tool_calls[i]
                    .1
                    .push_str(f.name.as_deref().unwrap_or(""));
                out.tool_calls[i]
                    .2
                    .push_str(f.arguments.as_deref().unwrap_or(""));
            }
            out.finish = choice.finish_reason.or(out.finish);
        }
    }
    out.usage_chunk_is_last = chunks
        .last()
        .is_some_and(|c| c.choices.is_empty() && c.usage.is_some());
    out
}
