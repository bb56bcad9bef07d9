//! Fetch tests against a local raw HTTP server; address classification in `addr.rs`.

mod addr;
mod redirects;
mod server;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use self::server::{Step, response, serve, unsized_response};
use super::*;

fn loopback_allowed() -> FetchPolicy {
    FetchPolicy {
        allow_hosts: vec!["127.0.0.1".into()],
        timeout: Duration::from_secs(5),
        ..FetchPolicy::default()
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

async fn hello_server() -> server::Server {
    serve(|path, _| match path {
        "/doc" => response(
            "200 OK",
            &[("Content-Type", "text/markdown; charset=utf-8")],
            b"# Hello\n",
        ),
        _ => response("404 Not Found", &[], b"nope"),
    })
    .await
}

#[tokio::test]
async fn loopback_is_blocked_by_default_before_any_connection() {
    let server = hello_server().await;
    let err = Fetcher::new(FetchPolicy::default())
        .fetch(&server.url("/doc"))
        .await
        .unwrap_err();
    match &err {
        FetchError::Blocked { host, addr, reason } => {
            assert_eq!(host, "127.0.0.1");
            assert_eq!(*addr, ip("127.0.0.1"));
            assert_eq!(*reason, "loopback");
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert_eq!(err.reason(), "blocked");
    assert_eq!(server.hits(), 0, "the blocked fetch still connected");
}

#[tokio::test]
async fn allow_hosts_lets_a_listed_address_through() {
    let server = hello_server().await;
    let fetched = Fetcher::new(loopback_allowed())
        .fetch(&server.url("/doc"))
        .await
        .unwrap();
    assert_eq!(fetched.bytes, b"# Hello\n");
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("text/markdown; charset=utf-8")
    );
    assert_eq!(fetched.url, server.url("/doc"));
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn allow_hosts_takes_cidr_blocks_and_host_names() {
    let server = hello_server().await;
    let cidr = FetchPolicy {
        allow_hosts: vec!["127.0.0.0/8".into()],
        ..loopback_allowed()
    };
    assert!(Fetcher::new(cidr).fetch(&server.url("/doc")).await.is_ok());

    // By name: resolved by the fetcher, connected through the pinned resolver.
    let url = format!("http://localhost:{}/doc", server.port());
    let err = Fetcher::new(FetchPolicy::default())
        .fetch(&url)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Blocked { reason: "loopback", ref host, .. } if host == "localhost"),
        "{err:?}"
    );
    let by_name = FetchPolicy {
        allow_hosts: vec!["LOCALHOST".into()],
        ..loopback_allowed()
    };
    let fetched = Fetcher::new(by_name).fetch(&url).await.unwrap();
    assert_eq!(fetched.bytes, b"# Hello\n");
}

#[tokio::test]
async fn allow_private_does_not_open_loopback() {
    let server = hello_server().await;
    let policy = FetchPolicy {
        allow_private: true,
        ..FetchPolicy::default()
    };
    let err = Fetcher::new(policy)
        .fetch(&server.url("/doc"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Blocked {
                reason: "loopback",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn numeric_host_forms_of_loopback_are_blocked() {
    for host in [
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "127.1",
        "0177.0.0.1",
        "127.0.0.1.",
    ] {
        let url = format!("http://{host}:9/");
        let err = Fetcher::new(FetchPolicy::default())
            .fetch(&url)
            .await
            .unwrap_err();
        match err {
            FetchError::Blocked { addr, reason, .. } => {
                assert_eq!(addr, ip("127.0.0.1"), "{host}");
                assert_eq!(reason, "loopback", "{host}");
            }
            other => panic!("{host}: expected Blocked, got {other:?}"),
        }
    }
    for (url, addr, reason) in [
        (
            "http://[::ffff:127.0.0.1]:9/",
            "::ffff:127.0.0.1",
            "loopback",
        ),
        (
            "http://[::ffff:a9fe:a9fe]/",
            "::ffff:169.254.169.254",
            "link_local",
        ),
        ("http://[64:ff9b::a00:1]/", "64:ff9b::10.0.0.1", "private"),
        ("http://[::1]:9/", "::1", "loopback"),
        ("http://0.0.0.0:9/", "0.0.0.0", "unspecified"),
        ("http://0/", "0.0.0.0", "unspecified"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
            "link_local",
        ),
    ] {
        let err = Fetcher::new(FetchPolicy::default())
            .fetch(url)
            .await
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Blocked { addr: a, reason: r, .. } if a == ip(addr) && r == reason),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn requests_connect_to_the_pinned_addresses_only() {
    let server = hello_server().await;
    let port = server.port();
    // A name that no DNS knows: reaching the server proves the pinned address was used.
    let url = url::Url::parse(&format!("http://pinned.invalid:{port}/doc")).unwrap();
    let pinned =
        super::pinned::Pinned::new(Some("pinned.invalid".into()), vec![ip("127.0.0.1")], port);
    let response = pinned.get(&url, Duration::from_secs(5)).await.unwrap();
    assert_eq!(response.status(), 200);
    // Any other name is refused by the resolver instead of being looked up.
    let other = url::Url::parse(&format!("http://localhost:{port}/doc")).unwrap();
    let err = pinned
        .get(&other, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Http(ref m) if m.contains("not checked")),
        "{err:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn bodies_over_max_bytes_are_too_large() {
    let server = serve(|path, _| match path {
        "/declared" => response("200 OK", &[], &[b'x'; 2048]),
        "/exact" => response("200 OK", &[], &[b'x'; 1024]),
        _ => unsized_response(64, &[b'y'; 64]),
    })
    .await;
    let policy = FetchPolicy {
        max_bytes: 1024,
        ..loopback_allowed()
    };
    let fetcher = Fetcher::new(policy);
    for path in ["/declared", "/streamed"] {
        let err = fetcher.fetch(&server.url(path)).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit: 1024 }),
            "{path}: {err:?}"
        );
        assert_eq!(err.reason(), "too_large");
    }
    assert_eq!(
        fetcher
            .fetch(&server.url("/exact"))
            .await
            .unwrap()
            .bytes
            .len(),
        1024
    );
}

#[tokio::test]
async fn an_unsized_body_under_the_limit_is_read_to_the_end() {
    let server = serve(|_, _| unsized_response(4, b"0123456789")).await;
    let fetched = Fetcher::new(loopback_allowed())
        .fetch(&server.url("/"))
        .await
        .unwrap();
    assert_eq!(fetched.bytes.len(), 40);
    assert_eq!(fetched.content_type.as_deref(), Some("text/plain"));
}

#[tokio::test]
async fn slow_servers_time_out_within_the_timeout() {
    let server = serve(|path, _| match path {
        // Never answers in time.
        "/silent" => vec![Step::Sleep(Duration::from_secs(30))],
        // Answers, then trickles the body.
        _ => {
            let mut steps = vec![Step::Write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec(),
            )];
            for _ in 0..100 {
                steps.push(Step::Write(b"x".to_vec()));
                steps.push(Step::Sleep(Duration::from_millis(100)));
            }
            steps
        }
    })
    .await;
    let policy = FetchPolicy {
        timeout: Duration::from_millis(400),
        ..loopback_allowed()
    };
    let fetcher = Fetcher::new(policy);
    for path in ["/silent", "/trickle"] {
        let started = Instant::now();
        let err = fetcher.fetch(&server.url(path)).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, FetchError::Timeout), "{path}: {err:?}");
        assert!(
            took >= Duration::from_millis(350) && took < Duration::from_secs(2),
            "{path}: {took:?}"
        );
    }
}

#[tokio::test]
async fn non_success_status_is_an_error() {
    let server = hello_server().await;
    let err = Fetcher::new(loopback_allowed())
        .fetch(&server.url("/missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Status(404)), "{err:?}");
    assert_eq!(err.reason(), "status");
}

#[tokio::test]
async fn only_http_and_https_urls_without_credentials() {
    let fetcher = Fetcher::new(loopback_allowed());
    for (url, reason) in [
        ("ftp://example.com/file", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:70/", "scheme"),
        ("not a url", "bad_url"),
        ("http://", "bad_url"),
        ("http://user:secret@127.0.0.1/", "bad_url"),
        ("http://127.0.0.1@169.254.169.254/", "bad_url"),
    ] {
        let err = fetcher.fetch(url).await.unwrap_err();
        assert_eq!(err.reason(), reason, "{url}: {err:?}");
    }
    let err = fetcher.fetch("ftp://example.com/").await.unwrap_err();
    assert!(
        matches!(err, FetchError::Scheme(ref s) if s == "ftp"),
        "{err:?}"
    );
}

#[tokio::test]
async fn unresolvable_names_are_resolve_errors() {
    let err = Fetcher::new(FetchPolicy::default())
        .fetch("http://no-such-host.invalid/")
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Resolve(_) | FetchError::Timeout),
        "{err:?}"
    );
}

#[test]
fn defaults_match_the_documented_policy() {
    let policy = FetchPolicy::default();
    assert!(!policy.allow_private);
    assert!(policy.allow_hosts.is_empty());
    assert_eq!(policy.max_bytes, 20 * 1024 * 1024);
    assert_eq!(policy.timeout, Duration::from_secs(15));
    assert_eq!(policy.max_redirects, 5);
}
