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
    /// Built-in deny topics to add (`weapons`, `drugs`, `gambling`, `adult`, `extremism`,
    /// `malware`; see [`preset_names`]); terms listed under the same name in `deny` are added.
    #[serde(default)]
    pub deny_presets: Vec<String>,
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

/// The built-in topic lists: `topic<TAB>term` a line.
const PRESETS: &str = include_str!("../../data/topics_presets.tsv");

fn preset_lines() -> impl Iterator<Item = (&'static str, &'static str)> {
    PRESETS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(topic, term)| (topic.trim(), term.trim()))
}

fn preset_terms(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    preset_lines()
        .filter(move |(topic, _)| *topic == name)
        .map(|(_, term)| term)
}

/// The names of the built-in topic lists usable in [`TopicsConfig::deny_presets`].
pub fn preset_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = preset_lines().map(|(topic, _)| topic).collect();
    names.dedup();
    names
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
            deny_presets: Vec::new(),
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
        let mut deny = c.deny.clone();
        for name in &c.deny_presets {
            let terms: Vec<String> = preset_terms(name).map(str::to_string).collect();
            if terms.is_empty() {
                return Err(format!(
                    "unknown topic preset {name:?}; known: {}",
                    preset_names().join(", ")
                ));
            }
            deny.entry(name.clone()).or_default().extend(terms);
        }
        Ok(Self {
            deny: lexicon(&deny, c.whole_words, "deny")?,
            deny_kinds: deny.keys().map(|name| format!("topic.{name}")).collect(),
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
