//! Hedged requests (`[routes.X] hedge = { after, max }`), for non-streaming calls only (a
//! stream is committed to its first chunk, see [`crate::pipeline`]). The attempts stage of a
//! hedged route runs here instead of [`crate::attempts::run`]:
//!
//! - The first candidate whose circuit admits calls starts. Whenever `after` passes since the
//!   last start without an answer, the next candidate starts as well, up to `max` such
//!   hedges. The first success wins; the attempts still running are cancelled, recorded with
//!   the outcome `hedged_cancelled` (no usage: not billed) and reported to their circuit as
//!   neutral (a cancelled call says nothing about the model).
//! - A failed attempt falls over to the next candidate at once, as a fallback does (that
//!   start is not a hedge). A hedged route does not retry the same model: hedging is its
//!   answer to a slow or failing model. A client error (non-retryable) stops everything.
//! - Candidates whose circuit is open are skipped; when that leaves none, all are tried in
//!   order, as in [`crate::attempts`]. Nothing runs past the request deadline: attempts
//!   still running then are recorded as timeouts.

use crate::attempts::{Failure, final_error};
use crate::catalog::Candidate;
use crate::context::RequestContext;
use crate::record::Recorder;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use keel_config::HedgeConfig;
use keel_providers::ProviderError;
use keel_types::ApiError;
use std::future::Future;
use std::time::Instant;

/// The outcome of a cancelled hedge, as the request record shows it.
pub const HEDGED_CANCELLED: &str = "hedged_cancelled";

/// Hands out candidates in route order, skipping open circuits; when it handed out none
/// before running dry, it starts over ignoring the circuits.
struct Picker<'a> {
    candidates: &'a [Candidate],
    next: usize,
    force: bool,
    handed_out: bool,
}

impl<'a> Picker<'a> {
    fn pick(&mut self, ctx: &RequestContext) -> Option<(usize, &'a Candidate)> {
        loop {
            while let Some(c) = self.candidates.get(self.next) {
                let i = self.next;
                self.next += 1;
                if self.force || c.breaker.allow(Instant::now()) {
                    self.handed_out = true;
                    return Some((i, c));
                }
                tracing::debug!(request_id = %ctx.request_id, model = %c.name, "circuit not admitting calls: skipping candidate");
            }
            if self.handed_out || self.force {
                return None;
            }
            self.force = true;
            self.next = 0;
        }
    }
}

/// Runs `call` against the candidates with hedging per `hedge` until one succeeds; errors as
/// [`crate::attempts::run`] reports them.
pub async fn run<T, F, Fut>(
    ctx: &RequestContext,
    route: &str,
    hedge: &HedgeConfig,
    candidates: &[Candidate],
    rec: &mut Recorder,
    mut call: F,
) -> Result<(T, Candidate), ApiError>
where
    F: FnMut(&Candidate) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let deadline = tokio::time::Instant::from_std(ctx.deadline);
    let mut picker = Picker {
        candidates,
        next: 0,
        force: false,
        handed_out: false,
    };
    let mut running = FuturesUnordered::new();
    // (candidate index, start) of every attempt in flight.
    let mut in_flight: Vec<(usize, Instant)> = Vec::new();
    let mut failures: Vec<Failure> = Vec::new();
    let mut hedges = 0u32;
    let mut next_hedge = tokio::time::Instant::now() + hedge.after;
    let mut launch = |i: usize, c: &Candidate, in_flight: &mut Vec<(usize, Instant)>| {
        let started = Instant::now();
        in_flight.push((i, started));
        call(c).map(move |r| (i, started, r))
    };
    if ctx.remaining().is_zero() {
        return Err(final_error(route, failures));
    }
    match picker.pick(ctx) {
        Some((i, c)) => running.push(launch(i, c, &mut in_flight)),
        None => return Err(final_error(route, failures)),
    }
    let mut dry = false;
    loop {
        tokio::select! {
            Some((i, started, result)) = running.next() => {
                in_flight.retain(|(j, _)| *j != i);
                let c = &candidates[i];
                match result {
                    Ok(value) => {
                        c.breaker.record_success(Instant::now());
                        cancel(ctx, candidates, &in_flight, Some((i, started)), rec);
                        return Ok((value, c.clone()));
                    }
                    Err(e) => {
                        c.breaker.record_error(Instant::now(), &e);
                        rec.attempt(c, started, Some(&e));
                        tracing::warn!(request_id = %ctx.request_id, upstream = %c.upstream_label(), error = %e, "hedged attempt failed");
                        let stop = !e.retryable() && !e.is_context_length();
                        failures.push(Failure { label: c.upstream_label(), attempts: 1, error: e });
                        if stop {
                            cancel(ctx, candidates, &in_flight, None, rec);
                            return Err(final_error(route, failures));
                        }
                        match picker.pick(ctx) {
                            Some((j, next)) => {
                                running.push(launch(j, next, &mut in_flight));
                                next_hedge = tokio::time::Instant::now() + hedge.after;
                            }
                            None if running.is_empty() => return Err(final_error(route, failures)),
                            None => dry = true,
                        }
                    }
                }
            }
            () = tokio::time::sleep_until(next_hedge), if hedges < hedge.max && !dry => {
                match picker.pick(ctx) {
                    Some((j, next)) => {
                        tracing::info!(request_id = %ctx.request_id, model = %next.name, "no answer yet: hedging on the next model");
                        hedges += 1;
                        running.push(launch(j, next, &mut in_flight));
                        next_hedge = tokio::time::Instant::now() + hedge.after;
                    }
                    None => dry = true,
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                for (i, started) in &in_flight {
                    let c = &candidates[*i];
                    let e = ProviderError::Timeout(started.elapsed());
                    // Cut by the request's own deadline: says nothing about the model.
                    c.breaker.record_neutral();
                    rec.attempt(c, *started, Some(&e));
                    failures.push(Failure { label: c.upstream_label(), attempts: 1, error: e });
                }
                return Err(final_error(route, failures));
            }
        }
    }
}

/// Records the attempts still in flight as cancelled, and the winner if any, in the order
/// they started; their futures are dropped by the caller.
fn cancel(
    ctx: &RequestContext,
    candidates: &[Candidate],
    in_flight: &[(usize, Instant)],
    winner: Option<(usize, Instant)>,
    rec: &mut Recorder,
) {
    let mut all: Vec<(usize, Instant, bool)> =
        in_flight.iter().map(|&(i, s)| (i, s, false)).collect();
    all.extend(winner.map(|(i, s)| (i, s, true)));
    all.sort_by_key(|a| a.1);
    for (i, started, won) in all {
        let c = &candidates[i];
        if won {
            rec.attempt(c, started, None);
            continue;
        }
        c.breaker.record_neutral();
        rec.attempt_cancelled(c, started, HEDGED_CANCELLED);
        tracing::debug!(request_id = %ctx.request_id, model = %c.name, "hedged attempt cancelled");
    }
}
