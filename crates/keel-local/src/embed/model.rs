//! The sentence-embedding model: BERT from safetensors + config.json + tokenizer.json,
//! mean pooling over each text's tokens, L2 normalisation (the all-MiniLM-L6-v2 recipe).
//! The forward pass is keel's own ([`super::bert`]).
//!
//! Trap: the packaged tokenizer.json pads every input to 128 tokens and truncates at 128.
//! Both are switched off and replaced: truncation at the model's `max_seq_length` (256 for
//! MiniLM, read from sentence_bert_config.json) and no padding at all (a forward pass
//! concatenates its texts' tokens; attention stays within each text).

use super::bert::Bert;
use super::matmul::Backend;
use crate::error::LocalError;
use candle_core::Device;
use candle_transformers::models::bert::Config;
use std::path::Path;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// Used when the directory has no sentence_bert_config.json.
const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// Most threads one forward pass uses unless `KEEL_EMBED_THREADS` says otherwise.
const MAX_DEFAULT_THREADS: usize = 4;

pub(crate) struct EmbedModel {
    model: Bert,
    tokenizer: Tokenizer,
    pub dimensions: usize,
    pub max_seq_len: usize,
}

/// One text, tokenized.
pub(crate) struct Tokenized {
    pub ids: Vec<u32>,
    pub truncated: bool,
}

impl EmbedModel {
    /// Loads the model from `dir` with the dense layers packed for `backend`.
    pub(crate) fn load_with(dir: &Path, backend: Backend) -> Result<Self, LocalError> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| {
                LocalError::Load(format!("cannot read {}: {e}", dir.join(name).display()))
            })
        };
        let raw: serde_json::Value = serde_json::from_str(&read("config.json")?)
            .map_err(|e| LocalError::Load(format!("config.json: {e}")))?;
        let max_positions = raw
            .get("max_position_embeddings")
            .and_then(|v| v.as_u64())
            .map_or(512, |n| n as usize);
        let config: Config = serde_json::from_value(raw)
            .map_err(|e| LocalError::Load(format!("config.json: {e}")))?;
        let max_seq_len = read("sentence_bert_config.json")
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v.get("max_seq_length")?.as_u64())
            .map_or(DEFAULT_MAX_SEQ_LEN, |n| n as usize)
            .min(max_positions);

        let weights_path = dir.join("model.safetensors");
        // Read into memory rather than mmap: keeps the crate free of `unsafe`, and the file
        // is ~90 MB.
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu)
            .map_err(|e| LocalError::Load(format!("{}: {e}", weights_path.display())))?;
        let model = Bert::load(tensors, &config, threads(), backend)
            .map_err(|e| LocalError::Load(format!("BERT weights: {e}")))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| LocalError::Load(format!("{}: {e}", tokenizer_path.display())))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_len,
                ..Default::default()
            }))
            .map_err(|e| LocalError::Load(format!("tokenizer truncation: {e}")))?;

        Ok(Self {
            model,
            tokenizer,
            dimensions: config.hidden_size,
            max_seq_len,
        })
    }

    /// Tokenizes texts (with `[CLS]`/`[SEP]`, truncated to `max_seq_len`).
    pub(crate) fn tokenize(&self, texts: &[&str]) -> Result<Vec<Tokenized>, LocalError> {
        let encodings: Vec<Encoding> = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(LocalError::inference)?;
        Ok(encodings
            .into_iter()
            .map(|e| Tokenized {
                truncated: !e.get_overflowing().is_empty(),
                ids: e.get_ids().to_vec(),
            })
            .collect())
    }

    /// One forward pass over `batch` (no padding), returning one unit-length vector per
    /// input in order.
    pub(crate) fn embed(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, LocalError> {
        self.model.embed(batch).map_err(LocalError::Inference)
    }
}

/// Threads per forward pass: `KEEL_EMBED_THREADS` if set to a positive number, else the available
/// cores up to [`MAX_DEFAULT_THREADS`].
fn threads() -> usize {
    std::env::var("KEEL_EMBED_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_DEFAULT_THREADS)
        })
}
