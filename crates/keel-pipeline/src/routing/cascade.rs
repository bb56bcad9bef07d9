//! Cascade routing: the route's models are tiers from cheapest to strongest. Each tier's
//! answer is judged ([`super::trust`]); under the threshold the request goes to the next tier.
//! The last tier's answer is served whatever its trust. If escalating fails, the last answer
//! received is served rather than an error. The request's cost includes every tier asked.
//!
//! Streaming requests: every tier but the last is asked without streaming, and a trusted
//! answer is replayed to the client as a stream; the last tier streams live (it is not judged:
//! nothing follows it). A trusted cheap answer thus reaches the client only once complete.

use crate::attempts;
use crate::catalog::{Candidate, Resolved};
use crate::context::RequestContext;
use crate::record::Recorder;
use crate::routing::trust::{Step, judge};
use crate::routing::{Plan, Routed, upstream_request};
use keel_types::ApiError;
use keel_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use serde_json::{Value, json};

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
        if let Some((discarded, c)) = last.take() {
            discard(rec, &c, &discarded);
        }
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

/// Counts a tier's answer that was not served in the request's cost.
fn discard(rec: &mut Recorder, c: &Candidate, resp: &ChatCompletionResponse) {
    if let Some(usage) = resp.usage {
        rec.discarded_usage(c, usage);
    }
}

/// The one-line verdict: each tier's trust, why it was escalated, and how it ended.
fn describe(
    plan: &Plan,
    served: &Candidate,
    steps: &[Step],
    threshold: f64,
    ending: &str,
) -> String {
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
    // Tiers up to the served one that gave no answer (they failed and were fallen over).
    let silent: Vec<&str> = plan
        .order
        .iter()
        .take_while(|c| c.name != served.name)
        .map(|c| c.name.as_str())
        .filter(|name| !steps.iter().any(|s| s.model == *name))
        .collect();
    let silent = if silent.is_empty() {
        String::new()
    } else {
        format!("; no answer from {}", silent.join(", "))
    };
    format!("cascade: {verb}{}{ending}{silent}", tiers.join(" -> "))
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
    let reason = describe(plan, &served, &steps, threshold, &ending);
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
        Climb::Untrusted(resp, c) | Climb::Failed(_, Some((resp, c))) => {
            discard(rec, &c, &resp);
            None
        }
        Climb::Failed(_, None) => None,
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
    let mut reason = describe(plan, served, steps, threshold, &ending);
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
