//! Text decoding and clean-up shared by the formats.

use std::borrow::Cow;

use super::ExtractError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a text document: UTF-8 (BOM stripped) or UTF-16 with a byte-order mark. Invalid
/// encodings and NUL characters are `Binary`. Line endings come back as LF.
pub(super) fn decode(bytes: &[u8]) -> Result<String, ExtractError> {
    let text = as_text(bytes).ok_or(ExtractError::Binary)?;
    Ok(normalise_newlines(&text).into_owned())
}

/// The bytes as text if they are text: UTF-8 without NULs (a BOM stripped), or UTF-16 LE/BE
/// announced by its BOM. `None` means binary.
pub(super) fn as_text(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let text: Cow<'_, str> = if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        Cow::Borrowed(std::str::from_utf8(rest).ok()?)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        Cow::Owned(utf16(rest, u16::from_le_bytes)?)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        Cow::Owned(utf16(rest, u16::from_be_bytes)?)
    } else {
        Cow::Borrowed(std::str::from_utf8(bytes).ok()?)
    };
    if text.contains('\0') {
        return None;
    }
    Some(text)
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| unit([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// CRLF and lone CR → LF.
pub(super) fn normalise_newlines(text: &str) -> Cow<'_, str> {
    if !text.contains('\r') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Drops whitespace-only lines at the start and all trailing whitespace, keeping the rest
/// exactly (text and Markdown are otherwise passed through as they are).
pub(super) fn trim_blank_lines(text: &str) -> &str {
    let Some(first) = text.find(|c: char| !c.is_whitespace()) else {
        return "";
    };
    let line_start = text[..first].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..].trim_end()
}

/// Clean-up for converted text (HTML, PDF): non-breaking spaces become spaces, trailing
/// whitespace goes from every line, runs of blank lines become one, and blank lines at either
/// end are dropped.
pub(super) fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = false;
    for line in text.split('\n') {
        let line = line.trim_end();
        if line.trim_start().is_empty() {
            blank_run = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run {
                out.push('\n');
            }
        }
        blank_run = false;
        out.extend(line.chars().map(|c| if c == '\u{a0}' { ' ' } else { c }));
    }
    out
}

/// Whitespace runs → one space, trimmed; for titles.
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A Markdown document's title: `title:` in a leading YAML front matter block, else the first
/// level-one heading (`# Title` or a Setext `Title` / `===`) outside fenced code.
pub(super) fn markdown_title(text: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    if lines.peek().map(|l| l.trim_end()) == Some("---") {
        lines.next();
        let mut title = None;
        for line in lines.by_ref() {
            let line = line.trim_end();
            if line == "---" || line == "..." {
                break;
            }
            if let Some(value) = line.strip_prefix("title:") {
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                title = Some(one_line(value)).filter(|t| !t.is_empty());
            }
        }
        if title.is_some() {
            return title;
        }
    }
    let mut fence: Option<&str> = None;
    let mut previous: Option<&str> = None;
    for line in lines {
        let body = strip_indent(line);
        if let Some(open) = fence {
            if body.starts_with(open) {
                fence = None;
            }
            previous = None;
            continue;
        }
        if let Some(marker) = ["```", "~~~"].into_iter().find(|m| body.starts_with(m)) {
            fence = Some(marker);
            previous = None;
            continue;
        }
        if let Some(heading) = body.strip_prefix("# ").or(body.strip_prefix("#\t")) {
            let heading = heading.trim().trim_end_matches('#').trim_end();
            let title = one_line(heading);
            if !title.is_empty() {
                return Some(title);
            }
        }
        let trimmed = body.trim_end();
        if !trimmed.is_empty()
            && trimmed.chars().all(|c| c == '=')
            && let Some(prev) = previous
        {
            return Some(one_line(prev));
        }
        previous = Some(body).filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
    }
    None
}

/// Up to three leading spaces are still a heading or fence in Markdown; four make code.
fn strip_indent(line: &str) -> &str {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    if spaces <= 3 { &line[spaces..] } else { line }
}
