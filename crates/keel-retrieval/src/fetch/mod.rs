//! URL ingestion guarded against SSRF.
//!
//! A fetch only speaks http and https, refuses credentials in the URL, resolves the host
//! itself and checks every address it resolves to against [`addr::classify`] and the
//! policy's allow-list. The connection then goes only to those checked addresses: each hop
//! uses its own client whose DNS resolver answers with exactly the pinned addresses (and
//! nothing for any other name), with proxies off and redirects off, so neither DNS rebinding
//! nor a proxy nor an automatic redirect can swap the destination after the check.
//! Redirects are followed by hand, every hop checked again. The body is streamed and cut at
//! `max_bytes`; the whole fetch, DNS included, is bounded by `timeout`.

pub mod addr;
mod pinned;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, LOCATION};
use url::{Host, Url};

use self::addr::AllowRule;
use self::pinned::Pinned;

const USER_AGENT: &str = concat!("keel-retrieval/", env!("CARGO_PKG_VERSION"));
const ACCEPT_VALUE: &str =
    "text/html, application/xhtml+xml, text/markdown, text/plain, application/pdf;q=0.9, */*;q=0.5";

/// What a [`Fetcher`] may reach and how much it may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Allow private networks: RFC 1918, CGNAT 100.64/10, IPv6 unique-local. Loopback,
    /// link-local (cloud metadata lives there), unspecified, multicast and reserved
    /// addresses stay blocked; list them in `allow_hosts` to reach them. Default false.
    pub allow_private: bool,
    /// Host names (exact, case-insensitive), addresses or CIDR blocks reachable even when
    /// their addresses are not public, e.g. `"127.0.0.1"` in tests or `"10.1.0.0/16"`.
    /// Entries that are neither are ignored with a warning.
    pub allow_hosts: Vec<String>,
    /// Largest body read; a bigger one is [`FetchError::TooLarge`]. Default 20 MiB.
    pub max_bytes: usize,
    /// Bound on the whole fetch: DNS, connections, redirects and body. Default 15 s.
    pub timeout: Duration,
    /// Redirects followed before [`FetchError::TooManyRedirects`]. Default 5.
    pub max_redirects: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_private: false,
            allow_hosts: Vec::new(),
            max_bytes: 20 * 1024 * 1024,
            timeout: Duration::from_secs(15),
            max_redirects: 5,
        }
    }
}

/// A fetched document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URL the body came from, after redirects.
    pub url: String,
    pub bytes: Vec<u8>,
    /// The response's Content-Type header, as sent.
    pub content_type: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("bad url: {0}")]
    BadUrl(String),
    #[error("scheme {0:?} is not allowed (only http and https)")]
    Scheme(String),
    #[error("{host} resolves to {addr}, a {reason} address, which is not allowed")]
    Blocked {
        host: String,
        addr: IpAddr,
        reason: &'static str,
    },
    #[error("could not resolve {0}")]
    Resolve(String),
    #[error("the response is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the fetch took too long")]
    Timeout,
    #[error("the server answered with status {0}")]
    Status(u16),
    #[error("http error: {0}")]
    Http(String),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
}

impl FetchError {
    /// A short stable label: "bad_url", "scheme", "blocked", "resolve", "too_large",
    /// "timeout", "status", "http" or "too_many_redirects".
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::BadUrl(_) => "bad_url",
            FetchError::Scheme(_) => "scheme",
            FetchError::Blocked { .. } => "blocked",
            FetchError::Resolve(_) => "resolve",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Timeout => "timeout",
            FetchError::Status(_) => "status",
            FetchError::Http(_) => "http",
            FetchError::TooManyRedirects(_) => "too_many_redirects",
        }
    }
}

/// Fetches URLs under a [`FetchPolicy`]. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

struct Inner {
    policy: FetchPolicy,
    allow: Vec<AllowRule>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl Fetcher {
    pub fn new(policy: FetchPolicy) -> Self {
        let allow = policy
            .allow_hosts
            .iter()
            .filter_map(|entry| {
                let rule = AllowRule::parse(entry);
                if rule.is_none() {
                    tracing::warn!(%entry, "ignoring an allow_hosts entry that is not a host, address or CIDR block");
                }
                rule
            })
            .collect();
        Fetcher {
            inner: Arc::new(Inner { policy, allow }),
        }
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.inner.policy
    }

    /// GETs `url`, following redirects, under the policy. See the module docs.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let timeout = self.inner.policy.timeout;
        tokio::time::timeout(timeout, self.fetch_unbounded(url))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    async fn fetch_unbounded(&self, url: &str) -> Result<Fetched, FetchError> {
        let policy = &self.inner.policy;
        let mut url =
            Url::parse(url.trim()).map_err(|e| FetchError::BadUrl(format!("{url}: {e}")))?;
        let mut redirects = 0;
        loop {
            let pinned = self.check(&url).await?;
            let response = pinned.get(&url, policy.timeout).await?;
            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(LOCATION)
            {
                let location = std::str::from_utf8(location.as_bytes())
                    .map_err(|_| FetchError::BadUrl("redirect Location is not UTF-8".into()))?;
                let next = url
                    .join(location.trim())
                    .map_err(|e| FetchError::BadUrl(format!("redirect to {location:?}: {e}")))?;
                if redirects >= policy.max_redirects {
                    return Err(FetchError::TooManyRedirects(policy.max_redirects));
                }
                redirects += 1;
                tracing::debug!(from = %url, to = %next, "following a redirect");
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            return read_body(response, url, policy.max_bytes).await;
        }
    }

    /// Checks the URL's scheme and credentials, resolves its host and checks every address.
    async fn check(&self, url: &Url) -> Result<Pinned, FetchError> {
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(FetchError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::BadUrl(
                "credentials in the url are not allowed".into(),
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| FetchError::BadUrl("no host".into()))?;
        let host_str = url.host_str().unwrap_or_default().to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| FetchError::BadUrl("no port".into()))?;
        let (domain, addrs) = match host {
            Host::Ipv4(ip) => (None, vec![IpAddr::V4(ip)]),
            Host::Ipv6(ip) => (None, vec![IpAddr::V6(ip)]),
            Host::Domain(domain) => (Some(domain.to_owned()), resolve(domain, port).await?),
        };
        let trusted_name = domain
            .as_deref()
            .is_some_and(|d| self.inner.allow.iter().any(|rule| rule.allows_host(d)));
        if !trusted_name {
            for &addr in &addrs {
                if let Err(reason) = self.permits(addr) {
                    return Err(FetchError::Blocked {
                        host: host_str,
                        addr,
                        reason,
                    });
                }
            }
        }
        Ok(Pinned::new(domain, addrs, port))
    }

    /// Whether the policy lets a fetch connect to `addr`; the classification reason if not.
    pub(crate) fn permits(&self, addr: IpAddr) -> Result<(), &'static str> {
        let Some(reason) = addr::classify(addr) else {
            return Ok(());
        };
        if self.inner.allow.iter().any(|rule| rule.allows_ip(addr)) {
            return Ok(());
        }
        if self.inner.policy.allow_private && matches!(reason, "private" | "cgnat") {
            return Ok(());
        }
        Err(reason)
    }
}

async fn resolve(domain: &str, port: u16) -> Result<Vec<IpAddr>, FetchError> {
    let found = tokio::net::lookup_host((domain, port))
        .await
        .map_err(|e| FetchError::Resolve(format!("{domain}: {e}")))?;
    let mut addrs: Vec<IpAddr> = Vec::new();
    for addr in found {
        if !addrs.contains(&addr.ip()) {
            addrs.push(addr.ip());
        }
    }
    if addrs.is_empty() {
        return Err(FetchError::Resolve(format!("{domain}: no addresses")));
    }
    Ok(addrs)
}

/// Streams the body, failing as soon as it is known to exceed `max_bytes`.
async fn read_body(
    mut response: reqwest::Response,
    url: Url,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    let limit = max_bytes;
    let declared = response.content_length();
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(FetchError::TooLarge { limit });
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let capacity = declared.map_or(0, |len| len.min(limit as u64) as usize);
    let mut bytes = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(http_error)? {
        if bytes.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        url: url.into(),
        bytes,
        content_type,
    })
}

/// A reqwest error with its whole source chain (reqwest's own message alone rarely says
/// what went wrong).
fn http_error(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        return FetchError::Timeout;
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchError::Http(message)
}
