//! Drift detection: the synchronous core on seeded synthetic streams (stable, shifted output
//! length, refusal rate, embedding centroids, cooldown), then the async monitor end to end:
//! batched embedding, a non-blocking full queue, and signed webhooks to a real receiver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use keel_config::DriftConfig;
use keel_observe::drift::{
    AlertSink, DriftAlert, DriftError, DriftMonitor, DriftSample, DriftSettings, DriftState,
    EmbedFn,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::task::TaskTracker;

const DIM: usize = 32;

fn normal(rng: &mut StdRng, mean: f64, sd: f64) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A unit vector around cluster `A` (first half of the coordinates) or `B` (second half).
fn cluster_vector(rng: &mut StdRng, cluster: char) -> Vec<f32> {
    let v: Vec<f64> = (0..DIM)
        .map(|i| {
            let on = (i < DIM / 2) == (cluster == 'A');
            f64::from(u8::from(on)) + normal(rng, 0.0, 0.5)
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| (x / norm) as f32).collect()
}

/// Knobs of the synthetic stream at one point in time.
#[derive(Clone, Copy)]
struct Regime {
    tokens: (f64, f64),
    refusal_rate: f64,
    response_cluster: char,
}

const STABLE: Regime = Regime {
    tokens: (200.0, 30.0),
    refusal_rate: 0.02,
    response_cluster: 'A',
};

fn sample(rng: &mut StdRng, i: usize, r: Regime) -> DriftSample {
    DriftSample {
        route: "chat".into(),
        at_ms: i as i64,
        trust_score: Some(normal(rng, 0.8, 0.05).clamp(0.0, 1.0)),
        grounding_score: Some(rng.random_range(0.6..0.95)),
        refused: rng.random_bool(r.refusal_rate),
        output_tokens: Some(normal(rng, r.tokens.0, r.tokens.1).round().max(1.0) as u32),
        latency_ms: normal(rng, 6.5, 0.4).exp(),
        prompt_text: None,
        response_text: None,
    }
}

/// Runs `n` samples through a `DriftState`; `regime(i)` picks the stream's knobs.
fn run(settings: DriftSettings, n: usize, regime: impl Fn(usize) -> Regime) -> Vec<DriftAlert> {
    run_seeded(42, settings, n, regime)
}

fn run_seeded(
    seed: u64,
    settings: DriftSettings,
    n: usize,
    regime: impl Fn(usize) -> Regime,
) -> Vec<DriftAlert> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = DriftState::new(settings);
    let mut alerts = Vec::new();
    let mut compared = std::collections::BTreeSet::new();
    for i in 0..n {
        let r = regime(i);
        let s = sample(&mut rng, i, r);
        let p = cluster_vector(&mut rng, 'A');
        let q = cluster_vector(&mut rng, r.response_cluster);
        let out = state.observe(&s, Some(&p), Some(&q));
        compared.extend(out.statistics.iter().map(|s| s.signal));
        alerts.extend(out.alerts);
    }
    assert_eq!(compared.len(), 7, "every signal compared: {compared:?}");
    alerts
}

fn shifted_at(at: usize, shifted: Regime) -> impl Fn(usize) -> Regime {
    move |i| if i < at { STABLE } else { shifted }
}

/// The distinct signals alerted on, in order of first alert.
fn signals(alerts: &[DriftAlert]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for a in alerts {
        if !out.contains(&a.signal) {
            out.push(a.signal);
        }
    }
    out
}

#[test]
fn a_stable_stream_never_alerts() {
    let alerts = run(DriftSettings::default(), 2_000, |_| STABLE);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn an_output_length_shift_alerts_soon_after_the_change() {
    let s = DriftSettings::default();
    let bound = s.min_samples + 20;
    let shifted = Regime {
        tokens: (40.0, 10.0),
        ..STABLE
    };
    let alerts = run(s.clone(), 600, shifted_at(300, shifted));
    assert_eq!(signals(&alerts), vec!["output_tokens"], "{alerts:#?}");
    let a = &alerts[0];
    let delay = a.at_ms as usize - 300;
    assert!(delay <= bound, "alerted {delay} samples after the shift");
    assert!(a.statistic > a.threshold && a.threshold > s.psi_threshold);
    assert_eq!(a.baseline_n, 200);
    assert_eq!(a.detail["method"], "psi");
    assert!(
        a.detail["window_mean"].as_f64().unwrap() < a.detail["baseline_mean"].as_f64().unwrap()
    );
}

#[test]
fn a_refusal_rate_rise_alerts() {
    let s = DriftSettings::default();
    let bound = s.min_samples + 20;
    let shifted = Regime {
        refusal_rate: 0.4,
        ..STABLE
    };
    let alerts = run(s, 600, shifted_at(300, shifted));
    assert_eq!(signals(&alerts), vec!["refusal"], "{alerts:#?}");
    let delay = alerts[0].at_ms as usize - 300;
    assert!(delay <= bound, "alerted {delay} samples after the shift");
    assert_eq!(alerts[0].detail["bins"], 2);
    assert_eq!(alerts[0].detail["span"], "recent");
}

#[test]
fn an_answer_embedding_shift_alerts_and_stable_prompts_do_not() {
    let shifted = Regime {
        response_cluster: 'B',
        ..STABLE
    };
    let alerts = run(DriftSettings::default(), 600, shifted_at(300, shifted));
    assert_eq!(signals(&alerts), vec!["response_embedding"], "{alerts:#?}");
    let a = &alerts[0];
    assert!(a.statistic > a.threshold && a.threshold > 0.15);
    assert!(a.at_ms < 300 + 100, "{}", a.at_ms);
    assert_eq!(a.detail["dimensions"], DIM);
}

#[test]
fn a_persistent_shift_alerts_once_per_cooldown() {
    let settings = DriftSettings {
        alert_cooldown: 100,
        ..DriftSettings::default()
    };
    let shifted = Regime {
        tokens: (40.0, 10.0),
        ..STABLE
    };
    let alerts = run(settings, 1_300, shifted_at(300, shifted));
    assert!(alerts.iter().all(|a| a.signal == "output_tokens"));
    let at: Vec<i64> = alerts.iter().map(|a| a.at_ms).collect();
    // First alert within ~70 samples, then one every 101 (quiet for 100) while it persists.
    assert!((9..=10).contains(&at.len()), "{at:?}");
    assert!(at.windows(2).all(|w| w[1] - w[0] == 101), "{at:?}");
}

// ---- async monitor ----

#[derive(Default)]
struct TestSink {
    alerts: Mutex<Vec<DriftAlert>>,
    statistics: AtomicUsize,
    /// The last value of each (route, signal).
    latest: Mutex<HashMap<(String, String), f64>>,
}

impl AlertSink for TestSink {
    fn alert(&self, a: &DriftAlert) {
        self.alerts.lock().unwrap().push(a.clone());
    }
    fn statistic(&self, route: &str, signal: &str, value: f64) {
        self.statistics.fetch_add(1, Ordering::Relaxed);
        let key = (route.to_owned(), signal.to_owned());
        self.latest.lock().unwrap().insert(key, value);
    }
}

impl TestSink {
    fn alerts(&self) -> Vec<DriftAlert> {
        self.alerts.lock().unwrap().clone()
    }
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Embeds "A:<n>" / "B:<n>" as a vector of that cluster, seeded by `n`; counts calls.
fn fake_embedder(calls: Arc<AtomicUsize>) -> EmbedFn {
    Arc::new(move |texts: Vec<String>| {
        calls.fetch_add(1, Ordering::Relaxed);
        let out = texts
            .iter()
            .map(|t| {
                let (cluster, n) = t.split_once(':').unwrap();
                let mut rng = StdRng::seed_from_u64(n.parse().unwrap());
                cluster_vector(&mut rng, cluster.chars().next().unwrap())
            })
            .collect();
        async move { Ok(out) }.boxed()
    })
}

fn small(cfg: DriftConfig) -> DriftConfig {
    DriftConfig {
        baseline_size: 100,
        window_size: 100,
        min_samples: 30,
        alert_cooldown: 100_000,
        ..cfg
    }
}

#[tokio::test]
async fn the_monitor_embeds_in_batches_and_alerts_on_an_answer_shift() {
    let tracker = TaskTracker::new();
    let sink = Arc::new(TestSink::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let cfg = small(DriftConfig::default());
    let (monitor, handle) = DriftMonitor::spawn(
        &cfg,
        Some(fake_embedder(calls.clone())),
        sink.clone(),
        &tracker,
    )
    .unwrap();
    for i in 0..250usize {
        let cluster = if i < 130 { 'A' } else { 'B' };
        monitor.observe(DriftSample {
            route: "chat".into(),
            at_ms: i as i64,
            latency_ms: 100.0,
            prompt_text: Some(format!("A:{i}")),
            response_text: Some(format!("{cluster}:{}", i + 10_000)),
            ..DriftSample::default()
        });
    }
    wait_for("an answer drift alert", || !sink.alerts().is_empty()).await;
    wait_for("every sample processed", || monitor.stats().samples == 250).await;
    let alerts = sink.alerts();
    assert_eq!(signals(&alerts), vec!["response_embedding"], "{alerts:#?}");
    assert!(alerts[0].at_ms > 130 && alerts[0].at_ms < 250);
    let stats = monitor.stats();
    assert_eq!(
        (stats.dropped, stats.alerts, stats.embed_failures),
        (0, 1, 0)
    );
    assert!(calls.load(Ordering::Relaxed) < 250, "embedded one by one");
    handle.shutdown().await;
    monitor.observe(DriftSample::default());
    assert_eq!(monitor.dropped(), 1, "a stopped monitor drops and counts");
}

#[tokio::test]
async fn statistics_are_sent_once_per_batch_with_the_last_value_of_each_signal() {
    let tracker = TaskTracker::new();
    let sink = Arc::new(TestSink::default());
    let cfg = small(DriftConfig::default());
    let (monitor, handle) = DriftMonitor::spawn(&cfg, None, sink.clone(), &tracker).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let samples: Vec<_> = (0..400)
        .map(|i| {
            let mut s = sample(&mut rng, i, STABLE);
            s.route = if i % 3 == 0 { "a" } else { "b" }.into();
            s
        })
        .collect();
    for s in &samples {
        monitor.observe(s.clone());
    }
    wait_for("every sample processed", || monitor.stats().samples == 400).await;

    // The same samples through the synchronous core: its last statistic of each signal is
    // what the gauges must show.
    let mut state = DriftState::new(DriftSettings::from_config(&cfg));
    let mut want = HashMap::new();
    let mut compared = 0;
    for s in &samples {
        for st in state.observe(s, None, None).statistics {
            compared += 1;
            want.insert((s.route.clone(), st.signal.to_owned()), st.value);
        }
    }
    assert_eq!(*sink.latest.lock().unwrap(), want);
    assert_eq!(want.len(), 2 * 5, "two routes, five scalar signals");
    let sent = sink.statistics.load(Ordering::Relaxed);
    assert!(
        sent < compared / 4,
        "{sent} statistics sent for {compared} comparisons"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_drops_instead_of_blocking_and_shutdown_is_prompt() {
    let tracker = TaskTracker::new();
    let stuck: EmbedFn = Arc::new(|_| futures::future::pending().boxed());
    let cfg = small(DriftConfig::default());
    let (monitor, handle) =
        DriftMonitor::spawn(&cfg, Some(stuck), Arc::new(TestSink::default()), &tracker).unwrap();
    for _ in 0..6_000 {
        monitor.observe(DriftSample {
            route: "chat".into(),
            response_text: Some("A:1".into()),
            ..DriftSample::default()
        });
    }
    let dropped = monitor.dropped();
    assert!(dropped >= 6_000 - 4_096 - 32, "{dropped}");
    tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .expect("shutdown interrupts a stuck embedding call");
}

#[tokio::test]
async fn spawn_checks_the_webhook_secret_and_respects_enabled() {
    let tracker = TaskTracker::new();
    let sink: Arc<dyn AlertSink> = Arc::new(TestSink::default());
    let var = "KEEL_TEST_DRIFT_SECRET_THAT_IS_NOT_SET";
    let cfg = DriftConfig {
        webhook_url: Some("http://127.0.0.1:9/hook".into()),
        webhook_secret_env: Some(var.into()),
        ..DriftConfig::default()
    };
    let e = DriftMonitor::spawn(&cfg, None, sink.clone(), &tracker).unwrap_err();
    assert!(matches!(&e, DriftError::MissingSecret(v) if v == var));
    assert!(e.to_string().contains(var), "{e}");
    let no_env = DriftConfig {
        webhook_secret_env: None,
        ..cfg.clone()
    };
    let e = DriftMonitor::spawn(&no_env, None, sink.clone(), &tracker).unwrap_err();
    assert!(matches!(e, DriftError::NoSecretEnv));
    // Any variable that is set will do for reading the secret.
    let path = DriftConfig {
        webhook_secret_env: Some("PATH".into()),
        ..cfg.clone()
    };
    let (_, handle) = DriftMonitor::spawn(&path, None, sink.clone(), &tracker).unwrap();
    handle.shutdown().await;
    let off = DriftConfig {
        enabled: false,
        ..cfg
    };
    let (monitor, handle) = DriftMonitor::spawn(&off, None, sink, &tracker).unwrap();
    monitor.observe(DriftSample::default());
    assert_eq!(monitor.stats(), Default::default());
    handle.shutdown().await;
}

mod survey;
mod webhook;
