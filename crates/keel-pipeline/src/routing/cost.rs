//! Cost routing: the cheapest model whose context window fits the request goes first.
//! Capabilities (tools, JSON mode, images, streaming) were already checked by the pipeline,
//! which drops candidates that cannot honour the request; here the prompt is estimated (4
//! characters a token, a flat charge per image) plus the output limit the client asked for,
//! and models whose window is too small go last (largest first), in case the estimate is off.

use crate::catalog::Candidate;
use keel_types::openai::{ChatCompletionRequest, ContentPart, MessageContent};

/// Tokens charged for an image or other non-text part (a low-detail image is 85).
const TOKENS_PER_PART: u64 = 85;
/// Characters per token, the usual rule of thumb for English.
const CHARS_PER_TOKEN: u64 = 4;

/// The request's estimated size in tokens: prompt (messages and tools) plus output limit.
pub fn estimate_tokens(req: &ChatCompletionRequest) -> u64 {
    let mut chars: u64 = 0;
    let mut parts: u64 = 0;
    for m in &req.messages {
        match &m.content {
            Some(MessageContent::Text(t)) => chars += t.len() as u64,
            Some(MessageContent::Parts(ps)) => {
                for p in ps {
                    match p {
                        ContentPart::Text { text } => chars += text.len() as u64,
                        _ => parts += 1,
                    }
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter().flatten() {
            chars += (call.function.name.len() + call.function.arguments.len()) as u64;
        }
    }
    for tool in req.tools.iter().flatten() {
        chars += serde_json::to_string(&tool.function).map_or(0, |s| s.len() as u64);
    }
    chars.div_ceil(CHARS_PER_TOKEN)
        + parts * TOKENS_PER_PART
        + u64::from(req.max_output_tokens().unwrap_or(0))
}

/// USD per million tokens, input plus output: what `cost` compares.
pub fn price(c: &Candidate) -> f64 {
    c.config.input_price_per_mtok + c.config.output_price_per_mtok
}

/// Orders `candidates`: fitting ones by ascending price (route order on ties), then those
/// whose context window is smaller than the estimate, by descending window.
pub fn order(req: &ChatCompletionRequest, candidates: Vec<Candidate>) -> (Vec<Candidate>, String) {
    let need = estimate_tokens(req);
    let (mut fit, mut small): (Vec<_>, Vec<_>) = candidates
        .into_iter()
        .partition(|c| u64::from(c.config.context_window) >= need);
    fit.sort_by(|a, b| price(a).total_cmp(&price(b)));
    small.sort_by_key(|c| std::cmp::Reverse(c.config.context_window));
    let mut reason = match fit.first() {
        Some(c) => format!(
            "cost: {} is the cheapest capable model (${:.2}/Mtok in+out) whose context fits ~{need} tokens",
            c.name,
            price(c)
        ),
        None => format!("cost: no model's context window fits ~{need} tokens; largest first"),
    };
    if !small.is_empty() {
        let names: Vec<&str> = small.iter().map(|c| c.name.as_str()).collect();
        reason.push_str(&format!(
            "; too small a context window: {}",
            names.join(", ")
        ));
    }
    fit.append(&mut small);
    (fit, reason)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn estimate_counts_text_images_tools_and_output() {
        let req: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 100,
            "messages": [
                {"role": "system", "content": "12345678"},
                {"role": "user", "content": [
                    {"type": "text", "text": "abcd"},
                    {"type": "image_url", "image_url": {"url": "data:x"}}
                ]}
            ]
        }))
        .unwrap();
        assert_eq!(estimate_tokens(&req), 3 + 85 + 100);
    }
}
