//! Gives every request an id (`req_<uuidv7>`), stores it as a request extension for handlers
//! and the request log, and returns it in `x-request-id` on every response, errors included.
//! The same extension carries when the request arrived and the caller's W3C `traceparent`,
//! so the trace starts at arrival and continues the caller's trace.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use keel_types::trace::TraceParent;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct RequestId {
    pub id: String,
    pub received: Instant,
    /// A valid incoming `traceparent`; a malformed one is ignored (a new trace starts).
    pub traceparent: Option<TraceParent>,
}

pub const HEADER: &str = "x-request-id";

pub async fn request_id_layer(mut req: Request, next: Next) -> Response {
    let received = Instant::now();
    let id = keel_types::ids::request_id();
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    req.extensions_mut().insert(RequestId {
        id: id.clone(),
        received,
        traceparent,
    });
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
