//! Turns OpenAI sampling parameters into a candle `LogitsProcessor`.
//!
//! OpenAI semantics: `temperature` defaults to 1.0 and `top_p` to 1.0; temperature 0 (or
//! top_p 0) means greedy argmax. A `seed` makes sampling reproducible for the same prompt;
//! without one each request draws a fresh random seed.

use crate::error::LocalError;
use candle_transformers::generation::{LogitsProcessor, Sampling};

/// The sampling strategy for one request.
pub(crate) fn sampling(
    temperature: Option<f32>,
    top_p: Option<f32>,
) -> Result<Sampling, LocalError> {
    let temperature = temperature.unwrap_or(1.0);
    let top_p = top_p.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(LocalError::InvalidRequest(format!(
            "temperature must be between 0 and 2, got {temperature}"
        )));
    }
    if !(0.0..=1.0).contains(&top_p) {
        return Err(LocalError::InvalidRequest(format!(
            "top_p must be between 0 and 1, got {top_p}"
        )));
    }
    let (temperature, top_p) = (f64::from(temperature), f64::from(top_p));
    Ok(if temperature < 1e-6 || top_p < 1e-6 {
        Sampling::ArgMax
    } else if top_p >= 1.0 {
        Sampling::All { temperature }
    } else {
        Sampling::TopP {
            p: top_p,
            temperature,
        }
    })
}

/// A logits processor seeded with `seed`, or a random seed.
pub(crate) fn logits_processor(sampling: Sampling, seed: Option<u64>) -> LogitsProcessor {
    LogitsProcessor::from_sampling(seed.unwrap_or_else(rand::random), sampling)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn openai_defaults_and_greedy() {
        assert_eq!(
            sampling(None, None).unwrap(),
            Sampling::All { temperature: 1.0 }
        );
        assert_eq!(sampling(Some(0.0), None).unwrap(), Sampling::ArgMax);
        assert_eq!(sampling(Some(0.5), Some(0.0)).unwrap(), Sampling::ArgMax);
        assert_eq!(
            sampling(Some(0.5), Some(0.5)).unwrap(),
            Sampling::TopP {
                p: 0.5,
                temperature: 0.5
            }
        );
        assert!(sampling(Some(2.5), None).is_err());
        assert!(sampling(None, Some(1.5)).is_err());
        assert!(sampling(Some(f32::NAN), None).is_err());
    }
}
