//! The policy engine: a policy's rails for one stage run in order over one text and give a
//! [`Verdict`] — the action that applies, every rail's score and findings, and why.
//!
//! Evaluation is synchronous and allocation-light: scanners are pure. Whatever a scanner
//! needs that takes time (the text's embedding) is computed by the caller first, bounded by
//! the rails' timeouts; a missing embedding is a scanner error, handled per rail
//! (`on_error`).

use crate::config::{Action, OnError, RailConfig};
use crate::{Finding, GuardStage, Scan, ScanInput, Scanner};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A rail ready to run: its scanner built.
#[derive(Clone)]
pub struct Rail {
    /// The name the config used (`[guard.scanners]` name or built-in kind).
    pub scanner_name: String,
    pub scanner: Arc<dyn Scanner>,
    pub threshold: f32,
    pub action: Action,
    pub on_error: OnError,
    pub timeout: Option<Duration>,
    pub reroute_to: Option<String>,
    pub kinds: Vec<String>,
}

impl Rail {
    pub fn new(config: &RailConfig, scanner: Arc<dyn Scanner>) -> Self {
        Self {
            scanner_name: config.scanner.clone(),
            scanner,
            threshold: config.threshold,
            action: config.action,
            on_error: config.on_error,
            timeout: config.timeout,
            reroute_to: config.reroute_to.clone(),
            kinds: config.kinds.clone(),
        }
    }

    /// The scan restricted to the rail's `kinds` (its score is then the strongest kept
    /// finding's).
    fn filter(&self, scan: Scan) -> Scan {
        if self.kinds.is_empty() {
            return scan;
        }
        let kept: Vec<Finding> = scan
            .findings
            .into_iter()
            .filter(|f| self.kinds.iter().any(|k| k == &f.kind))
            .collect();
        Scan::from_findings(kept)
    }
}

/// One rail's outcome on one text.
#[derive(Debug, Clone, Serialize)]
pub struct RailResult {
    pub scanner: String,
    pub kind: &'static str,
    pub score: f32,
    pub threshold: f32,
    /// The score reached the threshold (or the scanner failed and the rail is fail-closed).
    pub triggered: bool,
    /// The rail's configured action (applies only when `triggered`).
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub findings: Vec<Finding>,
    pub micros: u64,
}

/// What a stage's rails decided about one text.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub stage: GuardStage,
    /// The strongest action among triggered rails (`allow` when none triggered).
    pub action: Action,
    /// The rail that decided a `block` or `reroute`, for the error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reroute_to: Option<String>,
    pub rails: Vec<RailResult>,
}

impl Verdict {
    pub fn allow(stage: GuardStage) -> Self {
        Self {
            stage,
            action: Action::Allow,
            decided_by: None,
            reroute_to: None,
            rails: Vec::new(),
        }
    }

    /// Findings of the triggered `redact` rails, for [`crate::redact::RedactionMap::redact`].
    pub fn redactions(&self) -> Vec<Finding> {
        self.rails
            .iter()
            .filter(|r| r.triggered && r.action == Action::Redact)
            .flat_map(|r| r.findings.iter().cloned())
            .collect()
    }

    /// Rails that fired (any action, shadow included).
    pub fn triggered(&self) -> impl Iterator<Item = &RailResult> {
        self.rails.iter().filter(|r| r.triggered)
    }

    pub fn escalated(&self) -> bool {
        self.triggered().any(|r| r.action == Action::Escalate)
    }

    /// A short reason for an error message: the deciding rail, its top finding and score.
    pub fn reason(&self) -> String {
        let Some(rail) = self
            .rails
            .iter()
            .find(|r| r.triggered && Some(&r.scanner) == self.decided_by.as_ref())
        else {
            return format!("{} policy", self.stage.as_str());
        };
        if let Some(err) = &rail.error {
            return format!(
                "the {} scanner failed and is fail-closed: {err}",
                rail.scanner
            );
        }
        let top = rail
            .findings
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|f| format!(" ({})", f.kind))
            .unwrap_or_default();
        format!(
            "the {} scanner scored {:.2} (threshold {:.2}){top}",
            rail.scanner, rail.score, rail.threshold
        )
    }
}

/// Runs `rails` in order over `input`. A `block` stops the remaining rails; every other
/// action lets them run so the verdict shows everything that fired.
pub fn evaluate(rails: &[Rail], input: &ScanInput<'_>) -> Verdict {
    let mut verdict = Verdict::allow(input.stage);
    for rail in rails {
        let started = Instant::now();
        let scanned = rail.scanner.scan(input).map(|s| rail.filter(s));
        let micros = started.elapsed().as_micros() as u64;
        let result = match scanned {
            Ok(scan) => RailResult {
                scanner: rail.scanner_name.clone(),
                kind: rail.scanner.kind(),
                score: scan.score,
                threshold: rail.threshold,
                triggered: scan.score >= rail.threshold && scan.score > 0.0,
                action: rail.action,
                error: None,
                findings: scan.findings,
                micros,
            },
            Err(e) => RailResult {
                scanner: rail.scanner_name.clone(),
                kind: rail.scanner.kind(),
                score: 0.0,
                threshold: rail.threshold,
                triggered: rail.on_error == OnError::Closed,
                action: rail.action,
                error: Some(e.to_string()),
                findings: Vec::new(),
                micros,
            },
        };
        let fired = result.triggered.then_some(rail.action);
        verdict.rails.push(result);
        let Some(action) = fired else { continue };
        if action > verdict.action {
            verdict.action = action;
            if matches!(action, Action::Block | Action::Reroute) {
                verdict.decided_by = Some(rail.scanner_name.clone());
                verdict.reroute_to = rail.reroute_to.clone();
            }
        }
        if action == Action::Block {
            break;
        }
    }
    verdict
}

/// Whether any rail needs the text's embedding, and the longest any of them will wait.
pub fn embedding_need(rails: &[Rail]) -> Option<Option<Duration>> {
    let needing: Vec<&Rail> = rails
        .iter()
        .filter(|r| r.scanner.needs_embedding())
        .collect();
    if needing.is_empty() {
        return None;
    }
    if needing.iter().any(|r| r.timeout.is_none()) {
        return Some(None);
    }
    Some(needing.iter().filter_map(|r| r.timeout).max())
}

#[cfg(test)]
mod tests;
