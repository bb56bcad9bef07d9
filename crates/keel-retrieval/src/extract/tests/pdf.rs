use std::time::{Duration, Instant};

use super::super::*;

/// A minimal, valid PDF: one page per entry of `pages`, each showing its text in Helvetica
/// (a standard font, so no font program is needed), with a correct xref table and an
/// optional Info dictionary holding `title` (a PDF literal string, escapes included).
fn build_pdf(pages: &[&str], title: Option<&str>) -> Vec<u8> {
    let n = pages.len();
    let page_id = |i: usize| 4 + 2 * i;
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", page_id(i))).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    for (i, text) in pages.iter().enumerate() {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            page_id(i) + 1
        ));
        let content = format!("BT /F1 18 Tf 72 720 Td ({text}) Tj ET");
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    let info_id = title.map(|t| {
        objects.push(format!("<< /Title ({t}) /Producer (keel test) >>"));
        objects.len()
    });

    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref_at = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let info = info_id.map_or(String::new(), |id| format!(" /Info {id} 0 R"));
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R{info} >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn pdf(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    extract(bytes, Format::Pdf, &Limits::default())
}

#[test]
fn a_small_pdf_gives_its_text() {
    let bytes = build_pdf(&["Hello from a tiny PDF"], None);
    assert_eq!(detect(Some("doc.bin"), None, &bytes).unwrap(), Format::Pdf);
    let out = pdf(&bytes).unwrap();
    assert_eq!(out.text, "Hello from a tiny PDF");
    assert_eq!(out.format, Format::Pdf);
    assert_eq!(out.title, None);
}

#[test]
fn pages_are_separated_by_a_blank_line_and_the_info_title_is_read() {
    let bytes = build_pdf(
        &["First page words", "Second page words"],
        Some("Quarterly \\(Q3\\) Report"),
    );
    let out = pdf(&bytes).unwrap();
    assert_eq!(out.text, "First page words\n\nSecond page words");
    assert_eq!(out.title.as_deref(), Some("Quarterly (Q3) Report"));
}

#[test]
fn a_pdf_without_text_is_empty() {
    let bytes = build_pdf(&[""], None);
    let err = pdf(&bytes).unwrap_err();
    assert!(matches!(err, ExtractError::Empty), "{err:?}");
}

#[test]
fn truncated_and_garbage_pdfs_are_corrupt_quickly() {
    let good = build_pdf(&["Some text that will be cut off"], None);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("header only", b"%PDF-1.4\n".to_vec()),
        (
            "garbage after the header",
            b"%PDF-1.7\n\x01\x02\x03 not really a pdf at all \xff\xfe".to_vec(),
        ),
        ("truncated at a third", good[..good.len() / 3].to_vec()),
        (
            "truncated before the trailer",
            good[..good.len() - 40].to_vec(),
        ),
        ("no pdf at all", b"\x00\x01\x02\x03".to_vec()),
    ];
    for (name, bytes) in cases {
        let started = Instant::now();
        let result = pdf(&bytes);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: took {:?}",
            started.elapsed()
        );
        match result {
            Err(ExtractError::Corrupt(message)) => assert!(message.starts_with("pdf"), "{message}"),
            other => panic!("{name}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn a_page_that_breaks_the_parser_is_corrupt_not_a_panic() {
    // A page without a MediaBox makes pdf-extract `expect()` — a panic inside the parser.
    let mut bytes = build_pdf(&["text"], None);
    let original = b"/MediaBox [0 0 612 792] ";
    // Same length, so the xref offsets stay right and the file still loads.
    let replacement = format!("{:<width$}", "/MediaBox (oops)", width = original.len());
    let at = bytes
        .windows(original.len())
        .position(|w| w == original)
        .unwrap();
    bytes[at..at + original.len()].copy_from_slice(replacement.as_bytes());
    match pdf(&bytes) {
        Err(ExtractError::Corrupt(message)) => assert!(message.contains("panicked"), "{message}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn the_timeout_bounds_the_wait() {
    // A big document with a zero timeout: the caller gets Timeout immediately even though
    // the parser thread keeps going in the background.
    let text = "lorem ipsum ".repeat(20);
    let pages: Vec<&str> = std::iter::repeat_n(text.as_str(), 400).collect();
    let bytes = build_pdf(&pages, None);
    let limits = Limits {
        pdf_timeout: Duration::ZERO,
        ..Limits::default()
    };
    let started = Instant::now();
    let err = extract(&bytes, Format::Pdf, &limits).unwrap_err();
    assert!(matches!(err, ExtractError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(err.reason(), "timeout");
}
