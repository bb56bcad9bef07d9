//! The raw trace of a request and its materialisation. While a request runs, the recorder only
//! notes instants (stage boundaries, attempt start and end): no allocation per span. Only a
//! trace that sampling keeps is turned into OpenTelemetry-shaped spans and a content record,
//! from the request and answer borrowed at that point.

use crate::stages::{Stage, StageOutcome};
use keel_observe::spans::{Attrs, TraceBuilder, TraceIds, attr, capture, request_params};
use keel_store::RequestRecord;
use keel_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use keel_types::trace::{AttrValue, ContentMode, SpanId, SpanKind, TraceContent, TraceRecord};
use std::time::Instant;

/// One stage: from the end of the previous one to its own end.
#[derive(Debug, Clone, Copy)]
pub struct StageMark {
    pub stage: Stage,
    pub outcome: StageOutcome,
    pub start: Instant,
    pub end: Instant,
}

/// Timing and target of one upstream attempt; the rest is in the request record's attempt.
#[derive(Debug, Clone)]
pub struct AttemptMark {
    pub start: Instant,
    pub end: Instant,
    pub upstream: String,
    pub provider_kind: &'static str,
}

/// Everything needed to build the trace later, cheap to collect.
#[derive(Debug)]
pub struct RawTrace {
    pub ids: TraceIds,
    pub received: Instant,
    /// When the pipeline took over (authentication ended).
    pub started: Instant,
    pub operation: &'static str,
    pub stages: Vec<StageMark>,
    pub attempts: Vec<AttemptMark>,
    /// Filled by later stages (grounding, policy); `None` until they exist.
    pub trust_score: Option<f64>,
    pub grounding_score: Option<f64>,
    pub policy_action: Option<String>,
    /// Passages the context stage gave the model, with their scores.
    pub retrieved: Vec<serde_json::Value>,
    /// Policy checks that fired (kinds, offsets and scores; never the matched text).
    pub policy: Vec<serde_json::Value>,
}

/// The answer as the client got it.
pub enum Answer<'a> {
    Response(&'a ChatCompletionResponse),
    Streamed {
        id: &'a str,
        text: &'a str,
        finish_reasons: &'a [String],
    },
}

/// What the model saw and said, borrowed when the request is recorded.
#[derive(Default)]
pub struct Seen<'a> {
    pub request: Option<&'a ChatCompletionRequest>,
    pub answer: Option<Answer<'a>>,
}

impl Seen<'_> {
    /// The last user message (what drift embeds as the prompt).
    pub fn prompt_text(&self) -> Option<String> {
        let req = self.request?;
        req.messages
            .iter()
            .rev()
            .find(|m| m.role == keel_types::openai::Role::User)
            .map(|m| m.text_content())
    }

    /// The first choice's text (what drift embeds and checks for refusals).
    pub fn answer_text(&self) -> Option<&str> {
        match self.answer.as_ref()? {
            Answer::Response(r) => r.choices.first()?.message.content.as_deref(),
            Answer::Streamed { text, .. } => Some(text),
        }
    }
}

impl RawTrace {
    /// Spans (root, stages, attempts under `attempts`) and the content record.
    pub fn materialize(self, r: &RequestRecord, seen: &Seen<'_>, mode: ContentMode) -> TraceRecord {
        let mut b = TraceBuilder::new(self.ids, self.received, self.operation, &r.model_requested);
        b.root_attr(attr::REQUEST_ID, r.id.as_str());
        if let Some(t) = &r.tenant {
            b.root_attr(attr::TENANT, t.as_str());
        }
        if let Some(route) = &r.route {
            b.root_attr(attr::ROUTE, route.as_str());
        }
        b.span(
            SpanId::random(),
            None,
            Stage::Authenticate.as_str().into(),
            SpanKind::Internal,
            self.received,
            self.started,
            None,
            outcome_attr(StageOutcome::Ok),
        );
        let attempts_span = SpanId::random();
        for m in self.stages.iter().filter(|m| m.stage != Stage::Record) {
            let (id, start) = match (m.stage, self.attempts.first()) {
                (Stage::Attempts, Some(first)) => (attempts_span, first.start.min(m.start)),
                (Stage::Attempts, None) => (attempts_span, m.start),
                _ => (SpanId::random(), m.start),
            };
            let name = m.stage.as_str().into();
            let attrs = outcome_attr(m.outcome);
            b.span(
                id,
                None,
                name,
                SpanKind::Internal,
                start,
                m.end,
                None,
                attrs,
            );
        }
        let (answer_meta, served_model) = answer_meta(seen);
        for (m, a) in self.attempts.iter().zip(&r.attempts) {
            let ok = a.outcome == "ok";
            let mut attrs: Attrs = vec![
                (attr::OPERATION_NAME.into(), self.operation.into()),
                (attr::PROVIDER_NAME.into(), m.provider_kind.into()),
                (attr::PROVIDER.into(), a.provider.as_str().into()),
                (attr::REQUEST_MODEL.into(), m.upstream.as_str().into()),
                (attr::ATTEMPT_OUTCOME.into(), a.outcome.as_str().into()),
            ];
            if let Some(s) = a.http_status {
                attrs.push((attr::HTTP_STATUS.into(), AttrValue::Int(i64::from(s))));
            }
            if ok {
                b.root_attr(attr::RESPONSE_MODEL, a.model.as_str());
                b.root_attr(attr::PROVIDER_NAME, m.provider_kind);
                attrs.push((
                    attr::RESPONSE_MODEL.into(),
                    served_model.unwrap_or(m.upstream.as_str()).into(),
                ));
                attrs.extend(answer_meta.iter().cloned());
                attrs.extend(usage_attrs(r));
            } else {
                attrs.push((attr::ERROR_TYPE.into(), a.outcome.as_str().into()));
            }
            let name = format!("{} {}", self.operation, m.upstream);
            b.span(
                SpanId::random(),
                Some(attempts_span),
                name,
                SpanKind::Client,
                m.start,
                m.end,
                a.error.clone(),
                attrs,
            );
        }
        if let Some(req) = seen.request {
            b.root_attrs(request_params(req));
        }
        b.root_attrs(answer_meta);
        b.root_attrs(usage_attrs(r));
        if let Some(class) = &r.error_class {
            b.root_attr(attr::ERROR_TYPE, class.as_str());
        }
        b.root_attr(attr::HTTP_STATUS, AttrValue::Int(i64::from(r.status)));
        // total_ms is measured from when the pipeline took over.
        let end = self.started + std::time::Duration::from_secs_f64(r.total_ms.max(0.0) / 1e3);
        let spans = b.finish(end, r.error_message.clone());
        TraceRecord {
            request_id: r.id.clone(),
            trace_id: self.ids.trace_id,
            started_at_ms: r.started_at_ms,
            duration_ms: r.total_ms,
            tenant: r.tenant.clone(),
            endpoint: r.endpoint.clone(),
            route: r.route.clone(),
            model: r
                .attempts
                .iter()
                .rev()
                .find(|a| a.outcome == "ok")
                .map(|a| a.model.clone()),
            status: r.status,
            error_class: r.error_class.clone(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            trust_score: self.trust_score,
            grounding_score: self.grounding_score,
            policy_action: self.policy_action,
            content_mode: mode,
            spans,
            content: content(r, &self.stages, &self.retrieved, &self.policy, seen, mode),
        }
    }
}

fn outcome_attr(outcome: StageOutcome) -> Attrs {
    vec![(attr::STAGE_OUTCOME.into(), outcome.as_str().into())]
}

fn usage_attrs(r: &RequestRecord) -> Attrs {
    let mut out = Attrs::new();
    if let Some(i) = r.input_tokens {
        out.push((attr::INPUT_TOKENS.into(), i.into()));
    }
    if let Some(o) = r.output_tokens {
        out.push((attr::OUTPUT_TOKENS.into(), o.into()));
    }
    out
}

/// Response id and finish reasons; and the model name the upstream reported, if known.
fn answer_meta<'a>(seen: &'a Seen<'_>) -> (Attrs, Option<&'a str>) {
    let (id, reasons, model): (&str, Vec<String>, Option<&str>) = match &seen.answer {
        None => return (Attrs::new(), None),
        Some(Answer::Response(resp)) => (
            &resp.id,
            resp.choices
                .iter()
                .filter_map(|c| c.finish_reason.map(|f| f.as_str().to_owned()))
                .collect(),
            None,
        ),
        Some(Answer::Streamed {
            id, finish_reasons, ..
        }) => (id, finish_reasons.to_vec(), None),
    };
    (
        vec![
            (attr::RESPONSE_ID.into(), id.into()),
            (attr::FINISH_REASONS.into(), reasons.into()),
        ],
        model,
    )
}

fn content(
    r: &RequestRecord,
    stages: &[StageMark],
    retrieved: &[serde_json::Value],
    policy: &[serde_json::Value],
    seen: &Seen<'_>,
    mode: ContentMode,
) -> TraceContent {
    let mut stage_list = vec![serde_json::json!({"stage": "authenticate", "outcome": "ok"})];
    stage_list.extend(
        stages
            .iter()
            .map(|m| serde_json::json!({"stage": m.stage, "outcome": m.outcome})),
    );
    let mut c = TraceContent {
        attempts: serde_json::to_value(&r.attempts).unwrap_or_default(),
        stages: serde_json::Value::Array(stage_list),
        policy: policy.to_vec(),
        ..TraceContent::default()
    };
    // Passages: ids and scores always; their text as the content mode allows.
    c.retrieved = retrieved
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(obj) = p.as_object_mut() {
                let text = obj.remove("text");
                if let Some(t) = text.and_then(|t| capture(mode, t)) {
                    obj.insert("text".into(), t);
                }
            }
            p
        })
        .collect();
    if mode == ContentMode::None {
        return c;
    }
    if let Some(req) = seen.request {
        c.messages = serde_json::to_value(&req.messages)
            .ok()
            .and_then(|v| capture(mode, v));
    }
    c.response = match &seen.answer {
        None => None,
        Some(Answer::Response(resp)) => {
            let messages: Vec<_> = resp.choices.iter().map(|c| &c.message).collect();
            serde_json::to_value(messages)
                .ok()
                .and_then(|v| capture(mode, v))
        }
        Some(Answer::Streamed { text, .. }) => capture(
            mode,
            serde_json::json!([{"role": "assistant", "content": text}]),
        ),
    };
    c
}
