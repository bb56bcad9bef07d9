//! Mid-stream recovery (`[routes.X] stream_recovery`): when a committed stream breaks (cut,
//! malformed chunk, idle stall) after part of the answer reached the client, another model of
//! the route continues the answer and keel stitches its output onto the same client stream.
//! [`crate::stream::RecordedStream`] drives it through three calls: [`Recovery::admit`] and
//! [`Recovery::decorate`] around every chunk, [`Recovery::begin`] on an error, then
//! [`Recovery::poll_resume`] until a model took over or none could.
//!
//! - Which model: the route's candidates after the one that broke, then those before it,
//!   never the one that broke; open circuits are skipped. Each is tried once (no retries),
//!   within the request deadline and the route's `ttft_timeout`, until one sends its first
//!   chunk.
//! - What it is sent: the original request plus the partial answer as a final assistant
//!   message when the model has the `assistant_prefill` capability. A model without it is
//!   never sent a request ending with an assistant message: with `without_prefill =
//!   "instruct"` (the default) the partial answer is followed by a user message asking to
//!   continue exactly where it stopped ([`CONTINUE_INSTRUCTION`]); with `"skip"` the model is
//!   not used. If nothing but the role had arrived, the original request is sent as is.
//! - When not: after `max` recoveries; once the answer had finished (a finish reason arrived
//!   and only the terminator was missing); when it carries tool calls or several choices (a
//!   half tool call cannot be continued); past the deadline. Then the client gets the error
//!   event, as without recovery.
//! - Stitching: the client keeps the response id and `created`; the continuation's role delta
//!   is dropped; chunks name the model that produced them; the finish reason is the
//!   continuation's; usage adds up (what each segment's upstream reported). The chunks with
//!   the finish reason or the usage carry `keel: {"model", "recovered": [{"from", "to",
//!   "after_chars"}]}`, one entry per recovery.
//! - Record: the broken attempt's outcome becomes its error class, each continuation attempt
//!   is another attempt, tokens and cost add up with each model priced at its own rate.
//!   Continuation attempts still in flight when the client leaves are not recorded.

use crate::catalog::Candidate;
use crate::context::RequestContext;
use crate::record::Recorder;
use crate::stream::open_and_peek;
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_config::{Capability, StreamRecoveryConfig, WithoutPrefill};
use keel_providers::{ChunkStream, ProviderError};
use keel_types::KeelReport;
use keel_types::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Role, Usage};
use serde_json::{Value, json};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

/// The user message after the partial answer, for a model without assistant prefill.
pub const CONTINUE_INSTRUCTION: &str = "Your previous answer was cut off. Continue it exactly \
     where it stopped, mid-word if need be. Do not repeat anything already written and do not \
     comment: output only the rest of the answer.";

/// A model that took over a broken stream: its first chunk and the rest of its stream.
pub struct Resumed {
    pub served: Candidate,
    pub first: ChatCompletionChunk,
    pub stream: ChunkStream,
}

/// One continuation attempt, recorded when the search ends.
struct Tried {
    candidate: Candidate,
    started: Instant,
    ended: Instant,
    error: Option<ProviderError>,
}

type Search = BoxFuture<'static, (Vec<Tried>, Option<Resumed>)>;

/// The recovery state of one committed stream on a route with `stream_recovery`.
pub struct Recovery {
    config: StreamRecoveryConfig,
    /// The route's candidates able to serve the request, in route order.
    candidates: Vec<Candidate>,
    ttft_timeout: Option<Duration>,
    deadline: Instant,
    request_id: String,
    /// One entry per recovery so far, as the `keel` extension shows it.
    marks: Vec<Value>,
    /// The answer so far cannot be continued (tool calls, several choices, finished), or a
    /// search already failed.
    ruled_out: bool,
    /// Usage reported by the current segment, and by the earlier ones together.
    segment_usage: Option<Usage>,
    earlier_usage: Option<Usage>,
    /// The response id and `created` of the first chunk, kept by every later one.
    first_id: Option<(String, u64)>,
    /// The next chunk is a continuation's first: its role delta is dropped.
    fresh: bool,
    /// While searching: the error that broke the stream, the model it broke on and the
    /// characters the client had received.
    broken: Option<(ProviderError, String, usize)>,
    search: Option<Search>,
}

impl Recovery {
    pub fn new(
        ctx: &RequestContext,
        config: StreamRecoveryConfig,
        candidates: Vec<Candidate>,
        ttft_timeout: Option<Duration>,
    ) -> Self {
        Self {
            config,
            candidates,
            ttft_timeout,
            deadline: ctx.deadline,
            request_id: ctx.request_id.clone(),
            marks: Vec::new(),
            ruled_out: false,
            segment_usage: None,
            earlier_usage: None,
            first_id: None,
            fresh: false,
            broken: None,
            search: None,
        }
    }

    /// Before the stream handles `chunk`: notes what rules recovery out and the usage, and
    /// stitches a continuation's chunk. `false`: drop the chunk (an empty role delta).
    pub fn admit(&mut self, chunk: &mut ChatCompletionChunk) -> bool {
        if chunk.usage.is_some() {
            self.segment_usage = chunk.usage;
        }
        match &self.first_id {
            None => self.first_id = Some((chunk.id.clone(), chunk.created)),
            Some((id, created)) => {
                chunk.id.clone_from(id);
                chunk.created = *created;
            }
        }
        let fresh = std::mem::take(&mut self.fresh);
        for c in &mut chunk.choices {
            if c.index > 0 || c.delta.tool_calls.is_some() || c.finish_reason.is_some() {
                self.ruled_out = true;
            }
            if fresh {
                c.delta.role = None;
            }
        }
        let empty = chunk.usage.is_none()
            && chunk.choices.iter().all(|c| {
                c.finish_reason.is_none()
                    && c.delta.tool_calls.is_none()
                    && c.delta.content.as_deref().is_none_or(str::is_empty)
            });
        !(fresh && empty)
    }

    /// Before `chunk` goes to the client: after a recovery, adds the earlier segments' usage
    /// and marks the last chunks with the `keel` extension.
    pub fn decorate(&self, chunk: &mut ChatCompletionChunk) {
        if self.marks.is_empty() {
            return;
        }
        if let (Some(u), Some(e)) = (chunk.usage.as_mut(), self.earlier_usage) {
            *u = add(*u, e);
        }
        if chunk.usage.is_some() || chunk.choices.iter().any(|c| c.finish_reason.is_some()) {
            chunk.keel = Some(Box::new(KeelReport {
                model: Some(chunk.model.clone()),
                recovered: Some(Value::Array(self.marks.clone())),
                ..KeelReport::default()
            }));
        }
    }

    /// The stream on `broken` failed with `error` after `partial` reached the client: starts
    /// looking for a model to continue, or gives `error` back when recovery does not apply.
    pub fn begin(
        &mut self,
        error: ProviderError,
        broken: &Candidate,
        request: &ChatCompletionRequest,
        partial: &str,
        rec: &mut Recorder,
    ) -> Result<(), ProviderError> {
        let spent = self.marks.len() >= usize::try_from(self.config.max).unwrap_or(usize::MAX);
        if self.ruled_out
            || spent
            || request.n.is_some_and(|n| n > 1)
            || Instant::now() >= self.deadline
        {
            return Err(error);
        }
        let plan = self.plan(broken, request, partial);
        if plan.is_empty() {
            return Err(error);
        }
        tracing::info!(request_id = %self.request_id, model = %broken.name, error = %error, after_chars = partial.chars().count(), "stream broke mid-answer: recovering on another model");
        rec.attempt_broke(&error);
        rec.seal_usage();
        if let Some(u) = self.segment_usage.take() {
            self.earlier_usage = Some(self.earlier_usage.map_or(u, |e| add(e, u)));
        }
        self.broken = Some((error, broken.name.clone(), partial.chars().count()));
        self.search = Some(search(plan, self.deadline, self.ttft_timeout).boxed());
        Ok(())
    }

    /// Whether a search for a continuing model is under way.
    pub fn searching(&self) -> bool {
        self.search.is_some()
    }

    /// Drives the search; records its attempts when it ends. `Err`: no model could continue,
    /// with the error that broke the stream.
    pub fn poll_resume(
        &mut self,
        cx: &mut Context<'_>,
        rec: &mut Recorder,
    ) -> Poll<Result<Resumed, ProviderError>> {
        let Some(search) = self.search.as_mut() else {
            return Poll::Ready(Err(ProviderError::Stream("no recovery under way".into())));
        };
        let (tried, resumed) = ready!(search.poll_unpin(cx));
        self.search = None;
        for t in &tried {
            rec.attempt_until(&t.candidate, t.started, t.ended, t.error.as_ref());
        }
        let (error, from, after_chars) = self.broken.take().unwrap_or_else(|| {
            (
                ProviderError::Stream("stream broke".into()),
                String::new(),
                0,
            )
        });
        match resumed {
            Some(r) => {
                tracing::info!(request_id = %self.request_id, from = %from, to = %r.served.name, "stream recovered");
                self.marks
                    .push(json!({"from": from, "to": r.served.name, "after_chars": after_chars}));
                self.fresh = true;
                Poll::Ready(Ok(r))
            }
            None => {
                tracing::warn!(request_id = %self.request_id, tried = tried.len(), "no model could continue the broken stream");
                self.ruled_out = true;
                Poll::Ready(Err(error))
            }
        }
    }

    /// The models to try, each with the request it would get.
    fn plan(
        &self,
        broken: &Candidate,
        request: &ChatCompletionRequest,
        partial: &str,
    ) -> Vec<(Candidate, ChatCompletionRequest)> {
        let after = self
            .candidates
            .iter()
            .position(|c| c.name == broken.name)
            .map_or(0, |i| i + 1);
        let (before, rest) = self.candidates.split_at(after.min(self.candidates.len()));
        rest.iter()
            .chain(before)
            .filter(|c| c.name != broken.name)
            .filter_map(|c| {
                let prefill = c.config.can(Capability::AssistantPrefill);
                if !prefill && self.config.without_prefill == WithoutPrefill::Skip {
                    return None;
                }
                let req = continuation(request, partial, prefill, &c.config.upstream);
                Some((c.clone(), req))
            })
            .collect()
    }
}

/// The request asking a model to continue `partial`: as an assistant prefill, or followed
/// by [`CONTINUE_INSTRUCTION`].
fn continuation(
    request: &ChatCompletionRequest,
    partial: &str,
    prefill: bool,
    upstream: &str,
) -> ChatCompletionRequest {
    let mut req = request.clone();
    upstream.clone_into(&mut req.model);
    req.extra.remove(crate::routing::prefs::EXTENSION);
    if !partial.is_empty() {
        req.messages
            .push(ChatMessage::text(Role::Assistant, partial));
        if !prefill {
            req.messages
                .push(ChatMessage::text(Role::User, CONTINUE_INSTRUCTION));
        }
    }
    req
}

/// Tries each planned model once until one sends its first chunk; reports every outcome to
/// the model's circuit breaker.
async fn search(
    plan: Vec<(Candidate, ChatCompletionRequest)>,
    deadline: Instant,
    ttft_timeout: Option<Duration>,
) -> (Vec<Tried>, Option<Resumed>) {
    let mut tried = Vec::new();
    for (c, req) in plan {
        let started = Instant::now();
        let remaining = deadline.saturating_duration_since(started);
        if remaining.is_zero() {
            break;
        }
        if !c.breaker.allow(started) {
            continue;
        }
        let limit = ttft_timeout.map_or(remaining, |t| t.min(remaining));
        let result = match tokio::time::timeout(limit, open_and_peek(&*c.provider, req)).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout(started.elapsed())),
        };
        let ended = Instant::now();
        match result {
            Ok((first, stream)) => {
                c.breaker.record_success(ended);
                tried.push(Tried {
                    candidate: c.clone(),
                    started,
                    ended,
                    error: None,
                });
                let resumed = Resumed {
                    served: c,
                    first,
                    stream,
                };
                return (tried, Some(resumed));
            }
            Err(e) => {
                if matches!(e, ProviderError::Timeout(_)) && limit == remaining {
                    // Cut by the request's own deadline: says nothing about the model.
                    c.breaker.record_neutral();
                } else {
                    c.breaker.record_error(ended, &e);
                }
                tracing::warn!(model = %c.name, error = %e, "continuation attempt failed");
                tried.push(Tried {
                    candidate: c,
                    started,
                    ended,
                    error: Some(e),
                });
            }
        }
    }
    (tried, None)
}

fn add(a: Usage, b: Usage) -> Usage {
    Usage::new(
        a.prompt_tokens.saturating_add(b.prompt_tokens),
        a.completion_tokens.saturating_add(b.completion_tokens),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn request() -> ChatCompletionRequest {
        serde_json::from_value(json!({
            "model": "r", "messages": [{"role": "user", "content": "hi"}], "stream": true
        }))
        .unwrap()
    }

    #[test]
    fn a_prefill_continuation_ends_with_the_partial_answer() {
        let req = continuation(&request(), "Hello wor", true, "up-b");
        assert_eq!(req.model, "up-b");
        assert_eq!(req.messages.len(), 2);
        assert_eq!(req.messages[1].role, Role::Assistant);
        assert_eq!(req.messages[1].text_content(), "Hello wor");
    }

    #[test]
    fn without_prefill_an_instruction_follows_the_partial_answer() {
        let req = continuation(&request(), "Hello wor", false, "up-b");
        let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
        assert_eq!(req.messages[2].text_content(), CONTINUE_INSTRUCTION);
    }

    #[test]
    fn with_nothing_received_the_request_is_sent_as_is() {
        let req = continuation(&request(), "", false, "up-b");
        assert_eq!(req.messages, request().messages);
    }
}
