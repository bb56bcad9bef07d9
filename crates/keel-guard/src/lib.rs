//! Policy enforcement: scanners that look at text (PII, secrets, prompt injection, topics,
//! toxicity, leakage, output checks) and the policy engine that runs them as ordered rails per
//! stage (input, retrieved context, output, streaming output) and decides an action.
//!
//! No HTTP and no model inference here: a scanner that needs a MiniLM embedding (the injection
//! classifier, system-prompt similarity) receives it precomputed in [`ScanInput`]; the
//! pipeline computes it once per text through its embeddings model.
//!
//! Code map:
//! - [`scan`]: the `Scanner` trait and what a scan returns (`Scan`, `Finding`).
//! - [`pii`]: PII recognizers (checksummed where the entity has one), custom regex recognizers.
//! - [`secrets`]: provider API keys, private keys, JWTs, high-entropy tokens.
//! - [`redact`]: reversible redaction into typed placeholders, restoration (also across
//!   streamed chunks).
//! - [`normalize`]: text de-obfuscation shared by the injection heuristics.
//! - [`injection`]: prompt injection and jailbreak heuristics, the MLP over MiniLM embeddings,
//!   and their calibrated combination.
//! - [`lists`]: topic and keyword deny/allow lists (Aho-Corasick), the toxicity lexicon.
//! - [`leak`]: system-prompt leakage (canary tokens, similarity to the system prompt).
//! - [`output`]: JSON schema validation, URL and markdown-image exfiltration.
//! - [`config`]: `[guard]`: named scanners, policies (ordered rails per stage), tenants.
//! - [`policy`]: `evaluate`: a stage's rails over one text → a `Verdict`.
//! - [`registry`]: `Guard`: scanners built once, which policy applies to a request.

pub mod config;
pub mod injection;
pub mod leak;
pub mod lists;
pub mod normalize;
pub mod output;
pub mod pii;
pub mod policy;
pub mod redact;
pub mod registry;
pub mod scan;
pub mod secrets;

pub use config::{Action, GuardConfig, OnError, PolicyConfig, RailConfig, ScannerConfig};
pub use policy::{RailResult, Verdict, evaluate};
pub use registry::{Guard, Policy};
pub use scan::{Finding, GuardStage, Scan, ScanError, ScanInput, Scanner};
