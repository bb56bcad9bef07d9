//! Traces end to end: a request through a real keel server produces one trace whose spans
//! reach an OTLP/HTTP collector with GenAI attributes and correct parentage, continuing the
//! caller's `traceparent`; the same trace is stored and readable through `/v1/traces`, per
//! tenant.

use crate::support::{ACME_KEY, ADMIN_KEY, Collector, GLOBEX_KEY, Keel, eventually};
use keel_testkit::Behavior;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key) {
        Some(Any::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key) {
        Some(Any::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn otlp_config(c: &Collector, extra: &str) -> String {
    format!(
        "[observe]\n{extra}\n[observe.otlp]\nendpoint = \"{}\"\nflush_interval = \"50ms\"\n",
        c.endpoint()
    )
}

#[tokio::test]
async fn a_request_becomes_one_trace_of_stage_spans_exported_over_otlp() {
    let collector = Collector::start().await;
    let keel = Keel::start(&otlp_config(&collector, "")).await;
    let resp = keel
        .http
        .post(keel.url("/v1/chat/completions"))
        .bearer_auth(ACME_KEY)
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .json(&json!({
            "model": "chain",
            "messages": [{"role": "user", "content": "secret prompt text"}],
            "temperature": 0.25,
            "max_tokens": 64
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["keel"]["trace_id"], CALLER_TRACE);

    let spans = eventually(async || {
        let s = collector.spans();
        (s.len() >= 12).then_some(s)
    })
    .await;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert!(spans.iter().all(|s| hex(&s.trace_id) == CALLER_TRACE));
    let root = spans.iter().find(|s| s.kind == 2).expect("a SERVER span");
    assert_eq!(root.name, "chat chain");
    assert_eq!(hex(&root.parent_span_id), CALLER_SPAN);
    assert_eq!(str_attr(root, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(root, "gen_ai.request.model"), Some("chain"));
    assert_eq!(str_attr(root, "gen_ai.response.model"), Some("a"));
    assert_eq!(str_attr(root, "gen_ai.provider.name"), Some("openai"));
    assert_eq!(int_attr(root, "gen_ai.usage.input_tokens"), Some(3));
    assert!(int_attr(root, "gen_ai.usage.output_tokens").unwrap() > 0);
    assert_eq!(int_attr(root, "gen_ai.request.max_tokens"), Some(64));
    assert!(
        matches!(attr(root, "gen_ai.request.temperature"), Some(Any::DoubleValue(t)) if (*t - 0.25).abs() < 1e-6)
    );
    match attr(root, "gen_ai.response.finish_reasons") {
        Some(Any::ArrayValue(a)) => assert_eq!(a.values.len(), 1),
        other => panic!("finish reasons: {other:?}"),
    }
    // Content is off on spans by default.
    let all = format!("{spans:?}");
    assert!(!all.contains("secret prompt text"));

    let stage_names: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == root.span_id)
        .map(|s| s.name.as_str())
        .collect();
    for stage in [
        "authenticate",
        "admit",
        "input_policy",
        "cache",
        "context",
        "route",
        "attempts",
        "output_policy",
        "decide",
        "respond",
    ] {
        assert!(
            stage_names.contains(&stage),
            "missing {stage}: {stage_names:?}"
        );
    }
    let attempts = spans.iter().find(|s| s.name == "attempts").unwrap();
    let calls: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == attempts.span_id)
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "chat mock-a");
    assert_eq!(calls[0].kind, 3, "CLIENT");
    assert_eq!(str_attr(calls[0], "gen_ai.request.model"), Some("mock-a"));
    assert_eq!(str_attr(calls[0], "gen_ai.response.model"), Some("mock-a"));
    // Children lie within their parents.
    for s in &spans {
        assert!(s.start_time_unix_nano <= s.end_time_unix_nano);
        if s.span_id != root.span_id {
            assert!(
                s.start_time_unix_nano >= root.start_time_unix_nano,
                "{}",
                s.name
            );
            assert!(
                s.end_time_unix_nano <= root.end_time_unix_nano,
                "{}",
                s.name
            );
        }
    }
    keel.stop().await;
}

#[tokio::test]
async fn failed_attempts_and_errors_are_error_spans_and_a_new_trace_starts_without_traceparent() {
    let collector = Collector::start().await;
    let keel = Keel::start(&otlp_config(&collector, "")).await;
    keel.mock.push(Behavior::status(503));
    let resp = keel.say(ACME_KEY, "hi").await;
    assert_eq!(resp.status(), 502);
    let spans = eventually(async || {
        let s = collector.spans();
        s.iter().any(|s| s.kind == 2).then_some(s)
    })
    .await;
    let root = spans.iter().find(|s| s.kind == 2).unwrap();
    assert!(root.parent_span_id.is_empty(), "no traceparent → a root");
    assert_eq!(root.status.as_ref().unwrap().code, 2, "ERROR");
    assert_eq!(str_attr(root, "error.type"), Some("upstream_error"));
    assert_eq!(int_attr(root, "http.response.status_code"), Some(502));
    let call = spans.iter().find(|s| s.kind == 3).unwrap();
    assert_eq!(call.status.as_ref().unwrap().code, 2);
    assert_eq!(str_attr(call, "error.type"), Some("status_503"));
    keel.stop().await;
}

#[tokio::test]
async fn span_content_is_opt_in_and_obeys_the_tenant_content_mode() {
    let collector = Collector::start().await;
    let keel = Keel::start(&otlp_config(
        &collector,
        "span_content = true\n[observe.tenants.acme]\ncontent = \"full\"\n[observe.tenants.globex]\ncontent = \"none\"",
    ))
    .await;
    for key in [ACME_KEY, GLOBEX_KEY] {
        let r = keel.say(key, "the plum is ripe").await;
        assert_eq!(r.status(), 200);
    }
    let spans = eventually(async || {
        let s = collector.spans();
        (s.iter().filter(|s| s.kind == 2).count() == 2).then_some(s)
    })
    .await;
    let roots: Vec<&Span> = spans.iter().filter(|s| s.kind == 2).collect();
    let by_tenant = |t: &str| {
        *roots
            .iter()
            .find(|s| str_attr(s, "keel.tenant") == Some(t))
            .unwrap()
    };
    let acme = by_tenant("acme");
    assert!(
        str_attr(acme, "gen_ai.input.messages")
            .unwrap()
            .contains("the plum is ripe")
    );
    assert!(
        str_attr(acme, "gen_ai.output.messages")
            .unwrap()
            .contains("echo: the plum is ripe")
    );
    let globex = by_tenant("globex");
    assert_eq!(attr(globex, "gen_ai.input.messages"), None);
    keel.stop().await;
}

#[tokio::test]
async fn traces_are_stored_listed_filtered_and_isolated_by_tenant() {
    let keel = Keel::start("[observe.tenants.acme]\ncontent = \"full\"\n").await;
    let mut acme_ids = Vec::new();
    for i in 0..3 {
        let r = keel.say(ACME_KEY, format!("question {i}")).await;
        acme_ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    keel.mock.push(Behavior::status(500));
    let failed = keel.say(ACME_KEY, "boom").await;
    assert_eq!(failed.status(), 502);
    let failed_id = failed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let g = keel.say(GLOBEX_KEY, "globex private words").await;
    let globex_id = g.headers()["x-request-id"].to_str().unwrap().to_owned();

    // All five land in the store (the writer flushes every 10 ms).
    let list: Value = eventually(async || {
        let v: Value = keel.get_json(ACME_KEY, "/v1/traces").await;
        (v["data"].as_array().unwrap().len() == 4).then_some(v)
    })
    .await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["request_id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&globex_id.as_str()),
        "acme must not see globex"
    );
    assert_eq!(ids[0], failed_id, "newest first");

    let errors: Value = keel.get_json(ACME_KEY, "/v1/traces?status=502").await;
    assert_eq!(errors["data"].as_array().unwrap().len(), 1);
    assert_eq!(errors["data"][0]["error_class"], "upstream_error");
    let page: Value = keel
        .get_json(ACME_KEY, "/v1/traces?limit=2&route=chain&status=200")
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
    let next = page["next_cursor"].as_str().unwrap();
    let rest: Value = keel
        .get(
            ACME_KEY,
            &format!("/v1/traces?limit=2&route=chain&status=200&cursor={next}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);

    // One trace in full: spans, what the model saw (acme keeps full content), attempts.
    let full: Value = keel
        .get_json(ACME_KEY, &format!("/v1/traces/{}", acme_ids[1]))
        .await;
    assert_eq!(full["content"]["messages"][0]["content"], "question 1");
    assert_eq!(
        full["content"]["response"][0]["content"],
        "echo: question 1"
    );
    assert_eq!(full["content"]["attempts"][0]["model"], "a");
    assert_eq!(full["content_mode"], "full");
    assert!(full["spans"].as_array().unwrap().len() >= 12);

    // globex's content is redacted (the default mode); acme cannot read globex's trace.
    let other = keel.get(ACME_KEY, &format!("/v1/traces/{globex_id}")).await;
    assert_eq!(other.status(), 404);
    let own: Value = keel
        .get_json(GLOBEX_KEY, &format!("/v1/traces/{globex_id}"))
        .await;
    assert_eq!(
        own["content"]["messages"][0]["content"],
        "[redacted: 20 chars]"
    );
    assert!(!own.to_string().contains("globex private words"));
    // The admin key is another tenant: it sees none of these.
    let admin: Value = keel.get_json(ADMIN_KEY, "/v1/traces").await;
    assert_eq!(admin["data"].as_array().unwrap().len(), 0);

    let bad = keel.get(ACME_KEY, "/v1/traces?tenant=globex").await;
    assert_eq!(bad.status(), 400);
    let err: Value = bad.json().await.unwrap();
    assert_eq!(err["error"]["param"], "tenant");
    keel.stop().await;
}

#[tokio::test]
async fn sampling_caps_ordinary_traces_but_keeps_every_failure() {
    let keel = Keel::start("[observe.sampling]\nmax_per_second = 3.0\n").await;
    let started = std::time::Instant::now();
    for i in 0..12 {
        let r = keel.say(ACME_KEY, format!("q{i}")).await;
        assert_eq!(r.status(), 200);
    }
    keel.mock.push(Behavior::status(503));
    let failed = keel.say(ACME_KEY, "boom").await;
    assert_eq!(failed.status(), 502);
    let elapsed = started.elapsed().as_secs_f64();
    let failed_id = failed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list: Value = eventually(async || {
        let v: Value = keel.get_json(ACME_KEY, "/v1/traces").await;
        let ids: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["request_id"].as_str().unwrap().to_owned())
            .collect();
        ids.contains(&failed_id).then_some(v)
    })
    .await;
    let ok = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == 200)
        .count();
    // A burst of one second's budget (3), plus at most what refilled while the requests ran.
    let most = 3 + (3.0 * elapsed).ceil() as usize;
    assert!(
        ok >= 3 && ok <= most.min(12),
        "{ok} ordinary traces kept of 12 (at most {most})"
    );
    assert!(most < 12 || ok < 12, "the run was too slow to show the cap");
    keel.stop().await;
}
