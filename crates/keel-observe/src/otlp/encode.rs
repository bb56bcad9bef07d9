//! keel's spans ([`keel_types::trace::Span`]) written straight into an OTLP
//! `ExportTraceServiceRequest`, with no intermediate message tree.
//!
//! Field numbers follow the official `opentelemetry-proto` definitions:
//! `collector/trace/v1/trace_service.proto`, `trace/v1/trace.proto`,
//! `resource/v1/resource.proto` and `common/v1/common.proto`. Fields keel never sets (trace
//! state, flags, events, links, dropped counts, schema urls, key-value lists, bytes values) are
//! left out; a decoder treats them as absent. The bytes are those `prost` writes for the same
//! request built from the official generated types (the tests hold them equal).

use keel_types::trace::{AttrValue, Span, SpanKind, TraceId, TraceRecord};

use super::wire::{self, bytes_field_len, fixed64_field_len, len_field_len, varint_field_len};
use crate::spans::attr;

/// Instrumentation scope name (and `telemetry.sdk.name`) of every exported span.
pub const SCOPE_NAME: &str = "keel";
/// Version of keel reported as `service.version` and as the scope version.
pub const KEEL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One span to export: its trace, the span, and string attributes to add after its own (the
/// trace's content on a root span, see [`content_attributes`]).
#[derive(Clone, Copy)]
pub struct SpanRef<'a> {
    pub trace_id: TraceId,
    pub span: &'a Span,
    pub extra: &'a [(&'static str, String)],
}

/// The protobuf bytes of one export request holding `spans` (of any number of traces) under a
/// single resource (`service.name` = `service_name`) and a single instrumentation scope.
///
/// Span ids are raw bytes (an absent parent is left out), times unix nanoseconds; a failed span
/// has status `ERROR` with its message, any other no status (`UNSET`).
pub fn export_request<'a>(
    service_name: &str,
    spans: impl IntoIterator<Item = SpanRef<'a>>,
) -> Vec<u8> {
    // The spans first: the lengths of the messages around them depend on theirs.
    let mut body = Vec::new();
    for span in spans {
        write_span(&mut body, &span);
    }
    let resource = [
        ("service.name", service_name),
        ("service.version", KEEL_VERSION),
        ("telemetry.sdk.name", SCOPE_NAME),
    ];
    let resource_len: usize = resource
        .iter()
        .map(|(k, v)| len_field_len(string_kv_len(k, v)))
        .sum();
    let scope_len = bytes_field_len(SCOPE_NAME.len()) + bytes_field_len(KEEL_VERSION.len());
    let scope_spans_len = len_field_len(scope_len) + body.len();
    let resource_spans_len = len_field_len(resource_len) + len_field_len(scope_spans_len);

    let mut out = Vec::with_capacity(len_field_len(resource_spans_len));
    // ExportTraceServiceRequest.resource_spans = 1
    wire::len_prefix(&mut out, 1, resource_spans_len);
    // ResourceSpans.resource = 1, Resource.attributes = 1
    wire::len_prefix(&mut out, 1, resource_len);
    for (k, v) in resource {
        write_string_kv(&mut out, 1, k, v);
    }
    // ResourceSpans.scope_spans = 2, ScopeSpans.scope = 1 (name = 1, version = 2)
    wire::len_prefix(&mut out, 2, scope_spans_len);
    wire::len_prefix(&mut out, 1, scope_len);
    wire::bytes(&mut out, 1, SCOPE_NAME.as_bytes());
    wire::bytes(&mut out, 2, KEEL_VERSION.as_bytes());
    // ScopeSpans.spans = 2, already written with their keys.
    out.extend_from_slice(&body);
    out
}

/// `gen_ai.input.messages` and `gen_ai.output.messages` (JSON text) for the root span, from the
/// content `trace` kept under its tenant's content mode: nothing when that mode kept none.
pub fn content_attributes(trace: &TraceRecord) -> Vec<(&'static str, String)> {
    let content = &trace.content;
    [
        (attr::INPUT_MESSAGES, &content.messages),
        (attr::OUTPUT_MESSAGES, &content.response),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key, value.as_ref()?.to_string())))
    .collect()
}

/// `ScopeSpans.spans` (field 2) holding one `Span`.
fn write_span(buf: &mut Vec<u8>, s: &SpanRef<'_>) {
    let span = s.span;
    let kind = span_kind(span.kind);
    let mut len = bytes_field_len(s.trace_id.0.len())
        + bytes_field_len(span.span_id.0.len())
        + span
            .parent_span_id
            .map_or(0, |p| bytes_field_len(p.0.len()))
        + bytes_field_len(span.name.len())
        + varint_field_len(kind)
        + fixed64_field_len(span.start_unix_nanos)
        + fixed64_field_len(span.end_unix_nanos)
        + span
            .error
            .as_ref()
            .map_or(0, |m| len_field_len(status_len(m)));
    for (k, v) in &span.attributes {
        len += len_field_len(attr_kv_len(k, v));
    }
    for (k, v) in s.extra {
        len += len_field_len(string_kv_len(k, v));
    }

    wire::len_prefix(buf, 2, len);
    let start = buf.len();
    wire::bytes(buf, 1, &s.trace_id.0);
    wire::bytes(buf, 2, &span.span_id.0);
    if let Some(parent) = span.parent_span_id {
        wire::bytes(buf, 4, &parent.0);
    }
    wire::bytes(buf, 5, span.name.as_bytes());
    wire::varint_field(buf, 6, kind);
    wire::fixed64(buf, 7, span.start_unix_nanos);
    wire::fixed64(buf, 8, span.end_unix_nanos);
    for (k, v) in &span.attributes {
        // Span.attributes = 9: KeyValue { key = 1, value = 2 }
        wire::len_prefix(buf, 9, attr_kv_len(k, v));
        wire::bytes(buf, 1, k.as_bytes());
        wire::len_prefix(buf, 2, any_value_len(v));
        write_any_value(buf, v);
    }
    for (k, v) in s.extra {
        write_string_kv(buf, 9, k, v);
    }
    if let Some(message) = &span.error {
        // Span.status = 15: Status { message = 2, code = 3 (ERROR = 2) }
        wire::len_prefix(buf, 15, status_len(message));
        wire::bytes(buf, 2, message.as_bytes());
        wire::varint_field(buf, 3, STATUS_ERROR);
    }
    debug_assert_eq!(buf.len() - start, len, "span length computed wrong");
}

const STATUS_ERROR: u64 = 2;

fn status_len(message: &str) -> usize {
    bytes_field_len(message.len()) + varint_field_len(STATUS_ERROR)
}

/// OTLP's `Span.SpanKind` numbers.
fn span_kind(kind: SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
    }
}

/// The length of an `AnyValue` holding `v` (its oneof member is written even when default).
fn any_value_len(v: &AttrValue) -> usize {
    match v {
        AttrValue::Str(s) => len_field_len(s.len()),
        AttrValue::Bool(_) => 2,
        AttrValue::Int(i) => 1 + wire::varint_len(*i as u64),
        AttrValue::Float(_) => 9,
        AttrValue::StrList(items) => len_field_len(array_len(items)),
    }
}

/// The length of an `ArrayValue` of string `AnyValue`s.
fn array_len(items: &[String]) -> usize {
    items
        .iter()
        .map(|s| len_field_len(len_field_len(s.len())))
        .sum()
}

/// `AnyValue { string_value = 1, bool_value = 2, int_value = 3, double_value = 4,
/// array_value = 5 }`.
fn write_any_value(buf: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => wire::bytes_always(buf, 1, s.as_bytes()),
        AttrValue::Bool(b) => wire::varint_field_always(buf, 2, u64::from(*b)),
        AttrValue::Int(i) => wire::varint_field_always(buf, 3, *i as u64),
        AttrValue::Float(f) => wire::fixed64_always(buf, 4, f.to_bits()),
        AttrValue::StrList(items) => {
            // ArrayValue.values = 1
            wire::len_prefix(buf, 5, array_len(items));
            for s in items {
                wire::len_prefix(buf, 1, len_field_len(s.len()));
                wire::bytes_always(buf, 1, s.as_bytes());
            }
        }
    }
}

/// The length of a `KeyValue` holding an attribute.
fn attr_kv_len(key: &str, value: &AttrValue) -> usize {
    bytes_field_len(key.len()) + len_field_len(any_value_len(value))
}

/// The length of a `KeyValue` whose value is a string `AnyValue`.
fn string_kv_len(key: &str, value: &str) -> usize {
    bytes_field_len(key.len()) + len_field_len(len_field_len(value.len()))
}

/// A `KeyValue` with a string value, as field `field` of the message being written.
fn write_string_kv(buf: &mut Vec<u8>, field: u8, key: &str, value: &str) {
    wire::len_prefix(buf, field, string_kv_len(key, value));
    wire::bytes(buf, 1, key.as_bytes());
    wire::len_prefix(buf, 2, len_field_len(value.len()));
    wire::bytes_always(buf, 1, value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_types::trace::SpanId;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest as OReq;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value as OValue,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OSpan, Status};
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

    /// Spans at the edges: defaults everywhere, values whose lengths take 1, 2 and 3 bytes.
    fn odd_spans() -> Vec<Span> {
        let long = "x".repeat(20_000);
        let mut defaults = span(Some(""), None);
        defaults.name = String::new();
        defaults.kind = SpanKind::Internal;
        defaults.start_unix_nanos = 0;
        defaults.end_unix_nanos = 0;
        defaults.attributes = vec![
            (String::new().into(), AttrValue::Str(String::new())),
            ("false".into(), AttrValue::Bool(false)),
            ("zero".into(), AttrValue::Int(0)),
            ("min".into(), AttrValue::Int(i64::MIN)),
            ("max".into(), AttrValue::Int(i64::MAX)),
            ("nan".into(), AttrValue::Float(f64::NAN)),
            ("-0".into(), AttrValue::Float(-0.0)),
            ("none".into(), AttrValue::StrList(Vec::new())),
            ("blank".into(), AttrValue::StrList(vec![String::new()])),
        ];
        let mut big = span(Some(&long[..300]), Some(SpanId([7; 8])));
        big.kind = SpanKind::Server;
        big.name = long[..130].to_owned();
        big.attributes
            .push(("long".into(), AttrValue::Str(long.clone())));
        big.attributes
            .push(("longs".into(), AttrValue::StrList(vec![long.clone(), long])));
        vec![defaults, big, span(None, None)]
    }

    /// The same request built from the official generated types, as the reference.
    fn official(service: &str, spans: &[SpanRef<'_>]) -> OReq {
        let text = |s: &str| AnyValue {
            value: Some(OValue::StringValue(s.to_owned())),
        };
        let kv = |k: &str, value: AnyValue| KeyValue {
            key: k.to_owned(),
            value: Some(value),
        };
        let value = |v: &AttrValue| AnyValue {
            value: Some(match v {
                AttrValue::Bool(b) => OValue::BoolValue(*b),
                AttrValue::Int(i) => OValue::IntValue(*i),
                AttrValue::Float(f) => OValue::DoubleValue(*f),
                AttrValue::Str(s) => OValue::StringValue(s.clone()),
                AttrValue::StrList(items) => OValue::ArrayValue(ArrayValue {
                    values: items.iter().map(|s| text(s)).collect(),
                }),
            }),
        };
        let spans = spans
            .iter()
            .map(|s| OSpan {
                trace_id: s.trace_id.0.to_vec(),
                span_id: s.span.span_id.0.to_vec(),
                parent_span_id: s
                    .span
                    .parent_span_id
                    .map(|p| p.0.to_vec())
                    .unwrap_or_default(),
                name: s.span.name.clone(),
                kind: span_kind(s.span.kind) as i32,
                start_time_unix_nano: s.span.start_unix_nanos,
                end_time_unix_nano: s.span.end_unix_nanos,
                attributes: (s.span.attributes.iter().map(|(k, v)| kv(k, value(v))))
                    .chain(s.extra.iter().map(|(k, v)| kv(k, text(v))))
                    .collect(),
                status: s.span.error.as_ref().map(|m| Status {
                    message: m.clone(),
                    code: 2,
                }),
                ..Default::default()
            })
            .collect();
        OReq {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", text(service)),
                        kv("service.version", text(KEEL_VERSION)),
                        kv("telemetry.sdk.name", text(SCOPE_NAME)),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.to_owned(),
                        version: KEEL_VERSION.to_owned(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn bytes_equal_what_prost_writes_for_the_official_types() {
        let odd = odd_spans();
        let plain = [span(Some("boom"), Some(SpanId([3; 8]))), span(None, None)];
        let content = [
            (attr::INPUT_MESSAGES, r#"[{"role":"user"}]"#.to_owned()),
            (attr::OUTPUT_MESSAGES, "y".repeat(200)),
        ];
        let refs: Vec<_> = (odd.iter().map(|span| (TraceId([1; 16]), span)))
            .chain(plain.iter().map(|span| (TraceId([9; 16]), span)))
            .enumerate()
            .map(|(i, (trace_id, span))| SpanRef {
                trace_id,
                span,
                extra: if i % 2 == 0 { &content } else { &[] },
            })
            .collect();
        for (service, spans) in [
            ("svc", &refs[..]),
            ("", &refs[..0]),
            (&*"s".repeat(150), &refs[3..]),
        ] {
            let ours = export_request(service, spans.iter().copied());
            let reference = official(service, spans).encode_to_vec();
            assert_eq!(ours.len(), reference.len(), "{} spans", spans.len());
            assert!(ours == reference, "bytes differ with {} spans", spans.len());
            // Decoded and written again by the official types (NaN != NaN, so not compared
            // as values): nothing was lost or left over.
            let decoded = OReq::decode(ours.as_slice()).unwrap();
            assert!(decoded.encode_to_vec() == ours);
        }
    }

    #[test]
    fn decodes_with_the_official_types() {
        let trace_id = TraceId([9; 16]);
        let spans = [span(Some("boom"), Some(SpanId([3; 8]))), span(None, None)];
        let refs = spans.iter().map(|span| SpanRef {
            trace_id,
            span,
            extra: &[],
        });
        let bytes = export_request("svc", refs);
        let got = OReq::decode(bytes.as_slice()).unwrap();

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
        assert_eq!(
            content_attributes(&trace),
            [
                (
                    attr::INPUT_MESSAGES,
                    r#"[{"content":"hi","role":"user"}]"#.to_owned()
                ),
                (
                    attr::OUTPUT_MESSAGES,
                    r#"{"content":"yo","role":"assistant"}"#.to_owned()
                ),
            ]
        );
    }

    #[test]
    fn kinds_map_to_otlp_numbers() {
        use opentelemetry_proto::tonic::trace::v1::span::SpanKind as Official;
        assert_eq!(span_kind(SpanKind::Internal), Official::Internal as u64);
        assert_eq!(span_kind(SpanKind::Server), Official::Server as u64);
        assert_eq!(span_kind(SpanKind::Client), Official::Client as u64);
    }
}
