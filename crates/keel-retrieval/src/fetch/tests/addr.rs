use std::net::IpAddr;

use super::super::addr::{AllowRule, classify};
use super::super::{FetchPolicy, Fetcher};

fn class(text: &str) -> Option<&'static str> {
    let ip: IpAddr = text.parse().unwrap();
    classify(ip)
}

#[test]
fn ipv4_ranges() {
    let cases = [
        ("127.0.0.1", Some("loopback")),
        ("127.255.255.254", Some("loopback")),
        ("10.0.0.1", Some("private")),
        ("10.255.255.255", Some("private")),
        ("172.16.0.1", Some("private")),
        ("172.31.255.255", Some("private")),
        ("172.15.255.255", None),
        ("172.32.0.0", None),
        ("192.168.1.1", Some("private")),
        ("169.254.169.254", Some("link_local")),
        ("169.254.0.1", Some("link_local")),
        ("0.0.0.0", Some("unspecified")),
        ("0.1.2.3", Some("unspecified")),
        ("100.64.0.1", Some("cgnat")),
        ("100.127.255.255", Some("cgnat")),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("255.255.255.255", Some("broadcast")),
        ("224.0.0.1", Some("multicast")),
        ("239.255.255.250", Some("multicast")),
        ("192.0.2.10", Some("documentation")),
        ("198.51.100.7", Some("documentation")),
        ("203.0.113.99", Some("documentation")),
        ("192.0.0.8", Some("reserved")),
        ("192.88.99.1", Some("reserved")),
        ("198.18.0.1", Some("reserved")),
        ("198.19.255.255", Some("reserved")),
        ("240.0.0.1", Some("reserved")),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("93.184.216.34", None),
        ("192.169.0.1", None),
    ];
    for (ip, expected) in cases {
        assert_eq!(class(ip), expected, "{ip}");
    }
}

#[test]
fn ipv6_ranges() {
    let cases = [
        ("::1", Some("loopback")),
        ("::", Some("unspecified")),
        ("fc00::1", Some("private")),
        ("fd12:3456:789a::1", Some("private")),
        ("fec0::1", Some("private")),
        ("fe80::1", Some("link_local")),
        ("febf::1", Some("link_local")),
        ("ff02::1", Some("multicast")),
        ("2001:db8::1", Some("documentation")),
        ("3fff::1", Some("documentation")),
        ("2001::1", Some("reserved")),
        ("100::1", Some("reserved")),
        ("64:ff9b:1::1", Some("private")),
        ("4000::1", Some("reserved")),
        ("2606:4700:4700::1111", None),
        ("2a00:1450:4001:80b::200e", None),
    ];
    for (ip, expected) in cases {
        assert_eq!(class(ip), expected, "{ip}");
    }
}

#[test]
fn ipv6_with_an_embedded_ipv4_is_judged_by_it() {
    let cases = [
        ("::ffff:127.0.0.1", Some("loopback")),
        ("::ffff:7f00:1", Some("loopback")),
        ("::ffff:10.1.2.3", Some("private")),
        ("::ffff:169.254.169.254", Some("link_local")),
        ("::ffff:0.0.0.0", Some("unspecified")),
        ("::ffff:8.8.8.8", None),
        ("::ffff:0:127.0.0.1", Some("loopback")),
        ("::127.0.0.1", Some("loopback")),
        ("::192.168.0.1", Some("private")),
        ("64:ff9b::127.0.0.1", Some("loopback")),
        ("64:ff9b::a9fe:a9fe", Some("link_local")),
        ("64:ff9b::8.8.8.8", None),
        ("2002:7f00:1::", Some("loopback")),
        ("2002:a9fe:a9fe::1", Some("link_local")),
        ("2002:808:808::1", None),
    ];
    for (ip, expected) in cases {
        assert_eq!(class(ip), expected, "{ip}");
    }
}

#[test]
fn numeric_host_forms_normalise_to_ipv4() {
    // The WHATWG host parser (url crate) turns these into 127.0.0.1, so they are checked as
    // the address they connect to.
    for host in [
        "2130706433",
        "0x7f.1",
        "0x7F.0.0.1",
        "017700000001",
        "0177.0.0.1",
        "127.1",
        "127.0.1",
        "0x7f000001",
    ] {
        let url = url::Url::parse(&format!("http://{host}/")).unwrap();
        assert_eq!(
            url.host(),
            Some(url::Host::Ipv4("127.0.0.1".parse().unwrap())),
            "{host}"
        );
    }
    let url = url::Url::parse("http://[0:0:0:0:0:ffff:7f00:0001]/").unwrap();
    let url::Host::Ipv6(v6) = url.host().unwrap() else {
        panic!("not v6")
    };
    assert_eq!(classify(IpAddr::V6(v6)), Some("loopback"));
}

#[test]
fn allow_rules_parse_and_match() {
    let rule = |s: &str| AllowRule::parse(s).unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(rule("127.0.0.1").allows_ip(ip("127.0.0.1")));
    assert!(!rule("127.0.0.1").allows_ip(ip("127.0.0.2")));
    assert!(rule("127.0.0.1").allows_ip(ip("::ffff:127.0.0.1")));
    assert!(rule("10.0.0.0/8").allows_ip(ip("10.200.3.4")));
    assert!(!rule("10.0.0.0/8").allows_ip(ip("11.0.0.1")));
    assert!(rule("[::1]").allows_ip(ip("::1")));
    assert!(rule("fd00::/8").allows_ip(ip("fd12::1")));
    assert!(!rule("fd00::/8").allows_ip(ip("fc00::1")));
    assert!(rule("::ffff:10.0.0.0/104").allows_ip(ip("10.9.9.9")));
    assert!(rule("0.0.0.0/0").allows_ip(ip("169.254.169.254")));
    assert!(!rule("0.0.0.0/0").allows_ip(ip("::1")));
    assert!(rule("Intranet.Example.").allows_host("intranet.example"));
    assert!(!rule("intranet.example").allows_host("other.example"));
    assert!(!rule("intranet.example").allows_ip(ip("10.0.0.1")));
    assert_eq!(AllowRule::parse("10.0.0.0/33"), None);
    assert_eq!(AllowRule::parse("10.0.0.0/x"), None);
    assert_eq!(AllowRule::parse("  "), None);
}

#[test]
fn policy_decisions() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let default = Fetcher::new(FetchPolicy::default());
    assert_eq!(default.permits(ip("8.8.8.8")), Ok(()));
    assert_eq!(default.permits(ip("10.0.0.1")), Err("private"));
    assert_eq!(default.permits(ip("::1")), Err("loopback"));

    let private = Fetcher::new(FetchPolicy {
        allow_private: true,
        ..FetchPolicy::default()
    });
    assert_eq!(private.permits(ip("10.0.0.1")), Ok(()));
    assert_eq!(private.permits(ip("192.168.0.10")), Ok(()));
    assert_eq!(private.permits(ip("100.64.1.1")), Ok(()));
    assert_eq!(private.permits(ip("fd00::1")), Ok(()));
    assert_eq!(private.permits(ip("169.254.169.254")), Err("link_local"));
    assert_eq!(private.permits(ip("127.0.0.1")), Err("loopback"));
    assert_eq!(private.permits(ip("0.0.0.0")), Err("unspecified"));

    let listed = Fetcher::new(FetchPolicy {
        allow_hosts: vec!["169.254.169.254".into(), "not a/valid entry".into()],
        ..FetchPolicy::default()
    });
    assert_eq!(listed.permits(ip("169.254.169.254")), Ok(()));
    assert_eq!(listed.permits(ip("169.254.169.253")), Err("link_local"));
}
