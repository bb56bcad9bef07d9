//! Topic deny and allow lists: named groups of terms and phrases. A denied topic's term in the
//! text is a finding `topic.<name>`; with an allow list, a text that mentions none of the
//! allowed topics is a finding `topic.off_topic`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fold::FoldOptions;
use super::{Lexicon, PLURALS};
use crate::scan::{Finding, GuardStage, Scan, ScanError, ScanInput, Scanner};

/// Topic lists, as written in a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// Topic name → terms/phrases; a match is a finding `topic.<name>`.
    #[serde(default)]
    pub deny: BTreeMap<String, Vec<String>>,
    /// If non-empty: text must mention at least one of these topics, else a finding
    /// `topic.off_topic` (not checked on streamed windows, which are partial by nature).
    #[serde(default)]
    pub allow: BTreeMap<String, Vec<String>>,
    /// Whole-word matching (default true; a term then also matches its plural in -s/-es).
    /// Matching is always case-insensitive.
    #[serde(default = "default_true")]
    pub whole_words: bool,
    /// The score of a denied-topic or off-topic finding (default 1.0).
    #[serde(default = "default_score")]
    pub score: f32,
}

fn default_true() -> bool {
    true
}

fn default_score() -> f32 {
    1.0
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            deny: BTreeMap::new(),
            allow: BTreeMap::new(),
            whole_words: true,
            score: 1.0,
        }
    }
}

/// The topic scanner (kind `topics`).
#[derive(Debug)]
pub struct TopicsScanner {
    deny: Lexicon,
    deny_kinds: Vec<String>,
    allow: Lexicon,
    score: f32,
}

const TOPIC_FOLD: FoldOptions = FoldOptions {
    leet: false,
    collapse_runs: false,
};

fn lexicon(
    topics: &BTreeMap<String, Vec<String>>,
    whole_words: bool,
    which: &str,
) -> Result<Lexicon, String> {
    let mut terms = Vec::new();
    for (i, (name, list)) in topics.iter().enumerate() {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(format!(
                "{which} topic name {name:?} must be lowercase letters, digits, '_' or '-'"
            ));
        }
        if list.is_empty() {
            return Err(format!("{which} topic {name:?} has no terms"));
        }
        for term in list {
            terms.push((
                term.as_str(),
                i,
                if whole_words { PLURALS } else { &[][..] },
            ));
        }
    }
    Lexicon::new(terms, TOPIC_FOLD, whole_words).map_err(|e| format!("{which} topics: {e}"))
}

impl TopicsScanner {
    pub fn new(c: &TopicsConfig) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&c.score) {
            return Err(format!("topics score {} is not within 0..=1", c.score));
        }
        Ok(Self {
            deny: lexicon(&c.deny, c.whole_words, "deny")?,
            deny_kinds: c.deny.keys().map(|name| format!("topic.{name}")).collect(),
            allow: lexicon(&c.allow, c.whole_words, "allow")?,
            score: c.score,
        })
    }
}

impl Scanner for TopicsScanner {
    fn kind(&self) -> &'static str {
        "topics"
    }

    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        if self.deny.is_empty() && self.allow.is_empty() {
            return Ok(Scan::clean());
        }
        let folded = self.deny.fold(input.text);
        let mut findings: Vec<Finding> = self
            .deny
            .find_in(&folded)
            .into_iter()
            .map(|h| Finding::new(self.deny_kinds[h.label].clone(), h.start, h.end, self.score))
            .collect();
        let has_words = folded.text.len() > 2;
        if !self.allow.is_empty()
            && input.stage != GuardStage::Stream
            && has_words
            && self.allow.find_in(&folded).is_empty()
        {
            findings.push(Finding::new(
                "topic.off_topic",
                0,
                input.text.len(),
                self.score,
            ));
        }
        Ok(Scan::from_findings(findings))
    }
}
