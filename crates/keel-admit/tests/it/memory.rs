//! The memory backend's semantics: limits per key, tenant and route, all-or-nothing
//! reservations, settlement refunds, release on drop, budgets soft and hard, scopes, shedding.

use crate::support::{admit, est, memory, req};
use keel_admit::{Limit, Reason, ScopeKind, ShedScope};
use keel_types::ErrorCode;
use std::sync::Arc;

#[tokio::test]
async fn requests_per_minute_per_key_refuses_with_retry_after_and_touches_nothing() {
    let a = memory(
        "[admission.keys.k2]\nrequests_per_minute = 3\n[admission.tenants.acme]\nrequests_per_minute = 10\n",
    );
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(admit(&a, req("k2", "acme", "chat"), est(1, 0.0)).await);
    }
    let rej = a
        .admit(req("k2", "acme", "chat"), est(1, 0.0))
        .await
        .err()
        .unwrap();
    assert_eq!(rej.error.code, ErrorCode::RateLimitExceeded);
    assert_eq!(rej.error.code.http_status(), 429);
    assert_eq!(
        rej.reason,
        Reason::Limit(ScopeKind::Key, Limit::RequestsPerMinute)
    );
    let retry = rej.error.retry_after.unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        rej.error.message.contains("key \"k2\" requests_per_minute"),
        "{}",
        rej.error.message
    );
    // The refused request took nothing from the tenant: 7 more fit for another acme key.
    for _ in 0..7 {
        held.push(admit(&a, req("k1", "acme", "chat"), est(1, 0.0)).await);
    }
    let rej = a
        .admit(req("k1", "acme", "chat"), est(1, 0.0))
        .await
        .err()
        .unwrap();
    assert_eq!(
        rej.reason,
        Reason::Limit(ScopeKind::Tenant, Limit::RequestsPerMinute)
    );
    // Settling does not give a request back: requests count whatever their outcome.
    for t in held.drain(..) {
        t.settle(0, 0.0);
    }
    assert!(
        a.admit(req("k2", "acme", "chat"), est(1, 0.0))
            .await
            .is_err()
    );
    // Another tenant is untouched.
    admit(&a, req("g1", "globex", "chat"), est(1, 0.0)).await;
}

#[tokio::test]
async fn tokens_per_minute_are_reserved_then_settled_to_the_actual_count() {
    let a = memory("[admission.routes.chat]\ntokens_per_minute = 1000\n");
    let first = admit(&a, req("k2", "acme", "chat"), est(600, 0.0)).await;
    let rej = a
        .admit(req("k2", "acme", "chat"), est(600, 0.0))
        .await
        .err()
        .unwrap();
    assert_eq!(
        rej.reason,
        Reason::Limit(ScopeKind::Route, Limit::TokensPerMinute)
    );
    first.settle(100, 0.0);
    let second = admit(&a, req("k2", "acme", "chat"), est(600, 0.0)).await;
    // 100 + 600 = 700 in use: 300 more fit, 301 do not.
    assert!(
        a.admit(req("k2", "acme", "chat"), est(301, 0.0))
            .await
            .is_err()
    );
    admit(&a, req("k2", "acme", "chat"), est(300, 0.0))
        .await
        .settle(300, 0.0);
    drop(second);
    // The dropped reservation was released: 600 fit again.
    admit(&a, req("k2", "acme", "chat"), est(600, 0.0)).await;
}

#[tokio::test]
async fn hard_budget_refuses_with_insufficient_quota_and_drop_releases() {
    let a = memory("[admission.tenants.acme]\nbudget = { hard_usd = 1.0, period = \"day\" }\n");
    let t1 = admit(&a, req("k2", "acme", "chat"), est(10, 0.4)).await;
    let t2 = admit(&a, req("k1", "acme", "chat"), est(10, 0.4)).await;
    let rej = a
        .admit(req("k2", "acme", "chat"), est(10, 0.4))
        .await
        .err()
        .unwrap();
    assert_eq!(rej.error.code, ErrorCode::InsufficientQuota);
    assert_eq!(rej.error.code.http_status(), 429);
    assert_eq!(rej.reason, Reason::Limit(ScopeKind::Tenant, Limit::Budget));
    assert!(rej.error.retry_after.unwrap() <= 86_400);
    // A failed request settles to its actual cost (none): its reservation comes back.
    t1.settle(0, 0.0);
    let t3 = admit(&a, req("k2", "acme", "chat"), est(10, 0.4)).await;
    // Settled at 0.1 each: 0.8 reserved + settled, 0.2 left.
    t2.settle(10, 0.1);
    t3.settle(10, 0.1);
    admit(&a, req("k2", "acme", "chat"), est(10, 0.6))
        .await
        .settle(10, 0.6);
    let rej = a
        .admit(req("k2", "acme", "chat"), est(10, 0.3))
        .await
        .err()
        .unwrap();
    assert_eq!(rej.error.code, ErrorCode::InsufficientQuota);
    // A total budget never resets, so it names no Retry-After.
    let a = memory("[admission.keys.k2]\nbudget = { hard_usd = 0.5, period = \"total\" }\n");
    admit(&a, req("k2", "acme", "chat"), est(1, 0.5))
        .await
        .settle(1, 0.5);
    let rej = a
        .admit(req("k2", "acme", "chat"), est(1, 0.01))
        .await
        .err()
        .unwrap();
    assert_eq!(rej.error.retry_after, None);
}

#[tokio::test]
async fn soft_budget_alerts_once_per_period() {
    let a = memory("[admission.keys.k2]\nbudget = { soft_usd = 0.5, hard_usd = 10.0 }\n");
    let t = admit(&a, req("k2", "acme", "chat"), est(1, 0.3)).await;
    assert!(t.alerts.is_empty());
    let t = admit(&a, req("k2", "acme", "chat"), est(1, 0.3)).await;
    assert_eq!(t.alerts.len(), 1);
    assert_eq!(t.alerts[0].scope, ScopeKind::Key);
    assert_eq!(t.alerts[0].name, "k2");
    assert!((t.alerts[0].spent_usd - 0.6).abs() < 1e-9);
    assert!((t.alerts[0].soft_usd - 0.5).abs() < 1e-9);
    let t = admit(&a, req("k2", "acme", "chat"), est(1, 0.3)).await;
    assert!(t.alerts.is_empty(), "one alert per period");
}

#[tokio::test]
async fn a_key_outside_its_routes_is_denied_naming_model() {
    let a = memory("");
    admit(&a, req("k1", "acme", "chat"), est(1, 0.0)).await;
    let rej = a
        .admit(req("k1", "acme", "other"), est(1, 0.0))
        .await
        .err()
        .unwrap();
    assert_eq!(rej.error.code, ErrorCode::PermissionDenied);
    assert_eq!(rej.error.code.http_status(), 403);
    assert_eq!(rej.error.param.as_deref(), Some("model"));
    assert_eq!(rej.reason, Reason::Scope);
    // A key without `routes` may use any.
    admit(&a, req("k2", "acme", "other"), est(1, 0.0)).await;
}

#[tokio::test]
async fn in_flight_bounds_shed_low_priority_first_with_503() {
    let a = memory("[admission.routes.chat]\nmax_in_flight = 2\n");
    // k1 is low (share 0.5 of 2 = 1), k2 normal (0.8 of 2 = 1), g1 high (2).
    let t1 = admit(&a, req("k1", "acme", "chat"), est(1, 0.0)).await;
    let rej = a
        .admit(req("k1", "acme", "chat"), est(1, 0.0))
        .await
        .err()
        .unwrap();
    assert_eq!(rej.error.code.http_status(), 503);
    assert_eq!(rej.error.retry_after, Some(1));
    assert_eq!(rej.reason, Reason::Shed(ShedScope::Route));
    assert!(
        a.admit(req("k2", "acme", "chat"), est(1, 0.0))
            .await
            .is_err()
    );
    let t2 = admit(&a, req("g1", "globex", "chat"), est(1, 0.0)).await;
    assert_eq!(a.in_flight("chat"), 2);
    drop(t1);
    t2.settle(0, 0.0);
    assert_eq!(a.in_flight("chat"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_never_exceed_the_budget() {
    let a = Arc::new(memory(
        "[admission.tenants.acme]\nbudget = { hard_usd = 1.0, period = \"month\" }\n",
    ));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                let key = if i % 2 == 0 { "k1" } else { "k2" };
                match a.admit(req(key, "acme", "chat"), est(1, 0.003)).await {
                    Ok(t) => {
                        t.settle(1, 0.003);
                        true
                    }
                    Err(_) => false,
                }
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    // 1.0 / 0.003 = 333.3: exactly 333 fit.
    assert_eq!(admitted, 333);
}
