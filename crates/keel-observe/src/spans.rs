//! Building one request's spans as the pipeline runs, following the OpenTelemetry GenAI
//! semantic conventions, and capturing message content per the tenant's [`ContentMode`].
//!
//! Shape of a trace: one SERVER root span named `{gen_ai.operation.name} {gen_ai.request.model}`
//! (the caller's `traceparent` span as its parent when one came in); one INTERNAL child per
//! pipeline stage (`authenticate`, `admit`, `input_policy`, `cache`, `context`, `route`,
//! `attempts`, `output_policy`, `decide`, `respond`); under `attempts`, one CLIENT span per
//! upstream call, named `{operation} {upstream model}`.

use keel_types::openai::ChatCompletionRequest;
use keel_types::trace::{AttrValue, ContentMode, Span, SpanId, SpanKind, TraceId, TraceParent};
use serde_json::Value;
use std::borrow::Cow;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Attribute names of the GenAI semantic conventions (and keel's own `keel.*`).
pub mod attr {
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    pub const RESPONSE_ID: &str = "gen_ai.response.id";
    pub const FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    pub const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub const TEMPERATURE: &str = "gen_ai.request.temperature";
    pub const TOP_P: &str = "gen_ai.request.top_p";
    pub const MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    pub const STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
    pub const SEED: &str = "gen_ai.request.seed";
    pub const CHOICE_COUNT: &str = "gen_ai.request.choice.count";
    pub const OUTPUT_TYPE: &str = "gen_ai.output.type";
    pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
    pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    pub const ERROR_TYPE: &str = "error.type";
    pub const STAGE_OUTCOME: &str = "keel.stage.outcome";
    pub const REQUEST_ID: &str = "keel.request_id";
    pub const ROUTE: &str = "keel.route";
    pub const TENANT: &str = "keel.tenant";
    pub const PROVIDER: &str = "keel.provider";
    pub const ATTEMPT_OUTCOME: &str = "keel.attempt.outcome";
    pub const HTTP_STATUS: &str = "http.response.status_code";
}

/// The ids of one request's trace, fixed when the request arrives.
#[derive(Debug, Clone, Copy)]
pub struct TraceIds {
    pub trace_id: TraceId,
    /// keel's root (SERVER) span.
    pub root: SpanId,
    /// The caller's span from an incoming `traceparent`.
    pub remote_parent: Option<SpanId>,
}

impl TraceIds {
    /// Continues the caller's trace when a valid `traceparent` came in, else starts one.
    pub fn new(parent: Option<TraceParent>) -> Self {
        Self {
            trace_id: parent.map_or_else(TraceId::random, |p| p.trace_id),
            root: SpanId::random(),
            remote_parent: parent.map(|p| p.parent_id),
        }
    }
}

/// Maps monotonic instants to unix nanoseconds through one anchor per request, so span times
/// are consistent with each other even if the wall clock steps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Instant,
    anchor_unix_ns: u64,
}

impl Clock {
    pub fn new(anchor: Instant) -> Self {
        let now = Instant::now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let ago = now.saturating_duration_since(anchor).as_nanos() as u64;
        Self {
            anchor,
            anchor_unix_ns: wall.saturating_sub(ago),
        }
    }

    pub fn unix_ns(&self, t: Instant) -> u64 {
        self.anchor_unix_ns + t.saturating_duration_since(self.anchor).as_nanos() as u64
    }
}

pub type Attrs = Vec<(Cow<'static, str>, AttrValue)>;

/// Collects the spans of one request; [`TraceBuilder::finish`] adds the root span.
#[derive(Debug)]
pub struct TraceBuilder {
    ids: TraceIds,
    clock: Clock,
    received: Instant,
    operation: &'static str,
    request_model: String,
    root_attrs: Attrs,
    spans: Vec<Span>,
}

impl TraceBuilder {
    /// `operation` is `chat` or `embeddings`; `request_model` the name the client asked for.
    pub fn new(
        ids: TraceIds,
        received: Instant,
        operation: &'static str,
        request_model: &str,
    ) -> Self {
        Self {
            ids,
            clock: Clock::new(received),
            received,
            operation,
            request_model: request_model.to_owned(),
            root_attrs: vec![
                (attr::OPERATION_NAME.into(), operation.into()),
                (attr::REQUEST_MODEL.into(), request_model.into()),
            ],
            spans: Vec::with_capacity(12),
        }
    }

    /// Sets (or replaces) an attribute of the root span.
    pub fn root_attr(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<AttrValue>) {
        let (key, value) = (key.into(), value.into());
        match self.root_attrs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.root_attrs.push((key, value)),
        }
    }

    pub fn root_attrs(&mut self, attrs: Attrs) {
        for (k, v) in attrs {
            self.root_attr(k, v);
        }
    }

    /// A finished child span; `parent: None` makes it a child of the root.
    #[allow(clippy::too_many_arguments)]
    pub fn span(
        &mut self,
        id: SpanId,
        parent: Option<SpanId>,
        name: String,
        kind: SpanKind,
        start: Instant,
        end: Instant,
        error: Option<String>,
        attributes: Attrs,
    ) {
        self.spans.push(Span {
            span_id: id,
            parent_span_id: Some(parent.unwrap_or(self.ids.root)),
            name,
            kind,
            start_unix_nanos: self.clock.unix_ns(start),
            end_unix_nanos: self.clock.unix_ns(end.max(start)),
            error,
            attributes,
        });
    }

    /// All spans, the root first. `error` marks the root span as failed.
    pub fn finish(mut self, end: Instant, error: Option<String>) -> Vec<Span> {
        let name = format!("{} {}", self.operation, self.request_model);
        let root = Span {
            span_id: self.ids.root,
            parent_span_id: self.ids.remote_parent,
            name,
            kind: SpanKind::Server,
            start_unix_nanos: self.clock.unix_ns(self.received),
            end_unix_nanos: self.clock.unix_ns(end.max(self.received)),
            error,
            attributes: std::mem::take(&mut self.root_attrs),
        };
        self.spans.insert(0, root);
        self.spans
    }
}

/// The request parameters as `gen_ai.request.*` attributes (only those the client set).
pub fn request_params(req: &ChatCompletionRequest) -> Attrs {
    let mut out: Attrs = Vec::new();
    if let Some(t) = req.temperature {
        out.push((attr::TEMPERATURE.into(), f64::from(t).into()));
    }
    if let Some(p) = req.top_p {
        out.push((attr::TOP_P.into(), f64::from(p).into()));
    }
    if let Some(m) = req.max_output_tokens() {
        out.push((attr::MAX_TOKENS.into(), m.into()));
    }
    let stops = req.stop_sequences();
    if !stops.is_empty() {
        out.push((attr::STOP_SEQUENCES.into(), stops.into()));
    }
    if let Some(s) = req.seed {
        out.push((attr::SEED.into(), AttrValue::Int(s as i64)));
    }
    if let Some(n) = req.n {
        out.push((attr::CHOICE_COUNT.into(), n.into()));
    }
    if let Some(f) = &req.response_format {
        let kind = serde_json::to_value(f)
            .ok()
            .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned));
        let output = match kind.as_deref() {
            Some("json_object" | "json_schema") => "json",
            _ => "text",
        };
        out.push((attr::OUTPUT_TYPE.into(), output.into()));
    }
    out
}

/// Keys whose string values are structure, not content, and survive redaction.
const STRUCTURAL_KEYS: &[&str] = &[
    "role",
    "type",
    "name",
    "id",
    "tool_call_id",
    "finish_reason",
    "object",
    "model",
];

/// Replaces every text in `value` by `[redacted: N chars]`, keeping the shape: roles, tool
/// names, ids and finish reasons stay; message text, tool arguments and answers do not.
pub fn redact(value: &Value) -> Value {
    fn walk(v: &Value, key: Option<&str>) -> Value {
        match v {
            Value::String(s) if key.is_some_and(|k| STRUCTURAL_KEYS.contains(&k)) => {
                Value::String(s.clone())
            }
            Value::String(s) => Value::String(format!("[redacted: {} chars]", s.chars().count())),
            Value::Array(items) => Value::Array(items.iter().map(|i| walk(i, key)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, Some(k.as_str()))))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(value, None)
}

/// What a trace keeps of `value` under `mode`.
pub fn capture(mode: ContentMode, value: Value) -> Option<Value> {
    match mode {
        ContentMode::Full => Some(value),
        ContentMode::Redacted => Some(redact(&value)),
        ContentMode::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn root_span_continues_the_callers_trace() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let ids = TraceIds::new(Some(tp));
        assert_eq!(ids.trace_id, tp.trace_id);
        let t0 = Instant::now();
        let mut b = TraceBuilder::new(ids, t0, "chat", "support");
        let attempts = SpanId::random();
        b.span(
            attempts,
            None,
            "attempts".into(),
            SpanKind::Internal,
            t0 + Duration::from_millis(1),
            t0 + Duration::from_millis(5),
            None,
            vec![],
        );
        b.span(
            SpanId::random(),
            Some(attempts),
            "chat gpt-x".into(),
            SpanKind::Client,
            t0 + Duration::from_millis(2),
            t0 + Duration::from_millis(4),
            Some("status_503".into()),
            vec![],
        );
        let spans = b.finish(t0 + Duration::from_millis(6), None);
        assert_eq!(spans[0].name, "chat support");
        assert_eq!(spans[0].parent_span_id, Some(tp.parent_id));
        assert_eq!(spans[1].parent_span_id, Some(ids.root));
        assert_eq!(spans[2].parent_span_id, Some(attempts));
        assert_eq!(
            spans[2].end_unix_nanos - spans[2].start_unix_nanos,
            2_000_000
        );
        assert_eq!(
            spans[1].start_unix_nanos - spans[0].start_unix_nanos,
            1_000_000
        );
        assert_eq!(
            spans[0].attr(attr::REQUEST_MODEL),
            Some(&AttrValue::from("support"))
        );
    }

    #[test]
    fn redaction_keeps_shape_and_drops_text() {
        let v = serde_json::json!([
            {"role": "user", "content": "my email is a@b.c"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
              "function": {"name": "lookup", "arguments": "{\"q\":\"secret\"}"}}]}
        ]);
        let r = redact(&v);
        assert_eq!(r[0]["role"], "user");
        assert_eq!(r[0]["content"], "[redacted: 17 chars]");
        assert_eq!(r[1]["tool_calls"][0]["function"]["name"], "lookup");
        assert!(!r.to_string().contains("secret"));
        assert_eq!(capture(ContentMode::None, v.clone()), None);
        assert_eq!(capture(ContentMode::Full, v.clone()), Some(v));
    }

    #[test]
    fn request_params_name_only_what_was_set() {
        let req: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [], "temperature": 0.5, "max_tokens": 7,
            "stop": "END", "response_format": {"type": "json_object"}
        }))
        .unwrap();
        let p = request_params(&req);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(
            keys,
            [
                attr::TEMPERATURE,
                attr::MAX_TOKENS,
                attr::STOP_SEQUENCES,
                attr::OUTPUT_TYPE
            ]
        );
        assert_eq!(p[3].1, AttrValue::from("json"));
    }
}
