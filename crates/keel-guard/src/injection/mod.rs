//! Prompt injection and jailbreak detection: multilingual heuristics over de-obfuscated text
//! (and over payloads decoded from base64, hex, ...), the jailguard MLP over the text's MiniLM
//! embedding, and one calibrated score combining both.
//!
//! - `rules`: the pattern families (`injection.override`, `injection.role_play`,
//!   `injection.system_prompt_request`, `injection.delimiter`, `injection.exfiltration`,
//!   `injection.tool_call`, `injection.indirect`, `injection.encoded`).
//! - [`Mlp`]: the classifier's forward pass.
//! - [`calibrate`]: the fitted logistic combination and the recommended thresholds.
//!
//! Instructions addressed to the model weigh more in untrusted text (retrieved context, tool
//! results, model output) than in the caller's own input: "include the trace id in your
//! summary" is a normal request from a user and an injection inside a fetched document.

pub mod calibrate;
mod mlp;
mod rules;

pub use calibrate::{RECOMMENDED_THRESHOLD, RECOMMENDED_THRESHOLD_HEURISTICS_ONLY};
pub use mlp::{EMBEDDING_DIM, Mlp};

use crate::normalize::{decode_payloads, normalize_mapped};
use crate::scan::{Finding, GuardStage, Scan, ScanError, ScanInput, Scanner};
use serde::Deserialize;
use std::sync::Arc;

/// How the injection scanner runs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// Use the MLP classifier when its weights are loaded (the pipeline then computes the
    /// text's embedding). Default true.
    pub classifier: bool,
    /// Also scan payloads decoded from base64, base32, base85, hex, binary, percent-escapes,
    /// Unicode tags and rot13. Default true.
    pub decode: bool,
    /// Decoded text beyond this many bytes per scan is not scanned. Default 64 KiB.
    pub max_decoded_bytes: usize,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        Self {
            classifier: true,
            decode: true,
            max_decoded_bytes: crate::normalize::MAX_DECODED_BYTES,
        }
    }
}

/// The injection scanner (`kind` "injection").
pub struct InjectionScanner {
    rules: Vec<rules::Rule>,
    mlp: Option<Arc<Mlp>>,
    decode: bool,
    max_decoded_bytes: usize,
}

/// What the heuristics found in one text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heuristics {
    /// Noisy-or of the strongest finding per kind, 0..=1.
    pub evidence: f32,
    pub findings: Vec<Finding>,
}

impl InjectionScanner {
    /// Compiles the rules; `mlp` is used when given and `config.classifier` is on.
    pub fn new(config: &InjectionConfig, mlp: Option<Arc<Mlp>>) -> Result<Self, String> {
        Ok(Self {
            rules: rules::build()?,
            mlp: mlp.filter(|_| config.classifier),
            decode: config.decode,
            max_decoded_bytes: config.max_decoded_bytes,
        })
    }

    /// The heuristic part alone (no embedding): findings with spans in `text` and their
    /// combined evidence.
    pub fn heuristics(&self, text: &str, stage: GuardStage) -> Heuristics {
        let untrusted = !matches!(stage, GuardStage::Input);
        let mut findings = Vec::new();
        self.match_rules(text, untrusted, &mut findings);
        if self.decode {
            for payload in decode_payloads(text, self.max_decoded_bytes) {
                let mut inner = Vec::new();
                self.match_rules(&payload.text, untrusted, &mut inner);
                if let Some(best) = inner.iter().map(|f| f.score).reduce(f32::max) {
                    // Hiding an instruction in an encoding is itself a signal.
                    let score = 1.0 - (1.0 - best) * 0.7;
                    findings.push(Finding::new(
                        "injection.encoded",
                        payload.start,
                        payload.end,
                        score,
                    ));
                }
            }
        }
        Heuristics {
            evidence: evidence(&findings),
            findings,
        }
    }

    fn match_rules(&self, text: &str, untrusted: bool, out: &mut Vec<Finding>) {
        let mapped = normalize_mapped(text);
        let hay = mapped.text.as_bytes();
        for rule in &self.rules {
            let weight = if untrusted {
                rule.context_weight
            } else {
                rule.input_weight
            };
            for m in rule.regex.find_iter(hay) {
                let (s, e) = mapped.source_span(m.start(), m.end(), text);
                out.push(Finding::new(rule.kind, s, e, weight));
            }
        }
    }

    /// The MLP's probability for an embedding, if the classifier is on.
    pub fn classifier_score(&self, embedding: &[f32]) -> Option<f32> {
        self.mlp.as_ref().map(|m| m.score(embedding))
    }
}

/// Noisy-or over kinds of each kind's strongest finding: independent kinds of evidence add up,
/// repeats of one kind do not.
fn evidence(findings: &[Finding]) -> f32 {
    let mut best: Vec<(&str, f32)> = Vec::new();
    for f in findings {
        match best.iter_mut().find(|(k, _)| *k == f.kind) {
            Some((_, s)) => *s = s.max(f.score),
            None => best.push((&f.kind, f.score)),
        }
    }
    1.0 - best.iter().map(|(_, s)| 1.0 - s).product::<f32>()
}

impl Scanner for InjectionScanner {
    fn kind(&self) -> &'static str {
        "injection"
    }

    fn needs_embedding(&self) -> bool {
        self.mlp.is_some()
    }

    /// One calibrated score (see [`calibrate`]) and the findings behind it; finding scores are
    /// capped at the overall score so the scan's strongest finding never exceeds it.
    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        // Without an embedding (the embeddings model failed, timed out or is not configured)
        // the score falls back to the heuristics-only calibration — measured on its own in
        // docs/BENCHMARKS.md — rather than to nothing. A wrong dimension is a config error.
        let mlp_score = match (&self.mlp, input.embedding) {
            (Some(mlp), Some(embedding)) => {
                Mlp::check_dim(embedding).map_err(|reason| ScanError::Embedding {
                    scanner: "injection".into(),
                    reason,
                })?;
                Some(mlp.score(embedding))
            }
            _ => None,
        };
        let h = self.heuristics(input.text, input.stage);
        let score = calibrate::combine(h.evidence, mlp_score);
        let mut findings = h.findings;
        if let Some(p) = mlp_score {
            findings.push(Finding::new("injection.classifier", 0, input.text.len(), p));
        }
        for f in &mut findings {
            f.score = f.score.min(score);
        }
        Ok(Scan { score, findings })
    }
}

#[cfg(test)]
mod real_weights;
#[cfg(test)]
mod tests;
