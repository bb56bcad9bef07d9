//! One module per endpoint; handlers are named `*_handler`.

pub mod chat;
pub mod collections;
pub mod embeddings;
pub mod guard;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod models;
pub mod traces;

use crate::auth::Caller;
use crate::body;
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::Response;
use keel_pipeline::RequestContext;
use keel_types::ApiError;
use serde::de::DeserializeOwned;

/// The common start of every POST handler: context, bounded body, parsed request. A failure
/// here is still written to the request log.
pub(crate) async fn accept<T: DeserializeOwned>(
    state: &AppState,
    request_id: &RequestId,
    caller: &Caller,
    endpoint: &str,
    raw: Body,
) -> Result<(RequestContext, T), ApiError> {
    let ctx = state.context(request_id, caller);
    let parsed = match body::read_limited(raw, state.max_body_bytes).await {
        Ok(bytes) => body::parse_json::<T>(&bytes),
        Err(e) => Err(e),
    };
    match parsed {
        Ok(req) => Ok((ctx, req)),
        Err(e) => {
            state.pipeline.record_rejected(&ctx, endpoint, "", &e);
            Err(e)
        }
    }
}

/// Why routing chose the model that answered (`x-keel-route-reason`): a stream has no `keel`
/// object to say it. Omitted when empty or not a valid header value.
pub(crate) fn route_reason_header(resp: &mut Response, reason: &str) {
    if let Ok(v) = HeaderValue::from_str(reason)
        && !reason.is_empty()
    {
        resp.headers_mut().insert("x-keel-route-reason", v);
    }
}

/// The routing reason in a response's `keel` object (empty when absent).
pub(crate) fn routing_reason(keel: Option<&keel_types::KeelReport>) -> String {
    keel.and_then(|k| k.routing.as_ref())
        .map(|r| r.reason.clone())
        .unwrap_or_default()
}

/// Names the route and model that served a response, for clients and load balancers.
pub(crate) fn served_headers(resp: &mut Response, route: &str, model: &str) {
    for (name, value) in [("x-keel-route", route), ("x-keel-model", model)] {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(name, v);
        }
    }
}
