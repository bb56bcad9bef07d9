//! `Runtime`: everything a running keel needs, built from a validated config: the request-log
//! store and its writer, the providers (local models loading in the background), the catalog
//! and the pipeline. The server and `keel ask` both start one, so both run the same path.

use crate::{Catalog, Pipeline};
use keel_config::{KeelConfig, StoreConfig};
use keel_providers::ProviderRegistry;
use keel_store::{
    PostgresStore, RequestLogStore, RequestLogWriter, SqliteStore, WriterHandle, WriterOptions,
};
use std::sync::Arc;
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("request log store: {0}")]
    Store(String),
    #[error("providers: {0}")]
    Providers(String),
    #[error("catalog: {0}")]
    Catalog(String),
}

pub struct Runtime {
    pub pipeline: Pipeline,
    pub registry: ProviderRegistry,
    pub tracker: TaskTracker,
    writer: WriterHandle,
}

impl Runtime {
    /// Opens the store, starts the log writer and the providers. Needs a tokio runtime.
    pub async fn start(config: &KeelConfig) -> Result<Self, StartError> {
        let store = open_store(&config.store).await?;
        let w = config.store.writer();
        let tracker = TaskTracker::new();
        let (log, writer) = RequestLogWriter::spawn(
            store,
            WriterOptions {
                queue_capacity: w.queue_capacity,
                batch_size: w.batch_size,
                flush_interval: w.flush_interval,
            },
            &tracker,
        );
        let registry =
            ProviderRegistry::build(config).map_err(|e| StartError::Providers(e.to_string()))?;
        let catalog = Catalog::build(config, &registry).map_err(StartError::Catalog)?;
        Ok(Self {
            pipeline: Pipeline::new(catalog, log),
            registry,
            tracker,
            writer,
        })
    }

    /// Flushes every queued request record and stops the writer.
    pub async fn shutdown(self) {
        if let Err(e) = self.writer.shutdown().await {
            tracing::error!(error = %e, "request log flush failed at shutdown");
        }
        self.tracker.close();
        self.tracker.wait().await;
    }
}

async fn open_store(config: &StoreConfig) -> Result<Arc<dyn RequestLogStore>, StartError> {
    match config {
        StoreConfig::Sqlite { path, .. } => {
            let store = SqliteStore::open(path).map_err(|e| StartError::Store(e.to_string()))?;
            Ok(Arc::new(store))
        }
        StoreConfig::Postgres {
            url_env, schema, ..
        } => {
            let url = std::env::var(url_env).map_err(|_| {
                StartError::Store(format!(
                    "environment variable {url_env} (store.url_env) is not set"
                ))
            })?;
            let store = PostgresStore::connect(&url, schema)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?;
            Ok(Arc::new(store))
        }
    }
}
