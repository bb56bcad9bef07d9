//! Restoring placeholders in a streamed answer, where a placeholder may be split across
//! chunks ("[EMA" + "IL_1]").

use std::sync::Arc;

use super::RedactionMap;

/// Restores placeholders across streamed chunks: a placeholder split over chunk boundaries
/// (e.g. "[EMA" + "IL_1]") is held back until complete, then restored; nothing else is held.
#[derive(Debug, Clone)]
pub struct StreamRestorer {
    map: Arc<RedactionMap>,
    held: String,
}

impl StreamRestorer {
    /// A restorer for one streamed answer, with the request's map.
    pub fn new(map: Arc<RedactionMap>) -> Self {
        Self {
            map,
            held: String::new(),
        }
    }

    /// Takes the next chunk; returns what can be emitted now, placeholders restored.
    pub fn push(&mut self, chunk: &str) -> String {
        if self.map.is_empty() {
            return chunk.to_string();
        }
        self.held.push_str(chunk);
        // Only the last '[' can open an unfinished placeholder: any earlier one is followed
        // by ']' or '[', which a placeholder prefix cannot contain.
        let cut = match self.held.rfind('[') {
            Some(i) if self.map.is_placeholder_prefix(&self.held[i..]) => i,
            _ => self.held.len(),
        };
        let out = self.map.restore(&self.held[..cut]);
        self.held.drain(..cut);
        out
    }

    /// Ends the stream: whatever is held (an unfinished placeholder) is emitted as it is.
    pub fn finish(&mut self) -> String {
        let out = self.map.restore(&self.held);
        self.held.clear();
        out
    }
}
