//! Routing: which of a route's capable models is tried first, per the route's `strategy`,
//! then the request's own preferences (`keel.route`). Every strategy only orders the
//! candidates — the first is tried first, the others stay fallbacks for [`attempts::run`] —
//! except `cascade`, which also judges each answer and may escalate to the next model.
//!
//! - [`weighted`]: smooth weighted round-robin; [`latency`]: peak-EWMA and the power of two
//!   choices; [`cost`]: cheapest model whose context fits; [`cascade`]: escalation by
//!   [`trust`] signals; [`prefs`]: the `keel.route` request field.
//!
//! What was decided and why becomes [`Routed`]: the response's `keel.routing`, the request
//! record's `model_served` and `route_reason`, and a stream's `x-keel-route-reason` header.

pub mod cascade;
pub mod cost;
pub mod latency;
pub mod prefs;
mod replay;
pub mod trust;
pub mod weighted;

use crate::attempts;
use crate::catalog::{Candidate, Resolved};
use crate::context::RequestContext;
use crate::record::Recorder;
use keel_config::{CascadeConfig, RouteConfig, RouteStrategy};
use keel_types::ApiError;
use keel_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use keel_types::report::RoutingReport;
pub use latency::LatencyStats;
use prefs::RoutePrefs;
pub use replay::stream as replay_stream;
use serde_json::Value;

/// A route's strategy and its state, built once by the catalog.
#[derive(Debug)]
pub struct Routing {
    pub strategy: RouteStrategy,
    weighted: Option<weighted::Weighted>,
    pub cascade: CascadeConfig,
}

impl Routing {
    pub fn new(route: &RouteConfig) -> Self {
        Self {
            strategy: route.strategy,
            weighted: (route.strategy == RouteStrategy::Weighted)
                .then(|| weighted::Weighted::new(&route.models, &route.weights)),
            cascade: route.cascade.clone().unwrap_or_default(),
        }
    }

    /// A model asked for by its own name: nothing to choose.
    pub fn fallback() -> Self {
        Self {
            strategy: RouteStrategy::Fallback,
            weighted: None,
            cascade: CascadeConfig::default(),
        }
    }
}

/// How one request will be routed: the candidates in the order they will be tried.
pub struct Plan {
    pub strategy: RouteStrategy,
    pub order: Vec<Candidate>,
    /// Why `order[0]` goes first.
    pub reason: String,
    pub prefs: Option<RoutePrefs>,
}

/// What routing decided for a served request.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The model that answered.
    pub model: String,
    /// Why that model answered, in one line.
    pub reason: String,
    /// The response's `keel.routing`.
    pub report: RoutingReport,
}

/// Orders the `capable` candidates of `resolved` for `req`: the strategy, then the request's
/// preferences. A 400 when the preferences are malformed, name a model outside the route or
/// leave no capable model.
pub fn plan(
    resolved: &Resolved,
    req: &ChatCompletionRequest,
    capable: Vec<Candidate>,
) -> Result<Plan, ApiError> {
    let prefs = prefs::parse(req)?;
    if let Some(p) = &prefs {
        let names: Vec<&str> = resolved
            .candidates
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        prefs::check_names(p, &resolved.route, &names)?;
    }
    let unable: Vec<&str> = resolved
        .candidates
        .iter()
        .filter(|c| !capable.iter().any(|k| k.name == c.name))
        .map(|c| c.name.as_str())
        .collect();
    let strategy = resolved.routing.strategy;
    let (order, mut reason) = match (strategy, &resolved.routing.weighted) {
        (RouteStrategy::Weighted, Some(w)) => w.order(capable),
        (RouteStrategy::LeastLatency, _) => latency::order(capable),
        (RouteStrategy::Cost, _) => cost::order(req, capable),
        (RouteStrategy::Cascade, _) => {
            let first = capable.first().map_or("", |c| c.name.as_str()).to_owned();
            (capable, format!("cascade: {first} (cheapest) first"))
        }
        _ => {
            let first = capable.first().map_or("", |c| c.name.as_str()).to_owned();
            (
                capable,
                format!("fallback: {first} is first in the route's order"),
            )
        }
    };
    if !unable.is_empty() {
        reason.push_str(&format!(
            "; cannot serve this request: {}",
            unable.join(", ")
        ));
    }
    let order = match &prefs {
        Some(p) => {
            let order = prefs::apply(p, order)?;
            reason.push_str(&format!("; {}", prefs::describe(p)));
            order
        }
        None => order,
    };
    Ok(Plan {
        strategy,
        order,
        reason,
        prefs,
    })
}

impl Plan {
    /// What routing decided once `served` answered; `reason` replaces the plan's (a
    /// cascade's verdict), `cascade` is its report.
    pub fn routed(
        &self,
        served: &Candidate,
        reason: Option<String>,
        cascade: Option<Value>,
    ) -> Routed {
        let mut reason = reason.unwrap_or_else(|| self.reason.clone());
        if let Some(first) = self.order.first()
            && first.name != served.name
            && self.strategy != RouteStrategy::Cascade
        {
            reason.push_str(&format!(
                "; {} failed: served by fallback {}",
                first.name, served.name
            ));
        }
        let report = RoutingReport {
            strategy: self.strategy.as_str().into(),
            model: served.name.clone(),
            reason: reason.clone(),
            order: self.order.iter().map(|c| c.name.clone()).collect(),
            preferences: self
                .prefs
                .as_ref()
                .and_then(|p| serde_json::to_value(p).ok()),
            cascade,
        };
        Routed {
            model: served.name.clone(),
            reason,
            report,
        }
    }
}

/// The request `c`'s upstream receives: its upstream model id, without keel's extension.
pub fn upstream_request(req: &ChatCompletionRequest, c: &Candidate) -> ChatCompletionRequest {
    let mut upstream = req.clone();
    upstream.model = c.config.upstream.clone();
    upstream.extra.remove(prefs::EXTENSION);
    upstream
}

/// A non-streaming chat completion routed per `plan`: attempts in the plan's order, or the
/// cascade's tiers.
pub async fn chat(
    ctx: &RequestContext,
    resolved: &Resolved,
    plan: &Plan,
    req: &ChatCompletionRequest,
    rec: &mut Recorder,
) -> Result<(ChatCompletionResponse, Candidate, Routed), ApiError> {
    if plan.strategy == RouteStrategy::Cascade {
        return cascade::chat(ctx, resolved, plan, req, rec).await;
    }
    let call = |c: &Candidate| {
        let upstream = upstream_request(req, c);
        let provider = c.provider.clone();
        async move { provider.chat(upstream).await }
    };
    let (route, order) = (&resolved.route, &plan.order);
    let (resp, served) = match &resolved.hedge {
        Some(h) => crate::hedge::run(ctx, route, h, order, rec, call).await?,
        None => attempts::run(ctx, route, &resolved.retry, order, rec, call).await?,
    };
    let routed = plan.routed(&served, None, None);
    Ok((resp, served, routed))
}
