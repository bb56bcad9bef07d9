//! `AppState`: what every handler shares. axum clones the state for every middleware and
//! handler a request passes, so it is one `Arc` (one reference count per clone).

use crate::auth::Authenticator;
use keel_observe::metrics::Metrics;
use keel_pipeline::{Pipeline, RequestContext};
use keel_providers::ProviderRegistry;
use keel_store::TraceStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub pipeline: Pipeline,
    pub registry: ProviderRegistry,
    pub auth: Arc<Authenticator>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Load shedding: one permit per request in flight; none left means 503.
    pub in_flight: Arc<Semaphore>,
    /// The semaphore's size, so `/metrics` can report requests in flight.
    pub max_concurrency: usize,
    /// Cancelled when the shutdown grace period is over: open streams end.
    pub streams_deadline: CancellationToken,
    /// `/v1/traces`; `None` when `observe.store_traces` is off.
    pub traces: Option<Arc<dyn TraceStore>>,
    /// `/metrics`; `None` when `observe.metrics` is off.
    pub metrics: Option<Metrics>,
}

impl Shared {
    pub fn context(
        &self,
        request_id: &crate::request_id::RequestId,
        caller: &crate::auth::Caller,
    ) -> RequestContext {
        RequestContext::new(
            request_id.id.clone(),
            caller.tenant.clone(),
            caller.key_id.clone(),
            self.request_timeout,
        )
        .with_arrival(request_id.received, request_id.traceparent)
    }
}
