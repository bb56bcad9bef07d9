//! keel's report on an answer: the `keel` field of a chat completion (and of the stream
//! chunks that have something to say). Typed, so that building and serializing it on every
//! request is a handful of moves rather than a tree of `serde_json::Value` maps; the parts
//! that are rare or open-ended (policy, retrieval, cascade, recovery) stay `Value`.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The `keel` object. Every field is optional: a streamed chunk carries only what it adds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeelReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The route (or model) the client asked for, resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The model that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingReport>,
    /// Every upstream call, in the order made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<AttemptRecord>>,
    /// What each stage of the request path did, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The budget reserved at admission and what the answer settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// The passages retrieved for the answer (citations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Value>,
    /// What the input, context and output rails did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Value>,
    /// The stream broke and was continued elsewhere: where, and after how much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Value>,
}

/// `keel.routing`: which model answered and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingReport {
    pub strategy: Cow<'static, str>,
    pub model: String,
    pub reason: String,
    /// The candidates in the order they were (or would have been) tried.
    pub order: Vec<String>,
    /// The request's `keel.route` preferences, as applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<Value>,
    /// A cascade's steps and verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Value>,
}

/// One entry of `keel.stages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageReport {
    pub stage: Cow<'static, str>,
    /// `ok`, `pass` (no behaviour configured) or `failed`.
    pub outcome: Cow<'static, str>,
}

/// `keel.admission`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    pub reserved_usd: f64,
    pub settled_usd: f64,
}

/// One upstream call made on behalf of a request (also a row of the request log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub model: String,
    pub provider: String,
    /// `ok`, or an error class such as `status_503` or `timeout`.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub latency_ms: f64,
    pub error: Option<String>,
}

impl KeelReport {
    /// The report as a JSON value (tests and tools that look fields up by name).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Reads a `keel` field leniently: an upstream's own `keel` object in a shape this version
/// does not know (another gateway, an older keel) is dropped, never failing the response.
pub(crate) fn lenient<'de, D>(deserializer: D) -> Result<Option<Box<KeelReport>>, D::Error>
where
    D: Deserializer<'de>,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ChatCompletionChunk;
    use serde_json::json;

    #[test]
    fn empty_fields_are_left_out_and_present_ones_keep_their_names() {
        let report = KeelReport {
            model: Some("m".into()),
            stages: Some(vec![StageReport {
                stage: "route".into(),
                outcome: "ok".into(),
            }]),
            admission: Some(Admission {
                reserved_usd: 0.5,
                settled_usd: 0.25,
            }),
            ..KeelReport::default()
        };
        assert_eq!(
            report.to_value(),
            json!({
                "model": "m",
                "stages": [{"stage": "route", "outcome": "ok"}],
                "admission": {"reserved_usd": 0.5, "settled_usd": 0.25},
            })
        );
    }

    fn chunk(keel: Value) -> ChatCompletionChunk {
        serde_json::from_value(json!({
            "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "keel": keel,
        }))
        .unwrap()
    }

    #[test]
    fn a_report_round_trips_and_an_unknown_shape_is_dropped_not_an_error() {
        let ours = json!({"model": "m", "recovered": [{"from": "a", "to": "b"}]});
        assert_eq!(chunk(ours.clone()).keel.unwrap().to_value(), ours);
        assert_eq!(chunk(json!({"stages": "not a list"})).keel, None);
        assert_eq!(chunk(json!(null)).keel, None);
    }
}
