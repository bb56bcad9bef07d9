//! HTML → Markdown-shaped text with html2text: headings become `#` lines, lists `- ` and
//! `1. ` items, quotes `> ` lines, tables without borders; links keep their text only; scripts, styles, navigation
//! and hidden elements are removed from the DOM before rendering.

use html2text::render::{TaggedLine, TextDecorator};
use html2text::{Element, Handle, RcDom};

use super::ExtractError;
use super::text::{decode, one_line, tidy};

/// Wide enough that paragraphs are never wrapped (a wrapped line would split sentences
/// across chunk boundaries for no reason).
const WIDTH: usize = 1_000_000;

/// Elements whose content is never document text.
const DROPPED: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "iframe", "object", "embed", "svg", "canvas",
    "math", "button", "select", "datalist", "dialog",
];

/// Roles that mark page chrome rather than content.
const DROPPED_ROLES: &[&str] = &["navigation", "search", "menu", "menubar", "banner"];

pub(super) fn extract(bytes: &[u8]) -> Result<(String, Option<String>), ExtractError> {
    let source = decode(bytes)?;
    let config = html2text::config::with_decorator(Markdownish).no_table_borders();
    let dom = config
        .parse_html(source.as_bytes())
        .map_err(|e| ExtractError::Corrupt(format!("html: {e}")))?;
    let title_element = prune(&dom.document);
    let text = render(&config, &dom)?;
    let text = tidy(&text);
    let title = title_element
        .and_then(|t| render_title(&config, &dom, &t))
        .or_else(|| first_h1(&text));
    Ok((text, title))
}

fn render(
    config: &html2text::config::Config<Markdownish>,
    dom: &RcDom,
) -> Result<String, ExtractError> {
    let tree = match config.dom_to_render_tree(dom) {
        Ok(tree) => tree,
        // html2text reports a document with nothing to render as a failure.
        Err(html2text::Error::Fail) => return Ok(String::new()),
        Err(e) => return Err(ExtractError::Corrupt(format!("html: {e}"))),
    };
    config
        .render_to_string(tree, WIDTH)
        .map_err(|e| ExtractError::Corrupt(format!("html: {e}")))
}

/// Removes [`DROPPED`] elements and hidden ones from the tree (iteratively: deeply nested
/// markup must not overflow the stack) and returns the first `<title>` element.
fn prune(root: &Handle) -> Option<Handle> {
    let mut title = None;
    let mut stack = vec![root.clone()];
    while let Some(node) = stack.pop() {
        if title.is_none() && local_name(&node).as_deref() == Some("title") {
            title = Some(node.clone());
        }
        let mut children = node.children.borrow_mut();
        children.retain(|child| !is_dropped(child));
        // Reversed so that the first child is visited first (document order for <title>).
        stack.extend(children.iter().rev().cloned());
    }
    title
}

fn local_name(node: &Handle) -> Option<String> {
    match &node.data {
        Element { name, .. } => Some(str::to_ascii_lowercase(&name.local)),
        _ => None,
    }
}

fn is_dropped(node: &Handle) -> bool {
    let Element { name, attrs, .. } = &node.data else {
        return false;
    };
    let local: &str = &name.local;
    if DROPPED.iter().any(|d| local.eq_ignore_ascii_case(d)) {
        return true;
    }
    attrs.borrow().iter().any(|attr| {
        let value: &str = &attr.value;
        match &*attr.name.local {
            "hidden" => true,
            "aria-hidden" => value.trim().eq_ignore_ascii_case("true"),
            "role" => DROPPED_ROLES
                .iter()
                .any(|r| value.trim().eq_ignore_ascii_case(r)),
            "style" => {
                let style: String = value
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_ascii_lowercase();
                style.contains("display:none") || style.contains("visibility:hidden")
            }
            _ => false,
        }
    })
}

/// Renders the text inside `<title>`: html2text skips `<head>`, so the title's children are
/// moved into `<body>` (whose own content has already been rendered) and rendered alone.
fn render_title(
    config: &html2text::config::Config<Markdownish>,
    dom: &RcDom,
    title: &Handle,
) -> Option<String> {
    let body = find_body(&dom.document)?;
    let title_children = title.children.borrow().clone();
    *body.children.borrow_mut() = title_children;
    let text = render(config, dom).ok()?;
    Some(one_line(&text)).filter(|t| !t.is_empty())
}

fn find_body(document: &Handle) -> Option<Handle> {
    let html = child_named(document, "html")?;
    child_named(&html, "body")
}

fn child_named(node: &Handle, name: &str) -> Option<Handle> {
    node.children
        .borrow()
        .iter()
        .find(|c| local_name(c).as_deref() == Some(name))
        .cloned()
}

/// The first level-one heading of the rendered text.
fn first_h1(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(one_line)
        .filter(|t| !t.is_empty())
}

/// Markdown-ish output: `#` headings, `- ` / `1. ` lists, `> ` quotes; link targets, code
/// backticks and emphasis markers left out (noise for search; html2text cannot tell inline
/// code from a `<pre>` block), no footnote list.
#[derive(Clone, Debug)]
struct Markdownish;

impl TextDecorator for Markdownish {
    type Annotation = ();

    fn decorate_link_start(&mut self, _url: &str) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_link_end(&mut self) -> String {
        String::new()
    }
    fn decorate_em_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_em_end(&self) -> String {
        String::new()
    }
    fn decorate_strong_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strong_end(&self) -> String {
        String::new()
    }
    fn decorate_strikeout_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }
    fn decorate_code_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_code_end(&self) -> String {
        String::new()
    }
    fn decorate_preformat_first(&self) {}
    fn decorate_preformat_cont(&self) {}
    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, ()) {
        (title.to_owned(), ())
    }
    fn header_prefix(&self, level: usize) -> String {
        format!("{} ", "#".repeat(level.clamp(1, 6)))
    }
    fn quote_prefix(&self) -> String {
        "> ".to_owned()
    }
    fn unordered_item_prefix(&self) -> String {
        "- ".to_owned()
    }
    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }
    fn make_subblock_decorator(&self) -> Self {
        Markdownish
    }
    fn finalise(&mut self, _urls: Vec<String>) -> Vec<TaggedLine<()>> {
        Vec::new()
    }
}
