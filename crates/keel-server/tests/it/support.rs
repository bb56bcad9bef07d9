//! A real keel server on 127.0.0.1:0 over a mock upstream, plus the receivers observability
//! tests need: an OTLP/HTTP collector (decoding with the official OpenTelemetry protobuf
//! types) and a webhook endpoint.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use keel_server::auth::hash_key;
use keel_testkit::MockUpstream;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const ACME_KEY: &str = "sk-acme-0123456789";
pub const GLOBEX_KEY: &str = "sk-globex-0123456789";
pub const ADMIN_KEY: &str = "sk-admin-0123456789";

pub struct Keel {
    pub addr: SocketAddr,
    pub mock: MockUpstream,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Keel {
    /// keel with keys for tenants acme, globex and an admin (tenant ops), a mock upstream
    /// behind model `a` and route `chain`, SQLite in a temp dir, and `extra` TOML appended.
    pub async fn start(extra: &str) -> Self {
        let mock = MockUpstream::start().await;
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
shutdown_grace = "2s"
[[auth.keys]]
id = "acme-1"
tenant = "acme"
sha256 = "{acme}"
[[auth.keys]]
id = "globex-1"
tenant = "globex"
sha256 = "{globex}"
[[auth.keys]]
id = "ops-1"
tenant = "ops"
sha256 = "{admin}"
admin = true
[store]
kind = "sqlite"
path = "{db}"
flush_interval = "10ms"
[providers.mock]
kind = "openai_compat"
base_url = "{base}"
timeout = "5s"
[models.a]
provider = "mock"
upstream = "mock-a"
input_price_per_mtok = 1.0
output_price_per_mtok = 2.0
[routes.chain]
models = ["a"]
retry = {{ max_retries = 0 }}
{extra}
"#,
            acme = hash_key(ACME_KEY),
            globex = hash_key(GLOBEX_KEY),
            admin = hash_key(ADMIN_KEY),
            db = dir.path().join("keel.db").display(),
            base = mock.base_url(),
        );
        let config = keel_config::load_str(&toml).unwrap_or_else(|e| panic!("{e:?}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = tokio::spawn(async move {
            keel_server::serve(config, listener, async move { s.cancelled().await })
                .await
                .unwrap();
        });
        Self {
            addr,
            mock,
            http: reqwest::Client::new(),
            stop,
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn chat(&self, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// One user message to route `chain`.
    pub async fn say(&self, key: &str, text: impl Into<String>) -> reqwest::Response {
        let text: String = text.into();
        self.chat(
            key,
            serde_json::json!({"model": "chain", "messages": [{"role": "user", "content": text}]}),
        )
        .await
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, key: &str, path: &str) -> serde_json::Value {
        self.get(key, path).await.json().await.unwrap()
    }

    pub async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// Graceful shutdown: flushes the store, the OTLP exporter and the drift monitor.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

/// Polls `f` until it returns `Some`, for up to 10 s.
pub async fn eventually<T>(mut f: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10 s");
}

/// An OTLP/HTTP traces endpoint keeping every span it receives.
#[derive(Clone, Default)]
pub struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    pub addr: Option<SocketAddr>,
}

impl Collector {
    pub async fn start() -> Self {
        let mut c = Collector::default();
        let app = Router::new()
            .route("/v1/traces", post(collect))
            .with_state(c.spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        c.addr = Some(listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        c
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr.unwrap())
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

async fn collect(
    State(spans): State<Arc<Mutex<Vec<Span>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/x-protobuf"
    );
    let req = ExportTraceServiceRequest::decode(body).unwrap();
    let mut out = spans.lock().unwrap();
    for rs in req.resource_spans {
        for ss in rs.scope_spans {
            out.extend(ss.spans);
        }
    }
    StatusCode::OK
}

/// A webhook endpoint keeping every (headers, body) it receives.
#[derive(Clone, Default)]
pub struct Webhook {
    pub calls: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    pub addr: Option<SocketAddr>,
}

impl Webhook {
    pub async fn start() -> Self {
        let mut w = Webhook::default();
        let calls = w.calls.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let calls = calls.clone();
                async move {
                    calls.lock().unwrap().push((headers, body));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        w.addr = Some(listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        w
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr.unwrap())
    }

    pub fn calls(&self) -> Vec<(HeaderMap, Bytes)> {
        self.calls.lock().unwrap().clone()
    }
}
