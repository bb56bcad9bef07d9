//! Retrieval: collections of documents per tenant, chunked, embedded and indexed twice (BM25
//! with tantivy, vectors with an own HNSW), searched by keyword, by meaning or both, with
//! metadata filters applied inside each search.
//!
//! Code map:
//! - [`extract`]: bytes of a text, Markdown, HTML or PDF document → text (Markdown-shaped
//!   where the source had structure); corrupt, binary, empty and oversized inputs are errors
//!   with a reason, never a panic.
//! - [`fetch`]: URL ingestion guarded against SSRF (every address and every redirect checked).
//! - [`chunk`]: structure-aware, token-sized chunks with overlap, offsets and heading paths.
//! - [`embed`]: the `Embedder` trait (implemented by the pipeline over any embeddings model).
//! - [`store`]: a collection's SQLite file, the source of truth.
//! - [`bm25`]: the tantivy keyword index; [`hnsw`]: the vector index (cosine, filtered
//!   search, tombstones, atomic snapshots).
//! - [`filter`]: metadata filters, evaluated per chunk inside both searches.
//! - [`fusion`]: reciprocal rank fusion, weighted fusion, MMR.
//! - [`collection`]: one collection: open and reconcile, ingest, delete, change model, search.
//! - [`library`]: every tenant's collections; ingestion from text, files and URLs.

pub mod bm25;
pub mod chunk;
pub mod collection;
pub mod embed;
pub mod extract;
pub mod fetch;
pub mod filter;
pub mod fusion;
pub mod hnsw;
pub mod library;
pub mod store;

pub use collection::{Collection, CollectionError, Hit, Mode, SearchQuery, Settings};
pub use library::{Body, IngestReport, Library, Source};
