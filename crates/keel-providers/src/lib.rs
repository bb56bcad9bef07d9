//! The `Provider` trait and its adapters: OpenAI-compatible HTTP, Anthropic Messages, embedded
//! local models.
//!
//! Code map:
//! - [`error`]: `ProviderError`, category variants that know their public code and whether a
//!   retry (or a fallback to another model) can help. Routers decide from these, not strings.
//! - [`openai_compat`]: one adapter for every server that speaks OpenAI's protocol (OpenAI,
//!   vLLM, Ollama, llama.cpp server, Groq, Together...).
//! - [`anthropic`]: Anthropic Messages adapter (request, response, streaming, tool use).
//! - [`local`]: the embedded candle models from `keel-local`.
//! - [`registry`]: builds one provider per configured `[providers.*]` entry.
//! - [`sse`]: decoding of upstream server-sent events, with an idle timeout between events.
//!
//! Requests reach a provider in keel's canonical (OpenAI) shape with `model` already set to
//! the upstream id. A chat stream yields OpenAI chunks and, where the upstream reports it,
//! ends with a usage-only chunk (adapters always ask upstreams for usage; the server strips
//! it when the client did not ask).

pub mod anthropic;
pub mod error;
pub mod local;
pub mod openai_compat;
pub mod registry;
pub mod sse;

pub use error::ProviderError;
pub use registry::ProviderRegistry;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use keel_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest,
    EmbeddingResponse,
};

/// A stream of chat chunks from one upstream attempt.
pub type ChunkStream = BoxStream<'static, Result<ChatCompletionChunk, ProviderError>>;

/// One model backend. Implementations are cheap to share (`Arc<dyn Provider>`), hold one HTTP
/// client (or one local engine) each, and never retry: retries and fallback belong to the
/// router, which reads [`ProviderError::retryable`].
///
/// Cancel safety: dropping a returned future or stream aborts the upstream request (HTTP) or
/// frees the local decoding slot at the next token.
pub trait Provider: Send + Sync {
    /// The configured provider name (`[providers.<name>]`), for logs and errors.
    fn name(&self) -> &str;

    /// Whether the provider can serve now. HTTP providers always can; the local provider is
    /// not ready until its models are fetched and loaded. `/readyz` is the AND of these.
    fn ready(&self) -> bool {
        true
    }

    /// A non-streaming chat completion. `request.model` is the upstream model id.
    fn chat(
        &self,
        request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChatCompletionResponse, ProviderError>>;

    /// A streaming chat completion. Resolves once the upstream accepted the request (its
    /// response headers arrived), so connection and status errors surface here, before any
    /// byte reaches the client.
    fn chat_stream(
        &self,
        request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChunkStream, ProviderError>>;

    /// Embeddings, always as float vectors (the server encodes base64 itself).
    fn embed(
        &self,
        request: EmbeddingRequest,
    ) -> BoxFuture<'_, Result<EmbeddingResponse, ProviderError>>;
}
