//! One request to addresses that passed the policy check, and nowhere else.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::ACCEPT;
use url::Url;

use super::{ACCEPT_VALUE, FetchError, USER_AGENT, http_error};

/// The checked destination of one hop: the host name (none for an address literal) and the
/// addresses it may connect to.
#[derive(Debug, Clone)]
pub(super) struct Pinned {
    domain: Option<String>,
    addrs: Vec<SocketAddr>,
}

impl Pinned {
    pub(super) fn new(domain: Option<String>, addrs: Vec<IpAddr>, port: u16) -> Self {
        let addrs = addrs
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect();
        Pinned { domain, addrs }
    }

    /// GETs `url` with a client of its own: redirects off, proxies off (a proxy would
    /// resolve the name itself), no pooled connections, and a resolver that knows only the
    /// pinned name. Address literals never reach the resolver; they were checked as they are.
    pub(super) async fn get(
        &self,
        url: &Url,
        connect_timeout: Duration,
    ) -> Result<reqwest::Response, FetchError> {
        let resolver = PinnedResolver {
            domain: self.domain.clone(),
            addrs: self.addrs.clone(),
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_max_idle_per_host(0)
            .connect_timeout(connect_timeout)
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(http_error)?;
        client
            .get(url.clone())
            .header(ACCEPT, ACCEPT_VALUE)
            .send()
            .await
            .map_err(http_error)
    }
}

/// Answers with the pinned addresses for the pinned name and refuses every other name, so
/// the client can never look a name up on its own.
struct PinnedResolver {
    domain: Option<String>,
    addrs: Vec<SocketAddr>,
}

impl Resolve for PinnedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let result: Result<Addrs, _> = match &self.domain {
            Some(domain) if name.as_str().eq_ignore_ascii_case(domain) => {
                Ok(Box::new(self.addrs.clone().into_iter()))
            }
            _ => Err(format!("{} was not checked by the fetch policy", name.as_str()).into()),
        };
        Box::pin(std::future::ready(result))
    }
}
