//! `list_traces` conformance cases: tenant isolation, every filter, keyset pagination, limits.
//! Instantiated per backend by `trace_conformance_suite!`.

use std::collections::HashSet;
use std::sync::Arc;

use keel_store::{Store, TracePage};
use keel_types::trace::{TraceQuery, TraceRecord, TraceSummary};

use crate::trace_conformance::query;
use crate::trace_support::{full_trace, minimal_trace};

fn ids(page: &TracePage) -> Vec<&str> {
    page.items.iter().map(|s| s.request_id.as_str()).collect()
}

pub async fn trace_list_is_tenant_isolated(store: Arc<dyn Store>) {
    store
        .write_traces(vec![
            full_trace("req_a1", Some("a"), 1),
            full_trace("req_b1", Some("b"), 2),
            full_trace("req_a2", Some("a"), 3),
            full_trace("req_n1", None, 4),
            full_trace("req_e1", Some(""), 5),
        ])
        .await
        .expect("write");
    let list = |tenant: Option<&'static str>| {
        let store = store.clone();
        async move {
            let page = store.list_traces(&query(tenant, 100)).await.expect("list");
            assert_eq!(page.next, None);
            assert!(
                page.items.iter().all(|s| s.tenant.as_deref() == tenant),
                "only {tenant:?}'s traces"
            );
            ids(&page)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(Some("a")).await, ["req_a2", "req_a1"]);
    assert_eq!(list(Some("b")).await, ["req_b1"]);
    assert_eq!(list(None).await, ["req_n1"], "None matches only NULL");
    assert_eq!(list(Some("")).await, ["req_e1"], "\"\" is not NULL");
    assert!(list(Some("c")).await.is_empty());
    assert!(list(Some("A")).await.is_empty());
}

/// A trace of tenant `t` with `[route, model, error_class, policy_action]`, `status` and
/// `[trust_score, grounding_score]` as given.
fn row(
    id: &str,
    started: i64,
    text: [Option<&str>; 4],
    status: u16,
    scores: [Option<f64>; 2],
) -> TraceRecord {
    let [route, model, error_class, policy] = text.map(|v| v.map(str::to_owned));
    let mut t = full_trace(id, Some("t"), started);
    (t.route, t.model, t.error_class, t.policy_action) = (route, model, error_class, policy);
    t.status = status;
    [t.trust_score, t.grounding_score] = scores;
    t
}

/// Four traces of tenant `t` that differ in every filtered column, plus a trace of another
/// tenant (req_1's columns, inside every time window) that must never appear.
fn filter_rows() -> Vec<TraceRecord> {
    let mut other = row(
        "req_x",
        250,
        [Some("r1"), Some("m1"), None, Some("allow")],
        200,
        [Some(0.9), Some(0.8)],
    );
    other.tenant = Some("other".to_owned());
    vec![
        row(
            "req_1",
            100,
            [Some("r1"), Some("m1"), None, Some("allow")],
            200,
            [Some(0.9), Some(0.8)],
        ),
        row(
            "req_2",
            200,
            [Some("r2"), Some("m2"), Some("upstream"), Some("block")],
            502,
            [Some(0.3), Some(0.2)],
        ),
        row(
            "req_3",
            300,
            [None, None, Some("rate_limited"), None],
            429,
            [None, None],
        ),
        row(
            "req_4",
            400,
            [Some("r1"), Some("m2"), None, Some("redact")],
            200,
            [Some(0.5), Some(0.5)],
        ),
        other,
    ]
}

/// The ids (newest first) tenant `t` sees with `set` applied to an otherwise empty query.
async fn filtered(store: &Arc<dyn Store>, set: impl FnOnce(&mut TraceQuery)) -> Vec<String> {
    let mut q = query(Some("t"), 100);
    set(&mut q);
    let page = store.list_traces(&q).await.expect("list");
    assert_eq!(page.next, None);
    page.items.into_iter().map(|s| s.request_id).collect()
}

pub async fn trace_list_filters_individually(store: Arc<dyn Store>) {
    let rows = filter_rows();
    store.write_traces(rows.clone()).await.expect("write");
    let s = &store;
    let text = |v: &str| Some(v.to_owned());

    assert_eq!(
        filtered(s, |_| {}).await,
        ["req_4", "req_3", "req_2", "req_1"]
    );
    // since is inclusive, until exclusive.
    assert_eq!(
        filtered(s, |q| q.since_ms = Some(200)).await,
        ["req_4", "req_3", "req_2"]
    );
    assert_eq!(
        filtered(s, |q| q.until_ms = Some(300)).await,
        ["req_2", "req_1"]
    );
    let window = filtered(s, |q| {
        q.since_ms = Some(200);
        q.until_ms = Some(400);
    });
    assert_eq!(window.await, ["req_3", "req_2"]);
    assert_eq!(
        filtered(s, |q| q.route = text("r1")).await,
        ["req_4", "req_1"]
    );
    assert!(
        filtered(s, |q| q.route = text("r")).await.is_empty(),
        "exact, not prefix"
    );
    assert_eq!(
        filtered(s, |q| q.model = text("m2")).await,
        ["req_4", "req_2"]
    );
    assert_eq!(filtered(s, |q| q.status = Some(502)).await, ["req_2"]);
    assert_eq!(
        filtered(s, |q| q.status = Some(200)).await,
        ["req_4", "req_1"]
    );
    assert_eq!(
        filtered(s, |q| q.error_class = text("rate_limited")).await,
        ["req_3"]
    );
    assert_eq!(
        filtered(s, |q| q.policy_action = text("block")).await,
        ["req_2"]
    );
    assert_eq!(
        filtered(s, |q| q.min_trust = Some(0.5)).await,
        ["req_4", "req_1"]
    );
    assert_eq!(
        filtered(s, |q| q.max_trust = Some(0.5)).await,
        ["req_4", "req_2"]
    );
    assert_eq!(
        filtered(s, |q| q.min_grounding = Some(0.5)).await,
        ["req_4", "req_1"]
    );
    assert_eq!(
        filtered(s, |q| q.max_grounding = Some(0.2)).await,
        ["req_2"]
    );

    // Summaries carry every column.
    let page = store.list_traces(&query(Some("t"), 1)).await.expect("list");
    assert_eq!(page.items, vec![TraceSummary::from(&rows[3])]);
}

pub async fn trace_list_score_filters_exclude_null(store: Arc<dyn Store>) {
    store.write_traces(filter_rows()).await.expect("write");
    let s = &store;
    // Bounds wide enough for every score still never match an unset score (req_3).
    let all_trust = filtered(s, |q| {
        q.min_trust = Some(f64::MIN);
        q.max_trust = Some(f64::MAX);
    });
    assert_eq!(all_trust.await, ["req_4", "req_2", "req_1"]);
    assert_eq!(
        filtered(s, |q| q.max_grounding = Some(f64::MAX)).await,
        ["req_4", "req_2", "req_1"]
    );
    assert_eq!(
        filtered(s, |q| q.min_grounding = Some(0.0)).await,
        ["req_4", "req_2", "req_1"]
    );
    // Inclusive on both ends.
    let exact = filtered(s, |q| {
        q.min_trust = Some(0.5);
        q.max_trust = Some(0.5);
    });
    assert_eq!(exact.await, ["req_4"]);
    let empty = filtered(s, |q| {
        q.min_trust = Some(0.6);
        q.max_trust = Some(0.4);
    });
    assert!(empty.await.is_empty());
}

pub async fn trace_list_combined_filters(store: Arc<dyn Store>) {
    store.write_traces(filter_rows()).await.expect("write");
    let combined = filtered(&store, |q| {
        q.route = Some("r1".to_owned());
        q.status = Some(200);
        q.min_trust = Some(0.6);
        q.since_ms = Some(0);
    });
    assert_eq!(combined.await, ["req_1"]);
    let none = filtered(&store, |q| {
        q.model = Some("m1".to_owned());
        q.policy_action = Some("redact".to_owned());
    });
    assert!(none.await.is_empty());
}

/// Pages through `q` (with its limit) to the end; checks each page but the last is full.
async fn all_pages(store: &Arc<dyn Store>, mut q: TraceQuery) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let page = store.list_traces(&q).await.expect("list");
        let ids: Vec<String> = page.items.iter().map(|s| s.request_id.clone()).collect();
        if page.next.is_some() {
            let last = page.items.last().expect("a page with a cursor has items");
            assert_eq!(
                page.next,
                Some((last.started_at_ms, last.request_id.clone()))
            );
            assert_eq!(
                page.items.len(),
                q.limit as usize,
                "only the last page is short"
            );
        }
        pages.push(ids);
        match page.next {
            Some(after) => q.after = Some(after),
            None => return pages,
        }
        assert!(pages.len() <= 100, "pagination does not terminate");
    }
}

/// 25 traces of tenant `p` with many ties on `started_at_ms` (ids out of time order), plus
/// other tenants' traces interleaved. Returns tenant `p`'s ids in the expected order.
async fn paging_rows(store: &Arc<dyn Store>) -> Vec<String> {
    let mut rows: Vec<TraceRecord> = (0..25)
        .map(|i| {
            // Ids are a permutation of 0..25 so id order and time order disagree.
            let id = format!("req_{:02}", (i * 7) % 25);
            let mut t = minimal_trace(&id, Some("p"), 1_000 + i / 4);
            t.status = if i % 2 == 0 { 200 } else { 500 };
            t
        })
        .collect();
    for i in 0..10 {
        rows.push(minimal_trace(&format!("req_q{i}"), Some("q"), 1_000 + i));
        rows.push(minimal_trace(&format!("req_n{i}"), None, 1_000 + i));
    }
    rows.reverse();
    store.write_traces(rows.clone()).await.expect("write");
    let mut expected: Vec<(i64, String)> = rows
        .into_iter()
        .filter(|t| t.tenant.as_deref() == Some("p"))
        .map(|t| (t.started_at_ms, t.request_id))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    expected.into_iter().map(|(_, id)| id).collect()
}

pub async fn trace_pagination_covers_every_row_once(store: Arc<dyn Store>) {
    let expected = paging_rows(&store).await;
    assert_eq!(expected.len(), 25);
    let pages = all_pages(&store, query(Some("p"), 10)).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let flat: Vec<String> = pages.into_iter().flatten().collect();
    assert_eq!(
        flat.iter().collect::<HashSet<_>>().len(),
        25,
        "no duplicates"
    );
    assert_eq!(
        flat, expected,
        "newest first, ties by request_id desc, no gaps"
    );

    // Page size 1 walks the same order.
    let singles: Vec<String> = all_pages(&store, query(Some("p"), 1))
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(singles, expected);
}

pub async fn trace_pagination_with_filters_and_exact_pages(store: Arc<dyn Store>) {
    let expected = paging_rows(&store).await;
    // Exactly one full page: no cursor (the store looked one row ahead).
    let page = store
        .list_traces(&query(Some("p"), 25))
        .await
        .expect("list");
    assert_eq!((page.items.len(), page.next.clone()), (25, None));
    let page = store
        .list_traces(&query(Some("p"), 24))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 24);
    assert!(page.next.is_some());
    // 25 rows in pages of 5: five full pages, the last without a cursor.
    let pages = all_pages(&store, query(Some("p"), 5)).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [5; 5]);

    // Filters apply on every page: the 13 rows with status 200, in pages of 4.
    let mut q = query(Some("p"), 4);
    q.status = Some(200);
    let pages = all_pages(&store, q).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4, 1]);
    let flat: Vec<String> = pages.into_iter().flatten().collect();
    let ok: Vec<String> = expected
        .iter()
        .filter(|id| {
            let n: usize = id["req_".len()..].parse().expect("number");
            // Row i has id (7i mod 25); 7 * 18 = 126 ≡ 1 (mod 25) inverts it.
            ((n * 18) % 25).is_multiple_of(2)
        })
        .cloned()
        .collect();
    assert_eq!(flat, ok);

    // A cursor past the oldest row yields an empty last page.
    let mut q = query(Some("p"), 10);
    q.after = Some((i64::MIN, String::new()));
    let page = store.list_traces(&q).await.expect("list");
    assert_eq!(page, TracePage::default());
}

pub async fn trace_limit_is_clamped(store: Arc<dyn Store>) {
    let rows: Vec<TraceRecord> = (0..1_001)
        .map(|i| minimal_trace(&format!("req_{i:04}"), Some("big"), i))
        .collect();
    store.write_traces(rows).await.expect("write");
    let page = store
        .list_traces(&query(Some("big"), 0))
        .await
        .expect("list");
    assert_eq!(ids(&page), ["req_1000"], "limit 0 means 1");
    assert_eq!(page.next, Some((1_000, "req_1000".to_owned())));
    let page = store
        .list_traces(&query(Some("big"), 5_000))
        .await
        .expect("list");
    assert_eq!(page.items.len(), 1_000, "at most 1000 per page");
    assert_eq!(page.next, Some((1, "req_0001".to_owned())));
}
