//! `RecordedStream`: a committed chat stream as the client receives it. It names the served
//! model on every chunk, measures time to first token, takes usage from the upstream's final
//! chunk (dropping that chunk unless the client asked for `stream_options.include_usage`),
//! and writes the request record exactly once: when the stream ends, fails, or is dropped
//! because the client went away. On a route with `stream_recovery`, a failure may instead be
//! continued on another model ([`crate::recover`]).

use crate::catalog::Candidate;
use crate::context::RequestContext;
use crate::observer::Observer;
use crate::record::Recorder;
use crate::recover::Recovery;
use crate::stages::{Stage, StageOutcome};
use crate::trace::{Answer, Seen};
use futures::{Stream, StreamExt};
use keel_providers::{ChunkStream, Provider, ProviderError};
use keel_types::ApiError;
use keel_types::openai::{ChatCompletionChunk, ChatCompletionRequest};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Opens a stream and waits for its first chunk: only a stream that produced one is committed
/// to (by the attempts stage, or by a recovery taking a broken stream over).
pub(crate) async fn open_and_peek(
    provider: &dyn Provider,
    req: ChatCompletionRequest,
) -> Result<(ChatCompletionChunk, ChunkStream), ProviderError> {
    let mut stream = provider.chat_stream(req).await?;
    match stream.next().await {
        Some(Ok(first)) => Ok((first, stream)),
        Some(Err(e)) => Err(e),
        None => Err(ProviderError::Stream(
            "stream ended before its first chunk".into(),
        )),
    }
}

pub struct RecordedStream {
    ctx: RequestContext,
    rec: Option<Recorder>,
    observer: Observer,
    /// The answer so far (for drift and the trace), and its finish reasons.
    text: String,
    finish_reasons: Vec<String>,
    response_id: String,
    served: Candidate,
    /// Kept to record what the model saw once the stream ends.
    request: ChatCompletionRequest,
    include_usage: bool,
    first: Option<ChatCompletionChunk>,
    inner: ChunkStream,
    recovery: Option<Recovery>,
}

impl RecordedStream {
    pub fn new(
        ctx: RequestContext,
        rec: Recorder,
        observer: Observer,
        served: Candidate,
        request: ChatCompletionRequest,
        first: ChatCompletionChunk,
        inner: ChunkStream,
    ) -> Self {
        Self {
            ctx,
            rec: Some(rec),
            observer,
            text: String::new(),
            finish_reasons: Vec::new(),
            response_id: first.id.clone(),
            served,
            include_usage: request.wants_stream_usage(),
            request,
            first: Some(first),
            inner,
            recovery: None,
        }
    }

    /// Continue a broken stream on another model per the route's `stream_recovery`.
    pub fn with_recovery(mut self, recovery: Option<Recovery>) -> Self {
        self.recovery = recovery;
        self
    }

    fn finish(&mut self, error: Option<(&str, String)>) {
        if let Some(mut rec) = self.rec.take() {
            let outcome = if error.is_none() {
                StageOutcome::Ok
            } else {
                StageOutcome::Failed
            };
            rec.mark(Stage::Respond, outcome);
            let finished = match error {
                None => rec.finish_ok(&self.ctx),
                Some((class, message)) => rec.finish_stream_err(&self.ctx, class, message),
            };
            let seen = Seen {
                request: Some(&self.request),
                answer: Some(Answer::Streamed {
                    id: &self.response_id,
                    text: &self.text,
                    finish_reasons: &self.finish_reasons,
                }),
            };
            self.observer.emit(finished, seen);
        }
    }
}

fn carries_output(chunk: &ChatCompletionChunk) -> bool {
    chunk.choices.iter().any(|c| {
        c.delta.content.as_deref().is_some_and(|s| !s.is_empty()) || c.delta.tool_calls.is_some()
    })
}

impl Stream for RecordedStream {
    type Item = Result<ChatCompletionChunk, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.rec.is_none() {
                return Poll::Ready(None);
            }
            let item = match (this.first.take(), this.recovery.as_mut(), this.rec.as_mut()) {
                (Some(first), _, _) => Some(Ok(first)),
                (None, Some(r), Some(rec)) if r.searching() => match r.poll_resume(cx, rec) {
                    Poll::Ready(Ok(resumed)) => {
                        rec.recovered_by(&this.served.name, &resumed.served.name);
                        this.served = resumed.served;
                        this.inner = resumed.stream;
                        Some(Ok(resumed.first))
                    }
                    Poll::Ready(Err(e)) => Some(Err(e)),
                    Poll::Pending => return Poll::Pending,
                },
                (None, _, _) => match this.inner.poll_next_unpin(cx) {
                    Poll::Ready(item) => item,
                    Poll::Pending => return Poll::Pending,
                },
            };
            match item {
                None => {
                    this.finish(None);
                    return Poll::Ready(None);
                }
                Some(Err(e)) => {
                    // A stream broken after its first chunk says the deployment is unhealthy
                    // as much as a failed call does (its first chunk already counted a success).
                    this.served
                        .breaker
                        .record_error(std::time::Instant::now(), &e);
                    let e = match (this.recovery.as_mut(), this.rec.as_mut()) {
                        (Some(r), Some(rec)) => {
                            match r.begin(e, &this.served, &this.request, &this.text, rec) {
                                Ok(()) => continue,
                                Err(e) => e,
                            }
                        }
                        _ => e,
                    };
                    let api = e.to_api_error(&this.served.upstream_label());
                    this.finish(Some((&e.class(), api.message.clone())));
                    return Poll::Ready(Some(Err(api)));
                }
                Some(Ok(mut chunk)) => {
                    if let Some(r) = this.recovery.as_mut()
                        && !r.admit(&mut chunk)
                    {
                        continue;
                    }
                    for c in &chunk.choices {
                        if let Some(t) = &c.delta.content {
                            this.text.push_str(t);
                        }
                        if let Some(r) = c.finish_reason {
                            this.finish_reasons.push(r.as_str().to_owned());
                        }
                    }
                    chunk.model.clone_from(&this.served.name);
                    if carries_output(&chunk)
                        && let Some(rec) = this.rec.as_mut()
                    {
                        rec.ttft(&this.ctx);
                    }
                    if let Some(usage) = chunk.usage {
                        if let Some(rec) = this.rec.as_mut() {
                            rec.usage(&this.served, usage);
                        }
                        if !this.include_usage {
                            if chunk.choices.is_empty() {
                                continue;
                            }
                            chunk.usage = None;
                        }
                    }
                    if let Some(r) = &this.recovery {
                        r.decorate(&mut chunk);
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
            }
        }
    }
}

impl Drop for RecordedStream {
    fn drop(&mut self) {
        if self.rec.is_some() {
            self.finish(Some((
                "client_closed",
                "the client disconnected before the stream finished".into(),
            )));
        }
    }
}
