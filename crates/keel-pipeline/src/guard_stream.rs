//! Streaming output rails: the answer's text is scanned over a sliding window as chunks
//! arrive, before each chunk is passed on, so a violation ends the stream with an error event
//! instead of letting it complete. Redacted input values are restored across chunk
//! boundaries on the way out.

use crate::guard::{blocked, check_text};
use futures::StreamExt;
use futures::stream::BoxStream;
use keel_guard::redact::{RedactionMap, StreamRestorer};
use keel_guard::{Action, GuardStage, Policy};
use keel_observe::drift::EmbedFn;
use keel_types::ApiError;
use keel_types::openai::ChatCompletionChunk;
use std::sync::Arc;

type Chunks = BoxStream<'static, Result<ChatCompletionChunk, ApiError>>;

/// Wraps a committed stream with the policy's stream rails and redaction restoring.
pub fn guard_stream(
    inner: Chunks,
    policy: Arc<Policy>,
    embed: Option<EmbedFn>,
    redactions: Option<Arc<RedactionMap>>,
) -> Chunks {
    let window = policy.stream_window;
    let needs_embedding = keel_guard::policy::embedding_need(&policy.stream).is_some();
    // Rule scanners are cheap: check after every chunk. A classifier rail needs an embedding
    // per check: check every half window.
    let step = if needs_embedding { window / 2 } else { 1 };
    async_stream::stream! {
        let mut inner = inner;
        let mut text = String::new();
        let mut unchecked = 0usize;
        let mut restorer = redactions.map(StreamRestorer::new);
        while let Some(item) = inner.next().await {
            let mut chunk = match item {
                Ok(c) => c,
                Err(e) => {
                    yield Err(e);
                    return;
                }
            };
            let added = delta_text(&chunk);
            let ends = chunk.choices.iter().any(|c| c.finish_reason.is_some());
            if let Some(t) = &added {
                text.push_str(t);
                unchecked += t.len();
            }
            if !policy.stream.is_empty() && unchecked > 0 && (unchecked >= step || ends) {
                unchecked = 0;
                let from = window_start(&text, window);
                let verdict =
                    check_text(&policy, embed.as_ref(), GuardStage::Stream, &text[from..], None).await;
                if verdict.action == Action::Block {
                    yield Err(blocked(&policy.name, "stream", &verdict));
                    return;
                }
                // Keep the buffer bounded: only the last window matters from here on.
                if text.len() > 4 * window {
                    let cut = window_start(&text, window);
                    text.drain(..cut);
                }
            }
            if let Some(r) = restorer.as_mut() {
                restore(&mut chunk, r, ends);
            }
            yield Ok(chunk);
        }
    }
    .boxed()
}

fn delta_text(chunk: &ChatCompletionChunk) -> Option<String> {
    let t: String = chunk
        .choices
        .iter()
        .filter(|c| c.index == 0)
        .filter_map(|c| c.delta.content.as_deref())
        .collect();
    (!t.is_empty()).then_some(t)
}

/// The byte where the last `window` bytes start, on a char boundary.
fn window_start(text: &str, window: usize) -> usize {
    let mut at = text.len().saturating_sub(window);
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// Restores placeholders in the first choice's delta; a placeholder split across chunks is
/// held back until complete; the last chunk flushes whatever is held.
fn restore(chunk: &mut ChatCompletionChunk, r: &mut StreamRestorer, ends: bool) {
    let Some(choice) = chunk.choices.iter_mut().find(|c| c.index == 0) else {
        return;
    };
    let mut out = choice
        .delta
        .content
        .as_deref()
        .map(|t| r.push(t))
        .unwrap_or_default();
    if ends {
        out.push_str(&r.finish());
    }
    if choice.delta.content.is_some() || !out.is_empty() {
        choice.delta.content = Some(out);
    }
}
