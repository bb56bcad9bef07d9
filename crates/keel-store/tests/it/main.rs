//! Integration tests for keel-store (one test binary): the shared backend conformance suite run
//! against SQLite and Postgres (request log and traces), backend-specific behaviour, and the
//! batched writer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod conformance;
mod postgres;
mod sqlite;
mod support;
mod trace_conformance;
mod trace_list;
mod trace_support;
mod writer;
mod writer_traces;
