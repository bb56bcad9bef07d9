//! Incremental detokenization with stop strings: turns the bytes of generated tokens into
//! text deltas that are always valid UTF-8 and never contain (a prefix of) a stop string.
//!
//! Bytes that end mid-character wait for the rest of the character. Decoded text that could
//! still grow into a stop string is held back until it either completes the stop (generation
//! ends and the stop text is dropped) or diverges (the text is released). Text held back
//! when generation ends for another reason is released by [`TextStream::finish`].

/// What one pushed token produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Text safe to emit now (may be empty).
    pub text: String,
    /// A stop string was completed; `text` ends right before it.
    pub stopped: bool,
}

pub(crate) struct TextStream {
    /// Trailing bytes of an incomplete UTF-8 character.
    pending: Vec<u8>,
    /// Decoded text not yet emitted.
    held: String,
    stops: Vec<String>,
}

impl TextStream {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        Self {
            pending: Vec::new(),
            held: String::new(),
            stops,
        }
    }

    /// Adds one token's bytes.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Pushed {
        self.pending.extend_from_slice(bytes);
        self.decode_pending();

        if let Some(at) = self.earliest_stop() {
            let text = self.held[..at].to_owned();
            self.held.clear();
            return Pushed {
                text,
                stopped: true,
            };
        }
        let keep = self.stop_prefix_len();
        let text = self.held[..self.held.len() - keep].to_owned();
        self.held.drain(..self.held.len() - keep);
        Pushed {
            text,
            stopped: false,
        }
    }

    /// Releases everything still held (a stop prefix that never completed, and any
    /// incomplete character as U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        if !self.pending.is_empty() {
            self.held.push_str(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
        std::mem::take(&mut self.held)
    }

    /// Moves the longest decodable prefix of `pending` into `held`; invalid bytes (not just
    /// incomplete ones) become U+FFFD.
    fn decode_pending(&mut self) {
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    self.held.push_str(s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix up to `valid` is UTF-8 by the error's contract.
                    self.held
                        .push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        Some(bad) => {
                            self.held.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                        None => {
                            // Incomplete character at the end: wait for more bytes.
                            self.pending.drain(..valid);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn earliest_stop(&self) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    fn stop_prefix_len(&self) -> usize {
        let mut keep = 0;
        for stop in &self.stops {
            for (k, _) in stop.char_indices().skip(1) {
                if k > keep && self.held.ends_with(&stop[..k]) {
                    keep = k;
                }
            }
        }
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let mut s = TextStream::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let r = s.push(p);
            out.push_str(&r.text);
            if r.stopped {
                return (out, true);
            }
        }
        out.push_str(&s.finish());
        (out, false)
    }

    #[test]
    fn split_utf8_is_held_until_complete() {
        let euro = "€".as_bytes();
        let mut s = TextStream::new(vec![]);
        assert_eq!(s.push(&euro[..1]).text, "");
        assert_eq!(s.push(&euro[1..2]).text, "");
        assert_eq!(s.push(&euro[2..]).text, "€");
    }

    #[test]
    fn stop_across_tokens_is_not_emitted() {
        assert_eq!(
            run(&["END"], &[b"abc E", b"N", b"D more"]),
            ("abc ".to_string(), true)
        );
    }

    #[test]
    fn diverging_prefix_is_released() {
        let mut s = TextStream::new(vec!["END".into()]);
        assert_eq!(s.push(b"x EN").text, "x ");
        assert_eq!(s.push(b"O").text, "ENO");
    }

    #[test]
    fn held_prefix_is_flushed_at_finish() {
        assert_eq!(run(&["END"], &[b"abc EN"]), ("abc EN".to_string(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["zz", "b"], &[b"a", b"bzz"]), ("a".to_string(), true));
    }

    #[test]
    fn invalid_bytes_become_replacement_chars() {
        assert_eq!(run(&[], &[b"a\xffb"]), ("a\u{FFFD}b".to_string(), false));
        assert_eq!(run(&[], &[b"a\xe2\x82"]), ("a\u{FFFD}".to_string(), false));
    }

    #[test]
    fn multibyte_stop_prefix_is_held() {
        let mut s = TextStream::new(vec!["é!".into()]);
        assert_eq!(s.push("aé".as_bytes()).text, "a");
        assert!(s.push(b"!").stopped);
    }
}
