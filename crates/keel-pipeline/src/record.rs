//! Builds the request-log record of one request as the stages run: attempts with their
//! latency and outcome, tokens, cost from the price table, time to first token, status.

use crate::catalog::Candidate;
use crate::context::RequestContext;
use keel_providers::ProviderError;
use keel_store::{AttemptRecord, RequestRecord};
use keel_types::ApiError;
use keel_types::openai::Usage;
use std::time::Instant;

pub struct Recorder {
    record: RequestRecord,
}

impl Recorder {
    pub fn new(ctx: &RequestContext, endpoint: &str, model_requested: &str, stream: bool) -> Self {
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
        }
    }

    pub fn route(&mut self, route: &str) {
        self.record.route = Some(route.to_owned());
    }

    pub fn attempt(&mut self, c: &Candidate, started: Instant, error: Option<&ProviderError>) {
        let http_status = match error {
            None => Some(200),
            Some(ProviderError::Status { status, .. }) => Some(*status),
            Some(_) => None,
        };
        self.record.attempts.push(AttemptRecord {
            model: c.name.clone(),
            provider: c.config.provider.clone(),
            outcome: error.map_or_else(|| "ok".to_owned(), ProviderError::class),
            http_status,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            error: error.map(ToString::to_string),
        });
    }

    pub fn usage(&mut self, c: &Candidate, usage: Usage) {
        self.record.input_tokens = Some(usage.prompt_tokens);
        self.record.output_tokens = Some(usage.completion_tokens);
        self.record.cost_usd = Some(
            c.config
                .cost_usd(usage.prompt_tokens, usage.completion_tokens),
        );
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

    pub fn finish_ok(mut self, ctx: &RequestContext) -> RequestRecord {
        self.record.status = 200;
        self.record.total_ms = ctx.elapsed_ms();
        self.record
    }

    pub fn finish_err(mut self, ctx: &RequestContext, error: &ApiError) -> RequestRecord {
        self.record.status = error.code.http_status();
        self.record.error_class = Some(error.code.as_str());
        self.record.error_message = Some(error.message.clone());
        self.record.total_ms = ctx.elapsed_ms();
        self.record
    }

    /// A stream that started (HTTP 200 sent) and then failed or was abandoned.
    pub fn finish_stream_err(
        mut self,
        ctx: &RequestContext,
        class: &str,
        message: String,
    ) -> RequestRecord {
        self.record.status = 200;
        self.record.error_class = Some(class.to_owned());
        self.record.error_message = Some(message);
        self.record.total_ms = ctx.elapsed_ms();
        self.record
    }
}
