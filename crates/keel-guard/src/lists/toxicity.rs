//! The toxicity lexicon: clearly abusive words and phrases with a severity each, in six
//! categories (`data/toxicity_<category>.tsv`, one `term<TAB>severity` a line; a trailing `+`
//! on a term lets it take common inflections). Matching is whole-word over text folded for
//! leetspeak, separators and repeated letters, so "f.u.c.k", "fuuuck" and "sh1t" match and
//! "Scunthorpe", "assessment" and "classic" do not.
//!
//! Score: the strongest hit's severity plus a bounded bonus for more distinct hits
//! (`+0.05` each, at most `+0.15`), capped at 1.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fold::FoldOptions;
use super::{E_DROPPED, INFLECTIONS, Lexicon};
use crate::scan::{Finding, Scan, ScanError, ScanInput, Scanner};

/// The built-in lexicon: (category, file contents).
pub(super) const BUILT_IN: &[(&str, &str)] = &[
    (
        "profanity",
        include_str!("../../data/toxicity_profanity.tsv"),
    ),
    ("insult", include_str!("../../data/toxicity_insult.tsv")),
    ("threat", include_str!("../../data/toxicity_threat.tsv")),
    (
        "harassment",
        include_str!("../../data/toxicity_harassment.tsv"),
    ),
    ("hate", include_str!("../../data/toxicity_hate.tsv")),
    (
        "self_harm",
        include_str!("../../data/toxicity_self_harm.tsv"),
    ),
];

const COUNT_BONUS: f32 = 0.05;
const MAX_BONUS: f32 = 0.15;

/// Additions to and removals from the built-in lexicon.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToxicityConfig {
    /// Extra terms (a trailing `+` allows inflections) → severity 0..=1; findings
    /// `toxicity.custom`.
    #[serde(default)]
    pub extra: BTreeMap<String, f32>,
    /// Built-in terms to ignore, spelled as in the lexicon (without the `+`).
    #[serde(default)]
    pub ignore: Vec<String>,
}

/// The toxicity scanner (kind `toxicity`).
#[derive(Debug)]
pub struct ToxicityScanner {
    lexicon: Lexicon,
    /// Per label: finding kind and severity.
    labels: Vec<(&'static str, f32)>,
}

const TOXIC_FOLD: FoldOptions = FoldOptions {
    leet: true,
    collapse_runs: true,
};

/// One lexicon line: the term, whether it inflects, its severity.
fn parse_line(line: &str) -> Result<Option<(&str, bool, f32)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (term, severity) = line
        .split_once('\t')
        .ok_or_else(|| format!("line {line:?} is not term<TAB>severity"))?;
    let severity: f32 = severity
        .trim()
        .parse()
        .map_err(|_| format!("line {line:?}: severity is not a number"))?;
    if !(0.0..=1.0).contains(&severity) {
        return Err(format!("line {line:?}: severity is not within 0..=1"));
    }
    let term = term.trim();
    Ok(Some(match term.strip_suffix('+') {
        Some(stem) => (stem, true, severity),
        None => (term, false, severity),
    }))
}

fn fold_key(term: &str) -> Option<String> {
    super::fold::fold_term(term, TOXIC_FOLD).map(|(folded, _)| folded)
}

impl ToxicityScanner {
    pub fn new(c: &ToxicityConfig) -> Result<Self, String> {
        let ignore: Vec<String> = c.ignore.iter().filter_map(|t| fold_key(t)).collect();
        let mut terms: Vec<(String, bool)> = Vec::new();
        let mut labels: Vec<(&'static str, f32)> = Vec::new();
        for (category, contents) in BUILT_IN {
            let kind: &'static str = match *category {
                "profanity" => "toxicity.profanity",
                "insult" => "toxicity.insult",
                "threat" => "toxicity.threat",
                "harassment" => "toxicity.harassment",
                "hate" => "toxicity.hate",
                _ => "toxicity.self_harm",
            };
            for line in contents.lines() {
                let Some((term, inflects, severity)) =
                    parse_line(line).map_err(|e| format!("built-in {category} lexicon: {e}"))?
                else {
                    continue;
                };
                if fold_key(term).is_some_and(|k| ignore.contains(&k)) {
                    continue;
                }
                terms.push((term.to_string(), inflects));
                labels.push((kind, severity));
            }
        }
        for (term, &severity) in &c.extra {
            if !(0.0..=1.0).contains(&severity) {
                return Err(format!(
                    "toxicity term {term:?}: severity is not within 0..=1"
                ));
            }
            let (stem, inflects) = match term.strip_suffix('+') {
                Some(stem) => (stem, true),
                None => (term.as_str(), false),
            };
            terms.push((stem.to_string(), inflects));
            labels.push(("toxicity.custom", severity));
        }
        let mut patterns: Vec<(&str, usize, &'static [&'static str])> = Vec::new();
        let joined: Vec<Option<String>> = terms
            .iter()
            .map(|(term, _)| {
                term.contains(['\'', '\u{2019}'])
                    .then(|| term.replace(['\'', '\u{2019}'], ""))
            })
            .collect();
        for (i, (term, inflects)) in terms.iter().enumerate() {
            // "you're worthless" also as typed without the apostrophe.
            if let Some(joined) = &joined[i] {
                patterns.push((joined, i, &[]));
            }
            if !inflects {
                patterns.push((term, i, &[]));
                continue;
            }
            patterns.push((term, i, INFLECTIONS));
            // "frobnicate+" also matches "frobnicating".
            if let Some(stem) = term.strip_suffix('e')
                && stem.len() >= 2
            {
                patterns.push((stem, i, E_DROPPED));
            }
        }
        let lexicon = Lexicon::new(patterns, TOXIC_FOLD, true)
            .map_err(|e| format!("toxicity lexicon: {e}"))?;
        Ok(Self { lexicon, labels })
    }
}

impl Scanner for ToxicityScanner {
    fn kind(&self) -> &'static str {
        "toxicity"
    }

    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        let folded = self.lexicon.fold(input.text);
        let mut findings: Vec<Finding> = Vec::new();
        for hit in self.lexicon.find_in(&folded) {
            let (kind, severity) = self.labels[hit.label];
            // A term listed twice (two categories, or built-in and extra) is one finding:
            // the more severe.
            match findings
                .iter_mut()
                .find(|f| f.start == hit.start && f.end == hit.end)
            {
                Some(f) if f.score >= severity => {}
                Some(f) => *f = Finding::new(kind, hit.start, hit.end, severity),
                None => findings.push(Finding::new(kind, hit.start, hit.end, severity)),
            }
        }
        let strongest = findings.iter().map(|f| f.score).fold(0.0, f32::max);
        let bonus = (COUNT_BONUS * findings.len().saturating_sub(1) as f32).min(MAX_BONUS);
        let score = if findings.is_empty() {
            0.0
        } else {
            (strongest + bonus).min(1.0)
        };
        Ok(Scan { score, findings })
    }
}
