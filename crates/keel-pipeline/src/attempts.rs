//! The attempts stage: a loop over the candidates in order, retrying each on the same model
//! per the route's [`RetryConfig`] before falling over to the next. Every attempt (retries
//! included) is bounded by the request's remaining time and lands in the request record.
//!
//! For each candidate, up to `1 + max_retries` attempts:
//! - Success returns at once.
//! - A non-retryable error ([`ProviderError::retryable`] is false: a client-side fault) stops
//!   everything; no other candidate is tried.
//! - A 429, 500, 502, 503 or 504 status, or a `Connect` error (refused or reset before any
//!   answer), is retried on the same model. Before retry `n` (1, 2, ...) keel waits:
//!   - the upstream's `Retry-After`, exactly, when it sent one no longer than
//!     `max_retry_after`; a longer `Retry-After` means: do not retry this model, fall over now;
//!   - otherwise a full-jitter backoff, uniform in `[0, min(max_backoff, base_backoff *
//!     2^(n-1))]`.
//! - Any other retryable error (a `Timeout` of a silent upstream, 408, 409, a malformed
//!   answer, a stream broken before its first chunk, a loading or overloaded local model)
//!   falls over to the next candidate at once, without retrying the same model.
//! - A context-length error is not retried on the same model: keel moves on to the next
//!   candidate with a larger `context_window` (skipping smaller or equal ones); if there is
//!   none, the client gets the 400.
//! - A wait that would reach the request deadline is not taken: the model is given up and the
//!   next candidate is tried with whatever time is left. No attempt starts after the deadline.
//!
//! Circuit breakers ([`crate::breaker`]): before every attempt (retries included) keel asks
//! the candidate's breaker; a candidate whose circuit is open is skipped (nothing recorded,
//! a `debug` log line), and one whose circuit opens between retries is given up. Each
//! attempt's outcome is reported to its breaker: a success, a failure when the error says
//! the deployment is unhealthy ([`crate::breaker::counts_as_failure`]), else nothing (a
//! client error, or an attempt cut by the request's deadline). When every candidate was
//! skipped (all circuits open), keel tries them all anyway, in order, with their retries,
//! rather than fail without trying; their outcomes still reach the breakers.

use crate::catalog::Candidate;
use crate::context::RequestContext;
use crate::record::Recorder;
use keel_config::RetryConfig;
use keel_providers::ProviderError;
use keel_types::{ApiError, ErrorCode};
use rand::Rng;
use std::future::Future;
use std::time::{Duration, Instant};

/// The last error of one candidate and how many attempts it got.
pub(crate) struct Failure {
    pub(crate) label: String,
    pub(crate) attempts: u32,
    pub(crate) error: ProviderError,
}

/// Runs `call` against each candidate, retrying per `retry`, until one succeeds. On failure
/// the error names every upstream tried and why it last failed; its status is the last
/// failure's.
pub async fn run<T, F, Fut>(
    ctx: &RequestContext,
    route: &str,
    retry: &RetryConfig,
    candidates: &[Candidate],
    rec: &mut Recorder,
    mut call: F,
) -> Result<(T, Candidate), ApiError>
where
    F: FnMut(&Candidate) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut failures: Vec<Failure> = Vec::new();
    let mut tried = false;
    // After a context-length error, only models with a larger context window are worth trying.
    let mut needs_context_over: Option<u32> = None;
    // First pass: only candidates whose circuit allows a call. When it tried none (every
    // circuit open), a second pass tries them all anyway, ignoring the breakers.
    for force in [false, true] {
        if force && (tried || ctx.remaining().is_zero()) {
            break;
        }
        'candidates: for c in candidates {
            if needs_context_over.is_some_and(|w| c.config.context_window <= w) {
                continue;
            }
            let mut attempts: u32 = 0;
            // The error of the last attempt when a retry is due.
            let mut pending: Option<ProviderError> = None;
            loop {
                let remaining = ctx.remaining();
                if remaining.is_zero() {
                    break 'candidates;
                }
                if !force && !c.breaker.allow(Instant::now()) {
                    tracing::debug!(request_id = %ctx.request_id, upstream = %c.upstream_label(), model = %c.name, "circuit not admitting calls: skipping candidate");
                    if let Some(error) = pending.take() {
                        failures.push(Failure {
                            label: c.upstream_label(),
                            attempts,
                            error,
                        });
                    }
                    continue 'candidates;
                }
                tried = true;
                attempts += 1;
                let started = Instant::now();
                let in_flight = c.latency.start();
                let (result, cut) = match tokio::time::timeout(remaining, call(c)).await {
                    Ok(r) => (r, false),
                    Err(_) => (Err(ProviderError::Timeout(started.elapsed())), true),
                };
                drop(in_flight);
                let e = match result {
                    Ok(value) => {
                        c.breaker.record_success(Instant::now());
                        c.latency.observe(started.elapsed(), Instant::now());
                        rec.attempt(c, started, None);
                        return Ok((value, c.clone()));
                    }
                    Err(e) => e,
                };
                if cut {
                    // Cut by the request's own deadline: says nothing about the deployment.
                    c.breaker.record_neutral();
                } else {
                    c.breaker.record_error(Instant::now(), &e);
                }
                rec.attempt(c, started, Some(&e));
                tracing::warn!(request_id = %ctx.request_id, upstream = %c.upstream_label(), attempt = attempts, error = %e, "upstream attempt failed");
                if e.is_context_length() {
                    // Not retried on this model; a larger-context candidate may still fit.
                    needs_context_over =
                        Some(c.config.context_window.max(needs_context_over.unwrap_or(0)));
                    failures.push(Failure {
                        label: c.upstream_label(),
                        attempts,
                        error: e,
                    });
                    continue 'candidates;
                }
                let stop_all = !e.retryable();
                let delay = if stop_all || attempts > retry.max_retries {
                    None
                } else {
                    retry_delay(retry, &e, attempts).filter(|d| *d < ctx.remaining())
                };
                let Some(delay) = delay else {
                    failures.push(Failure {
                        label: c.upstream_label(),
                        attempts,
                        error: e,
                    });
                    if stop_all {
                        break 'candidates;
                    }
                    continue 'candidates;
                };
                tracing::info!(request_id = %ctx.request_id, upstream = %c.upstream_label(), retry = attempts, delay_ms = delay.as_millis() as u64, "retrying upstream");
                pending = Some(e);
                tokio::time::sleep(delay).await;
            }
        }
    }
    Err(final_error(route, failures))
}

/// Whether `e` is worth another attempt on the same model (as opposed to the next one).
fn same_target_retryable(e: &ProviderError) -> bool {
    match e {
        ProviderError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
        ProviderError::Connect(_) => true,
        _ => false,
    }
}

/// The wait before retry `n` (1-based) of the same model after `e`, or `None` when the same
/// model should not be retried. Ignores `max_retries` and the deadline (the caller's).
fn retry_delay(retry: &RetryConfig, e: &ProviderError, n: u32) -> Option<Duration> {
    if !same_target_retryable(e) {
        return None;
    }
    if let ProviderError::Status {
        retry_after: Some(after),
        ..
    } = e
    {
        return (*after <= retry.max_retry_after).then_some(*after);
    }
    let cap = backoff_cap(retry, n);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Some(Duration::from_nanos(rand::rng().random_range(0..=nanos)))
}

/// `min(max_backoff, base_backoff * 2^(n-1))`, saturating.
fn backoff_cap(retry: &RetryConfig, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    retry
        .base_backoff
        .saturating_mul(factor)
        .min(retry.max_backoff)
}

pub(crate) fn final_error(route: &str, mut failures: Vec<Failure>) -> ApiError {
    match failures.len() {
        0 => ApiError::new(
            ErrorCode::UpstreamTimeout,
            format!("the request deadline passed before route \"{route}\" could be tried"),
        ),
        1 => {
            let f = failures.remove(0);
            let mut err = f.error.to_api_error(&f.label);
            if f.attempts > 1 {
                err.message = format!("{} (after {} attempts)", err.message, f.attempts);
            }
            err
        }
        n => {
            let summary = failures
                .iter()
                .map(|f| {
                    if f.attempts > 1 {
                        format!("{} ({} attempts): {}", f.label, f.attempts, f.error)
                    } else {
                        format!("{}: {}", f.label, f.error)
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            let last = failures.remove(n - 1);
            let mut err = last.error.to_api_error(&last.label);
            err.message = format!("all {n} upstreams of route \"{route}\" failed: {summary}");
            err
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> RetryConfig {
        RetryConfig {
            max_retries: 2,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        }
    }

    fn status(status: u16, retry_after: Option<Duration>) -> ProviderError {
        ProviderError::Status {
            status,
            message: String::new(),
            retry_after,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = cfg();
        assert_eq!(backoff_cap(&c, 1), Duration::from_millis(100));
        assert_eq!(backoff_cap(&c, 2), Duration::from_millis(200));
        assert_eq!(backoff_cap(&c, 3), Duration::from_millis(300));
        assert_eq!(backoff_cap(&c, 64), Duration::from_millis(300));
        for n in 1..5 {
            for _ in 0..100 {
                let d = retry_delay(&c, &status(503, None), n).unwrap();
                assert!(d <= backoff_cap(&c, n), "{d:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_limit() {
        let c = cfg();
        let d = retry_delay(&c, &status(429, Some(Duration::from_secs(1))), 1);
        assert_eq!(d, Some(Duration::from_secs(1)));
        let d = retry_delay(&c, &status(503, Some(Duration::from_secs(5))), 2);
        assert_eq!(d, Some(Duration::from_secs(5)));
        assert_eq!(
            retry_delay(&c, &status(429, Some(Duration::from_secs(6))), 1),
            None,
            "too long: fall over instead"
        );
    }

    #[test]
    fn only_some_errors_retry_the_same_model() {
        let c = cfg();
        for s in [429, 500, 502, 503, 504] {
            assert!(retry_delay(&c, &status(s, None), 1).is_some(), "{s}");
        }
        for s in [400, 408, 409, 501] {
            assert!(retry_delay(&c, &status(s, None), 1).is_none(), "{s}");
        }
        assert!(retry_delay(&c, &ProviderError::Connect("reset".into()), 1).is_some());
        assert!(retry_delay(&c, &ProviderError::Timeout(Duration::from_secs(1)), 1).is_none());
        assert!(retry_delay(&c, &ProviderError::Stream("x".into()), 1).is_none());
    }
}
