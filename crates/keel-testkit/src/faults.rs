//! Random faults for load runs: a [`FaultMix`] makes the mock fail a share of the requests it
//! would otherwise answer with the default echo, the way a flaky production upstream does.
//! Scripted behaviours always come first; the mix applies only when the script is empty.
//!
//! The draw is deterministic: request `n` (counted from 1) of a mock with seed `s` always
//! gets the same fault, so a run can be repeated exactly.

use crate::behavior::Behavior;

/// Shares of requests (each in `[0, 1]`, summing to at most 1) that fail in each way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultMix {
    /// Answered `503` (the body in the protocol's error shape).
    pub status_5xx: f64,
    /// Connection closed before any answer. For a streaming request with `mid_stream`,
    /// the stream is cut after its first events instead (no terminator).
    pub reset: f64,
    /// Never answered, connection held open. For a streaming request with `mid_stream`,
    /// the stream falls silent after its first events instead.
    pub stall: f64,
    /// Whether streaming requests see resets and stalls after the first events (`true`) or
    /// before the headers (`false`).
    pub mid_stream: bool,
    pub seed: u64,
}

/// How many events a mid-stream fault lets through before it strikes.
const MID_STREAM_AFTER: usize = 2;

impl FaultMix {
    /// Parses `5xx=0.30,reset=0.05,stall=0.05[,mid_stream][,seed=7]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut mix = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (part, None),
            };
            let share = || -> Result<f64, String> {
                let v: f64 = value
                    .ok_or(format!("{key} needs a value"))?
                    .parse()
                    .map_err(|e| format!("{key}: {e}"))?;
                if (0.0..=1.0).contains(&v) {
                    Ok(v)
                } else {
                    Err(format!("{key}: {v} is not a share in [0, 1]"))
                }
            };
            match key {
                "5xx" => mix.status_5xx = share()?,
                "reset" => mix.reset = share()?,
                "stall" => mix.stall = share()?,
                "mid_stream" => mix.mid_stream = true,
                "seed" => {
                    mix.seed = value
                        .ok_or("seed needs a value")?
                        .parse()
                        .map_err(|e| format!("seed: {e}"))?;
                }
                other => {
                    return Err(format!(
                        "unknown fault {other:?} (5xx, reset, stall, mid_stream, seed)"
                    ));
                }
            }
        }
        if mix.status_5xx + mix.reset + mix.stall > 1.0 + 1e-9 {
            return Err("fault shares sum to more than 1".into());
        }
        Ok(mix)
    }

    /// The fault for request number `n`, if it gets one.
    pub fn draw(&self, n: u64, streaming: bool) -> Option<Behavior> {
        let u = unit(splitmix64(
            self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        let mid = streaming && self.mid_stream;
        if u < self.status_5xx {
            Some(Behavior::status(503))
        } else if u < self.status_5xx + self.reset {
            Some(if mid {
                Behavior::TruncatedStream {
                    after_chunks: MID_STREAM_AFTER,
                }
            } else {
                Behavior::Reset
            })
        } else if u < self.status_5xx + self.reset + self.stall {
            Some(if mid {
                Behavior::StalledStream {
                    after_chunks: MID_STREAM_AFTER,
                }
            } else {
                Behavior::Stall
            })
        } else {
            None
        }
    }

    pub fn is_empty(&self) -> bool {
        self.status_5xx + self.reset + self.stall <= 0.0
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform draw in `[0, 1)` from the top 53 bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_honoured_over_many_draws() {
        let mix = FaultMix::parse("5xx=0.30,reset=0.05,stall=0.05,seed=3").unwrap();
        let (mut s, mut r, mut st, mut ok) = (0, 0, 0, 0);
        let n = 100_000u64;
        for i in 1..=n {
            match mix.draw(i, false) {
                Some(Behavior::Status { code: 503, .. }) => s += 1,
                Some(Behavior::Reset) => r += 1,
                Some(Behavior::Stall) => st += 1,
                None => ok += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        let share = |c: i32| f64::from(c) / n as f64;
        assert!((share(s) - 0.30).abs() < 0.01, "{}", share(s));
        assert!((share(r) - 0.05).abs() < 0.005, "{}", share(r));
        assert!((share(st) - 0.05).abs() < 0.005, "{}", share(st));
        assert!((share(ok) - 0.60).abs() < 0.01, "{}", share(ok));
    }

    #[test]
    fn draws_repeat_for_a_seed_and_streams_fail_mid_answer_when_asked() {
        let a = FaultMix::parse("reset=0.5,stall=0.5,mid_stream,seed=9").unwrap();
        let b = a.clone();
        for i in 1..100 {
            assert_eq!(a.draw(i, true), b.draw(i, true));
            assert!(matches!(
                a.draw(i, true),
                Some(Behavior::TruncatedStream { .. } | Behavior::StalledStream { .. })
            ));
            assert!(matches!(
                a.draw(i, false),
                Some(Behavior::Reset | Behavior::Stall)
            ));
        }
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(FaultMix::parse("5xx=1.5").is_err());
        assert!(FaultMix::parse("5xx=0.6,reset=0.6").is_err());
        assert!(FaultMix::parse("teapot=0.1").is_err());
        assert!(FaultMix::parse("5xx").is_err());
        assert!(FaultMix::parse("").unwrap().is_empty());
    }
}
