//! `Embedder`: a cheap, cloneable handle to a sentence-embedding model served by one
//! dedicated thread that batches concurrent calls into shared forward passes.

mod amx;
mod attention;
mod bert;
mod bf16;
mod int8;
mod kernels;
mod matmul;
mod model;
mod pool;
mod simd;
#[cfg(test)]
mod tests;
mod worker;

use crate::error::LocalError;
use model::EmbedModel;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc as std_mpsc};
use tokio::sync::oneshot;
use tracing::info;
use worker::{Job, Msg, Shared, Worker};

pub use worker::EmbedStats;

/// Most texts one `embed` call may carry (OpenAI's limit for the embeddings API).
pub const MAX_INPUTS: usize = 2048;

/// Capacity limits of an [`Embedder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderOptions {
    /// Most texts embedded together; concurrent calls are merged up to this.
    pub max_batch: usize,
    /// `embed` calls that may wait; beyond this `embed` fails with `QueueFull`.
    pub queue_capacity: usize,
    /// Arithmetic of the forward pass.
    pub precision: EmbedPrecision,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self {
            max_batch: 32,
            queue_capacity: 256,
            precision: EmbedPrecision::Full,
        }
    }
}

/// Arithmetic of an embedder's forward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EmbedPrecision {
    /// f32, or what matches it to ~2⁻¹⁶ per product (AMX split bf16): vectors agree with
    /// the reference PyTorch model to cosine 1 − 1e-5. For retrieval, whose stored vectors
    /// must stay comparable.
    #[default]
    Full,
    /// int8 weights (per output) and inputs (per token) in the dense layers, and int8
    /// attention scores, on AVX-512 VNNI (the attention-weighted sum of the values in bf16
    /// where the CPU has AVX-512 BF16, else f32): about 2.8x faster than `Full` for a 1 KB
    /// text on 2 cores, vectors within cosine 0.988–0.998 of the reference
    /// (docs/BENCHMARKS.md). For classifiers that read
    /// the vector, such as the injection guard. Falls back to `Full` (with a warning) on
    /// CPUs without AVX-512 VNNI.
    Int8,
}

/// Embeddings of one `embed` call, index-aligned with its input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedOutput {
    /// Unit-length vectors of [`Embedder::dimensions`] floats.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the model saw per text, including `[CLS]` and `[SEP]` (after truncation).
    pub token_counts: Vec<u32>,
    /// Whether the text was cut to the model's maximum sequence length.
    pub truncated: Vec<bool>,
}

/// Handle to a loaded embedding model. Clones share the model and its thread, which exits
/// when every handle is dropped or after [`Embedder::shutdown`].
#[derive(Clone)]
pub struct Embedder {
    inner: Arc<Inner>,
}

struct Inner {
    submit: std_mpsc::SyncSender<Msg>,
    shared: Arc<Shared>,
    dimensions: usize,
    max_seq_len: usize,
    queue_capacity: usize,
    precision: EmbedPrecision,
}

impl Embedder {
    /// Loads a BERT sentence-embedding model from a directory holding `model.safetensors`,
    /// `config.json` and `tokenizer.json` (and optionally `sentence_bert_config.json`), and
    /// starts its thread. Blocking: call it from `spawn_blocking` or at startup.
    pub fn load(dir: &Path, opts: EmbedderOptions) -> Result<Embedder, LocalError> {
        let started = std::time::Instant::now();
        let backend = match opts.precision {
            EmbedPrecision::Int8 if int8::available() => matmul::Backend::Int8,
            EmbedPrecision::Int8 => {
                tracing::warn!("int8 embeddings need AVX-512 VNNI; using full precision");
                matmul::Backend::best()
            }
            EmbedPrecision::Full => matmul::Backend::best(),
        };
        let precision = match backend {
            matmul::Backend::Int8 => EmbedPrecision::Int8,
            _ => EmbedPrecision::Full,
        };
        let model = EmbedModel::load_with(dir, backend)?;
        let (dimensions, max_seq_len) = (model.dimensions, model.max_seq_len);
        let queue_capacity = opts.queue_capacity.max(1);
        let (submit, rx) = std_mpsc::sync_channel(queue_capacity);
        let shared = Arc::new(Shared::default());
        let worker = Worker {
            model,
            max_batch: opts.max_batch.max(1),
            rx,
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name("keel-embed".into())
            .spawn(move || worker.run())
            .map_err(|e| LocalError::Load(format!("cannot start the embedding thread: {e}")))?;
        info!(
            model = %dir.display(),
            dimensions,
            max_seq_len,
            max_batch = opts.max_batch,
            ?precision,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedding model loaded"
        );
        Ok(Embedder {
            inner: Arc::new(Inner {
                submit,
                shared,
                dimensions,
                max_seq_len,
                queue_capacity,
                precision,
            }),
        })
    }

    /// Length of every vector.
    pub fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    /// The precision the model runs at (`Int8` only where the CPU has the kernel).
    pub fn precision(&self) -> EmbedPrecision {
        self.inner.precision
    }

    /// Tokens per text (including `[CLS]`/`[SEP]`) beyond which input is truncated.
    pub fn max_seq_len(&self) -> usize {
        self.inner.max_seq_len
    }

    /// Counters since load.
    pub fn stats(&self) -> EmbedStats {
        self.inner.shared.snapshot()
    }

    /// Embeds `texts` (empty strings allowed, the list itself must not be empty). Fails at
    /// once with `QueueFull` when too many calls are waiting.
    ///
    /// Cancel safety: dropping the future abandons the result; if the batch has not started
    /// yet the texts are skipped, otherwise the work is done and discarded.
    pub async fn embed(&self, texts: Vec<String>) -> Result<EmbedOutput, LocalError> {
        if texts.is_empty() {
            return Err(LocalError::InvalidRequest("input must not be empty".into()));
        }
        if texts.len() > MAX_INPUTS {
            return Err(LocalError::InvalidRequest(format!(
                "at most {MAX_INPUTS} inputs per request, got {}",
                texts.len()
            )));
        }
        let inner = &self.inner;
        if inner.shared.stopping.load(Ordering::Acquire) {
            return Err(LocalError::EngineStopped);
        }
        let (reply, result) = oneshot::channel();
        match inner.submit.try_send(Msg::Job(Job { texts, reply })) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Full(_)) => {
                inner.shared.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(LocalError::QueueFull {
                    capacity: inner.queue_capacity,
                });
            }
            Err(std_mpsc::TrySendError::Disconnected(_)) => return Err(LocalError::EngineStopped),
        }
        result.await.map_err(|_| LocalError::EngineStopped)?
    }

    /// Stops the thread: waiting calls fail with `EngineStopped`, as do later ones.
    /// Returns without waiting.
    pub fn shutdown(&self) {
        self.inner.shared.stopping.store(true, Ordering::Release);
        let _ = self.inner.submit.try_send(Msg::Wake);
    }
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dimensions", &self.inner.dimensions)
            .field("stats", &self.stats())
            .finish()
    }
}
