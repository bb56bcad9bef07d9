//! `DriftMonitor`: the async front of [`DriftState`]. `observe` is a `try_send` into a bounded
//! queue (full → dropped and counted, never waited on); one task takes samples in batches,
//! embeds the picked ones in a single call, feeds the state and emits alerts (log event, sink,
//! webhook).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel_config::DriftConfig;
use keel_types::Secret;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::webhook::{self, Signer, WebhookSender};
use super::{
    AlertSink, DriftAlert, DriftError, DriftSample, DriftSettings, DriftState, EmbedFn, SIGNALS,
};
use crate::metrics::FxBuild;

/// Samples waiting for the monitor task.
const QUEUE: usize = 4_096;
/// Most samples taken from the queue at once (and so embedded in one call).
const BATCH: usize = 32;
/// Bytes of a prompt or answer kept for embedding (cut at a character boundary).
const MAX_EMBED_TEXT: usize = 4_096;
/// Deadline of one embedding call; on expiry the batch goes on without embeddings.
const EMBED_TIMEOUT: Duration = Duration::from_secs(60);
/// After a batch the worker sleeps this long before reading again, so under load samples are
/// taken in batches and `observe` rarely has to wake the task (a sleeping receiver registers
/// no waker). Alerts come at most this much later; the queue holds well over this much load.
const PAUSE: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub samples: AtomicU64,
    pub dropped: AtomicU64,
    pub routes_ignored: AtomicU64,
    pub alerts: AtomicU64,
    pub embed_failures: AtomicU64,
    pub webhook_delivered: AtomicU64,
    pub webhook_failed: AtomicU64,
}

/// A snapshot of the monitor's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriftStats {
    /// Samples the monitor has taken in (compared, or kept for a baseline).
    pub samples: u64,
    /// Samples dropped because the queue was full or the monitor had stopped.
    pub dropped: u64,
    /// Samples ignored because `MAX_ROUTES` routes were already tracked.
    pub routes_ignored: u64,
    pub alerts: u64,
    /// Embedding calls that failed or timed out (their batch went on without embeddings).
    pub embed_failures: u64,
    pub webhook_delivered: u64,
    /// Alerts whose delivery failed after its attempts, was refused, or found the queue full.
    pub webhook_failed: u64,
}

enum Msg {
    Sample(DriftSample),
    Reset(Option<String>),
}

/// Cheap to clone; every clone feeds the same task and shares the counters.
#[derive(Clone)]
pub struct DriftMonitor {
    tx: Option<mpsc::Sender<Msg>>,
    counters: Arc<Counters>,
    /// Fraction of samples whose texts are embedded (0 without an embedder).
    embed_rate: f64,
}

impl std::fmt::Debug for DriftMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftMonitor")
            .field("enabled", &self.tx.is_some())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Stops the monitor; see [`DriftHandle::shutdown`]. Dropped without `shutdown`, the tasks run
/// until every [`DriftMonitor`] clone is gone.
#[derive(Debug)]
pub struct DriftHandle {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl DriftHandle {
    /// Stops the monitor and webhook tasks and waits for them. Queued samples and queued
    /// webhook deliveries are abandoned: drift state is not worth delaying shutdown for.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

impl DriftMonitor {
    /// Starts the monitor task (and the webhook task when `webhook_url` is set) on `tracker`.
    /// The webhook secret is read once, here, from the variable named by `webhook_secret_env`;
    /// a missing or empty variable is an error naming it. With `enabled = false` nothing is
    /// started and `observe` does nothing.
    pub fn spawn(
        cfg: &DriftConfig,
        embed: Option<EmbedFn>,
        sink: Arc<dyn AlertSink>,
        tracker: &TaskTracker,
    ) -> Result<(DriftMonitor, DriftHandle), DriftError> {
        if !cfg.enabled {
            return Ok((Self::disabled(), DriftHandle::idle()));
        }
        let secret = match (&cfg.webhook_url, &cfg.webhook_secret_env) {
            (None, _) => None,
            (Some(_), None) => return Err(DriftError::NoSecretEnv),
            (Some(_), Some(var)) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => return Err(DriftError::MissingSecret(var.clone())),
            },
        };
        Self::spawn_with_secret(cfg, secret, embed, sink, tracker)
    }

    /// [`DriftMonitor::spawn`] with the webhook secret given rather than read from the
    /// environment (`webhook_secret_env` is then not consulted).
    pub fn spawn_with_secret(
        cfg: &DriftConfig,
        secret: Option<Secret<String>>,
        embed: Option<EmbedFn>,
        sink: Arc<dyn AlertSink>,
        tracker: &TaskTracker,
    ) -> Result<(DriftMonitor, DriftHandle), DriftError> {
        if !cfg.enabled {
            return Ok((Self::disabled(), DriftHandle::idle()));
        }
        let counters = Arc::new(Counters::default());
        let cancel = CancellationToken::new();
        let mut tasks = Vec::with_capacity(2);
        let webhook = match (&cfg.webhook_url, secret) {
            (None, _) => None,
            (Some(_), None) => return Err(DriftError::NoSecretEnv),
            (Some(url), Some(secret)) => {
                let signer = Signer::new(secret.expose().as_bytes())?;
                let (sender, task) = webhook::spawn(
                    url.clone(),
                    signer,
                    cfg.webhook_attempts,
                    Arc::clone(&counters),
                    cancel.clone(),
                    tracker,
                )?;
                tasks.push(task);
                Some(sender)
            }
        };
        let embed_rate = match &embed {
            Some(_) if cfg.embed_sample_rate > 0.0 => cfg.embed_sample_rate.min(1.0),
            _ => 0.0,
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let worker = Worker {
            state: DriftState::new(DriftSettings::from_config(cfg)),
            embed,
            sink,
            webhook,
            counters: Arc::clone(&counters),
        };
        tasks.push(tracker.spawn(worker.run(rx, cancel.clone())));
        let monitor = DriftMonitor {
            tx: Some(tx),
            counters,
            embed_rate,
        };
        Ok((monitor, DriftHandle { cancel, tasks }))
    }

    /// A monitor that ignores everything.
    pub fn disabled() -> Self {
        Self {
            tx: None,
            counters: Arc::new(Counters::default()),
            embed_rate: 0.0,
        }
    }

    /// Hands a sample to the monitor without waiting. Texts are kept (truncated) only for the
    /// samples picked for embedding.
    pub fn observe(&self, mut s: DriftSample) {
        let Some(tx) = &self.tx else { return };
        let picked = self.embed_rate >= 1.0
            || (self.embed_rate > 0.0 && rand::rng().random::<f64>() < self.embed_rate);
        if picked {
            truncate(&mut s.prompt_text);
            truncate(&mut s.response_text);
        } else {
            s.prompt_text = None;
            s.response_text = None;
        }
        self.send(tx, Msg::Sample(s));
    }

    /// Starts a new baseline for `route` (every route with `None`) from its next samples.
    pub fn reset(&self, route: Option<String>) {
        if let Some(tx) = &self.tx {
            self.send(tx, Msg::Reset(route));
        }
    }

    fn send(&self, tx: &mpsc::Sender<Msg>, msg: Msg) {
        if tx.try_send(msg).is_err() {
            let total = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // 1st, 2nd, 4th, 8th … drop: visible without flooding the log.
            if total.is_power_of_two() {
                tracing::warn!(target: "keel::drift", dropped_total = total, "drift samples dropped");
            }
        }
    }

    /// Samples dropped (queue full or monitor stopped).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> DriftStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DriftStats {
            samples: get(&c.samples),
            dropped: get(&c.dropped),
            routes_ignored: get(&c.routes_ignored),
            alerts: get(&c.alerts),
            embed_failures: get(&c.embed_failures),
            webhook_delivered: get(&c.webhook_delivered),
            webhook_failed: get(&c.webhook_failed),
        }
    }
}

impl DriftHandle {
    fn idle() -> Self {
        Self {
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }
}

fn truncate(text: &mut Option<String>) {
    if let Some(t) = text {
        if t.len() > MAX_EMBED_TEXT {
            let mut end = MAX_EMBED_TEXT;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
        }
        if t.trim().is_empty() {
            *text = None;
        }
    }
}

type Embeddings = (Option<Vec<f32>>, Option<Vec<f32>>);

struct Worker {
    state: DriftState,
    embed: Option<EmbedFn>,
    sink: Arc<dyn AlertSink>,
    webhook: Option<WebhookSender>,
    counters: Arc<Counters>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, cancel: CancellationToken) {
        let mut batch: Vec<Msg> = Vec::with_capacity(BATCH);
        loop {
            let first = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
            };
            batch.push(first);
            // Embedding calls take BATCH samples at a time; without an embedder, everything
            // queued is processed in one go.
            let limit = if self.embed.is_some() { BATCH } else { QUEUE };
            while batch.len() < limit {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let drained = batch.len() < limit;
            let embeddings = tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                e = self.embed_batch(&mut batch) => e,
            };
            // A statistic is a gauge: only a batch's last value per (route, signal) is sent.
            let mut latest: HashMap<&str, [Option<f64>; SIGNALS.len()], FxBuild> =
                HashMap::default();
            let mut samples = 0;
            for (msg, (p, r)) in batch.iter().zip(embeddings) {
                match msg {
                    Msg::Sample(s) => {
                        samples += 1;
                        let out = self.state.observe(s, p.as_deref(), r.as_deref());
                        if !out.statistics.is_empty() {
                            let slots = latest.entry(&s.route).or_default();
                            for st in &out.statistics {
                                if let Some(k) = SIGNALS.iter().position(|&x| x == st.signal) {
                                    slots[k] = Some(st.value);
                                }
                            }
                        }
                        self.alert(&out.alerts);
                    }
                    Msg::Reset(route) => self.state.reset(route.as_deref()),
                }
            }
            for (route, slots) in latest {
                for (signal, value) in SIGNALS.into_iter().zip(slots) {
                    if let Some(value) = value {
                        self.sink.statistic(route, signal, value);
                    }
                }
            }
            batch.clear();
            self.counters.samples.fetch_add(samples, Ordering::Relaxed);
            self.counters
                .routes_ignored
                .store(self.state.routes_ignored(), Ordering::Relaxed);
            if drained {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    () = tokio::time::sleep(PAUSE) => {}
                }
            }
        }
    }

    /// Embeds every text left in the batch's samples in one call; one entry per message.
    async fn embed_batch(&self, batch: &mut [Msg]) -> Vec<Embeddings> {
        let mut out: Vec<Embeddings> = batch.iter().map(|_| (None, None)).collect();
        let Some(embed) = &self.embed else {
            return out;
        };
        let mut texts = Vec::new();
        // (message index, is prompt) per text.
        let mut slots = Vec::new();
        for (i, msg) in batch.iter_mut().enumerate() {
            if let Msg::Sample(s) = msg {
                for (is_prompt, text) in [(true, &mut s.prompt_text), (false, &mut s.response_text)]
                {
                    if let Some(t) = text.take() {
                        texts.push(t);
                        slots.push((i, is_prompt));
                    }
                }
            }
        }
        if texts.is_empty() {
            return out;
        }
        let n = texts.len();
        let failure = match tokio::time::timeout(EMBED_TIMEOUT, embed(texts)).await {
            Ok(Ok(vectors)) if vectors.len() == n => {
                for ((i, is_prompt), v) in slots.into_iter().zip(vectors) {
                    if let Some(e) = out.get_mut(i) {
                        *(if is_prompt { &mut e.0 } else { &mut e.1 }) = Some(v);
                    }
                }
                return out;
            }
            Ok(Ok(vectors)) => format!("{} vectors for {n} texts", vectors.len()),
            Ok(Err(e)) => e,
            Err(_) => format!("timed out after {EMBED_TIMEOUT:?}"),
        };
        let total = self.counters.embed_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_power_of_two() {
            tracing::warn!(
                target: "keel::drift",
                error = %failure,
                failures_total = total,
                "drift embedding failed; batch compared without embeddings"
            );
        }
        out
    }

    fn alert(&self, alerts: &[DriftAlert]) {
        for a in alerts {
            self.counters.alerts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: "keel::drift",
                route = %a.route,
                signal = a.signal,
                statistic = a.statistic,
                threshold = a.threshold,
                baseline_n = a.baseline_n,
                window_n = a.window_n,
                at_ms = a.at_ms,
                "behavioural drift detected"
            );
            self.sink.alert(a);
            if let Some(w) = &self.webhook {
                w.send(a);
            }
        }
    }
}
