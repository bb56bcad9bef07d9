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
        if let Some(p) = &route.policy
            && !g.policies.contains_key(p)
        {
            let known: Vec<&str> = g.policies.keys().map(String::as_str).collect();
            err(
                format!("routes.{name}.policy"),
                format!("unknown policy \"{p}\" (known: {})", known.join(", ")),
            );
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
                if let Some(to) = &rail.reroute_to
                    && !routes.contains_key(to)
                {
                    err(
                        format!("{path}.reroute_to"),
                        format!("unknown route \"{to}\""),
                    );
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

#[cfg(test)]
mod tests {
    const BASE: &str = "[providers.mock]\nkind = \"openai_compat\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[models.a]\nprovider = \"mock\"\nupstream = \"gpt-a\"\n";

    fn errors(extra: &str) -> Vec<String> {
        crate::load::error_texts(&format!("{BASE}{extra}"))
    }

    #[test]
    fn guard_errors_name_their_paths() {
        let e = errors(
            "[routes.r]\nmodels = [\"a\"]\npolicy = \"missing\"\n\
             [guard.policies.p]\ninput = [{ scanner = \"pii\", action = \"reroute\", reroute_to = \"nowhere\" }]\n\
             stream = [{ scanner = \"toxicity\", action = \"redact\" }]\n",
        );
        assert_eq!(
            e,
            vec![
                "routes.r.policy: unknown policy \"missing\" (known: p)".to_string(),
                "guard.policies.p.input[0].reroute_to: unknown route \"nowhere\"".to_string(),
                "guard.policies.p.stream[0].action: \"redact\" is not available on the stream stage".to_string(),
            ],
        );
        let e =
            errors("[guard.policies.p]\ninput = [{ scanner = \"nope\", action = \"block\" }]\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("guard.policies.p.input[0].scanner: unknown scanner \"nope\""),
            "{e:?}"
        );
        let e =
            errors("[guard.policies.p]\ninput = [{ scanner = \"pii\", action = \"explode\" }]\n");
        assert!(
            e[0].starts_with("guard.policies.p.input[0].action: unknown variant `explode`"),
            "{e:?}"
        );
        assert!(errors("[guard.policies.p]\ninput = [{ scanner = \"pii\", action = \"redact\" }]\n[routes.r]\nmodels = [\"a\"]\npolicy = \"p\"\n").is_empty());
    }
}
