//! `[guard]` (scanners, policies, tenants; the types live in `keel_guard::config`) and a
//! route's `policy`: cross-reference checks. Building every scanner here too catches bad
//! options (an invalid custom regex) at `keel config validate`, not at the first request.

use crate::model::{KeelConfig, RouteConfig};
use keel_guard::config::{Action, GuardConfig};
use std::collections::BTreeMap;

pub fn check(config: &KeelConfig, err: &mut impl FnMut(String, String)) {
    let g = &config.guard;
    if let Err(e) = keel_guard::Guard::build(g, None) {
        // The builder's errors start with the path: "guard.x.y: reason".
        let (path, reason) = e.split_once(": ").unwrap_or(("guard", e.as_str()));
        err(path.to_owned(), reason.to_owned());
    }
    check_routes(g, &config.routes, err);
    let tenants: std::collections::BTreeSet<&str> =
        config.auth.keys.iter().map(|k| k.tenant.as_str()).collect();
    for t in g.tenants.keys() {
        if !config.auth.keys.is_empty() && !tenants.contains(t.as_str()) {
            err(
                format!("guard.tenants.{t}"),
                format!("no API key belongs to the tenant \"{t}\""),
            );
        }
    }
}

fn check_routes(
    g: &GuardConfig,
    routes: &BTreeMap<String, RouteConfig>,
    err: &mut impl FnMut(String, String),
) {
    for (name, route) in routes {
        if let Some(p) = &route.policy {
            if !g.policies.contains_key(p) {
                let known: Vec<&str> = g.policies.keys().map(String::as_str).collect();
                err(
                    format!("routes.{name}.policy"),
                    format!("unknown policy \"{p}\" (known: {})", known.join(", ")),
                );
            }
        }
    }
    for (pname, p) in &g.policies {
        let stages = [
            ("input", &p.input),
            ("context", &p.context),
            ("output", &p.output),
            ("stream", &p.stream),
        ];
        for (stage, rails) in stages {
            for (i, rail) in rails.iter().enumerate() {
                let path = format!("guard.policies.{pname}.{stage}[{i}]");
                if let Some(to) = &rail.reroute_to {
                    if !routes.contains_key(to) {
                        err(format!("{path}.reroute_to"), format!("unknown route \"{to}\""));
                    }
                }
                let fits = match stage {
                    "input" => true,
                    // A passage can only be kept, dropped or recorded.
                    "context" => matches!(
                        rail.action,
                        Action::Allow | Action::Shadow | Action::Block | Action::Escalate
                    ),
                    // An answer already produced cannot be rerouted; a stream cannot be redacted
                    // after it was sent.
                    "output" => rail.action != Action::Reroute,
                    _ => !matches!(rail.action, Action::Reroute | Action::Redact),
                };
                if !fits {
                    err(
                        format!("{path}.action"),
                        format!(
                            "\"{}\" is not available on the {stage} stage",
                            rail.action.as_str()
                        ),
                    );
                }
            }
        }
    }
}
