//! Routing strategies and request preferences against two mock upstreams: `fast` (answers at
//! once) and `slow` (300 ms before every answer). Models, all on `fast` but `slowm`:
//! - `cheap` ($0.5/Mtok in+out; chat, stream; 1000-token window),
//! - `mid` ($5; adds tools and JSON mode; 4000 tokens),
//! - `strong` ($20; adds images; 100000 tokens),
//! - `slowm` (on `slow`) and `fastm`.
//!
//! Routes (no retries, so each scripted failure moves on at once): `weighted` [cheap 3, mid 1,
//! strong 0], `latency` [slowm, fastm] least-latency, `cost` [strong, mid, cheap], `cascade`
//! [cheap, mid, strong], `plain` [strong, mid, cheap] and `pair` [slowm, fastm] in fallback order.

mod cascade;
mod prefs;
mod strategies;

use keel_pipeline::{Catalog, Pipeline, RequestContext};
use keel_providers::ProviderRegistry;
use keel_store::{
    RequestLogStore, RequestLogWriter, RequestRecord, SqliteStore, WriterHandle, WriterOptions,
};
use keel_testkit::{MockOptions, MockUpstream};
use keel_types::openai::{ChatCompletionRequest, ChatCompletionResponse};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

pub struct Routes {
    pub fast: MockUpstream,
    pub slow: MockUpstream,
    pub pipeline: Pipeline,
    store: Arc<SqliteStore>,
    writer: Option<WriterHandle>,
    _dir: tempfile::TempDir,
}

impl Routes {
    pub async fn start() -> Self {
        let fast = MockUpstream::start().await;
        let slow = MockUpstream::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            MockOptions {
                latency: Duration::from_millis(300),
                ..MockOptions::default()
            },
        )
        .await
        .unwrap();
        let toml = format!(
            r#"
[providers.fast]
kind = "openai_compat"
base_url = "{}"
[providers.slow]
kind = "openai_compat"
base_url = "{}"
[models.cheap]
provider = "fast"
upstream = "cheap-u"
context_window = 1000
input_price_per_mtok = 0.1
output_price_per_mtok = 0.4
[models.mid]
provider = "fast"
upstream = "mid-u"
context_window = 4000
input_price_per_mtok = 1.0
output_price_per_mtok = 4.0
capabilities = ["chat", "stream", "tools", "json_mode"]
[models.strong]
provider = "fast"
upstream = "strong-u"
context_window = 100000
input_price_per_mtok = 5.0
output_price_per_mtok = 15.0
capabilities = ["chat", "stream", "tools", "json_mode", "images"]
[models.slowm]
provider = "slow"
upstream = "slow-u"
[models.fastm]
provider = "fast"
upstream = "fast-u"
[routes.weighted]
models = ["cheap", "mid", "strong"]
strategy = "weighted"
weights = {{ cheap = 3, mid = 1, strong = 0 }}
retry = {{ max_retries = 0 }}
[routes.latency]
models = ["slowm", "fastm"]
strategy = "least_latency"
retry = {{ max_retries = 0 }}
[routes.cost]
models = ["strong", "mid", "cheap"]
strategy = "cost"
retry = {{ max_retries = 0 }}
[routes.cascade]
models = ["cheap", "mid", "strong"]
strategy = "cascade"
retry = {{ max_retries = 0 }}
[routes.plain]
models = ["strong", "mid", "cheap"]
retry = {{ max_retries = 0 }}
[routes.pair]
models = ["slowm", "fastm"]
retry = {{ max_retries = 0 }}
"#,
            fast.base_url(),
            slow.base_url(),
        );
        let config = keel_config::load_str(&toml).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("log.db")).unwrap());
        let (log, writer) = RequestLogWriter::spawn(
            store.clone(),
            WriterOptions {
                queue_capacity: 1024,
                batch_size: 16,
                flush_interval: Duration::from_millis(10),
            },
            &TaskTracker::new(),
        );
        let registry = ProviderRegistry::build(&config).unwrap();
        let catalog = Catalog::build(&config, &registry).unwrap();
        Self {
            fast,
            slow,
            pipeline: Pipeline::new(catalog, keel_pipeline::Observer::log_only(log)),
            store,
            writer: Some(writer),
            _dir: dir,
        }
    }

    pub fn ctx(&self) -> RequestContext {
        RequestContext::new(
            keel_types::ids::request_id(),
            Some("acme".into()),
            Some("k1".into()),
            Duration::from_secs(10),
        )
    }

    /// A non-streaming request built from `body`; the response, or the error.
    pub async fn ask(
        &self,
        body: Value,
    ) -> (
        RequestContext,
        Result<ChatCompletionResponse, keel_types::ApiError>,
    ) {
        let ctx = self.ctx();
        let result = self.pipeline.chat(&ctx, request(body)).await;
        (ctx, result)
    }

    /// Flushes the writer (once) and reads the record of `id`.
    pub async fn record(&mut self, id: &str) -> RequestRecord {
        if let Some(w) = self.writer.take() {
            w.shutdown().await.unwrap();
        }
        self.store
            .get(id)
            .await
            .unwrap()
            .expect("a record for every request")
    }
}

/// A chat request for `route` saying "hello upstream", with `extra` fields merged in.
pub fn body(route: &str, extra: Value) -> Value {
    let mut b = json!({
        "model": route,
        "messages": [{"role": "user", "content": "hello upstream"}],
    });
    if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            b.insert(k.clone(), v.clone());
        }
    }
    b
}

pub fn request(body: Value) -> ChatCompletionRequest {
    serde_json::from_value(body).unwrap()
}

/// The response's `keel.routing`.
pub fn routing(resp: &ChatCompletionResponse) -> Value {
    resp.keel.as_ref().unwrap().to_value()["routing"].take()
}

/// The `model` field of the upstream request the mock received last.
pub fn last_upstream_model(mock: &MockUpstream) -> String {
    mock.last_request().unwrap().body["model"]
        .as_str()
        .unwrap()
        .to_owned()
}
