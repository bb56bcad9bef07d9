//! What every scanner shares: its input, its result and the trait.

use serde::{Deserialize, Serialize};

/// Where in the request path a text is scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStage {
    /// The caller's messages, before any provider sees them.
    Input,
    /// Retrieved passages and tool results (untrusted text placed in the model's context).
    Context,
    /// The model's whole answer.
    Output,
    /// A sliding window over a streamed answer.
    Stream,
}

impl GuardStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Context => "context",
            Self::Output => "output",
            Self::Stream => "stream",
        }
    }
}

/// One text to scan and what a scanner may need besides it.
#[derive(Debug, Clone, Copy)]
pub struct ScanInput<'a> {
    pub text: &'a str,
    pub stage: GuardStage,
    /// The request's system prompt, for leakage checks on output.
    pub system_prompt: Option<&'a str>,
    /// The MiniLM embedding (L2-normalised, 384 dims) of `text`, present when a scanner in
    /// the policy says [`Scanner::needs_embedding`].
    pub embedding: Option<&'a [f32]>,
    /// The embedding of `system_prompt`, likewise.
    pub system_prompt_embedding: Option<&'a [f32]>,
}

impl<'a> ScanInput<'a> {
    pub fn text(text: &'a str, stage: GuardStage) -> Self {
        Self {
            text,
            stage,
            system_prompt: None,
            embedding: None,
            system_prompt_embedding: None,
        }
    }
}

/// One thing a scanner found: what, where (byte offsets into the scanned text) and how sure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// A stable, lowercase kind: `email`, `credit_card`, `secret.aws_access_key`,
    /// `injection.override`, `topic.weapons`, ...
    pub kind: String,
    pub start: usize,
    pub end: usize,
    /// 0..=1.
    pub score: f32,
}

impl Finding {
    pub fn new(kind: impl Into<String>, start: usize, end: usize, score: f32) -> Self {
        Self {
            kind: kind.into(),
            start,
            end,
            score,
        }
    }
}

/// A scanner's verdict on one text: an overall score (0 = clean, 1 = certain violation) and
/// the spans behind it. A scanner with spans scores at least its strongest finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scan {
    pub score: f32,
    pub findings: Vec<Finding>,
}

impl Scan {
    pub fn clean() -> Self {
        Self::default()
    }

    /// A scan whose score is its strongest finding's.
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        let score = findings.iter().map(|f| f.score).fold(0.0, f32::max);
        Self { score, findings }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScanError {
    /// The scanner needs an embedding and none was given (or it had the wrong dimension).
    #[error("the {scanner} scanner needs an embedding: {reason}")]
    Embedding { scanner: String, reason: String },
    #[error("the {scanner} scanner failed: {reason}")]
    Failed { scanner: String, reason: String },
}

/// A scanner: pure, synchronous, cheap to share across threads.
pub trait Scanner: Send + Sync {
    /// The scanner's kind, as named in config (`pii`, `secrets`, `injection`, ...).
    fn kind(&self) -> &'static str;

    /// Whether [`ScanInput::embedding`] must be filled before [`Scanner::scan`].
    fn needs_embedding(&self) -> bool {
        false
    }

    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError>;
}
