//! Validation of a route's strategy settings (`strategy`, `weights`, `cascade`), kept apart
//! from the general cross-reference checks in [`crate::validate`].

use crate::model::{RouteConfig, RouteStrategy};

/// Every problem in route `name`'s strategy settings, reported through `err(path, message)`.
pub(crate) fn validate_route(
    name: &str,
    route: &RouteConfig,
    err: &mut impl FnMut(String, String),
) {
    let path = format!("routes.{name}");
    if !route.weights.is_empty() && route.strategy != RouteStrategy::Weighted {
        err(
            format!("{path}.weights"),
            "only used by strategy = \"weighted\"".into(),
        );
    }
    for model in route.weights.keys() {
        if !route.models.contains(model) {
            err(
                format!("{path}.weights.{model}"),
                format!("\"{model}\" is not one of the route's models"),
            );
        }
    }
    if route.strategy == RouteStrategy::Weighted
        && route
            .models
            .iter()
            .all(|m| route.weights.get(m).copied().unwrap_or(1) == 0)
    {
        err(
            format!("{path}.weights"),
            "at least one model needs a weight above 0".into(),
        );
    }
    match (&route.cascade, route.strategy) {
        (Some(_), s) if s != RouteStrategy::Cascade => err(
            format!("{path}.cascade"),
            "only used by strategy = \"cascade\"".into(),
        ),
        (Some(c), _) => {
            if !(0.0..=1.0).contains(&c.threshold) {
                err(
                    format!("{path}.cascade.threshold"),
                    format!("must be between 0 and 1, got {}", c.threshold),
                );
            }
            if c.signals.is_empty() {
                err(
                    format!("{path}.cascade.signals"),
                    "must name at least one signal".into(),
                );
            }
        }
        (None, _) => {}
    }
    if route.strategy == RouteStrategy::Cascade && route.models.len() < 2 {
        err(
            format!("{path}.models"),
            "a cascade needs at least two models (cheapest first)".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::load_str;
    use crate::model::{RouteStrategy, TrustSignal};

    const BASE: &str = r#"
[providers.mock]
kind = "openai_compat"
base_url = "http://127.0.0.1:9/v1"
[models.a]
provider = "mock"
upstream = "a"
[models.b]
provider = "mock"
upstream = "b"
"#;

    fn errors(extra: &str) -> Vec<String> {
        crate::load::error_texts(&format!("{BASE}{extra}"))
    }

    #[test]
    fn strategies_read_their_settings_and_defaults() {
        let c = load_str(&format!(
            "{BASE}[routes.plain]\nmodels = [\"a\", \"b\"]\n\
             [routes.w]\nmodels = [\"a\", \"b\"]\nstrategy = \"weighted\"\nweights = {{ a = 3 }}\n\
             [routes.c]\nmodels = [\"a\", \"b\"]\nstrategy = \"cascade\"\n\
             [routes.c2]\nmodels = [\"a\", \"b\"]\nstrategy = \"cascade\"\ncascade = {{ threshold = 0.8, signals = [\"refusal\"] }}\n"
        ))
        .unwrap();
        assert_eq!(c.routes["plain"].strategy, RouteStrategy::Fallback);
        assert_eq!(c.routes["w"].strategy, RouteStrategy::Weighted);
        assert_eq!(c.routes["w"].weights["a"], 3);
        assert_eq!(c.routes["c"].cascade, None);
        let c2 = c.routes["c2"].cascade.as_ref().unwrap();
        assert_eq!(c2.threshold, 0.8);
        assert_eq!(c2.signals, vec![TrustSignal::Refusal]);
        assert_eq!(c.models["a"].latency_decay.as_secs(), 10);
    }

    #[test]
    fn the_documented_cascade_example_is_the_default() {
        let line = crate::defaults::DEFAULT_CONFIG_TOML
            .lines()
            .find_map(|l| l.strip_prefix("# cascade = "))
            .unwrap();
        let c = load_str(&format!(
            "{BASE}[routes.r]\nmodels = [\"a\", \"b\"]\nstrategy = \"cascade\"\ncascade = {line}\n"
        ))
        .unwrap();
        assert_eq!(c.routes["r"].cascade, Some(crate::CascadeConfig::default()));
    }

    #[test]
    fn strategy_errors_name_their_paths() {
        let e = errors(
            "[routes.r]\nmodels = [\"a\"]\nweights = { a = 2, x = 1 }\ncascade = { threshold = 0.5 }\n",
        );
        assert_eq!(
            e,
            vec![
                "routes.r.weights: only used by strategy = \"weighted\"".to_string(),
                "routes.r.weights.x: \"x\" is not one of the route's models".to_string(),
                "routes.r.cascade: only used by strategy = \"cascade\"".to_string(),
            ]
        );
        let e = errors(
            "[routes.r]\nmodels = [\"a\", \"b\"]\nstrategy = \"weighted\"\nweights = { a = 0, b = 0 }\n\
             [routes.s]\nmodels = [\"a\"]\nstrategy = \"cascade\"\ncascade = { threshold = 1.5, signals = [] }\n",
        );
        assert_eq!(
            e,
            vec![
                "routes.r.weights: at least one model needs a weight above 0".to_string(),
                "routes.s.cascade.threshold: must be between 0 and 1, got 1.5".to_string(),
                "routes.s.cascade.signals: must name at least one signal".to_string(),
                "routes.s.models: a cascade needs at least two models (cheapest first)".to_string(),
            ]
        );
        let e = errors("[routes.r]\nmodels = [\"a\"]\nstrategy = \"fastest\"\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("routes.r.strategy: unknown variant `fastest`"),
            "{e:?}"
        );
        let e =
            errors("[models.c]\nprovider = \"mock\"\nupstream = \"c\"\nlatency_decay = \"0s\"\n");
        assert_eq!(
            e,
            vec!["models.c.latency_decay: must be greater than 0".to_string()]
        );
    }
}
