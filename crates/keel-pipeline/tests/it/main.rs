//! Pipeline integration tests: the real pipeline, real HTTP adapters and a real SQLite request
//! log, against scripted mock upstreams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounting;
mod attempts;
mod circuit;
mod faults;
mod hedging;
mod recovery;
mod retries;
mod routing;
mod streams;
mod support;
