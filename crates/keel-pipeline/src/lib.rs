//! The request path of DESIGN.md §2 as explicit stages composed into one [`Pipeline`].
//!
//! Code map:
//! - [`admit`]: the admit stage: estimate, reserve (rate limits, budgets, shedding), settle.
//! - [`context`]: `RequestContext`, who is asking and when (id, tenant, key, deadline).
//! - [`stages`]: the ordered list of stages and the per-request record of what each did.
//! - [`validate`]: request validation with errors naming the field.
//! - [`breaker`]: a circuit breaker per model, shared by its candidates.
//! - [`catalog`]: resolves a requested name (route or model) to ordered candidates.
//! - [`routing`]: per-route strategies (fallback, weighted, least latency, cost, cascade)
//!   and the request's `keel.route` preferences: which candidate goes first, and why.
//! - [`retrieve`]: the context stage's retrieval step (sources injected as untrusted, citations).
//! - [`collections`]: the retrieval `Library` built from `[retrieval]` over the catalog.
//! - [`attempts`]: the fallback loop over candidates, streaming ones peeked before commit.
//! - [`record`]: builds the request-log record and the trace (a span per stage and attempt).
//! - [`trace`]: the raw trace (instants only) and how a kept trace becomes spans and content.
//! - [`observer`]: `Observer`, which fans a finished request out to log, metrics, drift, OTLP, store.
//! - [`stream`]: wraps a served stream to measure it and record it when it ends or drops.
//! - [`recover`]: mid-stream recovery, a broken stream continued on another model.
//! - [`hedge`]: hedged non-streaming requests, the next model started when one is slow.
//! - [`pipeline`]: `Pipeline::chat`, `chat_stream`, `embed`, `models`.
//! - [`runtime`]: `Runtime`, the store, writer, providers and pipeline built from a config.

pub mod admit;
pub mod attempts;
pub mod breaker;
pub mod catalog;
pub mod collections;
pub mod context;
pub mod guard;
pub mod guard_stream;
pub mod hedge;
pub mod observer;
pub mod pipeline;
pub mod record;
pub mod recover;
pub mod retention;
pub mod retrieve;
pub mod routing;
pub mod runtime;
pub mod stages;
pub mod stream;
pub mod trace;
pub mod validate;

pub use catalog::Catalog;
pub use context::RequestContext;
pub use observer::Observer;
pub use pipeline::{ChatStream, Pipeline};
pub use runtime::{Runtime, StartError};
