//! Test kit: a scriptable mock OpenAI/Anthropic upstream with faults (dev-dependency only),
//! also served by the `keel-mock-upstream` binary for Python tests and load tests.
//!
//! Code map:
//! - [`server`]: [`MockUpstream`] — start, script [`Behavior`]s, inspect recorded requests;
//!   the accept loop that can drop a connection mid-request.
//! - [`behavior`]: [`Behavior`], what the mock does with one model request.
//! - [`faults`]: [`FaultMix`], random (seeded) faults for load runs when the script is empty.
//! - `reply`: protocol-neutral answers (echo, deterministic token counts) and SSE bodies that
//!   can be complete, truncated, malformed or slow.
//! - `openai`, `anthropic`: the two wire protocols' bodies and event streams.
//!
//! ```no_run
//! # async fn demo() {
//! use keel_testkit::{Behavior, MockUpstream};
//! let mock = MockUpstream::start().await;
//! mock.push(Behavior::rate_limited(3));
//! // point a provider at mock.base_url(); its first call gets a 429, the next an echo.
//! # }
//! ```

mod anthropic;
pub mod behavior;
pub mod faults;
mod openai;
mod reply;
pub mod server;

pub use axum::http::HeaderMap;
pub use behavior::Behavior;
pub use faults::FaultMix;
pub use server::{MockOptions, MockUpstream, RecordedRequest};
