//! Redirects: followed by hand, every hop checked again.

use super::server::{redirect, response, serve};
use super::{ip, loopback_allowed};
use crate::fetch::{FetchError, FetchPolicy, Fetcher};

#[tokio::test]
async fn redirect_to_the_metadata_address_is_blocked_at_the_hop() {
    let server = serve(|_, _| redirect("http://169.254.169.254/latest/meta-data/")).await;
    let err = Fetcher::new(loopback_allowed())
        .fetch(&server.url("/start"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Blocked { addr, reason: "link_local", ref host } if addr == ip("169.254.169.254") && host == "169.254.169.254"),
        "{err:?}"
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn redirect_to_another_loopback_form_is_blocked_at_the_hop() {
    // Only 127.0.0.1 is allowed; [::1] and 127.0.0.2 (as hex) are other addresses.
    let server = serve(|path, port| match path {
        "/v6" => redirect(&format!("http://[::1]:{port}/doc")),
        _ => redirect(&format!("http://0x7f.0.0.2:{port}/doc")),
    })
    .await;
    let fetcher = Fetcher::new(loopback_allowed());
    let err = fetcher.fetch(&server.url("/v6")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Blocked { addr, reason: "loopback", .. } if addr == ip("::1")),
        "{err:?}"
    );
    let err = fetcher.fetch(&server.url("/hex")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::Blocked { addr, reason: "loopback", .. } if addr == ip("127.0.0.2")),
        "{err:?}"
    );
}

#[tokio::test]
async fn relative_redirects_are_followed() {
    let server = serve(|path, _| match path {
        "/a/start" => redirect("../b/next?x=1"),
        "/b/next?x=1" => redirect("/final"),
        "/final" => response("200 OK", &[("Content-Type", "text/plain")], b"arrived"),
        _ => response("404 Not Found", &[], b""),
    })
    .await;
    let fetched = Fetcher::new(loopback_allowed())
        .fetch(&server.url("/a/start"))
        .await
        .unwrap();
    assert_eq!(fetched.bytes, b"arrived");
    assert_eq!(fetched.url, server.url("/final"));
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn redirect_loops_stop_at_max_redirects() {
    let server = serve(|_, _| redirect("/loop")).await;
    let policy = FetchPolicy {
        max_redirects: 3,
        ..loopback_allowed()
    };
    let err = Fetcher::new(policy)
        .fetch(&server.url("/loop"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects(3)), "{err:?}");
    assert_eq!(err.reason(), "too_many_redirects");
    assert_eq!(server.hits(), 4, "the first request plus three redirects");
}

#[tokio::test]
async fn redirect_to_another_scheme_is_refused() {
    let server = serve(|_, _| redirect("ftp://example.com/file.txt")).await;
    let err = Fetcher::new(loopback_allowed())
        .fetch(&server.url("/"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Scheme(ref s) if s == "ftp"),
        "{err:?}"
    );
}
