//! keel-server integration tests: a real server on loopback over a mock upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admission;
mod drift;
mod guard;
mod metrics;
mod retrieval;
mod routing;
mod streams;
mod support;
mod traces;
mod two_nodes;
