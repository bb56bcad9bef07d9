//! `ChatEngine`: a cheap, cloneable handle to a GGUF chat model served by one dedicated
//! inference thread (`worker.rs` explains how sequences are scheduled).
//!
//! The async side only renders, tokenizes and validates (so context-length and queue-full
//! errors come back synchronously from [`ChatEngine::generate`]); every forward pass runs on
//! the `keel-chat` thread, never on the async runtime.

mod sampling;
mod stream;
mod template;
mod worker;

use crate::error::LocalError;
use crate::gguf_tokenizer::{as_u32, tokenizer_from_gguf};
use candle_core::Device;
use candle_core::quantized::gguf_file;
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use keel_types::openai::{ChatMessage, FinishReason};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc as std_mpsc};
use template::ChatTemplate;
use tokenizers::Tokenizer;
use tokio::sync::mpsc;
use tracing::info;
use worker::{Job, Msg, Shared, Worker};

pub use worker::ChatStats;

/// Capacity limits of a [`ChatEngine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatEngineOptions {
    /// Sequences decoded concurrently (each holds its own KV cache).
    pub max_active: usize,
    /// Requests that may wait for a free slot; beyond this `generate` fails with `QueueFull`.
    pub queue_capacity: usize,
}

impl Default for ChatEngineOptions {
    fn default() -> Self {
        Self {
            max_active: 4,
            queue_capacity: 32,
        }
    }
}

/// One generation request, already in OpenAI terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateRequest {
    pub messages: Vec<ChatMessage>,
    /// Limit on generated tokens; `None` = until the context window is full.
    /// Values beyond the room left in the context window are clamped to it.
    pub max_tokens: Option<u32>,
    /// 0..=2, default 1.0; 0 = greedy.
    pub temperature: Option<f32>,
    /// 0..=1, default 1.0.
    pub top_p: Option<f32>,
    /// Same seed + same prompt + same parameters = same output.
    pub seed: Option<u64>,
    /// Generation ends before any of these strings; the stop text is not emitted.
    pub stop: Vec<String>,
}

/// What a generation stream yields: `Started`, zero or more `Delta`s, then exactly one of
/// `Done` or `Failed`. If the receiver is dropped the sequence is cancelled at the next token.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerateEvent {
    /// The request left the queue and prefill began.
    Started {
        prompt_tokens: u32,
    },
    /// Newly generated text: valid UTF-8, free of stop strings.
    Delta(String),
    /// `finish` is `Stop` (end-of-sequence token or stop string) or `Length` (max_tokens or
    /// the context window). `completion_tokens` counts sampled tokens, including a token that
    /// completed a stop string but excluding the end-of-sequence token itself.
    Done {
        finish: FinishReason,
        prompt_tokens: u32,
        completion_tokens: u32,
    },
    Failed(LocalError),
}

/// Handle to a loaded chat model. Clones share the model and its inference thread; the
/// thread exits once every handle is dropped (after finishing in-flight sequences) or at
/// once after [`ChatEngine::shutdown`].
#[derive(Clone)]
pub struct ChatEngine {
    inner: Arc<Inner>,
}

struct Inner {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    context_window: usize,
    queue_capacity: usize,
    submit: std_mpsc::SyncSender<Msg>,
    shared: Arc<Shared>,
}

impl ChatEngine {
    /// Loads a GGUF llama-architecture model on the CPU and starts its inference thread.
    /// Blocking (reads the whole file): call it from `spawn_blocking` or at startup.
    pub fn load(gguf_path: &Path, opts: ChatEngineOptions) -> Result<ChatEngine, LocalError> {
        let started = std::time::Instant::now();
        let mut file = std::fs::File::open(gguf_path)
            .map_err(|e| LocalError::Load(format!("cannot open {}: {e}", gguf_path.display())))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| {
            LocalError::Load(format!("{} is not a GGUF file: {e}", gguf_path.display()))
        })?;
        let tok = tokenizer_from_gguf(&content)?;

        let md = &content.metadata;
        let token_text = |key: &str| {
            md.get(key)
                .and_then(as_u32)
                .and_then(|id| tok.tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let template_source = md
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let template = ChatTemplate::new(
            template_source,
            token_text("tokenizer.ggml.bos_token_id"),
            token_text("tokenizer.ggml.eos_token_id"),
        )?;
        // candle's quantized llama precomputes RoPE for MAX_SEQ_LEN positions only, so that
        // is the usable window even when the model was trained for longer.
        let trained = md
            .get("llama.context_length")
            .and_then(as_u32)
            .map_or(MAX_SEQ_LEN, |n| n as usize);
        let context_window = trained.min(MAX_SEQ_LEN);

        // Generation ends on the declared EOS and on ChatML's end-of-turn/end-of-text.
        let mut eos_ids: Vec<u32> = md
            .get("tokenizer.ggml.eos_token_id")
            .and_then(as_u32)
            .into_iter()
            .collect();
        for t in ["<|im_end|>", "<|endoftext|>"] {
            eos_ids.extend(tok.tokenizer.token_to_id(t));
        }

        let model = ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
            .map_err(|e| LocalError::Load(format!("loading {}: {e}", gguf_path.display())))?;

        let queue_capacity = opts.queue_capacity.max(1);
        let (submit, rx) = std_mpsc::sync_channel(queue_capacity);
        let shared = Arc::new(Shared::default());
        let worker = Worker::new(
            model,
            tok.token_bytes,
            eos_ids,
            opts.max_active.max(1),
            rx,
            shared.clone(),
        );
        std::thread::Builder::new()
            .name("keel-chat".into())
            .spawn(move || worker.run())
            .map_err(|e| LocalError::Load(format!("cannot start the chat thread: {e}")))?;
        info!(
            model = %gguf_path.display(),
            context_window,
            max_active = opts.max_active,
            queue_capacity,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "chat model loaded"
        );
        Ok(ChatEngine {
            inner: Arc::new(Inner {
                tokenizer: tok.tokenizer,
                template,
                context_window,
                queue_capacity,
                submit,
                shared,
            }),
        })
    }

    /// The prompt the model will see for `messages` (chat template applied, generation
    /// prompt appended).
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> Result<String, LocalError> {
        self.inner.template.render(messages)
    }

    /// Tokens `text` encodes to; control-token text such as `<|im_start|>` counts as one.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.encode(text).map_or(0, |ids| ids.len())
    }

    /// Token ids of `text`, as used for prompts.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        let enc = self
            .inner
            .tokenizer
            .encode(text, false)
            .map_err(LocalError::inference)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids back to text, dropping control tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LocalError> {
        self.inner
            .tokenizer
            .decode(ids, true)
            .map_err(LocalError::inference)
    }

    /// The model's tokenizer (built from the GGUF).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.inner.tokenizer
    }

    /// Prompt plus completion tokens must fit in this many tokens.
    pub fn context_window(&self) -> usize {
        self.inner.context_window
    }

    /// Counters since load.
    pub fn stats(&self) -> ChatStats {
        self.inner.shared.snapshot()
    }

    /// Queues a generation. Fails synchronously, without queueing, on invalid parameters,
    /// a prompt that does not fit the context window, a full queue, or a stopped engine.
    /// Cheap enough to call from async code: it renders and tokenizes the prompt only.
    pub fn generate(
        &self,
        req: GenerateRequest,
    ) -> Result<mpsc::Receiver<GenerateEvent>, LocalError> {
        let inner = &self.inner;
        if inner.shared.stopping.load(Ordering::Acquire) {
            return Err(LocalError::EngineStopped);
        }
        if req.max_tokens == Some(0) {
            return Err(LocalError::InvalidRequest(
                "max_tokens must be at least 1".into(),
            ));
        }
        let sampling = sampling::sampling(req.temperature, req.top_p)?;
        let prompt = self.render_prompt(&req.messages)?;
        let prompt_ids = self.encode(&prompt)?;
        if prompt_ids.len() >= inner.context_window {
            return Err(LocalError::ContextLength {
                prompt_tokens: u32::try_from(prompt_ids.len()).unwrap_or(u32::MAX),
                context_window: u32::try_from(inner.context_window).unwrap_or(u32::MAX),
            });
        }
        let room = inner.context_window - prompt_ids.len();
        let max_new = req.max_tokens.map_or(room, |m| (m as usize).min(room));
        // At most one Delta per token plus Started, a final flush and Done: the worker's
        // `try_send` can never find the channel full, so a slow reader never blocks it.
        let (tx, rx) = mpsc::channel(max_new + 4);
        let job = Job {
            prompt_ids,
            max_new,
            sampler: sampling::logits_processor(sampling, req.seed),
            stops: req.stop,
            events: tx,
        };
        // Count before sending so the worker's decrement can never run first.
        inner.shared.queued.fetch_add(1, Ordering::AcqRel);
        let sent = inner.submit.try_send(Msg::Job(Box::new(job)));
        if sent.is_err() {
            inner.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => Ok(rx),
            Err(std_mpsc::TrySendError::Full(_)) => {
                inner.shared.rejected.fetch_add(1, Ordering::Relaxed);
                Err(LocalError::QueueFull {
                    capacity: inner.queue_capacity,
                })
            }
            Err(std_mpsc::TrySendError::Disconnected(_)) => Err(LocalError::EngineStopped),
        }
    }

    /// Stops the inference thread: queued and active requests get `Failed(EngineStopped)`,
    /// later `generate` calls fail with `EngineStopped`. Returns without waiting.
    pub fn shutdown(&self) {
        self.inner.shared.stopping.store(true, Ordering::Release);
        // Wake an idle worker; if the queue is full the worker is busy and sees the flag.
        let _ = self.inner.submit.try_send(Msg::Wake);
    }
}

impl std::fmt::Debug for ChatEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatEngine")
            .field("context_window", &self.inner.context_window)
            .field("stats", &self.stats())
            .finish()
    }
}
