//! SQLite backend: the conformance suites plus file, pragma, migration and corrupt-row behaviour.

use keel_store::{RequestLogStore, SqliteStore, StoreError, TraceStore};
use keel_types::trace::TraceQuery;

use crate::conformance::conformance_suite;
use crate::support::{full_record, sqlite_store};
use crate::trace_conformance::trace_conformance_suite;
use crate::trace_support::full_trace;

conformance_suite!(Some(sqlite_store()));
trace_conformance_suite!(Some(sqlite_store()));

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open raw connection")
}

#[tokio::test]
async fn open_creates_parent_dirs_and_uses_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a/b/c/log.db");
    let store = SqliteStore::open(&path).expect("open");
    assert_eq!(store.path(), path);
    assert!(path.exists());
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn purge_takes_the_attempts_with_the_records() {
    let fixture = sqlite_store();
    let path = fixture.store.path().to_path_buf();
    let records = (0..5)
        .map(|i| full_record(&format!("req_{i}"), Some("a"), i))
        .collect::<Vec<_>>();
    fixture.store.write_batch(records).await.expect("write");
    let attempts = || -> i64 {
        raw(&path)
            .query_row("SELECT COUNT(*) FROM request_attempts", [], |r| r.get(0))
            .expect("count attempts")
    };
    assert_eq!(attempts(), 15);
    assert_eq!(fixture.store.purge_before(3, 100).await.expect("purge"), 3);
    assert_eq!(attempts(), 6, "three attempts each for the two left");
}

#[tokio::test]
async fn migrations_are_idempotent_and_keep_data() {
    let fixture = sqlite_store();
    let path = fixture.store.path().to_path_buf();
    fixture
        .store
        .write_batch(vec![full_record("req_keep", None, 1)])
        .await
        .expect("write");
    drop(fixture.store);

    let reopened = SqliteStore::open(&path).expect("reopen");
    let again = SqliteStore::open(&path).expect("open while another store is open");
    assert_eq!(reopened.count().await.expect("count"), 1);
    assert_eq!(
        again.get("req_keep").await.expect("get"),
        Some(full_record("req_keep", None, 1))
    );
    let versions: Vec<i64> = raw(&path)
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        versions,
        (1..=SqliteStore::SCHEMA_VERSION).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn refuses_a_newer_schema() {
    let fixture = sqlite_store();
    let path = fixture.store.path().to_path_buf();
    drop(fixture.store);
    raw(&path)
        .execute(
            "INSERT INTO schema_version (version, applied_at_ms) VALUES (999, 0)",
            [],
        )
        .expect("bump version");
    match SqliteStore::open(&path) {
        Err(StoreError::SchemaTooNew { found: 999, .. }) => {}
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn in_memory_store_works() {
    let store = SqliteStore::open_in_memory().expect("open");
    store
        .write_batch(vec![full_record("req_mem", None, 1)])
        .await
        .expect("write");
    assert_eq!(store.count().await.expect("count"), 1);
}

#[tokio::test]
async fn nul_in_strings_round_trips() {
    let fixture = sqlite_store();
    let mut record = full_record("req_nul", None, 1);
    record.error_message = Some("before\0after".to_owned());
    fixture
        .store
        .write_batch(vec![record.clone()])
        .await
        .expect("write");
    assert_eq!(
        fixture.store.get("req_nul").await.expect("get"),
        Some(record)
    );
}

#[tokio::test]
async fn upgrades_a_version_1_database_to_traces() {
    let fixture = sqlite_store();
    let path = fixture.store.path().to_path_buf();
    fixture
        .store
        .write_batch(vec![full_record("req_old", None, 1)])
        .await
        .expect("write");
    drop(fixture.store);
    // Back to schema version 1: no traces table, no routing columns.
    raw(&path)
        .execute_batch(
            "DROP TABLE traces; ALTER TABLE request_log DROP COLUMN model_served; \
             ALTER TABLE request_log DROP COLUMN route_reason; \
             DELETE FROM schema_version WHERE version >= 2;",
        )
        .expect("downgrade");

    let store = SqliteStore::open(&path).expect("reopen migrates");
    assert_eq!(store.count().await.expect("count"), 1);
    assert_eq!(store.count_traces().await.expect("count traces"), 0);
    let trace = full_trace("req_old", None, 1);
    store
        .write_traces(vec![trace.clone()])
        .await
        .expect("write trace");
    assert_eq!(
        store.get_trace(None, "req_old").await.expect("get"),
        Some(trace)
    );
}

#[tokio::test]
async fn upgrades_a_version_2_database_to_routing_columns() {
    let fixture = sqlite_store();
    let path = fixture.store.path().to_path_buf();
    fixture
        .store
        .write_batch(vec![full_record("req_old", None, 1)])
        .await
        .expect("write");
    drop(fixture.store);
    // Back to schema version 2: no model_served or route_reason.
    raw(&path)
        .execute_batch(
            "ALTER TABLE request_log DROP COLUMN model_served; \
             ALTER TABLE request_log DROP COLUMN route_reason; \
             DELETE FROM schema_version WHERE version = 3;",
        )
        .expect("downgrade");

    let store = SqliteStore::open(&path).expect("reopen migrates");
    let old = store.get("req_old").await.expect("get").expect("kept");
    assert_eq!((old.model_served, old.route_reason), (None, None));
    let new = full_record("req_new", None, 2);
    store.write_batch(vec![new.clone()]).await.expect("write");
    assert_eq!(store.get("req_new").await.expect("get"), Some(new));
}

#[tokio::test]
async fn corrupt_trace_rows_name_the_request() {
    let fixture = sqlite_store();
    let store = &fixture.store;
    store
        .write_traces(vec![
            full_trace("req_spans", None, 1),
            full_trace("req_mode", None, 2),
            full_trace("req_tid", None, 3),
        ])
        .await
        .expect("write");
    raw(store.path())
        .execute_batch(
            "UPDATE traces SET spans_json = '[{\"oops\": 1}]' WHERE request_id = 'req_spans';
             UPDATE traces SET content_mode = 'loud' WHERE request_id = 'req_mode';
             UPDATE traces SET trace_id = 'xyz' WHERE request_id = 'req_tid';",
        )
        .expect("corrupt");
    for id in ["req_spans", "req_mode", "req_tid"] {
        match store.get_trace(None, id).await {
            Err(StoreError::Corrupt { id: named, .. }) => assert_eq!(named, id),
            other => panic!("{id}: expected Corrupt, got {other:?}"),
        }
    }
    // A corrupt trace id also fails the listing that includes it.
    match store
        .list_traces(&TraceQuery {
            limit: 10,
            ..TraceQuery::default()
        })
        .await
    {
        Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, "req_tid"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// The connection thread writes behind requests, so it runs below their priority: at nice 10,
/// and in the idle scheduling class while it keeps up wherever the process may leave that
/// class again (root here).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_connection_thread_runs_at_background_priority() {
    use keel_store::background::{BACKGROUND_NICE, idle_class_available, threads_named};
    let fixture = sqlite_store();
    // Round trips until every connection thread is lowered and one reports the idle class:
    // other tests' threads may be between starting and lowering themselves, or catching up
    // after slow jobs, and on a loaded machine so may this one.
    let mut threads = Vec::new();
    for _ in 0..40 {
        // This fixture's thread has started (and lowered itself) before a round trip returns.
        fixture.store.count().await.expect("count");
        threads = threads_named("keel-sqlite");
        assert!(!threads.is_empty(), "no keel-sqlite thread found");
        let lowered = threads.iter().all(|t| t.nice >= BACKGROUND_NICE);
        let idle = threads.iter().any(|t| t.idle);
        if lowered && (idle || !idle_class_available()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for t in &threads {
        assert!(t.nice >= BACKGROUND_NICE, "keel-sqlite at nice {}", t.nice);
    }
    assert_eq!(
        threads.iter().any(|t| t.idle),
        idle_class_available(),
        "a connection thread is in the idle class exactly where it could leave it"
    );
}
