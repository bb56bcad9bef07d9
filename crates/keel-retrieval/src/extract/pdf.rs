//! PDF text through pdf-extract, on a watchdog thread.
//!
//! pdf-extract (and lopdf under it) panics on some malformed files and can spin on others,
//! so the parser runs on its own thread: every page inside `catch_unwind`, the caller waiting
//! at most the timeout. A parser still running at the deadline is abandoned (a thread cannot
//! be killed); while [`MAX_ABANDONED`] of them are still spinning, new PDFs are refused with
//! `Timeout` straight away rather than piling up more.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use pdf_extract::{Document, PlainTextOutput, output_doc_page};

use super::ExtractError;
use super::text::{one_line, tidy};

/// Parser threads abandoned at their deadline and still running.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);
const MAX_ABANDONED: usize = 4;

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const GAVE_UP: u8 = 2;

type Parsed = Result<(String, Option<String>), ExtractError>;

pub(super) fn extract(bytes: &[u8], timeout: Duration) -> Parsed {
    if ABANDONED.load(Ordering::Acquire) >= MAX_ABANDONED {
        tracing::warn!("refusing a PDF: {MAX_ABANDONED} earlier PDF parsers are still stuck");
        return Err(ExtractError::Timeout);
    }
    let owned = bytes.to_vec();
    let state = Arc::new(AtomicU8::new(RUNNING));
    let thread_state = Arc::clone(&state);
    let (tx, rx) = mpsc::sync_channel::<Parsed>(1);
    std::thread::Builder::new()
        .name("keel-pdf-extract".to_owned())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| parse(&owned)))
                .unwrap_or_else(|p| Err(ExtractError::Corrupt(panic_message(p.as_ref()))));
            let finished = thread_state
                .compare_exchange(RUNNING, FINISHED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if finished {
                // The receiver is waiting (or has just timed out); a failed send is fine.
                let _ = tx.send(result);
            } else {
                ABANDONED.fetch_sub(1, Ordering::AcqRel);
            }
        })
        .map_err(|e| ExtractError::Corrupt(format!("pdf: could not start the parser: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => {
            ABANDONED.fetch_add(1, Ordering::AcqRel);
            let gave_up = state
                .compare_exchange(RUNNING, GAVE_UP, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if gave_up {
                tracing::warn!(
                    ?timeout,
                    "PDF extraction timed out; its thread is abandoned"
                );
                return Err(ExtractError::Timeout);
            }
            // Finished just at the deadline: the result is on its way.
            ABANDONED.fetch_sub(1, Ordering::AcqRel);
            rx.recv()
                .unwrap_or_else(|_| Err(ExtractError::Corrupt("pdf: parser vanished".into())))
        }
        Err(RecvTimeoutError::Disconnected) => Err(ExtractError::Corrupt(
            "pdf: the parser stopped without a result".into(),
        )),
    }
}

/// Loads the document and extracts every page; a page that fails or panics is skipped, a
/// document where every page fails is `Corrupt`.
fn parse(bytes: &[u8]) -> Parsed {
    let mut doc =
        Document::load_mem(bytes).map_err(|e| ExtractError::Corrupt(format!("pdf: {e}")))?;
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(ExtractError::Unsupported("password-protected pdf".into()));
    }
    let title = info_title(&doc);
    let page_numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    let mut pages = Vec::with_capacity(page_numbers.len());
    let mut last_error = None;
    for number in page_numbers {
        let mut text = String::new();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut output = PlainTextOutput::new(&mut text);
            output_doc_page(&doc, &mut output, number)
        }));
        match outcome {
            Ok(Ok(())) => pages.push(tidy(&text)),
            Ok(Err(e)) => last_error = Some(format!("pdf page {number}: {e}")),
            Err(p) => {
                last_error = Some(format!("pdf page {number}: {}", panic_message(p.as_ref())))
            }
        }
    }
    if pages.is_empty() {
        if let Some(error) = last_error {
            return Err(ExtractError::Corrupt(error));
        }
    } else if let Some(error) = last_error {
        tracing::debug!(%error, "skipped an unreadable PDF page");
    }
    let text = pages
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    Ok((text, title))
}

/// `/Title` of the document information dictionary.
fn info_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let (_, info) = doc.dereference(info).ok()?;
    let title = info.as_dict().ok()?.get(b"Title").ok()?;
    let (_, title) = doc.dereference(title).ok()?;
    let title = one_line(&decode_text_string(title.as_str().ok()?));
    Some(title).filter(|t| !t.is_empty())
}

/// A PDF text string: UTF-16BE or UTF-8 with a byte-order mark, else PDFDocEncoding (read as
/// Latin-1, which it matches for printable characters; control characters dropped).
fn decode_text_string(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    bytes
        .iter()
        .map(|&b| char::from(b))
        .filter(|c| !c.is_control() || c.is_whitespace())
        .collect()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    format!("pdf parser panicked: {detail}")
}
