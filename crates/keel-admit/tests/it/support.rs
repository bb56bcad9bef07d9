//! A config with two keys of tenant `acme` (`k1` limited to route `chat`, low priority) and
//! one of tenant `globex`, a model `m` at $1/$2 per million tokens, and `extra` appended.

use keel_admit::{Admission, Backend, Estimate, Request, Ticket};
use keel_config::KeelConfig;

pub fn config(admission: &str) -> KeelConfig {
    let toml = format!(
        r#"
[providers.p]
kind = "openai_compat"
base_url = "http://127.0.0.1:9/v1"
[models.m]
provider = "p"
upstream = "m"
[routes.chat]
models = ["m"]
[routes.other]
models = ["m"]
[[auth.keys]]
id = "k1"
tenant = "acme"
sha256 = "{a}"
routes = ["chat"]
priority = "low"
[[auth.keys]]
id = "k2"
tenant = "acme"
sha256 = "{b}"
[[auth.keys]]
id = "g1"
tenant = "globex"
sha256 = "{c}"
priority = "high"
{admission}
"#,
        a = "a".repeat(64),
        b = "b".repeat(64),
        c = "c".repeat(64),
    );
    keel_config::load_str(&toml).unwrap_or_else(|e| panic!("{e:?}"))
}

pub fn memory(admission: &str) -> Admission {
    Admission::with_backend(
        &config(admission),
        Backend::Memory(keel_admit::memory::Memory::default()),
    )
}

pub fn req<'a>(key: &'a str, tenant: &'a str, route: &'a str) -> Request<'a> {
    Request {
        key_id: Some(key),
        tenant: Some(tenant),
        route,
    }
}

pub fn est(tokens: u64, cost_usd: f64) -> Estimate {
    Estimate { tokens, cost_usd }
}

/// Admits or panics with the rejection.
pub async fn admit(a: &Admission, r: Request<'_>, e: Estimate) -> Ticket {
    match a.admit(r, e).await {
        Ok(t) => t,
        Err(rej) => panic!("refused: {}", rej.error),
    }
}
