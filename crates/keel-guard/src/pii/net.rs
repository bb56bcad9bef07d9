//! Email addresses and IP addresses (IPv4 and IPv6, validated by the standard library's
//! parsers, so `999.1.1.1`, times like `12:30:45` and MAC addresses are not reported).

use std::net::{Ipv4Addr, Ipv6Addr};

use regex::Regex;

use super::context::{AFTER, BEFORE, ContextWords, contains_word, glued_after, glued_before};
use super::{Emit, boost};

const EMAIL_CONTEXT: &[&str] = &["email", "e-mail", "mail", "contact", "address", "reach"];
const IP_CONTEXT: &[&str] = &[
    "ip",
    "ipv4",
    "ipv6",
    "address",
    "server",
    "host",
    "client",
    "from",
    "connect",
    "connected",
    "login",
    "logged",
    "source",
    "remote",
];

/// Compiled candidate patterns for emails and IPs.
#[derive(Debug, Clone)]
pub struct Net {
    email: Regex,
    ipv4: Regex,
    ipv6: Regex,
    email_ctx: ContextWords,
    ip_ctx: ContextWords,
}

impl Net {
    /// Compiles the candidate patterns and context words.
    pub fn new() -> Result<Self, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("built-in pattern: {e}"));
        Ok(Self {
            email_ctx: ContextWords::new(EMAIL_CONTEXT)?,
            ip_ctx: ContextWords::new(IP_CONTEXT)?,
            email: re(
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
            )?,
            ipv4: re(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")?,
            ipv6: re(r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*")?,
        })
    }

    /// Email addresses: a dot-atom local part, a domain with a letter TLD.
    pub fn emails(&self, text: &str, out: &mut impl Emit) {
        for m in self.email.find_iter(text) {
            let local_end = m.as_str().find('@').unwrap_or(0);
            let mut start = m.start();
            // A local part may not start or end with a dot, nor hold two in a row.
            while text.as_bytes().get(start) == Some(&b'.') {
                start += 1;
            }
            let local = &text[start..m.start() + local_end];
            if local.is_empty() || local.ends_with('.') || local.contains("..") {
                continue;
            }
            if glued_after(text, m.end(), b"@_") {
                continue;
            }
            let ctx = self.email_ctx.near(text, start, m.end(), BEFORE, AFTER);
            out.emit("email", start, m.end(), boost(0.85, ctx, 0.15));
        }
    }

    /// IPv4 (dotted quad, no leading zeros, not a version number) and IPv6 addresses.
    pub fn ips(&self, text: &str, out: &mut impl Emit) {
        for m in self.ipv4.find_iter(text) {
            let (start, end) = (m.start(), m.end());
            if glued_before(text, start, b".") || glued_after(text, end, b"") {
                continue;
            }
            let b = text.as_bytes();
            if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
                continue;
            }
            // Loopback and 0.0.0.0 point at no one.
            let personal = m
                .as_str()
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback() && !ip.is_unspecified());
            if !personal || version_like(text, start) {
                continue;
            }
            let ctx = self.ip_ctx.near(text, start, end, BEFORE, AFTER);
            out.emit("ip_address", start, end, boost(0.75, ctx, 0.2));
        }
        for m in self.ipv6.find_iter(text) {
            let start = m.start();
            if glued_before(text, start, b"_:") {
                continue;
            }
            let mut s = m.as_str().trim_end_matches('.');
            if s.parse::<Ipv6Addr>().is_err() && s.ends_with(':') && !s.ends_with("::") {
                s = &s[..s.len() - 1];
            }
            let end = start + s.len();
            if glued_after(text, end, b"_") || s.parse::<Ipv6Addr>().is_err() {
                continue;
            }
            // `::1`, `a::b` and the like: too little to be someone's address.
            let groups = s.split(':').filter(|g| !g.is_empty()).count();
            if groups < 3 && !(groups == 2 && s.len() >= 8) {
                continue;
            }
            let ctx = self.ip_ctx.near(text, start, end, BEFORE, AFTER);
            out.emit("ip_address", start, end, boost(0.75, ctx, 0.2));
        }
    }
}

/// `v1.2.3.4`, `version 1.2.3.4`, `ver. 10.0.0.1`: a version, not an address.
fn version_like(text: &str, start: usize) -> bool {
    let b = text.as_bytes();
    if start > 0 && (b[start - 1] == b'v' || b[start - 1] == b'V') {
        return true;
    }
    let lo = start.saturating_sub(12);
    let window = &b[lo..start];
    ["version", "ver", "release", "build"]
        .iter()
        .any(|w| contains_word(window, w.as_bytes()))
}
