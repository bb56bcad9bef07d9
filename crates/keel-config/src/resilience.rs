//! Per-route resilience beyond retries and fallback: mid-stream recovery
//! (`stream_recovery`) and hedged requests (`hedge`), with their validation.

use crate::defaults;
use crate::model::RouteConfig;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// Mid-stream recovery: when a stream that already sent part of its answer breaks (cut,
/// malformed chunk, idle stall), keel asks another model of the route to continue the answer
/// and stitches its output onto the same client stream. Off unless the route sets
/// `stream_recovery = true` (defaults) or a table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRecoveryConfig {
    /// Most recoveries per request (a continuation that breaks too may be recovered again).
    #[serde(default = "defaults::stream_recovery_max")]
    pub max: u32,
    /// What to do with a model lacking the `assistant_prefill` capability.
    #[serde(default)]
    pub without_prefill: WithoutPrefill,
}

impl Default for StreamRecoveryConfig {
    fn default() -> Self {
        Self {
            max: defaults::stream_recovery_max(),
            without_prefill: WithoutPrefill::default(),
        }
    }
}

/// How a model without `assistant_prefill` may continue a broken answer. Such a model is
/// never sent a request ending with an assistant message (providers reject it or answer anew).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithoutPrefill {
    /// The partial answer as an assistant message, then a user message asking to continue
    /// exactly where it stopped, without repeating.
    #[default]
    Instruct,
    /// Not used for recovery.
    Skip,
}

/// Hedged requests (non-streaming calls only): when the attempt in flight has not answered
/// after `after`, the next model starts concurrently, up to `max` extra attempts; the first
/// success wins and the others are cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    #[serde(default = "defaults::hedge_max")]
    pub max: u32,
}

/// `stream_recovery = true | false | { max = .., without_prefill = .. }`: a table turns it on.
pub(crate) fn stream_recovery<'de, D>(d: D) -> Result<Option<StreamRecoveryConfig>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<StreamRecoveryConfig>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true, false or a table { max, without_prefill }")
        }
        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            Ok(on.then(StreamRecoveryConfig::default))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            StreamRecoveryConfig::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(V)
}

/// Checks a route's `stream_recovery` and `hedge`; `err(path, message)` per problem.
pub(crate) fn validate_route(
    name: &str,
    route: &RouteConfig,
    err: &mut impl FnMut(String, String),
) {
    if let Some(r) = &route.stream_recovery {
        if r.max == 0 {
            err(
                format!("routes.{name}.stream_recovery.max"),
                "must be at least 1 (set stream_recovery = false to turn it off)".into(),
            );
        }
        if route.models.len() < 2 {
            err(
                format!("routes.{name}.stream_recovery"),
                "needs at least two models: a broken stream is continued on another one".into(),
            );
        }
    }
    if let Some(h) = &route.hedge {
        if h.after.is_zero() {
            err(
                format!("routes.{name}.hedge.after"),
                "must be greater than 0".into(),
            );
        }
        if h.max == 0 {
            err(
                format!("routes.{name}.hedge.max"),
                "must be at least 1".into(),
            );
        }
        if route.models.len() < 2 {
            err(
                format!("routes.{name}.hedge"),
                "needs at least two models: a hedge starts the next one".into(),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::load_str;

    const BASE: &str = r#"
[providers.mock]
kind = "openai_compat"
base_url = "http://127.0.0.1:9/v1"
[models.a]
provider = "mock"
upstream = "gpt-a"
[models.b]
provider = "mock"
upstream = "gpt-b"
capabilities = ["chat", "stream", "assistant_prefill"]
"#;

    fn errors(extra: &str) -> Vec<String> {
        crate::load::error_texts(&format!("{BASE}{extra}"))
    }

    #[test]
    fn stream_recovery_is_off_by_default_and_reads_a_bool_or_a_table() {
        let c = load_str(&format!(
            "{BASE}[routes.off]\nmodels = [\"a\", \"b\"]\n[routes.no]\nmodels = [\"a\", \"b\"]\nstream_recovery = false\n[routes.on]\nmodels = [\"a\", \"b\"]\nstream_recovery = true\n[routes.tuned]\nmodels = [\"a\", \"b\"]\nstream_recovery = {{ max = 2, without_prefill = \"skip\" }}\n"
        ))
        .unwrap();
        assert_eq!(c.routes["off"].stream_recovery, None);
        assert_eq!(c.routes["no"].stream_recovery, None);
        let on = c.routes["on"].stream_recovery.clone().unwrap();
        assert_eq!(on.max, 1);
        assert_eq!(on.without_prefill, WithoutPrefill::Instruct);
        let tuned = c.routes["tuned"].stream_recovery.clone().unwrap();
        assert_eq!(tuned.max, 2);
        assert_eq!(tuned.without_prefill, WithoutPrefill::Skip);
        assert!(c.models["b"].can(crate::Capability::AssistantPrefill));
        assert!(!c.models["a"].can(crate::Capability::AssistantPrefill));
    }

    #[test]
    fn the_documented_examples_parse_and_recovery_shows_its_defaults() {
        let doc = |prefix: &str| {
            crate::defaults::DEFAULT_CONFIG_TOML
                .lines()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap()
                .to_owned()
        };
        let c = load_str(&format!(
            "{BASE}[routes.r]\nmodels = [\"a\", \"b\"]\nstream_recovery = {}\nhedge = {}\n",
            doc("# stream_recovery = "),
            doc("# hedge = ")
        ))
        .unwrap();
        let r = &c.routes["r"];
        assert_eq!(r.stream_recovery, Some(StreamRecoveryConfig::default()));
        assert_eq!(r.hedge.as_ref().unwrap().after, Duration::from_millis(300));
    }

    #[test]
    fn hedge_reads_after_and_a_default_max() {
        let c = load_str(&format!(
            "{BASE}[routes.r]\nmodels = [\"a\", \"b\"]\nhedge = {{ after = \"300ms\" }}\n"
        ))
        .unwrap();
        let h = c.routes["r"].hedge.clone().unwrap();
        assert_eq!(h.after, Duration::from_millis(300));
        assert_eq!(h.max, 1);
    }

    #[test]
    fn resilience_errors_name_their_paths() {
        let e = errors(
            "[routes.one]\nmodels = [\"a\"]\nstream_recovery = true\nhedge = { after = \"1s\" }\n[routes.zero]\nmodels = [\"a\", \"b\"]\nstream_recovery = { max = 0 }\nhedge = { after = \"0s\", max = 0 }\n",
        );
        assert_eq!(
            e,
            vec![
                "routes.one.stream_recovery: needs at least two models: a broken stream is continued on another one".to_string(),
                "routes.one.hedge: needs at least two models: a hedge starts the next one".to_string(),
                "routes.zero.stream_recovery.max: must be at least 1 (set stream_recovery = false to turn it off)".to_string(),
                "routes.zero.hedge.after: must be greater than 0".to_string(),
                "routes.zero.hedge.max: must be at least 1".to_string(),
            ]
        );
        let e = errors("[routes.r]\nmodels = [\"a\", \"b\"]\nstream_recovery = { maks = 1 }\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("routes.r.stream_recovery.maks: unknown field `maks`"),
            "{e:?}"
        );
        let e = errors("[routes.r]\nmodels = [\"a\", \"b\"]\nhedge = { max = 1 }\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("missing field `after`"), "{e:?}");
    }
}
