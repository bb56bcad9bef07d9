//! Builds one provider per configured `[providers.*]` entry and answers readiness.

use crate::anthropic::AnthropicProvider;
use crate::local::LocalProvider;
use crate::openai_compat::OpenAiCompatProvider;
use crate::{Provider, ProviderError};
use keel_config::{KeelConfig, ProviderConfig};
use keel_types::Secret;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn Provider>>,
    locals: Vec<Arc<LocalProvider>>,
}

impl ProviderRegistry {
    /// Builds every provider. API keys are read from the environment variables the config
    /// names; local models start loading in the background (needs a tokio runtime).
    pub fn build(config: &KeelConfig) -> Result<Self, ProviderError> {
        let mut registry = Self::default();
        for (name, provider) in &config.providers {
            match provider {
                ProviderConfig::OpenaiCompat(http) => {
                    let key = api_key(http.api_key_env.as_deref());
                    registry.insert(
                        name,
                        Arc::new(OpenAiCompatProvider::new(name.clone(), http, key)?),
                    );
                }
                ProviderConfig::Anthropic(http) => {
                    let key = api_key(http.api_key_env.as_deref());
                    registry.insert(
                        name,
                        Arc::new(AnthropicProvider::new(name.clone(), http, key)?),
                    );
                }
                ProviderConfig::Local(local) => {
                    let int8 = config.models.values().any(|m| {
                        m.provider == *name
                            && m.upstream == keel_config::validate::LOCAL_EMBEDDINGS_INT8
                    });
                    let p = Arc::new(LocalProvider::spawn_load(
                        name.clone(),
                        local,
                        keel_config::defaults::cache_dir(),
                        int8,
                    ));
                    registry.locals.push(p.clone());
                    registry.insert(name, p);
                }
            }
        }
        Ok(registry)
    }

    pub fn insert(&mut self, name: &str, provider: Arc<dyn Provider>) {
        self.providers.insert(name.to_owned(), provider);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.providers.get(name).cloned()
    }

    /// True once every provider can serve (`/readyz`).
    pub fn all_ready(&self) -> bool {
        self.providers.values().all(|p| p.ready())
    }

    /// Waits for the local models to load; errors if any failed.
    pub async fn wait_ready(&self) -> Result<(), ProviderError> {
        for local in &self.locals {
            local.wait_ready().await?;
        }
        Ok(())
    }
}

fn api_key(env: Option<&str>) -> Option<Secret<String>> {
    let var = env?;
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(Secret::new(v)),
        _ => {
            tracing::warn!(
                env = var,
                "API key environment variable is not set; sending no key"
            );
            None
        }
    }
}
