//! Test fixtures: record builders, a temp SQLite store, and a throwaway Postgres schema.

use std::sync::Arc;

use keel_store::{AttemptRecord, PostgresStore, RequestRecord, SqliteStore};

/// A record with every field set and three attempts (one with `None` fields).
pub fn full_record(id: &str, tenant: Option<&str>, started_at_ms: i64) -> RequestRecord {
    RequestRecord {
        id: id.to_owned(),
        started_at_ms,
        tenant: tenant.map(str::to_owned),
        key_id: Some("key_01".to_owned()),
        endpoint: "chat.completions".to_owned(),
        model_requested: "gpt-4o-mini".to_owned(),
        route: Some("support".to_owned()),
        model_served: Some("local".to_owned()),
        route_reason: Some(
            "cascade: escalated primary trust 0.00 < 0.50 (refusal) -> local trust 1.00 «ok»"
                .to_owned(),
        ),
        stream: true,
        attempts: vec![
            AttemptRecord {
                model: "primary".to_owned(),
                provider: "openai".to_owned(),
                outcome: "status_503".to_owned(),
                http_status: Some(503),
                latency_ms: 12.25,
                error: Some("upstream unavailable: «busy» ✓".to_owned()),
            },
            AttemptRecord {
                model: "secondary".to_owned(),
                provider: "anthropic".to_owned(),
                outcome: "timeout".to_owned(),
                http_status: None,
                latency_ms: 30_000.5,
                error: None,
            },
            AttemptRecord {
                model: "local".to_owned(),
                provider: "local".to_owned(),
                outcome: "ok".to_owned(),
                http_status: Some(200),
                latency_ms: 0.125,
                error: None,
            },
        ],
        input_tokens: Some(u32::MAX),
        output_tokens: Some(42),
        cost_usd: Some(0.000_123_456_789),
        ttft_ms: Some(87.5),
        total_ms: 30_120.75,
        status: 200,
        error_class: Some("none".to_owned()),
        error_message: Some("multi\nline 'quoted' \"text\"".to_owned()),
    }
}

/// A record with every optional field `None` and no attempts.
pub fn minimal_record(id: &str, started_at_ms: i64) -> RequestRecord {
    RequestRecord {
        id: id.to_owned(),
        started_at_ms,
        tenant: None,
        key_id: None,
        endpoint: "embeddings".to_owned(),
        model_requested: "text-embedding-3-small".to_owned(),
        route: None,
        model_served: None,
        route_reason: None,
        stream: false,
        attempts: Vec::new(),
        input_tokens: None,
        output_tokens: None,
        cost_usd: None,
        ttft_ms: None,
        total_ms: 0.0,
        status: 429,
        error_class: None,
        error_message: None,
    }
}

/// A SQLite store in its own temp directory (removed on drop).
pub struct SqliteFixture {
    pub store: Arc<SqliteStore>,
    /// Keeps the directory alive for the fixture's lifetime.
    _dir: tempfile::TempDir,
}

pub fn sqlite_store() -> SqliteFixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("nested/dir/keel.db")).expect("open sqlite");
    SqliteFixture {
        store: Arc::new(store),
        _dir: dir,
    }
}

/// Where the Postgres tests connect: `KEEL_TEST_POSTGRES_URL`, else `KEEL_POSTGRES_URL`, else the
/// loopback trust-auth default.
pub fn postgres_url() -> String {
    std::env::var("KEEL_TEST_POSTGRES_URL")
        .or_else(|_| std::env::var("KEEL_POSTGRES_URL"))
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned())
}

/// `KEEL_SKIP_POSTGRES=1` skips the Postgres tests; otherwise an unreachable Postgres fails them.
pub fn skip_postgres() -> bool {
    if std::env::var("KEEL_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("KEEL_SKIP_POSTGRES=1: skipping Postgres test");
        return true;
    }
    false
}

/// A fresh, randomly named schema, dropped (CASCADE) when this guard drops, even if the test
/// panicked.
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    pub fn new() -> PgSchema {
        PgSchema {
            url: postgres_url(),
            name: format!("keel_test_{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                let driver = tokio::spawn(connection);
                client.batch_execute(&sql).await?;
                drop(client);
                let _ = driver.await;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("dropping schema {}: {error}", self.name),
            Err(_) => eprintln!("dropping schema {}: cleanup thread panicked", self.name),
        }
    }
}

/// A Postgres store in a fresh schema. `None` only when `KEEL_SKIP_POSTGRES=1`.
pub struct PostgresFixture {
    pub store: Arc<PostgresStore>,
    // Declared last: dropped after the store, so the schema goes once the store is closed.
    pub schema: PgSchema,
}

pub async fn postgres_store() -> Option<PostgresFixture> {
    if skip_postgres() {
        return None;
    }
    let schema = PgSchema::new();
    let store = PostgresStore::connect(&schema.url, &schema.name)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Postgres unreachable ({e}); set KEEL_SKIP_POSTGRES=1 to skip the Postgres tests"
            )
        });
    Some(PostgresFixture {
        store: Arc::new(store),
        schema,
    })
}
