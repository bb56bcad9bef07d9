//! URLs for the exfiltration scanner: the parts that matter (host, path, query) and
//! whether a URL carries data out.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// A query value this long carries data.
const LONG_VALUE: usize = 40;
/// Encoded text shorter than this (decoded) is too short to matter.
const ENCODED_TEXT: usize = 8;
/// A random-looking query value this long carries data.
const RANDOM_BLOB: usize = 32;

/// The parts of a URL that matter here.
#[derive(Debug, PartialEq)]
pub(super) struct UrlParts<'a> {
    pub host: String,
    pub path: &'a str,
    pub query: &'a str,
}

/// Host (lowercased, percent-decoded, without port or trailing dot), path and query of an
/// absolute http(s)/ftp/ws(s) or protocol-relative URL; `None` for anything else.
pub(super) fn parse_url(url: &str) -> Option<UrlParts<'_>> {
    let url = url.trim();
    let rest = if let Some(r) = url.strip_prefix("//") {
        r
    } else {
        let (scheme, r) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https" | "ftp" | "ws" | "wss") {
            return None;
        }
        r
    };
    let auth_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = percent_decode(host).to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_string();
    // A protocol-relative "host" without a dot is more likely a code comment ("//TODO").
    if host.is_empty() || url.starts_with("//") && !host.contains(['.', ':']) {
        return None;
    }
    let after = &rest[auth_end..];
    let after = after.split('#').next().unwrap_or("");
    let (path, query) = after.split_once('?').unwrap_or((after, ""));
    Some(UrlParts { host, path, query })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);

/// Whether decoded bytes are text: valid UTF-8, mostly printable, long enough to matter.
fn is_text(bytes: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(bytes) else {
        return false;
    };
    let total = s.chars().count();
    let printable = s
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
        .count();
    total >= ENCODED_TEXT && printable * 10 >= total * 9
}

/// Whether `value` is text encoded as base64 (either alphabet) or hex: how data is smuggled
/// into a URL. Hashes, UUIDs and identifiers decode to binary and do not count.
fn encodes_text(value: &str) -> bool {
    if value.len() < 2 * ENCODED_TEXT {
        return false;
    }
    if value.bytes().all(|b| b.is_ascii_hexdigit()) && value.len().is_multiple_of(2) {
        let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        let bytes: Vec<u8> = value
            .as_bytes()
            .chunks(2)
            .map(|pair| hex(pair[0]) * 16 + hex(pair[1]))
            .collect();
        if is_text(&bytes) {
            return true;
        }
    }
    let trimmed = value.trim_end_matches('=');
    [
        GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT),
    ]
    .iter()
    .any(|engine| engine.decode(trimmed).is_ok_and(|bytes| is_text(&bytes)))
}

/// Whether a value looks like a random blob (encrypted or compressed data): long, with a
/// base64-like mix of upper case, lower case and digits.
fn random_blob(value: &str) -> bool {
    let n = value.len();
    if n < RANDOM_BLOB
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'='))
    {
        return false;
    }
    let upper = value.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = value.bytes().filter(u8::is_ascii_lowercase).count();
    let digit = value.bytes().filter(u8::is_ascii_digit).count();
    upper * 5 >= n && lower * 5 >= n && digit * 20 >= n
}

/// Whether one query value (or, with `in_query` false, a path segment) carries data.
fn carries_data(raw: &str, in_query: bool) -> bool {
    let decoded = percent_decode(raw);
    decoded.split_whitespace().count() >= 4
        || encodes_text(raw)
        || encodes_text(&decoded)
        || in_query && (decoded.chars().count() >= LONG_VALUE || random_blob(&decoded))
}

pub(super) fn url_carries_data(url: &UrlParts<'_>) -> bool {
    url.query
        .split(['&', ';'])
        .map(|pair| pair.split_once('=').map_or(pair, |(_, v)| v))
        .any(|v| carries_data(v, true))
        || url
            .path
            .split('/')
            .any(|segment| carries_data(segment, false))
}

/// A bare URL without the sentence punctuation after it; a closing parenthesis stays when
/// the URL opened one ("wiki/Rust_(language)").
pub(super) fn trim_url_end(url: &str) -> &str {
    let mut url = url;
    loop {
        let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '*', '_', '\'', '"']);
        let unbalanced =
            trimmed.ends_with(')') && trimmed.matches('(').count() < trimmed.matches(')').count();
        let next = if unbalanced {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        if next.len() == url.len() {
            return url;
        }
        url = next;
    }
}
