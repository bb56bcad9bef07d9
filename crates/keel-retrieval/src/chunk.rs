//! Chunking: a document's text → token-sized pieces with overlap, split at the largest
//! structural boundary that fits (Markdown headings, code blocks, paragraphs, sentences, words;
//! `text-splitter` does the splitting), each with its byte offsets in the document and the path
//! of Markdown headings above it.

use crate::extract::Format;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};

/// Per-collection chunking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChunkSettings {
    /// Largest chunk, in tokens of the collection's tokenizer.
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks when a section has to be cut.
    pub overlap_tokens: usize,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        // MiniLM reads at most 256 word pieces; 200 leaves room for the heading prefix.
        Self {
            max_tokens: 200,
            overlap_tokens: 32,
        }
    }
}

impl ChunkSettings {
    /// The first problem with these settings, naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.max_tokens < 16 || self.max_tokens > 8192 {
            return Err(format!(
                "chunking.max_tokens must be between 16 and 8192, got {}",
                self.max_tokens
            ));
        }
        if self.overlap_tokens >= self.max_tokens / 2 {
            return Err(format!(
                "chunking.overlap_tokens must be less than half of max_tokens ({}), got {}",
                self.max_tokens, self.overlap_tokens
            ));
        }
        Ok(())
    }
}

/// How chunk sizes are counted: the embedding model's own tokenizer when keel has it (loaded
/// from its `tokenizer.json` on first use, once the model is fetched), else an estimate of
/// four bytes a token (the collection's stats say which).
#[derive(Clone)]
pub enum TokenCounter {
    Tokenizer(Arc<tokenizers::Tokenizer>),
    File(Arc<LazyTokenizer>),
    Estimate,
}

/// A `tokenizer.json` loaded the first time it exists and parses.
pub struct LazyTokenizer {
    path: std::path::PathBuf,
    cell: std::sync::OnceLock<Arc<tokenizers::Tokenizer>>,
}

/// A tokenizer that counts every token: padding and truncation off (the MiniLM file pads to
/// 128 and truncates, which would make every text look the same size).
pub fn counting(mut t: tokenizers::Tokenizer) -> tokenizers::Tokenizer {
    t.with_padding(None);
    let _ = t.with_truncation(None);
    t
}

impl LazyTokenizer {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            cell: std::sync::OnceLock::new(),
        }
    }

    fn get(&self) -> Option<&Arc<tokenizers::Tokenizer>> {
        if let Some(t) = self.cell.get() {
            return Some(t);
        }
        let t = tokenizers::Tokenizer::from_file(&self.path).ok()?;
        Some(self.cell.get_or_init(|| Arc::new(counting(t))))
    }
}

fn estimate(text: &str) -> usize {
    text.len().div_ceil(4)
}

fn tokens(t: &tokenizers::Tokenizer, text: &str) -> usize {
    t.encode_fast(text, false)
        .map(|e| e.len())
        .unwrap_or_else(|_| estimate(text))
}

impl TokenCounter {
    pub fn count(&self, text: &str) -> usize {
        match self {
            Self::Tokenizer(t) => tokens(t, text),
            Self::File(l) => l.get().map_or_else(|| estimate(text), |t| tokens(t, text)),
            Self::Estimate => estimate(text),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Tokenizer(_) => "tokenizer",
            Self::File(l) if l.get().is_some() => "tokenizer",
            Self::File(_) | Self::Estimate => "bytes/4",
        }
    }
}

impl ChunkSizer for TokenCounter {
    fn size(&self, chunk: &str) -> usize {
        self.count(chunk)
    }
}

/// One piece of a document, before embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    /// Byte offsets of `text` in the document's extracted text.
    pub start: usize,
    pub end: usize,
    /// Markdown headings above the piece, outermost first.
    pub headings: Vec<String>,
}

/// Splits `text` into pieces per `settings`. Markdown (and HTML, extracted as Markdown) splits
/// at headings and code blocks first; plain text and PDF text at paragraphs.
pub fn split(
    text: &str,
    format: Format,
    settings: &ChunkSettings,
    counter: &TokenCounter,
) -> Result<Vec<Piece>, String> {
    settings.check()?;
    let config = ChunkConfig::new(settings.max_tokens)
        .with_overlap(settings.overlap_tokens)
        .map_err(|e| format!("chunking: {e}"))?
        .with_sizer(counter.clone());
    let spans: Vec<(usize, &str)> = match format {
        Format::Markdown | Format::Html => {
            MarkdownSplitter::new(config).chunk_indices(text).collect()
        }
        Format::Text | Format::Pdf => TextSplitter::new(config).chunk_indices(text).collect(),
    };
    let headings = match format {
        Format::Markdown | Format::Html => heading_marks(text),
        Format::Text | Format::Pdf => Vec::new(),
    };
    Ok(spans
        .into_iter()
        .filter(|(_, s)| !s.trim().is_empty())
        .map(|(start, s)| Piece {
            text: s.to_owned(),
            start,
            end: start + s.len(),
            headings: path_at(&headings, start, s),
        })
        .collect())
}

/// A Markdown ATX heading: where its line starts, its level, its text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Heading {
    at: usize,
    level: usize,
    text: String,
}

/// The ATX headings of `text`, outside fenced code blocks.
fn heading_marks(text: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (Some(open), Some(m)) if open == m => fence = None,
            (None, Some(m)) => fence = Some(m),
            (None, None) => {
                if let Some(h) = parse_heading(trimmed) {
                    out.push(Heading {
                        at,
                        level: h.0,
                        text: h.1,
                    });
                }
            }
            _ => {}
        }
        at += line.len();
    }
    out
}

fn parse_heading(line: &str) -> Option<(usize, String)> {
    let level = line.bytes().take_while(|b| *b == b'#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &line[level..];
    if !(rest.starts_with(' ') || rest.trim().is_empty()) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim().to_owned();
    (!text.is_empty()).then_some((level, text))
}

/// The heading path in force at `start`: every heading before it, each replacing those of its
/// level and deeper; a piece that begins with headings includes them.
fn path_at(headings: &[Heading], start: usize, piece: &str) -> Vec<String> {
    let leading = piece.len() - piece.trim_start().len();
    let first_text = start + leading;
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for h in headings.iter().take_while(|h| h.at <= first_text) {
        stack.retain(|(level, _)| *level < h.level);
        stack.push((h.level, &h.text));
    }
    stack.into_iter().map(|(_, t)| t.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(text: &str, max: usize, overlap: usize) -> Vec<Piece> {
        let s = ChunkSettings {
            max_tokens: max,
            overlap_tokens: overlap,
        };
        split(text, Format::Markdown, &s, &TokenCounter::Estimate).unwrap()
    }

    #[test]
    fn offsets_point_at_the_piece_in_the_source() {
        let text = "# Intro\n\nFirst paragraph about cats.\n\n## Details\n\nSecond paragraph about dogs and more dogs.\n\n# Other\n\nThird.";
        let pieces = md(text, 16, 2);
        assert!(pieces.len() >= 3, "{pieces:?}");
        for p in &pieces {
            assert_eq!(&text[p.start..p.end], p.text);
        }
    }

    #[test]
    fn heading_paths_follow_the_markdown_structure() {
        let text = "# Intro\n\nFirst paragraph about cats.\n\n## Details\n\nSecond paragraph about dogs and more dogs.\n\n# Other\n\nThird paragraph here.";
        let pieces = md(text, 16, 0);
        let dogs = pieces.iter().find(|p| p.text.contains("dogs")).unwrap();
        assert_eq!(dogs.headings, vec!["Intro", "Details"]);
        let third = pieces.iter().find(|p| p.text.contains("Third")).unwrap();
        assert_eq!(third.headings, vec!["Other"]);
    }

    #[test]
    fn a_hash_line_inside_a_code_block_is_not_a_heading() {
        let text = "# Real\n\n```sh\n# not a heading\necho hi\n```\n\nafter";
        let h = heading_marks(text);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].text, "Real");
    }

    #[test]
    fn no_piece_exceeds_the_token_limit_and_overlap_repeats_text() {
        let sentence = "The quick brown fox jumps over the lazy dog. ";
        let text = sentence.repeat(60);
        let s = ChunkSettings {
            max_tokens: 60,
            overlap_tokens: 20,
        };
        let pieces = split(&text, Format::Text, &s, &TokenCounter::Estimate).unwrap();
        assert!(pieces.len() > 5);
        for p in &pieces {
            assert!(
                TokenCounter::Estimate.count(&p.text) <= 60,
                "{}",
                p.text.len()
            );
        }
        // With an overlap of more than a sentence, consecutive pieces share a sentence.
        assert!(
            pieces.windows(2).any(|w| w[1].start < w[0].end),
            "{:?}",
            pieces.iter().map(|p| (p.start, p.end)).collect::<Vec<_>>()
        );
        // Together the pieces cover the whole text.
        assert_eq!(pieces[0].start, 0);
        assert_eq!(pieces.last().unwrap().end, text.trim_end().len());
    }

    #[test]
    fn bad_settings_name_the_field() {
        let s = ChunkSettings {
            max_tokens: 100,
            overlap_tokens: 60,
        };
        let e = split("x", Format::Text, &s, &TokenCounter::Estimate).unwrap_err();
        assert!(e.contains("chunking.overlap_tokens"), "{e}");
    }

    #[test]
    fn a_code_block_stays_whole_when_it_fits() {
        let code = "```rust\nfn main() {\n    println!(\"hi\");\n}\n```";
        let text = format!("# Code\n\nSome words before the block.\n\n{code}\n\nSome words after.");
        let pieces = md(&text, 30, 0);
        assert!(pieces.iter().any(|p| p.text.contains(code)), "{pieces:?}");
    }
}
