//! Builds what one request leaves behind as the stages run: the request-log record (attempts,
//! tokens, cost from the price table, time to first token, status) and the raw trace (stage
//! and attempt instants; see [`crate::trace`] for how a kept trace becomes spans).

use crate::catalog::Candidate;
use crate::context::RequestContext;
use crate::stages::{Stage, StageOutcome, StageTrace};
use crate::trace::{AttemptMark, RawTrace, StageMark};
use keel_providers::ProviderError;
use keel_store::{AttemptRecord, RequestRecord};
use keel_types::ApiError;
use keel_types::openai::Usage;
use keel_types::report::{Admission, StageReport};
use std::time::Instant;

pub struct Recorder {
    record: RequestRecord,
    raw: RawTrace,
    stages: StageTrace,
    /// End of the last stage; the next stage starts here.
    last_mark: Instant,
    /// Tokens and cost of earlier segments of a recovered stream, which later usage adds to.
    usage_base: (u32, u32, f64),
    /// Cost of answers asked for but not served (a cascade's escalated tiers).
    discarded_cost_usd: f64,
    /// The admission ticket, settled to the recorded usage when the record is finished.
    admission: Option<keel_admit::Ticket>,
}

/// A finished request: its log record and its raw trace.
pub struct Finished {
    pub record: RequestRecord,
    pub raw: RawTrace,
}

impl Recorder {
    pub fn new(ctx: &RequestContext, endpoint: &str, model_requested: &str, stream: bool) -> Self {
        let mut stages = StageTrace::default();
        stages.mark(Stage::Authenticate, StageOutcome::Ok);
        Self {
            record: RequestRecord {
                id: ctx.request_id.clone(),
                started_at_ms: ctx.started_at_ms,
                tenant: ctx.tenant.clone(),
                key_id: ctx.key_id.clone(),
                endpoint: endpoint.to_owned(),
                model_requested: model_requested.to_owned(),
                route: None,
                model_served: None,
                route_reason: None,
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
            raw: RawTrace {
                ids: ctx.trace,
                received: ctx.received,
                started: ctx.started,
                operation: if endpoint == "embeddings" {
                    "embeddings"
                } else {
                    "chat"
                },
                stages: Vec::with_capacity(12),
                attempts: Vec::with_capacity(2),
                trust_score: None,
                grounding_score: None,
                policy_action: None,
                retrieved: Vec::new(),
                policy: Vec::new(),
            },
            stages,
            last_mark: Instant::now(),
            usage_base: (0, 0, 0.0),
            discarded_cost_usd: 0.0,
            admission: None,
        }
    }

    /// Holds the request's admission ticket until the record is finished.
    pub fn admitted(&mut self, ticket: keel_admit::Ticket) {
        self.admission = Some(ticket);
    }

    /// The budget reserved and settled, for the `keel` report, if admitted.
    pub fn admission(&self) -> Option<Admission> {
        let t = self.admission.as_ref()?;
        Some(Admission {
            reserved_usd: t.reserved_usd(),
            settled_usd: self.record.cost_usd.unwrap_or(0.0),
        })
    }

    pub fn route(&mut self, route: &str) {
        self.record.route = Some(route.to_owned());
    }

    /// Why routing put the first candidate first (before any attempt ran).
    pub fn route_reason(&mut self, reason: &str) {
        self.record.route_reason = Some(reason.to_owned());
    }

    /// The model that answered and why it did.
    pub fn routed(&mut self, routed: &crate::routing::Routed) {
        self.record.model_served = Some(routed.model.clone());
        self.record.route_reason = Some(routed.reason.clone());
    }

    /// A broken stream was continued by `to`: it is the model that finished the answer.
    pub fn recovered_by(&mut self, from: &str, to: &str) {
        self.record.model_served = Some(to.to_owned());
        let note = format!("stream from {from} continued by {to}");
        self.record.route_reason = Some(match self.record.route_reason.take() {
            Some(reason) => format!("{reason}; {note}"),
            None => note,
        });
    }

    /// Ends the current stage: it ran from the end of the previous one until now.
    /// What the policy rails did so far: the strongest action (the trace's `policy_action`,
    /// unset while nothing fired) and every check that fired.
    pub fn policy(&mut self, action: keel_guard::Action, checks: Vec<serde_json::Value>) {
        self.raw.policy_action =
            (action != keel_guard::Action::Allow).then(|| action.as_str().to_owned());
        self.raw.policy = checks;
    }

    /// The passages the context stage gave the model (for the trace).
    pub fn retrieved(&mut self, passages: Vec<serde_json::Value>) {
        self.raw.retrieved = passages;
    }

    pub fn mark(&mut self, stage: Stage, outcome: StageOutcome) {
        let now = Instant::now();
        self.stages.mark(stage, outcome);
        self.raw.stages.push(StageMark {
            stage,
            outcome,
            start: self.last_mark,
            end: now,
        });
        self.last_mark = now;
    }

    pub fn pass_through(&mut self, stages: &[Stage]) {
        for s in stages {
            self.mark(*s, StageOutcome::Pass);
        }
    }

    /// The stages so far, as the response's `keel.stages` shows them.
    pub fn stages_report(&self) -> Vec<StageReport> {
        self.stages.to_report()
    }

    pub fn attempt(&mut self, c: &Candidate, started: Instant, error: Option<&ProviderError>) {
        self.attempt_until(c, started, Instant::now(), error);
    }

    /// An attempt that ended at `now` (recorded after the fact).
    pub fn attempt_until(
        &mut self,
        c: &Candidate,
        started: Instant,
        now: Instant,
        error: Option<&ProviderError>,
    ) {
        let http_status = match error {
            None => Some(200),
            Some(ProviderError::Status { status, .. }) => Some(*status),
            Some(_) => None,
        };
        self.raw.attempts.push(AttemptMark {
            start: started,
            end: now,
            upstream: c.config.upstream.clone(),
            provider_kind: c.provider_kind,
        });
        self.record.attempts.push(AttemptRecord {
            model: c.name.clone(),
            provider: c.config.provider.clone(),
            outcome: error.map_or_else(|| "ok".to_owned(), ProviderError::class),
            http_status,
            latency_ms: (now - started).as_secs_f64() * 1000.0,
            error: error.map(ToString::to_string),
        });
    }

    /// An attempt cancelled because another one answered first (a hedge): not billed.
    pub fn attempt_cancelled(&mut self, c: &Candidate, started: Instant, outcome: &str) {
        self.attempt_until(c, started, Instant::now(), None);
        if let Some(a) = self.record.attempts.last_mut() {
            outcome.clone_into(&mut a.outcome);
            a.http_status = None;
        }
    }

    /// The last attempt (a committed stream) broke after all, with `error`.
    pub fn attempt_broke(&mut self, error: &ProviderError) {
        if let Some(a) = self.record.attempts.last_mut() {
            a.outcome = error.class();
            a.error = Some(error.to_string());
        }
    }

    /// `usage` of `c`, priced by `c`, on top of the usage of earlier stream segments.
    pub fn usage(&mut self, c: &Candidate, usage: Usage) {
        let (input, output, cost) = self.usage_base;
        self.record.input_tokens = Some(input + usage.prompt_tokens);
        self.record.output_tokens = Some(output + usage.completion_tokens);
        self.record.cost_usd = Some(
            cost + c
                .config
                .cost_usd(usage.prompt_tokens, usage.completion_tokens)
                + self.discarded_cost_usd,
        );
    }

    /// Keeps the usage so far as the base later usage adds to (a stream continues elsewhere).
    /// The base leaves out the discarded answers' cost, which `usage` adds once.
    pub fn seal_usage(&mut self) {
        self.usage_base = (
            self.record.input_tokens.unwrap_or(0),
            self.record.output_tokens.unwrap_or(0),
            self.record
                .cost_usd
                .map_or(0.0, |c| c - self.discarded_cost_usd),
        );
    }

    /// An answer that was paid for but not served: its cost joins the request's (the
    /// tokens recorded stay the served answer's).
    pub fn discarded_usage(&mut self, c: &Candidate, usage: Usage) {
        self.discarded_cost_usd += c
            .config
            .cost_usd(usage.prompt_tokens, usage.completion_tokens);
    }

    pub fn ttft(&mut self, ctx: &RequestContext) {
        if self.record.ttft_ms.is_none() {
            self.record.ttft_ms = Some(ctx.elapsed_ms());
        }
    }

    /// The attempts so far, as the `keel` report shows them.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.record.attempts
    }

    pub fn finish_ok(mut self, ctx: &RequestContext) -> Finished {
        self.record.status = 200;
        self.record.total_ms = ctx.elapsed_ms();
        self.finish()
    }

    pub fn finish_err(mut self, ctx: &RequestContext, error: &ApiError) -> Finished {
        self.record.status = error.code.http_status();
        self.record.error_class = Some(error.code.as_str());
        self.record.error_message = Some(error.message.clone());
        self.record.total_ms = ctx.elapsed_ms();
        self.finish()
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
        self.record.error_message = Some(message);
        self.record.total_ms = ctx.elapsed_ms();
        self.finish()
    }

    /// Every record finishes here, so the admission ticket is settled here: to the usage of
    /// the answered attempt, nothing if none answered (failed attempts are not billed).
    fn finish(mut self) -> Finished {
        if let Some(t) = self.admission.take() {
            let r = &self.record;
            let tokens =
                u64::from(r.input_tokens.unwrap_or(0)) + u64::from(r.output_tokens.unwrap_or(0));
            t.settle(tokens, r.cost_usd.unwrap_or(0.0));
        }
        Finished {
            record: self.record,
            raw: self.raw,
        }
    }
}
