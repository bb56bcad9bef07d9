//! Builds the retrieval `Library` from `[retrieval]`: collections embed with any embeddings
//! model of the catalog (straight through its provider, as drift does), and count chunk tokens
//! with the embedded MiniLM's tokenizer when a local provider serves it.

use crate::catalog::Catalog;
use keel_config::{Capability, KeelConfig, ProviderConfig};
use keel_observe::drift::EmbedFn;
use keel_retrieval::chunk::{LazyTokenizer, TokenCounter};
use keel_retrieval::embed::{Embedder, EmbedderSource};
use keel_retrieval::fetch::FetchPolicy;
use keel_retrieval::{Library, extract};
use std::collections::HashMap;
use std::sync::Arc;

struct CatalogEmbedder {
    model: String,
    embed: EmbedFn,
}

impl Embedder for CatalogEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn embed(
        &self,
        texts: Vec<String>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Vec<f32>>, String>> {
        (self.embed)(texts)
    }
}

pub fn library(config: &KeelConfig, catalog: &Catalog) -> Library {
    let mut embedders: HashMap<String, Arc<dyn Embedder>> = HashMap::new();
    for name in catalog.names_with(Capability::Embeddings) {
        if let Ok(embed) = crate::runtime::embed_fn(catalog, &name) {
            embedders.insert(
                name.clone(),
                Arc::new(CatalogEmbedder { model: name, embed }),
            );
        }
    }
    let source: EmbedderSource = Arc::new(move |name: &str| embedders.get(name).cloned());
    let r = &config.retrieval;
    Library::new(
        r.dir.clone(),
        source,
        token_counter(config),
        r.embedding_model.clone(),
        FetchPolicy {
            allow_private: r.fetch.allow_private,
            allow_hosts: r.fetch.allow_hosts.clone(),
            max_bytes: r.max_document_bytes,
            timeout: r.fetch.timeout,
            max_redirects: r.fetch.max_redirects,
        },
        extract::Limits {
            max_bytes: r.max_document_bytes,
            pdf_timeout: r.pdf_timeout,
        },
    )
}

/// The default embeddings model's tokenizer when a local provider serves it; else an estimate.
fn token_counter(config: &KeelConfig) -> TokenCounter {
    let model = config.models.get(&config.retrieval.embedding_model);
    let local = model
        .and_then(|m| config.providers.get(&m.provider))
        .and_then(|p| match p {
            ProviderConfig::Local(l) => keel_providers::local::embeddings_tokenizer(l),
            _ => None,
        });
    match local {
        Some(path) => TokenCounter::File(Arc::new(LazyTokenizer::new(path))),
        None => TokenCounter::Estimate,
    }
}
