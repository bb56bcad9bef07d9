//! `LocalError`: every way embedded inference can fail, with its public error code.

use keel_types::error::ErrorCode;

/// Failures of the embedded models. `Clone` because one failed batch is reported to every
/// request that was in it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LocalError {
    /// The bounded request queue is full; the caller should shed load or retry later.
    #[error("local model queue is full ({capacity} waiting requests)")]
    QueueFull { capacity: usize },

    /// The rendered prompt does not fit the model's context window.
    #[error(
        "prompt is {prompt_tokens} tokens but the model's context window is {context_window} tokens"
    )]
    ContextLength {
        prompt_tokens: u32,
        context_window: u32,
    },

    /// The request itself is unusable (for example an empty input list).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// Model files exist but could not be read or understood.
    #[error("failed to load local model: {0}")]
    Load(String),

    /// Model packages could not be fetched, verified or unpacked.
    #[error("failed to fetch model files: {0}")]
    Fetch(String),

    /// A forward pass, tokenization or sampling step failed.
    #[error("local inference failed: {0}")]
    Inference(String),

    /// The inference thread is gone (shut down, or it died).
    #[error("local inference engine has stopped")]
    EngineStopped,
}

impl LocalError {
    /// The public error code; it alone decides HTTP status and retryability.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::QueueFull { .. } => ErrorCode::Overloaded,
            Self::ContextLength { .. } => ErrorCode::ContextLengthExceeded,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::Load(_) | Self::Fetch(_) => ErrorCode::NotReady,
            Self::Inference(_) => ErrorCode::InternalError,
            Self::EngineStopped => ErrorCode::ShuttingDown,
        }
    }

    pub(crate) fn inference(e: impl std::fmt::Display) -> Self {
        Self::Inference(e.to_string())
    }

    pub(crate) fn load(e: impl std::fmt::Display) -> Self {
        Self::Load(e.to_string())
    }
}
