//! Text de-obfuscation for the injection heuristics: folds the tricks attackers use to slip an
//! instruction past a pattern (compatibility forms, accents, homoglyphs, leetspeak, invisible
//! characters, spaced-out letters, case) into plain lowercase ASCII-ish text, and finds encoded
//! payloads (base64, base32, base85, hex, binary, percent-escapes, Unicode tag characters,
//! rot13) inside a text and decodes them.
//!
//! [`normalize_mapped`] also returns, for every output byte, the byte offset in the input it
//! came from, so a pattern found in the normalized text can be reported as a span of the
//! original text.

use base64::Engine as _;
use unicode_normalization::UnicodeNormalization;

/// A normalized text and the origin of each of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub text: String,
    /// `origin[i]` is the byte offset in the input of the character that produced output byte
    /// `i`; `origin[text.len()]` is the input's length.
    pub origin: Vec<usize>,
}

impl Mapped {
    /// The input byte range behind the output byte range `start..end`.
    pub fn source_span(&self, start: usize, end: usize, input: &str) -> (usize, usize) {
        let s = self.origin.get(start).copied().unwrap_or(input.len());
        // The end is the end of the input character behind the last output byte.
        let e = if end == 0 || end <= start {
            s
        } else {
            let last = self.origin.get(end - 1).copied().unwrap_or(input.len());
            input[last..]
                .chars()
                .next()
                .map_or(input.len(), |c| last + c.len_utf8())
        };
        (s, e.max(s))
    }
}

/// De-obfuscates `text` for pattern matching: compatibility folding (fullwidth, mathematical
/// letters, ligatures), accents stripped, Cyrillic/Greek homoglyphs to ASCII, invisible
/// characters removed, leetspeak inside words folded ("1gn0re" → "ignore"), letters spaced
/// out one by one joined ("i g n o r e" → "ignore"), whitespace collapsed, lowercase.
pub fn normalize(text: &str) -> String {
    normalize_mapped(text).text
}

/// [`normalize`] with the origin of every output byte.
pub fn normalize_mapped(text: &str) -> Mapped {
    // Pass 1: per character folding into (char, origin) pairs.
    let mut chars: Vec<(char, usize)> = Vec::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() {
            chars.push((' ', at));
            continue;
        }
        if c.is_ascii() {
            chars.push((c.to_ascii_lowercase(), at));
            continue;
        }
        if let Some(a) = homoglyph(c) {
            chars.push((a, at));
            continue;
        }
        for d in std::iter::once(c).nfkd() {
            if is_combining(d) {
                continue;
            }
            match d {
                'ß' => {
                    chars.push(('s', at));
                    chars.push(('s', at));
                }
                'æ' | 'Æ' => {
                    chars.push(('a', at));
                    chars.push(('e', at));
                }
                'œ' | 'Œ' => {
                    chars.push(('o', at));
                    chars.push(('e', at));
                }
                'ø' | 'Ø' => chars.push(('o', at)),
                d if d.is_whitespace() => chars.push((' ', at)),
                d => match homoglyph(d) {
                    Some(a) => chars.push((a, at)),
                    None => chars.extend(d.to_lowercase().map(|l| (l, at))),
                },
            }
        }
    }
    // Pass 2: words (split on spaces) get leetspeak folding; runs of single letters separated
    // by single spaces are joined; runs of spaces collapse to one.
    let words = split_words(&chars);
    let mut out = Mapped {
        text: String::with_capacity(text.len()),
        origin: Vec::with_capacity(text.len() + 1),
    };
    let mut i = 0;
    while i < words.len() {
        let run = spaced_run(&chars, &words, i);
        if !out.text.is_empty() {
            let at = chars[words[i].0].1;
            push(&mut out, ' ', at);
        }
        if run >= 3 {
            for w in &words[i..i + run] {
                let (c, at) = chars[w.0];
                push(&mut out, unleet(c).unwrap_or(c), at);
            }
            i += run;
            continue;
        }
        let (s, e) = (words[i].0, words[i].1);
        let word = &chars[s..e];
        let leet = is_leet_word(word);
        // Symbols fold only inside the word: "help!" keeps its "!", "p$ss" does not.
        let core_start = word
            .iter()
            .position(|(c, _)| c.is_alphanumeric())
            .unwrap_or(0);
        let core_end = word
            .iter()
            .rposition(|(c, _)| c.is_alphanumeric())
            .unwrap_or(0);
        for (k, &(c, at)) in word.iter().enumerate() {
            let inside = (core_start..=core_end).contains(&k);
            let c = match unleet(c) {
                Some(l) if leet && (c.is_ascii_digit() || inside) => l,
                _ => c,
            };
            push(&mut out, c, at);
        }
        i += 1;
    }
    out.origin.push(text.len());
    out
}

fn push(out: &mut Mapped, c: char, at: usize) {
    out.text.push(c);
    out.origin.extend(std::iter::repeat_n(at, c.len_utf8()));
}

/// `(start, end, gap_before)` index ranges of the non-space runs in `chars`; `gap_before` is
/// the number of spaces before the word.
fn split_words(chars: &[(char, usize)]) -> Vec<(usize, usize, usize)> {
    let mut words = Vec::new();
    let mut i = 0;
    let mut gap = 0;
    while i < chars.len() {
        if chars[i].0 == ' ' {
            gap += 1;
            i += 1;
            continue;
        }
        let s = i;
        while i < chars.len() && chars[i].0 != ' ' {
            i += 1;
        }
        words.push((s, i, gap));
        gap = 0;
    }
    words
}

/// How many words from `i` on are single letters (or leet digits) separated by exactly one
/// space: "i g n o r e" is a run of 6. Two or more spaces end the run (a word gap).
fn spaced_run(chars: &[(char, usize)], words: &[(usize, usize, usize)], i: usize) -> usize {
    let single = |w: &(usize, usize, usize)| {
        w.1 - w.0 == 1 && {
            let c = chars[w.0].0;
            c.is_alphabetic() || unleet(c).is_some()
        }
    };
    let mut n = 0;
    while i + n < words.len() && single(&words[i + n]) && (n == 0 || words[i + n].2 == 1) {
        n += 1;
    }
    n
}

/// A word whose digits and symbols stand for letters: it has a letter and a leet character,
/// and is not a number ("4ll", "pr3v10u5", "1gn0r3" but not "4471" or "3.5").
fn is_leet_word(word: &[(char, usize)]) -> bool {
    let letters = word.iter().filter(|(c, _)| c.is_alphabetic()).count();
    let leets = word.iter().filter(|(c, _)| unleet(*c).is_some()).count();
    letters > 0 && leets > 0 && letters + leets >= word.len().saturating_sub(1)
}

fn unleet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        '9' => 'g',
        _ => return None,
    })
}

fn is_combining(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// Characters that render as nothing: zero-width spaces and joiners, soft hyphens, bidi
/// controls, variation selectors, Unicode tag characters (decoded by [`decoded_variants`]).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{E0000}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}')
}

/// Letters from other scripts that look like ASCII letters.
fn homoglyph(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic
        'а' | 'А' => 'a',
        'в' | 'В' => 'b',
        'с' | 'С' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'Е' | 'ё' | 'Ё' => 'e',
        'һ' | 'Н' => 'h',
        'і' | 'І' | 'ї' | 'Ӏ' => 'i',
        'ј' | 'Ј' => 'j',
        'к' | 'К' => 'k',
        'м' | 'М' => 'm',
        'о' | 'О' => 'o',
        'р' | 'Р' => 'p',
        'ԛ' => 'q',
        'ѕ' | 'Ѕ' => 's',
        'т' | 'Т' => 't',
        'у' | 'У' => 'y',
        'ԝ' => 'w',
        'х' | 'Х' => 'x',
        // Greek
        'α' | 'Α' => 'a',
        'β' | 'Β' => 'b',
        'ε' | 'Ε' => 'e',
        'η' | 'Η' => 'h',
        'ι' | 'Ι' => 'i',
        'κ' | 'Κ' => 'k',
        'μ' | 'Μ' => 'm',
        'ν' | 'Ν' => 'n',
        'ο' | 'Ο' => 'o',
        'ρ' | 'Ρ' => 'p',
        'τ' | 'Τ' => 't',
        'υ' | 'Υ' => 'u',
        'χ' | 'Χ' => 'x',
        'Ζ' => 'z',
        // Latin look-alikes outside ASCII
        'ı' => 'i',
        'ɡ' => 'g',
        'ɑ' => 'a',
        'ℓ' => 'l',
        _ => return None,
    })
}

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

#[cfg(test)]
#[path = "injection/normalize_tests.rs"]
mod tests;
