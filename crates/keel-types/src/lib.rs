//! Wire types shared by every keel crate: OpenAI and Anthropic request/response shapes, ids,
//! the error taxonomy and `Secret<T>`.
//!
//! Code map:
//! - [`error`]: `ApiError` and `ErrorCode`, the one table of public code → type → HTTP status.
//! - [`openai`]: OpenAI chat completions (plain and SSE chunks), embeddings and models. These
//!   are also keel's canonical internal request/response shapes.
//! - [`anthropic`]: Anthropic Messages API shapes, translated to and from [`openai`].
//! - [`report`]: `KeelReport`, the `keel` object on answers (route, attempts, stages).
//! - [`secret`]: `Secret<T>`, a value that never prints.
//! - [`ids`]: request and response id generation.
//! - [`trace`]: spans, trace records and W3C trace context, shared by the pipeline, the
//!   exporter, the trace store and the API.

pub mod anthropic;
pub mod error;
pub mod ids;
pub mod openai;
pub mod report;
pub mod secret;
pub mod trace;

pub use error::{ApiError, ErrorCode};
pub use report::{AttemptRecord, KeelReport};
pub use secret::Secret;
