//! `Pipeline`: the request path, stage by stage. Each public method runs the stages in the
//! order of DESIGN.md §2 and writes exactly one request-log record, failed requests included.

use crate::admit;
use crate::attempts;
use crate::catalog::{Candidate, Catalog, Resolved};
use crate::context::RequestContext;
use crate::guard::{GuardState, Guarding};
use crate::observer::Observer;
use crate::record::Recorder;
use crate::recover::Recovery;
use crate::retrieve::{self, Retrieved};
use crate::routing::{self, Routed};
use crate::stages::{Stage, StageOutcome};
use crate::stream::{RecordedStream, open_and_peek};
use crate::trace::{Answer, Seen};
use crate::validate;
use futures::StreamExt;
use futures::stream::BoxStream;
use keel_config::Capability;
use keel_providers::ProviderError;
use keel_types::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, EmbeddingRequest,
    EmbeddingResponse, ModelList,
};
use keel_types::{ApiError, ErrorCode, KeelReport};
use std::sync::Arc;

/// Embeddings have no policy stage yet: both pass, in request order, after admission.
const BEFORE_CONTEXT: [Stage; 2] = [Stage::InputPolicy, Stage::Cache];
/// The cache has no behaviour yet.
const CACHE: [Stage; 1] = [Stage::Cache];
/// The stages after the answer arrived, when no policy applies.
const AFTER_ANSWER: [Stage; 2] = [Stage::OutputPolicy, Stage::Decide];

#[derive(Clone)]
pub struct Pipeline {
    /// Shared: the server clones the pipeline (in its state) for every request.
    catalog: Arc<Catalog>,
    observer: Observer,
    /// Rate limits, budgets and shedding; `None`: the admit stage passes.
    admission: Option<Arc<keel_admit::Admission>>,
    /// Collections for routes with a retrieval step; `None`: retrieval is off.
    library: Option<Arc<keel_retrieval::Library>>,
    /// Policies for the input, context, output and stream rails; `None`: those stages pass.
    guarding: Option<Guarding>,
}

/// A committed chat stream: the first chunk arrived from `model`; failover is over.
pub struct ChatStream {
    pub route: String,
    pub model: String,
    /// Why routing chose `model` (the `x-keel-route-reason` header).
    pub route_reason: String,
    pub stream: BoxStream<'static, Result<ChatCompletionChunk, ApiError>>,
}

impl Pipeline {
    pub fn new(catalog: Catalog, observer: Observer) -> Self {
        Self {
            catalog: Arc::new(catalog),
            observer,
            admission: None,
            library: None,
            guarding: None,
        }
    }

    /// The same pipeline with policy enforcement.
    pub fn with_guard(mut self, guarding: Guarding) -> Self {
        self.guarding = Some(guarding);
        self
    }

    pub fn guarding(&self) -> Option<&Guarding> {
        self.guarding.as_ref()
    }

    /// The input policy stage: the request's rails over its messages (redacting in place).
    /// A rail's `reroute` resolves its route here (admission was the original route's).
    async fn input_policy(
        &self,
        ctx: &RequestContext,
        resolved: &mut Resolved,
        req: &mut ChatCompletionRequest,
        rec: &mut Recorder,
    ) -> Result<Option<GuardState>, ApiError> {
        let state = (self.guarding.as_ref())
            .and_then(|g| g.start(ctx.tenant.as_deref(), resolved.policy.as_deref()));
        let Some(mut state) = state else {
            rec.mark(Stage::InputPolicy, StageOutcome::Pass);
            return Ok(None);
        };
        let checked = state.input(req).await;
        rec.policy(state.action, state.trace_checks());
        if let Err(e) = checked {
            rec.mark(Stage::InputPolicy, StageOutcome::Failed);
            return Err(e);
        }
        if let Some(to) = state.reroute.clone() {
            *resolved = self.resolve(&to, Capability::Chat)?;
            rec.route(&resolved.route);
        }
        rec.mark(Stage::InputPolicy, StageOutcome::Ok);
        Ok(Some(state))
    }

    /// The output policy and decide stages on a whole answer; re-asks once when the answer
    /// breaks the request's JSON schema and the policy checks schemas.
    async fn output_policy(
        ctx: &RequestContext,
        guard: Option<&mut GuardState>,
        reask: Option<(&Resolved, &routing::Plan)>,
        req: &ChatCompletionRequest,
        resp: &mut ChatCompletionResponse,
        rec: &mut Recorder,
    ) -> Result<(), ApiError> {
        let Some(state) = guard else {
            rec.pass_through(&AFTER_ANSWER);
            return Ok(());
        };
        if let (Some(violations), Some((resolved, plan))) =
            (state.schema_violations(req, resp), reask)
        {
            let again = crate::guard::reask_request(req, resp, &violations);
            rec.seal_usage();
            if let Ok((second, served, _)) = routing::chat(ctx, resolved, plan, &again, rec).await {
                if let Some(usage) = second.usage {
                    rec.usage(&served, usage);
                }
                let keel = resp.keel.take();
                *resp = second;
                resp.keel = keel;
                state.reasked = true;
            }
        }
        let checked = state.output(req, resp).await;
        rec.policy(state.action, state.trace_checks());
        if let Err(e) = checked {
            rec.mark(Stage::OutputPolicy, StageOutcome::Failed);
            return Err(e);
        }
        rec.mark(Stage::OutputPolicy, StageOutcome::Ok);
        rec.mark(Stage::Decide, StageOutcome::Ok);
        Ok(())
    }

    /// The same pipeline with collections for its routes' retrieval steps.
    pub fn with_library(mut self, library: Arc<keel_retrieval::Library>) -> Self {
        self.library = Some(library);
        self
    }

    pub fn library(&self) -> Option<&Arc<keel_retrieval::Library>> {
        self.library.as_ref()
    }

    /// The context stage: the route's retrieval step, if it has one, adds sources to `req`.
    async fn context(
        &self,
        ctx: &RequestContext,
        resolved: &Resolved,
        req: &mut ChatCompletionRequest,
        rec: &mut Recorder,
        guard: Option<&mut GuardState>,
    ) -> Option<Retrieved> {
        let (Some(step), Some(library)) = (resolved.retrieval.as_deref(), self.library.as_deref())
        else {
            rec.mark(Stage::Context, StageOutcome::Pass);
            return None;
        };
        let found = retrieve::run(library, ctx, step, req, guard).await;
        if let Some(r) = &found {
            rec.retrieved(r.passages.clone());
        }
        rec.mark(Stage::Context, StageOutcome::Ok);
        found
    }

    /// The same pipeline with admission control in its admit stage.
    pub fn with_admission(mut self, admission: Arc<keel_admit::Admission>) -> Self {
        self.admission = Some(admission);
        self
    }

    /// The admit stage (see [`admit::run`]).
    async fn admit(
        &self,
        ctx: &RequestContext,
        resolved: &Resolved,
        ask: admit::Ask,
        rec: &mut Recorder,
    ) -> Result<(), ApiError> {
        let admission = self.admission.as_deref();
        admit::run(admission, &self.observer, ctx, resolved, ask, rec).await
    }

    pub fn observer(&self) -> &Observer {
        &self.observer
    }

    fn recorder(
        &self,
        ctx: &RequestContext,
        endpoint: &str,
        model: &str,
        stream: bool,
    ) -> Recorder {
        Recorder::new(ctx, endpoint, model, stream)
    }

    pub fn models(&self) -> ModelList {
        self.catalog.models()
    }

    /// Records a request that failed before reaching the pipeline (bad JSON, auth, limits).
    pub fn record_rejected(
        &self,
        ctx: &RequestContext,
        endpoint: &str,
        model: &str,
        error: &ApiError,
    ) {
        let rec = self.recorder(ctx, endpoint, model, false);
        self.observer
            .emit(rec.finish_err(ctx, error), Seen::default());
    }

    fn resolve(&self, name: &str, capability: Capability) -> Result<Resolved, ApiError> {
        self.catalog.resolve(name).cloned().ok_or_else(|| {
            let known = self.catalog.names_with(capability).join(", ");
            ApiError::new(
                ErrorCode::ModelNotFound,
                format!("the model \"{name}\" does not exist; available: {known}"),
            )
            .with_param("model")
        })
    }

    /// Candidates able to serve `req`; if none can, the first one's reason (a 400 naming
    /// the field).
    fn chat_candidates(
        resolved: &Resolved,
        req: &ChatCompletionRequest,
    ) -> Result<Vec<Candidate>, ApiError> {
        let mut first_err = None;
        let ok: Vec<Candidate> = resolved
            .candidates
            .iter()
            .filter(
                |c| match validate::chat_capabilities(req, &c.name, &c.config) {
                    Ok(()) => true,
                    Err(e) => {
                        first_err.get_or_insert(e);
                        false
                    }
                },
            )
            .cloned()
            .collect();
        match (ok.is_empty(), first_err) {
            (true, Some(e)) => Err(e),
            _ => Ok(ok),
        }
    }

    /// A non-streaming chat completion.
    pub async fn chat(
        &self,
        ctx: &RequestContext,
        mut req: ChatCompletionRequest,
    ) -> Result<ChatCompletionResponse, ApiError> {
        let mut rec = self.recorder(ctx, "chat.completions", &req.model, false);
        let result = self.chat_inner(ctx, &mut req, &mut rec).await;
        let (finished, answer) = match &result {
            Ok(resp) => (rec.finish_ok(ctx), Some(Answer::Response(resp))),
            Err(e) => (rec.finish_err(ctx, e), None),
        };
        let seen = Seen {
            request: Some(&req),
            answer,
        };
        self.observer.emit(finished, seen);
        result
    }

    async fn chat_inner(
        &self,
        ctx: &RequestContext,
        req: &mut ChatCompletionRequest,
        rec: &mut Recorder,
    ) -> Result<ChatCompletionResponse, ApiError> {
        validate::chat_request(req)?;
        let mut resolved = self.resolve(&req.model, Capability::Chat)?;
        rec.route(&resolved.route);
        self.admit(ctx, &resolved, admit::chat_ask(req), rec)
            .await?;
        let mut guard = self.input_policy(ctx, &mut resolved, req, rec).await?;
        rec.pass_through(&CACHE);
        let retrieved = self.context(ctx, &resolved, req, rec, guard.as_mut()).await;
        let req = &*req;
        let candidates = Self::chat_candidates(&resolved, req)?;
        let plan = routing::plan(&resolved, req, candidates)?;
        rec.route_reason(&plan.reason);
        rec.mark(Stage::Route, StageOutcome::Ok);
        let (mut resp, served, routed) = routing::chat(ctx, &resolved, &plan, req, rec).await?;
        rec.routed(&routed);
        rec.mark(Stage::Attempts, StageOutcome::Ok);
        if let Some(usage) = resp.usage {
            rec.usage(&served, usage);
        }
        Self::output_policy(
            ctx,
            guard.as_mut(),
            Some((&resolved, &plan)),
            req,
            &mut resp,
            rec,
        )
        .await?;
        rec.mark(Stage::Respond, StageOutcome::Ok);
        rec.mark(Stage::Record, StageOutcome::Ok);
        resp.model = served.name.clone();
        resp.keel = Some(Box::new(KeelReport {
            request_id: Some(ctx.request_id.clone()),
            route: Some(resolved.route.clone()),
            model: Some(served.name.clone()),
            provider: Some(served.config.provider.clone()),
            routing: Some(routed.report),
            attempts: Some(rec.attempts().to_vec()),
            stages: Some(rec.stages_report()),
            trace_id: Some(ctx.trace.trace_id.to_string()),
            admission: rec.admission(),
            retrieval: retrieved.map(|r| r.summary),
            policy: guard.map(|g| g.report()),
            recovered: None,
        }));
        Ok(resp)
    }

    /// A streaming chat completion. Fails over between candidates until one produced its
    /// first chunk; after that the stream is committed and a failure ends it with an error.
    pub async fn chat_stream(
        &self,
        ctx: &RequestContext,
        mut req: ChatCompletionRequest,
    ) -> Result<ChatStream, ApiError> {
        let mut rec = self.recorder(ctx, "chat.completions", &req.model, true);
        match self.chat_stream_inner(ctx, &mut req, &mut rec).await {
            Ok((mut first, rest, served, route, routed, recovery, retrieved, guard)) => {
                if retrieved.is_some() || guard.is_some() {
                    // The first chunk says what was retrieved (citations before the answer)
                    // and what the input and context rails did.
                    let keel = first.keel.get_or_insert_default();
                    if let Some(r) = retrieved {
                        keel.retrieval = Some(r.summary);
                    }
                    if let Some(g) = &guard {
                        keel.policy = Some(g.report());
                    }
                }
                let stream = RecordedStream::new(
                    ctx.clone(),
                    rec,
                    self.observer.clone(),
                    served.clone(),
                    req,
                    first,
                    rest,
                )
                .with_recovery(recovery);
                let stream = match guard {
                    Some(g) => self.guard_stream(stream.boxed(), g),
                    None => stream.boxed(),
                };
                Ok(ChatStream {
                    route,
                    model: served.name,
                    route_reason: routed.reason,
                    stream,
                })
            }
            Err(e) => {
                let seen = Seen {
                    request: Some(&req),
                    answer: None,
                };
                self.observer.emit(rec.finish_err(ctx, &e), seen);
                Err(e)
            }
        }
    }

    async fn chat_stream_inner(
        &self,
        ctx: &RequestContext,
        req: &mut ChatCompletionRequest,
        rec: &mut Recorder,
    ) -> Result<
        (
            ChatCompletionChunk,
            keel_providers::ChunkStream,
            Candidate,
            String,
            Routed,
            Option<Recovery>,
            Option<Retrieved>,
            Option<GuardState>,
        ),
        ApiError,
    > {
        validate::chat_request(req)?;
        let mut resolved = self.resolve(&req.model, Capability::Chat)?;
        rec.route(&resolved.route);
        self.admit(ctx, &resolved, admit::chat_ask(req), rec)
            .await?;
        let mut guard = self.input_policy(ctx, &mut resolved, req, rec).await?;
        rec.pass_through(&CACHE);
        let retrieved = self.context(ctx, &resolved, req, rec, guard.as_mut()).await;
        let req = &*req;
        let candidates = Self::chat_candidates(&resolved, req)?;
        let plan = routing::plan(&resolved, req, candidates)?;
        rec.route_reason(&plan.reason);
        rec.mark(Stage::Route, StageOutcome::Ok);
        // A cascade judges buffered answers of its cheaper tiers first; only the last streams.
        let mut steps = Vec::new();
        let mut candidates = plan.order.as_slice();
        if plan.strategy == keel_config::RouteStrategy::Cascade {
            if let Some((mut resp, served)) =
                routing::cascade::buffered(ctx, &resolved, &plan, req, rec, &mut steps).await
            {
                let routed =
                    routing::cascade::stream_routed(&resolved, &plan, &served, &steps, false);
                rec.routed(&routed);
                rec.mark(Stage::Attempts, StageOutcome::Ok);
                Self::output_policy(ctx, guard.as_mut(), None, req, &mut resp, rec).await?;
                let (first, rest) = routing::replay_stream(resp);
                let route = resolved.route;
                return Ok((first, rest, served, route, routed, None, retrieved, guard));
            }
            candidates = &candidates[candidates.len().saturating_sub(1)..];
        }
        let ttft_timeout = resolved.ttft_timeout;
        // Recovery may continue on any capable model of the plan but the one that broke.
        let recovery = (resolved.stream_recovery.clone())
            .map(|r| Recovery::new(ctx, r, plan.order.clone(), ttft_timeout));
        let ((first, rest), served) = attempts::run(
            ctx,
            &resolved.route,
            &resolved.retry,
            candidates,
            rec,
            |c| {
                let upstream = routing::upstream_request(req, c);
                let provider = c.provider.clone();
                async move {
                    // The route's `ttft_timeout` bounds the wait for the first chunk from the
                    // start of the attempt: a slow first token is a timeout, so the route
                    // falls over.
                    let peek = open_and_peek(&*provider, upstream);
                    match ttft_timeout {
                        None => peek.await,
                        Some(limit) => tokio::time::timeout(limit, peek)
                            .await
                            .map_err(|_| ProviderError::Timeout(limit))?,
                    }
                }
            },
        )
        .await?;
        let routed = match plan.strategy {
            keel_config::RouteStrategy::Cascade => {
                routing::cascade::stream_routed(&resolved, &plan, &served, &steps, true)
            }
            _ => plan.routed(&served, None, None),
        };
        rec.routed(&routed);
        rec.mark(Stage::Attempts, StageOutcome::Ok);
        if guard.is_some() {
            // The stream rails judge the answer as it streams (guard_stream).
            rec.mark(Stage::OutputPolicy, StageOutcome::Ok);
            rec.mark(Stage::Decide, StageOutcome::Ok);
        } else {
            rec.pass_through(&AFTER_ANSWER);
        }
        Ok((
            first,
            rest,
            served,
            resolved.route,
            routed,
            recovery,
            retrieved,
            guard,
        ))
    }

    /// A committed stream through the policy's stream rails, with redacted input values
    /// restored (when the policy restores and there are any).
    fn guard_stream(
        &self,
        stream: BoxStream<'static, Result<ChatCompletionChunk, ApiError>>,
        g: GuardState,
    ) -> BoxStream<'static, Result<ChatCompletionChunk, ApiError>> {
        let restore = g.policy.restore_redactions && !g.redactions.is_empty();
        if g.policy.stream.is_empty() && !restore {
            return stream;
        }
        let embed = self.guarding.as_ref().and_then(|x| x.embed.clone());
        let redactions = restore.then(|| Arc::new(g.redactions));
        crate::guard_stream::guard_stream(stream, g.policy, embed, redactions)
    }

    /// Embeddings, always as float vectors (the server encodes base64).
    pub async fn embed(
        &self,
        ctx: &RequestContext,
        req: EmbeddingRequest,
    ) -> Result<EmbeddingResponse, ApiError> {
        let mut rec = self.recorder(ctx, "embeddings", &req.model, false);
        let result = self.embed_inner(ctx, req, &mut rec).await;
        let finished = match &result {
            Ok(_) => rec.finish_ok(ctx),
            Err(e) => rec.finish_err(ctx, e),
        };
        self.observer.emit(finished, Seen::default());
        result
    }

    async fn embed_inner(
        &self,
        ctx: &RequestContext,
        req: EmbeddingRequest,
        rec: &mut Recorder,
    ) -> Result<EmbeddingResponse, ApiError> {
        validate::embedding_request(&req)?;
        let resolved = self.resolve(&req.model, Capability::Embeddings)?;
        rec.route(&resolved.route);
        self.admit(ctx, &resolved, admit::embed_ask(&req), rec)
            .await?;
        rec.pass_through(&BEFORE_CONTEXT);
        rec.mark(Stage::Context, StageOutcome::Pass);
        let candidates: Vec<Candidate> = resolved
            .candidates
            .iter()
            .filter(|c| c.config.can(Capability::Embeddings))
            .cloned()
            .collect();
        if candidates.is_empty() {
            return Err(ApiError::unsupported(
                "model",
                format!("model \"{}\" does not support embeddings", req.model),
            ));
        }
        rec.mark(Stage::Route, StageOutcome::Ok);
        let (mut resp, served) = attempts::run(
            ctx,
            &resolved.route,
            &resolved.retry,
            &candidates,
            rec,
            |c| {
                let mut upstream = req.clone();
                upstream.model = c.config.upstream.clone();
                upstream.encoding_format = None;
                let provider = c.provider.clone();
                async move { provider.embed(upstream).await }
            },
        )
        .await?;
        rec.mark(Stage::Attempts, StageOutcome::Ok);
        rec.usage(
            &served,
            keel_types::openai::Usage::new(resp.usage.prompt_tokens, 0),
        );
        resp.model = served.name;
        rec.mark(Stage::Respond, StageOutcome::Ok);
        Ok(resp)
    }
}
