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
