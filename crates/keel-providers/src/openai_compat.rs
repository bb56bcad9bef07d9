//! One adapter for every server that speaks OpenAI's protocol (OpenAI, vLLM, Ollama,
//! llama.cpp server, Groq, Together...): `POST {base_url}/chat/completions` (plain and SSE)
//! and `POST {base_url}/embeddings`, with a Bearer key when one is configured.
//!
//! Code map:
//! - [`http`]: the HTTP plumbing this adapter shares with [`crate::anthropic`] (client,
//!   deadlines, error mapping, `Retry-After`).

pub(crate) mod http;

use self::http::{Upstream, upstream_message};
use crate::sse;
use crate::{ChunkStream, Provider, ProviderError};
use futures::StreamExt;
use futures::future::BoxFuture;
use keel_config::model::HttpProviderConfig;
use keel_types::Secret;
use keel_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest,
    EmbeddingResponse, EncodingFormat, StreamOptions,
};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use std::time::Duration;

/// A provider for an OpenAI-compatible server. Cheap to share; holds one HTTP client.
#[derive(Debug)]
pub struct OpenAiCompatProvider {
    name: String,
    upstream: Upstream,
    chat_url: Url,
    embeddings_url: Url,
}

impl OpenAiCompatProvider {
    /// Builds the client for `cfg` (`connect_timeout`; `timeout` bounds a whole non-streaming
    /// call, and a stream's wait for headers and for each next event). `api_key`, if any, is
    /// sent as `Authorization: Bearer`.
    pub fn new(
        name: String,
        cfg: &HttpProviderConfig,
        api_key: Option<Secret<String>>,
    ) -> Result<Self, ProviderError> {
        let auth = api_key
            .as_ref()
            .map(|k| (AUTHORIZATION, format!("Bearer {}", k.expose())));
        let upstream = Upstream::new(cfg, auth, HeaderMap::new(), api_key)?;
        Ok(Self {
            name,
            chat_url: upstream.url("chat/completions")?,
            embeddings_url: upstream.url("embeddings")?,
            upstream,
        })
    }

    /// Overrides the longest silence allowed between two stream events (default: `timeout`).
    pub fn with_stream_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.upstream.idle_timeout = idle_timeout;
        self
    }
}

impl Provider for OpenAiCompatProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn chat(
        &self,
        mut request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChatCompletionResponse, ProviderError>> {
        Box::pin(async move {
            // `stream_options` without `stream` is a 400 at OpenAI.
            request.stream = None;
            request.stream_options = None;
            self.upstream
                .post_json(self.chat_url.clone(), &request)
                .await
        })
    }

    fn chat_stream(
        &self,
        mut request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            request.stream = Some(true);
            request.stream_options = Some(StreamOptions {
                include_usage: Some(true),
            });
            let response = self
                .upstream
                .open_stream(self.chat_url.clone(), &request)
                .await?;
            Ok(chunk_stream(sse::events(
                response,
                self.upstream.idle_timeout,
            )))
        })
    }

    fn embed(
        &self,
        mut request: EmbeddingRequest,
    ) -> BoxFuture<'_, Result<EmbeddingResponse, ProviderError>> {
        Box::pin(async move {
            request.encoding_format = Some(EncodingFormat::Float);
            self.upstream
                .post_json(self.embeddings_url.clone(), &request)
                .await
        })
    }
}

/// OpenAI chunks from SSE events. Ends cleanly only at `data: [DONE]`; a body that ends
/// before it, a chunk that is not valid JSON, or an in-stream `{"error": ...}` ends the stream
/// with an error item, so a cut-off answer never passes for a complete one.
fn chunk_stream(
    mut events: futures::stream::BoxStream<'static, Result<sse::Event, ProviderError>>,
) -> ChunkStream {
    Box::pin(async_stream::stream! {
        loop {
            let event = match events.next().await {
                None => {
                    yield Err(ProviderError::Stream("upstream stream ended before [DONE]".into()));
                    break;
                }
                Some(Err(error)) => {
                    yield Err(error);
                    break;
                }
                Some(Ok(event)) => event,
            };
            let data = event.data.trim();
            if sse::is_done_sentinel(data) {
                break;
            }
            if data.is_empty() {
                continue;
            }
            match serde_json::from_str::<ChatCompletionChunk>(data) {
                Ok(chunk) => yield Ok(chunk),
                Err(error) => {
                    yield Err(match upstream_message(data.as_bytes()).filter(|_| data.contains("\"error\"")) {
                        Some(message) => ProviderError::Stream(message),
                        None => ProviderError::InvalidResponse(format!("malformed stream chunk: {error}")),
                    });
                    break;
                }
            }
        }
    })
}
