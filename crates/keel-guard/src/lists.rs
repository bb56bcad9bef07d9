//! Topic and keyword deny/allow lists and the toxicity lexicon: whole-word matching of many
//! terms at once (Aho-Corasick over a folded copy of the text), tolerant of case, spacing,
//! spelled-out words and, for toxicity, leetspeak and repeated letters.
//!
//! - [`topics`]: per-topic deny lists (`topic.<name>`) and an allow list (`topic.off_topic`).
//! - [`toxicity`]: a severity-weighted lexicon in `data/toxicity_*.tsv`.
//! - `fold`: the folding both share.

mod fold;
pub mod topics;
pub mod toxicity;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod toxicity_tests;

pub use topics::{TopicsConfig, TopicsScanner};
pub use toxicity::{ToxicityConfig, ToxicityScanner};

use aho_corasick::{AhoCorasick, MatchKind};
use fold::{FoldOptions, Folded};

/// Inflections a term marked with a trailing `+` may carry ("fuck+" matches "fucking").
const INFLECTIONS: &[&str] = &["ings", "ing", "ers", "er", "ed", "es", "in", "s", "d", "y"];
/// Inflections of a `+` term ending in `e`, after the `e` ("hate+" matches "hating").
const E_DROPPED: &[&str] = &["ings", "ing", "in"];
/// Plural endings any topic term may carry ("bomb" matches "bombs").
const PLURALS: &[&str] = &["es", "s"];

/// Whether an English inflection fits a stem: "-es" only after s, x, z, ch, sh ("bitches",
/// not "shites" from "shit").
fn suffix_fits(stem: &[u8], suffix: &str) -> bool {
    suffix != "es"
        || stem.ends_with(b"ch")
        || stem.ends_with(b"sh")
        || stem.last().is_some_and(|b| matches!(b, b's' | b'x' | b'z'))
}

/// One pattern: its repeat counts, the endings it may carry and what it stands for
/// (indices into the owner's labels; a term can belong to several).
#[derive(Debug)]
struct Pattern {
    runs: Vec<u16>,
    suffixes: &'static [&'static str],
    labels: Vec<usize>,
}

/// A term found in the text: the owner's label and the original byte span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hit {
    pub label: usize,
    pub start: usize,
    pub end: usize,
}

/// Many terms matched at once over a folded text.
#[derive(Debug)]
pub(crate) struct Lexicon {
    ac: Option<AhoCorasick>,
    patterns: Vec<Pattern>,
    opts: FoldOptions,
    whole_words: bool,
}

impl Lexicon {
    /// Builds a lexicon from `(term, label, suffixes)`. A term that folds to nothing is an error.
    pub(crate) fn new<'a>(
        terms: impl IntoIterator<Item = (&'a str, usize, &'static [&'static str])>,
        opts: FoldOptions,
        whole_words: bool,
    ) -> Result<Self, String> {
        let mut folded_terms: Vec<String> = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for (term, label, suffixes) in terms {
            let (folded, runs) = fold::fold_term(term, opts)
                .ok_or_else(|| format!("term {term:?} has no letters or digits"))?;
            let id = *index.entry(folded.clone()).or_insert_with(|| {
                folded_terms.push(folded);
                patterns.push(Pattern {
                    runs: runs.clone(),
                    suffixes,
                    labels: Vec::new(),
                });
                patterns.len() - 1
            });
            let p = &mut patterns[id];
            // Of two spellings folding alike, the one asking less of the text wins.
            for (have, want) in p.runs.iter_mut().zip(&runs) {
                *have = (*have).min(*want);
            }
            if suffixes.len() > p.suffixes.len() {
                p.suffixes = suffixes;
            }
            if !p.labels.contains(&label) {
                p.labels.push(label);
            }
        }
        let ac = if folded_terms.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&folded_terms)
                    .map_err(|e| format!("cannot build the term matcher: {e}"))?,
            )
        };
        Ok(Self {
            ac,
            patterns,
            opts,
            whole_words,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ac.is_none()
    }

    pub(crate) fn fold(&self, text: &str) -> Folded {
        fold::fold(text, self.opts)
    }

    /// Terms in `folded`, leftmost-longest and not overlapping, one hit per label.
    pub(crate) fn find_in(&self, folded: &Folded) -> Vec<Hit> {
        let Some(ac) = &self.ac else {
            return Vec::new();
        };
        let bytes = folded.text.as_bytes();
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        for m in ac.find_overlapping_iter(folded.text.as_str()) {
            let pattern = &self.patterns[m.pattern().as_usize()];
            let (s, mut e) = (m.start(), m.end());
            let runs_ok = pattern
                .runs
                .iter()
                .zip(&folded.runs[s..e])
                .all(|(want, have)| have >= want);
            if !runs_ok {
                continue;
            }
            if self.whole_words {
                if bytes[s - 1] != b' ' {
                    continue;
                }
                if bytes[e] != b' ' {
                    let stem = &bytes[s..e];
                    let Some(suffix) = pattern.suffixes.iter().find(|suf| {
                        bytes[e..].starts_with(suf.as_bytes())
                            && bytes.get(e + suf.len()) == Some(&b' ')
                            && suffix_fits(stem, suf)
                    }) else {
                        continue;
                    };
                    e += suffix.len();
                }
            }
            spans.push((s, e, m.pattern().as_usize()));
        }
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut hits = Vec::new();
        let mut covered = 0;
        for (s, e, id) in spans {
            if s < covered {
                continue;
            }
            covered = e;
            let (start, end) = folded.original_span(s, e);
            for &label in &self.patterns[id].labels {
                hits.push(Hit { label, start, end });
            }
        }
        hits
    }
}
