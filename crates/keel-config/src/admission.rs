//! `[admission]`: rate limits, budgets and load shedding, checked before a request is routed.
//! Limits count in fixed windows keyed by the window's start (a minute, a UTC day, a UTC
//! calendar month), so one atomic increment per counter decides; see the `keel-admit` crate.

use crate::defaults;
use crate::model::KeelConfig;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionConfig {
    /// Where counters live: `memory` (this node only) or `redis` (shared by every node).
    #[serde(default)]
    pub backend: AdmissionBackend,
    /// The Redis server of the `redis` backend.
    #[serde(default = "defaults::redis_url")]
    pub redis_url: String,
    /// Prefix of every Redis key keel writes, so several deployments can share one Redis.
    #[serde(default = "defaults::admission_key_prefix")]
    pub key_prefix: String,
    /// Output tokens reserved for a request that names no `max_completion_tokens`/`max_tokens`.
    #[serde(default = "defaults::default_max_output_tokens")]
    pub default_max_output_tokens: u32,
    /// Requests admitted at once on this node across all routes; none: no bound of its own.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// The share of each in-flight bound a priority class may fill.
    #[serde(default)]
    pub priority_shares: PriorityShares,
    /// Limits and budgets per API key id (`[admission.keys.<id>]`).
    #[serde(default)]
    pub keys: BTreeMap<String, ScopeLimits>,
    /// Limits and budgets per tenant (`[admission.tenants.<tenant>]`).
    #[serde(default)]
    pub tenants: BTreeMap<String, ScopeLimits>,
    /// Limits per route or model name (`[admission.routes.<name>]`).
    #[serde(default)]
    pub routes: BTreeMap<String, RouteLimits>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            backend: AdmissionBackend::default(),
            redis_url: defaults::redis_url(),
            key_prefix: defaults::admission_key_prefix(),
            default_max_output_tokens: defaults::default_max_output_tokens(),
            max_in_flight: None,
            priority_shares: PriorityShares::default(),
            keys: BTreeMap::new(),
            tenants: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdmissionBackend {
    #[default]
    Memory,
    Redis,
}

/// A key's priority class (`[[auth.keys]] priority`); lower classes are shed first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// The fraction (0, 1] of an in-flight bound each class may fill: with `low = 0.5` low
/// requests are shed once half the bound is in use, leaving the rest to higher classes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityShares {
    #[serde(default = "defaults::share_low")]
    pub low: f64,
    #[serde(default = "defaults::share_normal")]
    pub normal: f64,
    #[serde(default = "defaults::share_high")]
    pub high: f64,
}

impl Default for PriorityShares {
    fn default() -> Self {
        Self {
            low: defaults::share_low(),
            normal: defaults::share_normal(),
            high: defaults::share_high(),
        }
    }
}

impl PriorityShares {
    pub fn of(&self, p: Priority) -> f64 {
        match p {
            Priority::Low => self.low,
            Priority::Normal => self.normal,
            Priority::High => self.high,
        }
    }
}

/// Rate limits and a budget of one API key or tenant. Absent fields do not limit.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeLimits {
    pub requests_per_minute: Option<u64>,
    /// Estimated prompt plus reserved output tokens per minute, settled to the actual count.
    pub tokens_per_minute: Option<u64>,
    /// Spend per UTC day in USD (reserved at admission, settled to the actual cost).
    pub cost_per_day_usd: Option<f64>,
    pub budget: Option<BudgetConfig>,
}

/// Rate limits and an in-flight bound of one route (or model asked for by name).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteLimits {
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
    pub cost_per_day_usd: Option<f64>,
    /// Requests of this route in flight at once on this node.
    pub max_in_flight: Option<usize>,
}

/// Spend per period: reaching `soft_usd` logs a warning and counts an alert (once per
/// period); a request whose reservation would pass `hard_usd` is refused (429).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    pub soft_usd: Option<f64>,
    pub hard_usd: Option<f64>,
    #[serde(default)]
    pub period: BudgetPeriod,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    #[default]
    Month,
    /// Never resets.
    Total,
}

/// `url` with any `user:password@` part masked, for messages and logs (a Redis URL may carry
/// its password).
pub fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// Problems in `[admission]` and the admission fields of `[[auth.keys]]`, each naming its path.
pub fn validate(config: &KeelConfig, err: &mut impl FnMut(String, String)) {
    let a = &config.admission;
    let key_ids: BTreeSet<&str> = config.auth.keys.iter().map(|k| k.id.as_str()).collect();
    let tenants: BTreeSet<&str> = config.auth.keys.iter().map(|k| k.tenant.as_str()).collect();
    let is_name = |n: &str| config.routes.contains_key(n) || config.models.contains_key(n);

    if a.backend == AdmissionBackend::Redis && !a.redis_url.starts_with("redis://") {
        err(
            "admission.redis_url".into(),
            format!(
                "must start with redis://, got \"{}\"",
                redact_userinfo(&a.redis_url)
            ),
        );
    }
    if a.default_max_output_tokens == 0 {
        err(
            "admission.default_max_output_tokens".into(),
            "must be greater than 0".into(),
        );
    }
    if a.max_in_flight == Some(0) {
        err(
            "admission.max_in_flight".into(),
            "must be greater than 0".into(),
        );
    }
    let s = &a.priority_shares;
    for (field, v) in [("low", s.low), ("normal", s.normal), ("high", s.high)] {
        if !(v > 0.0 && v <= 1.0) {
            err(
                format!("admission.priority_shares.{field}"),
                format!("must be greater than 0 and at most 1, got {v}"),
            );
        }
    }
    for (id, limits) in &a.keys {
        if !key_ids.contains(id.as_str()) {
            err(
                format!("admission.keys.{id}"),
                format!("unknown key id \"{id}\" (not in [[auth.keys]])"),
            );
        }
        check_scope(&format!("admission.keys.{id}"), limits, err);
    }
    for (t, limits) in &a.tenants {
        if !tenants.contains(t.as_str()) {
            err(
                format!("admission.tenants.{t}"),
                format!("unknown tenant \"{t}\" (no key in [[auth.keys]] has it)"),
            );
        }
        check_scope(&format!("admission.tenants.{t}"), limits, err);
    }
    for (name, r) in &a.routes {
        let path = format!("admission.routes.{name}");
        if !is_name(name) {
            err(path.clone(), format!("unknown route or model \"{name}\""));
        }
        check_rates(&path, r.tokens_per_minute, r.cost_per_day_usd, err);
        if r.max_in_flight == Some(0) {
            err(
                format!("{path}.max_in_flight"),
                "must be greater than 0".into(),
            );
        }
    }
    for (i, key) in config.auth.keys.iter().enumerate() {
        for (j, r) in key.routes.iter().flatten().enumerate() {
            if !is_name(r) {
                err(
                    format!("auth.keys[{i}].routes[{j}]"),
                    format!("unknown route or model \"{r}\""),
                );
            }
        }
    }
}

fn check_rates(
    path: &str,
    tokens_per_minute: Option<u64>,
    cost_per_day_usd: Option<f64>,
    err: &mut impl FnMut(String, String),
) {
    if tokens_per_minute == Some(0) {
        err(
            format!("{path}.tokens_per_minute"),
            "must be greater than 0".into(),
        );
    }
    check_usd(&format!("{path}.cost_per_day_usd"), cost_per_day_usd, err);
}

fn check_usd(path: &str, v: Option<f64>, err: &mut impl FnMut(String, String)) {
    if let Some(v) = v
        && !(v.is_finite() && v >= 0.0)
    {
        err(
            path.into(),
            format!("must be a non-negative number, got {v}"),
        );
    }
}

fn check_scope(path: &str, l: &ScopeLimits, err: &mut impl FnMut(String, String)) {
    check_rates(path, l.tokens_per_minute, l.cost_per_day_usd, err);
    if let Some(b) = &l.budget {
        check_usd(&format!("{path}.budget.soft_usd"), b.soft_usd, err);
        check_usd(&format!("{path}.budget.hard_usd"), b.hard_usd, err);
        if let (Some(soft), Some(hard)) = (b.soft_usd, b.hard_usd)
            && soft > hard
        {
            err(
                format!("{path}.budget.soft_usd"),
                format!("must not exceed hard_usd ({hard})"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_passwords_never_reach_messages() {
        use super::redact_userinfo;
        assert_eq!(
            redact_userinfo("redis://:s3cret@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(
            redact_userinfo("redis://user:p@ss@host:6379"),
            "redis://***@host:6379"
        );
        assert_eq!(
            redact_userinfo("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        let e = errors("[admission]\nbackend = \"redis\"\nredis_url = \"http://:s3cret@h\"\n");
        assert!(e.iter().any(|m| m.contains("admission.redis_url")), "{e:?}");
        assert!(e.iter().all(|m| !m.contains("s3cret")), "{e:?}");
    }

    use super::{AdmissionBackend, BudgetPeriod, Priority};
    use crate::load_str;

    const BASE: &str = r#"
[providers.mock]
kind = "openai_compat"
base_url = "http://127.0.0.1:9/v1"
[models.a]
provider = "mock"
upstream = "gpt-a"
[routes.chat]
models = ["a"]
[[auth.keys]]
id = "k1"
tenant = "acme"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;

    fn errors(extra: &str) -> Vec<String> {
        crate::load::error_texts(&format!("{BASE}{extra}"))
    }

    #[test]
    fn admission_reads_defaults_and_explicit_values() {
        let c = load_str(BASE).unwrap();
        let a = &c.admission;
        assert_eq!(a.backend, AdmissionBackend::Memory);
        assert_eq!(a.key_prefix, "keel");
        assert_eq!(a.default_max_output_tokens, 4096);
        assert_eq!((a.priority_shares.low, a.priority_shares.high), (0.5, 1.0));
        assert_eq!(c.auth.keys[0].priority, Priority::Normal);
        assert_eq!(c.auth.keys[0].routes, None);
        let c = load_str(&format!(
            "{BASE}routes = [\"chat\"]\npriority = \"low\"\n[admission]\nbackend = \"redis\"\nmax_in_flight = 10\n[admission.tenants.acme]\nrequests_per_minute = 5\nbudget = {{ soft_usd = 1.0, hard_usd = 2.0, period = \"day\" }}\n[admission.routes.chat]\nmax_in_flight = 3\n"
        ))
        .unwrap();
        assert_eq!(c.auth.keys[0].priority, Priority::Low);
        assert_eq!(c.auth.keys[0].routes, Some(vec!["chat".to_owned()]));
        let a = &c.admission;
        assert_eq!(a.backend, AdmissionBackend::Redis);
        assert_eq!(a.max_in_flight, Some(10));
        let t = &a.tenants["acme"];
        assert_eq!(t.requests_per_minute, Some(5));
        assert_eq!(t.budget.as_ref().unwrap().period, BudgetPeriod::Day);
        assert_eq!(a.routes["chat"].max_in_flight, Some(3));
    }

    #[test]
    fn unknown_keys_tenants_and_routes_are_named() {
        let e = errors(
            "routes = [\"chat\", \"nope\"]\n[admission.keys.k9]\nrequests_per_minute = 1\n[admission.tenants.globex]\nrequests_per_minute = 1\n[admission.routes.gone]\nrequests_per_minute = 1\n",
        );
        assert_eq!(
            e,
            vec![
                r#"admission.keys.k9: unknown key id "k9" (not in [[auth.keys]])"#.to_string(),
                r#"admission.tenants.globex: unknown tenant "globex" (no key in [[auth.keys]] has it)"#.to_string(),
                r#"admission.routes.gone: unknown route or model "gone""#.to_string(),
                r#"auth.keys[0].routes[1]: unknown route or model "nope""#.to_string(),
            ]
        );
    }

    #[test]
    fn bad_values_name_their_paths() {
        let e = errors(
            "[admission]\nbackend = \"redis\"\nredis_url = \"127.0.0.1:6379\"\nmax_in_flight = 0\npriority_shares = { low = 0.0 }\n[admission.tenants.acme]\ncost_per_day_usd = -1.0\nbudget = { soft_usd = 5.0, hard_usd = 2.0 }\n[admission.routes.a]\nmax_in_flight = 0\n",
        );
        assert_eq!(
            e,
            vec![
                r#"admission.redis_url: must start with redis://, got "127.0.0.1:6379""#
                    .to_string(),
                "admission.max_in_flight: must be greater than 0".to_string(),
                "admission.priority_shares.low: must be greater than 0 and at most 1, got 0"
                    .to_string(),
                "admission.tenants.acme.cost_per_day_usd: must be a non-negative number, got -1"
                    .to_string(),
                "admission.tenants.acme.budget.soft_usd: must not exceed hard_usd (2)".to_string(),
                "admission.routes.a.max_in_flight: must be greater than 0".to_string(),
            ]
        );
        let e = errors("[admission.keys.k1]\nrequests_per_hour = 1\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("admission.keys.k1.requests_per_hour: unknown field"),
            "{e:?}"
        );
        let e = errors("priority = \"urgent\"\n");
        assert!(
            e[0].starts_with("auth.keys[0].priority: unknown variant"),
            "{e:?}"
        );
    }
}
