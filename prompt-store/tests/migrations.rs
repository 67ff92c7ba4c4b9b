//! Migrations: applied on open, twice is a no-op, a database newer than the binary is
//! refused, `run_migrations = false` refuses an out-of-date database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use prompt_core::{Error, PromptStore};
use prompt_store::testkit::{PgTestSchema, postgres_url};
use prompt_store::{PostgresStore, SqliteConfig, SqliteStore};
use sqlx::Connection;

/// The one migration this build has.
const INITIAL: i64 = 20261122000001;
/// The newest migration, and every migration in order.
const LATEST: i64 = 20261122000701;
const ALL: [i64; 2] = [INITIAL, LATEST];
/// A migration no build of this code has.
const FUTURE: i64 = 20991231000000;

fn conflict_message(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::Conflict { message }) => message,
        other => panic!("expected Conflict, got {other:?}"),
    }
}

async fn sqlite_count(url: &str) -> i64 {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_migrations_twice_are_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    s.ensure_project("kept").await.unwrap();
    let again = s.migrate().await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.current, Some(LATEST));
    s.close().await;
    let third = prompt_store::migrate(&url).await.unwrap();
    assert!(third.applied.is_empty());
    assert_eq!(sqlite_count(&url).await, ALL.len() as i64);
    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    s.project_by_name("kept").await.unwrap();
}

#[tokio::test]
async fn sqlite_out_of_date_database_needs_migrate_when_not_automatic() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let mut config = SqliteConfig::new(&url);
    config.run_migrations = false;
    let msg = conflict_message(SqliteStore::open(config.clone()).await);
    assert!(msg.contains("prompt-registry migrate"), "{msg}");
    let report = prompt_store::migrate(&url).await.unwrap();
    assert_eq!(report.applied, ALL.to_vec());
    assert_eq!(report.current, Some(LATEST));
    let s = SqliteStore::open(config).await.unwrap();
    s.ensure_project("ok").await.unwrap();
}

#[tokio::test]
async fn sqlite_database_of_a_newer_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    SqliteStore::open(SqliteConfig::new(&url))
        .await
        .unwrap()
        .close()
        .await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (?1, 'from the future', 1, x'00', 0)",
    )
    .bind(FUTURE)
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    for run_migrations in [true, false] {
        let mut config = SqliteConfig::new(&url);
        config.run_migrations = run_migrations;
        let msg = conflict_message(SqliteStore::open(config).await);
        assert!(msg.contains("newer version"), "{msg}");
        assert!(msg.contains(&FUTURE.to_string()), "{msg}");
    }
    let msg = conflict_message(prompt_store::migrate(&url).await);
    assert!(msg.contains("newer version"), "{msg}");
    assert_eq!(
        sqlite_count(&url).await,
        ALL.len() as i64 + 1,
        "nothing was changed"
    );
}

#[tokio::test]
async fn sqlite_modified_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    SqliteStore::open(SqliteConfig::new(&url))
        .await
        .unwrap()
        .close()
        .await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'0102'")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let msg = conflict_message(SqliteStore::open(SqliteConfig::new(&url)).await);
    assert!(msg.contains("differs"), "{msg}");
}

#[tokio::test]
async fn postgres_migrations_twice_are_a_no_op_and_newer_is_refused() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let mut config = schema.config();
    config.run_migrations = false;
    let msg = conflict_message(PostgresStore::open(config.clone()).await);
    assert!(msg.contains("prompt-registry migrate"), "{msg}");

    let s = PostgresStore::open(schema.config()).await.unwrap();
    s.ensure_project("kept").await.unwrap();
    let again = s.migrate().await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.current, Some(LATEST));
    // Through a URL naming the schema, like `prompt-registry migrate` would get it.
    let schema_url = format!(
        "{url}{}options=-c%20search_path%3D{}",
        if url.contains('?') { "&" } else { "?" },
        schema.name()
    );
    assert!(
        prompt_store::migrate(&schema_url)
            .await
            .unwrap()
            .applied
            .is_empty()
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(count, ALL.len() as i64);
    let s2 = PostgresStore::open(config.clone()).await.unwrap();
    s2.project_by_name("kept").await.unwrap();

    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from the future', true, '\\x00', 0)",
    )
    .bind(FUTURE)
    .execute(s.pool())
    .await
    .unwrap();
    for run_migrations in [true, false] {
        let mut c = schema.config();
        c.run_migrations = run_migrations;
        let msg = conflict_message(PostgresStore::open(c).await);
        assert!(msg.contains("newer version"), "{msg}");
        assert!(msg.contains(&FUTURE.to_string()), "{msg}");
    }
    s.close().await;
    s2.close().await;
}
