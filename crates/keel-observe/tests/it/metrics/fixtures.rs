//! Hand-built request-log records and traces.

use keel_observe::metrics::Metrics;
use keel_store::{AttemptRecord, RequestRecord};
use keel_types::trace::{ContentMode, TraceContent, TraceId, TraceRecord};

pub fn attempt(model: &str, outcome: &str) -> AttemptRecord {
    AttemptRecord {
        model: model.into(),
        provider: "p".into(),
        outcome: outcome.into(),
        http_status: outcome.strip_prefix("status_").and_then(|s| s.parse().ok()),
        latency_ms: 10.0,
        error: (outcome != "ok").then(|| "boom".into()),
    }
}

pub fn record(endpoint: &str, route: Option<&str>, attempts: Vec<AttemptRecord>) -> RequestRecord {
    RequestRecord {
        id: "req_1".into(),
        started_at_ms: 0,
        tenant: None,
        key_id: None,
        endpoint: endpoint.into(),
        model_requested: route.unwrap_or("nope").into(),
        route: route.map(Into::into),
        model_served: None,
        route_reason: None,
        stream: false,
        attempts,
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
        ttft_ms: None,
        total_ms: 1.0,
        status: 200,
        error_class: None,
        error_message: None,
    }
}

pub fn trace(trust: f64, grounding: f64, action: &str) -> TraceRecord {
    TraceRecord {
        request_id: "req_1".into(),
        trace_id: TraceId::random(),
        started_at_ms: 0,
        duration_ms: 1.0,
        tenant: None,
        endpoint: "chat.completions".into(),
        route: Some("fast".into()),
        model: Some("gpt-b".into()),
        status: 200,
        error_class: None,
        input_tokens: None,
        output_tokens: None,
        trust_score: Some(trust),
        grounding_score: Some(grounding),
        policy_action: Some(action.into()),
        content_mode: ContentMode::Redacted,
        spans: Vec::new(),
        content: TraceContent::default(),
    }
}

pub fn names() -> Vec<String> {
    ["fast", "gpt-a", "gpt-b", "local-embed"]
        .map(String::from)
        .to_vec()
}

/// A fallback success, a 502 failure, a stream that failed after 200, an embeddings call.
pub fn record_four(m: &Metrics) {
    let mut ok = record(
        "chat.completions",
        Some("fast"),
        vec![attempt("gpt-a", "status_503"), attempt("gpt-b", "ok")],
    );
    (ok.input_tokens, ok.output_tokens, ok.cost_usd) = (Some(100), Some(11), Some(0.002));
    (ok.ttft_ms, ok.total_ms) = (Some(250.0), 1250.0);
    m.record_request(&ok, Some(&trace(0.85, 0.45, "redact")));

    let mut failed = record(
        "chat.completions",
        Some("fast"),
        vec![attempt("gpt-a", "timeout"), attempt("gpt-b", "status_500")],
    );
    (failed.status, failed.total_ms) = (502, 3000.0);
    failed.error_class = Some("upstream_error".into());
    m.record_request(&failed, None);

    let mut stream = record(
        "chat.completions",
        Some("fast"),
        vec![attempt("gpt-b", "ok")],
    );
    stream.stream = true;
    (stream.input_tokens, stream.output_tokens) = (Some(10), Some(1));
    (stream.ttft_ms, stream.total_ms) = (Some(100.0), 5000.0);
    stream.error_class = Some("stream_idle_timeout".into());
    m.record_request(&stream, None);

    let mut embed = record(
        "embeddings",
        Some("local-embed"),
        vec![attempt("local-embed", "ok")],
    );
    (embed.input_tokens, embed.cost_usd, embed.total_ms) = (Some(12), Some(0.0), 8.0);
    m.record_request(&embed, None);
}
