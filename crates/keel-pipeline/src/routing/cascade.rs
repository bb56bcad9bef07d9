//! Cascade routing: the route's models are tiers from cheapest to strongest. A tier's answer
//! is judged by trust signals, each a value in [0, 1] (the configured subset of):
//! - `finish_reason`: 0 when the answer was cut (`length`) or filtered (`content_filter`);
//! - `refusal`: 0 when the model refused (its `refusal` field, or
//!   [`keel_observe::drift::is_refusal`] on the text);
//! - `empty`: 0 when there is neither text nor a tool call;
//! - `json`: 0 when `response_format` asks for JSON and the text does not parse (as an object
//!   for `json_object`);
//! - `logprobs`: the mean token probability, when the upstream returned logprobs.
//!
//! Trust is the lowest signal (every choice counts). Under the threshold the request goes to
//! the next tier; the last tier's answer is served whatever its trust. If escalating fails,
//! the last answer received is served rather than an error. Policy verdicts and the grounding
//! score join the signals when those stages exist.
//!
//! Streaming requests: every tier but the last is asked without streaming, and a trusted
//! answer is replayed to the client as a stream; the last tier streams live (it is not judged:
//! nothing follows it). A trusted cheap answer thus reaches the client only once complete.

use crate::attempts;
use crate::catalog::{Candidate, Resolved};
use crate::context::RequestContext;
use crate::record::Recorder;
use crate::routing::{Plan, Routed, upstream_request};
use keel_config::{CascadeConfig, TrustSignal};
use keel_types::ApiError;
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

/// How climbing the tiers ended.
pub(crate) enum Climb {
    /// An answer at or above the threshold.
    Trusted(ChatCompletionResponse, Candidate),
    /// No tier left; the last answer was not trusted.
    Untrusted(ChatCompletionResponse, Candidate),
    /// The last attempt failed; the last answer received before, if any.
    Failed(ApiError, Option<(ChatCompletionResponse, Candidate)>),
}

/// Asks `tiers` in order (non-streaming; a failing tier falls over to the next as usual)
/// until an answer is trusted, judging each into `steps`.
pub(crate) async fn climb(
    ctx: &RequestContext,
    resolved: &Resolved,
    tiers: &[Candidate],
    req: &ChatCompletionRequest,
    rec: &mut Recorder,
    steps: &mut Vec<Step>,
) -> Climb {
    let cfg = &resolved.routing.cascade;
    let mut from = 0;
    let mut last: Option<(ChatCompletionResponse, Candidate)> = None;
    while from < tiers.len() {
        let result = attempts::run(
            ctx,
            &resolved.route,
            &resolved.retry,
            &tiers[from..],
            rec,
            |c| {
                let mut upstream = upstream_request(req, c);
                upstream.stream = None;
                upstream.stream_options = None;
                let provider = c.provider.clone();
                async move { provider.chat(upstream).await }
            },
        )
        .await;
        let (resp, served) = match result {
            Ok(v) => v,
            Err(e) => return Climb::Failed(e, last),
        };
        let step = judge(&served.name, req, &resp, cfg);
        let trusted = step.trust >= cfg.threshold;
        tracing::debug!(request_id = %ctx.request_id, model = %served.name, trust = step.trust, trusted, "cascade tier judged");
        steps.push(step);
        if trusted {
            return Climb::Trusted(resp, served);
        }
        from = tiers
            .iter()
            .position(|c| c.name == served.name)
            .map_or(tiers.len(), |i| i + 1);
        last = Some((resp, served));
    }
    match last {
        Some((resp, served)) => Climb::Untrusted(resp, served),
        None => Climb::Failed(
            ApiError::new(
                keel_types::ErrorCode::UpstreamTimeout,
                "no cascade tier could be tried",
            ),
            None,
        ),
    }
}

/// The one-line verdict: each tier's trust, why it was escalated, and how it ended.
pub(crate) fn describe(steps: &[Step], threshold: f64, ending: &str) -> String {
    let tiers: Vec<String> = steps
        .iter()
        .map(|s| {
            if s.low.is_empty() {
                format!("{} trust {:.2}", s.model, s.trust)
            } else {
                format!(
                    "{} trust {:.2} < {threshold:.2} ({})",
                    s.model,
                    s.trust,
                    s.low.join(", ")
                )
            }
        })
        .collect();
    let verb = if steps.len() > 1 { "escalated " } else { "" };
    format!("cascade: {verb}{}{ending}", tiers.join(" -> "))
}

/// The response's `keel.routing.cascade`.
pub(crate) fn report(steps: &[Step], threshold: f64, extra: Option<&str>) -> Value {
    let mut v = json!({
        "threshold": threshold,
        "escalated": steps.len() > 1,
        "steps": steps.iter().map(|s| json!({
            "model": s.model, "trust": (s.trust * 1000.0).round() / 1000.0, "signals": s.signals,
        })).collect::<Vec<_>>(),
    });
    if let Some(extra) = extra {
        v["note"] = json!(extra);
    }
    v
}

/// A non-streaming request on a cascade route.
pub async fn chat(
    ctx: &RequestContext,
    resolved: &Resolved,
    plan: &Plan,
    req: &ChatCompletionRequest,
    rec: &mut Recorder,
) -> Result<(ChatCompletionResponse, Candidate, Routed), ApiError> {
    let threshold = resolved.routing.cascade.threshold;
    let mut steps = Vec::new();
    let (resp, served, ending) = match climb(ctx, resolved, &plan.order, req, rec, &mut steps).await
    {
        Climb::Trusted(resp, served) => (resp, served, String::new()),
        Climb::Untrusted(resp, served) => {
            let ending = format!("; {} is the last tier: served untrusted", served.name);
            (resp, served, ending)
        }
        Climb::Failed(e, Some((resp, served))) => {
            let ending = format!(
                "; escalation failed ({}): served {}'s answer",
                e.message, served.name
            );
            (resp, served, ending)
        }
        Climb::Failed(e, None) => return Err(e),
    };
    let reason = describe(&steps, threshold, &ending);
    let note = (!ending.is_empty()).then(|| ending.trim_start_matches("; ").to_owned());
    let routed = plan.routed(
        &served,
        Some(reason),
        Some(report(&steps, threshold, note.as_deref())),
    );
    Ok((resp, served, routed))
}

/// A streaming request on a cascade route, before the live stream: every tier but the last
/// is asked without streaming. `Some` with the trusted answer to replay; `None` when the last
/// tier must stream live, with the verdict so far in `steps`.
pub async fn buffered(
    ctx: &RequestContext,
    resolved: &Resolved,
    plan: &Plan,
    req: &ChatCompletionRequest,
    rec: &mut Recorder,
    steps: &mut Vec<Step>,
) -> Option<(ChatCompletionResponse, Candidate)> {
    let judged = &plan.order[..plan.order.len().saturating_sub(1)];
    if judged.is_empty() {
        return None;
    }
    match climb(ctx, resolved, judged, req, rec, steps).await {
        Climb::Trusted(resp, served) => Some((resp, served)),
        Climb::Untrusted(..) | Climb::Failed(..) => None,
    }
}

/// What routing says about a cascade stream served by `served` (replayed or live).
pub fn stream_routed(
    resolved: &Resolved,
    plan: &Plan,
    served: &Candidate,
    steps: &[Step],
    live: bool,
) -> Routed {
    let threshold = resolved.routing.cascade.threshold;
    let ending = if live {
        format!("; {} streamed live (last tier, not judged)", served.name)
    } else {
        "; the trusted answer was buffered and replayed as a stream".to_owned()
    };
    let mut reason = describe(steps, threshold, &ending);
    if steps.is_empty() {
        reason = format!(
            "cascade: {} streamed live (no cheaper tier could serve)",
            served.name
        );
    }
    let note = ending.trim_start_matches("; ").to_owned();
    plan.routed(
        served,
        Some(reason),
        Some(report(steps, threshold, Some(&note))),
    )
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
