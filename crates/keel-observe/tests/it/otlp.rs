//! The OTLP exporter against a real in-test OTLP/HTTP receiver; every request body is decoded
//! with the official `opentelemetry-proto` types.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::http::header;
use keel_observe::otlp::{self, OtlpError};
use keel_types::trace::{AttrValue, Span, SpanKind, TraceRecord};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span as OSpan;
use tokio_util::task::TaskTracker;

use support::{Receiver, Reply, attr, config, start, trace, wait_until};

fn assert_span_matches(got: &OSpan, trace: &TraceRecord, want: &Span) {
    assert_eq!(got.trace_id, trace.trace_id.0.to_vec());
    assert_eq!(got.span_id, want.span_id.0.to_vec());
    let parent = want
        .parent_span_id
        .map(|p| p.0.to_vec())
        .unwrap_or_default();
    assert_eq!(got.parent_span_id, parent);
    assert_eq!(got.name, want.name);
    let kind = match want.kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
    };
    assert_eq!(got.kind, kind);
    assert_eq!(got.start_time_unix_nano, want.start_unix_nanos);
    assert_eq!(got.end_time_unix_nano, want.end_unix_nanos);
    match &want.error {
        Some(message) => {
            let status = got.status.as_ref().unwrap();
            assert_eq!((status.code, &status.message), (2, message));
        }
        None => assert!(got.status.as_ref().is_none_or(|s| s.code == 0)),
    }
    assert_eq!(got.attributes.len(), want.attributes.len());
    for (key, value) in &want.attributes {
        let got = attr(&got.attributes, key);
        match value {
            AttrValue::Bool(b) => assert_eq!(got, &Value::BoolValue(*b)),
            AttrValue::Int(i) => assert_eq!(got, &Value::IntValue(*i)),
            AttrValue::Float(f) => assert_eq!(got, &Value::DoubleValue(*f)),
            AttrValue::Str(s) => assert_eq!(got, &Value::StringValue(s.clone())),
            AttrValue::StrList(items) => {
                let Value::ArrayValue(array) = got else {
                    panic!("{key}: not an array: {got:?}");
                };
                let strings: Vec<_> = array
                    .values
                    .iter()
                    .map(|v| v.value.clone().unwrap())
                    .collect();
                let want: Vec<_> = items.iter().cloned().map(Value::StringValue).collect();
                assert_eq!(strings, want);
            }
        }
    }
}

#[tokio::test]
async fn every_field_decodes_with_the_official_types() {
    let receiver = Receiver::start(&[], false).await;
    let (exporter, handle) = start(&config(&receiver.url));
    let traces: Vec<_> = (0..3).map(|i| trace(i, 4)).collect();
    for t in &traces {
        exporter.export(t.clone());
    }
    wait_until("12 spans", || exporter.exported_spans() == 12).await;

    let spans: HashMap<Vec<u8>, OSpan> = receiver
        .spans()
        .into_iter()
        .map(|s| (s.span_id.clone(), s))
        .collect();
    assert_eq!(spans.len(), 12);
    for t in &traces {
        for want in &t.spans {
            assert_span_matches(&spans[&want.span_id.0.to_vec()], t, want);
        }
    }
    for (headers, request) in receiver.requests() {
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-protobuf");
        assert_eq!(request.resource_spans.len(), 1);
        let rs = &request.resource_spans[0];
        let resource = &rs.resource.as_ref().unwrap().attributes;
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            attr(resource, "service.name"),
            &Value::StringValue("keel-test".into())
        );
        assert_eq!(
            attr(resource, "service.version"),
            &Value::StringValue(version.into())
        );
        assert_eq!(
            attr(resource, "telemetry.sdk.name"),
            &Value::StringValue("keel".into())
        );
        assert_eq!(rs.scope_spans.len(), 1);
        let scope = rs.scope_spans[0].scope.as_ref().unwrap();
        assert_eq!(
            (scope.name.as_str(), scope.version.as_str()),
            ("keel", version)
        );
    }
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!((exporter.failed_spans(), exporter.dropped_spans()), (0, 0));
}

#[tokio::test]
async fn many_traces_are_batched_and_batches_are_bounded() {
    let receiver = Receiver::start(&[], false).await;
    let mut cfg = config(&receiver.url);
    cfg.flush_interval = Duration::from_millis(300);
    let (exporter, handle) = start(&cfg);
    for i in 0..50 {
        exporter.export(trace(i, 3));
    }
    wait_until("150 spans", || exporter.exported_spans() == 150).await;
    assert!(receiver.hits() < 50, "{} requests", receiver.hits());
    let trace_ids: HashSet<_> = receiver.spans().into_iter().map(|s| s.trace_id).collect();
    assert_eq!(trace_ids.len(), 50);
    handle.shutdown(Duration::from_secs(10)).await.unwrap();

    let small = Receiver::start(&[], false).await;
    let mut cfg = config(&small.url);
    cfg.batch_size = 4;
    let (exporter, handle) = start(&cfg);
    for i in 0..10 {
        exporter.export(trace(i, 3));
    }
    wait_until("30 spans", || exporter.exported_spans() == 30).await;
    for (_, request) in small.requests() {
        let n: usize = request.resource_spans[0]
            .scope_spans
            .iter()
            .map(|ss| ss.spans.len())
            .sum();
        assert!((1..=4).contains(&n), "{n} spans in one request");
    }
    // Traces of 3 spans straddle batches of 4: every span arrives once, none twice.
    let received = small.spans();
    let distinct: HashSet<_> = received.iter().map(|s| (&s.trace_id, &s.span_id)).collect();
    assert_eq!((received.len(), distinct.len()), (30, 30));
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn configured_headers_are_sent_and_missing_env_is_an_error() {
    // A variable cargo sets for every test process (setting one here would need `unsafe`).
    let var = "CARGO_PKG_NAME";
    let expected = std::env::var(var).unwrap();
    let receiver = Receiver::start(&[], false).await;
    let mut cfg = config(&receiver.url);
    cfg.headers_env.insert("x-api-key".into(), var.into());
    let (exporter, handle) = start(&cfg);
    exporter.export(trace(1, 2));
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].0["x-api-key"], expected.as_str());

    cfg.headers_env
        .insert("authorization".into(), "KEEL_OTLP_TEST_UNSET_4d1c".into());
    let err = otlp::spawn(&cfg, &TaskTracker::new()).unwrap_err();
    assert!(matches!(err, OtlpError::MissingEnv { .. }), "{err:?}");
    assert!(
        err.to_string().contains("KEEL_OTLP_TEST_UNSET_4d1c"),
        "{err}"
    );
}

#[tokio::test]
async fn retryable_statuses_are_retried() {
    let receiver =
        Receiver::start(&[Reply::Status(503, None), Reply::Status(503, None)], false).await;
    let (exporter, handle) = start(&config(&receiver.url));
    exporter.export(trace(1, 3));
    wait_until("3 spans", || exporter.exported_spans() == 3).await;
    assert_eq!(receiver.hits(), 3);
    assert_eq!(receiver.spans().len(), 3);
    assert_eq!(exporter.failed_spans(), 0);
    handle.shutdown(Duration::from_secs(10)).await.unwrap();

    let receiver = Receiver::start(&[Reply::Status(429, Some("1"))], false).await;
    let (exporter, handle) = start(&config(&receiver.url));
    exporter.export(trace(2, 2));
    wait_until("2 spans", || exporter.exported_spans() == 2).await;
    assert_eq!(receiver.hits(), 2);
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let receiver = Receiver::start(&[Reply::Status(400, None)], false).await;
    let (exporter, handle) = start(&config(&receiver.url));
    exporter.export(trace(1, 3));
    wait_until("3 failed spans", || exporter.failed_spans() == 3).await;
    assert_eq!(receiver.hits(), 1);
    // The exporter carries on with the next batch.
    exporter.export(trace(2, 2));
    wait_until("2 spans", || exporter.exported_spans() == 2).await;
    assert_eq!(receiver.hits(), 2);
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(exporter.failed_spans(), 3);
}

#[tokio::test]
async fn a_hanging_collector_fills_the_queue_and_export_drops() {
    let receiver = Receiver::start(&[], true).await;
    let mut cfg = config(&receiver.url);
    cfg.queue_capacity = 10;
    cfg.batch_size = 4;
    cfg.flush_interval = Duration::from_millis(20);
    cfg.timeout = Duration::from_secs(60);
    let (exporter, handle) = start(&cfg);
    for i in 0..100 {
        exporter.export(trace(i, 2));
    }
    wait_until("a request", || receiver.hits() >= 1).await;
    // Nothing ever completes, so exactly the first 10 spans were accepted.
    assert_eq!(exporter.dropped_spans(), 190);
    assert_eq!(exporter.queued_spans(), 10);
    let err = handle
        .shutdown(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OtlpError::ShutdownDeadline {
                abandoned_spans: 10
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        (exporter.exported_spans(), exporter.failed_spans()),
        (0, 10)
    );
    // After shutdown, export still returns at once and counts.
    exporter.export(trace(7, 3));
    assert_eq!(exporter.dropped_spans(), 193);
}

#[tokio::test]
async fn a_closed_port_fails_the_spans_without_blocking_export() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(&format!("http://127.0.0.1:{port}/v1/traces"));
    cfg.queue_capacity = 10;
    cfg.batch_size = 1000;
    cfg.flush_interval = Duration::from_secs(600);
    let (exporter, handle) = start(&cfg);
    for i in 0..100 {
        exporter.export(trace(i, 2));
    }
    assert_eq!(exporter.dropped_spans(), 190);
    handle.shutdown(Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        (exporter.exported_spans(), exporter.failed_spans()),
        (0, 10)
    );
    assert_eq!(exporter.queued_spans(), 0);
}

#[tokio::test]
async fn shutdown_flushes_queued_spans() {
    let receiver = Receiver::start(&[], false).await;
    let mut cfg = config(&receiver.url);
    cfg.batch_size = 1000;
    cfg.flush_interval = Duration::from_secs(600);
    let (exporter, handle) = start(&cfg);
    let traces: Vec<_> = (0..5).map(|i| trace(i, 3)).collect();
    for t in &traces {
        exporter.export(t.clone());
    }
    assert_eq!(exporter.queued_spans(), 15);
    handle.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(exporter.exported_spans(), 15);
    assert_eq!(receiver.hits(), 1);
    assert_eq!(receiver.spans().len(), 15);
    exporter.export(traces[0].clone());
    assert_eq!(exporter.dropped_spans(), 3);
}

/// Batches are encoded on the exporter's own thread, below the request-serving threads'
/// priority: in the idle scheduling class wherever the process may leave that class again
/// (root here).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn batches_are_encoded_on_a_background_thread() {
    let receiver = Receiver::start(&[], false).await;
    let (exporter, handle) = start(&config(&receiver.url));
    exporter.export(trace(1, 2));
    wait_until("a request", || receiver.hits() >= 1).await;
    // Other tests' exporters have keel-otlp threads too.
    let threads = keel_store::background::threads_named("keel-otlp");
    assert!(!threads.is_empty(), "no keel-otlp thread found");
    let idle = threads.iter().filter(|t| t.idle).count();
    if keel_store::background::idle_class_available() {
        assert!(
            idle >= 1,
            "no keel-otlp thread in the idle class: {threads:?}"
        );
    } else {
        assert_eq!(idle, 0, "idle class entered where it could not be left");
    }
    handle
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shutdown");
    assert_eq!(exporter.exported_spans(), 2);
}
