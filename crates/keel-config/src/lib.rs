//! Typed keel configuration: TOML loading, defaults in one place and pure validation with
//! path-naming errors.
//!
//! Code map:
//! - [`model`]: the serde structs (`KeelConfig` and friends), all `deny_unknown_fields`.
//! - [`defaults`]: every default value, and the embedded default config file.
//! - [`load`]: reading TOML with `serde_path_to_error`, so errors name the failing path.
//! - [`admission`]: `[admission]`, rate limits, budgets and load shedding, and their checks.
//! - [`observe`]: `[observe]`, logs, traces, metrics and drift settings.
//! - [`retrieval`]: `[retrieval]` (collections, document limits, URL fetching) and a route's
//!   `retrieval` step.
//! - [`guard`]: `[guard]` (types in `keel_guard::config`) and a route's `policy`: checks.
//! - [`resilience`]: a route's `stream_recovery` and `hedge`, and their checks.
//! - `routing`: validation of a route's strategy settings (`strategy`, `weights`, `cascade`).
//! - [`validate`]: pure cross-reference checks (`routes.support.models[1]: unknown model "x"`).

pub mod admission;
pub mod defaults;
pub mod guard;
pub mod load;
pub mod model;
pub mod observe;
pub mod resilience;
pub mod retrieval;
mod routing;
pub mod validate;

pub use admission::{AdmissionConfig, Priority};
pub use load::{ConfigError, load_file, load_str};
pub use model::*;
pub use observe::*;
pub use resilience::{HedgeConfig, StreamRecoveryConfig, WithoutPrefill};
pub use retrieval::{FetchConfig, RetrievalConfig, RetrievalMode, RouteRetrievalConfig};
