//! Running the server: the loopback-without-keys rule, binding, and graceful shutdown.
//!
//! Shutdown runs in numbered phases once `shutdown` resolves (SIGTERM or Ctrl-C in the
//! binary):
//! 1. stop accepting: the listener closes, idle keep-alive connections are closed;
//! 2. drain: in-flight requests and streams run to completion for up to
//!    `server.shutdown_grace`;
//! 3. cut: streams still open after the grace period end (their records say so), and the
//!    connections get one more second to close;
//! 4. flush: the request-log writer writes everything still queued, then keel exits.

use crate::auth::Authenticator;
use crate::state::{AppState, Shared};
use keel_config::KeelConfig;
use keel_pipeline::Runtime;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without API keys: anyone who can reach it could use it. Add [[auth.keys]] to the config or listen on a loopback address such as 127.0.0.1"
    )]
    OpenWithoutKeys(SocketAddr),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] keel_pipeline::StartError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// keel without keys may only listen where nobody else can reach it.
pub fn check_bind(addr: SocketAddr, keys_configured: bool) -> Result<(), ServeError> {
    if keys_configured || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServeError::OpenWithoutKeys(addr))
    }
}

/// Binds `config.server.listen` after [`check_bind`].
pub async fn bind(config: &KeelConfig) -> Result<TcpListener, ServeError> {
    let addr = config.server.listen;
    check_bind(addr, !config.auth.keys.is_empty())?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Builds the runtime and serves on `listener` until `shutdown` resolves, then shuts down in
/// the phases of this module's doc.
pub async fn serve(
    config: KeelConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let auth = Arc::new(Authenticator::new(&config.auth.keys));
    if !auth.enabled() {
        tracing::warn!(
            "NO API KEYS CONFIGURED: every caller on this machine can use keel. It listens on loopback only; add [[auth.keys]] before exposing it"
        );
    }
    let runtime = Runtime::start(&config).await?;
    let streams_deadline = CancellationToken::new();
    let in_flight = Arc::new(Semaphore::new(config.server.max_concurrency));
    let metrics = config
        .observe
        .metrics
        .then(|| runtime.pipeline.observer().metrics().clone());
    let state = AppState::new(Shared {
        pipeline: runtime.pipeline.clone(),
        registry: runtime.registry.clone(),
        auth,
        max_body_bytes: config.server.max_body_bytes,
        request_timeout: config.server.request_timeout,
        in_flight,
        max_concurrency: config.server.max_concurrency,
        streams_deadline: streams_deadline.clone(),
        traces: runtime.traces.clone(),
        metrics,
    });
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "keel listening");

    let stop_accepting = CancellationToken::new();
    let server = axum::serve(listener, crate::router(state))
        .with_graceful_shutdown(stop_accepting.clone().cancelled_owned());
    let mut server = runtime.tracker.spawn(async move { server.await });

    tokio::select! {
        result = &mut server => {
            runtime.shutdown().await;
            return result.map_err(|e| ServeError::Io(std::io::Error::other(e)))?.map_err(ServeError::Io);
        }
        () = shutdown => {}
    }
    // Phase 1: stop accepting.
    tracing::info!("shutdown: no longer accepting connections; draining in-flight requests");
    stop_accepting.cancel();
    // Phase 2: drain up to the grace period.
    let grace = config.server.shutdown_grace;
    if tokio::time::timeout(grace, &mut server).await.is_err() {
        // Phase 3: cut what is still open.
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "shutdown: grace period over; ending open streams"
        );
        streams_deadline.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut server).await;
    }
    // Phase 4: flush the request log.
    tracing::info!("shutdown: flushing the request log");
    runtime.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyless_keel_binds_only_loopback() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_bind(lo, false).is_ok());
        assert!(check_bind(lo6, false).is_ok());
        assert!(matches!(
            check_bind(any, false),
            Err(ServeError::OpenWithoutKeys(_))
        ));
        assert!(check_bind(any, true).is_ok());
    }
}
