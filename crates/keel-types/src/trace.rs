//! Traces: what keel did for one request, as OpenTelemetry-shaped spans plus the record of
//! what the model saw. One [`TraceRecord`] per request feeds the OTLP exporter, the trace
//! store and the drift monitor; the same value is what `GET /v1/traces/{id}` returns.
//!
//! Span and trace ids are W3C Trace Context ids (16 and 8 bytes, lower-case hex on the wire).

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A 16-byte W3C trace id. All zeros is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte W3C span id. All zeros is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

// Ids come from the thread-local CSPRNG (seeded once from the OS), not a syscall per id: a
// request makes a dozen of them.
impl TraceId {
    pub fn random() -> Self {
        let mut b: [u8; 16] = rand::random();
        if b == [0; 16] {
            b[15] = 1;
        }
        Self(b)
    }
}

impl SpanId {
    pub fn random() -> Self {
        let mut b: [u8; 8] = rand::random();
        if b == [0; 8] {
            b[7] = 1;
        }
        Self(b)
    }
}

/// `bytes` as lower-case hex in `out` (twice as long). A table lookup per nibble and one
/// write: ids are formatted several times per request (logs, the `keel` report, spans), and
/// a `write!("{:02x}")` per byte cost more than the rest of building a span.
fn hex<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, o) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        o[0] = DIGITS[usize::from(b >> 4)];
        o[1] = DIGITS[usize::from(b & 0xf)];
    }
    // Only ASCII digits were written.
    std::str::from_utf8(out).unwrap_or_default()
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    (out != [0u8; N]).then_some(out)
}

macro_rules! hex_id {
    ($t:ident, $n:literal) => {
        impl $t {
            /// Parses lower-case hex of the exact length; rejects all zeros.
            pub fn parse(s: &str) -> Option<Self> {
                parse_hex::<$n>(s).map(Self)
            }
            /// The lower-case hex of the id, written into `buf` (no allocation).
            pub fn hex<'a>(&self, buf: &'a mut [u8; $n * 2]) -> &'a str {
                hex(&self.0, buf)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(hex(&self.0, &mut [0; $n * 2]))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(hex(&self.0, &mut [0; $n * 2]))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s)
                    .ok_or_else(|| serde::de::Error::custom(concat!("invalid ", stringify!($t))))
            }
        }
    };
}
hex_id!(TraceId, 16);
hex_id!(SpanId, 8);

/// An incoming (or outgoing) W3C `traceparent` header: `00-{trace id}-{parent id}-{flags}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub parent_id: SpanId,
    pub sampled: bool,
}

impl TraceParent {
    /// Parses a `traceparent` value. Version `ff` and malformed values are rejected (the
    /// caller then starts a new trace, as the W3C spec asks); unknown future versions are
    /// read by their first four fields.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.split('-');
        let version = parts.next()?;
        let trace_id = TraceId::parse(parts.next()?)?;
        let parent_id = SpanId::parse(parts.next()?)?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || flags.len() != 2 {
            return None;
        }
        let version = u8::from_str_radix(version, 16).ok()?;
        if version == 0 && parts.next().is_some() {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(Self {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.parent_id,
            u8::from(self.sampled)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// The request keel serves (the root span).
    Server,
    /// A call keel makes to an upstream model.
    Client,
    /// A stage inside keel.
    Internal,
}

/// A span attribute value (the OpenTelemetry `AnyValue` subset keel uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    StrList(Vec<String>),
}

impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<u32> for AttrValue {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}
impl From<f64> for AttrValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<Vec<String>> for AttrValue {
    fn from(v: Vec<String>) -> Self {
        Self::StrList(v)
    }
}

/// One finished span. Times are unix epoch nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub span_id: SpanId,
    /// The parent span; for the root span, the caller's span from `traceparent` if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    /// Set when the span failed (OTLP status `ERROR` with this message); otherwise unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Keys borrow the `'static` names of the conventions where they can (no allocation per
    /// attribute and request); read back from the store they are owned.
    pub attributes: Vec<(Cow<'static, str>, AttrValue)>,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// How much message content a tenant's traces keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentMode {
    /// Messages and answers verbatim.
    Full,
    /// The shape (roles, counts, lengths) with every text replaced by `[redacted: N chars]`.
    #[default]
    Redacted,
    /// No messages or answers at all.
    None,
}

/// One request's trace: spans plus the record of what the model saw and what keel decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// The request id (`req_...`); primary key of the trace store.
    pub request_id: String,
    pub trace_id: TraceId,
    pub started_at_ms: i64,
    pub duration_ms: f64,
    pub tenant: Option<String>,
    /// `chat.completions` | `embeddings` | `messages`.
    pub endpoint: String,
    /// The route (virtual model) the request resolved to, if it got that far.
    pub route: Option<String>,
    /// The model that answered, if one did.
    pub model: Option<String>,
    pub status: u16,
    pub error_class: Option<String>,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    /// Trust score of the answer in [0, 1], once a later stage computes one.
    pub trust_score: Option<f64>,
    /// Grounding score of the answer in [0, 1], once retrieval/grounding computes one.
    pub grounding_score: Option<f64>,
    /// The strongest policy action taken (`allow`, `redact`, `block`, `escalate`), if any.
    pub policy_action: Option<String>,
    pub content_mode: ContentMode,
    pub spans: Vec<Span>,
    /// What the model saw and what keel decided (see [`TraceContent`]).
    pub content: TraceContent,
}

/// The full record of a request's context. Message text obeys the tenant's [`ContentMode`];
/// everything else (attempts, scores, verdicts, decision) is always kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TraceContent {
    /// The final messages sent to the model (after policy and context assembly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<serde_json::Value>,
    /// The answer as served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
    /// Retrieved chunks with their scores (retrieval issue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retrieved: Vec<serde_json::Value>,
    /// Policy verdicts (policy issue).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<serde_json::Value>,
    /// Upstream attempts, as in the request log.
    #[serde(default)]
    pub attempts: serde_json::Value,
    /// The stages and their outcomes, as in the response's `keel.stages`.
    #[serde(default)]
    pub stages: serde_json::Value,
    /// What keel decided (serve / flag / escalate / block) and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<serde_json::Value>,
}

/// Filters for listing traces. `tenant` is set by the server from the caller's key, never
/// from the query string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceQuery {
    pub tenant: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub route: Option<String>,
    pub model: Option<String>,
    pub status: Option<u16>,
    pub error_class: Option<String>,
    pub min_trust: Option<f64>,
    pub max_trust: Option<f64>,
    pub min_grounding: Option<f64>,
    pub max_grounding: Option<f64>,
    pub policy_action: Option<String>,
    /// Page size, 1..=1000.
    pub limit: u32,
    /// Continue after this point: `(started_at_ms, request_id)` of the last item seen.
    pub after: Option<(i64, String)>,
}

/// One row of a trace listing: the record without spans and content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    pub request_id: String,
    pub trace_id: TraceId,
    pub started_at_ms: i64,
    pub duration_ms: f64,
    pub tenant: Option<String>,
    pub endpoint: String,
    pub route: Option<String>,
    pub model: Option<String>,
    pub status: u16,
    pub error_class: Option<String>,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub trust_score: Option<f64>,
    pub grounding_score: Option<f64>,
    pub policy_action: Option<String>,
}

impl From<&TraceRecord> for TraceSummary {
    fn from(t: &TraceRecord) -> Self {
        Self {
            request_id: t.request_id.clone(),
            trace_id: t.trace_id,
            started_at_ms: t.started_at_ms,
            duration_ms: t.duration_ms,
            tenant: t.tenant.clone(),
            endpoint: t.endpoint.clone(),
            route: t.route.clone(),
            model: t.model.clone(),
            status: t.status,
            error_class: t.error_class.clone(),
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            trust_score: t.trust_score,
            grounding_score: t.grounding_score,
            policy_action: t.policy_action.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_malformed() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(s).unwrap();
        assert!(tp.sampled);
        assert_eq!(tp.to_string(), s);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A future version may carry more fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }

    #[test]
    fn ids_serialize_as_hex_and_are_random() {
        let a = TraceId::random();
        assert_ne!(a, TraceId::random());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json.len(), 34);
        assert_eq!(serde_json::from_str::<TraceId>(&json).unwrap(), a);
        assert!(serde_json::from_str::<SpanId>("\"zz\"").is_err());
    }

    #[test]
    fn ids_print_every_byte_as_two_lower_case_digits() {
        let bytes: [u8; 16] = std::array::from_fn(|i| [0x00, 0x0f, 0xa0, 0xff][i % 4] ^ i as u8);
        let want: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let id = TraceId(bytes);
        assert_eq!(id.to_string(), want);
        assert_eq!(format!("{id:?}"), want);
        assert_eq!(serde_json::to_value(id).unwrap(), want.as_str());
        let span = SpanId([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(span.to_string(), "0123456789abcdef");
        assert_eq!(SpanId::parse(&span.to_string()), Some(span));
    }
}
