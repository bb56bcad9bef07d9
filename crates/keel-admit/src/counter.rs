//! What a backend counts: one [`Counter`] per applicable limit of a request, checked and
//! incremented all or nothing. Amounts are integers (requests, tokens, nano-USD) so Redis
//! can add them exactly with `INCRBY`.

use crate::window::Window;

/// USD in nano-dollars, rounded up: 1 token at $0.10 per million is 100 nano-USD.
pub fn usd_to_nanos(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).ceil() as i64
    } else {
        0
    }
}

pub fn nanos_to_usd(n: i64) -> f64 {
    n as f64 / 1e9
}

/// What a counter counts, and so how it settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Requests: a request counts once, whatever its outcome.
    Requests,
    /// Tokens: reserved as estimated, settled to the actual count.
    Tokens,
    /// Cost in nano-USD: reserved as estimated, settled to the actual cost.
    Cost,
}

/// Which configured limit a counter enforces; names the limit in errors and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    RequestsPerMinute,
    TokensPerMinute,
    CostPerDay,
    /// A budget's `hard_usd` (or, without one, a budget counted only for its soft alert).
    Budget,
}

impl Limit {
    /// The config field, as errors and the `reason` metric label name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::TokensPerMinute => "tokens_per_minute",
            Self::CostPerDay => "cost_per_day_usd",
            Self::Budget => "budget",
        }
    }
}

/// Whose limit it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    Key,
    Tenant,
    Route,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Tenant => "tenant",
            Self::Route => "route",
        }
    }
}

/// One limit applied to one request.
#[derive(Debug, Clone)]
pub struct Counter {
    /// `<scope>:<name>:<limit>`, without the backend's prefix and the window id.
    pub base: String,
    pub window: Window,
    /// The most the window may hold; `None`: counted, never refused (a soft-only budget).
    pub limit: Option<i64>,
    /// What this request adds at admission.
    pub amount: i64,
    pub metric: Metric,
    pub kind: Limit,
    pub scope: ScopeKind,
    /// The scope's name (key id, tenant, route), for errors and logs.
    pub name: String,
    /// A budget's `soft_usd` in nano-USD: reaching it raises one alert per window.
    pub soft: Option<i64>,
}

/// A counter as it was incremented: enough to settle it and to raise its soft alert.
#[derive(Debug, Clone)]
pub struct Held {
    pub base: String,
    pub window_id: i64,
    pub amount: i64,
    pub metric: Metric,
}

/// A backend's answer to a reservation.
#[derive(Debug)]
pub enum Outcome {
    /// Every counter was incremented; `values` are their totals afterwards.
    Reserved { held: Vec<Held>, values: Vec<i64> },
    /// Counter `index` would pass its limit; nothing was incremented. `now` is the deciding
    /// clock (seconds since the epoch), to say when the window resets.
    Rejected { index: usize, now: i64 },
}
