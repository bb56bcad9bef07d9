//! Text de-obfuscation for the injection heuristics: folds the tricks attackers use to slip an
//! instruction past a pattern (compatibility forms, accents, homoglyphs, leetspeak, invisible
//! characters, spaced-out letters, case) into plain lowercase ASCII-ish text, and finds encoded
//! payloads (base64, base32, base85, hex, binary, percent-escapes, Unicode tag characters,
//! rot13) inside a text and decodes them.
//!
//! [`normalize_mapped`] also returns, for every output byte, the byte offset in the input it
//! came from, so a pattern found in the normalized text can be reported as a span of the
//! original text.

mod decode;

pub use decode::{Decoded, MAX_DECODED_BYTES, decode_payloads, decoded_variants};

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

#[cfg(test)]
mod tests;
