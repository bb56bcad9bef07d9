//! `[retrieval]` (where collections live, how documents are fetched and bounded) and a route's
//! `retrieval` step (which collection grounds its answers), with their checks.

use crate::defaults;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalConfig {
    /// Directory of every tenant's collections.
    #[serde(default = "defaults::collections_dir")]
    pub dir: PathBuf,
    /// The embeddings model of a new collection unless its creator names another.
    #[serde(default = "defaults::retrieval_embedding_model")]
    pub embedding_model: String,
    /// Largest document accepted (uploaded, inline or fetched), in bytes.
    #[serde(default = "defaults::max_document_bytes")]
    pub max_document_bytes: usize,
    /// How long extracting one PDF may take before it is reported as timed out.
    #[serde(default = "defaults::pdf_timeout", with = "humantime_serde")]
    pub pdf_timeout: Duration,
    #[serde(default)]
    pub fetch: FetchConfig,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        Self {
            dir: defaults::collections_dir(),
            embedding_model: defaults::retrieval_embedding_model(),
            max_document_bytes: defaults::max_document_bytes(),
            pdf_timeout: defaults::pdf_timeout(),
            fetch: FetchConfig::default(),
        }
    }
}

/// URL ingestion. Loopback, private, link-local (cloud metadata) and other internal
/// addresses are refused, at every redirect, unless allowed here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchConfig {
    /// Allow every internal address (for a trusted network only).
    #[serde(default)]
    pub allow_private: bool,
    /// Host names, addresses or CIDR ranges allowed even if internal (`"127.0.0.1"`).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// The whole fetch, redirects included.
    #[serde(default = "defaults::fetch_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "defaults::fetch_max_redirects")]
    pub max_redirects: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_hosts: Vec::new(),
            timeout: defaults::fetch_timeout(),
            max_redirects: defaults::fetch_max_redirects(),
        }
    }
}

/// How a route's retrieval step searches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrievalMode {
    Bm25,
    Dense,
    #[default]
    Hybrid,
}

/// A route's retrieval step: before the model is called, the last user message searches
/// `collection` (of the caller's tenant) and the passages found are given to the model as
/// numbered, untrusted sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRetrievalConfig {
    pub collection: String,
    #[serde(default = "defaults::retrieval_top_k")]
    pub top_k: usize,
    /// Passages less similar than this (cosine; BM25 score in bm25 mode) are left out.
    #[serde(default)]
    pub min_score: Option<f32>,
    #[serde(default)]
    pub mode: RetrievalMode,
    /// Request `metadata` keys whose values become equality filters on document metadata.
    #[serde(default)]
    pub filters_from_metadata: Vec<String>,
}

/// Checks of `[retrieval]` and of each route's `retrieval`, as (path, message).
pub fn check(
    r: &RetrievalConfig,
    routes: &std::collections::BTreeMap<String, crate::model::RouteConfig>,
    err: &mut impl FnMut(String, String),
) {
    if r.max_document_bytes == 0 {
        err(
            "retrieval.max_document_bytes".into(),
            "must be positive".into(),
        );
    }
    if r.fetch.max_redirects > 20 {
        err(
            "retrieval.fetch.max_redirects".into(),
            "must be at most 20".into(),
        );
    }
    for (name, route) in routes {
        let Some(step) = &route.retrieval else {
            continue;
        };
        let path = format!("routes.{name}.retrieval");
        let valid_name = !step.collection.is_empty()
            && step.collection.len() <= 64
            && step
                .collection
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            err(
                format!("{path}.collection"),
                "a collection name is 1 to 64 letters, digits, '_' or '-'".into(),
            );
        }
        if step.top_k == 0 || step.top_k > 20 {
            err(format!("{path}.top_k"), "must be between 1 and 20".into());
        }
    }
}
