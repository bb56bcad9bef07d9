//! PII recognizers: email, phone, payment card (Luhn + issuer prefix), IBAN (mod-97), US SSN
//! (validity rules), IPv4/IPv6, dates of birth (with a birth context word) and person names
//! (lexicon plus context), and custom regex recognizers with validators and context words.
//!
//! Scores are in 0..=1: checksum-validated entities (cards, IBANs, valid SSNs) score at least
//! 0.9, pattern-only matches lower, and a context word nearby ("card", "ssn", "born", "phone",
//! ...) raises a score. A match whose checksum or validity rule fails is not reported. The
//! scanner returns non-overlapping findings sorted by start (on overlap, the higher score wins,
//! then the longer span).
//!
//! Code map: [`validate`] (checksums), [`numbers`] (cards, IBANs, SSNs, phones), [`net`]
//! (emails, IPs), [`dates`] (dates of birth), [`names`] (person names), [`context`] (context
//! words around a match).

pub mod context;
pub mod dates;
pub mod name_words;
pub mod names;
pub mod net;
pub mod numbers;
pub mod text;
pub mod validate;

use regex::Regex;
use serde::Deserialize;

use crate::scan::{Finding, Scan, ScanError, ScanInput, Scanner};

pub use validate::Validator;

/// The built-in entity kinds, as named in config and in findings.
pub const BUILTIN_ENTITIES: &[&str] = &[
    "email",
    "phone",
    "credit_card",
    "iban",
    "us_ssn",
    "ip_address",
    "date_of_birth",
    "person",
];

/// Which PII to look for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// Built-in entities to detect; empty = all of BUILTIN_ENTITIES.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Extra recognizers.
    #[serde(default)]
    pub custom: Vec<CustomRecognizer>,
}

/// A user-defined recognizer: a regex, an optional validator that must pass, context words
/// that raise the score.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRecognizer {
    /// The finding kind, e.g. "employee_id".
    pub name: String,
    /// A regex (Rust `regex` syntax); every non-empty match is a candidate.
    pub pattern: String,
    /// A check the match must pass (separators are ignored by the numeric validators).
    #[serde(default)]
    pub validator: Option<Validator>,
    /// Words nearby (within 48 bytes before or 24 after, case-insensitive, whole words) that
    /// raise the score by [`CONTEXT_BOOST`].
    #[serde(default)]
    pub context: Vec<String>,
    /// Base score (default 0.5).
    #[serde(default = "default_score")]
    pub score: f32,
}

fn default_score() -> f32 {
    0.5
}

/// How much a context word raises a custom recognizer's score (capped at 1).
pub const CONTEXT_BOOST: f32 = 0.35;

/// A finding before it is owned: kind borrowed from the scanner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit<'k> {
    /// The finding kind (`email`, a custom recognizer's name, `secret.jwt`, ...).
    pub kind: &'k str,
    /// Byte offsets into the scanned text, on char boundaries.
    pub start: usize,
    pub end: usize,
    /// 0..=1.
    pub score: f32,
}

/// Where recognizers put what they find.
pub trait Emit {
    /// Records one finding.
    fn emit(&mut self, kind: &'static str, start: usize, end: usize, score: f32);
}

impl Emit for Vec<Hit<'_>> {
    fn emit(&mut self, kind: &'static str, start: usize, end: usize, score: f32) {
        self.push(Hit {
            kind,
            start,
            end,
            score,
        });
    }
}

/// `base`, raised by `add` (capped at 1) when `ctx`.
pub fn boost(base: f32, ctx: bool, add: f32) -> f32 {
    if ctx { (base + add).min(1.0) } else { base }
}

#[derive(Debug, Clone)]
struct Custom {
    name: String,
    re: Regex,
    validator: Option<Validator>,
    context: Option<context::ContextWords>,
    score: f32,
}

/// The PII scanner: built once from config (regexes compiled, lexicons parsed), then shared.
#[derive(Debug, Clone)]
pub struct PiiScanner {
    enabled: [bool; 8],
    numbers: numbers::Numbers,
    net: net::Net,
    dates: dates::Dates,
    names: names::Names,
    custom: Vec<Custom>,
}

impl PiiScanner {
    /// Compiles the recognizers. The error names the offending field, e.g.
    /// `entities[2]: unknown entity "x"` or `custom[0].pattern: ...`.
    pub fn new(config: &PiiConfig) -> Result<Self, String> {
        let mut enabled = [config.entities.is_empty(); 8];
        for (i, e) in config.entities.iter().enumerate() {
            let Some(k) = BUILTIN_ENTITIES.iter().position(|b| b == e) else {
                return Err(format!(
                    "entities[{i}]: unknown entity {e:?} (known: {})",
                    BUILTIN_ENTITIES.join(", ")
                ));
            };
            enabled[k] = true;
        }
        let mut custom = Vec::with_capacity(config.custom.len());
        for (i, c) in config.custom.iter().enumerate() {
            if c.name.is_empty()
                || !c.name.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '.'
                })
            {
                return Err(format!(
                    "custom[{i}].name: {:?} must be non-empty lowercase ASCII letters, digits, '_' or '.'",
                    c.name
                ));
            }
            if !(0.0..=1.0).contains(&c.score) {
                return Err(format!(
                    "custom[{i}].score: {} is not within 0..=1",
                    c.score
                ));
            }
            let re = Regex::new(&c.pattern).map_err(|e| format!("custom[{i}].pattern: {e}"))?;
            for (j, w) in c.context.iter().enumerate() {
                if w.trim().is_empty() {
                    return Err(format!("custom[{i}].context[{j}]: empty context word"));
                }
            }
            custom.push(Custom {
                name: c.name.clone(),
                re,
                validator: c.validator,
                context: if c.context.is_empty() {
                    None
                } else {
                    let words: Vec<String> =
                        c.context.iter().map(|w| w.trim().to_lowercase()).collect();
                    Some(
                        context::ContextWords::new(&words)
                            .map_err(|e| format!("custom[{i}].context: {e}"))?,
                    )
                },
                score: c.score,
            });
        }
        Ok(Self {
            enabled,
            numbers: numbers::Numbers::new()?,
            net: net::Net::new()?,
            dates: dates::Dates::new()?,
            names: names::Names::new(),
            custom,
        })
    }

    fn on(&self, entity: &str) -> bool {
        BUILTIN_ENTITIES
            .iter()
            .position(|b| *b == entity)
            .is_some_and(|k| self.enabled[k])
    }

    /// All findings in `text`, non-overlapping, sorted by start, kinds borrowed.
    pub fn hits<'s>(&'s self, text: &str) -> Vec<Hit<'s>> {
        let mut hits: Vec<Hit<'s>> = Vec::new();
        let digits = text.bytes().any(|b| b.is_ascii_digit());
        if digits {
            if self.on("credit_card") {
                self.numbers.cards(text, &mut hits);
            }
            if self.on("iban") {
                self.numbers.ibans(text, &mut hits);
            }
            if self.on("us_ssn") {
                self.numbers.ssns(text, &mut hits);
            }
            if self.on("phone") {
                self.numbers.phones(text, &mut hits);
            }
            if self.on("date_of_birth") {
                self.dates.dobs(text, &mut hits);
            }
        }
        if self.on("email") && text.contains('@') {
            self.net.emails(text, &mut hits);
        }
        if self.on("ip_address") && (digits || text.contains(':')) {
            self.net.ips(text, &mut hits);
        }
        if self.on("person") {
            self.names.persons(text, &mut hits);
        }
        for c in &self.custom {
            for m in c.re.find_iter(text) {
                if m.is_empty() || c.validator.is_some_and(|v| !v.check(m.as_str())) {
                    continue;
                }
                let ctx = c.context.as_ref().is_some_and(|w| {
                    w.near(text, m.start(), m.end(), context::BEFORE, context::AFTER)
                });
                hits.push(Hit {
                    kind: &c.name,
                    start: m.start(),
                    end: m.end(),
                    score: boost(c.score, ctx, CONTEXT_BOOST),
                });
            }
        }
        resolve_overlaps(&mut hits);
        hits
    }
}

/// Keeps a non-overlapping subset: higher score first, then the longer span, then the earlier
/// one; the result is sorted by start.
pub fn resolve_overlaps(hits: &mut Vec<Hit<'_>>) {
    if hits.len() < 2 {
        return;
    }
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Hit<'_>> = Vec::with_capacity(hits.len());
    for h in hits.drain(..) {
        if kept.iter().all(|k| h.end <= k.start || h.start >= k.end) {
            kept.push(h);
        }
    }
    kept.sort_by_key(|h| h.start);
    *hits = kept;
}

impl Scanner for PiiScanner {
    fn kind(&self) -> &'static str {
        "pii"
    }

    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        let findings = self
            .hits(input.text)
            .into_iter()
            .map(|h| Finding::new(h.kind, h.start, h.end, h.score))
            .collect();
        Ok(Scan::from_findings(findings))
    }
}

#[cfg(test)]
mod tests;
