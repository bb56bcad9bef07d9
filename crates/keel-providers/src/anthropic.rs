//! Anthropic Messages adapter: `POST {base_url}/messages` with `x-api-key` and
//! `anthropic-version`, translating keel's canonical OpenAI shapes with
//! [`keel_types::anthropic`] (requests, responses, tool use, streaming events).

use crate::openai_compat::http::Upstream;
use crate::sse;
use crate::{ChunkStream, Provider, ProviderError};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use keel_config::model::HttpProviderConfig;
use keel_types::anthropic::{
    self, AnthropicToOpenAiStream, MessagesRequest, MessagesResponse, StreamEvent,
};
use keel_types::openai::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest, EmbeddingResponse,
};
use keel_types::{ApiError, ErrorCode, Secret};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

/// A provider for Anthropic's Messages API. Cheap to share; holds one HTTP client.
#[derive(Debug)]
pub struct AnthropicProvider {
    name: String,
    upstream: Upstream,
    messages_url: Url,
}

impl AnthropicProvider {
    /// Builds the client for `cfg` (deadlines as for
    /// [`OpenAiCompatProvider`](crate::openai_compat::OpenAiCompatProvider)). `api_key`, if
    /// any, is sent as `x-api-key`.
    pub fn new(
        name: String,
        cfg: &HttpProviderConfig,
        api_key: Option<Secret<String>>,
    ) -> Result<Self, ProviderError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(anthropic::API_VERSION),
        );
        let auth = api_key
            .as_ref()
            .map(|k| (HeaderName::from_static("x-api-key"), k.expose().clone()));
        let upstream = Upstream::new(cfg, auth, headers, api_key)?;
        Ok(Self {
            name,
            messages_url: upstream.url("messages")?,
            upstream,
        })
    }

    /// Overrides the longest silence allowed between two stream events (default: `timeout`).
    pub fn with_stream_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.upstream.idle_timeout = idle_timeout;
        self
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn chat(
        &self,
        request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChatCompletionResponse, ProviderError>> {
        Box::pin(async move {
            let mut body = translate(&request)?;
            body.stream = None;
            let response: MessagesResponse = self
                .upstream
                .post_json(self.messages_url.clone(), &body)
                .await?;
            Ok(anthropic::to_openai_response(&response))
        })
    }

    fn chat_stream(
        &self,
        request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let mut body = translate(&request)?;
            body.stream = Some(true);
            let response = self
                .upstream
                .open_stream(self.messages_url.clone(), &body)
                .await?;
            Ok(chunk_stream(sse::events(
                response,
                self.upstream.idle_timeout,
            )))
        })
    }

    fn embed(
        &self,
        _request: EmbeddingRequest,
    ) -> BoxFuture<'_, Result<EmbeddingResponse, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::Unsupported {
                param: "model".into(),
                message: format!(
                    "provider {} (Anthropic) does not serve embeddings",
                    self.name
                ),
            })
        })
    }
}

/// The canonical request as a Messages request; what cannot be expressed is a client error.
fn translate(request: &ChatCompletionRequest) -> Result<MessagesRequest, ProviderError> {
    anthropic::from_openai_request(request).map_err(|e| client_error(&e))
}

fn client_error(error: &ApiError) -> ProviderError {
    match error.code {
        ErrorCode::UnsupportedParameter => ProviderError::Unsupported {
            param: error.param.clone().unwrap_or_default(),
            message: error.message.clone(),
        },
        _ => ProviderError::InvalidRequest {
            param: error.param.clone(),
            message: error.message.clone(),
        },
    }
}

/// OpenAI chunks from Anthropic events. Ends cleanly only at `message_stop`; a body that ends
/// before it, an event that is not valid JSON, or an `error` event ends the stream with an
/// error item.
fn chunk_stream(mut events: BoxStream<'static, Result<sse::Event, ProviderError>>) -> ChunkStream {
    Box::pin(async_stream::stream! {
        let mut translator = AnthropicToOpenAiStream::new();
        loop {
            let event = match events.next().await {
                None => {
                    yield Err(ProviderError::Stream("upstream stream ended before message_stop".into()));
                    break;
                }
                Some(Err(error)) => {
                    yield Err(error);
                    break;
                }
                Some(Ok(event)) => event,
            };
            let data = event.data.trim();
            if data.is_empty() {
                continue;
            }
            let event: StreamEvent = match serde_json::from_str(data) {
                Ok(event) => event,
                Err(error) => {
                    yield Err(ProviderError::InvalidResponse(format!("malformed stream event: {error}")));
                    break;
                }
            };
            match translator.push(event) {
                Ok(chunks) => {
                    for chunk in chunks {
                        yield Ok(chunk);
                    }
                }
                Err(error) => {
                    yield Err(ProviderError::Stream(error.message));
                    break;
                }
            }
            if translator.is_done() {
                break;
            }
        }
    })
}
