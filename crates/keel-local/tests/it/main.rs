//! Integration tests against the real embedded models, fetched into the real cache
//! (`$KEEL_CACHE_DIR`, else `$XDG_CACHE_HOME/keel`, else `~/.cache/keel`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chat;
mod embed;
mod fetch;
mod tokenizer;

use keel_local::{ChatEngine, ChatEngineOptions, Embedder, EmbedderOptions, ModelPaths};
use std::sync::OnceLock;

/// Fetches (once per test binary) and returns the model paths.
pub fn models() -> &'static ModelPaths {
    static PATHS: OnceLock<ModelPaths> = OnceLock::new();
    PATHS.get_or_init(|| {
        let cache = keel_local::default_cache_dir().unwrap();
        keel_local::ensure_models(&cache).unwrap()
    })
}

/// A shared chat engine for tests that do not depend on capacity limits.
pub fn chat_engine() -> ChatEngine {
    static ENGINE: OnceLock<ChatEngine> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            ChatEngine::load(
                &models().chat_gguf,
                ChatEngineOptions {
                    max_active: 4,
                    queue_capacity: 16,
                },
            )
            .unwrap()
        })
        .clone()
}

/// A shared embedder.
pub fn embedder() -> Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            Embedder::load(
                &models().embeddings_dir,
                EmbedderOptions {
                    max_batch: 32,
                    queue_capacity: 64,
                    ..Default::default()
                },
            )
            .unwrap()
        })
        .clone()
}
