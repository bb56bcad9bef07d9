//! Pure validation of a parsed config: cross references and value ranges. Nothing here reads
//! the environment or the disk, so `keel config validate` means the same on every machine.

use std::time::Duration;

use crate::load::ConfigError;
use crate::model::{Capability, KeelConfig, ProviderConfig};

/// The upstream ids the local provider serves.
pub const LOCAL_CHAT: &str = "chat";
pub const LOCAL_EMBEDDINGS: &str = "embeddings";
/// The same embeddings model with int8 dense layers (faster, cosine ~0.99 to the full one).
pub const LOCAL_EMBEDDINGS_INT8: &str = "embeddings-int8";
/// Every upstream id the local provider serves.
pub const LOCAL_UPSTREAMS: [&str; 3] = [LOCAL_CHAT, LOCAL_EMBEDDINGS, LOCAL_EMBEDDINGS_INT8];

/// Every problem in `config`, each naming its path.
pub fn validate(config: &KeelConfig) -> Result<(), Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: String| errors.push(ConfigError { path, message });

    if config.server.max_body_bytes == 0 {
        err(
            "server.max_body_bytes".into(),
            "must be greater than 0".into(),
        );
    }
    if config.server.max_concurrency == 0 {
        err(
            "server.max_concurrency".into(),
            "must be greater than 0".into(),
        );
    }
    let writer = config.store.writer();
    if writer.batch_size == 0 || writer.queue_capacity == 0 {
        err(
            "store".into(),
            "batch_size and queue_capacity must be greater than 0".into(),
        );
    }

    check_retention(
        "store.request_retention",
        config.store.request_retention(),
        &mut err,
    );

    let mut seen_ids = std::collections::BTreeSet::new();
    for (i, key) in config.auth.keys.iter().enumerate() {
        let is_hex = key.sha256.len() == 64 && key.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hex {
            err(
                format!("auth.keys[{i}].sha256"),
                "must be 64 hex characters (a SHA-256)".into(),
            );
        }
        if key.tenant.is_empty() {
            err(format!("auth.keys[{i}].tenant"), "must not be empty".into());
        }
        if !seen_ids.insert(key.id.as_str()) {
            err(
                format!("auth.keys[{i}].id"),
                format!("duplicate key id \"{}\"", key.id),
            );
        }
    }

    for (name, provider) in &config.providers {
        if let ProviderConfig::OpenaiCompat(http) | ProviderConfig::Anthropic(http) = provider {
            if !(http.base_url.starts_with("http://") || http.base_url.starts_with("https://")) {
                err(
                    format!("providers.{name}.base_url"),
                    format!(
                        "must start with http:// or https://, got \"{}\"",
                        http.base_url
                    ),
                );
            }
            if http.timeout.is_zero() {
                err(
                    format!("providers.{name}.timeout"),
                    "must be greater than 0".into(),
                );
            }
        }
        if let ProviderConfig::Local(local) = provider
            && (local.chat_max_active == 0 || local.embed_max_batch == 0)
        {
            err(
                format!("providers.{name}"),
                "chat_max_active and embed_max_batch must be greater than 0".into(),
            );
        }
    }

    for (name, model) in &config.models {
        let path = format!("models.{name}");
        match config.providers.get(&model.provider) {
            None => err(
                format!("{path}.provider"),
                format!("unknown provider \"{}\"", model.provider),
            ),
            Some(ProviderConfig::Local(_)) => {
                if !LOCAL_UPSTREAMS.contains(&model.upstream.as_str()) {
                    err(
                        format!("{path}.upstream"),
                        format!(
                            "local models are {}, got \"{}\"",
                            LOCAL_UPSTREAMS.map(|u| format!("\"{u}\"")).join(", "),
                            model.upstream
                        ),
                    );
                }
            }
            Some(_) => {}
        }
        if model.capabilities.is_empty() {
            err(
                format!("{path}.capabilities"),
                "must name at least one capability".into(),
            );
        }
        if !model.can(Capability::Chat) && !model.can(Capability::Embeddings) {
            err(
                format!("{path}.capabilities"),
                "must include \"chat\" or \"embeddings\"".into(),
            );
        }
        if model.context_window == 0 {
            err(
                format!("{path}.context_window"),
                "must be greater than 0".into(),
            );
        }
        for (field, price) in [
            ("input_price_per_mtok", model.input_price_per_mtok),
            ("output_price_per_mtok", model.output_price_per_mtok),
        ] {
            if !price.is_finite() || price < 0.0 {
                err(
                    format!("{path}.{field}"),
                    format!("must be a non-negative number, got {price}"),
                );
            }
        }
        let c = &model.circuit;
        if !(c.failure_rate > 0.0 && c.failure_rate <= 1.0) {
            err(
                format!("{path}.circuit.failure_rate"),
                format!(
                    "must be greater than 0 and at most 1, got {}",
                    c.failure_rate
                ),
            );
        }
        for (field, n) in [
            ("min_requests", c.min_requests),
            ("half_open_probes", c.half_open_probes),
        ] {
            if n == 0 {
                err(
                    format!("{path}.circuit.{field}"),
                    "must be at least 1".into(),
                );
            }
        }
        if model.latency_decay.is_zero() {
            err(
                format!("{path}.latency_decay"),
                "must be greater than 0".into(),
            );
        }
        for (field, d) in [("window", c.window), ("cooldown", c.cooldown)] {
            if d.is_zero() {
                err(
                    format!("{path}.circuit.{field}"),
                    "must be greater than 0".into(),
                );
            }
        }
    }

    for (name, route) in &config.routes {
        if config.models.contains_key(name) {
            err(
                format!("routes.{name}"),
                format!("\"{name}\" is also a model name; names must be unique"),
            );
        }
        if route.models.is_empty() {
            err(
                format!("routes.{name}.models"),
                "must list at least one model".into(),
            );
        }
        for (i, m) in route.models.iter().enumerate() {
            if !config.models.contains_key(m) {
                err(
                    format!("routes.{name}.models[{i}]"),
                    format!("unknown model \"{m}\""),
                );
            }
        }
        if route.ttft_timeout.is_some_and(|d| d.is_zero()) {
            err(
                format!("routes.{name}.ttft_timeout"),
                "must be greater than 0".into(),
            );
        }
        crate::resilience::validate_route(name, route, &mut err);
        let retry = &route.retry;
        if retry.base_backoff.is_zero() {
            err(
                format!("routes.{name}.retry.base_backoff"),
                "must be greater than 0".into(),
            );
        }
        crate::routing::validate_route(name, route, &mut err);
        if retry.max_backoff < retry.base_backoff {
            err(
                format!("routes.{name}.retry.max_backoff"),
                format!(
                    "must not be less than base_backoff ({:?})",
                    retry.base_backoff
                ),
            );
        }
    }

    validate_observe(config, &mut err);
    crate::retrieval::check(&config.retrieval, &config.routes, &mut err);
    crate::admission::validate(config, &mut err);
    crate::guard::check(config, &mut err);

    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn is_http_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Retention is applied once a minute, so anything shorter would not mean what it says.
fn check_retention(path: &str, retention: Duration, err: &mut impl FnMut(String, String)) {
    if retention < Duration::from_secs(60) {
        err(
            path.into(),
            format!(
                "must be at least 1m (old rows are deleted once a minute), got {}",
                humantime_serde::re::humantime::format_duration(retention)
            ),
        );
    }
}

fn validate_observe(config: &KeelConfig, err: &mut impl FnMut(String, String)) {
    let o = &config.observe;
    check_retention("observe.trace_retention", o.trace_retention, err);
    if let Some(otlp) = &o.otlp {
        if !is_http_url(&otlp.endpoint) {
            err(
                "observe.otlp.endpoint".into(),
                format!(
                    "must start with http:// or https://, got \"{}\"",
                    otlp.endpoint
                ),
            );
        }
        if otlp.batch_size == 0 || otlp.queue_capacity == 0 {
            err(
                "observe.otlp".into(),
                "batch_size and queue_capacity must be greater than 0".into(),
            );
        }
    }
    let sm = &o.sampling;
    for (field, v) in [
        ("max_per_second", sm.max_per_second),
        ("keep_notable_per_second", sm.keep_notable_per_second),
    ] {
        if !v.is_finite() || v < 0.0 {
            err(
                format!("observe.sampling.{field}"),
                format!("must be a non-negative number, got {v}"),
            );
        }
    }
    if !(0.0..=1.0).contains(&sm.rate) {
        err(
            "observe.sampling.rate".into(),
            format!("must be between 0 and 1, got {}", sm.rate),
        );
    }
    let d = &o.drift;
    if d.baseline_size == 0 || d.window_size == 0 {
        err(
            "observe.drift".into(),
            "baseline_size and window_size must be greater than 0".into(),
        );
    }
    if d.min_samples > d.window_size {
        err(
            "observe.drift.min_samples".into(),
            format!("must not exceed window_size ({})", d.window_size),
        );
    }
    if !(0.0..=1.0).contains(&d.embed_sample_rate) {
        err(
            "observe.drift.embed_sample_rate".into(),
            format!("must be between 0 and 1, got {}", d.embed_sample_rate),
        );
    }
    for (field, v) in [
        ("psi_threshold", d.psi_threshold),
        ("centroid_threshold", d.centroid_threshold),
    ] {
        if !v.is_finite() || v <= 0.0 {
            err(
                format!("observe.drift.{field}"),
                format!("must be a positive number, got {v}"),
            );
        }
    }
    for (i, s) in d.signals.iter().enumerate() {
        if !crate::observe::DRIFT_SIGNALS.contains(&s.as_str()) {
            err(
                format!("observe.drift.signals[{i}]"),
                format!(
                    "unknown signal \"{s}\"; known: {}",
                    crate::observe::DRIFT_SIGNALS.join(", ")
                ),
            );
        }
    }
    if let Some(m) = &d.embeddings_model {
        match config.models.get(m) {
            None => err(
                "observe.drift.embeddings_model".into(),
                format!("unknown model \"{m}\""),
            ),
            Some(model) if !model.can(Capability::Embeddings) => err(
                "observe.drift.embeddings_model".into(),
                format!("model \"{m}\" does not have the \"embeddings\" capability"),
            ),
            Some(_) => {}
        }
    }
    if let Some(url) = &d.webhook_url {
        if !is_http_url(url) {
            err(
                "observe.drift.webhook_url".into(),
                format!("must start with http:// or https://, got \"{url}\""),
            );
        }
        if d.webhook_secret_env.is_none() {
            err(
                "observe.drift.webhook_secret_env".into(),
                "required with webhook_url: alerts are always signed".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::load_str;

    const BASE: &str = r#"
[providers.mock]
kind = "openai_compat"
base_url = "http://127.0.0.1:9/v1"

[models.a]
provider = "mock"
upstream = "gpt-a"
"#;

    fn errors(extra: &str) -> Vec<String> {
        crate::load::error_texts(&format!("{BASE}{extra}"))
    }

    #[test]
    fn observe_errors_name_their_paths() {
        let e = errors(
            "[observe.otlp]\nendpoint = \"localhost:4318\"\n[observe.drift]\nembeddings_model = \"a\"\nwebhook_url = \"http://127.0.0.1:9/hook\"\nembed_sample_rate = 2.0\n",
        );
        assert_eq!(
            e,
            vec![
                r#"observe.otlp.endpoint: must start with http:// or https://, got "localhost:4318""#.to_string(),
                "observe.drift.embed_sample_rate: must be between 0 and 1, got 2".to_string(),
                r#"observe.drift.embeddings_model: model "a" does not have the "embeddings" capability"#.to_string(),
                "observe.drift.webhook_secret_env: required with webhook_url: alerts are always signed".to_string(),
            ]
        );
        let e = errors("[observe.tenants.acme]\ncontent = \"everything\"\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("observe.tenants.acme.content: unknown variant `everything`"),
            "{e:?}"
        );
    }

    #[test]
    fn retentions_are_at_least_a_minute() {
        assert_eq!(
            errors("[store]\nkind = \"sqlite\"\nrequest_retention = \"30s\"\n[observe]\ntrace_retention = \"0s\"\n"),
            vec![
                "store.request_retention: must be at least 1m (old rows are deleted once a minute), got 30s".to_string(),
                "observe.trace_retention: must be at least 1m (old rows are deleted once a minute), got 0s".to_string(),
            ]
        );
        let ok = load_str(&format!(
            "{BASE}[store]\nkind = \"postgres\"\nrequest_retention = \"90d\"\n"
        ))
        .expect("valid");
        assert_eq!(
            ok.store.request_retention(),
            std::time::Duration::from_secs(90 * 24 * 3600)
        );
        let default = load_str(BASE).expect("valid");
        assert_eq!(
            default.store.request_retention(),
            std::time::Duration::from_secs(30 * 24 * 3600)
        );
    }

    #[test]
    fn local_upstreams_are_the_ones_the_provider_serves() {
        let local = |upstream: &str| {
            errors(&format!(
                "[providers.local]\nkind = \"local\"\n[models.m]\nprovider = \"local\"\nupstream = \"{upstream}\"\ncapabilities = [\"embeddings\"]\n"
            ))
        };
        assert_eq!(local("embeddings"), Vec::<String>::new());
        assert_eq!(local("embeddings-int8"), Vec::<String>::new());
        assert_eq!(
            local("embeddings-fp16"),
            vec![
                r#"models.m.upstream: local models are "chat", "embeddings", "embeddings-int8", got "embeddings-fp16""#
                    .to_string()
            ]
        );
    }

    #[test]
    fn unknown_route_model_names_its_index() {
        let e = errors("[routes.support]\nmodels = [\"a\", \"x\"]\n");
        assert_eq!(
            e,
            vec![r#"routes.support.models[1]: unknown model "x""#.to_string()]
        );
    }

    #[test]
    fn unknown_field_names_its_path() {
        let e = errors("[routes.support]\nmodels = [\"a\"]\nfallbak = true\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("routes.support.fallbak: unknown field `fallbak`"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn route_retry_reads_defaults_and_explicit_values() {
        let c = load_str(&format!(
            "{BASE}[routes.plain]\nmodels = [\"a\"]\n[routes.tuned]\nmodels = [\"a\"]\nretry = {{ max_retries = 0, base_backoff = \"10ms\", max_backoff = \"50ms\", max_retry_after = \"1s\" }}\n"
        ))
        .unwrap();
        assert_eq!(c.routes["plain"].retry, crate::RetryConfig::default());
        assert_eq!(c.routes["plain"].retry.max_retries, 2);
        assert_eq!(c.routes["plain"].retry.base_backoff.as_millis(), 100);
        assert_eq!(c.routes["plain"].retry.max_backoff.as_secs(), 2);
        assert_eq!(c.routes["plain"].retry.max_retry_after.as_secs(), 5);
        let t = &c.routes["tuned"].retry;
        assert_eq!(t.max_retries, 0);
        assert_eq!(t.base_backoff.as_millis(), 10);
        assert_eq!(t.max_backoff.as_millis(), 50);
        assert_eq!(t.max_retry_after.as_secs(), 1);
    }

    #[test]
    fn the_documented_retry_example_is_the_default() {
        let line = crate::defaults::DEFAULT_CONFIG_TOML
            .lines()
            .find_map(|l| l.strip_prefix("# retry = "))
            .unwrap();
        let c = load_str(&format!(
            "{BASE}[routes.r]\nmodels = [\"a\"]\nretry = {line}\n"
        ))
        .unwrap();
        assert_eq!(c.routes["r"].retry, crate::RetryConfig::default());
    }

    #[test]
    fn route_ttft_timeout_is_optional_and_must_be_positive() {
        let c = load_str(&format!(
            "{BASE}[routes.plain]\nmodels = [\"a\"]\n[routes.quick]\nmodels = [\"a\"]\nttft_timeout = \"2s\"\n"
        ))
        .unwrap();
        assert_eq!(c.routes["plain"].ttft_timeout, None);
        assert_eq!(
            c.routes["quick"].ttft_timeout,
            Some(std::time::Duration::from_secs(2))
        );
        let e = errors("[routes.r]\nmodels = [\"a\"]\nttft_timeout = \"0s\"\n");
        assert_eq!(
            e,
            vec!["routes.r.ttft_timeout: must be greater than 0".to_string()]
        );
    }

    #[test]
    fn route_retry_errors_name_their_paths() {
        let e = errors(
            "[routes.r]\nmodels = [\"a\"]\nretry = { base_backoff = \"0s\", max_backoff = \"0s\" }\n[routes.s]\nmodels = [\"a\"]\nretry = { base_backoff = \"1s\", max_backoff = \"500ms\" }\n",
        );
        assert_eq!(
            e,
            vec![
                "routes.r.retry.base_backoff: must be greater than 0".to_string(),
                "routes.s.retry.max_backoff: must not be less than base_backoff (1s)".to_string(),
            ]
        );
        let e = errors("[routes.r]\nmodels = [\"a\"]\nretry = { max_retrys = 1 }\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("routes.r.retry.max_retrys: unknown field `max_retrys`"),
            "{e:?}"
        );
    }

    #[test]
    fn circuit_reads_defaults_and_explicit_values() {
        let c = load_str(&format!(
            "{BASE}[models.b]\nprovider = \"mock\"\nupstream = \"b\"\ncircuit = {{ min_requests = 4, failure_rate = 0.25, window = \"10s\", cooldown = \"300ms\", half_open_probes = 2 }}\n"
        ))
        .unwrap();
        assert_eq!(c.models["a"].circuit, crate::CircuitConfig::default());
        let d = &c.models["a"].circuit;
        assert_eq!(d.min_requests, 10);
        assert_eq!(d.failure_rate, 0.5);
        assert_eq!(d.window.as_secs(), 30);
        assert_eq!(d.cooldown.as_secs(), 15);
        assert_eq!(d.half_open_probes, 1);
        let b = &c.models["b"].circuit;
        assert_eq!(b.min_requests, 4);
        assert_eq!(b.failure_rate, 0.25);
        assert_eq!(b.window.as_secs(), 10);
        assert_eq!(b.cooldown.as_millis(), 300);
        assert_eq!(b.half_open_probes, 2);
    }

    #[test]
    fn the_documented_circuit_example_is_the_default() {
        let line = crate::defaults::DEFAULT_CONFIG_TOML
            .lines()
            .find_map(|l| l.strip_prefix("# circuit = "))
            .unwrap();
        let c = load_str(&format!(
            "{BASE}[models.b]\nprovider = \"mock\"\nupstream = \"b\"\ncircuit = {line}\n"
        ))
        .unwrap();
        assert_eq!(c.models["b"].circuit, crate::CircuitConfig::default());
    }

    #[test]
    fn circuit_errors_name_their_paths() {
        let e = errors(
            "[models.b]\nprovider = \"mock\"\nupstream = \"b\"\ncircuit = { min_requests = 0, failure_rate = 0.0, window = \"0s\", cooldown = \"0s\", half_open_probes = 0 }\n",
        );
        assert_eq!(
            e,
            vec![
                "models.b.circuit.failure_rate: must be greater than 0 and at most 1, got 0"
                    .to_string(),
                "models.b.circuit.min_requests: must be at least 1".to_string(),
                "models.b.circuit.half_open_probes: must be at least 1".to_string(),
                "models.b.circuit.window: must be greater than 0".to_string(),
                "models.b.circuit.cooldown: must be greater than 0".to_string(),
            ]
        );
        let e = errors(
            "[models.b]\nprovider = \"mock\"\nupstream = \"b\"\ncircuit = { failure_rate = 1.5 }\n",
        );
        assert_eq!(
            e,
            vec![
                "models.b.circuit.failure_rate: must be greater than 0 and at most 1, got 1.5"
                    .to_string()
            ]
        );
        let e = errors(
            "[models.b]\nprovider = \"mock\"\nupstream = \"b\"\ncircuit = { cooldwn = \"1s\" }\n",
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("models.b.circuit.cooldwn: unknown field `cooldwn`"),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_type_names_its_path() {
        let e =
            errors("[models.b]\nprovider = \"mock\"\nupstream = \"b\"\ncontext_window = \"big\"\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("models.b.context_window: invalid type"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn several_problems_are_all_reported() {
        let e = errors(
            "[models.b]\nprovider = \"nope\"\nupstream = \"b\"\ninput_price_per_mtok = -1.0\n[[auth.keys]]\nid = \"k\"\ntenant = \"t\"\nsha256 = \"abc\"\n",
        );
        assert!(
            e.iter()
                .any(|m| m == r#"models.b.provider: unknown provider "nope""#),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("models.b.input_price_per_mtok")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("auth.keys[0].sha256")),
            "{e:?}"
        );
    }

    #[test]
    fn durations_read_human_units() {
        let c = load_str(&format!("{BASE}[server]\nrequest_timeout = \"250ms\"\n")).unwrap();
        assert_eq!(c.server.request_timeout.as_millis(), 250);
    }

    #[test]
    fn default_config_is_valid() {
        let c = load_str(crate::defaults::DEFAULT_CONFIG_TOML).unwrap();
        assert!(c.auth.keys.is_empty());
        assert!(c.server.listen.ip().is_loopback());
    }
}
