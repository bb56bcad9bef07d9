//! `AppState`: what every handler shares. Cheap to clone (all `Arc`s inside).

use crate::auth::Authenticator;
use keel_pipeline::{Pipeline, RequestContext};
use keel_providers::ProviderRegistry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState {
    pub pipeline: Pipeline,
    pub registry: ProviderRegistry,
    pub auth: Arc<Authenticator>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Load shedding: one permit per request in flight; none left means 503.
    pub in_flight: Arc<Semaphore>,
    /// Cancelled when the shutdown grace period is over: open streams end.
    pub streams_deadline: CancellationToken,
}

impl AppState {
    pub fn context(&self, request_id: &str, caller: &crate::auth::Caller) -> RequestContext {
        RequestContext::new(
            request_id.to_owned(),
            caller.tenant.clone(),
            caller.key_id.clone(),
            self.request_timeout,
        )
    }
}
