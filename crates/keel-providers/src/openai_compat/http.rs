//! HTTP plumbing shared by the HTTP adapters (OpenAI-compatible and Anthropic): one client per
//! provider, JSON calls under the attempt deadline, stream opening, and the mapping of
//! transport failures and non-2xx answers onto [`ProviderError`].

use crate::ProviderError;
use keel_config::model::HttpProviderConfig;
use keel_types::Secret;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Response, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime};

/// The most of an error body kept for the message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most characters of a non-JSON error body quoted in a message.
const MAX_ERROR_TEXT: usize = 500;

/// One upstream endpoint family: a client with the provider's credentials as default
/// headers, and the deadlines of one attempt.
#[derive(Clone)]
pub(crate) struct Upstream {
    client: Client,
    base_url: Url,
    /// The whole non-streaming call; a stream's time to response headers.
    pub(crate) timeout: Duration,
    /// Longest silence between two stream events.
    pub(crate) idle_timeout: Duration,
    /// The credential, kept only to scrub it from upstream error messages.
    secret: Option<Secret<String>>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("base_url", &self.base_url.as_str())
            .field("timeout", &self.timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("api_key", &self.secret)
            .finish()
    }
}

impl Upstream {
    /// Builds the client. `auth` is the credential header (sent on every request, marked
    /// sensitive so it never prints); `headers` are other fixed headers.
    pub(crate) fn new(
        cfg: &HttpProviderConfig,
        auth: Option<(HeaderName, String)>,
        mut headers: HeaderMap,
        secret: Option<Secret<String>>,
    ) -> Result<Self, ProviderError> {
        let base = cfg.base_url.trim_end_matches('/');
        let base_url =
            Url::parse(&format!("{base}/")).map_err(|e| ProviderError::InvalidRequest {
                param: Some("base_url".into()),
                message: format!("invalid base_url {:?}: {e}", cfg.base_url),
            })?;
        if let Some((name, value)) = auth {
            let mut value =
                HeaderValue::from_str(&value).map_err(|_| ProviderError::InvalidRequest {
                    param: Some("api_key_env".into()),
                    message: "the API key contains characters not allowed in an HTTP header".into(),
                })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = Client::builder()
            .default_headers(headers)
            .connect_timeout(cfg.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| {
                ProviderError::Connect(format!("building the HTTP client: {}", error_chain(&e)))
            })?;
        Ok(Self {
            client,
            base_url,
            timeout: cfg.timeout,
            idle_timeout: cfg.stream_idle_timeout.unwrap_or(cfg.timeout),
            secret,
        })
    }

    /// `{base_url}/{path}`.
    pub(crate) fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.base_url
            .join(path)
            .map_err(|e| ProviderError::InvalidRequest {
                param: Some("base_url".into()),
                message: format!("cannot join {path:?} to base_url: {e}"),
            })
    }

    /// POSTs `body` and decodes a JSON answer, all within `timeout`.
    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        url: Url,
        body: &impl Serialize,
    ) -> Result<T, ProviderError> {
        let request = self.client.post(url).json(body).timeout(self.timeout);
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        if !response.status().is_success() {
            return Err(self.status_error(response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::InvalidResponse(format!("response body is not the expected JSON: {e}"))
        })
    }

    /// POSTs `body` asking for an event stream; resolves once 2xx headers arrived within
    /// `timeout`. Reading the body is the caller's business (see [`crate::sse::events`]).
    pub(crate) async fn open_stream(
        &self,
        url: Url,
        body: &impl Serialize,
    ) -> Result<Response, ProviderError> {
        let request = self
            .client
            .post(url)
            .json(body)
            .header(ACCEPT, "text/event-stream");
        let response = match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => return Err(ProviderError::Timeout(self.timeout)),
            Ok(result) => result.map_err(|e| self.transport_error(e))?,
        };
        if !response.status().is_success() {
            return match tokio::time::timeout(self.timeout, self.status_error(response)).await {
                Ok(error) => Err(error),
                Err(_) => Err(ProviderError::Timeout(self.timeout)),
            };
        }
        Ok(response)
    }

    /// A reqwest failure as a category: timeout, could not connect or send, or a broken body.
    pub(crate) fn transport_error(&self, error: reqwest::Error) -> ProviderError {
        let error = error.without_url();
        if error.is_timeout() {
            ProviderError::Timeout(self.timeout)
        } else if error.is_connect() || error.is_request() {
            ProviderError::Connect(self.scrub(error_chain(&error)))
        } else {
            ProviderError::Stream(self.scrub(error_chain(&error)))
        }
    }

    /// A non-2xx answer: status, the upstream's own message, and `Retry-After`.
    pub(crate) async fn status_error(&self, mut response: Response) -> ProviderError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let context_length = status == 400
            && serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/code")
                        .and_then(Value::as_str)
                        .map(|c| c == "context_length_exceeded")
                })
                .unwrap_or(false);
        let message = self.scrub(upstream_message(&body).unwrap_or_else(|| {
            response
                .status()
                .canonical_reason()
                .unwrap_or("no error message")
                .to_owned()
        }));
        if context_length {
            return ProviderError::UpstreamContextLength(message);
        }
        ProviderError::Status {
            status,
            message,
            retry_after,
        }
    }

    /// Removes the credential from text that came from elsewhere (an upstream may echo it).
    pub(crate) fn scrub(&self, text: String) -> String {
        match &self.secret {
            Some(secret)
                if !secret.expose().is_empty() && text.contains(secret.expose().as_str()) =>
            {
                text.replace(secret.expose().as_str(), "<redacted>")
            }
            _ => text,
        }
    }
}

/// The human message of an error body: OpenAI's and Anthropic's `error.message`, or the
/// `error` / `message` / `detail` string other servers use, or the start of the raw text.
pub(crate) fn upstream_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let found = v
            .pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .or_else(|| v.get("detail"));
        match found {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(other) if !other.is_null() => return Some(other.to_string()),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_ERROR_TEXT).collect())
}

/// `retry-after-ms` (OpenAI) or `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let seconds = |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    if let Some(ms) = header("retry-after-ms").and_then(seconds) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header(RETRY_AFTER.as_str())?;
    if let Some(secs) = seconds(value) {
        return Some(Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its sources, `outer: inner: root`, without the URL reqwest adds.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_ms_and_dates() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("1.5"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn upstream_message_understands_common_error_bodies() {
        let m = |s: &str| upstream_message(s.as_bytes());
        assert_eq!(
            m(r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#).unwrap(),
            "Rate limit reached"
        );
        assert_eq!(
            m(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
                .unwrap(),
            "Overloaded"
        );
        assert_eq!(
            m(r#"{"error":"model not found"}"#).unwrap(),
            "model not found"
        );
        assert_eq!(m(r#"{"detail":"bad"}"#).unwrap(), "bad");
        assert_eq!(m("Bad Gateway\n").unwrap(), "Bad Gateway");
        assert_eq!(m(""), None);
        assert_eq!(m(&"x".repeat(2000)).unwrap().len(), MAX_ERROR_TEXT);
    }
}
