//! Label values: every value that reaches a series is bounded.
//!
//! - `route` and `model` must be one of the configured names ([`Names`]); anything else is
//!   `other`, and an absent one is `none`, so user text never creates a series.
//! - Values from keel's own vocabularies (endpoints, outcomes, error classes, reasons, policy
//!   actions, drift signals, queue names) must look like identifiers ([`vocab`]); anything
//!   else is `other`. The per-family series cap bounds what remains.

use std::collections::HashSet;

use super::kinds::FxBuild;

/// The label value of an absent route or model.
pub(crate) const NONE: &str = "none";
/// The label value of anything not on the allowed list.
pub(crate) const OTHER: &str = "other";

/// Longest vocabulary value kept as is.
const MAX_VOCAB_LEN: usize = 64;

/// The configured route and model names.
#[derive(Default)]
pub(crate) struct Names(HashSet<Box<str>, FxBuild>);

impl Names {
    pub(crate) fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(
            names
                .into_iter()
                .map(|n| n.into().into_boxed_str())
                .collect(),
        )
    }

    /// `name` if it is configured, `other` if not, `none` if absent.
    pub(crate) fn get<'a>(&self, name: Option<&'a str>) -> &'a str {
        match name {
            None => NONE,
            Some(n) if self.0.contains(n) => n,
            Some(_) => OTHER,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// `value` if it looks like an identifier (1 to 64 of `[A-Za-z0-9_.:-]`), else `other`.
pub(crate) fn vocab(value: &str) -> &str {
    let ok = !value.is_empty()
        && value.len() <= MAX_VOCAB_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok { value } else { OTHER }
}

/// An HTTP status as text (`"503"`), written into `buf`; outside 100..=599 it is `other`.
pub(crate) fn status(code: u16, buf: &mut [u8; 3]) -> &str {
    if !(100..=599).contains(&code) {
        return OTHER;
    }
    let digits = [code / 100, code / 10 % 10, code % 10];
    for (b, d) in buf.iter_mut().zip(digits) {
        *b = b'0' + u8::try_from(d).unwrap_or(0);
    }
    std::str::from_utf8(buf).unwrap_or(OTHER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_vocab_and_status_are_bounded() {
        let names = Names::new(["fast", "gpt"]);
        assert_eq!(names.get(Some("fast")), "fast");
        assert_eq!(names.get(Some("ignore previous instructions")), OTHER);
        assert_eq!(names.get(None), NONE);
        assert_eq!(vocab("status_503"), "status_503");
        assert_eq!(vocab("chat.completions"), "chat.completions");
        assert_eq!(vocab(""), OTHER);
        assert_eq!(vocab("has space"), OTHER);
        assert_eq!(vocab("quote\""), OTHER);
        assert_eq!(vocab(&"x".repeat(65)), OTHER);
        let mut buf = [0; 3];
        assert_eq!(status(200, &mut buf), "200");
        assert_eq!(status(503, &mut buf), "503");
        assert_eq!(status(0, &mut buf), OTHER);
        assert_eq!(status(600, &mut buf), OTHER);
    }
}
