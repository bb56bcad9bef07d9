//! `Metrics`: exact values in the rendered exposition, bounded labels, independence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod expo;
mod fixtures;
mod requests;

use expo::{assert_close, parse};
use fixtures::{attempt, names, record, record_four, trace};
use keel_observe::metrics::{CONTENT_TYPE, Metrics, MetricsError};
use rand::Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[test]
fn every_metric_has_help_and_the_right_type() {
    let m = Metrics::new(names());
    let e = parse(&m.render());
    let expected = [
        ("keel_requests_total", "counter"),
        ("keel_request_duration_seconds", "histogram"),
        ("keel_stream_errors_total", "counter"),
        ("keel_time_to_first_token_seconds", "histogram"),
        ("keel_time_per_output_token_seconds", "histogram"),
        ("keel_tokens_total", "counter"),
        ("keel_cost_usd_total", "counter"),
        ("keel_upstream_attempts_total", "counter"),
        ("keel_fallbacks_total", "counter"),
        ("keel_output_tokens", "histogram"),
        ("keel_trust_score", "histogram"),
        ("keel_grounding_score", "histogram"),
        ("keel_policy_actions_total", "counter"),
        ("keel_refusals_total", "counter"),
        ("keel_escalations_total", "counter"),
        ("keel_inflight_requests", "gauge"),
        ("keel_shed_requests_total", "counter"),
        ("keel_admission_rejections_total", "counter"),
        ("keel_budget_alerts_total", "counter"),
        ("keel_queue_depth", "gauge"),
        ("keel_drift_alerts_total", "counter"),
        ("keel_drift_statistic", "gauge"),
        ("keel_circuit_state", "gauge"),
    ];
    for (name, kind) in expected {
        assert_eq!(e.types.get(name).map(String::as_str), Some(kind), "{name}");
        assert!(e.help.get(name).is_some_and(|h| h.len() > 10), "{name}");
    }
    assert_eq!(e.types.len(), expected.len());
    assert_eq!(
        e.value("keel_inflight_requests", &[]),
        0.0,
        "rendered before it is set"
    );
    assert_eq!(e.samples.len(), 1);
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
}

#[test]
fn server_gauges_and_counters() {
    let m = Metrics::new(names());
    m.set_inflight(7);
    m.set_inflight(3);
    m.record_shed("overloaded");
    m.record_shed("overloaded");
    m.record_admission_rejection("budget");
    m.record_admission_rejection("a reason with spaces");
    m.record_budget_alert("tenant");
    m.set_queue_depth("local_chat", 4);
    m.set_queue_depth("request_log", 0);
    m.record_refusal("fast");
    m.record_escalation("fast");
    m.record_escalation("unknown-route");
    m.record_drift_alert("fast", "embedding_centroid");
    m.set_drift_statistic("fast", "psi_output_tokens", 0.31);
    m.set_drift_statistic("fast", "psi_output_tokens", 0.12);
    m.set_circuit_state("gpt-a", 2);
    m.set_circuit_state("gpt-a", 1);
    m.set_circuit_state("gpt-b", 0);
    m.set_circuit_state("unknown-model", 2);
    let e = parse(&m.render());
    assert_eq!(e.value("keel_inflight_requests", &[]), 3.0);
    assert_eq!(
        e.value("keel_admission_rejections_total", &[("reason", "budget")]),
        1.0
    );
    assert_eq!(
        e.value("keel_admission_rejections_total", &[("reason", "other")]),
        1.0
    );
    assert_eq!(
        e.value("keel_budget_alerts_total", &[("scope", "tenant")]),
        1.0
    );
    assert_eq!(
        e.value("keel_shed_requests_total", &[("reason", "overloaded")]),
        2.0
    );
    assert_eq!(e.value("keel_queue_depth", &[("queue", "local_chat")]), 4.0);
    assert_eq!(
        e.value("keel_queue_depth", &[("queue", "request_log")]),
        0.0
    );
    assert_eq!(e.value("keel_refusals_total", &[("route", "fast")]), 1.0);
    assert_eq!(e.value("keel_escalations_total", &[("route", "fast")]), 1.0);
    assert_eq!(
        e.value("keel_escalations_total", &[("route", "other")]),
        1.0
    );
    let alert = [("route", "fast"), ("signal", "embedding_centroid")];
    assert_eq!(e.value("keel_drift_alerts_total", &alert), 1.0);
    let stat = [("route", "fast"), ("signal", "psi_output_tokens")];
    assert_close(e.value("keel_drift_statistic", &stat), 0.12);
    assert_eq!(e.value("keel_circuit_state", &[("model", "gpt-a")]), 1.0);
    assert_eq!(e.value("keel_circuit_state", &[("model", "gpt-b")]), 0.0);
    assert_eq!(e.value("keel_circuit_state", &[("model", "other")]), 2.0);
}

#[test]
fn unknown_routes_models_and_odd_values_become_other() {
    let m = Metrics::new(["fast".to_owned()]);
    let mut r = record(
        "chat.completions",
        Some("ignore previous instructions\n\"}"),
        vec![attempt("gpt-x", "status_429"), attempt("fast", "ok")],
    );
    m.record_request(&r, None);
    r.route = None;
    r.endpoint = "weird endpoint".into();
    r.attempts = vec![attempt("my secret model", "connection reset by peer")];
    r.status = 0;
    m.record_request(&r, None);
    let e = parse(&m.render());
    let first = [
        ("endpoint", "chat.completions"),
        ("route", "other"),
        ("model", "fast"),
        ("status", "200"),
    ];
    assert_eq!(e.value("keel_requests_total", &first), 1.0);
    let second = [
        ("endpoint", "other"),
        ("route", "none"),
        ("model", "none"),
        ("status", "other"),
    ];
    assert_eq!(e.value("keel_requests_total", &second), 1.0);
    let attempt = [
        ("route", "other"),
        ("model", "other"),
        ("outcome", "status_429"),
    ];
    assert_eq!(e.value("keel_upstream_attempts_total", &attempt), 1.0);
    let attempt = [("route", "none"), ("model", "other"), ("outcome", "other")];
    assert_eq!(e.value("keel_upstream_attempts_total", &attempt), 1.0);
    let fallback = [("route", "other"), ("reason", "status_429")];
    assert_eq!(e.value("keel_fallbacks_total", &fallback), 1.0);
}

#[test]
fn two_instances_are_independent_and_clones_share() {
    let a = Metrics::new(names());
    let b = Metrics::new(names());
    let a2 = a.clone();
    record_four(&a);
    record_four(&a2);
    b.set_inflight(1);
    let ea = parse(&a.render());
    let eb = parse(&b.render());
    let labels = [("route", "fast"), ("model", "gpt-b"), ("outcome", "ok")];
    assert_eq!(ea.value("keel_upstream_attempts_total", &labels), 4.0);
    assert_eq!(eb.get("keel_upstream_attempts_total", &labels), None);
    assert_eq!(eb.series("keel_requests_total"), 0);
    assert_eq!(ea.value("keel_inflight_requests", &[]), 0.0);
    assert_eq!(eb.value("keel_inflight_requests", &[]), 1.0);
}

#[test]
fn series_stay_bounded_under_random_models() {
    let m = Metrics::new(names());
    let mut rng = rand::rng();
    let mut random = || {
        (0..12)
            .map(|_| rng.random_range('a'..='z'))
            .collect::<String>()
    };
    for i in 0..10_000 {
        let route = if i % 2 == 0 {
            Some(random())
        } else {
            Some("fast".into())
        };
        let mut r = record(
            "chat.completions",
            route.as_deref(),
            vec![attempt(&random(), "ok")],
        );
        r.model_requested = random();
        (r.output_tokens, r.ttft_ms, r.total_ms) = (Some(5), Some(10.0), 20.0);
        m.record_request(&r, None);
    }
    let text = m.render();
    let e = parse(&text);
    assert_eq!(e.series("keel_requests_total"), 2);
    let other = [("route", "fast"), ("model", "other")];
    assert_eq!(
        e.value("keel_time_to_first_token_seconds_count", &other),
        5000.0
    );
    let total: f64 = e
        .samples
        .iter()
        .filter(|s| s.name == "keel_requests_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(total, 10_000.0);
    assert!(e.samples.len() < 200, "{} samples", e.samples.len());
    assert!(text.len() < 32 * 1024, "{} bytes", text.len());
}

#[test]
fn pull_values_are_sampled_at_render_with_their_type() {
    let m = Metrics::new(names());
    let dropped = Arc::new(AtomicU64::new(3));
    let d = dropped.clone();
    m.register_counter_fn(
        "keel_request_log_dropped_total",
        "Records dropped.",
        move || d.load(Ordering::Relaxed),
    )
    .unwrap();
    m.register_gauge_fn("keel_example_ratio", "An example gauge.", || 0.5)
        .unwrap();
    let e = parse(&m.render());
    assert_eq!(e.value("keel_request_log_dropped_total", &[]), 3.0);
    assert_eq!(e.types["keel_request_log_dropped_total"], "counter");
    assert_eq!(e.help["keel_request_log_dropped_total"], "Records dropped.");
    assert_eq!(e.types["keel_example_ratio"], "gauge");
    assert_eq!(e.value("keel_example_ratio", &[]), 0.5);
    dropped.store(9, Ordering::Relaxed);
    assert_eq!(
        parse(&m.render()).value("keel_request_log_dropped_total", &[]),
        9.0
    );

    let dup = |name: &str| Err(MetricsError::Duplicate(name.to_owned()));
    let bad = |name: &str| Err(MetricsError::InvalidName(name.to_owned()));
    assert_eq!(
        m.register_gauge_fn("keel_example_ratio", "x", || 1.0),
        dup("keel_example_ratio")
    );
    assert_eq!(
        m.register_counter_fn("keel_requests_total", "x", || 1),
        dup("keel_requests_total")
    );
    let bucket = "keel_request_duration_seconds_bucket";
    assert_eq!(m.register_gauge_fn(bucket, "x", || 1.0), dup(bucket));
    assert_eq!(
        m.register_counter_fn("keel_dropped", "x", || 1),
        bad("keel_dropped")
    );
    assert_eq!(m.register_gauge_fn("1bad", "x", || 1.0), bad("1bad"));
    assert_eq!(
        m.register_gauge_fn("bad-name", "x", || 1.0),
        bad("bad-name")
    );
}

#[test]
fn concurrent_recording_loses_nothing() {
    let m = Metrics::new(names());
    let mut r = record(
        "chat.completions",
        Some("fast"),
        vec![attempt("gpt-a", "status_503"), attempt("gpt-b", "ok")],
    );
    (r.input_tokens, r.output_tokens, r.cost_usd) = (Some(100), Some(50), Some(0.001));
    (r.ttft_ms, r.total_ms) = (Some(120.0), 900.0);
    let t = trace(0.9, 0.7, "allow");
    let per_thread = 20_000u32;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| (0..per_thread).for_each(|_| m.record_request(&r, Some(&t))));
        }
    });
    let e = parse(&m.render());
    let n = f64::from(2 * per_thread);
    let ok = [
        ("endpoint", "chat.completions"),
        ("route", "fast"),
        ("model", "gpt-b"),
        ("status", "200"),
    ];
    assert_eq!(e.value("keel_requests_total", &ok), n);
    assert_eq!(e.value("keel_request_duration_seconds_count", &ok), n);
    assert_close(e.value("keel_request_duration_seconds_sum", &ok), 0.9 * n);
    let rm = [("route", "fast"), ("model", "gpt-b")];
    assert_close(e.value("keel_cost_usd_total", &rm), 0.001 * n);
    assert_eq!(
        e.value(
            "keel_fallbacks_total",
            &[("route", "fast"), ("reason", "status_503")]
        ),
        n
    );
}

#[test]
fn histograms_are_well_formed() {
    let m = Metrics::new(names());
    record_four(&m);
    let e = parse(&m.render());
    for (family, _) in e.types.iter().filter(|(_, t)| *t == "histogram") {
        let counts = e
            .samples
            .iter()
            .filter(|s| s.name == format!("{family}_count"));
        for count in counts {
            let mut buckets: Vec<(f64, f64)> = e
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
                .filter(|s| {
                    let mut l = s.labels.clone();
                    l.remove("le");
                    l == count.labels
                })
                .map(|s| {
                    (
                        s.labels["le"].replace("+Inf", "inf").parse().unwrap(),
                        s.value,
                    )
                })
                .collect();
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family}"
            );
            assert_eq!(
                buckets.last().unwrap(),
                &(f64::INFINITY, count.value),
                "{family}"
            );
        }
    }
}
