//! Database failures come back as our error kinds (transient ones as `Unavailable`, a
//! full or failing disk as `Storage`),
//! never as a panic; transient ones are retried where that is safe.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use prompt_core::{Error, NewVersion, PromptStore};
use prompt_store::testkit::{PgTestSchema, postgres_url};
use prompt_store::{
    PostgresConfig, PostgresStore, SqliteConfig, SqliteStore, parse_postgres_error,
    parse_sqlite_error,
};
use sqlx::{Connection, Executor};

fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(e @ Error::Unavailable { .. }) => {
            assert!(e.is_retryable());
            e.to_string()
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// ---- SQLite -------------------------------------------------------------------------

fn assert_storage<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(e @ Error::Storage { .. }) => {
            assert!(e.is_retryable());
            e.to_string()
        }
        other => panic!("expected Storage, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_disk_full_is_storage() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("full.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    c.execute("CREATE TABLE t (b BLOB)").await.unwrap();
    // A database that may not grow past a few pages: SQLITE_FULL, as on a full disk.
    c.execute("PRAGMA max_page_count = 8").await.unwrap();
    let e = sqlx::query("INSERT INTO t VALUES (zeroblob(1000000))")
        .execute(&mut c)
        .await
        .unwrap_err();
    let msg = assert_storage::<()>(Err(parse_sqlite_error(e)));
    assert!(msg.contains("full"), "{msg}");
}

#[tokio::test]
async fn sqlite_busy_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("busy.db").display());
    let mut a = sqlx::SqliteConnection::connect(&url).await.unwrap();
    a.execute("PRAGMA journal_mode = WAL").await.unwrap();
    a.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
    a.execute("BEGIN IMMEDIATE").await.unwrap();
    let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    let mut b = sqlx::SqliteConnection::connect_with(&opts.busy_timeout(Duration::ZERO))
        .await
        .unwrap();
    let e = b.execute("BEGIN IMMEDIATE").await.unwrap_err();
    let msg = assert_unavailable::<()>(Err(parse_sqlite_error(e)));
    assert!(msg.contains("locked"), "{msg}");
    a.execute("ROLLBACK").await.unwrap();
}

/// Another process holds the write lock for longer than the busy timeout: the write
/// is retried (nothing of it ran) and succeeds once the lock is released; held for
/// good, it fails with `Unavailable`, not a panic and not a driver error.
#[tokio::test]
async fn sqlite_write_lock_held_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let url = format!("sqlite://{}", path.display());
    let mut config = SqliteConfig::new(&url);
    config.busy_timeout_ms = 50;
    let s = SqliteStore::open(config).await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();

    other.execute("BEGIN IMMEDIATE").await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        other.execute("COMMIT").await.unwrap();
        other
    });
    s.create_project("patient").await.unwrap();
    let mut other = release.await.unwrap();

    other.execute("BEGIN IMMEDIATE").await.unwrap();
    let started = Instant::now();
    let msg = assert_unavailable(s.create_project("blocked").await);
    assert!(msg.contains("locked"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(5));
    other.execute("ROLLBACK").await.unwrap();
    s.create_project("blocked").await.unwrap();
}

#[tokio::test]
async fn sqlite_file_that_cannot_be_opened_is_unavailable() {
    let url = "sqlite:///nonexistent-directory-for-sure/x.db";
    assert_unavailable(SqliteStore::open(SqliteConfig::new(url)).await);
    assert_unavailable(prompt_store::open(url).await);
}

#[tokio::test]
async fn sqlite_bad_configuration_names_the_field() {
    let mut c = SqliteConfig::new("sqlite::memory:");
    c.max_connections = 0;
    match SqliteStore::open(c).await {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "max_connections"),
        other => panic!("{other:?}"),
    }
}

// ---- Postgres -----------------------------------------------------------------------

#[tokio::test]
async fn postgres_connection_refused_is_unavailable_without_the_password() {
    // Port 1 on localhost refuses connections; no server needed.
    let url = "postgres://postgres:hunter2@127.0.0.1:1/test";
    let mut c = PostgresConfig::new(url);
    c.acquire_timeout_ms = 500;
    let started = Instant::now();
    let msg = assert_unavailable(PostgresStore::open(c).await);
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let msg = assert_unavailable(prompt_store::open(url).await);
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn postgres_pool_timeout_is_unavailable() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let mut c = schema.config();
    c.max_connections = 1;
    c.acquire_timeout_ms = 200;
    let s = PostgresStore::open(c).await.unwrap();
    let held = s.pool().acquire().await.unwrap();
    match s.create_project("starved").await {
        Err(Error::Unavailable { retry_after, .. }) => assert!(retry_after.is_some()),
        other => panic!("{other:?}"),
    }
    drop(held);
    s.create_project("fed").await.unwrap();
    s.close().await;
}

#[tokio::test]
async fn postgres_serialization_failure_is_unavailable() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let s = PostgresStore::open(schema.config()).await.unwrap();
    let pool = s.pool();
    sqlx::query("CREATE TABLE skew (x int)")
        .execute(pool)
        .await
        .unwrap();
    let mut a = pool.begin().await.unwrap();
    let mut b = pool.begin().await.unwrap();
    for tx in [&mut a, &mut b] {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .execute(&mut **tx)
            .await
            .unwrap();
        sqlx::query("SELECT count(*) FROM skew")
            .execute(&mut **tx)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO skew VALUES (1)")
        .execute(&mut *a)
        .await
        .unwrap();
    sqlx::query("INSERT INTO skew VALUES (2)")
        .execute(&mut *b)
        .await
        .unwrap();
    a.commit().await.unwrap();
    let e = b.commit().await.unwrap_err();
    let mapped = parse_postgres_error(e);
    assert!(mapped.to_string().contains("serialization"), "{mapped}");
    assert_unavailable::<()>(Err(mapped));
    s.close().await;
}

/// Postgres' disk full (`53100`) and I/O error (`58030`) are `Storage`, like SQLite's
/// full disk; other insufficient resources stay `Unavailable`.
#[tokio::test]
async fn postgres_disk_full_and_io_errors_are_storage() {
    let Some(url) = postgres_url() else { return };
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let raise = |code: &'static str| {
        sqlx::AssertSqlSafe(format!(
            "DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{code}'; END $$"
        ))
    };
    for code in ["53100", "58030"] {
        let e = c.execute(raise(code)).await.unwrap_err();
        assert_storage::<()>(Err(parse_postgres_error(e)));
    }
    let e = c.execute(raise("53200")).await.unwrap_err();
    assert_unavailable::<()>(Err(parse_postgres_error(e)));
    c.close().await.unwrap();
}

/// The server ends the store's connections (a restart, an administrator): the next
/// calls work on fresh connections.
#[tokio::test]
async fn postgres_terminated_connections_are_replaced() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let mut c = schema.config();
    c.min_connections = 2;
    c.application_name = schema.name().to_owned();
    let s = PostgresStore::open(c).await.unwrap();
    let pid = s.ensure_project("p").await.unwrap().id;
    s.create_version(pid, "x", NewVersion::new("t"))
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(schema.name())
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        s.ping().await.unwrap();
        s.create_version(pid, "x", NewVersion::new("t"))
            .await
            .unwrap();
    }
    s.close().await;
}

/// Every run of `reg`, counted page by page.
async fn count_runs(reg: &prompt_core::Registry) -> usize {
    let mut q = prompt_core::RunQuery {
        page: prompt_core::PageRequest::first(500),
        ..Default::default()
    };
    let mut n = 0;
    loop {
        let p = reg.runs(&q).await.unwrap();
        n += p.items.len();
        match p.next_cursor {
            Some(c) => q.page.cursor = Some(c),
            None => return n,
        }
    }
}

fn big_run(i: usize) -> prompt_core::NewRun {
    let mut r = prompt_core::NewRun::with_status(prompt_core::RunStatus::Completed);
    r.output = Some(format!("{i}:{}", "x".repeat(4_000)));
    r
}

/// Issue 20: the disk holding the database fills up while runs are written. Every
/// write fails with `Storage` (not `Internal`: the writer connection must not be left
/// inside a transaction), and once space is freed writes succeed again without
/// reopening the store, with every run acknowledged before the fault still there.
#[tokio::test]
async fn sqlite_writes_recover_after_the_disk_was_full() {
    use prompt_store::testkit::{SmallDisk, TestBackend};
    let disk = SmallDisk::new();
    let store = SqliteStore::open(disk.config()).await.unwrap();
    let b = TestBackend::new(Arc::new(store.clone()), Arc::new(store.clone()));
    let reg = b.registry("disk").await;
    let mut acked = 0;
    for i in 0..20 {
        reg.log_run(big_run(i)).await.unwrap();
        acked += 1;
    }
    disk.fill().await;
    let mut failures = 0;
    for i in 0..2_000 {
        match reg.log_run(big_run(i)).await {
            Ok(_) => acked += 1,
            Err(Error::Storage { .. }) => {
                failures += 1;
                if failures == 5 {
                    break;
                }
            }
            Err(other) => {
                panic!("write {failures} after the disk filled up: expected Storage, got {other:?}")
            }
        }
    }
    assert_eq!(
        failures, 5,
        "the disk never filled up ({acked} runs written)"
    );
    disk.free().await;
    for i in 0..5 {
        reg.log_run(big_run(i))
            .await
            .unwrap_or_else(|e| panic!("write {i} after space was freed: {e:?}"));
        acked += 1;
    }
    assert_eq!(
        count_runs(&reg).await,
        acked,
        "acknowledged runs are all there"
    );
    store.close().await;
}
