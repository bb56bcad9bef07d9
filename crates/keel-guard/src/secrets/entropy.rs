//! Character statistics for telling random tokens from words and identifiers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Shannon entropy of `s` in bits per character (over bytes; tokens here are ASCII).
pub fn shannon_entropy(s: &str) -> f32 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f32;
    if n == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

pub fn has_letter_and_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_alphabetic()) && s.bytes().any(|b| b.is_ascii_digit())
}

/// Upper, lower and digit all present.
pub fn has_mixed_classes(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// How many of lowercase, uppercase, digit, other are present.
pub fn class_count(s: &str) -> usize {
    let b = s.as_bytes();
    [
        b.iter().any(u8::is_ascii_lowercase),
        b.iter().any(u8::is_ascii_uppercase),
        b.iter().any(u8::is_ascii_digit),
        b.iter().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|&&x| x)
    .count()
}

/// A token a human did not type: upper, lower and digits, no lowercase run longer than 6
/// (identifiers and words have them), at most two '/' (paths have more), not hex (a `0x`
/// constant, a trace id), and switching between upper, lower and digit often (random base62
/// switches at about 0.6 of adjacent pairs, `KEEL_OTLP_UNSET_7f3a` or `models/all-l6-v2` far
/// less).
pub fn random_looking(s: &str) -> bool {
    if !has_mixed_classes(s) || s.bytes().filter(|&b| b == b'/').count() > 2 {
        return false;
    }
    let body = s.strip_prefix("0x").unwrap_or(s);
    if body
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .all(|b| b.is_ascii_hexdigit())
    {
        return false;
    }
    if class_switch_rate(s) < 0.3 {
        return false;
    }
    let mut run = 0;
    for b in s.bytes() {
        if b.is_ascii_lowercase() {
            run += 1;
            if run > 6 {
                return false;
            }
        } else {
            run = 0;
        }
    }
    true
}

/// Share of adjacent alphanumeric pairs whose classes (upper, lower, digit) differ.
pub fn class_switch_rate(s: &str) -> f32 {
    let class = |b: u8| match b {
        b'A'..=b'Z' => 0,
        b'a'..=b'z' => 1,
        _ => 2,
    };
    let (mut pairs, mut switches) = (0u32, 0u32);
    for w in s.as_bytes().windows(2) {
        if w[0].is_ascii_alphanumeric() && w[1].is_ascii_alphanumeric() {
            pairs += 1;
            switches += u32::from(class(w[0]) != class(w[1]));
        }
    }
    if pairs == 0 {
        0.0
    } else {
        switches as f32 / pairs as f32
    }
}

/// Not a real secret value: a placeholder (`<password>`, `${PASSWORD}`, `xxxxxx`,
/// `changeme`), a template or type (`{}`, `Option<Secret<String>>`), a constant's name
/// (`TEST_KEY`), or words joined by dashes (`not-used-here`).
pub fn looks_like_placeholder(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let constant_name = s.contains('_')
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    let dashed_words = s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_');
    constant_name
        || dashed_words
        || s.contains(['{', '}', '<', '>', '\\'])
        || s.starts_with(['<', '$', '{', '%', '('])
        || s.bytes().all(|b| b == s.as_bytes()[0])
        || [
            "changeme", "password", "example", "your_", "xxx", "***", "redacted", "null", "none",
            "true", "false",
        ]
        .iter()
        .any(|p| lower.contains(p))
}

/// Whether `hay` contains `needle` (lowercase ASCII), ignoring ASCII case.
pub fn contains_ignore_case(hay: &str, needle: &[u8]) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether a JWT header segment decodes (base64url, padding optional) to a JSON object with
/// an "alg" member.
pub fn jwt_header_has_alg(segment: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .is_some_and(|v| v.get("alg").is_some_and(serde_json::Value::is_string))
}
