//! Finding encoded payloads inside a text and decoding them: base64/base64url, base32,
//! RFC 1924 base85, hex, 7/8-bit binary, percent-escapes, Unicode tag characters, and rot13
//! when the text says so. Only decodings that read like prose are kept.

use base64::Engine as _;

/// An encoded payload found in a text, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The encoded run's byte range in the scanned text.
    pub start: usize,
    pub end: usize,
    /// `base64`, `base32`, `base85`, `hex`, `binary`, `percent`, `tags`, `rot13`.
    pub encoding: &'static str,
    pub text: String,
}

/// The shortest encoded run worth decoding, in characters.
const MIN_RUN: usize = 16;
/// Decoded output beyond this many bytes (all payloads together) is not returned.
pub const MAX_DECODED_BYTES: usize = 64 * 1024;

/// The payloads hidden in `text` that decode to readable text: base64/base64url, base32,
/// base85, hex and binary runs, percent-escaped and Unicode-tag text, and the rot13 reading
/// of a text that says it is rot13. Noise (hashes, keys, JWT signatures) is dropped.
pub fn decoded_variants(text: &str) -> Vec<String> {
    decode_payloads(text, MAX_DECODED_BYTES)
        .into_iter()
        .map(|d| d.text)
        .collect()
}

/// [`decoded_variants`] with where each payload was and how it was encoded; decodes nested
/// layers once more (hex inside base64), spans pointing at the outer run.
pub fn decode_payloads(text: &str, max_bytes: usize) -> Vec<Decoded> {
    let mut found = decode_layer(text, max_bytes);
    let mut budget = max_bytes.saturating_sub(found.iter().map(|d| d.text.len()).sum());
    let mut nested = Vec::new();
    for d in &found {
        for inner in decode_layer(&d.text, budget) {
            budget = budget.saturating_sub(inner.text.len());
            nested.push(Decoded {
                start: d.start,
                end: d.end,
                encoding: inner.encoding,
                text: inner.text,
            });
        }
    }
    found.extend(nested);
    found
}

fn decode_layer(text: &str, max_bytes: usize) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut total = 0usize;
    let mut add = |out: &mut Vec<Decoded>, d: Decoded| {
        if total + d.text.len() <= max_bytes && reads_like_text(&d.text) {
            total += d.text.len();
            out.push(d);
        }
    };
    let bytes = text.as_bytes();
    // Runs of base64/base32/hex characters, then of the wider base85 alphabet.
    let mut seen = Vec::new();
    for (s, e) in runs(bytes, |b| {
        b.is_ascii_alphanumeric() || b"+/=-_".contains(&b)
    }) {
        seen.push((s, e));
        for (encoding, decoded) in decode_run(&text[s..e]) {
            add(
                &mut out,
                Decoded {
                    start: s,
                    end: e,
                    encoding,
                    text: decoded,
                },
            );
        }
    }
    for (s, e) in runs(bytes, is_b85_char) {
        if seen.contains(&(s, e)) {
            continue;
        }
        if let Some(t) = decode_base85(&text[s..e]).and_then(|b| String::from_utf8(b).ok()) {
            add(
                &mut out,
                Decoded {
                    start: s,
                    end: e,
                    encoding: "base85",
                    text: t,
                },
            );
        }
    }
    // Binary: 7- or 8-bit groups separated by spaces.
    for (s, e) in runs(bytes, |b| matches!(b, b'0' | b'1' | b' ')) {
        if let Some(t) = decode_binary(&text[s..e]) {
            add(
                &mut out,
                Decoded {
                    start: s,
                    end: e,
                    encoding: "binary",
                    text: t,
                },
            );
        }
    }
    if bytes.windows(3).filter(|w| is_pct(w)).count() >= 3
        && let Some(t) = decode_percent(text)
    {
        add(
            &mut out,
            Decoded {
                start: 0,
                end: text.len(),
                encoding: "percent",
                text: t,
            },
        );
    }
    if let Some((s, e, t)) = decode_tags(text) {
        add(
            &mut out,
            Decoded {
                start: s,
                end: e,
                encoding: "tags",
                text: t,
            },
        );
    }
    let lower_has = |needle: &str| {
        bytes
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if lower_has("rot13") || lower_has("rot-13") || lower_has("caesar") {
        add(
            &mut out,
            Decoded {
                start: 0,
                end: text.len(),
                encoding: "rot13",
                text: rot13(text),
            },
        );
    }
    out
}

fn is_pct(w: &[u8]) -> bool {
    w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit()
}

fn is_b85_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&()*+-;<=>?@^_`{|}~".contains(&b)
}

/// Maximal byte runs of at least [`MIN_RUN`] bytes satisfying `class`, trimmed of spaces.
fn runs(bytes: &[u8], class: impl Fn(u8) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !class(bytes[i]) || bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let s = i;
        while i < bytes.len() && class(bytes[i]) {
            i += 1;
        }
        let mut e = i;
        while e > s && bytes[e - 1] == b' ' {
            e -= 1;
        }
        if e - s >= MIN_RUN {
            out.push((s, e));
        }
    }
    out
}

/// Every reading of one alphabet run that yields UTF-8.
fn decode_run(run: &str) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let utf8 = |b: Vec<u8>| String::from_utf8(b).ok();
    let all = |f: fn(u8) -> bool| run.bytes().all(f);
    if all(|b| b.is_ascii_hexdigit()) && run.len().is_multiple_of(2) {
        if let Some(t) = hex::decode(run).ok().and_then(utf8) {
            out.push(("hex", t));
        }
        return out;
    }
    if all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b)) {
        let trimmed = run.trim_end_matches('=');
        let engines = [
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        if let Some(t) = engines
            .iter()
            .find_map(|e| e.decode(trimmed).ok().and_then(utf8))
        {
            out.push(("base64", t));
        }
        if all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b) || b == b'=')
            && let Some(t) = decode_base32(trimmed).and_then(utf8)
        {
            out.push(("base32", t));
        }
    }
    out
}

fn decode_base32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut acc, mut bits) = (0u64, 0u32);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'2'..=b'7' => b - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// RFC 1924 base85 (Python's `b85encode`); a short final group is padded with the top digit.
fn decode_base85(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] =
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~";
    let digit = |b: u8| ALPHABET.iter().position(|&a| a == b).map(|p| p as u32);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 4 / 5);
    for chunk in bytes.chunks(5) {
        let mut acc: u64 = 0;
        for i in 0..5 {
            acc = acc * 85 + u64::from(chunk.get(i).map_or(Some(84), |&b| digit(b))?);
        }
        if acc > u64::from(u32::MAX) {
            return None;
        }
        let word = (acc as u32).to_be_bytes();
        out.extend_from_slice(&word[..chunk.len().saturating_sub(1).min(4)]);
    }
    Some(out)
}

fn decode_binary(run: &str) -> Option<String> {
    let groups: Vec<&str> = run.split(' ').filter(|g| !g.is_empty()).collect();
    if groups.len() < 4 || groups.iter().any(|g| !(7..=8).contains(&g.len())) {
        return None;
    }
    let bytes: Vec<u8> = groups
        .iter()
        .map(|g| u8::from_str_radix(g, 2).ok())
        .collect::<Option<_>>()?;
    String::from_utf8(bytes).ok()
}

fn decode_percent(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if i + 3 <= b.len() && is_pct(&b[i..i + 3]) {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Unicode tag characters (U+E0020..U+E007E) shadow ASCII one for one and render invisibly.
fn decode_tags(text: &str) -> Option<(usize, usize, String)> {
    let mut out = String::new();
    let (mut start, mut end) = (None, 0);
    for (at, c) in text.char_indices() {
        if let '\u{E0020}'..='\u{E007E}' = c {
            out.push(char::from((c as u32 - 0xE0000) as u8));
            start.get_or_insert(at);
            end = at + c.len_utf8();
        }
    }
    (out.len() >= 4).then(|| (start.unwrap_or(0), end, out))
}

fn rot13(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            c => c,
        })
        .collect()
}

/// Decoded bytes that are prose: at least 4 characters, mostly printable, with a run of three
/// letters and a space or punctuation between words.
fn reads_like_text(t: &str) -> bool {
    let n = t.chars().count();
    if n < 4 {
        return false;
    }
    let printable = t
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
        .filter(|c| *c != '\u{FFFD}')
        .count();
    let mut run = 0;
    let mut longest = 0;
    for c in t.chars() {
        run = if c.is_alphabetic() { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    printable * 100 >= n * 85 && longest >= 3 && t.contains(' ')
}
