//! The admit stage: estimates what a request may cost, asks [`keel_admit::Admission`] to
//! reserve it, and hands the ticket to the [`Recorder`], which settles it to the actual usage
//! when the request's record is finished (for streams: when the stream ends or is dropped).
//!
//! The estimate is deliberately cheap and errs high: prompt tokens are the request's JSON
//! size (messages and tools) in bytes / 4, rounded up; output tokens are the request's
//! `max_completion_tokens`/`max_tokens`, else `admission.default_max_output_tokens`; the cost
//! is that at the prices of the route's most expensive candidate, so no fallback can spend
//! beyond the reservation.

use crate::catalog::Resolved;
use crate::context::RequestContext;
use crate::observer::Observer;
use crate::record::Recorder;
use crate::stages::{Stage, StageOutcome};
use keel_admit::{Admission, Estimate, Request};
use keel_types::ApiError;
use keel_types::openai::{ChatCompletionRequest, EmbeddingInput, EmbeddingRequest};

/// What a request asks for: estimated prompt tokens and its own output limit, if any.
#[derive(Debug, Clone, Copy)]
pub struct Ask {
    pub prompt_tokens: u32,
    pub max_output_tokens: Option<u32>,
}

fn tokens_of_bytes(n: usize) -> u32 {
    u32::try_from(n.div_ceil(4)).unwrap_or(u32::MAX)
}

/// Counts the bytes written to it: the JSON size of a value without building the JSON.
#[derive(Default)]
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_size(value: &impl serde::Serialize) -> usize {
    let mut count = ByteCount::default();
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => 0,
    }
}

pub fn chat_ask(req: &ChatCompletionRequest) -> Ask {
    let bytes = json_size(&req.messages) + req.tools.as_ref().map_or(0, json_size);
    Ask {
        prompt_tokens: tokens_of_bytes(bytes),
        max_output_tokens: req.max_output_tokens(),
    }
}

pub fn embed_ask(req: &EmbeddingRequest) -> Ask {
    let prompt_tokens = match &req.input {
        EmbeddingInput::One(s) => tokens_of_bytes(s.len()),
        EmbeddingInput::Many(v) => tokens_of_bytes(v.iter().map(String::len).sum()),
        EmbeddingInput::Tokens(t) => u32::try_from(t.len()).unwrap_or(u32::MAX),
        EmbeddingInput::ManyTokens(v) => {
            u32::try_from(v.iter().map(Vec::len).sum::<usize>()).unwrap_or(u32::MAX)
        }
    };
    Ask {
        prompt_tokens,
        max_output_tokens: Some(0),
    }
}

/// The reservation for `ask` on `resolved`: tokens, and cost at the dearest candidate.
pub fn estimate(admission: &Admission, resolved: &Resolved, ask: Ask) -> Estimate {
    let out = ask
        .max_output_tokens
        .unwrap_or_else(|| admission.default_max_output_tokens());
    let cost_usd = resolved
        .candidates
        .iter()
        .map(|c| c.config.cost_usd(ask.prompt_tokens, out))
        .fold(0.0, f64::max);
    Estimate {
        tokens: u64::from(ask.prompt_tokens) + u64::from(out),
        cost_usd,
    }
}

/// Runs the admit stage: `pass` without admission control, else `ok` with the ticket held by
/// `rec`, or `failed` with the client's 403/429/503 (counted in metrics).
pub async fn run(
    admission: Option<&Admission>,
    observer: &Observer,
    ctx: &RequestContext,
    resolved: &Resolved,
    ask: Ask,
    rec: &mut Recorder,
) -> Result<(), ApiError> {
    let Some(admission) = admission else {
        rec.mark(Stage::Admit, StageOutcome::Pass);
        return Ok(());
    };
    let req = Request {
        key_id: ctx.key_id.as_deref(),
        tenant: ctx.tenant.as_deref(),
        route: &resolved.route,
    };
    match admission
        .admit(req, estimate(admission, resolved, ask))
        .await
    {
        Ok(ticket) => {
            for a in &ticket.alerts {
                tracing::warn!(
                    scope = a.scope.as_str(),
                    name = %a.name,
                    spent_usd = a.spent_usd,
                    soft_usd = a.soft_usd,
                    "admission: soft budget reached"
                );
                observer.metrics().record_budget_alert(a.scope.as_str());
            }
            rec.admitted(ticket);
            rec.mark(Stage::Admit, StageOutcome::Ok);
            Ok(())
        }
        Err(rej) => {
            let m = observer.metrics();
            match rej.reason {
                keel_admit::Reason::Shed(s) => m.record_shed(s.reason()),
                r => m.record_admission_rejection(r.as_str()),
            }
            rec.mark(Stage::Admit, StageOutcome::Failed);
            Err(rej.error)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_estimate_is_the_json_size_over_four() {
        let req: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m",
            "messages": [{"role": "user", "content": "hello there, how are you?"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "max_tokens": 7,
        }))
        .unwrap();
        let json = serde_json::to_vec(&req.messages).unwrap().len()
            + serde_json::to_vec(&req.tools).unwrap().len();
        let ask = chat_ask(&req);
        assert_eq!(ask.prompt_tokens as usize, json.div_ceil(4));
        assert_eq!(ask.max_output_tokens, Some(7));
    }
}
