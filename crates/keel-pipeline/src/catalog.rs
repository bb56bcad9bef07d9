//! The catalog: every name a client may ask for (routes and models) resolved once at start to
//! an ordered list of candidates, so a request resolves with one map lookup.

use crate::breaker::Breaker;
use crate::routing::{LatencyStats, Routing};
use keel_config::{
    Capability, HedgeConfig, KeelConfig, ModelConfig, ProviderConfig, RetryConfig,
    StreamRecoveryConfig,
};
use keel_providers::{Provider, ProviderRegistry};
use keel_types::openai::{ModelList, ModelObject};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// One model a request may be served by.
#[derive(Clone)]
pub struct Candidate {
    /// The model's name in `[models]`.
    pub name: String,
    pub config: Arc<ModelConfig>,
    pub provider: Arc<dyn Provider>,
    /// `gen_ai.provider.name` of the provider's kind (`openai`, `anthropic`, `keel.local`).
    pub provider_kind: &'static str,
    /// The model's circuit breaker, shared by every candidate of the model.
    pub breaker: Arc<Breaker>,
    /// The model's latency estimate and requests in flight, shared like its breaker.
    pub latency: Arc<LatencyStats>,
}

impl Candidate {
    /// `provider/upstream`, the way errors and logs name an upstream.
    pub fn upstream_label(&self) -> String {
        format!("{}/{}", self.config.provider, self.config.upstream)
    }
}

/// A resolved name: the route (or model) name, its candidates in fallback order and its
/// retry policy (a model asked for by its own name retries with the defaults) and its limit
/// on the wait for a stream's first chunk (a model by its own name has none).
#[derive(Clone)]
pub struct Resolved {
    pub route: String,
    pub candidates: Arc<[Candidate]>,
    pub retry: RetryConfig,
    pub ttft_timeout: Option<Duration>,
    /// The route's mid-stream recovery and hedging (never for a model by its own name).
    pub stream_recovery: Option<StreamRecoveryConfig>,
    pub hedge: Option<HedgeConfig>,
    /// The route's retrieval step (context stage).
    pub retrieval: Option<Arc<keel_config::RouteRetrievalConfig>>,
    /// The route's `[guard.policies]` name (runs after the tenant's policy).
    pub policy: Option<String>,
    /// The route's strategy and its state (a model by its own name: plain fallback).
    pub routing: Arc<Routing>,
}

#[derive(Clone, Default)]
pub struct Catalog {
    names: HashMap<String, Resolved>,
    listing: Vec<ModelObject>,
    /// Every model's breaker, by model name, sorted.
    breakers: Vec<(String, Arc<Breaker>)>,
}

impl Catalog {
    /// Every route, and every model under its own name. Fails only if the config references
    /// a provider the registry lacks (validation normally rules that out).
    pub fn build(config: &KeelConfig, registry: &ProviderRegistry) -> Result<Self, String> {
        let mut catalog = Self::default();
        let mut models = HashMap::new();
        for (name, m) in &config.models {
            let provider = registry.get(&m.provider).ok_or_else(|| {
                format!(
                    "models.{name}.provider: unknown provider \"{}\"",
                    m.provider
                )
            })?;
            let provider_kind = match config.providers.get(&m.provider) {
                Some(ProviderConfig::Anthropic(_)) => "anthropic",
                Some(ProviderConfig::Local(_)) => "keel.local",
                _ => "openai",
            };
            let breaker = Arc::new(Breaker::new(m.circuit.clone()));
            catalog.breakers.push((name.clone(), breaker.clone()));
            let c = Candidate {
                name: name.clone(),
                config: Arc::new(m.clone()),
                provider,
                provider_kind,
                breaker,
                latency: Arc::new(LatencyStats::new(m.latency_decay)),
            };
            models.insert(name.clone(), c.clone());
            let routing = Arc::new(Routing::fallback());
            catalog.add(
                name,
                vec![c],
                RetryConfig::default(),
                None,
                routing,
                &m.provider,
            );
        }
        for (name, route) in &config.routes {
            let candidates = route
                .models
                .iter()
                .map(|m| {
                    models
                        .get(m)
                        .cloned()
                        .ok_or_else(|| format!("routes.{name}: unknown model \"{m}\""))
                })
                .collect::<Result<Vec<_>, _>>()?;
            catalog.add(
                name,
                candidates,
                route.retry.clone(),
                route.ttft_timeout,
                Arc::new(Routing::new(route)),
                "keel",
            );
            if let Some(r) = catalog.names.get_mut(name) {
                r.stream_recovery.clone_from(&route.stream_recovery);
                r.hedge.clone_from(&route.hedge);
                r.retrieval = route.retrieval.clone().map(Arc::new);
                r.policy.clone_from(&route.policy);
            }
        }
        catalog.listing.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(catalog)
    }

    fn add(
        &mut self,
        name: &str,
        candidates: Vec<Candidate>,
        retry: RetryConfig,
        ttft_timeout: Option<Duration>,
        routing: Arc<Routing>,
        owned_by: &str,
    ) {
        self.names.insert(
            name.to_owned(),
            Resolved {
                route: name.to_owned(),
                candidates: candidates.into(),
                retry,
                ttft_timeout,
                stream_recovery: None,
                hedge: None,
                retrieval: None,
                policy: None,
                routing,
            },
        );
        self.listing.push(ModelObject {
            id: name.to_owned(),
            object: "model".into(),
            created: 0,
            owned_by: owned_by.to_owned(),
        });
    }

    /// Every model's circuit breaker, by model name.
    pub fn breakers(&self) -> Vec<(String, Arc<Breaker>)> {
        self.breakers.clone()
    }

    pub fn resolve(&self, name: &str) -> Option<&Resolved> {
        self.names.get(name)
    }

    pub fn models(&self) -> ModelList {
        ModelList {
            object: "list".into(),
            data: self.listing.clone(),
        }
    }

    /// The first name offering `capability`, to suggest in "unknown model" errors.
    pub fn names_with(&self, capability: Capability) -> Vec<String> {
        let mut v: Vec<String> = self
            .names
            .iter()
            .filter(|(_, r)| r.candidates.iter().any(|c| c.config.can(capability)))
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }
}
