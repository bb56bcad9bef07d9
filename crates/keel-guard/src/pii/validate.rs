//! Checksums and validity rules that turn a pattern match into a confident finding:
//! Luhn (payment cards), ISO 13616 mod-97 with the per-country IBAN length, US SSN
//! area/group/serial rules, NHS mod-11, ABA routing numbers.

use serde::Deserialize;

/// A check a custom recognizer's match must pass to be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// Luhn mod-10 over the digits (payment cards, IMEIs, many national ids).
    Luhn,
    /// IBAN: country length table and ISO 7064 mod-97 over the alphanumerics.
    Mod97,
    /// US SSN area/group/serial rules over the nine digits.
    UsSsn,
    /// Parses as an IPv4 or IPv6 address.
    IpAddress,
    /// UK NHS number: ten digits, mod-11 check digit.
    NhsMod11,
    /// US ABA routing number: nine digits, weights 3-7-1.
    AbaRouting,
}

impl Validator {
    /// Whether `matched` (the recognizer's matched text) passes; separators are ignored.
    pub fn check(self, matched: &str) -> bool {
        match self {
            Self::Luhn => {
                let n = digit_count(matched);
                (2..=32).contains(&n) && luhn(matched)
            }
            Self::Mod97 => iban_valid(matched),
            Self::UsSsn => {
                let mut d = [0u8; 9];
                fill_digits(matched, &mut d) == Some(9) && ssn_valid(&d)
            }
            Self::IpAddress => matched.trim().parse::<std::net::IpAddr>().is_ok(),
            Self::NhsMod11 => {
                let mut d = [0u8; 10];
                fill_digits(matched, &mut d) == Some(10) && nhs_valid(&d)
            }
            Self::AbaRouting => {
                let mut d = [0u8; 9];
                fill_digits(matched, &mut d) == Some(9) && aba_valid(&d)
            }
        }
    }
}

/// Number of ASCII digits in `s`.
pub fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Copies the ASCII digits of `s` into `out`; `Some(n)` when there are exactly `n <= out.len()`
/// digits, `None` when there are more than fit.
pub fn fill_digits(s: &str, out: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    for b in s.bytes().filter(u8::is_ascii_digit) {
        *out.get_mut(n)? = b - b'0';
        n += 1;
    }
    Some(n)
}

/// Luhn mod-10 over the ASCII digits of `s` (other characters ignored).
pub fn luhn(s: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for b in s.bytes().rev().filter(u8::is_ascii_digit) {
        let mut d = u32::from(b - b'0');
        if n % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        n += 1;
    }
    n > 0 && sum.is_multiple_of(10)
}

/// Whether a payment card number (digits only) starts with a known issuer prefix for its
/// length: Visa, Mastercard, American Express, Discover, Diners Club, JCB, UnionPay, Maestro.
pub fn card_iin_known(d: &[u8]) -> bool {
    let len = d.len();
    let prefix = |k: usize| {
        d.iter()
            .take(k)
            .fold(0u32, |acc, &x| acc * 10 + u32::from(x))
    };
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    let p6 = prefix(6);
    match p1 {
        4 => matches!(len, 13 | 16 | 19),
        1 => len == 15 && p4 == 1800,
        2 => (len == 16 && (2221..=2720).contains(&p4)) || (len == 15 && p4 == 2131),
        5 => {
            (len == 16 && (51..=55).contains(&p2))
                || ((12..=19).contains(&len) && (p2 == 50 || (56..=58).contains(&p2)))
        }
        3 => {
            (len == 15 && (p2 == 34 || p2 == 37))
                || ((14..=19).contains(&len)
                    && ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39))
                || ((16..=19).contains(&len) && p2 == 35)
        }
        6 => {
            ((16..=19).contains(&len)
                && (p4 == 6011
                    || p2 == 65
                    || (644..=649).contains(&p3)
                    || (622126..=622925).contains(&p6)
                    || p2 == 62))
                || ((12..=19).contains(&len) && matches!(p2, 63 | 66 | 67 | 69))
        }
        _ => false,
    }
}

/// US SSN validity: area not 000, 666 or 900–999; group not 00; serial not 0000; and not the
/// famous 078-05-1120 (the Woolworth wallet card).
pub fn ssn_valid(d: &[u8; 9]) -> bool {
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = u32::from(d[3]) * 10 + u32::from(d[4]);
    let serial = d[5..].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    !(area == 78 && group == 5 && serial == 1120)
}

fn nhs_valid(d: &[u8; 10]) -> bool {
    let sum: u32 = d[..9]
        .iter()
        .enumerate()
        .map(|(i, &x)| u32::from(x) * (10 - i as u32))
        .sum();
    let check = 11 - (sum % 11);
    let check = if check == 11 { 0 } else { check };
    check != 10 && check == u32::from(d[9])
}

fn aba_valid(d: &[u8; 9]) -> bool {
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = d.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    sum.is_multiple_of(10) && sum > 0
}

/// IBAN length (all characters, no spaces) by ISO 3166 country code, per the IBAN registry.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    let n = match country {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        _ => return None,
    };
    Some(n)
}

/// Full IBAN check over `s` with spaces ignored: uppercase country code with a known length,
/// two check digits, alphanumeric BBAN, mod-97 == 1.
pub fn iban_valid(s: &str) -> bool {
    let mut buf = [0u8; 34];
    let mut n = 0;
    for b in s.bytes() {
        if b == b' ' {
            continue;
        }
        if !b.is_ascii_alphanumeric() || n == buf.len() {
            return false;
        }
        buf[n] = b.to_ascii_uppercase();
        n += 1;
    }
    let iban = &buf[..n];
    if n < 5 || !iban[0].is_ascii_uppercase() || !iban[1].is_ascii_uppercase() {
        return false;
    }
    if !iban[2].is_ascii_digit() || !iban[3].is_ascii_digit() {
        return false;
    }
    if iban_length(&iban[..2]) != Some(n) {
        return false;
    }
    mod97(iban.iter().skip(4).chain(iban.iter().take(4))) == 1
}

/// ISO 7064 mod-97-10 over alphanumerics, letters counting as two digits (A = 10).
fn mod97<'a>(chars: impl Iterator<Item = &'a u8>) -> u32 {
    let mut rem = 0u32;
    for &c in chars {
        if c.is_ascii_digit() {
            rem = (rem * 10 + u32::from(c - b'0')) % 97;
        } else {
            let v = u32::from(c - b'A') + 10;
            rem = (rem * 100 + v) % 97;
        }
    }
    rem
}
