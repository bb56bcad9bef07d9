//! Document bytes → text.
//!
//! [`detect`] picks a [`Format`] from a file name or URL, a Content-Type and the bytes
//! themselves; [`extract`] turns the bytes into text. Plain text and Markdown pass through
//! (UTF-8 only, BOM stripped, line endings normalised), HTML becomes Markdown-shaped text
//! (headings as `#` lines so a heading-aware chunker sees the structure), PDF text comes from
//! `pdf-extract` run on a watchdog thread. Every failure is an [`ExtractError`] with a short
//! machine-readable [`reason`](ExtractError::reason); nothing in here panics on bad input.
//!
//! [`extract`] is blocking (HTML parsing and PDF extraction are CPU work): async callers run
//! it under `tokio::task::spawn_blocking`.

mod detect;
mod html;
mod pdf;
mod text;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use detect::detect;

/// The formats [`extract`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
}

impl Format {
    /// The serialised (snake_case) name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Pdf => "pdf",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds on what [`extract`] will take on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Inputs longer than this are refused with [`ExtractError::TooLarge`]. Default 20 MiB.
    pub max_bytes: usize,
    /// How long the PDF parser may run before [`ExtractError::Timeout`]. Default 20 s.
    pub pdf_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 20 * 1024 * 1024,
            pdf_timeout: Duration::from_secs(20),
        }
    }
}

/// The text of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// LF line endings, no leading or trailing blank lines, never whitespace-only.
    pub text: String,
    /// The format the text was extracted from.
    pub format: Format,
    /// The document's own title when it has one (HTML `<title>` or first `h1`, Markdown's
    /// first `# ` heading, a PDF's Info `/Title`).
    pub title: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("the document has no text")]
    Empty,
    #[error("the document is binary, not text")]
    Binary,
    #[error("the document is {size} bytes, over the limit of {limit}")]
    TooLarge { limit: usize, size: usize },
    #[error("the document is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported document type: {0}")]
    Unsupported(String),
    #[error("text extraction took too long")]
    Timeout,
}

impl ExtractError {
    /// A short stable label: "empty", "binary", "too_large", "corrupt", "unsupported" or
    /// "timeout".
    pub fn reason(&self) -> &'static str {
        match self {
            ExtractError::Empty => "empty",
            ExtractError::Binary => "binary",
            ExtractError::TooLarge { .. } => "too_large",
            ExtractError::Corrupt(_) => "corrupt",
            ExtractError::Unsupported(_) => "unsupported",
            ExtractError::Timeout => "timeout",
        }
    }
}

/// Extracts the text of `bytes` read as `format`. Blocking; see the module docs.
///
/// - Text: UTF-8 only (a UTF-8 BOM is stripped; invalid UTF-8 or NUL bytes → `Binary`),
///   CRLF and lone CR become LF.
/// - Markdown: as text; the title is the first `# ` heading outside code fences.
/// - HTML: Markdown-shaped text; scripts, styles, navigation and hidden parts dropped; the
///   title is `<title>`, else the first `h1`.
/// - PDF: the text of every page, pages separated by a blank line; a parser that panics
///   gives `Corrupt`, one that runs past `limits.pdf_timeout` gives `Timeout` (its thread is
///   abandoned, the caller is not held up).
///
/// A result that is empty or whitespace-only is `Empty`.
pub fn extract(bytes: &[u8], format: Format, limits: &Limits) -> Result<Extracted, ExtractError> {
    if bytes.len() > limits.max_bytes {
        return Err(ExtractError::TooLarge {
            limit: limits.max_bytes,
            size: bytes.len(),
        });
    }
    let (text, title) = match format {
        Format::Text => (text::decode(bytes)?, None),
        Format::Markdown => {
            let text = text::decode(bytes)?;
            let title = text::markdown_title(&text);
            (text, title)
        }
        Format::Html => html::extract(bytes)?,
        Format::Pdf => pdf::extract(bytes, limits.pdf_timeout)?,
    };
    let text = text::trim_blank_lines(&text);
    if text.is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(Extracted {
        text: text.to_owned(),
        format,
        title: title.filter(|t| !t.is_empty()),
    })
}
