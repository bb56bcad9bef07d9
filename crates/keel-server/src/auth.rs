//! Authentication: `Authorization: Bearer <key>` → key id and tenant. keel keeps only the
//! SHA-256 of each key. With no keys configured every caller is anonymous, which
//! [`crate::serve`] allows only on loopback. Every route needs a key except [`ALLOW_LIST`].

use crate::error::OpenAiError;
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_config::ApiKeyConfig;
use keel_types::{ApiError, ErrorCode};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Routes served without a key.
pub const ALLOW_LIST: &[&str] = &["/healthz", "/readyz"];

/// Who is calling.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub key_id: Option<String>,
    pub tenant: Option<String>,
    /// May read operator endpoints (`/metrics`). Always true without keys (loopback only).
    pub admin: bool,
}

pub struct Authenticator {
    /// SHA-256 of the key (raw bytes) → caller.
    keys: HashMap<[u8; 32], Caller>,
}

impl Authenticator {
    pub fn new(keys: &[ApiKeyConfig]) -> Self {
        let keys = keys
            .iter()
            .filter_map(|k| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&k.sha256, &mut digest).ok()?;
                Some((
                    digest,
                    Caller {
                        key_id: Some(k.id.clone()),
                        tenant: Some(k.tenant.clone()),
                        admin: k.admin,
                    },
                ))
            })
            .collect();
        Self { keys }
    }

    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The caller for an `Authorization` header value, or why it is refused.
    pub fn check(&self, header: Option<&str>) -> Result<Caller, ApiError> {
        if !self.enabled() {
            return Ok(Caller {
                admin: true,
                ..Caller::default()
            });
        }
        let unauthorized = |m: &str| ApiError::new(ErrorCode::InvalidApiKey, m);
        let header = header.ok_or_else(|| {
            unauthorized("missing API key: send it as 'Authorization: Bearer <key>'")
        })?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <key>'"))?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.keys
            .get(&digest)
            .cloned()
            .ok_or_else(|| unauthorized("invalid API key"))
    }
}

/// Hex SHA-256 of a key, as `[[auth.keys]].sha256` expects.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub async fn auth_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if ALLOW_LIST.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.auth.check(header) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            let id = req
                .extensions()
                .get::<RequestId>()
                .cloned()
                .unwrap_or_else(|| RequestId {
                    id: keel_types::ids::request_id(),
                    received: std::time::Instant::now(),
                    traceparent: None,
                });
            let ctx = state.context(&id, &Caller::default());
            state
                .pipeline
                .record_rejected(&ctx, req.uri().path(), "", &e);
            OpenAiError(e).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Authenticator {
        Authenticator::new(&[ApiKeyConfig {
            id: "k1".into(),
            tenant: "acme".into(),
            sha256: hash_key("sk-test-1"),
            admin: false,
            routes: None,
            priority: keel_config::Priority::Normal,
        }])
    }

    #[test]
    fn a_valid_key_names_its_tenant() {
        let c = auth().check(Some("Bearer sk-test-1")).unwrap();
        assert_eq!(c.tenant.as_deref(), Some("acme"));
        assert_eq!(c.key_id.as_deref(), Some("k1"));
    }

    #[test]
    fn wrong_missing_or_malformed_keys_are_401() {
        for h in [
            None,
            Some("Bearer sk-wrong"),
            Some("sk-test-1"),
            Some("Bearer "),
        ] {
            let e = auth().check(h).unwrap_err();
            assert_eq!(e.code.http_status(), 401, "{h:?}");
        }
    }

    #[test]
    fn no_keys_means_anonymous() {
        let c = Authenticator::new(&[]).check(None).unwrap();
        assert!(c.tenant.is_none());
    }
}
