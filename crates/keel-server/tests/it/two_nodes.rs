//! Two keel servers sharing the loopback Redis (127.0.0.1:6379) through the `redis`
//! admission backend: a budget and a requests-per-minute limit hold across both nodes under
//! 1,000 concurrent requests.

use crate::support::{ACME_KEY, Keel};
use keel_admit::redis::Redis;
use keel_admit::usd_to_nanos;
use keel_admit::window::Window;
use serde_json::{Value, json};
use std::sync::Arc;

fn prefix() -> String {
    format!("keel-it-{}", uuid::Uuid::new_v4().simple())
}

async fn two_nodes(prefix: &str, limits: &str) -> (Arc<Keel>, Arc<Keel>) {
    let extra = format!("[admission]\nbackend = \"redis\"\nkey_prefix = \"{prefix}\"\n{limits}");
    (
        Arc::new(Keel::start(&extra).await),
        Arc::new(Keel::start(&extra).await),
    )
}

/// Fires `n` concurrent chat requests alternating between the nodes; their statuses and
/// bodies.
async fn fire(a: &Arc<Keel>, b: &Arc<Keel>, n: usize, max_tokens: u32) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let r = node
                    .chat(
                        ACME_KEY,
                        json!({"model": "chain", "max_tokens": max_tokens,
                               "messages": [{"role": "user", "content": "hello world"}]}),
                    )
                    .await;
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_holds_across_two_nodes_under_1000_concurrent_requests() {
    let p = prefix();
    // Each request reserves ~$0.0002 (100 output tokens at $2/M) and settles to $0.000008
    // (2 prompt + 3 output tokens): 1,000 answered would spend $0.008, beyond the budget.
    let (a, b) = two_nodes(
        &p,
        "[admission.tenants.acme]\nbudget = { hard_usd = 0.004, period = \"month\" }\n",
    )
    .await;
    let results = fire(&a, &b, 1000, 100).await;
    let mut settled_nanos = 0;
    let (mut admitted, mut refused) = (0, 0);
    for (status, body) in &results {
        match status {
            200 => {
                admitted += 1;
                let s = body["keel"]["admission"]["settled_usd"].as_f64().unwrap();
                assert!((s - 8e-6).abs() < 1e-12, "{body}");
                settled_nanos += usd_to_nanos(s);
            }
            429 => {
                assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        admitted > 0 && refused > 0,
        "{admitted} admitted, {refused} refused"
    );
    assert_eq!(admitted + refused, 1000);
    assert!(
        settled_nanos <= usd_to_nanos(0.004),
        "admitted spend {settled_nanos} nano-USD is beyond the budget"
    );
    // Each node answered its 500 requests; which node won the budget's units is a race,
    // so only the sum of what both sent upstream is fixed.
    assert_eq!(a.mock.request_count() + b.mock.request_count(), admitted);
    // Redis holds exactly the settled spend once every settlement has landed.
    let probe = Redis::connect("redis://127.0.0.1:6379", &p).await.unwrap();
    let wid = Window::Month.id(now());
    crate::support::eventually(async || {
        let v = probe.value("tenant:acme:budget_month", wid).await.unwrap();
        (v == settled_nanos).then_some(())
    })
    .await;
    let (a, b) = (Arc::into_inner(a).unwrap(), Arc::into_inner(b).unwrap());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_minute_hold_exactly_across_two_nodes() {
    // Not within the last seconds of a minute, so all requests fall into one window.
    let secs = now() % 60;
    if secs >= 45 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - secs as u64)).await;
    }
    let p = prefix();
    let (a, b) = two_nodes(&p, "[admission.keys.acme-1]\nrequests_per_minute = 37\n").await;
    let results = fire(&a, &b, 200, 10).await;
    let admitted = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(admitted, 37);
    assert_eq!(refused.len(), 163);
    for (_, body) in refused {
        assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    }
    assert_eq!(a.mock.request_count() + b.mock.request_count(), 37);
    let (a, b) = (Arc::into_inner(a).unwrap(), Arc::into_inner(b).unwrap());
    a.stop().await;
    b.stop().await;
}
