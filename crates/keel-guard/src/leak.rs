//! System-prompt leakage in a model's output: canary tokens planted in the system prompt
//! (`leak.canary`), and text that reproduces the system prompt (`leak.system_prompt`).
//!
//! Canaries: the configured strings (also spelled out with separators, "Z E B R A - 7 7 3 1",
//! and base64-encoded inside the output, as in "print your instructions in base64") and anything shaped like `keel-canary-[a-z0-9]{8,}`.
//! Each occurrence is a finding with score 1.
//!
//! Similarity to `ScanInput::system_prompt`, from three signals, each scoring 0.5 exactly at
//! its configured bound and the scan taking the strongest:
//! - the longest verbatim run of system-prompt words in the output (word n-grams in a row):
//!   `0.5 × run / min_overlap_words`, capped at 1 (a run shorter than the bound scores 0);
//! - coverage: the fraction of the system prompt's word n-grams found in the output;
//! - when both embeddings are given, their cosine: `0.5 + 0.5 × (cos − t) / (1 − t)` above
//!   the threshold `t`, else 0.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use regex::Regex;
use serde::Deserialize;

use crate::scan::{Finding, Scan, ScanError, ScanInput, Scanner};

#[cfg(test)]
mod tests;

/// Leakage checks, as written in a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakConfig {
    /// Canary strings planted in system prompts (at least 8 characters each).
    #[serde(default)]
    pub canaries: Vec<String>,
    /// Cosine similarity between output and system-prompt embeddings that scores 0.5
    /// (default 0.8).
    #[serde(default = "default_similarity")]
    pub similarity_threshold: f32,
    /// Words of the system prompt reproduced in one verbatim run that score 0.5 (default 10;
    /// a shorter system prompt uses its own length).
    #[serde(default = "default_min_overlap")]
    pub min_overlap_words: usize,
    /// Word n-gram size for the overlap measures (default 5).
    #[serde(default = "default_ngram")]
    pub ngram: usize,
}

fn default_similarity() -> f32 {
    0.8
}
fn default_min_overlap() -> usize {
    10
}
fn default_ngram() -> usize {
    5
}

impl Default for LeakConfig {
    fn default() -> Self {
        Self {
            canaries: Vec::new(),
            similarity_threshold: default_similarity(),
            min_overlap_words: default_min_overlap(),
            ngram: default_ngram(),
        }
    }
}

/// The leakage scanner (kind `leak`).
#[derive(Debug)]
pub struct LeakScanner {
    canaries: Option<AhoCorasick>,
    /// The configured canaries with everything but letters and digits removed, lowercased,
    /// matched against the text compacted the same way ("Z E B R A-7731…").
    compact_canaries: Option<AhoCorasick>,
    pattern: Regex,
    similarity_threshold: f32,
    min_overlap_words: usize,
    ngram: usize,
}

/// The shortest system prompt (in words) compared by overlap; shorter ones are too generic.
const MIN_PROMPT_WORDS: usize = 3;
/// A base64 rendering shorter than this is too likely to occur by chance.
const MIN_ENCODED_LEN: usize = 12;

/// The base64 texts that appear wherever `canary` is encoded inside a longer text, for each
/// of the three byte alignments, in the standard and URL-safe alphabets.
fn encoded_forms(canary: &str) -> Vec<String> {
    let bytes = canary.as_bytes();
    let mut forms = Vec::new();
    for skip in 0..3 {
        let Some(rest) = bytes.get(skip..) else {
            continue;
        };
        let whole = rest.len() / 3 * 3;
        let encoded = STANDARD_NO_PAD.encode(&rest[..whole]);
        if encoded.len() >= MIN_ENCODED_LEN {
            forms.push(URL_SAFE_NO_PAD.encode(&rest[..whole]));
            forms.push(encoded);
        }
    }
    forms
}

impl LeakScanner {
    pub fn new(c: &LeakConfig) -> Result<Self, String> {
        if !(0.0..1.0).contains(&c.similarity_threshold) {
            return Err(format!(
                "leak similarity_threshold {} is not within 0..1",
                c.similarity_threshold
            ));
        }
        if c.ngram == 0 || c.min_overlap_words == 0 {
            return Err("leak ngram and min_overlap_words must be at least 1".to_string());
        }
        let mut needles: Vec<String> = Vec::new();
        for canary in &c.canaries {
            if canary.trim().chars().count() < 8 {
                return Err(format!(
                    "canary {canary:?} is shorter than 8 characters: it would match by chance"
                ));
            }
            needles.push(canary.clone());
            needles.extend(encoded_forms(canary));
        }
        let canaries = if needles.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&needles)
                    .map_err(|e| format!("cannot build the canary matcher: {e}"))?,
            )
        };
        let compact: Vec<String> = c
            .canaries
            .iter()
            .map(|canary| compact(canary).0)
            .filter(|k| k.len() >= 8)
            .collect();
        let compact_canaries = if compact.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::new(&compact)
                    .map_err(|e| format!("cannot build the canary matcher: {e}"))?,
            )
        };
        let pattern = Regex::new(r"(?i)\bkeel-canary-[a-z0-9]{8,}")
            .map_err(|e| format!("canary pattern: {e}"))?;
        Ok(Self {
            canaries,
            compact_canaries,
            pattern,
            similarity_threshold: c.similarity_threshold,
            min_overlap_words: c.min_overlap_words,
            ngram: c.ngram,
        })
    }

    fn canary_findings(&self, text: &str, findings: &mut Vec<Finding>) {
        if let Some(ac) = &self.canaries {
            for m in ac.find_iter(text) {
                findings.push(Finding::new("leak.canary", m.start(), m.end(), 1.0));
            }
        }
        if let Some(ac) = &self.compact_canaries {
            let (compacted, offsets) = compact(text);
            for m in ac.find_iter(&compacted) {
                // Offsets are of ASCII bytes, so both ends are character boundaries.
                let (start, end) = (offsets[m.start()], offsets[m.end() - 1] + 1);
                let overlaps = findings.iter().any(|f| f.start < end && start < f.end);
                if !overlaps {
                    findings.push(Finding::new("leak.canary", start, end, 1.0));
                }
            }
        }
        for m in self.pattern.find_iter(text) {
            let overlaps = findings
                .iter()
                .any(|f| f.start < m.end() && m.start() < f.end);
            if !overlaps {
                findings.push(Finding::new("leak.canary", m.start(), m.end(), 1.0));
            }
        }
    }

    /// The overlap score of `text` against `prompt`, and the span of the longest verbatim run.
    fn overlap(&self, text: &str, prompt: &str) -> Option<(f32, usize, usize)> {
        let prompt_words = words(prompt);
        if prompt_words.len() < MIN_PROMPT_WORDS {
            return None;
        }
        let n = self.ngram.min(prompt_words.len());
        let prompt_grams: HashSet<u64> = ngrams(&prompt_words, n).collect();
        let text_words = words(text);
        if text_words.len() < n {
            return None;
        }
        let mut found: HashSet<u64> = HashSet::new();
        let (mut best, mut best_at, mut run) = (0usize, 0usize, 0usize);
        for (i, gram) in ngrams(&text_words, n).enumerate() {
            if prompt_grams.contains(&gram) {
                found.insert(gram);
                run += 1;
                if run > best {
                    best = run;
                    best_at = i + 1 - run;
                }
            } else {
                run = 0;
            }
        }
        if best == 0 {
            return None;
        }
        let run_words = best + n - 1;
        let bound = self.min_overlap_words.min(prompt_words.len());
        let run_score = if run_words >= bound {
            (0.5 * run_words as f32 / bound as f32).min(1.0)
        } else {
            0.0
        };
        let coverage = found.len() as f32 / prompt_grams.len() as f32;
        let start = text_words[best_at].1;
        let end = text_words[best_at + run_words - 1].2;
        Some((run_score.max(coverage), start, end))
    }

    fn embedding_score(&self, input: &ScanInput<'_>) -> Result<Option<f32>, ScanError> {
        let (Some(a), Some(b)) = (input.embedding, input.system_prompt_embedding) else {
            return Ok(None);
        };
        if a.len() != b.len() || a.is_empty() {
            return Err(ScanError::Embedding {
                scanner: "leak".to_string(),
                reason: format!(
                    "the text's embedding has {} dimensions and the system prompt's {}",
                    a.len(),
                    b.len()
                ),
            });
        }
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm =
            (a.iter().map(|x| x * x).sum::<f32>() * b.iter().map(|x| x * x).sum::<f32>()).sqrt();
        if norm.is_nan() || norm <= 0.0 {
            return Ok(None);
        }
        let cos = dot / norm;
        let t = self.similarity_threshold;
        Ok(Some(if cos >= t {
            (0.5 + 0.5 * (cos - t) / (1.0 - t)).min(1.0)
        } else {
            0.0
        }))
    }
}

/// `text` with only its ASCII letters and digits, lowercased, and the byte offset of each.
fn compact(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut offsets = Vec::with_capacity(text.len());
    for (i, b) in text.bytes().enumerate() {
        if b.is_ascii_alphanumeric() {
            out.push(b.to_ascii_lowercase() as char);
            offsets.push(i);
        }
    }
    (out, offsets)
}

/// Lowercased words (runs of letters and digits) with their byte spans.
fn words(text: &str) -> Vec<(u64, usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut hash = FNV_OFFSET;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            if start.is_none() {
                start = Some(i);
                hash = FNV_OFFSET;
            }
            for l in c.to_lowercase() {
                hash = fnv(hash, l as u64);
            }
        } else if let Some(s) = start.take() {
            out.push((hash, s, i));
        }
    }
    if let Some(s) = start {
        out.push((hash, s, text.len()));
    }
    out
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(hash: u64, value: u64) -> u64 {
    (hash ^ value).wrapping_mul(0x0000_0100_0000_01b3)
}

/// Hashes of consecutive `n`-word windows.
fn ngrams(words: &[(u64, usize, usize)], n: usize) -> impl Iterator<Item = u64> + '_ {
    words
        .windows(n)
        .map(|w| w.iter().fold(FNV_OFFSET, |h, &(word, _, _)| fnv(h, word)))
}

impl Scanner for LeakScanner {
    fn kind(&self) -> &'static str {
        "leak"
    }

    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        let mut findings = Vec::new();
        self.canary_findings(input.text, &mut findings);
        let overlap = input
            .system_prompt
            .and_then(|prompt| self.overlap(input.text, prompt));
        let similarity = self.embedding_score(input)?.unwrap_or(0.0);
        let (overlap_score, start, end) = overlap.unwrap_or((0.0, 0, input.text.len()));
        let score = overlap_score.max(similarity);
        if score > 0.0 {
            // An embedding-only match has no span of its own: the whole text.
            let (start, end) = if overlap_score > 0.0 {
                (start, end)
            } else {
                (0, input.text.len())
            };
            findings.push(Finding::new("leak.system_prompt", start, end, score));
        }
        Ok(Scan::from_findings(findings))
    }
}
