//! keel-admit against its two backends: the memory backend, and the real Redis on
//! 127.0.0.1:6379 with a unique key prefix per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod memory;
mod redis;
mod support;
