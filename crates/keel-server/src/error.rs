//! The one place an [`ApiError`] becomes an HTTP response: OpenAI's body by default,
//! Anthropic's for the `/v1/messages` route.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keel_types::ApiError;

/// An error in the OpenAI shape `{"error":{"message","type","param","code"}}`.
pub struct OpenAiError(pub ApiError);

/// An error in the Anthropic shape `{"type":"error","error":{"type","message"}}`.
pub struct AnthropicError(pub ApiError);

fn status(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `Retry-After` when the error says how long to wait (admission limits, shedding).
fn with_retry_after(e: &ApiError, mut resp: Response) -> Response {
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    resp
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let resp = (status(&self.0), Json(self.0.to_openai_body())).into_response();
        with_retry_after(&self.0, resp)
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let resp = (status(&self.0), Json(self.0.to_anthropic_body())).into_response();
        with_retry_after(&self.0, resp)
    }
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<ApiError> for AnthropicError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}
