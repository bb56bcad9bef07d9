//! Number-shaped entities: payment cards (Luhn + issuer prefix), IBANs (length table +
//! mod-97), US SSNs (validity rules) and phone numbers (international, NANP, European national
//! formats). A cheap regex finds candidates; the code decides, so prices, dates, order numbers
//! and ISBNs are not reported.

use regex::Regex;

use super::context::{AFTER, BEFORE, ContextWords, glued_after, glued_before};
use super::validate::{card_iin_known, fill_digits, iban_length, iban_valid, luhn, ssn_valid};
use super::{Emit, boost};

const CARD_CONTEXT: &[&str] = &[
    "card",
    "credit",
    "debit",
    "visa",
    "mastercard",
    "amex",
    "american express",
    "discover",
    "cc",
    "pan",
    "payment",
    "pay",
    "cvv",
    "expiry",
    "exp",
];
const IBAN_CONTEXT: &[&str] = &["iban", "account", "bank", "transfer", "wire", "sepa", "bic"];
const SSN_CONTEXT: &[&str] = &[
    "ssn",
    "ssns",
    "social security",
    "social sec",
    "social",
    "ss#",
    "ss #",
    "ss no",
    "tin",
    "taxpayer",
];
const PHONE_CONTEXT: &[&str] = &[
    "phone",
    "telephone",
    "tel",
    "mobile",
    "cell",
    "cellphone",
    "call",
    "fax",
    "whatsapp",
    "sms",
    "text me",
    "contact",
    "reach me",
    "number",
    "dial",
    "ph",
    "mob",
    "office",
    "desk",
    "home",
    "message",
    "messages",
    "answering",
    "landline",
    "hotline",
];

/// Compiled candidate patterns for the number-shaped recognizers.
#[derive(Debug, Clone)]
pub struct Numbers {
    card: Regex,
    iban: Regex,
    ssn: Regex,
    phone: Regex,
    card_ctx: ContextWords,
    iban_ctx: ContextWords,
    ssn_ctx: ContextWords,
    phone_ctx: ContextWords,
}

impl Numbers {
    /// Compiles the candidate patterns and context words.
    pub fn new() -> Result<Self, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("built-in pattern: {e}"));
        Ok(Self {
            card_ctx: ContextWords::new(CARD_CONTEXT)?,
            iban_ctx: ContextWords::new(IBAN_CONTEXT)?,
            ssn_ctx: ContextWords::new(SSN_CONTEXT)?,
            phone_ctx: ContextWords::new(PHONE_CONTEXT)?,
            card: re(r"[0-9](?:[ \-]?[0-9]){11,30}")?,
            iban: re(r"[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){10,36}")?,
            ssn: re(r"[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}|[0-9]{9}")?,
            phone: re(
                r"(?:\+ ?|00)?(?:\([0-9]{1,5}\)|[0-9])(?:[ .\-]?(?:\([0-9]{1,5}\)|[0-9])){6,18}(?: ?(?:x|ext\.?|extension) ?[0-9]{1,5})?",
            )?,
        })
    }

    /// Payment cards: 13–19 digits, optionally grouped by one kind of separator, Luhn-valid,
    /// with a known issuer prefix for their length.
    pub fn cards(&self, text: &str, out: &mut impl Emit) {
        for m in self.card.find_iter(text) {
            if glued_before(text, m.start(), b"-.,") {
                continue;
            }
            let s = m.as_str();
            let sep = s.bytes().find(|b| !b.is_ascii_digit());
            if let Some(sep) = sep
                && s.bytes().any(|b| !b.is_ascii_digit() && b != sep)
            {
                continue;
            }
            // Longest prefix of whole groups that is a valid card (a year or amount may follow).
            let mut ends: Vec<usize> = s
                .bytes()
                .enumerate()
                .filter(|(_, b)| !b.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            ends.push(s.len());
            if ends.len() > 1 && s[..ends[0]].len() < 3 {
                continue;
            }
            for &end in ends.iter().rev() {
                let cand = &s[..end];
                let mut d = [0u8; 19];
                let Some(n) = fill_digits(cand, &mut d) else {
                    continue;
                };
                if !(12..=19).contains(&n) || !luhn(cand) || !card_iin_known(&d[..n]) {
                    continue;
                }
                let (start, stop) = (m.start(), m.start() + end);
                if end == s.len() && glued_after(text, stop, b"") {
                    break;
                }
                let ctx = self.card_ctx.near(text, start, stop, BEFORE, AFTER);
                // Twelve digits (short Maestro numbers) are common as other ids: context only.
                if n == 12 && !ctx {
                    continue;
                }
                out.emit("credit_card", start, stop, boost(0.95, ctx, 0.05));
                break;
            }
        }
    }

    /// IBANs: country code with a known length, check digits, BBAN; spaces allowed between
    /// characters (usually groups of four); mod-97 must hold.
    pub fn ibans(&self, text: &str, out: &mut impl Emit) {
        for m in self.iban.find_iter(text) {
            if glued_before(text, m.start(), b"") {
                continue;
            }
            let s = m.as_str().as_bytes();
            // One case throughout: "de89 3704 …" (a lowercased text) or "DE89 3704 …".
            let lower = s[0].is_ascii_lowercase();
            if s[1].is_ascii_lowercase() != lower {
                continue;
            }
            let cc = [s[0].to_ascii_uppercase(), s[1].to_ascii_uppercase()];
            let Some(len) = iban_length(&cc) else {
                continue;
            };
            // Take exactly `len` alphanumerics; the match may run on into following text.
            let mut taken = 0;
            let mut end = 0;
            for (i, b) in s.iter().enumerate() {
                if b.is_ascii_alphanumeric() {
                    if (lower && b.is_ascii_uppercase()) || (!lower && b.is_ascii_lowercase()) {
                        break;
                    }
                    taken += 1;
                    if taken == len {
                        end = i + 1;
                        break;
                    }
                }
            }
            if taken < len {
                continue;
            }
            let stop = m.start() + end;
            if glued_after(text, stop, b"") || !iban_valid(&text[m.start()..stop]) {
                continue;
            }
            let ctx = self.iban_ctx.near(text, m.start(), stop, BEFORE, AFTER);
            out.emit("iban", m.start(), stop, boost(0.95, ctx, 0.05));
        }
    }

    /// US SSNs: AAA-GG-SSSS passing the validity rules; the dash-less and spaced forms only
    /// with a context word nearby.
    pub fn ssns(&self, text: &str, out: &mut impl Emit) {
        for m in self.ssn.find_iter(text) {
            let (start, end) = (m.start(), m.end());
            if glued_before(text, start, b"-.+/") || glued_after(text, end, b"") {
                continue;
            }
            if text.as_bytes().get(end) == Some(&b'-') || text.as_bytes().get(end) == Some(&b'/') {
                continue;
            }
            let mut d = [0u8; 9];
            if fill_digits(m.as_str(), &mut d) != Some(9) || !ssn_valid(&d) {
                continue;
            }
            let dashed = m.as_str().contains('-');
            let ctx = self.ssn_ctx.near(text, start, end, BEFORE, AFTER);
            if dashed {
                out.emit("us_ssn", start, end, boost(0.9, ctx, 0.1));
            } else if ctx {
                out.emit("us_ssn", start, end, 0.9);
            }
        }
    }

    /// Phone numbers: `+CC …` / `00CC …` international (8–15 digits), NANP `(AAA) EEE-NNNN` /
    /// `AAA-EEE-NNNN` (area and exchange 2–9), European national numbers with a trunk 0
    /// (9–11 digits, grouped). Unseparated digit runs only with a context word.
    pub fn phones(&self, text: &str, out: &mut impl Emit) {
        for m in self.phone.find_iter(text) {
            let (start, mut end) = (m.start(), m.end());
            let s = m.as_str();
            if glued_before(text, start, b"+-./:#$") {
                continue;
            }
            // A match that swallowed a trailing separator-free tail is fine; one that stops
            // in front of `.5`, `-3` or a letter is part of something else.
            let after = text.as_bytes().get(end).copied();
            let after2 = text.as_bytes().get(end + 1).copied();
            if glued_after(text, end, b"/%") {
                continue;
            }
            if matches!(after, Some(b'.' | b'-' | b','))
                && after2.is_some_and(|b| b.is_ascii_digit())
            {
                continue;
            }
            // Trim a trailing ')' that opened before the match.
            if s.ends_with(')') && s.matches('(').count() < s.matches(')').count() {
                end -= 1;
            }
            let s = &text[start..end];
            let ctx = self.phone_ctx.near(text, start, end, BEFORE, AFTER);
            if let Some(score) = phone_score(s, ctx) {
                out.emit("phone", start, end, score);
                continue;
            }
            // "in 2023 415-555-0132", "415-555-0132 2023": an unrelated number next to a
            // phone number, joined by a space. Try without it.
            let best = trimmed_spans(s)
                .filter_map(|(a, b)| phone_score(&s[a..b], ctx).map(|sc| (sc, b - a, a, b)))
                .max_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            if let Some((score, _, a, b)) = best {
                out.emit("phone", start + a, start + b, score);
            }
        }
    }
}

/// `s` without a leading and/or trailing space-separated run of digits, longest first.
fn trimmed_spans(s: &str) -> impl Iterator<Item = (usize, usize)> {
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let head = s.find(' ').filter(|&i| digits(&s[..i])).map(|i| i + 1);
    let tail = s.rfind(' ').filter(|&i| digits(&s[i + 1..]));
    [
        head.map(|a| (a, s.len())),
        tail.map(|b| (0, b)),
        head.zip(tail).filter(|(a, b)| a < b),
    ]
    .into_iter()
    .flatten()
}

/// Digit groups of a phone candidate (lengths), the extension cut off.
fn groups(s: &str) -> (Vec<usize>, bool) {
    let body = match s.find(['x', 'e']) {
        Some(i) => &s[..i],
        None => s,
    };
    let mut g = Vec::with_capacity(6);
    let mut cur = 0;
    let mut parens = false;
    for b in body.bytes() {
        if b.is_ascii_digit() {
            cur += 1;
        } else {
            if b == b'(' {
                parens = true;
            }
            if cur > 0 {
                g.push(cur);
                cur = 0;
            }
        }
    }
    if cur > 0 {
        g.push(cur);
    }
    (g, parens)
}

fn phone_score(s: &str, ctx: bool) -> Option<f32> {
    let body = s.trim_start_matches(['+', ' ']);
    let intl_plus = s.starts_with('+');
    let intl_00 = !intl_plus && s.starts_with("00") && !s.starts_with("000");
    let (g, parens) = groups(body);
    let digits: usize = g.iter().sum();
    let first = body.bytes().find(u8::is_ascii_digit)?;
    if intl_plus || intl_00 {
        let n = if intl_00 { digits - 2 } else { digits };
        let cc_first = if intl_00 {
            body.as_bytes().get(2).copied()
        } else {
            Some(first)
        };
        if !(8..=15).contains(&n) || cc_first == Some(b'0') {
            return None;
        }
        if g.len() == 1 && !intl_plus {
            return None;
        }
        return Some(boost(0.75, ctx, 0.2));
    }
    // NANP: [1] AAA EEE NNNN.
    let nanp = match g.as_slice() {
        [3, 3, 4] => Some(0),
        [1, 3, 3, 4] if first == b'1' => Some(1),
        [3, 7] if parens => Some(0),
        [10] if ctx => Some(0),
        [11] if ctx && first == b'1' => Some(1),
        _ => None,
    };
    if let Some(skip) = nanp {
        let main = body.find(['x', 'e']).map_or(body, |i| &body[..i]);
        let d: Vec<u8> = main.bytes().filter(u8::is_ascii_digit).skip(skip).collect();
        if d.len() == 10 && d[0] >= b'2' && d[3] >= b'2' {
            let separated = g.len() > 1;
            return Some(if separated {
                boost(0.65, ctx, 0.25)
            } else {
                0.6
            });
        }
        // Not a valid NANP number; it may still be a national one (044 876 0371).
    }
    // National with trunk 0: 0AA[A] NNN NNNN, 01 23 45 67 89, (0121) 496 0123 ...
    if first == b'0' && (9..=11).contains(&digits) && g.len() >= 2 && g[0] <= 5 {
        if g.iter().all(|&x| x >= 2) {
            return Some(boost(0.55, ctx, 0.3));
        }
        return None;
    }
    // A local number (555-1234) or other grouping: only with context.
    if ctx && (7..=12).contains(&digits) && g.len() >= 2 && g.iter().all(|&x| x >= 2) {
        return Some(0.55);
    }
    None
}
