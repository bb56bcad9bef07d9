//! The attempts stage: a plain loop over the candidates in order. Each attempt is bounded by
//! the request's remaining time; a retryable failure moves on to the next candidate, a
//! client-side failure stops at once. Every attempt lands in the request record.

use crate::catalog::Candidate;
use crate::context::RequestContext;
use crate::record::Recorder;
use keel_providers::ProviderError;
use keel_types::{ApiError, ErrorCode};
use std::future::Future;
use std::time::Instant;

/// Runs `call` against each candidate until one succeeds. On failure the error names every
/// upstream tried and why it failed; its status is the last failure's.
pub async fn run<T, F, Fut>(
    ctx: &RequestContext,
    route: &str,
    candidates: &[Candidate],
    rec: &mut Recorder,
    mut call: F,
) -> Result<(T, Candidate), ApiError>
where
    F: FnMut(&Candidate) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut failures: Vec<(String, ProviderError)> = Vec::new();
    for c in candidates {
        let remaining = ctx.remaining();
        if remaining.is_zero() {
            break;
        }
        let started = Instant::now();
        let result = match tokio::time::timeout(remaining, call(c)).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout(started.elapsed())),
        };
        match result {
            Ok(value) => {
                rec.attempt(c, started, None);
                return Ok((value, c.clone()));
            }
            Err(e) => {
                rec.attempt(c, started, Some(&e));
                tracing::warn!(request_id = %ctx.request_id, upstream = %c.upstream_label(), error = %e, "upstream attempt failed");
                let retry = e.retryable();
                failures.push((c.upstream_label(), e));
                if !retry {
                    break;
                }
            }
        }
    }
    Err(final_error(route, failures))
}

fn final_error(route: &str, mut failures: Vec<(String, ProviderError)>) -> ApiError {
    match failures.len() {
        0 => ApiError::new(
            ErrorCode::UpstreamTimeout,
            format!("the request deadline passed before route \"{route}\" could be tried"),
        ),
        1 => {
            let (label, e) = failures.remove(0);
            e.to_api_error(&label)
        }
        n => {
            let summary = failures
                .iter()
                .map(|(label, e)| format!("{label}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            let (label, last) = failures.remove(n - 1);
            let mut err = last.to_api_error(&label);
            err.message = format!("all {n} upstreams of route \"{route}\" failed: {summary}");
            err
        }
    }
}
