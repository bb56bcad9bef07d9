//! The file checksum: a streaming 64-bit hash over 8-byte words (xor, multiply by an odd
//! constant, rotate). Each step is a bijection of the state for a fixed word and of the word
//! for a fixed state, so changing any single word always changes the digest; the length and a
//! SplitMix64 finaliser close it. Not cryptographic: it guards against truncation, torn writes
//! and bit rot, not against tampering.

use super::rng::mix;

const K: u64 = 0x9E37_79B9_7F4A_7C15;

pub(crate) struct Checksum {
    state: u64,
    pending: [u8; 8],
    pending_len: usize,
    total: u64,
}

impl Checksum {
    pub(crate) fn new() -> Self {
        Self {
            state: 0x243F_6A88_85A3_08D3,
            pending: [0; 8],
            pending_len: 0,
            total: 0,
        }
    }

    #[inline]
    fn word(&mut self, w: u64) {
        self.state = (self.state ^ w).wrapping_mul(K).rotate_left(29);
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        self.total = self.total.wrapping_add(bytes.len() as u64);
        if self.pending_len > 0 {
            let fill = (8 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + fill].copy_from_slice(&bytes[..fill]);
            self.pending_len += fill;
            bytes = &bytes[fill..];
            if self.pending_len < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.pending_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for c in &mut words {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.word(u64::from_le_bytes(a));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    pub(crate) fn finish(&self) -> u64 {
        let mut state = self.state;
        if self.pending_len > 0 {
            let mut last = [0u8; 8];
            last[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            state = (state ^ u64::from_le_bytes(last))
                .wrapping_mul(K)
                .rotate_left(29);
        }
        mix(state ^ mix(self.total))
    }
}

#[cfg(test)]
mod tests {
    use super::Checksum;

    fn digest(parts: &[&[u8]]) -> u64 {
        let mut c = Checksum::new();
        for p in parts {
            c.update(p);
        }
        c.finish()
    }

    #[test]
    fn hnsw_checksum_is_split_independent_and_sees_every_bit_and_length() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let whole = digest(&[&data]);
        for cut in [0, 1, 3, 7, 8, 9, 500, 999, 1000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(digest(&[a, b]), whole, "cut at {cut}");
        }
        for byte in [0, 5, 8, 511, 999] {
            for bit in 0..8 {
                let mut flipped = data.clone();
                flipped[byte] ^= 1 << bit;
                assert_ne!(digest(&[&flipped]), whole, "byte {byte} bit {bit}");
            }
        }
        assert_ne!(digest(&[&data[..999]]), whole);
        // Trailing zero bytes are padding-ambiguous within a word: the length tells them apart.
        assert_ne!(digest(&[&[1, 0]]), digest(&[&[1]]));
    }
}
