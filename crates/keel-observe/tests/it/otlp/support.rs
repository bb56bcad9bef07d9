//! The in-test OTLP/HTTP receiver and trace builders for the exporter tests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use keel_config::OtlpConfig;
use keel_observe::otlp::{self, OtlpExporter, OtlpHandle};
use keel_types::trace::{
    AttrValue, ContentMode, Span, SpanId, SpanKind, TraceContent, TraceId, TraceRecord,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::trace::v1::Span as OSpan;
use prost::Message;
use tokio_util::task::TaskTracker;

#[derive(Clone, Copy)]
pub enum Reply {
    Ok,
    Status(u16, Option<&'static str>),
    Hang,
}

#[derive(Default)]
struct Recorded {
    hits: AtomicUsize,
    accepted: Mutex<Vec<(HeaderMap, ExportTraceServiceRequest)>>,
    decode_errors: Mutex<Vec<String>>,
    script: Mutex<VecDeque<Reply>>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Recorded>,
}

impl Receiver {
    /// Answers `script` in order, then `Reply::Ok` (or `Hang` when `hang_after`).
    pub async fn start(script: &[Reply], hang_after: bool) -> Receiver {
        let state = Arc::new(Recorded::default());
        let mut queue: VecDeque<Reply> = script.iter().copied().collect();
        if hang_after {
            queue.extend(std::iter::repeat_n(Reply::Hang, 10_000));
        }
        *state.script.lock().unwrap() = queue;
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/v1/traces"),
            state,
        }
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<(HeaderMap, ExportTraceServiceRequest)> {
        assert!(self.state.decode_errors.lock().unwrap().is_empty());
        self.state.accepted.lock().unwrap().clone()
    }

    pub fn spans(&self) -> Vec<OSpan> {
        self.requests()
            .into_iter()
            .flat_map(|(_, r)| r.resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

async fn receive(State(st): State<Arc<Recorded>>, headers: HeaderMap, body: Bytes) -> Response {
    st.hits.fetch_add(1, Ordering::SeqCst);
    let reply = st.script.lock().unwrap().pop_front().unwrap_or(Reply::Ok);
    match reply {
        Reply::Hang => std::future::pending::<Response>().await,
        Reply::Status(code, retry_after) => {
            let mut response = StatusCode::from_u16(code).unwrap().into_response();
            if let Some(v) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, v.parse().unwrap());
            }
            response
        }
        Reply::Ok => match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                st.accepted.lock().unwrap().push((headers, request));
                let answer = ExportTraceServiceResponse::default().encode_to_vec();
                let content_type = [(header::CONTENT_TYPE, "application/x-protobuf")];
                (StatusCode::OK, content_type, answer).into_response()
            }
            Err(e) => {
                st.decode_errors.lock().unwrap().push(e.to_string());
                StatusCode::BAD_REQUEST.into_response()
            }
        },
    }
}

pub fn config(endpoint: &str) -> OtlpConfig {
    OtlpConfig {
        endpoint: endpoint.to_owned(),
        service_name: "keel-test".into(),
        queue_capacity: 10_000,
        batch_size: 512,
        flush_interval: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        headers_env: BTreeMap::new(),
    }
}

pub fn start(cfg: &OtlpConfig) -> (OtlpExporter, OtlpHandle) {
    otlp::spawn(cfg, &TaskTracker::new()).unwrap()
}

/// A trace of `spans` spans: a server root and children below it; the last child failed.
pub fn trace(i: u64, spans: usize) -> TraceRecord {
    let root = SpanId::random();
    let start = 1_700_000_000_000_000_000 + i * 1_000_000_000;
    let mut all = vec![Span {
        span_id: root,
        parent_span_id: None,
        name: "chat.completions".into(),
        kind: SpanKind::Server,
        start_unix_nanos: start,
        end_unix_nanos: start + 900_000_000,
        error: None,
        attributes: vec![
            ("http.response.status_code".into(), AttrValue::Int(200)),
            ("keel.request_id".into(), AttrValue::Str(format!("req_{i}"))),
        ],
    }];
    for k in 1..spans {
        let k64 = k as u64;
        all.push(Span {
            span_id: SpanId::random(),
            parent_span_id: Some(root),
            name: format!("stage {k}"),
            kind: if k % 2 == 1 {
                SpanKind::Client
            } else {
                SpanKind::Internal
            },
            start_unix_nanos: start + k64 * 1000,
            end_unix_nanos: start + k64 * 1000 + 500,
            error: (k == spans - 1).then(|| format!("upstream failed {i}")),
            attributes: vec![
                (
                    "gen_ai.request.model".into(),
                    AttrValue::Str("gpt-x".into()),
                ),
                ("gen_ai.usage.input_tokens".into(), AttrValue::Int(-42)),
                ("gen_ai.request.temperature".into(), AttrValue::Float(0.7)),
                ("keel.cache.hit".into(), AttrValue::Bool(false)),
                (
                    "gen_ai.response.finish_reasons".into(),
                    AttrValue::StrList(vec!["stop".into(), "length".into()]),
                ),
            ],
        });
    }
    TraceRecord {
        request_id: format!("req_{i}"),
        trace_id: TraceId::random(),
        started_at_ms: (start / 1_000_000) as i64,
        duration_ms: 900.0,
        tenant: Some("acme".into()),
        endpoint: "chat.completions".into(),
        route: Some("default".into()),
        model: Some("gpt-x".into()),
        status: 200,
        error_class: None,
        input_tokens: Some(10),
        output_tokens: Some(20),
        trust_score: Some(0.9),
        grounding_score: Some(0.8),
        policy_action: Some("allow".into()),
        content_mode: ContentMode::Redacted,
        spans: all,
        content: TraceContent {
            messages: Some(serde_json::json!([{"role": "user", "content": "[redacted: 5 chars]"}])),
            response: Some(serde_json::json!({"content": "[redacted: 2 chars]"})),
            retrieved: vec![serde_json::json!({"id": "doc1", "score": 0.5})],
            policy: vec![serde_json::json!({"action": "allow"})],
            attempts: serde_json::json!([{"provider": "openai", "status": 200}]),
            stages: serde_json::json!([{"stage": "route", "outcome": "ok"}]),
            decision: Some(serde_json::json!({"action": "serve"})),
        },
    }
}

/// Polls `done` until it holds; a guard against hanging, not a timing assertion.
pub async fn wait_until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> &'a Value {
    let kv = attrs.iter().find(|kv| kv.key == key).unwrap();
    kv.value.as_ref().unwrap().value.as_ref().unwrap()
}
