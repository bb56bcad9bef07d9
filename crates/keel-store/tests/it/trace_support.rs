//! Trace builders for the trace conformance suite and the writer tests.

use keel_types::trace::{
    AttrValue, ContentMode, Span, SpanId, SpanKind, TraceContent, TraceId, TraceRecord,
};
use serde_json::json;

fn span(id: u8, parent: Option<u8>, name: &str, kind: SpanKind) -> Span {
    Span {
        span_id: SpanId([0, 0, 0, 0, 0, 0, 0, id]),
        parent_span_id: parent.map(|p| SpanId([0, 0, 0, 0, 0, 0, 0, p])),
        name: name.to_owned(),
        kind,
        start_unix_nanos: 1_700_000_000_123_456_789,
        end_unix_nanos: u64::MAX,
        error: None,
        attributes: Vec::new(),
    }
}

/// A trace with every field set: spans of every kind carrying every `AttrValue` kind (with
/// awkward floats and strings), and content with messages, response, retrieval, policy,
/// attempts, stages and a decision.
pub fn full_trace(id: &str, tenant: Option<&str>, started_at_ms: i64) -> TraceRecord {
    let mut root = span(1, None, "chat support", SpanKind::Server);
    root.parent_span_id = Some(SpanId([0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88]));
    root.attributes = vec![
        ("gen_ai.operation.name".into(), AttrValue::from("chat")),
        ("keel.stream".into(), AttrValue::Bool(true)),
        ("keel.flag".into(), AttrValue::Bool(false)),
        ("gen_ai.usage.input_tokens".into(), AttrValue::Int(i64::MAX)),
        ("keel.negative".into(), AttrValue::Int(i64::MIN)),
        (
            "gen_ai.request.temperature".into(),
            AttrValue::Float(0.1 + 0.2),
        ),
        ("keel.tiny".into(), AttrValue::Float(5e-324)),
        (
            "keel.precise".into(),
            AttrValue::Float(12_345.678_901_234_567),
        ),
        ("keel.whole_float".into(), AttrValue::Float(2.0)),
        (
            "gen_ai.response.finish_reasons".into(),
            AttrValue::StrList(vec!["stop".to_owned(), "length".to_owned()]),
        ),
        ("keel.empty_list".into(), AttrValue::StrList(Vec::new())),
        (
            "keel.text".into(),
            AttrValue::Str("«quoted» \"x\" \n\t nul:\0 ✓ 🦀".to_owned()),
        ),
    ];
    let mut stage = span(2, Some(1), "route", SpanKind::Internal);
    stage.start_unix_nanos = 0;
    stage.end_unix_nanos = 1;
    let mut attempt = span(3, Some(1), "chat gpt-4o-mini", SpanKind::Client);
    attempt.error = Some("upstream 503: busy\0".to_owned());
    attempt.attributes = vec![("http.response.status_code".into(), AttrValue::Int(503))];
    TraceRecord {
        request_id: id.to_owned(),
        trace_id: TraceId([
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ]),
        started_at_ms,
        duration_ms: 1_234.567_891_234,
        tenant: tenant.map(str::to_owned),
        endpoint: "chat.completions".to_owned(),
        route: Some("support".to_owned()),
        model: Some("gpt-4o-mini".to_owned()),
        status: 200,
        error_class: Some("stream_error".to_owned()),
        input_tokens: Some(u32::MAX),
        output_tokens: Some(0),
        trust_score: Some(0.731_234_567_89),
        grounding_score: Some(0.0),
        policy_action: Some("redact".to_owned()),
        content_mode: ContentMode::Full,
        spans: vec![root, stage, attempt],
        content: TraceContent {
            messages: Some(json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello \u{0} «world» 🦀"},
            ])),
            response: Some(json!([{"role": "assistant", "content": "hi", "n": 1.5e300}])),
            retrieved: vec![
                json!({"chunk": "c1", "score": 0.25}),
                json!({"chunk": "c2"}),
            ],
            policy: vec![json!({"rule": "pii", "action": "redact"})],
            attempts: json!([
                {"model": "primary", "outcome": "status_503", "latency_ms": 12.25},
                {"model": "secondary", "outcome": "ok", "latency_ms": 0.125},
            ]),
            stages: json!([{"stage": "route", "outcome": "ok"}, {"stage": "cache", "outcome": "pass"}]),
            decision: Some(json!({"action": "serve", "reason": null})),
        },
    }
}

/// A trace with every optional field `None`, no spans and default content.
pub fn minimal_trace(id: &str, tenant: Option<&str>, started_at_ms: i64) -> TraceRecord {
    TraceRecord {
        request_id: id.to_owned(),
        trace_id: TraceId([1; 16]),
        started_at_ms,
        duration_ms: 0.0,
        tenant: tenant.map(str::to_owned),
        endpoint: "embeddings".to_owned(),
        route: None,
        model: None,
        status: 429,
        error_class: None,
        input_tokens: None,
        output_tokens: None,
        trust_score: None,
        grounding_score: None,
        policy_action: None,
        content_mode: ContentMode::None,
        spans: Vec::new(),
        content: TraceContent::default(),
    }
}
