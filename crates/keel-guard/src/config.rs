//! The `[guard]` section: named scanners, named policies made of ordered rails per stage, and
//! which policy each tenant gets. Routes name their policy in `[routes.<name>] policy`.
//!
//! ```toml
//! [guard.scanners.card_only]        # a named scanner instance with options
//! kind = "pii"
//! entities = ["credit_card", "iban"]
//!
//! [guard.policies.strict]
//! input = [
//!   { scanner = "secrets", action = "block" },
//!   { scanner = "card_only", action = "redact" },
//!   { scanner = "injection", threshold = 0.6, action = "block", on_error = "closed", timeout = "200ms" },
//! ]
//! context = [{ scanner = "injection", action = "block" }]   # block in context = drop the passage
//! output = [{ scanner = "exfiltration", action = "block" }]
//! stream = [{ scanner = "toxicity", threshold = 0.8, action = "block" }]
//!
//! [guard.tenants]
//! acme = "strict"
//! ```
//!
//! A rail's `scanner` names a `[guard.scanners.<name>]` entry or a built-in kind (`pii`,
//! `secrets`, `injection`, `topics`, `toxicity`, `leak`, `json_schema`, `exfiltration`) with
//! its default options.

use crate::injection::InjectionConfig;
use crate::leak::LeakConfig;
use crate::lists::{TopicsConfig, ToxicityConfig};
use crate::output::{ExfiltrationConfig, JsonSchemaConfig};
use crate::pii::PiiConfig;
use crate::secrets::SecretsConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Named scanner instances (`[guard.scanners.<name>]`, each with a `kind`).
    #[serde(default)]
    pub scanners: BTreeMap<String, ScannerConfig>,
    /// Named policies (`[guard.policies.<name>]`).
    #[serde(default)]
    pub policies: BTreeMap<String, PolicyConfig>,
    /// tenant → policy name; a tenant's policy runs before its route's.
    #[serde(default)]
    pub tenants: BTreeMap<String, String>,
    /// Where the injection classifier's weights live; `None`: the fetched jailguard MLP in the
    /// model cache, when present (without it the injection scanner uses its heuristics only).
    #[serde(default)]
    pub injection_model: Option<std::path::PathBuf>,
    /// The embeddings model (a `[models]` name) whose vectors the classifier scanners read;
    /// `None`: `[retrieval] embedding_model`. The jailguard classifier expects MiniLM.
    #[serde(default)]
    pub embedding_model: Option<String>,
}

/// One scanner's kind and options.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScannerConfig {
    Pii(PiiConfig),
    Secrets(SecretsConfig),
    Injection(InjectionConfig),
    Topics(TopicsConfig),
    Toxicity(ToxicityConfig),
    Leak(LeakConfig),
    JsonSchema(JsonSchemaConfig),
    Exfiltration(ExfiltrationConfig),
}

/// The built-in kinds a rail may name without a `[guard.scanners]` entry.
pub const BUILTIN_KINDS: &[&str] = &[
    "pii",
    "secrets",
    "injection",
    "topics",
    "toxicity",
    "leak",
    "json_schema",
    "exfiltration",
];

impl ScannerConfig {
    /// The default options of a built-in kind.
    pub fn builtin(kind: &str) -> Option<Self> {
        Some(match kind {
            "pii" => Self::Pii(PiiConfig::default()),
            "secrets" => Self::Secrets(SecretsConfig::default()),
            "injection" => Self::Injection(InjectionConfig::default()),
            "topics" => Self::Topics(TopicsConfig::default()),
            "toxicity" => Self::Toxicity(ToxicityConfig::default()),
            "leak" => Self::Leak(LeakConfig::default()),
            "json_schema" => Self::JsonSchema(JsonSchemaConfig::default()),
            "exfiltration" => Self::Exfiltration(ExfiltrationConfig::default()),
            _ => return None,
        })
    }
}

/// Ordered rails per stage.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The caller's user messages, before any provider sees them.
    #[serde(default)]
    pub input: Vec<RailConfig>,
    /// Retrieved passages and tool results.
    #[serde(default)]
    pub context: Vec<RailConfig>,
    /// The whole answer of a non-streaming request (a streamed answer goes through `stream`).
    #[serde(default)]
    pub output: Vec<RailConfig>,
    /// A sliding window over a streamed answer, checked as chunks arrive.
    #[serde(default)]
    pub stream: Vec<RailConfig>,
    /// Bytes of streamed text each window covers (the previous window's tail overlaps).
    #[serde(default = "default_stream_window")]
    pub stream_window: usize,
    /// Put redacted input values back into the answer the caller receives.
    #[serde(default = "default_true")]
    pub restore_redactions: bool,
}

fn default_stream_window() -> usize {
    512
}

fn default_true() -> bool {
    true
}

/// What a rail does when its scanner's score reaches the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let it through (a rail that only measures; its score is reported).
    Allow,
    /// Record the hit, change nothing (try a rail before enforcing it).
    Shadow,
    /// Replace the findings' spans with typed placeholders (input: restored in the answer).
    Redact,
    /// Serve, flagged for human review.
    Escalate,
    /// Serve from another route (`reroute_to`).
    Reroute,
    /// Refuse: an OpenAI-shaped error with code `policy_violation` (input/output), the
    /// passage dropped (context), the stream stopped (stream).
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Shadow => "shadow",
            Self::Redact => "redact",
            Self::Escalate => "escalate",
            Self::Reroute => "reroute",
            Self::Block => "block",
        }
    }
}

/// What a rail does when its scanner errors or its embedding does not arrive in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Let the text through; the verdict records the error.
    #[default]
    Open,
    /// Treat the text as violating: the rail's action applies.
    Closed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RailConfig {
    /// A `[guard.scanners]` name or a built-in kind.
    pub scanner: String,
    /// The score (0..=1) at or above which the action applies.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    pub action: Action,
    #[serde(default)]
    pub on_error: OnError,
    /// How long the rail may wait for what its scanner needs (the text's embedding); past
    /// it, `on_error` applies. `None`: the request's own deadline.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// `reroute` only: the route that serves instead.
    #[serde(default)]
    pub reroute_to: Option<String>,
    /// Only these finding kinds count (empty: all); e.g. `["credit_card", "iban"]`.
    #[serde(default)]
    pub kinds: Vec<String>,
}

fn default_threshold() -> f32 {
    0.5
}
