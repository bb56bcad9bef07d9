//! The axum HTTP server: OpenAI- and Anthropic-compatible routes, auth, limits, errors and
//! graceful shutdown. Only this crate knows axum.
//!
//! Code map:
//! - [`app`]: the router and its middleware stack, built in one function (layer order there).
//! - [`state`]: `AppState`, shared by every handler.
//! - [`auth`]: API key → tenant; the allow list of unauthenticated routes.
//! - [`request_id`]: an `x-request-id` on every response.
//! - [`body`]: bounded body reading and JSON parsing with field-naming errors.
//! - [`error`]: the one place an `ApiError` becomes an HTTP response.
//! - [`sse`]: server-sent events for streamed chat (OpenAI and Anthropic flavours).
//! - [`routes`]: one module per endpoint.
//! - [`serve`]: binding, the loopback-without-keys rule, and phased graceful shutdown.

pub mod app;
pub mod auth;
pub mod body;
pub mod error;
pub mod request_id;
pub mod routes;
pub mod serve;
pub mod sse;
pub mod state;

pub use app::router;
pub use serve::{ServeError, serve};
pub use state::AppState;
