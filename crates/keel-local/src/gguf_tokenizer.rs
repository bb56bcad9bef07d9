//! Builds a byte-level BPE `tokenizers::Tokenizer` from a GGUF file's own vocabulary, merges
//! and token types (GGUF files carry no tokenizer.json), plus the byte table used to decode
//! generated tokens incrementally.
//!
//! The pipeline mirrors SmolLM2's tokenizer.json: no normalizer; pre-tokenizer = split every
//! digit on its own, then ByteLevel (GPT-2 regex, no prefix space); ByteLevel decoder.
//! Tokens of type 3 (control) become special tokens, so `<|im_start|>` in a rendered prompt
//! encodes as one id instead of being split into characters.

use crate::error::LocalError;
use candle_core::quantized::gguf_file;
use std::collections::HashMap;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

/// GGUF `tokenizer.ggml.token_type` value for control tokens.
const TOKEN_TYPE_CONTROL: u32 = 3;

fn meta<'a>(ct: &'a gguf_file::Content, key: &str) -> Result<&'a gguf_file::Value, LocalError> {
    ct.metadata
        .get(key)
        .ok_or_else(|| LocalError::Load(format!("GGUF metadata has no `{key}`")))
}

fn string_array(ct: &gguf_file::Content, key: &str) -> Result<Vec<String>, LocalError> {
    let values = meta(ct, key)?
        .to_vec()
        .map_err(|e| LocalError::Load(format!("`{key}`: {e}")))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| LocalError::Load(format!("`{key}`: {e}")))
        })
        .collect()
}

/// Reads a numeric GGUF value of any integer width as u32.
pub(crate) fn as_u32(v: &gguf_file::Value) -> Option<u32> {
    use gguf_file::Value as V;
    match v {
        V::U8(x) => Some(u32::from(*x)),
        V::U16(x) => Some(u32::from(*x)),
        V::U32(x) => Some(*x),
        V::U64(x) => u32::try_from(*x).ok(),
        V::I8(x) => u32::try_from(*x).ok(),
        V::I16(x) => u32::try_from(*x).ok(),
        V::I32(x) => u32::try_from(*x).ok(),
        V::I64(x) => u32::try_from(*x).ok(),
        _ => None,
    }
}

/// The tokenizer built from GGUF metadata, and what else generation needs from it.
pub struct GgufTokenizer {
    pub tokenizer: Tokenizer,
    /// Ids of control tokens (never emitted as text).
    pub control_ids: Vec<u32>,
    /// Bytes each token id decodes to; empty for control tokens.
    pub token_bytes: Vec<Vec<u8>>,
}

/// Builds the tokenizer. Only `tokenizer.ggml.model == "gpt2"` (byte-level BPE) is supported.
pub fn tokenizer_from_gguf(ct: &gguf_file::Content) -> Result<GgufTokenizer, LocalError> {
    let model = meta(ct, "tokenizer.ggml.model")?
        .to_string()
        .map_err(LocalError::load)?;
    if model != "gpt2" {
        return Err(LocalError::Load(format!(
            "unsupported GGUF tokenizer model `{model}` (only byte-level BPE `gpt2` is supported)"
        )));
    }
    let tokens = string_array(ct, "tokenizer.ggml.tokens")?;
    let merges = string_array(ct, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| match m.split_once(' ') {
            Some((a, b)) => Ok((a.to_owned(), b.to_owned())),
            None => Err(LocalError::Load(format!("malformed BPE merge `{m}`"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let token_types: Vec<u32> = match ct.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(LocalError::load)?
            .iter()
            .map(|t| as_u32(t).unwrap_or(1))
            .collect(),
        None => Vec::new(),
    };

    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| LocalError::Load(format!("building BPE from GGUF: {e}")))?;

    let mut tokenizer = Tokenizer::new(bpe);
    let pre: Vec<PreTokenizerWrapper> = vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ];
    tokenizer.with_pre_tokenizer(Some(Sequence::new(pre)));
    tokenizer.with_decoder(Some(ByteLevel::new(false, true, true)));

    let control_ids: Vec<u32> = token_types
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == TOKEN_TYPE_CONTROL)
        .map(|(i, _)| i as u32)
        .collect();
    let specials: Vec<AddedToken> = control_ids
        .iter()
        .filter_map(|&id| tokens.get(id as usize))
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(&specials);

    let unicode_to_byte = unicode_to_byte_table();
    let token_bytes = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if token_types.get(i) == Some(&TOKEN_TYPE_CONTROL) {
                Vec::new()
            } else {
                // Every char of a byte-level token maps to one byte; tolerate strays by
                // falling back to the char's own UTF-8.
                let mut out = Vec::with_capacity(t.len());
                for c in t.chars() {
                    match unicode_to_byte.get(&c) {
                        Some(b) => out.push(*b),
                        None => out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes()),
                    }
                }
                out
            }
        })
        .collect();

    Ok(GgufTokenizer {
        tokenizer,
        control_ids,
        token_bytes,
    })
}

/// GPT-2's reversible byte ↔ printable-char table, inverted: char → byte.
fn unicode_to_byte_table() -> HashMap<char, u8> {
    let mut table = HashMap::with_capacity(256);
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut next = 256u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\u{FFFD}');
            next += 1;
            c
        };
        table.insert(c, b);
    }
    table
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn byte_table_is_gpt2() {
        let t = unicode_to_byte_table();
        assert_eq!(t.len(), 256);
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
    }
}
