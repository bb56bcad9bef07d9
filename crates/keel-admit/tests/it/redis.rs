//! The Redis backend on the loopback Redis: two controllers ("nodes") sharing a key prefix
//! must enforce one set of limits between them.

use crate::support::{admit, config, est, req};
use keel_admit::redis::Redis;
use keel_admit::window::Window;
use keel_admit::{Admission, Backend, Limit, Reason, ScopeKind};
use keel_types::ErrorCode;
use std::sync::Arc;

const URL: &str = "redis://127.0.0.1:6379";

fn prefix() -> String {
    format!("keel-test-{}", uuid::Uuid::new_v4().simple())
}

/// Two controllers over separate Redis connections with the same prefix.
async fn two_nodes(admission: &str, prefix: &str) -> (Arc<Admission>, Arc<Admission>, Redis) {
    let cfg = config(admission);
    let node = async || {
        let r = Redis::connect(URL, prefix).await.unwrap();
        Arc::new(Admission::with_backend(&cfg, Backend::Redis(r)))
    };
    let (a, b) = (node().await, node().await);
    (a, b, Redis::connect(URL, prefix).await.unwrap())
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
    let (a, b, probe) = two_nodes(
        "[admission.tenants.acme]\nbudget = { hard_usd = 1.0, period = \"month\" }\n",
        &p,
    )
    .await;
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                match node.admit(req("k2", "acme", "chat"), est(1, 0.003)).await {
                    Ok(t) => {
                        // Settles below the estimate: refunds race with reservations.
                        t.settle(1, 0.002);
                        Ok(())
                    }
                    Err(r) => Err(r.error.code),
                }
            })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(code) => {
                assert_eq!(code, ErrorCode::InsufficientQuota);
                refused += 1;
            }
        }
    }
    a.quiesce().await;
    b.quiesce().await;
    let spent = probe
        .value("tenant:acme:budget_month", Window::Month.id(now()))
        .await
        .unwrap();
    assert!(
        admitted >= 333,
        "at least the reservations that fit: {admitted}"
    );
    assert!(refused > 0);
    assert_eq!(
        spent,
        admitted * 2_000_000,
        "settled spend is 0.002 per admitted request"
    );
    assert!(
        spent <= 1_000_000_000,
        "never beyond the budget: {spent} nano-USD"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_per_minute_hold_exactly_across_two_nodes() {
    let p = prefix();
    let (a, b, _) = two_nodes("[admission.routes.chat]\nrequests_per_minute = 50\n", &p).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                node.admit(req("k2", "acme", "chat"), est(1, 0.0))
                    .await
                    .map(|t| t.settle(1, 0.0))
                    .map_err(|r| r.reason)
            })
        })
        .collect();
    let mut admitted = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => admitted += 1,
            Err(reason) => {
                assert_eq!(
                    reason,
                    Reason::Limit(ScopeKind::Route, Limit::RequestsPerMinute)
                );
                refused += 1;
            }
        }
    }
    // A request near a minute boundary may land in the next window; at most one window more.
    assert!(admitted == 50 || admitted == 100, "{admitted}");
    assert_eq!(admitted + refused, 200);
}

#[tokio::test]
async fn settling_refunds_and_dropping_releases_in_redis() {
    let p = prefix();
    let (a, b, probe) = two_nodes("[admission.keys.k2]\ntokens_per_minute = 1000\n", &p).await;
    let t1 = admit(&a, req("k2", "acme", "chat"), est(600, 0.0)).await;
    let rej = b
        .admit(req("k2", "acme", "chat"), est(600, 0.0))
        .await
        .err()
        .unwrap();
    assert_eq!(rej.error.code, ErrorCode::RateLimitExceeded);
    assert!((1..=60).contains(&rej.error.retry_after.unwrap()));
    t1.settle(150, 0.0);
    a.quiesce().await;
    let wid = Window::Minute.id(now());
    let used = probe.value("key:k2:tpm", wid).await.unwrap();
    let t2 = admit(&b, req("k2", "acme", "chat"), est(600, 0.0)).await;
    drop(t2);
    b.quiesce().await;
    if Window::Minute.id(now()) == wid {
        assert_eq!(used, 150);
        assert_eq!(probe.value("key:k2:tpm", wid).await.unwrap(), 150);
    }
}

#[tokio::test]
async fn a_soft_budget_alerts_once_across_nodes() {
    let p = prefix();
    let (a, b, _) = two_nodes(
        "[admission.tenants.acme]\nbudget = { soft_usd = 0.5, period = \"day\" }\n",
        &p,
    )
    .await;
    // Tickets are held: dropping one unsettled releases its reservation (asynchronously on
    // Redis), which would race the next admission's view of the spend.
    let t1 = admit(&a, req("k2", "acme", "chat"), est(1, 0.4)).await;
    assert!(t1.alerts.is_empty());
    let t2 = admit(&b, req("k1", "acme", "chat"), est(1, 0.4)).await;
    assert_eq!(t2.alerts.len(), 1);
    assert_eq!(t2.alerts[0].scope, ScopeKind::Tenant);
    let t3 = admit(&a, req("k2", "acme", "chat"), est(1, 0.4)).await;
    assert!(t3.alerts.is_empty(), "once per period");
    let t4 = admit(&b, req("k2", "acme", "chat"), est(1, 0.4)).await;
    assert!(t4.alerts.is_empty(), "once per period, on either node");
    drop((t1, t2, t3, t4));
}

#[tokio::test]
async fn the_script_counts_in_the_same_windows_as_rust() {
    let p = prefix();
    let (a, _, probe) = two_nodes(
        "[admission.keys.k2]\nrequests_per_minute = 100\ncost_per_day_usd = 5.0\nbudget = { hard_usd = 9.0, period = \"month\" }\n",
        &p,
    )
    .await;
    let before = now();
    let t = admit(&a, req("k2", "acme", "chat"), est(1, 0.25)).await;
    let after = now();
    for (base, window, want) in [
        ("key:k2:rpm", Window::Minute, 1),
        ("key:k2:cost_day", Window::Day, 250_000_000),
        ("key:k2:budget_month", Window::Month, 250_000_000),
    ] {
        // Unless a window ended during the call, the counter is where Rust expects it.
        if window.id(before) == window.id(after) {
            assert_eq!(
                probe.value(base, window.id(before)).await.unwrap(),
                want,
                "{base}"
            );
        }
    }
    drop(t);
}

#[tokio::test]
async fn an_unreachable_redis_fails_at_start_naming_the_url() {
    let cfg = config("[admission]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:1\"\n");
    let err = Admission::from_config(&cfg).await.err().unwrap();
    assert!(err.contains("redis://127.0.0.1:1"), "{err}");
}
