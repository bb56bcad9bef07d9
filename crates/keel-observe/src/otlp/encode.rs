//! keel's spans ([`keel_types::trace::Span`]) as OTLP messages.

use keel_types::trace::{AttrValue, Span, SpanKind, TraceId, TraceRecord};

use super::proto;
use crate::spans::attr;

/// Instrumentation scope name (and `telemetry.sdk.name`) of every exported span.
pub const SCOPE_NAME: &str = "keel";
/// Version of keel reported as `service.version` and as the scope version.
pub const KEEL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One export request holding `spans` (of any number of traces, made by [`otlp_span`]) under a
/// single resource (`service.name` = `service_name`) and a single instrumentation scope.
pub fn export_request(
    service_name: &str,
    spans: impl IntoIterator<Item = proto::Span>,
) -> proto::ExportTraceServiceRequest {
    let resource = proto::Resource {
        attributes: vec![
            key_value("service.name", string(service_name)),
            key_value("service.version", string(KEEL_VERSION)),
            key_value("telemetry.sdk.name", string(SCOPE_NAME)),
        ],
    };
    let scope_spans = proto::ScopeSpans {
        scope: Some(proto::InstrumentationScope {
            name: SCOPE_NAME.to_owned(),
            version: KEEL_VERSION.to_owned(),
        }),
        spans: spans.into_iter().collect(),
    };
    proto::ExportTraceServiceRequest {
        resource_spans: vec![proto::ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![scope_spans],
        }],
    }
}

/// One span: ids as raw bytes (an absent parent is empty), times in unix nanoseconds, status
/// `ERROR` with the message when the span failed, otherwise no status (`UNSET`).
pub fn otlp_span(trace_id: TraceId, span: &Span) -> proto::Span {
    proto::Span {
        trace_id: trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        parent_span_id: span
            .parent_span_id
            .map(|p| p.0.to_vec())
            .unwrap_or_default(),
        name: span.name.clone(),
        kind: span_kind(span.kind) as i32,
        start_time_unix_nano: span.start_unix_nanos,
        end_time_unix_nano: span.end_unix_nanos,
        attributes: span
            .attributes
            .iter()
            .map(|(k, v)| key_value(k, any_value(v)))
            .collect(),
        status: span.error.as_ref().map(|message| proto::Status {
            message: message.clone(),
            code: proto::StatusCode::Error as i32,
        }),
    }
}

/// `gen_ai.input.messages` and `gen_ai.output.messages` (JSON text) for the root span, from the
/// content `trace` kept under its tenant's content mode: nothing when that mode kept none.
pub fn content_attributes(trace: &TraceRecord) -> Vec<proto::KeyValue> {
    let content = &trace.content;
    [
        (attr::INPUT_MESSAGES, &content.messages),
        (attr::OUTPUT_MESSAGES, &content.response),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        let text = value.as_ref()?.to_string();
        let value = proto::AnyValue {
            value: Some(proto::any_value::Value::StringValue(text)),
        };
        Some(key_value(key, value))
    })
    .collect()
}

fn span_kind(kind: SpanKind) -> proto::SpanKind {
    match kind {
        SpanKind::Server => proto::SpanKind::Server,
        SpanKind::Client => proto::SpanKind::Client,
        SpanKind::Internal => proto::SpanKind::Internal,
    }
}

fn any_value(v: &AttrValue) -> proto::AnyValue {
    use proto::any_value::Value;
    let value = match v {
        AttrValue::Bool(b) => Value::BoolValue(*b),
        AttrValue::Int(i) => Value::IntValue(*i),
        AttrValue::Float(f) => Value::DoubleValue(*f),
        AttrValue::Str(s) => Value::StringValue(s.clone()),
        AttrValue::StrList(items) => Value::ArrayValue(proto::ArrayValue {
            values: items.iter().map(|s| string(s)).collect(),
        }),
    };
    proto::AnyValue { value: Some(value) }
}

fn string(s: &str) -> proto::AnyValue {
    proto::AnyValue {
        value: Some(proto::any_value::Value::StringValue(s.to_owned())),
    }
}

fn key_value(key: &str, value: proto::AnyValue) -> proto::KeyValue {
    proto::KeyValue {
        key: key.to_owned(),
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_types::trace::SpanId;
    use opentelemetry_proto::tonic::collector::trace::v1 as official;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as OValue;
    use prost::Message;

    fn span(error: Option<&str>, parent: Option<SpanId>) -> Span {
        Span {
            span_id: SpanId([1, 2, 3, 4, 5, 6, 7, 8]),
            parent_span_id: parent,
            name: "chat gpt-x".into(),
            kind: SpanKind::Client,
            start_unix_nanos: 1_700_000_000_000_000_001,
            end_unix_nanos: 1_700_000_000_500_000_002,
            error: error.map(str::to_owned),
            attributes: vec![
                ("s".into(), AttrValue::Str("v".into())),
                ("b".into(), AttrValue::Bool(true)),
                ("i".into(), AttrValue::Int(-7)),
                ("f".into(), AttrValue::Float(0.25)),
                ("l".into(), AttrValue::StrList(vec!["a".into(), "b".into()])),
            ],
        }
    }

    #[test]
    fn decodes_with_the_official_types() {
        let trace_id = TraceId([9; 16]);
        let parent = SpanId([3; 8]);
        let spans = [span(Some("boom"), Some(parent)), span(None, None)];
        let req = export_request("svc", spans.iter().map(|s| otlp_span(trace_id, s)));
        let bytes = req.encode_to_vec();
        let got = official::ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();

        assert_eq!(got.resource_spans.len(), 1);
        let rs = &got.resource_spans[0];
        let res = rs.resource.as_ref().unwrap();
        let keys: Vec<_> = res.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(
            keys,
            ["service.name", "service.version", "telemetry.sdk.name"]
        );
        let ss = &rs.scope_spans[0];
        let scope = ss.scope.as_ref().unwrap();
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("keel", KEEL_VERSION)
        );
        assert_eq!(ss.spans.len(), 2);

        let s = &ss.spans[0];
        assert_eq!(s.trace_id, vec![9; 16]);
        assert_eq!(s.span_id, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(s.parent_span_id, vec![3; 8]);
        assert_eq!(s.name, "chat gpt-x");
        assert_eq!(s.kind, 3);
        assert_eq!(s.start_time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(s.end_time_unix_nano, 1_700_000_000_500_000_002);
        let status = s.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "boom"));
        let values: Vec<_> = s
            .attributes
            .iter()
            .map(|kv| kv.value.as_ref().unwrap().value.clone().unwrap())
            .collect();
        assert_eq!(values[0], OValue::StringValue("v".into()));
        assert_eq!(values[1], OValue::BoolValue(true));
        assert_eq!(values[2], OValue::IntValue(-7));
        assert_eq!(values[3], OValue::DoubleValue(0.25));
        let OValue::ArrayValue(list) = &values[4] else {
            panic!("not an array: {:?}", values[4]);
        };
        assert_eq!(list.values.len(), 2);

        let root = &ss.spans[1];
        assert!(root.parent_span_id.is_empty());
        assert!(root.status.as_ref().is_none_or(|s| s.code == 0));
    }

    #[test]
    fn content_attributes_carry_what_the_trace_kept() {
        let mut trace: TraceRecord = serde_json::from_value(serde_json::json!({
            "request_id": "req_1", "trace_id": "0102030405060708090a0b0c0d0e0f10",
            "started_at_ms": 0, "duration_ms": 1.0, "endpoint": "chat.completions",
            "status": 200, "content_mode": "full", "spans": [], "content": {"attempts": []}
        }))
        .unwrap();
        assert!(
            content_attributes(&trace).is_empty(),
            "nothing kept, nothing sent"
        );
        trace.content.messages = Some(serde_json::json!([{"role": "user", "content": "hi"}]));
        trace.content.response = Some(serde_json::json!({"role": "assistant", "content": "yo"}));
        let got: Vec<_> = content_attributes(&trace)
            .into_iter()
            .map(|kv| (kv.key, kv.value.unwrap().value.unwrap()))
            .collect();
        let text = |s: &str| proto::any_value::Value::StringValue(s.to_owned());
        assert_eq!(
            got,
            [
                (
                    attr::INPUT_MESSAGES.to_owned(),
                    text(r#"[{"content":"hi","role":"user"}]"#)
                ),
                (
                    attr::OUTPUT_MESSAGES.to_owned(),
                    text(r#"{"content":"yo","role":"assistant"}"#)
                ),
            ]
        );
    }

    #[test]
    fn kinds_map_to_otlp_numbers() {
        assert_eq!(span_kind(SpanKind::Internal) as i32, 1);
        assert_eq!(span_kind(SpanKind::Server) as i32, 2);
        assert_eq!(span_kind(SpanKind::Client) as i32, 3);
    }
}
