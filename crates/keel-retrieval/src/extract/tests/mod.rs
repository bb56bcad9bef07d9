//! Tests of text/Markdown extraction and of format detection; HTML and PDF have their own
//! files.

mod html;
mod pdf;

use super::detect::extension;
use super::*;

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn text_strips_the_bom_and_normalises_line_endings() {
    let bytes = b"\xEF\xBB\xBFfirst line\r\nsecond line\rthird\n";
    let out = extract(bytes, Format::Text, &limits()).unwrap();
    assert_eq!(out.text, "first line\nsecond line\nthird");
    assert_eq!(out.format, Format::Text);
    assert_eq!(out.title, None);
}

#[test]
fn text_keeps_inner_whitespace_and_drops_blank_edges() {
    let bytes = b"\n  \n    indented code\n\n\n\nafter three blank lines   \n\n";
    let out = extract(bytes, Format::Text, &limits()).unwrap();
    assert_eq!(out.text, "    indented code\n\n\n\nafter three blank lines");
}

#[test]
fn utf16_with_a_bom_is_text() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "héllo\r\nwörld".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(detect(None, None, &bytes).unwrap(), Format::Text);
    let out = extract(&bytes, Format::Text, &limits()).unwrap();
    assert_eq!(out.text, "héllo\nwörld");
}

#[test]
fn invalid_utf8_is_binary() {
    let bytes = b"caf\xE9 au lait, latin-1 encoded";
    let err = extract(bytes, Format::Text, &limits()).unwrap_err();
    assert!(matches!(err, ExtractError::Binary), "{err:?}");
    assert_eq!(err.reason(), "binary");
    assert!(matches!(
        detect(Some("a.txt"), None, bytes),
        Err(ExtractError::Binary)
    ));
}

#[test]
fn nul_bytes_are_binary() {
    // Valid UTF-8, but NUL-heavy like an executable or an image header.
    let mut bytes = b"ELF".to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 64));
    bytes.extend_from_slice(b"some strings");
    assert!(matches!(
        extract(&bytes, Format::Text, &limits()),
        Err(ExtractError::Binary)
    ));
    assert!(matches!(
        extract(&bytes, Format::Markdown, &limits()),
        Err(ExtractError::Binary)
    ));
    assert!(matches!(
        extract(&bytes, Format::Html, &limits()),
        Err(ExtractError::Binary)
    ));
    assert!(matches!(
        detect(None, None, &bytes),
        Err(ExtractError::Binary)
    ));
}

#[test]
fn empty_and_whitespace_only_are_empty() {
    for bytes in [&b""[..], b"   \n\t\r\n  ", b"\xEF\xBB\xBF \n"] {
        let err = extract(bytes, Format::Text, &limits()).unwrap_err();
        assert!(matches!(err, ExtractError::Empty), "{bytes:?}: {err:?}");
        assert_eq!(err.reason(), "empty");
    }
    assert!(matches!(
        extract(b"<html><body> </body></html>", Format::Html, &limits()),
        Err(ExtractError::Empty)
    ));
    assert!(matches!(detect(None, None, b""), Err(ExtractError::Empty)));
}

#[test]
fn over_the_limit_is_too_large_for_every_format() {
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    for format in [Format::Text, Format::Markdown, Format::Html, Format::Pdf] {
        let err = extract(b"eleven byte", format, &limits).unwrap_err();
        assert!(
            matches!(
                err,
                ExtractError::TooLarge {
                    limit: 10,
                    size: 11
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.reason(), "too_large");
    }
    assert!(extract(b"ten bytes!", Format::Text, &limits).is_ok());
}

#[test]
fn markdown_passes_through_with_its_first_heading_as_title() {
    let md =
        "Intro line\n\n```\n# not a heading, code\n```\n\n# The Title #\n\n## Section\n\nBody.\n";
    let out = extract(md.as_bytes(), Format::Markdown, &limits()).unwrap();
    assert_eq!(out.text, md.trim_end());
    assert_eq!(out.title.as_deref(), Some("The Title"));
}

#[test]
fn markdown_title_from_front_matter_or_setext() {
    let fm = "---\ntitle: \"Front Matter Title\"\ntags: [a]\n---\n# Heading\n";
    assert_eq!(
        extract(fm.as_bytes(), Format::Markdown, &limits())
            .unwrap()
            .title
            .as_deref(),
        Some("Front Matter Title")
    );
    let setext = "Setext Title\n============\n\ntext\n";
    assert_eq!(
        extract(setext.as_bytes(), Format::Markdown, &limits())
            .unwrap()
            .title
            .as_deref(),
        Some("Setext Title")
    );
    let none = "## Only a subheading\n\n    # indented code, not a heading\n";
    assert_eq!(
        extract(none.as_bytes(), Format::Markdown, &limits())
            .unwrap()
            .title,
        None
    );
}

#[test]
fn format_serialises_snake_case() {
    assert_eq!(
        serde_json::to_string(&Format::Markdown).unwrap(),
        "\"markdown\""
    );
    assert_eq!(
        serde_json::from_str::<Format>("\"pdf\"").unwrap(),
        Format::Pdf
    );
    assert_eq!(Format::Html.to_string(), "html");
}

#[test]
fn reasons_are_stable() {
    let all = [
        (ExtractError::Empty, "empty"),
        (ExtractError::Binary, "binary"),
        (ExtractError::TooLarge { limit: 1, size: 2 }, "too_large"),
        (ExtractError::Corrupt("x".into()), "corrupt"),
        (ExtractError::Unsupported("x".into()), "unsupported"),
        (ExtractError::Timeout, "timeout"),
    ];
    for (err, reason) in all {
        assert_eq!(err.reason(), reason);
    }
}

#[test]
fn detect_by_extension() {
    let body = b"plain words";
    assert_eq!(
        detect(Some("notes.md"), None, body).unwrap(),
        Format::Markdown
    );
    assert_eq!(
        detect(Some("README.MARKDOWN"), None, body).unwrap(),
        Format::Markdown
    );
    assert_eq!(detect(Some("page.HTM"), None, body).unwrap(), Format::Html);
    assert_eq!(
        detect(Some("notes.txt"), None, b"<html>a</html>").unwrap(),
        Format::Text
    );
    assert_eq!(
        detect(Some("https://x.test/docs/guide.md?rev=2#top"), None, body).unwrap(),
        Format::Markdown
    );
    assert_eq!(
        detect(Some("https://x.test/a.md/view"), None, body).unwrap(),
        Format::Text
    );
    assert_eq!(
        detect(Some(r"C:\docs\intro.md"), None, body).unwrap(),
        Format::Markdown
    );
    assert_eq!(detect(Some("Makefile"), None, body).unwrap(), Format::Text);
    let err = detect(Some("report.docx"), None, b"PK\x03\x04\x14\x00").unwrap_err();
    assert!(matches!(err, ExtractError::Unsupported(_)), "{err:?}");
    assert_eq!(extension("archive.tar.GZ").as_deref(), Some("gz"));
    assert_eq!(extension(".bashrc"), None);
    assert_eq!(extension("https://x.test/"), None);
}

#[test]
fn detect_by_content_type() {
    let body = b"plain words";
    assert_eq!(
        detect(None, Some("text/html; charset=utf-8"), body).unwrap(),
        Format::Html
    );
    assert_eq!(
        detect(None, Some("Text/Markdown"), body).unwrap(),
        Format::Markdown
    );
    assert_eq!(detect(None, Some("text/csv"), body).unwrap(), Format::Text);
    assert_eq!(
        detect(None, Some("application/json"), b"{\"a\":1}").unwrap(),
        Format::Text
    );
    // A specific type beats the extension; a generic one defers to it.
    assert_eq!(
        detect(Some("x.md"), Some("text/html"), body).unwrap(),
        Format::Html
    );
    assert_eq!(
        detect(Some("x.md"), Some("text/plain"), body).unwrap(),
        Format::Markdown
    );
    assert_eq!(
        detect(Some("x.md"), Some("application/octet-stream"), body).unwrap(),
        Format::Markdown
    );
    let err = detect(None, Some("image/png"), b"\x89PNG\r\n\x1a\n").unwrap_err();
    assert!(
        matches!(err, ExtractError::Unsupported(ref t) if t == "image/png"),
        "{err:?}"
    );
}

#[test]
fn detect_by_magic() {
    assert_eq!(detect(None, None, b"%PDF-1.7\n...").unwrap(), Format::Pdf);
    // PDF magic wins over a wrong label, and binary bytes don't matter for PDFs.
    assert_eq!(
        detect(
            Some("a.txt"),
            Some("text/plain"),
            b"%PDF-1.4\n\xE2\xE3\xCF\xD3\x00"
        )
        .unwrap(),
        Format::Pdf
    );
    assert_eq!(
        detect(None, None, b"\xEF\xBB\xBF  <!DOCTYPE html><p>x").unwrap(),
        Format::Html
    );
    assert_eq!(
        detect(None, None, b"\n<HTML lang=en><body>x").unwrap(),
        Format::Html
    );
    assert_eq!(
        detect(None, None, b"<!-- generated --><!doctype html>x").unwrap(),
        Format::Html
    );
    assert_eq!(
        detect(None, Some("text/plain"), b"<html>x</html>").unwrap(),
        Format::Html
    );
    assert_eq!(
        detect(None, None, b"# a markdown-looking file").unwrap(),
        Format::Text
    );
    assert_eq!(
        detect(None, None, b"<p>fragment</p>").unwrap(),
        Format::Text
    );
    // Labelled PDF: binary bytes stay PDF (extraction will call them corrupt), an HTML error
    // page served for a .pdf URL is read as HTML.
    assert_eq!(
        detect(Some("x.pdf"), None, b"\x00\x01garbage").unwrap(),
        Format::Pdf
    );
    assert_eq!(
        detect(
            Some("x.pdf"),
            Some("application/pdf"),
            b"<!doctype html><h1>404</h1>"
        )
        .unwrap(),
        Format::Html
    );
}
