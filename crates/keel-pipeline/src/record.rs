//! Builds what one request leaves behind as the stages run: the request-log record (attempts,
//! tokens, cost from the price table, time to first token, status) and the trace (a span per
//! stage and per upstream attempt, plus what the model saw, per the tenant's content mode).

use crate::catalog::Candidate;
use crate::context::RequestContext;
use crate::stages::{Stage, StageOutcome, StageTrace};
use keel_observe::spans::{Attrs, TraceBuilder, attr, capture, request_params};
use keel_providers::ProviderError;
use keel_store::{AttemptRecord, RequestRecord};
use keel_types::ApiError;
use keel_types::openai::{ChatCompletionRequest, ChatCompletionResponse, Role, Usage};
use keel_types::trace::{AttrValue, ContentMode, SpanId, SpanKind, TraceContent, TraceRecord};
use std::time::Instant;

pub struct Recorder {
    record: RequestRecord,
    trace: TraceBuilder,
    stages: StageTrace,
    /// End of the last stage span; the next stage starts here.
    last_mark: Instant,
    attempts_span: SpanId,
    attempts_started: Option<Instant>,
    /// The client span of the attempt that answered.
    served_span: Option<SpanId>,
    served_model: Option<String>,
    content_mode: ContentMode,
    content: TraceContent,
    prompt_text: Option<String>,
    response_text: Option<String>,
}

/// A finished request: its log record, its trace, and (for drift) the prompt and answer text.
pub struct Finished {
    pub record: RequestRecord,
    pub trace: TraceRecord,
    pub prompt_text: Option<String>,
    pub response_text: Option<String>,
}

impl Recorder {
    pub fn new(
        ctx: &RequestContext,
        endpoint: &str,
        model_requested: &str,
        stream: bool,
        content_mode: ContentMode,
        tracing: bool,
    ) -> Self {
        let operation = if endpoint == "embeddings" {
            "embeddings"
        } else {
            "chat"
        };
        let mut trace = if tracing {
            TraceBuilder::new(ctx.trace, ctx.received, operation, model_requested)
        } else {
            TraceBuilder::disabled(ctx.trace, ctx.received, operation)
        };
        trace.root_attr(attr::REQUEST_ID, ctx.request_id.as_str());
        if let Some(t) = &ctx.tenant {
            trace.root_attr(attr::TENANT, t.as_str());
        }
        let mut stages = StageTrace::default();
        stages.mark(Stage::Authenticate, StageOutcome::Ok);
        trace.span(
            SpanId::random(),
            None,
            Stage::Authenticate.as_str().into(),
            SpanKind::Internal,
            ctx.received,
            ctx.started,
            None,
            stage_attrs(Stage::Authenticate, StageOutcome::Ok),
        );
        Self {
            record: RequestRecord {
                id: ctx.request_id.clone(),
                started_at_ms: ctx.started_at_ms,
                tenant: ctx.tenant.clone(),
                key_id: ctx.key_id.clone(),
                endpoint: endpoint.to_owned(),
                model_requested: model_requested.to_owned(),
                route: None,
                stream,
                attempts: Vec::new(),
                input_tokens: None,
                output_tokens: None,
                cost_usd: None,
                ttft_ms: None,
                total_ms: 0.0,
                status: 0,
                error_class: None,
                error_message: None,
            },
            trace,
            stages,
            last_mark: Instant::now(),
            attempts_span: SpanId::random(),
            attempts_started: None,
            served_span: None,
            served_model: None,
            content_mode,
            content: TraceContent::default(),
            prompt_text: None,
            response_text: None,
        }
    }

    pub fn route(&mut self, route: &str) {
        self.record.route = Some(route.to_owned());
        self.trace.root_attr(attr::ROUTE, route);
    }

    /// Ends the current stage: a span from the end of the previous one until now.
    pub fn mark(&mut self, stage: Stage, outcome: StageOutcome) {
        let now = Instant::now();
        self.stages.mark(stage, outcome);
        if stage == Stage::Record {
            return;
        }
        let (id, start) = if stage == Stage::Attempts {
            (
                self.attempts_span,
                self.attempts_started.unwrap_or(self.last_mark),
            )
        } else {
            (SpanId::random(), self.last_mark)
        };
        self.trace.span(
            id,
            None,
            stage.as_str().into(),
            SpanKind::Internal,
            start,
            now,
            None,
            stage_attrs(stage, outcome),
        );
        self.last_mark = now;
    }

    pub fn pass_through(&mut self, stages: &[Stage]) {
        for s in stages {
            self.mark(*s, StageOutcome::Pass);
        }
    }

    /// The stages so far, as the response's `keel.stages` shows them.
    pub fn stages_json(&self) -> serde_json::Value {
        self.stages.to_json()
    }

    /// The request as the model sees it: parameters on the root span, messages per the
    /// content mode, and the last user message for drift.
    pub fn request(&mut self, req: &ChatCompletionRequest) {
        self.trace.root_attrs(request_params(req));
        if self.content_mode != ContentMode::None {
            self.content.messages = serde_json::to_value(&req.messages)
                .ok()
                .and_then(|v| capture(self.content_mode, v));
        }
        self.prompt_text = req
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.text_content());
    }

    pub fn attempt(&mut self, c: &Candidate, started: Instant, error: Option<&ProviderError>) {
        let now = Instant::now();
        self.attempts_started.get_or_insert(started);
        let http_status = match error {
            None => Some(200),
            Some(ProviderError::Status { status, .. }) => Some(*status),
            Some(_) => None,
        };
        let outcome = error.map_or_else(|| "ok".to_owned(), ProviderError::class);
        if error.is_none() {
            self.served_model = Some(c.name.clone());
        }
        if self.trace.enabled() {
            self.attempt_span(c, started, now, error, &outcome, http_status);
        }
        self.record.attempts.push(AttemptRecord {
            model: c.name.clone(),
            provider: c.config.provider.clone(),
            outcome,
            http_status,
            latency_ms: (now - started).as_secs_f64() * 1000.0,
            error: error.map(ToString::to_string),
        });
    }

    fn attempt_span(
        &mut self,
        c: &Candidate,
        started: Instant,
        now: Instant,
        error: Option<&ProviderError>,
        outcome: &str,
        http_status: Option<u16>,
    ) {
        let mut attrs: Attrs = vec![
            (attr::OPERATION_NAME.into(), self.trace.operation().into()),
            (attr::PROVIDER_NAME.into(), c.provider_kind.into()),
            (attr::PROVIDER.into(), c.config.provider.as_str().into()),
            (
                attr::REQUEST_MODEL.into(),
                c.config.upstream.as_str().into(),
            ),
            (attr::ATTEMPT_OUTCOME.into(), outcome.into()),
        ];
        if let Some(s) = http_status {
            attrs.push((attr::HTTP_STATUS.into(), AttrValue::Int(i64::from(s))));
        }
        if error.is_some() {
            attrs.push((attr::ERROR_TYPE.into(), outcome.into()));
        }
        let id = SpanId::random();
        self.trace.span(
            id,
            Some(self.attempts_span),
            format!("{} {}", self.trace.operation(), c.config.upstream),
            SpanKind::Client,
            started,
            now,
            error.map(ToString::to_string),
            attrs,
        );
        if error.is_none() {
            self.served_span = Some(id);
            self.trace.root_attr(attr::RESPONSE_MODEL, c.name.as_str());
            self.trace.root_attr(attr::PROVIDER_NAME, c.provider_kind);
        }
    }

    pub fn usage(&mut self, c: &Candidate, usage: Usage) {
        self.record.input_tokens = Some(usage.prompt_tokens);
        self.record.output_tokens = Some(usage.completion_tokens);
        self.record.cost_usd = Some(
            c.config
                .cost_usd(usage.prompt_tokens, usage.completion_tokens),
        );
        let attrs: Attrs = vec![
            (attr::INPUT_TOKENS.into(), usage.prompt_tokens.into()),
            (attr::OUTPUT_TOKENS.into(), usage.completion_tokens.into()),
        ];
        if let Some(id) = self.served_span {
            self.trace.add_attrs(id, attrs.clone());
        }
        self.trace.root_attrs(attrs);
    }

    /// The answer (non-streaming): finish reasons, response id, content per the mode.
    pub fn answer(&mut self, resp: &ChatCompletionResponse, upstream_model: &str) {
        let reasons: Vec<String> = resp
            .choices
            .iter()
            .filter_map(|c| c.finish_reason.map(|r| r.as_str().to_owned()))
            .collect();
        self.answer_meta(&resp.id, upstream_model, reasons);
        let text = resp
            .choices
            .first()
            .and_then(|c| c.message.content.clone())
            .unwrap_or_default();
        self.answer_text(text, || {
            serde_json::to_value(resp.choices.iter().map(|c| &c.message).collect::<Vec<_>>())
                .unwrap_or_default()
        });
    }

    /// Response id, upstream model and finish reasons on the root and served attempt span.
    pub fn answer_meta(&mut self, id: &str, upstream_model: &str, reasons: Vec<String>) {
        let attrs: Attrs = vec![
            (attr::RESPONSE_ID.into(), id.into()),
            (attr::FINISH_REASONS.into(), reasons.into()),
        ];
        if let Some(span) = self.served_span {
            let mut on_attempt = attrs.clone();
            on_attempt.push((attr::RESPONSE_MODEL.into(), upstream_model.into()));
            self.trace.add_attrs(span, on_attempt);
        }
        self.trace.root_attrs(attrs);
    }

    /// The answer's text (for drift) and its content record per the mode.
    pub fn answer_text(&mut self, text: String, as_json: impl FnOnce() -> serde_json::Value) {
        if self.content_mode != ContentMode::None {
            self.content.response = capture(self.content_mode, as_json());
        }
        self.response_text = Some(text);
    }

    pub fn ttft(&mut self, ctx: &RequestContext) {
        if self.record.ttft_ms.is_none() {
            self.record.ttft_ms = Some(ctx.elapsed_ms());
        }
    }

    /// The attempts so far, as the `keel` response extension shows them.
    pub fn attempts_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.record.attempts).unwrap_or_default()
    }

    pub fn finish_ok(mut self, ctx: &RequestContext) -> Finished {
        self.record.status = 200;
        self.record.total_ms = ctx.elapsed_ms();
        self.finish(None)
    }

    pub fn finish_err(mut self, ctx: &RequestContext, error: &ApiError) -> Finished {
        self.record.status = error.code.http_status();
        self.record.error_class = Some(error.code.as_str());
        self.record.error_message = Some(error.message.clone());
        self.record.total_ms = ctx.elapsed_ms();
        self.finish(Some(error.message.clone()))
    }

    /// A stream that started (HTTP 200 sent) and then failed or was abandoned.
    pub fn finish_stream_err(
        mut self,
        ctx: &RequestContext,
        class: &str,
        message: String,
    ) -> Finished {
        self.record.status = 200;
        self.record.error_class = Some(class.to_owned());
        self.record.error_message = Some(message.clone());
        self.record.total_ms = ctx.elapsed_ms();
        self.finish(Some(message))
    }

    fn finish(mut self, error: Option<String>) -> Finished {
        if let Some(class) = &self.record.error_class {
            self.trace.root_attr(attr::ERROR_TYPE, class.as_str());
        }
        self.trace.root_attr(
            attr::HTTP_STATUS,
            AttrValue::Int(i64::from(self.record.status)),
        );
        self.content.attempts = self.attempts_json();
        self.content.stages = self.stages.to_json();
        let ids = self.trace.ids();
        let end = Instant::now();
        let spans = self.trace.finish(end, error);
        let r = &self.record;
        let trace = TraceRecord {
            request_id: r.id.clone(),
            trace_id: ids.trace_id,
            started_at_ms: r.started_at_ms,
            duration_ms: r.total_ms,
            tenant: r.tenant.clone(),
            endpoint: r.endpoint.clone(),
            route: r.route.clone(),
            model: self.served_model,
            status: r.status,
            error_class: r.error_class.clone(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            trust_score: None,
            grounding_score: None,
            policy_action: None,
            content_mode: self.content_mode,
            spans,
            content: self.content,
        };
        Finished {
            record: self.record,
            trace,
            prompt_text: self.prompt_text,
            response_text: self.response_text,
        }
    }
}

fn stage_attrs(stage: Stage, outcome: StageOutcome) -> Attrs {
    vec![
        (attr::STAGE.into(), stage.as_str().into()),
        (attr::STAGE_OUTCOME.into(), outcome.as_str().into()),
    ]
}
