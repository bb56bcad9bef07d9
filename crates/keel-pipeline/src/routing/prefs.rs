//! Per-request routing preferences: `"keel": {"route": {...}}` in the request body (the
//! SDKs' `extra_body`). They apply after the route's strategy, to the models able to serve
//! the request:
//! - `only`: keep just these models; `ignore`: drop these;
//! - `sort`: `"price"` (input + output price, ascending) or `"latency"` (peak-EWMA,
//!   ascending; models never measured go last);
//! - `order`: these models first, in this order; the rest keep their order after them.
//!
//! Every name must be one of the route's models (400 naming the field, e.g.
//! `keel.route.only[1]`); preferences leaving no capable model are a 400 as well. The `keel`
//! object is keel's and is never forwarded upstream; other keys in it belong to other
//! features and are left alone here.

use crate::catalog::Candidate;
use crate::routing::cost;
use keel_types::ApiError;
use keel_types::openai::ChatCompletionRequest;
use serde::{Deserialize, Serialize};

/// The request field keel reads its extensions from.
pub const EXTENSION: &str = "keel";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePrefs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<SortBy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    Price,
    Latency,
}

/// The request's `keel.route` preferences, if any; a malformed one is a 400 naming it.
pub fn parse(req: &ChatCompletionRequest) -> Result<Option<RoutePrefs>, ApiError> {
    let Some(ext) = req.extra.get(EXTENSION) else {
        return Ok(None);
    };
    let Some(ext) = ext.as_object() else {
        return Err(ApiError::invalid(EXTENSION, "must be an object"));
    };
    let Some(route) = ext.get("route") else {
        return Ok(None);
    };
    RoutePrefs::deserialize(route)
        .map(Some)
        .map_err(|e| ApiError::invalid("keel.route", e.to_string()))
}

/// Checks every name against the route's models (`route_models`).
pub fn check_names(prefs: &RoutePrefs, route: &str, route_models: &[&str]) -> Result<(), ApiError> {
    for (field, names) in [
        ("order", &prefs.order),
        ("only", &prefs.only),
        ("ignore", &prefs.ignore),
    ] {
        if let Some((i, name)) = names
            .iter()
            .enumerate()
            .find(|(_, n)| !route_models.contains(&n.as_str()))
        {
            return Err(ApiError::invalid(
                format!("keel.route.{field}[{i}]"),
                format!(
                    "\"{name}\" is not a model of route \"{route}\"; its models: {}",
                    route_models.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Applies `prefs` to the strategy's order; a 400 when nothing is left.
pub fn apply(prefs: &RoutePrefs, mut order: Vec<Candidate>) -> Result<Vec<Candidate>, ApiError> {
    if !prefs.only.is_empty() {
        order.retain(|c| prefs.only.contains(&c.name));
        if order.is_empty() {
            return Err(ApiError::invalid(
                "keel.route.only",
                "none of these models can serve this request",
            ));
        }
    }
    if !prefs.ignore.is_empty() {
        order.retain(|c| !prefs.ignore.contains(&c.name));
        if order.is_empty() {
            return Err(ApiError::invalid(
                "keel.route.ignore",
                "ignores every model able to serve this request",
            ));
        }
    }
    match prefs.sort {
        Some(SortBy::Price) => order.sort_by(|a, b| cost::price(a).total_cmp(&cost::price(b))),
        Some(SortBy::Latency) => order.sort_by(|a, b| {
            let est = |c: &Candidate| c.latency.estimate_ms().unwrap_or(f64::INFINITY);
            est(a).total_cmp(&est(b))
        }),
        None => {}
    }
    if !prefs.order.is_empty() {
        let rank = |c: &Candidate| {
            prefs
                .order
                .iter()
                .position(|n| *n == c.name)
                .unwrap_or(usize::MAX)
        };
        order.sort_by_key(rank);
    }
    Ok(order)
}

/// How the preferences changed the order, for the routing reason.
pub fn describe(prefs: &RoutePrefs) -> String {
    let mut parts = Vec::new();
    for (field, names) in [
        ("only", &prefs.only),
        ("ignore", &prefs.ignore),
        ("order", &prefs.order),
    ] {
        if !names.is_empty() {
            parts.push(format!("{field}=[{}]", names.join(", ")));
        }
    }
    if let Some(sort) = prefs.sort {
        parts.push(format!(
            "sort={}",
            match sort {
                SortBy::Price => "price",
                SortBy::Latency => "latency",
            }
        ));
    }
    format!("request preferences {}", parts.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(keel: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(json!({"model": "r", "messages": [], "keel": keel})).unwrap()
    }

    #[test]
    fn parses_preferences_and_names_bad_fields() {
        let p = parse(&req(json!({"route": {"only": ["a"], "sort": "latency"}})))
            .unwrap()
            .unwrap();
        assert_eq!(p.only, ["a"]);
        assert_eq!(p.sort, Some(SortBy::Latency));
        assert_eq!(parse(&req(json!({"other": 1}))).unwrap(), None);
        let e = parse(&req(json!({"route": {"sort": "speed"}}))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("keel.route"));
        let e = parse(&req(json!({"route": {"onyl": ["a"]}}))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("keel.route"));
        assert!(e.message.contains("onyl"), "{}", e.message);
        let e = parse(&req(json!("fast"))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("keel"));
    }

    #[test]
    fn unknown_names_name_their_index() {
        let p = RoutePrefs {
            ignore: vec!["a".into(), "x".into()],
            ..RoutePrefs::default()
        };
        let e = check_names(&p, "r", &["a", "b"]).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("keel.route.ignore[1]"));
        assert_eq!(e.code.http_status(), 400);
    }
}
