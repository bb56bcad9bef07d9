//! Calibration survey behind `RECENT_NOISE_K` (ignored by default; about 10 s in release):
//! false alarms over many seeded stable streams, and how soon abrupt shifts are caught. Run with
//! `cargo test --release -p keel-observe --test it drift_false_alarm_survey -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keel_observe::drift::DriftSettings;

use super::{Regime, STABLE, run_seeded, shifted_at, signals};

const SEEDS: u64 = 500;

#[test]
#[ignore]
fn drift_false_alarm_survey() {
    let mut noisy_streams = 0;
    for seed in 0..SEEDS {
        let alerts = run_seeded(seed, DriftSettings::default(), 2_000, |_| STABLE);
        if !alerts.is_empty() {
            noisy_streams += 1;
            let what: Vec<_> = alerts
                .iter()
                .map(|a| (a.signal, a.statistic, a.threshold, a.window_n))
                .collect();
            eprintln!("seed {seed}: {what:?}");
        }
    }
    eprintln!("stable streams with a false alarm: {noisy_streams} of {SEEDS}");
    assert!(noisy_streams * 50 <= SEEDS, "more than 2 % of streams");

    let shifts = [
        (
            "output_tokens",
            Regime {
                tokens: (40.0, 10.0),
                ..STABLE
            },
        ),
        (
            "refusal",
            Regime {
                refusal_rate: 0.4,
                ..STABLE
            },
        ),
        (
            "response_embedding",
            Regime {
                response_cluster: 'B',
                ..STABLE
            },
        ),
    ];
    for (signal, regime) in shifts {
        let mut delays = Vec::new();
        for seed in 0..SEEDS {
            let alerts = run_seeded(seed, DriftSettings::default(), 500, shifted_at(300, regime));
            let first = alerts.iter().find(|a| a.signal == signal);
            delays.push(first.map_or(i64::MAX, |a| a.at_ms - 300));
            assert!(signals(&alerts).len() <= 2, "seed {seed}: {alerts:#?}");
        }
        let max = delays.iter().max().copied().unwrap_or_default();
        let mean = delays.iter().sum::<i64>() as f64 / delays.len() as f64;
        eprintln!("{signal}: caught after {mean:.1} samples on average, {max} at most");
        assert!(max <= 70, "{signal}: {max}");
    }
}
