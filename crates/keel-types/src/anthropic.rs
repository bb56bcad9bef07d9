//! Anthropic Messages API shapes and their translation to and from the OpenAI shapes.
//!
//! Two directions, both pure (no I/O):
//! - inbound ([`inbound`], [`inbound_stream`]): keel *serves* `POST /v1/messages`. An Anthropic
//!   request becomes keel's canonical OpenAI request ([`to_openai_request`]); the OpenAI answer
//!   goes back as an Anthropic message ([`from_openai_response`]) or, streaming, as Anthropic
//!   events ([`OpenAiToAnthropicStream`]).
//! - outbound ([`outbound`], [`outbound_stream`]): keel *calls* an Anthropic upstream. The
//!   canonical request becomes a Messages request ([`from_openai_request`]); the upstream's
//!   message or events come back as OpenAI shapes ([`to_openai_response`],
//!   [`AnthropicToOpenAiStream`]).
//!
//! Translation errors are [`ApiError`](crate::ApiError)s whose `param` names the offending
//! field as a path (`messages[1].content[0].type`).
//!
//! Code map:
//! - [`types`]: request and response bodies and content blocks.
//! - [`events`]: the streaming (SSE) events.
//! - `tests.rs`: translation tests (both directions, round trips, streams, errors).

pub mod events;
pub mod inbound;
pub mod inbound_stream;
pub mod outbound;
pub mod outbound_stream;
pub mod types;

#[cfg(test)]
mod tests;

pub use events::{BlockDelta, DeltaUsage, MessageDeltaBody, StreamError, StreamEvent};
pub use inbound::{from_openai_response, to_openai_request};
pub use inbound_stream::OpenAiToAnthropicStream;
pub use outbound::{DEFAULT_MAX_TOKENS, from_openai_request, to_openai_response};
pub use outbound_stream::AnthropicToOpenAiStream;
pub use types::*;

/// The `anthropic-version` header value keel speaks.
pub const API_VERSION: &str = "2023-06-01";
