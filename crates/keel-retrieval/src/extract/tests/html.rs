use super::super::*;

fn html(source: &str) -> Extracted {
    extract(source.as_bytes(), Format::Html, &Limits::default()).unwrap()
}

const PAGE: &str = r#"<!DOCTYPE html>
<html>
<head>
  <title>  The   Page &amp; Its Title </title>
  <style>body { color: red; } .secret-style {}</style>
  <script>var secretScript = "do not index";</script>
</head>
<body>
  <nav><a href="/">Home</a> <a href="/about">NavLinkText</a></nav>
  <div role="navigation">RoleNavText</div>
  <h1>Main Heading</h1>
  <p>First paragraph with a <a href="https://example.test/x">link text</a> and <b>bold</b>.</p>
  <h2>Second Level</h2>
  <ul><li>apple</li><li>pear</li></ul>
  <ol><li>one</li><li>two</li></ol>
  <h3>Third Level</h3>
  <blockquote>A quote.</blockquote>
  <p hidden>HiddenAttrText</p>
  <p style="display: none">DisplayNoneText</p>
  <noscript>NoscriptText</noscript>
  <script type="module">import("secretModule")</script>
  <p>Last words.</p>
</body>
</html>"#;

#[test]
fn headings_become_hash_lines() {
    let out = html(PAGE);
    let lines: Vec<&str> = out.text.lines().collect();
    assert!(lines.contains(&"# Main Heading"), "{}", out.text);
    assert!(lines.contains(&"## Second Level"), "{}", out.text);
    assert!(lines.contains(&"### Third Level"), "{}", out.text);
    assert!(lines.contains(&"- apple"), "{}", out.text);
    assert!(lines.contains(&"2. two"), "{}", out.text);
    assert!(lines.contains(&"> A quote."), "{}", out.text);
    assert!(
        out.text
            .contains("First paragraph with a link text and bold."),
        "{}",
        out.text
    );
    assert!(out.text.ends_with("Last words."), "{}", out.text);
    assert_eq!(out.format, Format::Html);
}

#[test]
fn scripts_styles_navigation_and_hidden_parts_are_dropped() {
    let out = html(PAGE);
    for absent in [
        "secretScript",
        "secretModule",
        "secret-style",
        "color: red",
        "NavLinkText",
        "RoleNavText",
        "HiddenAttrText",
        "DisplayNoneText",
        "NoscriptText",
        "https://example.test",
    ] {
        assert!(
            !out.text.contains(absent),
            "{absent:?} leaked into:\n{}",
            out.text
        );
    }
}

#[test]
fn title_comes_from_the_title_element() {
    assert_eq!(html(PAGE).title.as_deref(), Some("The Page & Its Title"));
}

#[test]
fn title_falls_back_to_the_first_h1() {
    let out =
        html("<html><body><p>intro</p><h1>Fallback <i>Title</i></h1><h1>Second</h1></body></html>");
    assert_eq!(out.title.as_deref(), Some("Fallback Title"));
    let none = html("<p>just a fragment</p>");
    assert_eq!(none.title, None);
    assert_eq!(none.text, "just a fragment");
}

#[test]
fn long_paragraphs_are_not_wrapped() {
    let sentence = "word ".repeat(400);
    let out = html(&format!("<p>{sentence}</p>"));
    assert_eq!(out.text.lines().count(), 1);
    assert_eq!(out.text, sentence.trim_end());
}

#[test]
fn deeply_nested_markup_does_not_overflow_the_stack() {
    let depth = 20_000;
    let source = format!(
        "{}deep text{}",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    );
    let limits = Limits::default();
    // Run on a small stack like tokio's blocking threads (2 MiB).
    let out = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || extract(source.as_bytes(), Format::Html, &limits))
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert!(out.text.contains("deep text"));
}

#[test]
fn tables_keep_their_cell_text() {
    let out =
        html("<table><tr><th>Name</th><th>Qty</th></tr><tr><td>bolts</td><td>12</td></tr></table>");
    for cell in ["Name", "Qty", "bolts", "12"] {
        assert!(out.text.contains(cell), "{cell} missing:\n{}", out.text);
    }
    assert!(
        out.text.len() < 200,
        "table padded to the render width:\n{}",
        out.text
    );
}
