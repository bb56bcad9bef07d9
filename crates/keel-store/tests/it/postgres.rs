//! Postgres backend: the conformance suites plus schema, migration, reconnect and NUL behaviour.
//! Fails when Postgres is unreachable unless `KEEL_SKIP_POSTGRES=1`.

use keel_store::{PostgresStore, RequestLogStore, StoreError, TraceStore};
use keel_types::trace::TraceQuery;

use crate::conformance::conformance_suite;
use crate::support::{PgSchema, full_record, postgres_store, postgres_url, skip_postgres};
use crate::trace_conformance::trace_conformance_suite;
use crate::trace_support::full_trace;

conformance_suite!(postgres_store().await);
trace_conformance_suite!(postgres_store().await);

fn with_application_name(url: &str, name: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}application_name={name}")
    } else {
        format!("{url} application_name={name}")
    }
}

/// A plain client for inspecting what the store wrote.
async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_keep_data() {
    let Some(fixture) = postgres_store().await else {
        return;
    };
    let schema = &fixture.schema;
    fixture
        .store
        .write_batch(vec![full_record("req_keep", None, 1)])
        .await
        .expect("write");

    let again = PostgresStore::connect(&schema.url, &schema.name)
        .await
        .expect("connect again");
    assert_eq!(again.schema(), schema.name);
    assert_eq!(
        again.get("req_keep").await.expect("get"),
        Some(full_record("req_keep", None, 1))
    );

    let client = raw_client(&schema.url).await;
    let sql = format!(
        "SELECT version FROM {}.schema_version ORDER BY version",
        schema.name
    );
    let versions: Vec<i64> = client
        .query(&sql, &[])
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=PostgresStore::SCHEMA_VERSION).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_takes_the_attempts_with_the_records() {
    let Some(fixture) = postgres_store().await else {
        return;
    };
    let records = (0..5)
        .map(|i| full_record(&format!("req_{i}"), Some("a"), i))
        .collect::<Vec<_>>();
    fixture.store.write_batch(records).await.expect("write");
    let client = raw_client(&fixture.schema.url).await;
    let sql = format!(
        "SELECT COUNT(*) FROM {}.request_attempts",
        fixture.schema.name
    );
    let attempts = || async {
        client
            .query_one(&sql, &[])
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    assert_eq!(attempts().await, 15);
    assert_eq!(fixture.store.purge_before(3, 100).await.expect("purge"), 3);
    assert_eq!(attempts().await, 6, "three attempts each for the two left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_migrate_once() {
    if skip_postgres() {
        return;
    }
    let schema = PgSchema::new();
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&schema.url, &schema.name),
        PostgresStore::connect(&schema.url, &schema.name),
        PostgresStore::connect(&schema.url, &schema.name),
    );
    for store in [a, b, c] {
        assert_eq!(store.expect("connect").count().await.expect("count"), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_backend_is_killed() {
    if skip_postgres() {
        return;
    }
    let schema = PgSchema::new();
    // A unique application_name identifies this store's session among parallel tests.
    let app = schema.name.clone();
    let url = with_application_name(&schema.url, &app);
    let store = PostgresStore::connect(&url, &schema.name)
        .await
        .expect("connect");
    store
        .write_batch(vec![full_record("req_before", None, 1)])
        .await
        .expect("write");

    let client = raw_client(&schema.url).await;
    let killed: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1) t",
            &[&app],
        )
        .await
        .expect("terminate")
        .get(0);
    assert!(killed >= 1, "the store's backend was found and killed");

    // The next calls reconnect by themselves.
    store
        .write_batch(vec![full_record("req_after", None, 2)])
        .await
        .expect("write after kill");
    assert_eq!(store.count().await.expect("count"), 2);
}

#[tokio::test]
async fn rejects_unsafe_schema_names() {
    for bad in [
        "",
        "Upper",
        "1abc",
        "a-b",
        "x; DROP TABLE y",
        &"a".repeat(64),
    ] {
        match PostgresStore::connect(&postgres_url(), bad).await {
            Err(StoreError::Config(_)) => {}
            other => panic!("schema {bad:?}: expected Config error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn errors_never_show_the_password() {
    // Nothing listens on port 1: the connect fails, and the message must not echo the URL.
    let url =
        "host=127.0.0.1 port=1 user=keel password=hunter2-secret dbname=test connect_timeout=2";
    let error = PostgresStore::connect(url, "keel")
        .await
        .expect_err("port 1 refuses");
    let shown = format!("{error} / {error:?}");
    assert!(!shown.contains("hunter2"), "password leaked: {shown}");
    assert!(
        error.is_retryable(),
        "a refused connection is transient: {error}"
    );

    let bad = "postgres://keel:hunter2-secret@127.0.0.1:notaport/test";
    let error = PostgresStore::connect(bad, "keel")
        .await
        .expect_err("invalid url");
    assert!(matches!(error, StoreError::Config(_)), "{error:?}");
    assert!(!format!("{error} / {error:?}").contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_strings_does_not_fail_the_batch() {
    let Some(fixture) = postgres_store().await else {
        return;
    };
    let mut record = full_record("req_nul", None, 1);
    record.error_message = Some("before\0after".to_owned());
    fixture
        .store
        .write_batch(vec![record])
        .await
        .expect("write");
    let got = fixture
        .store
        .get("req_nul")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.error_message.as_deref(), Some("before\u{FFFD}after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_a_version_1_schema_to_traces() {
    let Some(fixture) = postgres_store().await else {
        return;
    };
    let schema = &fixture.schema;
    fixture
        .store
        .write_batch(vec![full_record("req_old", None, 1)])
        .await
        .expect("write");
    // Back to schema version 1: no traces table, no routing columns.
    let client = raw_client(&schema.url).await;
    client
        .batch_execute(&format!(
            "DROP TABLE {0}.traces; ALTER TABLE {0}.request_log DROP COLUMN model_served, \
             DROP COLUMN route_reason; DELETE FROM {0}.schema_version WHERE version >= 2;",
            schema.name
        ))
        .await
        .expect("downgrade");

    let store = PostgresStore::connect(&schema.url, &schema.name)
        .await
        .expect("reconnect migrates");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_a_version_2_schema_to_routing_columns() {
    let Some(fixture) = postgres_store().await else {
        return;
    };
    let schema = &fixture.schema;
    fixture
        .store
        .write_batch(vec![full_record("req_old", None, 1)])
        .await
        .expect("write");
    // Back to schema version 2: no model_served or route_reason.
    let client = raw_client(&schema.url).await;
    client
        .batch_execute(&format!(
            "ALTER TABLE {0}.request_log DROP COLUMN model_served, DROP COLUMN route_reason; \
             DELETE FROM {0}.schema_version WHERE version = 3;",
            schema.name
        ))
        .await
        .expect("downgrade");

    let store = PostgresStore::connect(&schema.url, &schema.name)
        .await
        .expect("reconnect migrates");
    let old = store.get("req_old").await.expect("get").expect("kept");
    assert_eq!((old.model_served, old.route_reason), (None, None));
    let new = full_record("req_new", None, 2);
    store.write_batch(vec![new.clone()]).await.expect("write");
    assert_eq!(store.get("req_new").await.expect("get"), Some(new));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_trace_columns_does_not_fail_the_batch() {
    let Some(fixture) = postgres_store().await else {
        return;
    };
    let mut trace = full_trace("req_nul", Some("te\0nant"), 1);
    trace.route = Some("ro\0ute".to_owned());
    fixture
        .store
        .write_traces(vec![trace.clone()])
        .await
        .expect("write");
    // The same (NUL-carrying) tenant still finds it; text columns hold U+FFFD instead.
    let got = fixture
        .store
        .get_trace(Some("te\0nant"), "req_nul")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got.tenant.as_deref(), Some("te\u{FFFD}nant"));
    assert_eq!(got.route.as_deref(), Some("ro\u{FFFD}ute"));
    // Spans and content are JSON text, where NUL is escaped: they round-trip exactly.
    assert_eq!((got.spans, got.content), (trace.spans, trace.content));
    let mut q = TraceQuery {
        tenant: Some("te\0nant".to_owned()),
        route: Some("ro\0ute".to_owned()),
        limit: 10,
        ..TraceQuery::default()
    };
    let page = fixture.store.list_traces(&q).await.expect("list");
    assert_eq!(page.items.len(), 1);
    q.tenant = Some("te".to_owned());
    assert!(
        fixture
            .store
            .list_traces(&q)
            .await
            .expect("list")
            .items
            .is_empty()
    );
}
