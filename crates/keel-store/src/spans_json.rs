//! A trace's spans as the JSON text the trace store keeps (`spans_json`), written directly.
//!
//! The text is byte for byte what `serde_json::to_string(&spans)` writes (the tests hold it to
//! that), so it reads back with serde like any other row; only the way there is cheaper. With
//! serde every string goes through the escaper a byte at a time and every field through the
//! generic serializer, which made this the largest single cost of keeping a trace. Here ids are
//! written as hex (`SpanId::hex`), numbers with `itoa`, and a string is copied whole unless it holds a byte JSON
//! must escape, in which case serde_json writes that one string. Floats go through serde_json.
//!
//! Non-finite floats are written as the strings `"NaN"`, `"inf"` and `"-inf"` (JSON has no
//! such numbers; see `TraceStore`).

use keel_types::trace::{AttrValue, Span, SpanKind};

/// The spans' JSON (see the module docs).
pub(crate) fn spans_json(spans: &[Span]) -> String {
    let mut out = String::with_capacity(spans.len() * 320);
    out.push('[');
    for (i, span) in spans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_span(&mut out, span);
    }
    out.push(']');
    out
}

fn write_span(out: &mut String, s: &Span) {
    let mut hex = [0; 16];
    out.push_str("{\"span_id\":\"");
    out.push_str(s.span_id.hex(&mut hex));
    if let Some(parent) = s.parent_span_id {
        out.push_str("\",\"parent_span_id\":\"");
        out.push_str(parent.hex(&mut hex));
    }
    out.push_str("\",\"name\":");
    push_str(out, &s.name);
    out.push_str(",\"kind\":\"");
    out.push_str(match s.kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Internal => "internal",
    });
    out.push_str("\",\"start_unix_nanos\":");
    out.push_str(itoa::Buffer::new().format(s.start_unix_nanos));
    out.push_str(",\"end_unix_nanos\":");
    out.push_str(itoa::Buffer::new().format(s.end_unix_nanos));
    if let Some(error) = &s.error {
        out.push_str(",\"error\":");
        push_str(out, error);
    }
    out.push_str(",\"attributes\":[");
    for (i, (key, value)) in s.attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_str(out, key);
        out.push(',');
        push_value(out, value);
        out.push(']');
    }
    out.push_str("]}");
}

fn push_value(out: &mut String, v: &AttrValue) {
    match v {
        AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttrValue::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        AttrValue::Float(f) if f.is_nan() => out.push_str("\"NaN\""),
        AttrValue::Float(f) if f.is_infinite() => {
            out.push_str(if *f > 0.0 { "\"inf\"" } else { "\"-inf\"" });
        }
        AttrValue::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
        AttrValue::Str(s) => push_str(out, s),
        AttrValue::StrList(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(out, item);
            }
            out.push(']');
        }
    }
}

/// `s` as a JSON string: copied whole when no byte needs escaping, else written by serde_json.
fn push_str(out: &mut String, s: &str) {
    // `|` over every byte, not `any`, so the check has no early exit and vectorizes.
    let escape = s
        .bytes()
        .fold(false, |e, b| e | (b < 0x20) | (b == b'"') | (b == b'\\'));
    if escape {
        out.push_str(&serde_json::Value::from(s).to_string());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_types::trace::SpanId;

    fn span(name: &str, parent: Option<SpanId>, error: Option<&str>) -> Span {
        Span {
            span_id: SpanId([0xde, 0xad, 0xbe, 0xef, 0, 1, 0x0a, 0xff]),
            parent_span_id: parent,
            name: name.to_owned(),
            kind: SpanKind::Client,
            start_unix_nanos: 1_796_664_217_602_959_444,
            end_unix_nanos: u64::MAX,
            error: error.map(str::to_owned),
            attributes: vec![
                ("gen_ai.operation.name".into(), "chat".into()),
                ("keel.quote\"d".into(), AttrValue::Str("back\\slash".into())),
                (
                    "ctl".into(),
                    AttrValue::Str("tab\there\nnl \u{1} \u{7f} é 日本".into()),
                ),
                ("b".into(), AttrValue::Bool(false)),
                ("t".into(), AttrValue::Bool(true)),
                ("i".into(), AttrValue::Int(i64::MIN)),
                ("j".into(), AttrValue::Int(0)),
                ("f".into(), AttrValue::Float(0.1)),
                ("g".into(), AttrValue::Float(1.0)),
                ("h".into(), AttrValue::Float(-1.5e300)),
                ("k".into(), AttrValue::Float(5e-324)),
                (
                    "l".into(),
                    AttrValue::StrList(vec!["stop".into(), "le\"ngth".into()]),
                ),
                ("e".into(), AttrValue::StrList(Vec::new())),
                (String::new().into(), AttrValue::Str(String::new())),
            ],
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let mut root = span("chat mock-gpt", None, None);
        root.kind = SpanKind::Server;
        let mut stage = span(
            "input_policy",
            Some(SpanId([1; 8])),
            Some("blocked: \"pii\""),
        );
        stage.kind = SpanKind::Internal;
        stage.attributes.clear();
        let spans = vec![root, stage, span("chat gpt-x", Some(SpanId([2; 8])), None)];
        assert_eq!(spans_json(&spans), serde_json::to_string(&spans).unwrap());
        assert_eq!(spans_json(&[]), "[]");
    }

    #[test]
    fn non_finite_floats_are_written_as_strings() {
        let mut s = span("x", None, None);
        s.attributes = vec![
            ("nan".into(), AttrValue::Float(f64::NAN)),
            ("inf".into(), AttrValue::Float(f64::INFINITY)),
            ("ninf".into(), AttrValue::Float(f64::NEG_INFINITY)),
        ];
        let json = spans_json(&[s]);
        assert!(
            json.ends_with(r#""attributes":[["nan","NaN"],["inf","inf"],["ninf","-inf"]]}]"#),
            "{json}"
        );
        let back: Vec<Span> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0].attr("nan"), Some(&AttrValue::Str("NaN".into())));
    }
}
