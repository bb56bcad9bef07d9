//! Context words: lowercase ASCII phrases looked up case-insensitively in a window of text
//! around a match, without allocating.

/// How far (bytes) before a match context words are looked for.
pub const BEFORE: usize = 48;
/// How far (bytes) after a match context words are looked for.
pub const AFTER: usize = 24;

/// Whether any of `words` (lowercase ASCII) occurs, as a whole word, within `before` bytes
/// before `start` or `after` bytes after `end` in `text`.
pub fn near<S: AsRef<str>>(
    text: &str,
    start: usize,
    end: usize,
    words: &[S],
    before: usize,
    after: usize,
) -> bool {
    let bytes = text.as_bytes();
    let lo = start.saturating_sub(before);
    let hi = (end + after).min(bytes.len());
    let left = &bytes[lo..start.min(bytes.len())];
    let right = &bytes[end.min(bytes.len())..hi];
    words.iter().any(|w| {
        contains_word(left, w.as_ref().as_bytes()) || contains_word(right, w.as_ref().as_bytes())
    })
}

/// Whether `hay` contains `needle` (lowercase ASCII) case-insensitively, not inside a longer
/// word (the bytes around it are not ASCII alphanumerics).
pub fn contains_word(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || hay.len() < needle.len() {
        return false;
    }
    let first = needle[0];
    for i in 0..=hay.len() - needle.len() {
        if hay[i].to_ascii_lowercase() != first {
            continue;
        }
        let cand = &hay[i..i + needle.len()];
        if !cand.eq_ignore_ascii_case(needle) {
            continue;
        }
        let before_ok =
            i == 0 || !hay[i - 1].is_ascii_alphanumeric() || !first.is_ascii_alphanumeric();
        let after_ok = hay.get(i + needle.len()).is_none_or(|b| {
            !b.is_ascii_alphanumeric() || !needle[needle.len() - 1].is_ascii_alphanumeric()
        });
        if before_ok && after_ok {
            return true;
        }
    }
    false
}

/// Whether the byte before `at` (if any) is an ASCII alphanumeric or one of `extra`.
pub fn glued_before(text: &str, at: usize, extra: &[u8]) -> bool {
    at > 0
        && text
            .as_bytes()
            .get(at - 1)
            .is_some_and(|b| b.is_ascii_alphanumeric() || extra.contains(b))
}

/// Whether the byte at `at` (if any) is an ASCII alphanumeric or one of `extra`.
pub fn glued_after(text: &str, at: usize, extra: &[u8]) -> bool {
    text.as_bytes()
        .get(at)
        .is_some_and(|b| b.is_ascii_alphanumeric() || extra.contains(b))
}

/// A list of context words compiled into one case-insensitive automaton, so looking for any
/// of them around a match is a single pass over the window.
#[derive(Debug, Clone)]
pub struct ContextWords {
    ac: aho_corasick::AhoCorasick,
    /// Whether each word starts / ends with an alphanumeric (then it must not touch one).
    edges: Vec<(bool, bool)>,
}

impl ContextWords {
    /// Compiles `words` (lowercase ASCII phrases).
    pub fn new<S: AsRef<str>>(words: &[S]) -> Result<Self, String> {
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(words.iter().map(|w| w.as_ref()))
            .map_err(|e| format!("context words: {e}"))?;
        let edges = words
            .iter()
            .map(|w| {
                let b = w.as_ref().as_bytes();
                (
                    b.first().is_some_and(u8::is_ascii_alphanumeric),
                    b.last().is_some_and(u8::is_ascii_alphanumeric),
                )
            })
            .collect();
        Ok(Self { ac, edges })
    }

    /// Whether a word occurs, as a whole word, within `before` bytes before `start` or
    /// `after` bytes after `end`.
    pub fn near(&self, text: &str, start: usize, end: usize, before: usize, after: usize) -> bool {
        let b = text.as_bytes();
        let lo = start.saturating_sub(before);
        let hi = (end + after).min(b.len());
        self.in_window(&b[lo..start.min(b.len())]) || self.in_window(&b[end.min(b.len())..hi])
    }

    fn in_window(&self, w: &[u8]) -> bool {
        self.ac.find_overlapping_iter(w).any(|m| {
            let (alnum_start, alnum_end) = self.edges[m.pattern().as_usize()];
            let ok_before =
                !alnum_start || m.start() == 0 || !w[m.start() - 1].is_ascii_alphanumeric();
            let ok_after = !alnum_end || w.get(m.end()).is_none_or(|c| !c.is_ascii_alphanumeric());
            ok_before && ok_after
        })
    }
}
