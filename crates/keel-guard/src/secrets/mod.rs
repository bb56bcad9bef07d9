//! Secrets: provider API keys (OpenAI, Anthropic, AWS, GitHub, Slack, Google, Stripe), PEM
//! private key blocks, JWTs, bearer tokens, password assignments and generic high-entropy
//! tokens.
//!
//! Scores per kind (see [`KINDS`]): a key with an unmistakable provider prefix scores 0.95 or
//! more, context-dependent detections (an AWS secret key next to its name, a password
//! assignment) 0.7–0.9, generic high-entropy tokens 0.6–0.85 by how far their entropy is above
//! the threshold.
//!
//! Generic high-entropy tokens: Shannon entropy (bits per character) of a run of base64/url-safe
//! characters, at least [`SecretsConfig::min_length`] long, with upper- and lowercase letters
//! and digits, and no long lowercase run (which is what identifiers like `getUserById2` have).
//! Pure hex strings (git commits, checksums, UUIDs) are common in benign text and are reported
//! only next to a credential word ("key", "token", "secret", "password", "bearer") and not next
//! to a hash word ("sha", "commit", "checksum", "digest", "hash").

mod entropy;

use regex::Regex;
use serde::Deserialize;

use crate::pii::context::{glued_after, glued_before, near};
use crate::pii::{Hit, resolve_overlaps};
use crate::scan::{Finding, Scan, ScanError, ScanInput, Scanner};

pub use entropy::shannon_entropy;

/// Every finding kind this scanner reports, with its base score.
pub const KINDS: &[(&str, f32)] = &[
    ("secret.private_key", 1.0),
    ("secret.anthropic_api_key", 0.99),
    ("secret.openai_api_key", 0.95),
    ("secret.github_token", 0.99),
    ("secret.slack_token", 0.95),
    ("secret.slack_webhook", 0.95),
    ("secret.google_api_key", 0.95),
    ("secret.stripe_key", 0.99),
    ("secret.aws_access_key", 0.95),
    ("secret.aws_secret_key", 0.9),
    ("secret.jwt", 0.9),
    ("secret.bearer_token", 0.85),
    ("secret.password", 0.7),
    ("secret.high_entropy", 0.6),
];

fn base(kind: &str) -> f32 {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0.5, |(_, s)| *s)
}

/// Settings of the generic high-entropy detector (the provider patterns have none).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Report generic high-entropy tokens at all.
    pub high_entropy: bool,
    /// Minimum Shannon entropy, bits per character (random base62 of 20+ chars has ~4.1).
    pub min_entropy: f32,
    /// Minimum token length in characters.
    pub min_length: usize,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            high_entropy: true,
            min_entropy: 3.7,
            min_length: 20,
        }
    }
}

/// The secrets scanner: patterns compiled once, then shared.
#[derive(Debug, Clone)]
pub struct SecretsScanner {
    config: SecretsConfig,
    prefixed: Regex,
    pem_begin: Regex,
    jwt: Regex,
    aws_secret: Regex,
    bearer: Regex,
    password: Regex,
    token: Regex,
    hex: Regex,
}

const AWS_SECRET_CONTEXT: &[&str] = &[
    "aws_secret_access_key",
    "secret_access_key",
    "secret access key",
    "aws secret",
    "secretaccesskey",
    "aws_secret",
    "aws_secret_key",
];
const CREDENTIAL_CONTEXT: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "bearer",
    "api_key",
    "apikey",
    "auth",
    "credential",
    "credentials",
    "access_token",
];
const HASH_CONTEXT: &[&str] = &[
    "sha", "sha1", "sha256", "sha512", "md5", "commit", "checksum", "digest", "hash", "etag",
    "uuid", "guid", "id",
];

impl SecretsScanner {
    /// Compiles the patterns; the error names a bad field (`min_entropy: ...`).
    pub fn new(c: &SecretsConfig) -> Result<Self, String> {
        if !(c.min_entropy.is_finite() && (0.0..=8.0).contains(&c.min_entropy)) {
            return Err(format!(
                "min_entropy: {} is not within 0..=8 bits per character",
                c.min_entropy
            ));
        }
        if !(8..=512).contains(&c.min_length) {
            return Err(format!(
                "min_length: {} is not within 8..=512",
                c.min_length
            ));
        }
        let internal = |e: regex::Error| format!("built-in pattern: {e}");
        let prefixed = Regex::new(concat!(
            r"(?P<anthropic>sk-ant-[A-Za-z0-9_\-]{32,})",
            r"|(?P<openai>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|sk-[A-Za-z0-9]{20,})",
            r"|(?P<github>(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
            r"|(?P<slack_webhook>https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]{16,})",
            r"|(?P<slack>xox[bpars]-[A-Za-z0-9\-]{10,})",
            r"|(?P<google>AIza[0-9A-Za-z_\-]{35})",
            r"|(?P<stripe>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20,})",
            r"|(?P<aws>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})",
        ))
        .map_err(internal)?;
        Ok(Self {
            config: c.clone(),
            prefixed,
            pem_begin: Regex::new(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
                .map_err(internal)?,
            jwt: Regex::new(r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*")
                .map_err(internal)?,
            aws_secret: Regex::new(r"[A-Za-z0-9/+]{40}").map_err(internal)?,
            bearer: Regex::new(r"(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)").map_err(internal)?,
            password: Regex::new(
                r#"(?i:password|passwd|pwd|passphrase|client_secret|api_key|apikey|secret_key)["']?[ \t]*[:=][ \t]*["']?([^\s"',;]{6,128})"#,
            )
            .map_err(internal)?,
            token: Regex::new(&format!(r"[A-Za-z0-9+/_\-]{{{},}}=*", c.min_length)).map_err(internal)?,
            hex: Regex::new(r"[0-9a-fA-F]{32,128}").map_err(internal)?,
        })
    }

    /// All findings in `text`, non-overlapping, sorted by start.
    pub fn hits(&self, text: &str) -> Vec<Hit<'static>> {
        let mut hits = Vec::new();
        self.prefixed_keys(text, &mut hits);
        self.private_keys(text, &mut hits);
        self.jwts(text, &mut hits);
        self.contextual(text, &mut hits);
        if self.config.high_entropy {
            self.high_entropy(text, &mut hits);
        }
        resolve_overlaps(&mut hits);
        hits
    }

    fn prefixed_keys(&self, text: &str, hits: &mut Vec<Hit<'static>>) {
        for c in self.prefixed.captures_iter(text) {
            let Some(m) = c.get(0) else { continue };
            if glued_before(text, m.start(), b"_-") || glued_after(text, m.end(), b"") {
                continue;
            }
            let s = m.as_str();
            let (kind, score) = if c.name("anthropic").is_some() {
                ("secret.anthropic_api_key", base("secret.anthropic_api_key"))
            } else if c.name("openai").is_some() {
                let body = s.trim_start_matches("sk-");
                if !entropy::has_letter_and_digit(body) {
                    continue;
                }
                let marked = s.contains("T3BlbkFJ") || s.starts_with("sk-proj-");
                (
                    "secret.openai_api_key",
                    if marked {
                        0.99
                    } else {
                        base("secret.openai_api_key")
                    },
                )
            } else if c.name("github").is_some() {
                ("secret.github_token", base("secret.github_token"))
            } else if c.name("slack_webhook").is_some() {
                ("secret.slack_webhook", base("secret.slack_webhook"))
            } else if c.name("slack").is_some() {
                ("secret.slack_token", base("secret.slack_token"))
            } else if c.name("google").is_some() {
                ("secret.google_api_key", base("secret.google_api_key"))
            } else if c.name("stripe").is_some() {
                let live = s.contains("_live_");
                (
                    "secret.stripe_key",
                    if live { base("secret.stripe_key") } else { 0.8 },
                )
            } else {
                ("secret.aws_access_key", base("secret.aws_access_key"))
            };
            hits.push(Hit {
                kind,
                start: m.start(),
                end: m.end(),
                score,
            });
        }
    }

    /// PEM private key blocks, up to their END line (or the end of the text when cut off).
    fn private_keys(&self, text: &str, hits: &mut Vec<Hit<'static>>) {
        for m in self.pem_begin.find_iter(text) {
            let rest = &text[m.end()..];
            let end = match rest.find("-----END ") {
                Some(i) => {
                    let after = &rest[i + 9..];
                    match after.find("-----") {
                        Some(j) => m.end() + i + 9 + j + 5,
                        None => text.len(),
                    }
                }
                None => text.len(),
            };
            hits.push(Hit {
                kind: "secret.private_key",
                start: m.start(),
                end,
                score: base("secret.private_key"),
            });
        }
    }

    /// JWTs: three base64url segments whose header decodes to a JSON object with "alg".
    fn jwts(&self, text: &str, hits: &mut Vec<Hit<'static>>) {
        for m in self.jwt.find_iter(text) {
            if glued_before(text, m.start(), b"_-.") || glued_after(text, m.end(), b".") {
                continue;
            }
            let header = m.as_str().split('.').next().unwrap_or("");
            if entropy::jwt_header_has_alg(header) {
                hits.push(Hit {
                    kind: "secret.jwt",
                    start: m.start(),
                    end: m.end(),
                    score: base("secret.jwt"),
                });
            }
        }
    }

    /// Detections that need their context: AWS secret keys, bearer tokens, password
    /// assignments.
    fn contextual(&self, text: &str, hits: &mut Vec<Hit<'static>>) {
        if entropy::contains_ignore_case(text, b"secret") {
            for m in self.aws_secret.find_iter(text) {
                if glued_before(text, m.start(), b"/+=") || glued_after(text, m.end(), b"/+=") {
                    continue;
                }
                if !entropy::has_mixed_classes(m.as_str()) {
                    continue;
                }
                if near(text, m.start(), m.end(), AWS_SECRET_CONTEXT, 64, 0) {
                    hits.push(Hit {
                        kind: "secret.aws_secret_key",
                        start: m.start(),
                        end: m.end(),
                        score: base("secret.aws_secret_key"),
                    });
                }
            }
        }
        for c in self.bearer.captures_iter(text) {
            let Some(v) = c.get(1) else { continue };
            if glued_before(text, c.get(0).map_or(0, |m| m.start()), b"")
                || !entropy::has_letter_and_digit(v.as_str())
            {
                continue;
            }
            hits.push(Hit {
                kind: "secret.bearer_token",
                start: v.start(),
                end: v.end(),
                score: base("secret.bearer_token"),
            });
        }
        for c in self.password.captures_iter(text) {
            let Some(v) = c.get(1) else { continue };
            let s = v.as_str();
            // A placeholder or a sentence word is not a password.
            if entropy::looks_like_placeholder(s) || entropy::class_count(s) < 2 {
                continue;
            }
            hits.push(Hit {
                kind: "secret.password",
                start: v.start(),
                end: v.end(),
                score: base("secret.password"),
            });
        }
    }

    fn high_entropy(&self, text: &str, hits: &mut Vec<Hit<'static>>) {
        let min = self.config.min_entropy;
        for m in self.token.find_iter(text) {
            let s = m.as_str().trim_end_matches('=');
            if s.len() > 512
                || glued_before(text, m.start(), b".")
                || glued_after(text, m.end(), b"")
            {
                continue;
            }
            if !entropy::random_looking(s) {
                continue;
            }
            let h = shannon_entropy(s);
            if h >= min {
                let score = (base("secret.high_entropy") + (h - min) * 0.25).min(0.85);
                hits.push(Hit {
                    kind: "secret.high_entropy",
                    start: m.start(),
                    end: m.start() + s.len(),
                    score,
                });
            }
        }
        for m in self.hex.find_iter(text) {
            if glued_before(text, m.start(), b"") || glued_after(text, m.end(), b"") {
                continue;
            }
            let (a, b) = (m.start(), m.end());
            if near(text, a, b, CREDENTIAL_CONTEXT, 32, 0) && !near(text, a, b, HASH_CONTEXT, 32, 8)
            {
                hits.push(Hit {
                    kind: "secret.high_entropy",
                    start: a,
                    end: b,
                    score: 0.6,
                });
            }
        }
    }
}

impl Scanner for SecretsScanner {
    fn kind(&self) -> &'static str {
        "secrets"
    }

    fn scan(&self, input: &ScanInput<'_>) -> Result<Scan, ScanError> {
        let findings = self
            .hits(input.text)
            .into_iter()
            .map(|h| Finding::new(h.kind, h.start, h.end, h.score))
            .collect();
        Ok(Scan::from_findings(findings))
    }
}

#[cfg(test)]
mod tests;
