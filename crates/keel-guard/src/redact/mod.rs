//! Reversible redaction: findings are replaced by typed placeholders (`[EMAIL_1]`,
//! `[CREDIT_CARD_2]`) before a provider sees the text, and the originals are put back into
//! the caller's response — also across streamed chunks ([`StreamRestorer`]).
//!
//! One [`RedactionMap`] covers one request: the same original value gets the same placeholder
//! in every message. A placeholder number already present in the text being redacted is
//! skipped, so text that happens to contain `[EMAIL_1]` is not restored into someone's email.
//! Restoration replaces only placeholders that are in the map; anything else that looks like
//! one is left alone. A model that rewrites a placeholder (drops the brackets, changes case)
//! defeats restoration; the placeholder then stays in the answer.

mod stream;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Bound;

use crate::scan::Finding;

pub use stream::StreamRestorer;

/// Placeholders and the originals they stand for.
#[derive(Default, Clone)]
pub struct RedactionMap {
    /// Placeholder → original (ordered, for prefix lookups while streaming).
    originals: BTreeMap<String, String>,
    /// Original → placeholder.
    placeholders: HashMap<String, String>,
    /// Label (`EMAIL`) → the last number used.
    counters: HashMap<String, usize>,
    /// Length of the longest placeholder.
    max_len: usize,
}

impl fmt::Debug for RedactionMap {
    /// Placeholders only: the originals are exactly what must not end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactionMap")
            .field("placeholders", &self.originals.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `email` → `EMAIL`, `secret.aws_access_key` → `SECRET_AWS_ACCESS_KEY`.
pub fn label(kind: &str) -> String {
    let l: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if l.is_empty() {
        "REDACTED".to_string()
    } else {
        l
    }
}

impl RedactionMap {
    /// An empty map (one per request).
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces each finding's span with a typed placeholder `[EMAIL_1]`, `[CREDIT_CARD_2]`...
    /// (kind uppercased, non-alphanumerics → '_'). The same original value gets the same
    /// placeholder across calls (so one map can cover all messages of a request).
    /// Overlapping findings: the higher score wins, then the longer span. Findings whose
    /// span is empty, out of range or not on char boundaries are ignored.
    pub fn redact(&mut self, text: &str, findings: &[Finding]) -> String {
        let mut spans: Vec<&Finding> = findings
            .iter()
            .filter(|f| {
                f.start < f.end
                    && f.end <= text.len()
                    && text.is_char_boundary(f.start)
                    && text.is_char_boundary(f.end)
            })
            .collect();
        spans.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then((b.end - b.start).cmp(&(a.end - a.start)))
                .then(a.start.cmp(&b.start))
        });
        let mut kept: Vec<&Finding> = Vec::with_capacity(spans.len());
        for f in spans {
            if kept.iter().all(|k| f.end <= k.start || f.start >= k.end) {
                kept.push(f);
            }
        }
        kept.sort_by_key(|f| f.start);
        let mut out = String::with_capacity(text.len() + kept.len() * 8);
        let mut at = 0;
        for f in kept {
            out.push_str(&text[at..f.start]);
            let placeholder = self.placeholder_for(&text[f.start..f.end], &f.kind, text);
            out.push_str(&placeholder);
            at = f.end;
        }
        out.push_str(&text[at..]);
        out
    }

    fn placeholder_for(&mut self, original: &str, kind: &str, text: &str) -> String {
        if let Some(p) = self.placeholders.get(original) {
            return p.clone();
        }
        let label = label(kind);
        let counter = self.counters.entry(label.clone()).or_insert(0);
        let placeholder = loop {
            *counter += 1;
            let p = format!("[{label}_{counter}]");
            if !text.contains(&p) && !self.originals.contains_key(&p) {
                break p;
            }
        };
        self.max_len = self.max_len.max(placeholder.len());
        self.originals
            .insert(placeholder.clone(), original.to_string());
        self.placeholders
            .insert(original.to_string(), placeholder.clone());
        placeholder
    }

    /// Puts the originals back wherever a placeholder appears.
    pub fn restore(&self, text: &str) -> String {
        if self.originals.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut from = 0;
        while let Some(i) = text[from..].find('[').map(|i| i + from) {
            let tail = &text[i..];
            let close = tail
                .as_bytes()
                .iter()
                .take(self.max_len)
                .position(|&b| b == b']');
            if let Some(c) = close
                && let Some(orig) = self.originals.get(&tail[..=c])
            {
                out.push_str(&text[at..i]);
                out.push_str(orig);
                at = i + c + 1;
                from = at;
                continue;
            }
            from = i + 1;
        }
        out.push_str(&text[at..]);
        out
    }

    /// The original behind `placeholder` (`[EMAIL_1]`), if it is in the map.
    pub fn original(&self, placeholder: &str) -> Option<&str> {
        self.originals.get(placeholder).map(String::as_str)
    }

    /// Whether `tail` (starting with '[') could still grow into a placeholder in the map.
    pub(crate) fn is_placeholder_prefix(&self, tail: &str) -> bool {
        tail.len() < self.max_len
            && self
                .originals
                .range::<str, _>((Bound::Included(tail), Bound::Unbounded))
                .next()
                .is_some_and(|(p, _)| p.starts_with(tail))
    }

    /// Number of placeholders.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    /// Whether nothing has been redacted.
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }
}

#[cfg(test)]
mod tests;
