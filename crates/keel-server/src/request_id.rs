//! Gives every request an id (`req_<uuidv7>`), stores it as a request extension for handlers
//! and the request log, and returns it in `x-request-id` on every response, errors included.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub const HEADER: &str = "x-request-id";

pub async fn request_id_layer(mut req: Request, next: Next) -> Response {
    let id = keel_types::ids::request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
