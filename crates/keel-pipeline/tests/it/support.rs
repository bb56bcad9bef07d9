//! A pipeline over two mock upstreams (`primary`, `secondary`) and routes trying them in
//! that order, logging to SQLite in a temp dir:
//! - `chain` = [a, b] without retries (plain fallback);
//! - `retrying` = [a, b] with up to 2 retries on the same model, short backoffs, and a
//!   `Retry-After` limit of 1.5 s;
//! - `quick` = [a-quick, b] with the default retries, where `a-quick` is the primary mock
//!   behind a provider with a 300 ms timeout (also its streams' idle timeout);
//! - `ttft` = [a, b] with retries like `retrying` and a 200 ms `ttft_timeout`.
//!
//! Models `a` and `b` have quick circuit breakers (4 outcomes in 10 s, half failed, open
//! for 300 ms); no other test fails either of them 4 times, so only `circuit` sees them open.

use keel_pipeline::{Catalog, Pipeline, RequestContext};
use keel_providers::ProviderRegistry;
use keel_store::{
    RequestLogStore, RequestLogWriter, RequestRecord, SqliteStore, WriterHandle, WriterOptions,
};
use keel_testkit::MockUpstream;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

pub struct Harness {
    pub primary: MockUpstream,
    pub secondary: MockUpstream,
    pub pipeline: Pipeline,
    store: Arc<SqliteStore>,
    writer: Option<WriterHandle>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// The harness with `extra` TOML appended (more models and routes over the same two
    /// providers, `primary` and `secondary`).
    pub async fn start_with(extra: &str) -> Self {
        let primary = MockUpstream::start().await;
        let secondary = MockUpstream::start().await;
        let toml = format!(
            r#"
[providers.primary]
kind = "openai_compat"
base_url = "{}"
timeout = "2s"
[providers.secondary]
kind = "openai_compat"
base_url = "{}"
timeout = "2s"
[models.a]
provider = "primary"
upstream = "model-a"
input_price_per_mtok = 3.0
output_price_per_mtok = 15.0
circuit = {{ min_requests = 4, failure_rate = 0.5, window = "10s", cooldown = "300ms", half_open_probes = 1 }}
[models.b]
provider = "secondary"
upstream = "model-b"
circuit = {{ min_requests = 4, failure_rate = 0.5, window = "10s", cooldown = "300ms", half_open_probes = 1 }}
[routes.chain]
models = ["a", "b"]
retry = {{ max_retries = 0 }}
[routes.retrying]
models = ["a", "b"]
retry = {{ max_retries = 2, base_backoff = "20ms", max_backoff = "100ms", max_retry_after = "1500ms" }}
[providers.quick]
kind = "openai_compat"
base_url = "{}"
timeout = "300ms"
[models.a-quick]
provider = "quick"
upstream = "model-a"
[routes.quick]
models = ["a-quick", "b"]
[models.b-long]
provider = "secondary"
upstream = "model-b-long"
context_window = 200000
[routes.long]
models = ["a", "b-long"]
[routes.narrow]
models = ["a", "a-quick"]
[routes.ttft]
models = ["a", "b"]
retry = {{ max_retries = 2, base_backoff = "20ms", max_backoff = "100ms" }}
ttft_timeout = "200ms"
{extra}
"#,
            primary.base_url(),
            secondary.base_url(),
            primary.base_url()
        );
        let config = keel_config::load_str(&toml).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("log.db")).unwrap());
        let tracker = TaskTracker::new();
        let (log, writer) = RequestLogWriter::spawn(
            store.clone(),
            WriterOptions {
                queue_capacity: 1024,
                batch_size: 16,
                flush_interval: Duration::from_millis(10),
            },
            &tracker,
        );
        let registry = ProviderRegistry::build(&config).unwrap();
        let catalog = Catalog::build(&config, &registry).unwrap();
        Self {
            primary,
            secondary,
            pipeline: Pipeline::new(catalog, keel_pipeline::Observer::log_only(log)),
            store,
            writer: Some(writer),
            _dir: dir,
        }
    }

    pub fn ctx(&self, timeout: Duration) -> RequestContext {
        RequestContext::new(
            keel_types::ids::request_id(),
            Some("acme".into()),
            Some("k1".into()),
            timeout,
        )
    }

    /// Flushes the writer and reads the record of `id`.
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

pub fn chat(model: &str, stream: bool) -> keel_types::openai::ChatCompletionRequest {
    serde_json::from_value(serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "hello upstream"}],
        "stream": stream,
    }))
    .unwrap()
}

/// Each attempt's outcome (`ok`, `status_503`, ...), in order.
pub fn outcomes(rec: &RequestRecord) -> Vec<&str> {
    rec.attempts.iter().map(|a| a.outcome.as_str()).collect()
}

/// The model of each attempt, in order.
pub fn models(rec: &RequestRecord) -> Vec<&str> {
    rec.attempts.iter().map(|a| a.model.as_str()).collect()
}
