//! Admission control: may this request run now, and what may it spend? Pure logic, no HTTP.
//!
//! [`Admission::admit`] checks, in order: the key's route scope (403), this node's in-flight
//! bounds by priority class (503), then every applicable rate limit and budget of the key,
//! its tenant and the route in ONE all-or-nothing reservation (429). The reservation holds
//! the request's estimated tokens and cost (prompt estimate plus max output tokens at the
//! route's most expensive model); [`Reservation::settle`] later replaces them with the
//! actual usage, and dropping an unsettled reservation releases it (a request abandoned
//! mid-way is not billed). So concurrent requests can never spend beyond what was reserved.
//!
//! Code map:
//! - [`window`]: fixed windows (minute, UTC day, UTC month, total) and their ends.
//! - [`counter`]: the counters a request touches, in integer units (nano-USD for cost).
//! - [`memory`]: one node, a mutex over a map. [`redis`]: several nodes, one Lua script.
//! - [`shed`]: in-flight bounds per route and globally, with priority shares.
//! - [`policy`]: configured limits → the counters of one request; rejections as `ApiError`s.

pub mod counter;
pub mod memory;
mod policy;
pub mod redis;
pub mod shed;
pub mod window;

pub use counter::{Limit, ScopeKind, nanos_to_usd, usd_to_nanos};
pub use policy::{Alert, Reason, Rejection};
pub use shed::ShedScope;

use counter::{Held, Metric, Outcome};
use keel_config::{AdmissionConfig, KeelConfig, admission::AdmissionBackend};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Who asks for what.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub key_id: Option<&'a str>,
    pub tenant: Option<&'a str>,
    /// The route (or model) name as asked for.
    pub route: &'a str,
}

/// What a request may use at most: estimated prompt tokens plus its max output tokens, and
/// their cost at the most expensive candidate's prices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub tokens: u64,
    pub cost_usd: f64,
}

pub enum Backend {
    Memory(memory::Memory),
    Redis(redis::Redis),
}

/// The admission controller of one node. Cheap to share (`Arc`).
pub struct Admission {
    backend: Arc<Backend>,
    policy: policy::Policy,
    shed: shed::Shedder,
    /// Redis settlements started and not yet finished.
    pending: Arc<AtomicUsize>,
}

/// An admitted request: its in-flight slots and its reservation. Settle it with the actual
/// usage; dropping it unsettled releases the reservation and the slots.
pub struct Ticket {
    pub reservation: Reservation,
    /// Soft budgets this request's reservation reached first in their period.
    pub alerts: Vec<Alert>,
    _in_flight: shed::InFlight,
}

/// Reserved tokens and cost of one request, held until settled or dropped.
pub struct Reservation {
    backend: Arc<Backend>,
    held: Vec<Held>,
    reserved_nanos: i64,
    pending: Arc<AtomicUsize>,
    open: bool,
}

impl Admission {
    /// The controller `config.admission` describes; connects to Redis for that backend.
    pub async fn from_config(config: &KeelConfig) -> Result<Self, String> {
        let a: &AdmissionConfig = &config.admission;
        let backend = match a.backend {
            AdmissionBackend::Memory => Backend::Memory(memory::Memory::default()),
            AdmissionBackend::Redis => Backend::Redis(
                redis::Redis::connect(&a.redis_url, &a.key_prefix)
                    .await
                    .map_err(|e| {
                        let url = keel_config::admission::redact_userinfo(&a.redis_url);
                        format!("admission: redis at {url}: {e}")
                    })?,
            ),
        };
        Ok(Self::with_backend(config, backend))
    }

    /// The controller of `config` over a given backend (tests pick theirs).
    pub fn with_backend(config: &KeelConfig, backend: Backend) -> Self {
        let a = &config.admission;
        let route_bounds = a
            .routes
            .iter()
            .filter_map(|(r, l)| l.max_in_flight.map(|m| (r.clone(), m)));
        Self {
            backend: Arc::new(backend),
            policy: policy::Policy::new(config),
            shed: shed::Shedder::new(a.max_in_flight, route_bounds, a.priority_shares.clone()),
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Output tokens reserved when the request names no limit.
    pub fn default_max_output_tokens(&self) -> u32 {
        self.policy.default_max_output_tokens
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Admits `req` with `estimate` reserved, or says which check refused it.
    pub async fn admit(&self, req: Request<'_>, estimate: Estimate) -> Result<Ticket, Rejection> {
        self.policy.check_scope(req)?;
        let in_flight = self
            .shed
            .try_acquire(req.route, self.policy.priority(req.key_id))
            .map_err(|s| self.policy.shed_rejection(s))?;
        let counters = self.policy.counters(req, estimate);
        let reserved_nanos = usd_to_nanos(estimate.cost_usd);
        let outcome = match &*self.backend {
            _ if counters.is_empty() => Outcome::Reserved {
                held: Vec::new(),
                values: Vec::new(),
            },
            Backend::Memory(m) => m.reserve(&counters, window::now_secs()),
            Backend::Redis(r) => r.reserve(&counters).await.map_err(|e| {
                tracing::error!(error = %e, "admission: redis reservation failed");
                policy::unavailable()
            })?,
        };
        let (held, values) = match outcome {
            Outcome::Rejected { index, now } => {
                return Err(policy::limit_rejection(&counters[index], now));
            }
            Outcome::Reserved { held, values } => (held, values),
        };
        let mut alerts = Vec::new();
        for ((c, h), v) in counters.iter().zip(&held).zip(values) {
            let Some(soft) = c.soft.filter(|s| v >= *s) else {
                continue;
            };
            let first = match &*self.backend {
                Backend::Memory(m) => m.mark_alert(&h.base, h.window_id),
                Backend::Redis(r) => r
                    .mark_alert(&h.base, h.window_id, c.window.ttl_secs())
                    .await
                    .unwrap_or(false),
            };
            if first {
                alerts.push(Alert {
                    scope: c.scope,
                    name: c.name.clone(),
                    spent_usd: nanos_to_usd(v),
                    soft_usd: nanos_to_usd(soft),
                });
            }
        }
        Ok(Ticket {
            reservation: Reservation {
                backend: self.backend.clone(),
                held,
                reserved_nanos,
                pending: self.pending.clone(),
                open: true,
            },
            alerts,
            _in_flight: in_flight,
        })
    }

    /// Waits (up to 5 s) until every Redis settlement started so far has finished.
    pub async fn quiesce(&self) {
        for _ in 0..500 {
            if self.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Requests in flight on a route's bound on this node.
    pub fn in_flight(&self, route: &str) -> usize {
        self.shed.in_flight(route)
    }
}

impl Ticket {
    pub fn reserved_usd(&self) -> f64 {
        nanos_to_usd(self.reservation.reserved_nanos)
    }

    /// Settles the reservation to the actual usage (see [`Reservation::settle`]).
    pub fn settle(mut self, tokens: u64, cost_usd: f64) {
        self.reservation.settle_to(tokens, cost_usd);
    }
}

impl Reservation {
    /// Replaces what was reserved with what was used: tokens and cost are refunded (or, if
    /// the estimate was short, charged) by the difference; the request itself still counts.
    /// Failed attempts are not billed: pass what the answered request used, 0 if none.
    pub fn settle(mut self, tokens: u64, cost_usd: f64) {
        self.settle_to(tokens, cost_usd);
    }

    fn settle_to(&mut self, tokens: u64, cost_usd: f64) {
        if !std::mem::replace(&mut self.open, false) || self.held.is_empty() {
            return;
        }
        let tokens = i64::try_from(tokens).unwrap_or(i64::MAX);
        let cost = usd_to_nanos(cost_usd);
        let deltas: Vec<(Held, i64)> = std::mem::take(&mut self.held)
            .into_iter()
            .filter_map(|h| {
                let d = match h.metric {
                    Metric::Requests => 0,
                    Metric::Tokens => tokens - h.amount,
                    Metric::Cost => cost - h.amount,
                };
                (d != 0).then_some((h, d))
            })
            .collect();
        if deltas.is_empty() {
            return;
        }
        match &*self.backend {
            Backend::Memory(m) => {
                let refs: Vec<(&Held, i64)> = deltas.iter().map(|(h, d)| (h, *d)).collect();
                m.settle(&refs);
            }
            Backend::Redis(_) => {
                // Settling must not wait on Redis (it may run in a Drop): a task does it.
                let Ok(rt) = tokio::runtime::Handle::try_current() else {
                    tracing::warn!("admission: no runtime to settle a reservation on");
                    return;
                };
                let backend = self.backend.clone();
                let pending = self.pending.clone();
                pending.fetch_add(1, Ordering::AcqRel);
                rt.spawn(async move {
                    if let Backend::Redis(r) = &*backend
                        && let Err(e) = r.settle(&deltas).await
                    {
                        tracing::error!(error = %e, "admission: redis settlement failed");
                    }
                    pending.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
}

impl Drop for Reservation {
    /// An unsettled reservation (the request was abandoned) is released: nothing billed.
    fn drop(&mut self) {
        self.settle_to(0, 0.0);
    }
}
