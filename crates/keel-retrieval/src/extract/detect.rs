//! Format detection from a name, a Content-Type and the bytes.

use super::text::as_text;
use super::{ExtractError, Format};

/// What a name or a Content-Type says about the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hint {
    /// Nothing useful (`text/plain`, `application/octet-stream`, an unknown extension).
    Generic,
    /// A format we read.
    Is(Format),
    /// A document type we do not read (office files, images, archives, ...).
    Unsupported(String),
}

/// Picks the format of a document from its file name or URL (`name`, by extension), its
/// Content-Type and its first bytes.
///
/// - Empty bytes → `Empty`.
/// - `%PDF-` magic → `Pdf`, whatever the name and type say. A name or type saying PDF on
///   bytes that are not text is also `Pdf` (extraction then reports it corrupt); text bytes
///   under a PDF label (an HTML error page, say) are read as what they are.
/// - A type or extension of a document we don't read (Word, images, archives, ...) →
///   `Unsupported`.
/// - Bytes with NULs or invalid UTF-8 (UTF-16 with a BOM is accepted) → `Binary`.
/// - Otherwise a specific Content-Type (HTML, Markdown, other text) wins over the
///   extension; with neither, `<!doctype html` / `<html` at the start means `Html`; the rest
///   is `Text`.
pub fn detect(
    name: Option<&str>,
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<Format, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    if has_pdf_magic(bytes) {
        return Ok(Format::Pdf);
    }
    let by_type = content_type.map_or(Hint::Generic, mime_hint);
    let by_name = name
        .and_then(extension)
        .map_or(Hint::Generic, |e| ext_hint(&e));
    let hint = if by_type == Hint::Generic {
        by_name
    } else {
        by_type
    };
    if let Hint::Unsupported(what) = hint {
        return Err(ExtractError::Unsupported(what));
    }
    let Some(text) = as_text(bytes) else {
        if hint == Hint::Is(Format::Pdf) {
            return Ok(Format::Pdf);
        }
        return Err(ExtractError::Binary);
    };
    match hint {
        Hint::Is(Format::Pdf) | Hint::Generic => Ok(sniff(&text)),
        Hint::Is(format) => Ok(format),
        Hint::Unsupported(what) => Err(ExtractError::Unsupported(what)),
    }
}

/// PDF files start with `%PDF-`; readers accept it anywhere in the first KiB.
fn has_pdf_magic(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    head.windows(5).any(|w| w == b"%PDF-")
}

/// HTML if the text opens like an HTML document (after whitespace and comments).
fn sniff(text: &str) -> Format {
    let mut rest = text.trim_start();
    // A leading `<?xml ...?>` (XHTML) and comments may precede the doctype.
    for _ in 0..8 {
        if let Some(after) = rest.strip_prefix("<?xml") {
            rest = after.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let head: String = rest
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let opens_html = ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|p| head.starts_with(p));
    if opens_html {
        Format::Html
    } else {
        Format::Text
    }
}

fn mime_hint(content_type: &str) -> Hint {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "text/html" | "application/xhtml+xml" => Hint::Is(Format::Html),
        "text/markdown" | "text/x-markdown" => Hint::Is(Format::Markdown),
        "application/pdf" | "application/x-pdf" => Hint::Is(Format::Pdf),
        ""
        | "text/plain"
        | "application/octet-stream"
        | "binary/octet-stream"
        | "application/xml"
        | "text/xml" => Hint::Generic,
        "application/json"
        | "application/x-ndjson"
        | "application/yaml"
        | "application/x-yaml"
        | "application/toml" => Hint::Is(Format::Text),
        "application/msword"
        | "application/rtf"
        | "text/rtf"
        | "application/epub+zip"
        | "application/zip"
        | "application/gzip"
        | "application/x-tar"
        | "application/x-7z-compressed"
        | "application/vnd.rar" => Hint::Unsupported(mime),
        m if m.starts_with("application/vnd.openxmlformats")
            || m.starts_with("application/vnd.oasis.opendocument")
            || m.starts_with("application/vnd.ms-")
            || m.starts_with("image/")
            || m.starts_with("audio/")
            || m.starts_with("video/")
            || m.starts_with("font/") =>
        {
            Hint::Unsupported(mime)
        }
        m if m.starts_with("text/") => Hint::Is(Format::Text),
        _ => Hint::Generic,
    }
}

fn ext_hint(ext: &str) -> Hint {
    match ext {
        "html" | "htm" | "xhtml" | "shtml" => Hint::Is(Format::Html),
        "md" | "markdown" | "mdown" | "mkd" | "mdx" => Hint::Is(Format::Markdown),
        "pdf" => Hint::Is(Format::Pdf),
        "txt" | "text" | "log" | "csv" | "tsv" | "rst" | "adoc" | "asciidoc" | "org" | "json"
        | "jsonl" | "ndjson" | "yaml" | "yml" | "toml" | "ini" | "cfg" | "conf" => {
            Hint::Is(Format::Text)
        }
        "doc" | "docx" | "odt" | "rtf" | "xls" | "xlsx" | "ods" | "ppt" | "pptx" | "odp"
        | "epub" | "pages" | "key" | "numbers" | "svg" | "png" | "jpg" | "jpeg" | "gif"
        | "webp" | "bmp" | "tif" | "tiff" | "ico" | "heic" | "zip" | "gz" | "tgz" | "tar"
        | "7z" | "rar" | "bz2" | "xz" | "zst" | "mp3" | "mp4" | "wav" | "ogg" | "flac" | "mov"
        | "avi" | "mkv" | "webm" | "exe" | "dll" | "so" | "dylib" | "wasm" => {
            Hint::Unsupported(format!(".{ext} files"))
        }
        _ => Hint::Generic,
    }
}

/// The lower-cased extension of a file name or of a URL's path (query and fragment ignored).
pub(super) fn extension(name: &str) -> Option<String> {
    let url_path;
    let path = match url::Url::parse(name) {
        Ok(url) if matches!(url.scheme(), "http" | "https" | "ftp" | "file") => {
            url_path = url.path().to_owned();
            url_path.as_str()
        }
        _ => name,
    };
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let (stem, ext) = file.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}
