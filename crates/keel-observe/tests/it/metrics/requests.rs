//! One request of each kind, and the exact values they leave in the exposition.

use super::expo::{assert_close, parse};
use super::fixtures::{names, record_four};
use keel_observe::metrics::Metrics;

#[test]
fn requests_render_exact_counters_and_histograms() {
    let m = Metrics::new(names());
    record_four(&m);
    let e = parse(&m.render());
    let fast_b = [("route", "fast"), ("model", "gpt-b")];
    let ok = [
        ("endpoint", "chat.completions"),
        fast_b[0],
        fast_b[1],
        ("status", "200"),
    ];

    assert_eq!(e.value("keel_requests_total", &ok), 2.0);
    let failed = [
        ("endpoint", "chat.completions"),
        ("route", "fast"),
        ("model", "none"),
        ("status", "502"),
    ];
    assert_eq!(e.value("keel_requests_total", &failed), 1.0);
    let embed = [
        ("endpoint", "embeddings"),
        ("route", "local-embed"),
        ("model", "local-embed"),
        ("status", "200"),
    ];
    assert_eq!(e.value("keel_requests_total", &embed), 1.0);
    assert_eq!(e.series("keel_requests_total"), 3);

    let d = "keel_request_duration_seconds";
    assert_eq!(e.value(&format!("{d}_count"), &ok), 2.0);
    assert_close(e.value(&format!("{d}_sum"), &ok), 6.25);
    assert_eq!(e.bucket(d, &ok, "1"), 0.0);
    assert_eq!(e.bucket(d, &ok, "2.5"), 1.0);
    assert_eq!(e.bucket(d, &ok, "5"), 2.0, "le is inclusive");
    assert_eq!(e.bucket(d, &ok, "+Inf"), 2.0);
    assert_eq!(e.bucket(d, &failed, "2.5"), 0.0);
    assert_eq!(e.bucket(d, &failed, "5"), 1.0);
    assert_eq!(e.bucket(d, &embed, "0.01"), 1.0);
    assert_eq!(e.bucket(d, &embed, "0.005"), 0.0);

    let stream_error = [("route", "fast"), ("error_class", "stream_idle_timeout")];
    assert_eq!(e.value("keel_stream_errors_total", &stream_error), 1.0);
    assert_eq!(
        e.series("keel_stream_errors_total"),
        1,
        "a 502 is not a stream error"
    );

    let t = "keel_time_to_first_token_seconds";
    assert_eq!(e.value(&format!("{t}_count"), &fast_b), 2.0);
    assert_close(e.value(&format!("{t}_sum"), &fast_b), 0.35);
    assert_eq!(e.bucket(t, &fast_b, "0.1"), 1.0);
    assert_eq!(e.bucket(t, &fast_b, "0.2"), 1.0);
    assert_eq!(e.bucket(t, &fast_b, "0.35"), 2.0);
    assert_eq!(e.series(&format!("{t}_count")), 1, "embeddings had no ttft");

    // (1250 - 250) ms over 10 tokens after the first; the stream had one token.
    let p = "keel_time_per_output_token_seconds";
    assert_eq!(e.value(&format!("{p}_count"), &fast_b), 1.0);
    assert_close(e.value(&format!("{p}_sum"), &fast_b), 0.1);
    assert_eq!(e.bucket(p, &fast_b, "0.075"), 0.0);
    assert_eq!(e.bucket(p, &fast_b, "0.1"), 1.0);

    let tokens = |route, model, direction| {
        e.get(
            "keel_tokens_total",
            &[("route", route), ("model", model), ("direction", direction)],
        )
    };
    assert_eq!(tokens("fast", "gpt-b", "input"), Some(110.0));
    assert_eq!(tokens("fast", "gpt-b", "output"), Some(12.0));
    assert_eq!(tokens("local-embed", "local-embed", "input"), Some(12.0));
    assert_eq!(tokens("local-embed", "local-embed", "output"), None);
    assert_eq!(e.series("keel_tokens_total"), 3);

    assert_close(e.value("keel_cost_usd_total", &fast_b), 0.002);
    let embed_rm = [("route", "local-embed"), ("model", "local-embed")];
    assert_eq!(e.value("keel_cost_usd_total", &embed_rm), 0.0);

    let attempts = |model, outcome| {
        e.get(
            "keel_upstream_attempts_total",
            &[("route", "fast"), ("model", model), ("outcome", outcome)],
        )
    };
    assert_eq!(attempts("gpt-a", "status_503"), Some(1.0));
    assert_eq!(attempts("gpt-a", "timeout"), Some(1.0));
    assert_eq!(attempts("gpt-b", "ok"), Some(2.0));
    assert_eq!(attempts("gpt-b", "status_500"), Some(1.0));
    assert_eq!(e.series("keel_upstream_attempts_total"), 5);

    let fallbacks = |reason| {
        e.get(
            "keel_fallbacks_total",
            &[("route", "fast"), ("reason", reason)],
        )
    };
    assert_eq!(fallbacks("status_503"), Some(1.0));
    assert_eq!(fallbacks("timeout"), Some(1.0));
    assert_eq!(
        fallbacks("status_500"),
        None,
        "the last attempt is not a fallback"
    );
    assert_eq!(e.series("keel_fallbacks_total"), 2);

    let o = "keel_output_tokens";
    let fast = [("route", "fast")];
    assert_eq!(e.value(&format!("{o}_count"), &fast), 2.0);
    assert_eq!(e.value(&format!("{o}_sum"), &fast), 12.0);
    assert_eq!(e.bucket(o, &fast, "1"), 1.0);
    assert_eq!(e.bucket(o, &fast, "8"), 1.0);
    assert_eq!(e.bucket(o, &fast, "16"), 2.0);
    assert_eq!(e.bucket(o, &fast, "8192"), 2.0);

    assert_eq!(e.value("keel_trust_score_count", &fast), 1.0);
    assert_close(e.value("keel_trust_score_sum", &fast), 0.85);
    assert_eq!(e.bucket("keel_trust_score", &fast, "0.8"), 0.0);
    assert_eq!(e.bucket("keel_trust_score", &fast, "0.9"), 1.0);
    assert_eq!(e.bucket("keel_grounding_score", &fast, "0.4"), 0.0);
    assert_eq!(e.bucket("keel_grounding_score", &fast, "0.5"), 1.0);
    assert_eq!(e.series("keel_grounding_score_bucket"), 10 + 1);
    let redact = [("route", "fast"), ("action", "redact")];
    assert_eq!(e.value("keel_policy_actions_total", &redact), 1.0);
}
