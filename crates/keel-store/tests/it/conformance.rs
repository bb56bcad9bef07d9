//! The behaviour every `RequestLogStore` must show, written once against `Arc<dyn
//! RequestLogStore>` and instantiated per backend with `conformance_suite!`.

use std::sync::Arc;

use keel_store::{RequestLogStore, RequestRecord};

use crate::support::{full_record, minimal_record};

/// Generates one `#[tokio::test]` per conformance case. `$fixture` is an async expression
/// yielding `Option<F>` where `F` has a `store` field (an `Arc` of a store); `None` skips.
macro_rules! conformance_suite {
    ($fixture:expr) => {
        conformance_suite!(@cases $fixture;
            round_trip_full_record,
            round_trip_record_with_none_fields,
            get_unknown_id_is_none,
            write_is_idempotent_on_id,
            rewrite_replaces_record_and_attempts,
            routing_columns_follow_the_last_write,
            duplicate_ids_in_one_batch_keep_the_last,
            recent_is_newest_first,
            recent_filters_by_tenant,
            count_counts_records,
            empty_batch_is_a_no_op,
            large_batch_in_one_call,
            purge_deletes_the_oldest_before_the_cutoff,
        );
    };
    (@cases $fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(fixture) = $fixture else { return };
                let store: std::sync::Arc<dyn keel_store::RequestLogStore> = fixture.store.clone();
                $crate::conformance::$case(store).await;
            }
        )*
    };
}
pub(crate) use conformance_suite;

pub async fn round_trip_full_record(store: Arc<dyn RequestLogStore>) {
    let record = full_record("req_full", Some("acme"), 1_700_000_000_123);
    store
        .write_batch(vec![record.clone()])
        .await
        .expect("write");
    let got = store
        .get("req_full")
        .await
        .expect("get")
        .expect("record exists");
    assert_eq!(got, record);
}

pub async fn round_trip_record_with_none_fields(store: Arc<dyn RequestLogStore>) {
    let record = minimal_record("req_min", -5);
    store
        .write_batch(vec![record.clone()])
        .await
        .expect("write");
    let got = store
        .get("req_min")
        .await
        .expect("get")
        .expect("record exists");
    assert_eq!(got, record);
    assert!(got.attempts.is_empty());
}

pub async fn get_unknown_id_is_none(store: Arc<dyn RequestLogStore>) {
    store
        .write_batch(vec![minimal_record("req_known", 1)])
        .await
        .expect("write");
    assert_eq!(store.get("req_unknown").await.expect("get"), None);
}

pub async fn write_is_idempotent_on_id(store: Arc<dyn RequestLogStore>) {
    let batch = vec![
        full_record("req_a", Some("t"), 1),
        full_record("req_b", Some("t"), 2),
    ];
    store.write_batch(batch.clone()).await.expect("first write");
    // A retried batch: same ids again.
    store
        .write_batch(batch.clone())
        .await
        .expect("retried write");
    assert_eq!(store.count().await.expect("count"), 2);
    let got = store.get("req_a").await.expect("get").expect("exists");
    assert_eq!(got, batch[0], "attempts must not be duplicated");
    assert_eq!(store.recent(None, 100).await.expect("recent").len(), 2);
}

pub async fn rewrite_replaces_record_and_attempts(store: Arc<dyn RequestLogStore>) {
    store
        .write_batch(vec![full_record("req_x", Some("t"), 10)])
        .await
        .expect("write");
    let mut changed = full_record("req_x", Some("u"), 11);
    changed.status = 502;
    changed.attempts.truncate(1);
    changed.cost_usd = None;
    store
        .write_batch(vec![changed.clone()])
        .await
        .expect("rewrite");
    assert_eq!(store.count().await.expect("count"), 1);
    assert_eq!(store.get("req_x").await.expect("get"), Some(changed));
}

pub async fn routing_columns_follow_the_last_write(store: Arc<dyn RequestLogStore>) {
    let mut first = minimal_record("req_route", 1);
    first.model_served = Some("cheap".to_owned());
    first.route_reason = Some("cascade: cheap trust 1.00".to_owned());
    store.write_batch(vec![first.clone()]).await.expect("write");
    assert_eq!(store.get("req_route").await.expect("get"), Some(first));
    let mut escalated = minimal_record("req_route", 1);
    escalated.model_served = Some("strong".to_owned());
    escalated.route_reason = Some(
        "cascade: escalated cheap trust 0.00 < 0.50 (refusal) -> strong trust 1.00".to_owned(),
    );
    store
        .write_batch(vec![escalated.clone()])
        .await
        .expect("rewrite");
    assert_eq!(store.get("req_route").await.expect("get"), Some(escalated));
    let failed = minimal_record("req_route", 1);
    store
        .write_batch(vec![failed.clone()])
        .await
        .expect("rewrite");
    let got = store.get("req_route").await.expect("get").expect("exists");
    assert_eq!((got.model_served, got.route_reason), (None, None));
}

pub async fn duplicate_ids_in_one_batch_keep_the_last(store: Arc<dyn RequestLogStore>) {
    let first = full_record("req_dup", Some("t"), 1);
    let mut last = minimal_record("req_dup", 2);
    last.status = 500;
    store
        .write_batch(vec![first, last.clone()])
        .await
        .expect("write");
    assert_eq!(store.count().await.expect("count"), 1);
    assert_eq!(store.get("req_dup").await.expect("get"), Some(last));
}

/// Records for tenants `a` and `b` with interleaved start times, plus one without a tenant.
fn two_tenants() -> Vec<RequestRecord> {
    let mut records: Vec<RequestRecord> = (0..10)
        .map(|i| {
            let tenant = if i % 2 == 0 { "a" } else { "b" };
            full_record(&format!("req_{i:02}"), Some(tenant), 1_000 + i)
        })
        .collect();
    records.push(minimal_record("req_none", 500));
    // Write in an order unrelated to time.
    records.reverse();
    records.swap(0, 5);
    records
}

pub async fn recent_is_newest_first(store: Arc<dyn RequestLogStore>) {
    store.write_batch(two_tenants()).await.expect("write");
    let all = store.recent(None, 100).await.expect("recent");
    assert_eq!(all.len(), 11);
    let times: Vec<i64> = all.iter().map(|r| r.started_at_ms).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    assert_eq!(all[0].id, "req_09");
    assert_eq!(all[10].id, "req_none");
    assert_eq!(all[0].attempts.len(), 3, "recent() returns attempts too");

    let top3: Vec<String> = store
        .recent(None, 3)
        .await
        .expect("recent")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(top3, ["req_09", "req_08", "req_07"]);
    assert!(store.recent(None, 0).await.expect("recent").is_empty());
}

pub async fn recent_filters_by_tenant(store: Arc<dyn RequestLogStore>) {
    store.write_batch(two_tenants()).await.expect("write");
    let a = store.recent(Some("a"), 100).await.expect("recent a");
    let ids: Vec<&str> = a.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["req_08", "req_06", "req_04", "req_02", "req_00"]);
    assert!(
        a.iter().all(|r| r.tenant.as_deref() == Some("a")),
        "tenant a never sees b's rows"
    );

    let b = store.recent(Some("b"), 2).await.expect("recent b");
    let ids: Vec<&str> = b.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["req_09", "req_07"]);

    assert!(
        store
            .recent(Some("c"), 100)
            .await
            .expect("recent c")
            .is_empty()
    );
    assert_eq!(b[0], full_record("req_09", Some("b"), 1_009));
}

pub async fn count_counts_records(store: Arc<dyn RequestLogStore>) {
    assert_eq!(store.count().await.expect("count"), 0);
    store
        .write_batch(vec![minimal_record("req_1", 1)])
        .await
        .expect("write");
    assert_eq!(store.count().await.expect("count"), 1);
    store
        .write_batch(vec![minimal_record("req_2", 2), minimal_record("req_3", 3)])
        .await
        .expect("write");
    assert_eq!(store.count().await.expect("count"), 3);
}

pub async fn empty_batch_is_a_no_op(store: Arc<dyn RequestLogStore>) {
    store.write_batch(Vec::new()).await.expect("empty write");
    assert_eq!(store.count().await.expect("count"), 0);
}

pub async fn large_batch_in_one_call(store: Arc<dyn RequestLogStore>) {
    let batch: Vec<RequestRecord> = (0..2_000)
        .map(|i| full_record(&format!("req_{i:05}"), Some("bulk"), i))
        .collect();
    store.write_batch(batch.clone()).await.expect("write");
    assert_eq!(store.count().await.expect("count"), 2_000);
    assert_eq!(
        store.get("req_01234").await.expect("get").as_ref(),
        Some(&batch[1_234])
    );
}

pub async fn purge_deletes_the_oldest_before_the_cutoff(store: Arc<dyn RequestLogStore>) {
    store.write_batch(two_tenants()).await.expect("write");
    // Before 1_005: req_none (500) and req_00..req_04; bounded at 4, the oldest go first.
    assert_eq!(store.purge_before(1_005, 4).await.expect("purge"), 4);
    assert_eq!(store.count().await.expect("count"), 7);
    assert_eq!(store.get("req_none").await.expect("get"), None);
    assert_eq!(store.get("req_02").await.expect("get"), None);
    assert!(
        store.get("req_03").await.expect("get").is_some(),
        "past the limit: waits for the next call"
    );
    assert_eq!(store.purge_before(1_005, 4).await.expect("purge"), 2);
    assert_eq!(store.purge_before(1_005, 4).await.expect("purge"), 0);
    let ids: Vec<String> = store
        .recent(None, 100)
        .await
        .expect("recent")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["req_09", "req_08", "req_07", "req_06", "req_05"]);
    assert_eq!(
        store.get("req_05").await.expect("get"),
        Some(full_record("req_05", Some("b"), 1_005)),
        "the cutoff itself is kept, attempts and all"
    );
    // A purged id written again comes back with only its new attempts.
    let again = full_record("req_00", Some("a"), 2_000);
    store.write_batch(vec![again.clone()]).await.expect("write");
    assert_eq!(store.get("req_00").await.expect("get"), Some(again));
    assert_eq!(store.purge_before(i64::MAX, 1_000).await.expect("purge"), 6);
    assert_eq!(store.count().await.expect("count"), 0);
}
