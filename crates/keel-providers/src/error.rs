//! `ProviderError`: what can go wrong talking to one upstream, by category.

use keel_types::{ApiError, ErrorCode};
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The upstream answered with a non-success HTTP status.
    #[error("upstream returned HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No complete answer within the attempt's deadline.
    #[error("upstream timed out after {}ms", .0.as_millis())]
    Timeout(Duration),
    /// Connecting or sending failed (refused, reset, DNS, TLS).
    #[error("could not reach upstream: {0}")]
    Connect(String),
    /// The upstream answered, but not in a shape we understand.
    #[error("upstream response was malformed: {0}")]
    InvalidResponse(String),
    /// A stream broke after it started.
    #[error("upstream stream failed: {0}")]
    Stream(String),
    /// The model cannot honour a request field (`tools`, `response_format`, `n`...).
    #[error("{message}")]
    Unsupported { param: String, message: String },
    /// The request does not fit the model (context window, bad input).
    #[error("{message}")]
    InvalidRequest {
        param: Option<String>,
        message: String,
    },
    /// The prompt (plus the requested output) does not fit the model's context window.
    #[error(
        "this model's maximum context length is {context_window} tokens; your messages resulted in {prompt_tokens} tokens"
    )]
    ContextLength {
        prompt_tokens: u32,
        context_window: u32,
    },
    /// The upstream said the prompt does not fit its context (OpenAI's
    /// `context_length_exceeded` error code); its own message.
    #[error("{0}")]
    UpstreamContextLength(String),
    /// The provider is still starting (local models loading).
    #[error("the model is still loading; retry shortly")]
    NotReady,
    /// The local engine's bounded queue is full.
    #[error("local model is overloaded: its queue is full")]
    Overloaded,
    /// The local engine failed.
    #[error("local model failed: {0}")]
    Local(String),
}

impl ProviderError {
    /// The prompt did not fit the model's context (a larger-context model may still serve it).
    pub fn is_context_length(&self) -> bool {
        matches!(
            self,
            Self::ContextLength { .. } | Self::UpstreamContextLength(_)
        )
    }

    /// Whether another attempt (same or another model) could succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 409 | 429 | 500..=599),
            Self::Timeout(_) | Self::Connect(_) | Self::Stream(_) | Self::Overloaded => true,
            Self::NotReady => true,
            Self::ContextLength { .. } | Self::UpstreamContextLength(_) => false,
            Self::InvalidResponse(_) | Self::Local(_) => true,
            Self::Unsupported { .. } | Self::InvalidRequest { .. } => false,
        }
    }

    /// The public code a client sees when this was the last error of a request.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Status { status, .. } => match status {
                400 | 404 | 422 => ErrorCode::InvalidRequest,
                413 => ErrorCode::PayloadTooLarge,
                429 => ErrorCode::RateLimited,
                _ => ErrorCode::UpstreamError,
            },
            Self::Timeout(_) => ErrorCode::UpstreamTimeout,
            Self::Connect(_) | Self::InvalidResponse(_) | Self::Stream(_) => {
                ErrorCode::UpstreamError
            }
            Self::Unsupported { .. } => ErrorCode::UnsupportedParameter,
            Self::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Self::Overloaded => ErrorCode::Overloaded,
            Self::NotReady => ErrorCode::NotReady,
            Self::ContextLength { .. } | Self::UpstreamContextLength(_) => {
                ErrorCode::ContextLengthExceeded
            }
            Self::Local(_) => ErrorCode::InternalError,
        }
    }

    /// A short class name for the request log (`status_503`, `timeout`, ...).
    pub fn class(&self) -> String {
        match self {
            Self::Status { status, .. } => format!("status_{status}"),
            Self::Timeout(_) => "timeout".into(),
            Self::Connect(_) => "connect".into(),
            Self::InvalidResponse(_) => "invalid_response".into(),
            Self::Stream(_) => "stream".into(),
            Self::Unsupported { .. } => "unsupported".into(),
            Self::InvalidRequest { .. } => "invalid_request".into(),
            Self::Overloaded => "overloaded".into(),
            Self::NotReady => "not_ready".into(),
            Self::ContextLength { .. } | Self::UpstreamContextLength(_) => "context_length".into(),
            Self::Local(_) => "local".into(),
        }
    }

    /// The client-facing error, naming the upstream (`provider/model`) that failed.
    pub fn to_api_error(&self, upstream: &str) -> ApiError {
        let param = match self {
            Self::Unsupported { param, .. } => Some(param.clone()),
            Self::InvalidRequest { param, .. } => param.clone(),
            Self::ContextLength { .. } | Self::UpstreamContextLength(_) => Some("messages".into()),
            _ => None,
        };
        let message = match self {
            Self::Unsupported { .. } | Self::InvalidRequest { .. } | Self::ContextLength { .. } => {
                self.to_string()
            }
            _ => format!("upstream {upstream} failed: {self}"),
        };
        ApiError {
            code: self.code(),
            message,
            param,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_status() {
        let s = |status| ProviderError::Status {
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(s(503).retryable());
        assert!(s(429).retryable());
        assert!(!s(400).retryable());
        assert!(!s(401).retryable());
        assert_eq!(s(401).code(), ErrorCode::UpstreamError);
        assert_eq!(
            ProviderError::Timeout(Duration::from_secs(1))
                .code()
                .http_status(),
            504
        );
    }

    #[test]
    fn api_error_names_the_upstream() {
        let e = ProviderError::Connect("connection refused".into()).to_api_error("mock/gpt-x");
        assert!(e.message.contains("mock/gpt-x"));
        assert!(e.message.contains("connection refused"));
        assert_eq!(e.code.http_status(), 502);
    }
}
