//! Integration tests of the HTTP adapters against the test kit's mock upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod faults;
mod openai_compat;
mod support;
