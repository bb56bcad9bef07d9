//! Which addresses a fetch may connect to: classification of non-public IP ranges and the
//! operator's allow-list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `ip` is not a public unicast address, or `None` when it is.
///
/// Reasons: `"unspecified"`, `"loopback"`, `"private"` (RFC 1918, IPv6 unique-local and
/// site-local, local-use NAT64), `"cgnat"` (100.64/10), `"link_local"` (169.254/16 with the
/// cloud metadata address, fe80::/10), `"multicast"`, `"broadcast"`, `"documentation"` and
/// `"reserved"` (everything else special-purpose, and IPv6 outside 2000::/3).
///
/// IPv6 addresses that carry an IPv4 address — mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::` — are judged by the IPv4
/// address they lead to.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let reason = match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "cgnat",
        (169, 254, _) => "link_local",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        // IETF protocol assignments, the 6to4 relay anycast, benchmarking.
        (192, 0, 0) | (192, 88, 99) | (198, 18..=19, _) => "reserved",
        (224..=239, _, _) => "multicast",
        _ if ip == Ipv4Addr::BROADCAST => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(reason)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let reason = match s[0] {
        0xfc00..=0xfdff => "private",
        0xfe80..=0xfebf => "link_local",
        0xfec0..=0xfeff => "private",
        0xff00..=0xffff => "multicast",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x3fff if s[1] < 0x1000 => "documentation",
        // 2001::/23: IETF protocol assignments, Teredo (2001::/32) among them.
        0x2001 if s[1] < 0x0200 => "reserved",
        // 64:ff9b:1::/48, NAT64 for local use.
        0x0064 if s[1] == 0xff9b && s[2] == 0x0001 => "private",
        // 100::/64 discard-only; 5f00::/16 SRv6 SIDs.
        0x0100 if s[1..4] == [0, 0, 0] => "reserved",
        0x5f00 => "reserved",
        // Global unicast is 2000::/3; the rest is not routable on the internet.
        first if first & 0xe000 != 0x2000 => "reserved",
        _ => return None,
    };
    Some(reason)
}

/// The IPv4 address an IPv6 address stands for, when it embeds one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = || Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    match s {
        // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (translated).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low()),
        // ::a.b.c.d (compatible, deprecated); :: and ::1 are handled before.
        [0, 0, 0, 0, 0, 0, _, _] => Some(low()),
        // 64:ff9b::a.b.c.d (NAT64 well-known prefix).
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low()),
        // 2002:aabb:ccdd::/48 (6to4).
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    }
}

/// One entry of [`FetchPolicy::allow_hosts`](super::FetchPolicy::allow_hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AllowRule {
    /// A host name, lower-case without a trailing dot: every address it resolves to is allowed.
    Host(String),
    /// An address (`prefix` = full length) or a CIDR block.
    Net { base: IpAddr, prefix: u8 },
}

impl AllowRule {
    /// `"10.0.0.0/8"`, `"fd00::/8"`, `"127.0.0.1"`, `"[::1]"`, `"intranet.example"`; `None`
    /// for an empty entry or a bad CIDR.
    pub(crate) fn parse(entry: &str) -> Option<AllowRule> {
        let entry = entry.trim();
        if entry.is_empty() {
            return None;
        }
        if let Some((addr, prefix)) = entry.split_once('/') {
            let base = parse_ip(addr)?;
            let prefix: u8 = prefix.trim().parse().ok()?;
            return net(base, prefix);
        }
        if let Some(base) = parse_ip(entry) {
            return net(base, max_prefix(base));
        }
        Some(AllowRule::Host(normalise_host(entry)))
    }

    pub(crate) fn allows_ip(&self, ip: IpAddr) -> bool {
        let AllowRule::Net { base, prefix } = self else {
            return false;
        };
        match (*base, ip.to_canonical()) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(base)),
                u128::from(u32::from(ip)),
                32,
                *prefix,
            ),
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(base), u128::from(ip), 128, *prefix)
            }
            _ => false,
        }
    }

    pub(crate) fn allows_host(&self, host: &str) -> bool {
        matches!(self, AllowRule::Host(h) if *h == normalise_host(host))
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.parse().ok()
}

/// A block, IPv4-mapped IPv6 ones (`::ffff:10.0.0.0/104`) kept as their IPv4 block since
/// candidate addresses are compared in canonical form.
fn net(base: IpAddr, prefix: u8) -> Option<AllowRule> {
    if prefix > max_prefix(base) {
        return None;
    }
    match (base, base.to_canonical()) {
        (IpAddr::V6(_), IpAddr::V4(v4)) if prefix >= 96 => Some(AllowRule::Net {
            base: IpAddr::V4(v4),
            prefix: prefix - 96,
        }),
        _ => Some(AllowRule::Net { base, prefix }),
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits.saturating_sub(prefix));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}
