//! The GGUF-built tokenizer against known SmolLM2 ids.

use candle_core::quantized::gguf_file;
use keel_local::gguf_tokenizer::tokenizer_from_gguf;

fn tokenizer() -> keel_local::gguf_tokenizer::GgufTokenizer {
    let mut f = std::fs::File::open(&crate::models().chat_gguf).unwrap();
    let ct = gguf_file::Content::read(&mut f).unwrap();
    tokenizer_from_gguf(&ct).unwrap()
}

#[test]
fn control_tokens_are_single_ids_and_text_round_trips() {
    let t = tokenizer();
    let text = "<|im_start|>user\nHello world 123<|im_end|>";
    let enc = t.tokenizer.encode(text, false).unwrap();
    let ids = enc.get_ids();
    let toks = enc.get_tokens();
    assert_eq!(ids.first(), Some(&1), "{toks:?}");
    assert_eq!(ids.last(), Some(&2), "{toks:?}");
    assert_eq!(
        toks[1..toks.len() - 1],
        ["user", "Ċ", "Hello", "Ġworld", "Ġ", "1", "2", "3"],
        "{toks:?}"
    );
    // Decoding keeps control tokens unless asked to skip them.
    assert_eq!(t.tokenizer.decode(ids, false).unwrap(), text);
    assert_eq!(
        t.tokenizer.decode(ids, true).unwrap(),
        "user\nHello world 123"
    );
    assert!(t.control_ids.contains(&0) && t.control_ids.contains(&1) && t.control_ids.contains(&2));
}

#[test]
fn digits_are_single_tokens() {
    let t = tokenizer();
    let enc = t.tokenizer.encode("year 2024: 3.14159", false).unwrap();
    for tok in enc.get_tokens() {
        if tok.chars().any(|c| c.is_ascii_digit()) {
            assert_eq!(
                tok.trim_start_matches('Ġ').chars().count(),
                1,
                "{tok:?} in {:?}",
                enc.get_tokens()
            );
        }
    }
}

#[test]
fn unicode_round_trips_through_bytes() {
    let t = tokenizer();
    let text = "Grüße, 世界! 🚀 naïve café";
    let enc = t.tokenizer.encode(text, false).unwrap();
    assert_eq!(t.tokenizer.decode(enc.get_ids(), true).unwrap(), text);
    // The byte table used for streaming agrees with the tokenizer's decoder.
    let bytes: Vec<u8> = enc
        .get_ids()
        .iter()
        .flat_map(|&id| t.token_bytes[id as usize].clone())
        .collect();
    assert_eq!(String::from_utf8(bytes).unwrap(), text);
}
