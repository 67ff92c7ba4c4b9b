//! Factories of fresh backends for the behaviour suite and other tests: a SQLite file
//! in a temp dir, a throwaway Postgres schema, caches in front of them.

use std::sync::Arc;

use super::TestBackend;
use crate::cache::{CacheConfig, CachedStore};

/// The environment variable naming the Postgres server of the tests.
pub const POSTGRES_URL_VAR: &str = "PROMPT_REGISTRY_TEST_POSTGRES_URL";

/// A cache (default configuration) in front of a fresh memory store.
pub async fn cached_memory_backend() -> Option<TestBackend> {
    let s = Arc::new(crate::MemoryStore::new(crate::MemoryConfig::default()));
    let store = prompt_core::ValidatedStore::wrap(s.clone());
    Some(
        TestBackend::new(
            Arc::new(CachedStore::new(store, CacheConfig::default())),
            s.clone(),
        )
        .with_people(s.clone())
        .with_events(s),
    )
}

/// A fresh SQLite database file in a temp dir (deleted after the test).
#[cfg(feature = "sqlite")]
pub async fn sqlite_backend() -> Option<TestBackend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let s = crate::SqliteStore::open(crate::SqliteConfig::new(url))
        .await
        .expect("open SQLite");
    Some(
        TestBackend::with_guard(Arc::new(s.clone()), Arc::new(s.clone()), dir)
            .with_people(Arc::new(s.clone()))
            .with_events(Arc::new(s)),
    )
}

/// A fresh in-memory SQLite database (`sqlite::memory:`).
#[cfg(feature = "sqlite")]
pub async fn sqlite_memory_backend() -> Option<TestBackend> {
    let s = crate::SqliteStore::open(crate::SqliteConfig::new("sqlite::memory:"))
        .await
        .expect("open SQLite in memory");
    Some(
        TestBackend::new(Arc::new(s.clone()), Arc::new(s.clone()))
            .with_people(Arc::new(s.clone()))
            .with_events(Arc::new(s)),
    )
}

/// The Postgres URL of the tests, or `None` after printing that the test is skipped.
#[cfg(feature = "postgres")]
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED: {POSTGRES_URL_VAR} not set");
            // Once per test binary, past libtest's output capture, so that a skip is
            // visible in a normal `cargo test` run too.
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: {POSTGRES_URL_VAR} not set: the Postgres tests of this binary \
                     pass without running"
                );
            });
            None
        }
    }
}

/// A schema of its own on the test server, created empty and dropped (with
/// everything in it) when this is dropped. Each test gets one, so tests never see
/// each other's data — needed because `claim_pending` and `requeue_stale` work across
/// projects.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub struct PgTestSchema {
    url: String,
    name: String,
}

#[cfg(feature = "postgres")]
impl PgTestSchema {
    /// Create a fresh schema. Panics (fails the test) if the server cannot be reached:
    /// a configured but unreachable server is an error, not a skip.
    pub async fn create(url: &str) -> Self {
        use sqlx::Connection;
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
            panic!(
                "{POSTGRES_URL_VAR} is set but the server cannot be reached ({}): {e}",
                crate::redact_url(url)
            )
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .expect("create test schema");
        let _ = conn.close().await;
        PgTestSchema {
            url: url.to_owned(),
            name,
        }
    }

    /// The schema's name (also a valid notification channel name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A configuration working in this schema, with its own notification channel.
    pub fn config(&self) -> crate::PostgresConfig {
        let mut c = crate::PostgresConfig::new(&self.url);
        c.schema = Some(self.name.clone());
        c.notify_channel = self.name.clone();
        // Lets a test find (and terminate) this schema's connections.
        c.application_name = self.name.clone();
        c.max_connections = 8;
        c
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgTestSchema {
    fn drop(&mut self) {
        use sqlx::Connection;
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async work on a runtime of its
        // own in another thread, and wait for it.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                    if let Err(e) = r {
                        eprintln!("warning: could not drop test schema {name}: {e}");
                    }
                    let _ = conn.close().await;
                }
            });
        });
        let _ = done.join();
    }
}

/// A fresh Postgres backend in a schema of its own, or `None` (skipped) without a URL.
#[cfg(feature = "postgres")]
pub async fn postgres_backend() -> Option<TestBackend> {
    let url = postgres_url()?;
    let schema = PgTestSchema::create(&url).await;
    let s = crate::PostgresStore::open(schema.config())
        .await
        .expect("open Postgres");
    Some(
        TestBackend::with_guard(Arc::new(s.clone()), Arc::new(s.clone()), schema)
            .with_people(Arc::new(s.clone()))
            .with_events(Arc::new(s)),
    )
}

/// A cache listening for invalidations in front of a fresh Postgres backend.
#[cfg(feature = "postgres")]
pub async fn cached_postgres_backend() -> Option<TestBackend> {
    let url = postgres_url()?;
    let schema = PgTestSchema::create(&url).await;
    let s = crate::PostgresStore::open(schema.config())
        .await
        .expect("open Postgres");
    let cache =
        CachedStore::with_postgres_invalidation(Arc::new(s.clone()), CacheConfig::default(), &s);
    Some(
        TestBackend::with_guard(Arc::new(cache), Arc::new(s.clone()), schema)
            .with_people(Arc::new(s.clone()))
            .with_events(Arc::new(s)),
    )
}
