//! The `keel-chat` inference thread: admits queued requests into up to `max_active` slots
//! and advances them round-robin, one step per sequence per round.
//!
//! Scheduling: a step is either one prefill chunk (up to [`PREFILL_CHUNK`] prompt tokens in
//! one forward pass) or one decoded token. Every active sequence gets one step per round, so
//! concurrent requests progress at the same token rate and a long prompt delays the others
//! by one chunk per round, not by its whole prefill. Each sequence owns a clone of the model
//! weights (tensors are shared `Arc`s; only its KV cache is its own), so sequences never see
//! each other's state and a sequence's output does not depend on what else is running.
//! Decoding is not batched across sequences: with one token each, a batched pass would need
//! padded per-sequence KV caches, which candle's quantized llama does not offer.
//!
//! Cancellation: a sequence whose event receiver was dropped is removed before its next
//! step, freeing its slot and KV cache. Shutdown: the `stopping` flag fails every active and
//! queued request with `EngineStopped` and ends the thread; when every `ChatEngine` handle
//! is dropped the thread finishes its active sequences and exits.

use super::GenerateEvent;
use super::stream::TextStream;
use crate::error::LocalError;
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::quantized_llama::ModelWeights;
use keel_types::openai::FinishReason;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, warn};

/// Prompt tokens per prefill forward pass.
pub(crate) const PREFILL_CHUNK: usize = 512;

pub(crate) enum Msg {
    Job(Box<Job>),
    /// Sent by `shutdown` to wake an idle worker.
    Wake,
}

/// A validated request waiting for a slot.
pub(crate) struct Job {
    pub prompt_ids: Vec<u32>,
    /// Already clamped to the room left in the context window.
    pub max_new: usize,
    pub sampler: LogitsProcessor,
    pub stops: Vec<String>,
    pub events: mpsc::Sender<GenerateEvent>,
}

/// State shared between the handles and the worker: the stop flag and counters.
#[derive(Default)]
pub(crate) struct Shared {
    pub stopping: AtomicBool,
    pub queued: AtomicUsize,
    active: AtomicUsize,
    pub rejected: AtomicU64,
    admitted: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    prefill_tokens: AtomicU64,
    prefill_nanos: AtomicU64,
    completion_tokens: AtomicU64,
    decode_steps: AtomicU64,
    decode_nanos: AtomicU64,
}

/// Counters of a [`super::ChatEngine`] since load. Prefill time covers the prompt forward
/// passes; decode time covers the single-token forward passes (sampling excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Requests waiting for a slot.
    pub queued: usize,
    /// Sequences holding a slot.
    pub active: usize,
    /// Requests refused with `QueueFull`.
    pub rejected: u64,
    pub admitted: u64,
    /// Requests that ended with `Done`.
    pub completed: u64,
    pub failed: u64,
    /// Requests dropped because their receiver went away.
    pub cancelled: u64,
    pub prefill_tokens: u64,
    pub prefill_micros: u64,
    pub completion_tokens: u64,
    pub decode_steps: u64,
    pub decode_micros: u64,
}

impl Shared {
    pub(crate) fn snapshot(&self) -> ChatStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ChatStats {
            queued: self.queued.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            rejected: get(&self.rejected),
            admitted: get(&self.admitted),
            completed: get(&self.completed),
            failed: get(&self.failed),
            cancelled: get(&self.cancelled),
            prefill_tokens: get(&self.prefill_tokens),
            prefill_micros: get(&self.prefill_nanos) / 1000,
            completion_tokens: get(&self.completion_tokens),
            decode_steps: get(&self.decode_steps),
            decode_micros: get(&self.decode_nanos) / 1000,
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn elapsed_nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Everything the thread owns.
pub(crate) struct Worker {
    model: ModelWeights,
    vocab: Vocab,
    max_active: usize,
    rx: std_mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
}

/// What sampled tokens mean.
struct Vocab {
    token_bytes: Vec<Vec<u8>>,
    eos_ids: Vec<u32>,
}

impl Worker {
    pub(crate) fn new(
        model: ModelWeights,
        token_bytes: Vec<Vec<u8>>,
        eos_ids: Vec<u32>,
        max_active: usize,
        rx: std_mpsc::Receiver<Msg>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            model,
            vocab: Vocab {
                token_bytes,
                eos_ids,
            },
            max_active,
            rx,
            shared,
        }
    }

    pub(crate) fn run(self) {
        let mut active: Vec<Sequence> = Vec::new();
        let mut handles_gone = false;
        loop {
            if self.shared.stopping.load(Ordering::Acquire) {
                self.stop_all(active);
                return;
            }
            // Admit: block only when there is nothing else to do.
            while active.len() < self.max_active && !handles_gone {
                let msg = if active.is_empty() {
                    self.rx
                        .recv()
                        .map_err(|_| std_mpsc::TryRecvError::Disconnected)
                } else {
                    self.rx.try_recv()
                };
                match msg {
                    Ok(Msg::Job(job)) => {
                        self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                        if let Some(seq) = self.admit(*job) {
                            active.push(seq);
                        }
                    }
                    Ok(Msg::Wake) | Err(std_mpsc::TryRecvError::Empty) => break,
                    Err(std_mpsc::TryRecvError::Disconnected) => handles_gone = true,
                }
            }
            self.shared.active.store(active.len(), Ordering::Relaxed);
            if active.is_empty() {
                if handles_gone {
                    debug!("all chat engine handles dropped; chat thread exiting");
                    return;
                }
                continue;
            }
            // One round: one step for every active sequence.
            active.retain_mut(|seq| self.advance(seq));
            self.shared.active.store(active.len(), Ordering::Relaxed);
        }
    }

    fn admit(&self, job: Job) -> Option<Sequence> {
        if job.events.is_closed() {
            add(&self.shared.cancelled, 1);
            return None;
        }
        let prompt_tokens = u32::try_from(job.prompt_ids.len()).unwrap_or(u32::MAX);
        if job
            .events
            .try_send(GenerateEvent::Started { prompt_tokens })
            .is_err()
        {
            add(&self.shared.cancelled, 1);
            return None;
        }
        add(&self.shared.admitted, 1);
        Some(Sequence {
            model: self.model.clone(),
            sampler: job.sampler,
            events: job.events,
            prompt: job.prompt_ids,
            pos: 0,
            next: None,
            generated: 0,
            max_new: job.max_new,
            text: TextStream::new(job.stops),
        })
    }

    /// Runs one step of `seq`; returns whether it keeps its slot.
    fn advance(&self, seq: &mut Sequence) -> bool {
        if seq.events.is_closed() {
            add(&self.shared.cancelled, 1);
            return false;
        }
        match seq.step(&self.vocab, &self.shared) {
            Ok(Step::Continue) => true,
            Ok(Step::Finished(finish)) => {
                let done = GenerateEvent::Done {
                    finish,
                    prompt_tokens: u32::try_from(seq.prompt.len()).unwrap_or(u32::MAX),
                    completion_tokens: u32::try_from(seq.generated).unwrap_or(u32::MAX),
                };
                match seq.events.try_send(done) {
                    Ok(()) => add(&self.shared.completed, 1),
                    Err(_) => add(&self.shared.cancelled, 1),
                }
                false
            }
            Ok(Step::Cancelled) => {
                add(&self.shared.cancelled, 1);
                false
            }
            Err(e) => {
                warn!(error = %e, "chat generation failed");
                add(&self.shared.failed, 1);
                let _ = seq.events.try_send(GenerateEvent::Failed(e));
                false
            }
        }
    }

    fn stop_all(&self, active: Vec<Sequence>) {
        for seq in active {
            let _ = seq
                .events
                .try_send(GenerateEvent::Failed(LocalError::EngineStopped));
            add(&self.shared.failed, 1);
        }
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Job(job) = msg {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                let _ = job
                    .events
                    .try_send(GenerateEvent::Failed(LocalError::EngineStopped));
                add(&self.shared.failed, 1);
            }
        }
        self.shared.active.store(0, Ordering::Relaxed);
        debug!("chat thread stopped");
    }
}

enum Step {
    Continue,
    Finished(FinishReason),
    Cancelled,
}

/// One generation in progress.
struct Sequence {
    /// Shares weights with the worker's model; owns its KV cache.
    model: ModelWeights,
    sampler: LogitsProcessor,
    events: mpsc::Sender<GenerateEvent>,
    prompt: Vec<u32>,
    /// Tokens in the KV cache (prompt tokens prefilled so far, then generated ones).
    pos: usize,
    /// The last sampled token, fed at the next step.
    next: Option<u32>,
    generated: usize,
    max_new: usize,
    text: TextStream,
}

impl Sequence {
    fn step(&mut self, vocab: &Vocab, shared: &Shared) -> Result<Step, LocalError> {
        let started = Instant::now();
        if self.pos < self.prompt.len() {
            let from = self.pos;
            let to = (from + PREFILL_CHUNK).min(self.prompt.len());
            let logits = self.forward_slice(from, to)?;
            self.pos = to;
            add(&shared.prefill_tokens, (to - from) as u64);
            add(&shared.prefill_nanos, elapsed_nanos(started));
            if to < self.prompt.len() {
                return Ok(Step::Continue);
            }
            return self.accept(&logits, vocab, shared);
        }
        let Some(token) = self.next.take() else {
            return Err(LocalError::Inference(
                "sequence has no token to feed".into(),
            ));
        };
        let input = Tensor::new(&[token], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(LocalError::inference)?;
        let logits = self
            .model
            .forward(&input, self.pos)
            .map_err(LocalError::inference)?;
        self.pos += 1;
        add(&shared.decode_steps, 1);
        add(&shared.decode_nanos, elapsed_nanos(started));
        self.accept(&logits, vocab, shared)
    }

    fn forward_slice(&mut self, from: usize, to: usize) -> Result<Tensor, LocalError> {
        let input = Tensor::new(&self.prompt[from..to], &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(LocalError::inference)?;
        self.model
            .forward(&input, from)
            .map_err(LocalError::inference)
    }

    /// Samples the next token from `logits` (shape `[1, vocab]`) and emits its text.
    fn accept(
        &mut self,
        logits: &Tensor,
        vocab: &Vocab,
        shared: &Shared,
    ) -> Result<Step, LocalError> {
        let logits = logits.squeeze(0).map_err(LocalError::inference)?;
        let token = self
            .sampler
            .sample(&logits)
            .map_err(LocalError::inference)?;
        if vocab.eos_ids.contains(&token) {
            return self.finish(FinishReason::Stop);
        }
        self.generated += 1;
        add(&shared.completion_tokens, 1);
        let bytes = vocab
            .token_bytes
            .get(token as usize)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let pushed = self.text.push(bytes);
        if !pushed.text.is_empty() && !self.send(GenerateEvent::Delta(pushed.text)) {
            return Ok(Step::Cancelled);
        }
        if pushed.stopped {
            return Ok(Step::Finished(FinishReason::Stop));
        }
        if self.generated >= self.max_new {
            return self.finish(FinishReason::Length);
        }
        self.next = Some(token);
        Ok(Step::Continue)
    }

    /// Flushes held-back text and reports the finish reason.
    fn finish(&mut self, finish: FinishReason) -> Result<Step, LocalError> {
        let rest = self.text.finish();
        if !rest.is_empty() && !self.send(GenerateEvent::Delta(rest)) {
            return Ok(Step::Cancelled);
        }
        Ok(Step::Finished(finish))
    }

    /// Sends an event; `false` if the receiver is gone.
    fn send(&self, event: GenerateEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Closed(_)) => false,
            // Capacity covers every event a sequence can send; treat the impossible as a
            // client that stopped reading.
            Err(TrySendError::Full(_)) => false,
        }
    }
}
