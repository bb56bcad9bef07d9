//! `POST /v1/guard/check` `{text, stage?, policy?, system_prompt?}`: one text through a
//! policy's rails for one stage, so applications can use keel's rails directly. Answers the
//! action, the reason, every rail's score and the spans it found (byte offsets and the
//! matched text, which is the caller's own), and the redacted text when a rail redacts.

use crate::auth::Caller;
use crate::body::{parse_json, read_limited};
use crate::error::OpenAiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, State};
use keel_guard::redact::RedactionMap;
use keel_guard::{Action, GuardStage};
use keel_types::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    text: String,
    /// `input` (default), `context`, `output` or `stream`.
    #[serde(default = "input")]
    stage: GuardStage,
    /// A `[guard.policies]` name; default: the caller's tenant's policy.
    #[serde(default)]
    policy: Option<String>,
}

fn input() -> GuardStage {
    GuardStage::Input
}

fn invalid(message: String, param: &str) -> OpenAiError {
    OpenAiError(ApiError::new(ErrorCode::InvalidRequest, message).with_param(param))
}

pub async fn check_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Body,
) -> Result<Json<Value>, OpenAiError> {
    let bytes = read_limited(body, state.max_body_bytes)
        .await
        .map_err(OpenAiError)?;
    let req: CheckBody = parse_json(&bytes).map_err(OpenAiError)?;
    let Some(guarding) = state.pipeline.guarding() else {
        return Err(OpenAiError(ApiError::new(
            ErrorCode::NotFound,
            "no policies are configured ([guard.policies])",
        )));
    };
    let policy = match &req.policy {
        Some(name) => guarding.guard.policy(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = guarding.guard.names().collect();
            invalid(
                format!("unknown policy \"{name}\" (known: {})", known.join(", ")),
                "policy",
            )
        })?,
        None => guarding
            .guard
            .for_request(caller.tenant.as_deref(), None)
            .ok_or_else(|| {
                invalid(
                    "no policy named and the caller's tenant has none".to_owned(),
                    "policy",
                )
            })?,
    };
    let verdict = guarding.check(&policy, req.stage, &req.text).await;
    let rails: Vec<Value> = (verdict.rails.iter())
        .map(|r| keel_pipeline::guard::rail_json(r, Some(&req.text)))
        .collect();
    let redactions = verdict.redactions();
    let redacted =
        (!redactions.is_empty()).then(|| RedactionMap::default().redact(&req.text, &redactions));
    Ok(Json(json!({
        "object": "guard.check",
        "policy": policy.name,
        "stage": req.stage,
        "action": verdict.action,
        "allowed": verdict.action != Action::Block,
        "escalate": verdict.escalated(),
        "reason": (verdict.action != Action::Allow).then(|| verdict.reason()),
        "reroute_to": verdict.reroute_to,
        "redacted_text": redacted,
        "rails": rails,
    })))
}
