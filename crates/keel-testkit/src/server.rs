//! The mock upstream server: its script and request log, its routes, and an accept loop that
//! can drop a connection mid-request (the `Reset` behaviour).

use crate::behavior::Behavior;
use crate::faults::FaultMix;
use crate::reply::{self, Answer, Content, Delivery};
use crate::{anthropic, openai};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

/// Largest request body the mock reads.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    /// The JSON body; `Null` for an empty or non-JSON body.
    pub body: Value,
}

impl RecordedRequest {
    /// A header's value as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How a mock runs. The defaults suit tests: record every request, answer instantly.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Keep every request for [`MockUpstream::requests`]. Off for load tests (memory).
    pub record: bool,
    /// Added before every model answer (the default echo included).
    pub latency: Duration,
    /// Random faults for requests the script does not cover (none by default).
    pub faults: FaultMix,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            record: true,
            latency: Duration::ZERO,
            faults: FaultMix::default(),
        }
    }
}

/// A mock OpenAI + Anthropic upstream on 127.0.0.1, stopped when dropped.
///
/// Routes: `POST /v1/chat/completions`, `POST /v1/messages`, `POST /v1/embeddings`,
/// `GET /v1/models`, and `POST /v1/traces` (an OTLP sink that discards). Every model
/// request consumes the next scripted [`Behavior`]; with the script empty the answer is
/// `echo: <last user message>` (its rest after an assistant prefill it starts with) with word-count usage, streamed as several chunks (plus a
/// usage chunk when asked for) and `[DONE]` / `message_stop`.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    options: MockOptions,
    script: Mutex<VecDeque<Behavior>>,
    requests: Mutex<Vec<RecordedRequest>>,
    count: AtomicUsize,
    seq: AtomicU64,
    /// Answer 400 to a chat request whose last message is the assistant's (no prefill).
    reject_prefill: AtomicBool,
}

/// Closes the connection a request arrived on.
#[derive(Clone)]
struct ConnKill(Arc<Notify>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Chat,
    Messages,
    Embeddings,
}

impl MockUpstream {
    /// Starts a mock on `127.0.0.1:0` with [`MockOptions::default`] on the current runtime.
    ///
    /// Panics if no loopback port can be bound (a test kit may; tests cannot go on anyway).
    #[allow(clippy::expect_used)]
    pub async fn start() -> MockUpstream {
        Self::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            MockOptions::default(),
        )
        .await
        .expect("bind a loopback port for the mock upstream")
    }

    /// Starts a mock on `addr` with `options`.
    pub async fn bind(addr: SocketAddr, options: MockOptions) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            seq: AtomicU64::new(1),
            reject_prefill: AtomicBool::new(false),
        });
        let task = tokio::spawn(accept_loop(listener, router(shared.clone())));
        Ok(MockUpstream {
            addr,
            shared,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/v1`, the base URL a provider config wants.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Appends one behaviour to the script.
    pub fn push(&self, behavior: Behavior) {
        lock(&self.shared.script).push_back(behavior);
    }

    /// Appends behaviours to the script, in order.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        lock(&self.shared.script).extend(behaviors);
    }

    /// From now on, answer a chat request whose last message is an assistant message with a
    /// 400, as providers without assistant prefill do, before consuming any scripted
    /// behaviour.
    pub fn reject_assistant_prefill(&self) {
        self.shared.reject_prefill.store(true, Ordering::Relaxed);
    }

    /// Scripted behaviours not consumed yet.
    pub fn remaining_script(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// Every request received so far (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The most recent request, if recorded.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    /// How many requests arrived (counted even when recording is off).
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Serves until the task ends (it does not on its own): for the binary.
    pub async fn run(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            // Aborting the accept loop drops its JoinSet, which aborts every connection.
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(|s, r| model_request(s, Protocol::Chat, r)),
        )
        .route(
            "/v1/messages",
            post(|s, r| model_request(s, Protocol::Messages, r)),
        )
        .route(
            "/v1/embeddings",
            post(|s, r| model_request(s, Protocol::Embeddings, r)),
        )
        .route("/v1/models", get(models))
        // An OTLP/HTTP traces sink for load tests: accepts and discards (an empty
        // ExportTraceServiceResponse is an empty protobuf body).
        .route(
            "/v1/traces",
            post(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                    "",
                )
            }),
        )
        .fallback(not_found)
        .with_state(shared)
}

async fn accept_loop(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: tokio::net::TcpStream, router: Router) {
    let _ = stream.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let conn_kill = ConnKill(kill.clone());
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(conn_kill.clone());
            router.clone().oneshot(request)
        });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // Dropping the connection closes the socket with no response written.
        () = kill.notified() => {}
    }
}

impl Shared {
    fn record(&self, method: &str, path: &str, headers: &HeaderMap, body: &Option<Value>) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.options.record {
            lock(&self.requests).push(RecordedRequest {
                method: method.to_owned(),
                path: path.to_owned(),
                headers: headers.clone(),
                body: body.clone().unwrap_or(Value::Null),
            });
        }
    }

    fn next_behavior(&self) -> Option<Behavior> {
        lock(&self.script).pop_front()
    }
}

async fn model_request(
    State(shared): State<Arc<Shared>>,
    protocol: Protocol,
    request: Request,
) -> Response {
    let kill = request.extensions().get::<ConnKill>().cloned();
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    shared.record(
        parts.method.as_str(),
        parts.uri.path(),
        &parts.headers,
        &body,
    );

    let Some(body) = body else {
        return error_response(protocol, 400, None, None, "request body is not valid JSON");
    };
    if protocol == Protocol::Messages
        && let Some(reason) =
            anthropic::reject_reason(&body, parts.headers.contains_key("anthropic-version"))
    {
        return error_response(protocol, 400, None, None, &reason);
    }

    if protocol == Protocol::Chat
        && shared.reject_prefill.load(Ordering::Relaxed)
        && openai::ends_with_assistant(&body)
    {
        return error_response(
            protocol,
            400,
            None,
            None,
            "assistant prefill is not supported: the last message must not be an assistant message",
        );
    }

    let behavior = shared.next_behavior().or_else(|| {
        let faults = &shared.options.faults;
        if faults.is_empty() {
            return None;
        }
        let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
        faults.draw(shared.count.load(Ordering::Relaxed) as u64, streaming)
    });
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    let echo = || {
        Content::Text(match protocol {
            Protocol::Messages => format!("echo: {}", anthropic::last_user_text(&body)),
            Protocol::Chat | Protocol::Embeddings => openai::echo(&body),
        })
    };
    let mut finish = None;
    let mut logprob = None;
    let (content, delivery) = match behavior {
        None => (echo(), Delivery::Complete),
        Some(Behavior::Reply { text }) => (Content::Text(text), Delivery::Complete),
        Some(Behavior::Completion {
            text,
            finish_reason,
            logprob: lp,
        }) => {
            finish = Some(finish_reason);
            logprob = lp;
            (Content::Text(text), Delivery::Complete)
        }
        Some(Behavior::ToolCall { name, arguments }) => {
            (Content::ToolCall { name, arguments }, Delivery::Complete)
        }
        Some(Behavior::Status {
            code,
            body,
            retry_after,
        }) => {
            return error_response(
                protocol,
                code,
                body,
                retry_after,
                &format!("mock upstream status {code}"),
            );
        }
        Some(Behavior::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            (echo(), Delivery::Complete)
        }
        Some(Behavior::Stall) => return std::future::pending().await,
        Some(Behavior::Reset) => {
            if let Some(ConnKill(kill)) = kill {
                kill.notify_one();
            }
            return std::future::pending().await;
        }
        Some(Behavior::TruncatedStream { after_chunks }) => {
            (echo(), Delivery::Truncated { after_chunks })
        }
        Some(Behavior::MalformedStream) => (echo(), Delivery::Malformed),
        Some(Behavior::SlowStream { per_chunk }) => (echo(), Delivery::Slow { per_chunk }),
        Some(Behavior::StalledStream { after_chunks }) => {
            (echo(), Delivery::Stalled { after_chunks })
        }
    };

    let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-model")
        .to_owned();
    match protocol {
        Protocol::Chat => {
            let mut answer = Answer::new(model, content, openai::prompt_tokens(&body), seq);
            (answer.finish, answer.logprob) = (finish, logprob);
            openai::chat(&answer, &body, delivery).await
        }
        Protocol::Messages => {
            let mut answer = Answer::new(model, content, anthropic::prompt_tokens(&body), seq);
            answer.finish = finish;
            anthropic::messages(&answer, &body, delivery).await
        }
        Protocol::Embeddings => reply::json_response(&openai::embeddings(&body), delivery, 1).await,
    }
}

async fn models(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.record(
        request.method().as_str(),
        request.uri().path(),
        request.headers(),
        &None,
    );
    reply::raw_json(StatusCode::OK, openai::models().to_string())
}

async fn not_found(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.record(
        request.method().as_str(),
        request.uri().path(),
        request.headers(),
        &None,
    );
    let message = format!("no route for {} {}", request.method(), request.uri().path());
    error_response(Protocol::Chat, 404, None, None, &message)
}

/// A non-2xx answer in the protocol's error shape, with `Retry-After` if given.
fn error_response(
    protocol: Protocol,
    code: u16,
    body: Option<String>,
    retry_after: Option<String>,
    message: &str,
) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.unwrap_or_else(|| match protocol {
        Protocol::Messages => anthropic::error_body(code, message),
        Protocol::Chat | Protocol::Embeddings => openai::error_body(code, message),
    });
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}
