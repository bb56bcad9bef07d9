//! Retrieval: collections of documents per tenant, chunked, embedded and indexed twice (BM25
//! with tantivy, vectors with an own HNSW), searched by keyword, by meaning or both, with
//! metadata filters applied inside each search.
//!
//! Code map:
//! - [`extract`]: bytes of a text, Markdown, HTML or PDF document → text (Markdown-shaped
//!   where the source had structure); corrupt, binary, empty and oversized inputs are errors
//!   with a reason, never a panic.
//! - [`fetch`]: URL ingestion guarded against SSRF (every address and every redirect checked).
//! - [`hnsw`]: the vector index (cosine over L2-normalised vectors, filtered search,
//!   tombstones, atomic save and load).

pub mod extract;
pub mod fetch;
pub mod hnsw;
