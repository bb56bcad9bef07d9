//! Trust signals of an answer, each a value in [0, 1] (a cascade uses the configured subset):
//! - `finish_reason`: 0 when the answer was cut (`length`) or filtered (`content_filter`);
//! - `refusal`: 0 when the model refused (its `refusal` field, or
//!   [`keel_observe::drift::is_refusal`] on the text);
//! - `empty`: 0 when there is neither text nor a tool call;
//! - `json`: 0 when `response_format` asks for JSON and the text does not parse (as an object
//!   for `json_object`);
//! - `logprobs`: the mean token probability, when the upstream returned logprobs.
//!
//! Trust is the lowest signal that applies, over every choice. Policy verdicts and the
//! grounding score join the signals when those stages exist.

use keel_config::{CascadeConfig, TrustSignal};
use keel_types::openai::{
    ChatCompletionRequest, ChatCompletionResponse, FinishReason, ResponseFormat,
};
use serde_json::{Map, Value, json};

/// One tier's answer and how it was judged.
#[derive(Debug, Clone)]
pub struct Step {
    pub model: String,
    pub trust: f64,
    pub signals: Map<String, Value>,
    /// Signals under the threshold.
    pub low: Vec<&'static str>,
}

fn signal_name(s: TrustSignal) -> &'static str {
    match s {
        TrustSignal::FinishReason => "finish_reason",
        TrustSignal::Refusal => "refusal",
        TrustSignal::Empty => "empty",
        TrustSignal::Json => "json",
        TrustSignal::Logprobs => "logprobs",
    }
}

/// Mean token probability of a choice's `logprobs.content`, if it has any.
fn mean_token_probability(logprobs: Option<&Value>) -> Option<f64> {
    let tokens = logprobs?.get("content")?.as_array()?;
    let probs: Vec<f64> = tokens
        .iter()
        .filter_map(|t| t.get("logprob").and_then(Value::as_f64))
        .map(f64::exp)
        .collect();
    (!probs.is_empty()).then(|| probs.iter().sum::<f64>() / probs.len() as f64)
}

/// One signal's value for `resp`, `None` when it does not apply (no logprobs returned).
fn signal(
    s: TrustSignal,
    req: &ChatCompletionRequest,
    resp: &ChatCompletionResponse,
) -> Option<f64> {
    let flag = |ok: bool| if ok { 1.0 } else { 0.0 };
    let mut values = resp.choices.iter().filter_map(|c| {
        let text = c.message.content.as_deref().unwrap_or("");
        let has_calls = c.message.tool_calls.as_ref().is_some_and(|t| !t.is_empty());
        match s {
            TrustSignal::FinishReason => Some(flag(!matches!(
                c.finish_reason,
                Some(FinishReason::Length | FinishReason::ContentFilter)
            ))),
            TrustSignal::Refusal => Some(flag(
                c.message.refusal.is_none() && !keel_observe::drift::is_refusal(text),
            )),
            TrustSignal::Empty => Some(flag(has_calls || !text.trim().is_empty())),
            TrustSignal::Json => Some(match &req.response_format {
                Some(ResponseFormat::JsonObject) if !has_calls => {
                    flag(serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object()))
                }
                Some(ResponseFormat::JsonSchema { .. }) if !has_calls => {
                    flag(serde_json::from_str::<Value>(text).is_ok())
                }
                _ => 1.0,
            }),
            TrustSignal::Logprobs => mean_token_probability(c.logprobs.as_ref()),
        }
    });
    let first = values.next()?;
    Some(values.fold(first, f64::min))
}

/// Judges `resp` by `cfg`'s signals: trust is the lowest of those that apply (1 if none).
pub fn judge(
    model: &str,
    req: &ChatCompletionRequest,
    resp: &ChatCompletionResponse,
    cfg: &CascadeConfig,
) -> Step {
    let mut signals = Map::new();
    let mut low = Vec::new();
    let mut trust: f64 = 1.0;
    for s in &cfg.signals {
        let Some(v) = signal(*s, req, resp) else {
            continue;
        };
        let name = signal_name(*s);
        signals.insert(name.to_owned(), json!((v * 1000.0).round() / 1000.0));
        if v < cfg.threshold {
            low.push(name);
        }
        trust = trust.min(v);
    }
    Step {
        model: model.to_owned(),
        trust,
        signals,
        low,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn resp(message: Value, finish: &str, logprobs: Value) -> ChatCompletionResponse {
        serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": logprobs}]
        }))
        .unwrap()
    }

    fn req(format: Option<&str>) -> ChatCompletionRequest {
        let mut r = json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]});
        if let Some(f) = format {
            r["response_format"] = json!({"type": f});
        }
        serde_json::from_value(r).unwrap()
    }

    fn text(t: &str) -> Value {
        json!({"role": "assistant", "content": t})
    }

    #[test]
    fn signals_judge_the_answer() {
        let cfg = CascadeConfig::default();
        let good = judge(
            "m",
            &req(None),
            &resp(text("Paris."), "stop", Value::Null),
            &cfg,
        );
        assert_eq!(good.trust, 1.0);
        assert!(good.low.is_empty());
        assert!(
            !good.signals.contains_key("logprobs"),
            "absent logprobs do not count"
        );
        let cut = judge(
            "m",
            &req(None),
            &resp(text("Paris is"), "length", Value::Null),
            &cfg,
        );
        assert_eq!((cut.trust, cut.low.clone()), (0.0, vec!["finish_reason"]));
        let refused = judge(
            "m",
            &req(None),
            &resp(
                text("I'm sorry, but I can't help with that."),
                "stop",
                Value::Null,
            ),
            &cfg,
        );
        assert_eq!(refused.low, ["refusal"]);
        let empty = judge(
            "m",
            &req(None),
            &resp(text("  "), "stop", Value::Null),
            &cfg,
        );
        assert_eq!(empty.low, ["empty"]);
        let bad_json = judge(
            "m",
            &req(Some("json_object")),
            &resp(text("{\"a\": 1"), "stop", Value::Null),
            &cfg,
        );
        assert_eq!(bad_json.low, ["json"]);
        let array = judge(
            "m",
            &req(Some("json_object")),
            &resp(text("[1]"), "stop", Value::Null),
            &cfg,
        );
        assert_eq!(array.low, ["json"], "json_object wants an object");
        let ok_json = judge(
            "m",
            &req(Some("json_object")),
            &resp(text("{\"a\": 1}"), "stop", Value::Null),
            &cfg,
        );
        assert_eq!(ok_json.trust, 1.0);
        let lp =
            json!({"content": [{"token": "a", "logprob": -2.0}, {"token": "b", "logprob": -2.0}]});
        let unsure = judge("m", &req(None), &resp(text("a b"), "stop", lp), &cfg);
        assert!((unsure.trust - (-2.0f64).exp()).abs() < 1e-9);
        assert_eq!(unsure.low, ["logprobs"]);
    }

    #[test]
    fn only_configured_signals_count() {
        let cfg = CascadeConfig {
            threshold: 0.5,
            signals: vec![TrustSignal::Refusal],
        };
        let cut = judge(
            "m",
            &req(None),
            &resp(text("Paris is"), "length", Value::Null),
            &cfg,
        );
        assert_eq!(cut.trust, 1.0);
    }
}
