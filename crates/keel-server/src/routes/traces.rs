//! `GET /v1/traces` (list, filtered, paginated) and `GET /v1/traces/{id}` (one trace in full,
//! by request id). A caller sees only its own tenant's traces: the tenant filter comes from
//! the API key, never from the query string, and another tenant's trace is a plain 404.

use crate::auth::Caller;
use crate::error::OpenAiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keel_types::trace::{TraceQuery, TraceRecord};
use keel_types::{ApiError, ErrorCode};
use serde_json::{Value, json};

/// Page size when `limit` is not given, and the largest allowed.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

pub async fn list_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, OpenAiError> {
    let store = state.traces.as_ref().ok_or_else(disabled)?;
    let q =
        parse_query(raw.as_deref().unwrap_or(""), caller.tenant.clone()).map_err(OpenAiError)?;
    let limit = q.limit;
    let page = store
        .list_traces(&q)
        .await
        .map_err(|e| OpenAiError(ApiError::internal(format!("trace store: {e}"))))?;
    let (items, next) = (page.items, page.next);
    Ok(Json(json!({
        "object": "list",
        "data": items,
        "limit": limit,
        "has_more": next.is_some(),
        "next_cursor": next.map(|(ms, id)| encode_cursor(ms, &id)),
    })))
}

pub async fn get_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TraceRecord>, OpenAiError> {
    let store = state.traces.as_ref().ok_or_else(disabled)?;
    store
        .get_trace(caller.tenant.as_deref(), &id)
        .await
        .map_err(|e| OpenAiError(ApiError::internal(format!("trace store: {e}"))))?
        .map(Json)
        .ok_or_else(|| {
            OpenAiError(ApiError::new(
                ErrorCode::NotFound,
                format!("no trace with request id \"{id}\""),
            ))
        })
}

fn disabled() -> OpenAiError {
    OpenAiError(ApiError::new(
        ErrorCode::NotFound,
        "the trace store is off (observe.store_traces = false)",
    ))
}

fn encode_cursor(ms: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{ms}|{id}"))
}

fn decode_cursor(s: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let (ms, id) = raw.split_once('|')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

/// A time bound: unix epoch milliseconds, or RFC 3339 (`2026-11-27T13:00:00Z`).
fn parse_time(param: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            ApiError::invalid(
                param,
                format!("{param} must be unix milliseconds or an RFC 3339 time, got \"{v}\""),
            )
        })
}

fn parse_score(param: &str, v: &str) -> Result<f64, ApiError> {
    match v.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(ApiError::invalid(
            param,
            format!("{param} must be a number between 0 and 1, got \"{v}\""),
        )),
    }
}

/// The query string as a [`TraceQuery`]; unknown parameters and bad values are 400s naming
/// the parameter.
pub fn parse_query(raw: &str, tenant: Option<String>) -> Result<TraceQuery, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| ApiError::invalid("query", format!("malformed query string: {e}")))?;
    let mut q = TraceQuery {
        tenant,
        limit: DEFAULT_LIMIT,
        ..TraceQuery::default()
    };
    for (k, v) in pairs {
        let p = k.as_str();
        match p {
            "since" => q.since_ms = Some(parse_time(p, &v)?),
            "until" => q.until_ms = Some(parse_time(p, &v)?),
            "route" => q.route = Some(v),
            "model" => q.model = Some(v),
            "status" => {
                q.status = Some(v.parse::<u16>().map_err(|_| {
                    ApiError::invalid(p, format!("status must be an HTTP status, got \"{v}\""))
                })?);
            }
            "error_class" => q.error_class = Some(v),
            "min_trust" => q.min_trust = Some(parse_score(p, &v)?),
            "max_trust" => q.max_trust = Some(parse_score(p, &v)?),
            "min_grounding" => q.min_grounding = Some(parse_score(p, &v)?),
            "max_grounding" => q.max_grounding = Some(parse_score(p, &v)?),
            "policy_action" => q.policy_action = Some(v),
            "limit" => {
                q.limit = match v.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(ApiError::invalid(
                            p,
                            format!("limit must be between 1 and {MAX_LIMIT}, got \"{v}\""),
                        ));
                    }
                };
            }
            "cursor" => {
                q.after =
                    Some(decode_cursor(&v).ok_or_else(|| {
                        ApiError::invalid(p, "cursor is not one this API returned")
                    })?);
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    format!(
                        "unknown query parameter \"{other}\"; known: since, until, route, model, \
                         status, error_class, min_trust, max_trust, min_grounding, \
                         max_grounding, policy_action, limit, cursor"
                    ),
                ));
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parses_every_filter_and_names_bad_params() {
        let q = parse_query(
            "since=2026-11-27T00:00:00Z&until=1800000000000&route=support&status=502&min_trust=0.2&limit=10",
            Some("acme".into()),
        )
        .unwrap();
        assert_eq!(q.since_ms, Some(1_795_737_600_000));
        assert_eq!(q.until_ms, Some(1_800_000_000_000));
        assert_eq!(q.route.as_deref(), Some("support"));
        assert_eq!(q.status, Some(502));
        assert_eq!(q.min_trust, Some(0.2));
        assert_eq!(q.limit, 10);
        assert_eq!(q.tenant.as_deref(), Some("acme"));
        for (raw, param) in [
            ("tenant=globex", "tenant"),
            ("limit=0", "limit"),
            ("min_trust=2", "min_trust"),
            ("since=yesterday", "since"),
            ("cursor=!!", "cursor"),
        ] {
            let e = parse_query(raw, None).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{raw}");
        }
        let c = encode_cursor(42, "req_1");
        assert_eq!(decode_cursor(&c), Some((42, "req_1".into())));
    }
}
