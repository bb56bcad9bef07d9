//! The sentence-embedding model: BERT from safetensors + config.json + tokenizer.json,
//! mean pooling over the attention mask, L2 normalisation (the all-MiniLM-L6-v2 recipe).
//!
//! Trap: the packaged tokenizer.json pads every input to 128 tokens and truncates at 128.
//! Both are switched off and replaced: truncation at the model's `max_seq_length` (256 for
//! MiniLM, read from sentence_bert_config.json) and padding per forward pass to the longest
//! text, with an attention mask so padding changes no vector.

use crate::error::LocalError;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::Path;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// Used when the directory has no sentence_bert_config.json.
const DEFAULT_MAX_SEQ_LEN: usize = 256;

pub(crate) struct EmbedModel {
    model: BertModel,
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
    pub(crate) fn load(dir: &Path) -> Result<Self, LocalError> {
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
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &config)
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

    /// One forward pass over `batch` (padded to the longest), returning one unit-length
    /// vector per input in order.
    pub(crate) fn embed(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, LocalError> {
        let n = batch.len();
        let len = batch.iter().map(|ids| ids.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for row in batch {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(0u32, len - row.len()));
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, len - row.len()));
        }
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let dev = &Device::Cpu;
            let ids = Tensor::from_vec(ids, (n, len), dev)?;
            let mask = Tensor::from_vec(mask, (n, len), dev)?;
            let type_ids = ids.zeros_like()?;
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (n, len, dim)
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?; // (n, len, 1)
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (n, dim)
            let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (n, 1)
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        };
        run().map_err(LocalError::inference)
    }
}
