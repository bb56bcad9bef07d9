//! Retention: request-log records older than `store.request_retention` and traces older than
//! `observe.trace_retention` are deleted once a minute (and once at start).
//!
//! Deletes go in batches of [`BATCH`] rows, oldest first, each its own short transaction: the
//! store's connection (one thread for SQLite, one connection for Postgres) is shared with the
//! writer, and a single `DELETE` over a long backlog (a first start after retention was
//! shortened, a store that was offline for a week) would hold it for as long as the delete
//! takes, with the writer's queue filling behind it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use keel_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Rows per delete.
pub const BATCH: u32 = 1_000;

/// What the retention task deletes: always the request log, traces when they are stored.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub requests: Duration,
    pub traces: Option<Duration>,
}

/// Starts the retention task on `tracker`; it stops at `stop` (also between batches).
pub fn spawn(
    tracker: &TaskTracker,
    store: Arc<dyn Store>,
    retention: Retention,
    stop: CancellationToken,
) {
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        // After a long backlog, the next purge a minute later, not a burst of missed ticks.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = now_ms();
            // A retention past i64 milliseconds (humantime takes "1000000y") keeps everything.
            let cutoff = |keep: Duration| {
                now.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
            };
            let requests = cutoff(retention.requests);
            report(
                "request log",
                purge_in_batches(|n| store.purge_before(requests, n), BATCH, &stop).await,
            );
            if let Some(keep) = retention.traces {
                let traces = cutoff(keep);
                report(
                    "traces",
                    purge_in_batches(|n| store.purge_traces_before(traces, n), BATCH, &stop).await,
                );
            }
        }
    });
}

/// Calls `purge(batch)` until a call deletes fewer than `batch` rows (or `stop`), yielding
/// between calls so the writer's batches interleave; returns how many rows went. On an error
/// the rows deleted so far stay deleted and the rest wait for the next minute.
pub async fn purge_in_batches<'a, F>(
    mut purge: F,
    batch: u32,
    stop: &CancellationToken,
) -> Result<u64, (u64, StoreError)>
where
    F: FnMut(u32) -> BoxFuture<'a, Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let n = purge(batch).await.map_err(|e| (total, e))?;
        total += n;
        if n < u64::from(batch) || stop.is_cancelled() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

fn report(what: &'static str, outcome: Result<u64, (u64, StoreError)>) {
    match outcome {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, what, "retention: deleted old rows"),
        Err((n, e)) => tracing::warn!(deleted = n, what, error = %e, "retention failed"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_store::{RequestLogStore, RequestRecord, SqliteStore, TraceStore};
    use keel_types::trace::{ContentMode, TraceContent, TraceId, TraceRecord};

    fn record(id: usize, started_at_ms: i64) -> RequestRecord {
        RequestRecord {
            id: format!("req_{id:05}"),
            started_at_ms,
            tenant: Some("t".into()),
            key_id: None,
            endpoint: "chat.completions".into(),
            model_requested: "m".into(),
            route: None,
            model_served: None,
            route_reason: None,
            stream: false,
            attempts: Vec::new(),
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
            ttft_ms: None,
            total_ms: 1.0,
            status: 200,
            error_class: None,
            error_message: None,
        }
    }

    fn trace(id: usize, started_at_ms: i64) -> TraceRecord {
        TraceRecord {
            request_id: format!("req_{id:05}"),
            trace_id: TraceId([1; 16]),
            started_at_ms,
            duration_ms: 1.0,
            tenant: Some("t".into()),
            endpoint: "chat.completions".into(),
            route: None,
            model: None,
            status: 200,
            error_class: None,
            input_tokens: None,
            output_tokens: None,
            trust_score: None,
            grounding_score: None,
            policy_action: None,
            content_mode: ContentMode::None,
            spans: Vec::new(),
            content: TraceContent::default(),
        }
    }

    fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("keel.db")).expect("open");
        (dir, Arc::new(store))
    }

    #[tokio::test]
    async fn a_backlog_goes_in_bounded_batches_and_the_cutoff_stays() {
        let (_dir, store) = store();
        let old = (0..2_500).map(|i| record(i, i as i64));
        let new = (2_500..2_510).map(|i| record(i, 10_000 + i as i64));
        store
            .write_batch(old.chain(new).collect())
            .await
            .expect("write");
        let mut calls = Vec::new();
        let deleted = purge_in_batches(
            |n| {
                calls.push(n);
                store.purge_before(10_000, n)
            },
            1_000,
            &CancellationToken::new(),
        )
        .await
        .expect("purge");
        assert_eq!(deleted, 2_500);
        assert_eq!(calls, [1_000, 1_000, 1_000], "2,500 rows in three calls");
        assert_eq!(store.count().await.expect("count"), 10);
        assert!(store.get("req_02500").await.expect("get").is_some());
    }

    #[tokio::test]
    async fn a_stop_ends_the_backlog_after_the_current_batch() {
        let (_dir, store) = store();
        store
            .write_batch((0..50).map(|i| record(i, i as i64)).collect())
            .await
            .expect("write");
        let stop = CancellationToken::new();
        stop.cancel();
        let deleted = purge_in_batches(|n| store.purge_before(1_000, n), 10, &stop)
            .await
            .expect("purge");
        assert_eq!(deleted, 10);
        assert_eq!(store.count().await.expect("count"), 40);
    }

    #[tokio::test]
    async fn the_task_deletes_old_requests_and_traces_at_start() {
        let (_dir, store) = store();
        let now = now_ms();
        let day = 24 * 3600 * 1000;
        store
            .write_batch(vec![record(1, now - 3 * day), record(2, now)])
            .await
            .expect("write");
        store
            .write_traces(vec![trace(1, now - 3 * day), trace(2, now - day / 2)])
            .await
            .expect("write traces");
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let retention = Retention {
            requests: Duration::from_secs(2 * 24 * 3600),
            traces: Some(Duration::from_secs(3600)),
        };
        spawn(&tracker, store.clone(), retention, stop.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.count_traces().await.expect("count") > 0 {
            assert!(tokio::time::Instant::now() < deadline, "traces not purged");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        assert_eq!(
            store.count().await.expect("count"),
            1,
            "the new record stays"
        );
        assert!(store.get("req_00002").await.expect("get").is_some());
    }

    #[tokio::test]
    async fn traces_are_left_alone_when_not_stored() {
        let (_dir, store) = store();
        let now = now_ms();
        store.write_batch(vec![record(1, 0)]).await.expect("write");
        store
            .write_traces(vec![trace(1, 0)])
            .await
            .expect("write traces");
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let retention = Retention {
            requests: Duration::from_millis((now / 2) as u64),
            traces: None,
        };
        spawn(&tracker, store.clone(), retention, stop.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.count().await.expect("count") > 0 {
            assert!(tokio::time::Instant::now() < deadline, "records not purged");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        tracker.close();
        tracker.wait().await;
        assert_eq!(store.count_traces().await.expect("count"), 1);
    }
}
