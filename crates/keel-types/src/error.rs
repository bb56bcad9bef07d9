//! The public error taxonomy: every failure a client can see is an [`ApiError`] with an
//! [`ErrorCode`]; the code alone decides the OpenAI `type`, the HTTP status, who is at fault
//! and whether a retry can help. One table, no string matching.

use serde::Serialize;
use std::fmt;

/// Who caused a failure. Routers fall back on upstream faults, never on client faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSource {
    Client,
    Upstream,
    Internal,
}

/// Public error codes. The `code` field of the OpenAI error body is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidJson,
    InvalidRequest,
    UnsupportedParameter,
    ModelNotFound,
    NotFound,
    MethodNotAllowed,
    /// The resource exists in another state (a collection with other settings).
    Conflict,
    /// A guard rail blocked the request or the answer (the message names the rail).
    PolicyViolation,
    PayloadTooLarge,
    UnsupportedMediaType,
    InvalidApiKey,
    PermissionDenied,
    ContextLengthExceeded,
    RateLimited,
    /// A keel rate limit (requests, tokens or cost per window) of the key, tenant or route.
    RateLimitExceeded,
    /// A keel budget's hard limit would be passed.
    InsufficientQuota,
    UpstreamError,
    UpstreamTimeout,
    Overloaded,
    NotReady,
    ShuttingDown,
    InternalError,
}

impl ErrorCode {
    /// The one table: code → (OpenAI error type, HTTP status, source, retryable).
    const fn row(self) -> (&'static str, u16, ErrorSource, bool) {
        use ErrorSource::*;
        match self {
            Self::InvalidJson => ("invalid_request_error", 400, Client, false),
            Self::InvalidRequest => ("invalid_request_error", 400, Client, false),
            Self::UnsupportedParameter => ("invalid_request_error", 400, Client, false),
            Self::ModelNotFound => ("invalid_request_error", 404, Client, false),
            Self::NotFound => ("invalid_request_error", 404, Client, false),
            Self::MethodNotAllowed => ("invalid_request_error", 405, Client, false),
            Self::Conflict => ("invalid_request_error", 409, Client, false),
            Self::PolicyViolation => ("invalid_request_error", 400, Client, false),
            Self::PayloadTooLarge => ("invalid_request_error", 413, Client, false),
            Self::UnsupportedMediaType => ("invalid_request_error", 415, Client, false),
            Self::InvalidApiKey => ("authentication_error", 401, Client, false),
            Self::PermissionDenied => ("permission_error", 403, Client, false),
            Self::ContextLengthExceeded => ("invalid_request_error", 400, Client, false),
            Self::RateLimited => ("rate_limit_error", 429, Client, true),
            Self::RateLimitExceeded => ("rate_limit_error", 429, Client, true),
            Self::InsufficientQuota => ("insufficient_quota", 429, Client, false),
            Self::UpstreamError => ("upstream_error", 502, Upstream, true),
            Self::UpstreamTimeout => ("upstream_error", 504, Upstream, true),
            Self::Overloaded => ("server_error", 503, Internal, true),
            Self::NotReady => ("server_error", 503, Internal, true),
            Self::ShuttingDown => ("server_error", 503, Internal, true),
            Self::InternalError => ("server_error", 500, Internal, false),
        }
    }

    pub const fn error_type(self) -> &'static str {
        self.row().0
    }
    pub const fn http_status(self) -> u16 {
        self.row().1
    }
    pub const fn source(self) -> ErrorSource {
        self.row().2
    }
    pub const fn retryable(self) -> bool {
        self.row().3
    }
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The request field at fault, as a dotted path (`messages[2].content`).
    pub param: Option<String>,
    /// Seconds the client should wait before retrying, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message).with_param(param)
    }

    pub fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedParameter, message).with_param(param)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// The OpenAI error body `{"error":{"message","type","param","code"}}`.
    pub fn to_openai_body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.code.error_type(),
                "param": self.param,
                "code": self.code.as_str(),
            }
        })
    }

    /// The Anthropic error body `{"type":"error","error":{"type","message"}}`.
    pub fn to_anthropic_body(&self) -> serde_json::Value {
        let kind = match self.code.http_status() {
            400 | 405 | 415 => "invalid_request_error",
            401 => "authentication_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            _ => "api_error",
        };
        serde_json::json!({"type": "error", "error": {"type": kind, "message": self.message}})
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.param {
            Some(p) => write!(f, "{} ({}): {}", self.code.as_str(), p, self.message),
            None => write!(f, "{}: {}", self.code.as_str(), self.message),
        }
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_openai_shape() {
        let e = ApiError::invalid("messages[0].role", "unknown role \"robot\"");
        let b = e.to_openai_body();
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(b["error"]["param"], "messages[0].role");
        assert_eq!(b["error"]["code"], "invalid_request");
        assert_eq!(e.code.http_status(), 400);
    }

    #[test]
    fn upstream_codes_are_retryable_and_client_codes_are_not() {
        assert!(ErrorCode::UpstreamTimeout.retryable());
        assert_eq!(ErrorCode::UpstreamTimeout.http_status(), 504);
        assert!(!ErrorCode::InvalidJson.retryable());
        assert_eq!(ErrorCode::ModelNotFound.http_status(), 404);
    }
}
