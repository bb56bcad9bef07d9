//! The configured limits as a lookup: which counters one request touches, and how a refusal
//! reads to the client (OpenAI-shaped, naming the limit and when to retry).

use crate::counter::{Counter, Limit, Metric, ScopeKind, usd_to_nanos};
use crate::shed::ShedScope;
use crate::window::Window;
use crate::{Estimate, Request};
use keel_config::admission::{BudgetConfig, BudgetPeriod, RouteLimits, ScopeLimits};
use keel_config::{KeelConfig, Priority};
use keel_types::{ApiError, ErrorCode};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Why a request was refused (for metrics: bounded values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The key may not use this route (403).
    Scope,
    /// An in-flight bound is full for the request's class (503).
    Shed(ShedScope),
    /// A rate limit or budget of a key, tenant or route (429).
    Limit(ScopeKind, Limit),
    /// The backend could not be asked (503); admission fails closed.
    Unavailable,
}

impl Reason {
    /// The `reason` label of `keel_admission_rejections_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scope => "scope",
            Self::Shed(s) => s.reason(),
            Self::Limit(_, l) => l.as_str(),
            Self::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rejection {
    pub error: ApiError,
    pub reason: Reason,
}

/// A soft budget reached for the first time in its period.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub scope: ScopeKind,
    pub name: String,
    /// Reserved and settled spend in the period, this request included.
    pub spent_usd: f64,
    pub soft_usd: f64,
}

struct KeyPolicy {
    routes: Option<HashSet<String>>,
    priority: Priority,
}

pub(crate) struct Policy {
    keys: HashMap<String, KeyPolicy>,
    key_limits: BTreeMap<String, ScopeLimits>,
    tenant_limits: BTreeMap<String, ScopeLimits>,
    route_limits: BTreeMap<String, RouteLimits>,
    pub(crate) default_max_output_tokens: u32,
}

impl Policy {
    pub(crate) fn new(config: &KeelConfig) -> Self {
        let a = &config.admission;
        Self {
            keys: config
                .auth
                .keys
                .iter()
                .map(|k| {
                    let routes = k.routes.as_ref().map(|r| r.iter().cloned().collect());
                    let p = KeyPolicy {
                        routes,
                        priority: k.priority,
                    };
                    (k.id.clone(), p)
                })
                .collect(),
            key_limits: a.keys.clone(),
            tenant_limits: a.tenants.clone(),
            route_limits: a.routes.clone(),
            default_max_output_tokens: a.default_max_output_tokens,
        }
    }

    pub(crate) fn priority(&self, key_id: Option<&str>) -> Priority {
        key_id
            .and_then(|k| self.keys.get(k))
            .map_or(Priority::Normal, |k| k.priority)
    }

    /// 403 if the key is limited to routes that do not include this one.
    pub(crate) fn check_scope(&self, req: Request<'_>) -> Result<(), Rejection> {
        let Some((id, key)) = req.key_id.and_then(|id| Some((id, self.keys.get(id)?))) else {
            return Ok(());
        };
        match &key.routes {
            Some(allowed) if !allowed.contains(req.route) => {
                let mut list: Vec<&str> = allowed.iter().map(String::as_str).collect();
                list.sort_unstable();
                Err(Rejection {
                    error: ApiError::new(
                        ErrorCode::PermissionDenied,
                        format!(
                            "the API key \"{id}\" may not use model \"{}\"; allowed: {}",
                            req.route,
                            list.join(", ")
                        ),
                    )
                    .with_param("model"),
                    reason: Reason::Scope,
                })
            }
            _ => Ok(()),
        }
    }

    /// Every counter `req` touches, key first, then tenant, then route.
    pub(crate) fn counters(&self, req: Request<'_>, est: Estimate) -> Vec<Counter> {
        let tokens = i64::try_from(est.tokens).unwrap_or(i64::MAX);
        let cost = usd_to_nanos(est.cost_usd);
        let mut out = Vec::new();
        let mut add =
            |scope: ScopeKind, name: &str, rates: Rates, budget: Option<&BudgetConfig>| {
                let mut push = |tag: &str, window, limit, amount, metric, kind, soft| {
                    out.push(Counter {
                        base: format!("{}:{name}:{tag}", scope.as_str()),
                        window,
                        limit,
                        amount,
                        metric,
                        kind,
                        scope,
                        name: name.to_owned(),
                        soft,
                    });
                };
                if let Some(n) = rates.rpm {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    push(
                        "rpm",
                        Window::Minute,
                        Some(n),
                        1,
                        Metric::Requests,
                        Limit::RequestsPerMinute,
                        None,
                    );
                }
                if let Some(n) = rates.tpm {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    push(
                        "tpm",
                        Window::Minute,
                        Some(n),
                        tokens,
                        Metric::Tokens,
                        Limit::TokensPerMinute,
                        None,
                    );
                }
                if let Some(usd) = rates.cost_per_day {
                    let n = usd_to_nanos(usd);
                    push(
                        "cost_day",
                        Window::Day,
                        Some(n),
                        cost,
                        Metric::Cost,
                        Limit::CostPerDay,
                        None,
                    );
                }
                if let Some(b) = budget.filter(|b| b.hard_usd.is_some() || b.soft_usd.is_some()) {
                    let (tag, window) = match b.period {
                        BudgetPeriod::Day => ("budget_day", Window::Day),
                        BudgetPeriod::Month => ("budget_month", Window::Month),
                        BudgetPeriod::Total => ("budget_total", Window::Total),
                    };
                    let hard = b.hard_usd.map(usd_to_nanos);
                    let soft = b.soft_usd.map(usd_to_nanos);
                    push(tag, window, hard, cost, Metric::Cost, Limit::Budget, soft);
                }
            };
        if let Some(k) = req.key_id
            && let Some(l) = self.key_limits.get(k)
        {
            add(ScopeKind::Key, k, Rates::of_scope(l), l.budget.as_ref());
        }
        if let Some(t) = req.tenant
            && let Some(l) = self.tenant_limits.get(t)
        {
            add(ScopeKind::Tenant, t, Rates::of_scope(l), l.budget.as_ref());
        }
        if let Some(l) = self.route_limits.get(req.route) {
            add(ScopeKind::Route, req.route, Rates::of_route(l), None);
        }
        out
    }

    pub(crate) fn shed_rejection(&self, s: ShedScope) -> Rejection {
        let what = match s {
            ShedScope::Global => "keel is at its in-flight limit (admission.max_in_flight)",
            ShedScope::Route => "this route is at its in-flight limit (max_in_flight)",
        };
        Rejection {
            error: ApiError::new(
                ErrorCode::Overloaded,
                format!("{what} for this key's priority; retry shortly"),
            )
            .with_retry_after(1),
            reason: Reason::Shed(s),
        }
    }
}

struct Rates {
    rpm: Option<u64>,
    tpm: Option<u64>,
    cost_per_day: Option<f64>,
}

impl Rates {
    fn of_scope(l: &ScopeLimits) -> Self {
        Self {
            rpm: l.requests_per_minute,
            tpm: l.tokens_per_minute,
            cost_per_day: l.cost_per_day_usd,
        }
    }
    fn of_route(l: &RouteLimits) -> Self {
        Self {
            rpm: l.requests_per_minute,
            tpm: l.tokens_per_minute,
            cost_per_day: l.cost_per_day_usd,
        }
    }
}

/// The 429 for counter `c` refusing at `now`: which limit, and seconds until its window ends.
pub(crate) fn limit_rejection(c: &Counter, now: i64) -> Rejection {
    let retry = c.window.retry_after(now);
    let who = format!("{} \"{}\"", c.scope.as_str(), c.name);
    let (code, message) = match c.kind {
        Limit::Budget => (
            ErrorCode::InsufficientQuota,
            format!("the {who} has reached its budget (budget.hard_usd) for this period"),
        ),
        k => (
            ErrorCode::RateLimitExceeded,
            format!("rate limit reached: {who} {}", k.as_str()),
        ),
    };
    let message = match retry {
        Some(s) => format!("{message}; retry after {s} s"),
        None => message,
    };
    let mut error = ApiError::new(code, message);
    error.retry_after = retry;
    Rejection {
        error,
        reason: Reason::Limit(c.scope, c.kind),
    }
}

/// The 503 when the backend cannot be asked: admission fails closed, so a Redis outage can
/// not let spend past its limits.
pub(crate) fn unavailable() -> Rejection {
    Rejection {
        error: ApiError::new(
            ErrorCode::Overloaded,
            "admission control is unavailable (its counter store did not answer); retry shortly",
        )
        .with_retry_after(1),
        reason: Reason::Unavailable,
    }
}
