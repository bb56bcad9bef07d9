//! The `keel-embed` thread: drains every waiting request (up to `max_batch` texts), embeds
//! them together and hands each request its own slice of the results.
//!
//! Batching: the thread blocks for the first request, then takes whatever else is already
//! queued while the texts fit in `max_batch`; it never waits for more. A request larger than
//! `max_batch` on its own is embedded in several passes. A pass carries its texts unpadded
//! (see `super::bert`), so texts of any lengths share one; a pass is also cut at
//! [`MAX_PASS_TOKENS`] tokens to bound its working memory.

use super::EmbedOutput;
use super::model::{EmbedModel, Tokenized};
use crate::error::LocalError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Instant;
use tokio::sync::oneshot;
use tracing::debug;

/// Most tokens in one forward pass (about 60 MB of activations for MiniLM).
const MAX_PASS_TOKENS: usize = 4096;

pub(crate) enum Msg {
    Job(Job),
    /// Sent by `shutdown` to wake an idle worker.
    Wake,
}

pub(crate) struct Job {
    pub texts: Vec<String>,
    pub reply: oneshot::Sender<Result<EmbedOutput, LocalError>>,
}

#[derive(Default)]
pub(crate) struct Shared {
    pub stopping: AtomicBool,
    pub rejected: AtomicU64,
    requests: AtomicU64,
    texts: AtomicU64,
    tokens: AtomicU64,
    batches: AtomicU64,
    forward_passes: AtomicU64,
    largest_batch: AtomicU64,
    forward_nanos: AtomicU64,
}

/// Counters of an [`super::Embedder`] since load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbedStats {
    /// `embed` calls served (successfully or not).
    pub requests: u64,
    pub texts: u64,
    /// Tokens embedded, including `[CLS]`/`[SEP]`, excluding padding.
    pub tokens: u64,
    /// Groups of requests served together.
    pub batches: u64,
    /// Model forward passes (a batch takes one or more).
    pub forward_passes: u64,
    /// Most texts served in one batch.
    pub largest_batch: u64,
    pub forward_micros: u64,
    /// Calls refused with `QueueFull`.
    pub rejected: u64,
}

impl Shared {
    pub(crate) fn snapshot(&self) -> EmbedStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EmbedStats {
            requests: get(&self.requests),
            texts: get(&self.texts),
            tokens: get(&self.tokens),
            batches: get(&self.batches),
            forward_passes: get(&self.forward_passes),
            largest_batch: get(&self.largest_batch),
            forward_micros: get(&self.forward_nanos) / 1000,
            rejected: get(&self.rejected),
        }
    }
}

pub(crate) struct Worker {
    pub model: EmbedModel,
    pub max_batch: usize,
    pub rx: std_mpsc::Receiver<Msg>,
    pub shared: Arc<Shared>,
}

impl Worker {
    pub(crate) fn run(self) {
        let mut carry: Option<Job> = None;
        loop {
            if self.stopping() {
                if let Some(job) = carry.take() {
                    let _ = job.reply.send(Err(LocalError::EngineStopped));
                }
                return self.stop();
            }
            let first = match carry.take() {
                Some(job) => job,
                None => match self.rx.recv() {
                    Ok(Msg::Job(job)) => job,
                    Ok(Msg::Wake) => continue,
                    Err(_) => {
                        debug!("all embedder handles dropped; embedding thread exiting");
                        return;
                    }
                },
            };
            if self.stopping() {
                let _ = first.reply.send(Err(LocalError::EngineStopped));
                continue;
            }
            let mut batch = vec![first];
            let mut texts = batch[0].texts.len();
            while texts < self.max_batch {
                match self.rx.try_recv() {
                    Ok(Msg::Job(job)) if texts + job.texts.len() <= self.max_batch => {
                        texts += job.texts.len();
                        batch.push(job);
                    }
                    Ok(Msg::Job(job)) => {
                        carry = Some(job);
                        break;
                    }
                    Ok(Msg::Wake) | Err(_) => break,
                }
            }
            // Callers that went away are not worth a forward pass.
            batch.retain(|job| !job.reply.is_closed());
            if !batch.is_empty() {
                self.serve(batch);
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Acquire)
    }

    fn stop(&self) {
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Job(job) = msg {
                let _ = job.reply.send(Err(LocalError::EngineStopped));
            }
        }
        debug!("embedding thread stopped");
    }

    fn serve(&self, batch: Vec<Job>) {
        let count = |n: usize| n as u64;
        let texts: usize = batch.iter().map(|j| j.texts.len()).sum();
        self.shared
            .requests
            .fetch_add(count(batch.len()), Ordering::Relaxed);
        self.shared.texts.fetch_add(count(texts), Ordering::Relaxed);
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        self.shared
            .largest_batch
            .fetch_max(count(texts), Ordering::Relaxed);

        match self.embed_all(&batch) {
            Ok(mut outputs) => {
                // Hand results back in request order.
                for job in batch.into_iter().rev() {
                    let n = job.texts.len();
                    let at = outputs.vectors.len() - n;
                    let out = EmbedOutput {
                        vectors: outputs.vectors.split_off(at),
                        token_counts: outputs.token_counts.split_off(at),
                        truncated: outputs.truncated.split_off(at),
                    };
                    let _ = job.reply.send(Ok(out));
                }
            }
            Err(e) => {
                for job in batch {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// Embeds every text of every job, concatenated in job order.
    fn embed_all(&self, batch: &[Job]) -> Result<EmbedOutput, LocalError> {
        let all: Vec<&str> = batch
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        let tokenized: Vec<Tokenized> = self.model.tokenize(&all)?;
        let token_counts: Vec<u32> = tokenized
            .iter()
            .map(|t| u32::try_from(t.ids.len()).unwrap_or(u32::MAX))
            .collect();
        let tokens: u64 = token_counts.iter().map(|&n| u64::from(n)).sum();
        self.shared.tokens.fetch_add(tokens, Ordering::Relaxed);

        let mut vectors: Vec<Vec<f32>> = Vec::with_capacity(tokenized.len());
        let mut start = 0;
        while start < tokenized.len() {
            let mut end = start + 1;
            let mut pass_tokens = tokenized[start].ids.len();
            while end < tokenized.len()
                && end - start < self.max_batch
                && pass_tokens + tokenized[end].ids.len() <= MAX_PASS_TOKENS
            {
                pass_tokens += tokenized[end].ids.len();
                end += 1;
            }
            let pass: Vec<&[u32]> = tokenized[start..end]
                .iter()
                .map(|t| t.ids.as_slice())
                .collect();
            let started = Instant::now();
            vectors.extend(self.model.embed(&pass)?);
            let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.shared
                .forward_nanos
                .fetch_add(nanos, Ordering::Relaxed);
            self.shared.forward_passes.fetch_add(1, Ordering::Relaxed);
            start = end;
        }
        Ok(EmbedOutput {
            vectors,
            token_counts,
            truncated: tokenized.iter().map(|t| t.truncated).collect(),
        })
    }
}
