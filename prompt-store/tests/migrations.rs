//! Migrations: applied on open, twice is a no-op, a database newer than the binary is
//! refused, `run_migrations = false` refuses an out-of-date database; every migration
//! is reversible (up → down → up gives the same schema), keeps the checksum databases
//! of earlier builds recorded, and `revert` refuses bad counts before changing anything.
//!
//! One file over 600 lines: the SQLite and Postgres cases of each migration behaviour
//! sit side by side, sharing the schema-dump helpers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use prompt_core::{Error, PromptStore};
use prompt_store::testkit::{PgTestSchema, postgres_url};
use prompt_store::{PostgresStore, RevertReport, RevertedMigration, SqliteConfig, SqliteStore};
use sqlx::Connection;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// The first migration.
const INITIAL: i64 = 20261122000001;
/// The provider credentials migration.
const CREDENTIALS: i64 = 20261122000701;
/// The people migration (organizations, users, memberships).
const PEOPLE: i64 = 20261206000001;
/// The events migration (the change log, its per-project heads, webhooks and their
/// deliveries).
const EVENTS: i64 = 20261207000001;
/// The lifecycle migration (deleted versions, per-project protected labels).
const LIFECYCLE: i64 = 20261208000001;
/// The run lease migration (attempts and heartbeats of runs).
const RUN_LEASE: i64 = 20261209000001;
/// The composition migration (the resolution graph of runs).
const COMPOSE: i64 = 20261210000001;
/// The release splits migration (a label's weighted versions; the split of a run).
const SPLITS: i64 = 20261211000001;
/// The retention migration (projects' run retention; on Postgres, the run log
/// partitioned by month).
const RETENTION: i64 = 20261212000001;
/// The idempotency keys migration (the keys of idempotent writes and their answers).
const IDEMPOTENCY: i64 = 20261213000001;
/// The include index migration (which versions hold include tags).
const INCLUDES: i64 = 20261214000001;
/// The partial runs-by-user index migration (only runs naming a user indexed).
const RUNS_BY_USER: i64 = 20261215000001;
/// Every migration in order, with the description sqlx takes from its file name.
const MIGRATIONS: [(i64, &str); 12] = [
    (INITIAL, "initial"),
    (CREDENTIALS, "provider credentials"),
    (PEOPLE, "people"),
    (EVENTS, "events"),
    (LIFECYCLE, "lifecycle"),
    (RUN_LEASE, "run lease"),
    (COMPOSE, "compose"),
    (SPLITS, "release splits"),
    (RETENTION, "retention"),
    (IDEMPOTENCY, "idempotency keys"),
    (INCLUDES, "include index"),
    (RUNS_BY_USER, "runs by user partial"),
];
/// The newest migration.
const LATEST: i64 = RUNS_BY_USER;

/// Every migration's version, in order.
fn all() -> Vec<i64> {
    MIGRATIONS.iter().map(|(v, _)| *v).collect()
}

/// How many migrations there are.
fn all_count() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap()
}

/// The migrations from `oldest` to the newest, in order.
fn since(oldest: i64) -> &'static [(i64, &'static str)] {
    let at = MIGRATIONS.iter().position(|(v, _)| *v == oldest).unwrap();
    &MIGRATIONS[at..]
}

/// The versions a migrate applies on a database reverted to just before `oldest`.
fn applied_since(oldest: i64) -> Vec<i64> {
    since(oldest).iter().map(|(v, _)| *v).collect()
}

/// How many migrations a revert down to (and including) `oldest` reverts.
fn count_since(oldest: i64) -> u32 {
    u32::try_from(since(oldest).len()).unwrap()
}

/// What a revert down to (and including) `oldest` reports: newest first.
fn reverted_since(oldest: i64) -> Vec<RevertedMigration> {
    let mut v: Vec<_> = since(oldest).to_vec();
    v.reverse();
    reverted(&v)
}

/// The tables the lifecycle migration creates.
const LIFECYCLE_TABLES: [&str; 2] = ["protected_labels", "protected_label_seeds"];
/// The tables the events migration creates.
const EVENT_TABLES: [&str; 4] = ["event_heads", "events", "webhooks", "webhook_deliveries"];
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
    assert_eq!(sqlite_count(&url).await, MIGRATIONS.len() as i64);
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
    assert_eq!(report.applied, all());
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
        MIGRATIONS.len() as i64 + 1,
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
    assert_eq!(count, MIGRATIONS.len() as i64);
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

// -- reversible migrations ----------------------------------------------------------

/// The SHA-384 checksums that databases migrated by earlier builds (which had simple
/// `<version>_<name>.sql` files) recorded in `_sqlx_migrations`. Turning a migration into
/// an `.up.sql`/`.down.sql` pair keeps sqlx's checksum (of the SQL text) and description
/// (the name without `.up.sql`), so those databases stay accepted as long as the up
/// scripts are byte for byte what those builds ran. The newest is pinned as well: once
/// a build has run it, its up script is fixed too.
const SQLITE_CHECKSUMS: [(i64, &str); 12] = [
    (
        INITIAL,
        "25e1e0fd536b8d5000a607a46eec84083a5b4b1a35fc71d2c8c3007c56ce3e8fe2f10b565609dd1b6944013798bbacd8",
    ),
    (
        CREDENTIALS,
        "5fea846c9e87de2f9f4f84dc4772e7cdb6286b9c1981bd7a148bdc7c706cd88eb2a9acb7f6732c8ab20a7d1b3ab4a89d",
    ),
    (
        PEOPLE,
        "a2c4bdee23fe866fddedebba596445a8d522fad9ae1b837ac8e03c0de37116e2f3e3eb8495fc7e2ac15f66ceaaa33f54",
    ),
    (
        EVENTS,
        "9d3c595b3d832b5a4251cefa603b08d88a2b6c5b8764346ec3d2a364165e31cd28cae26b1e5960c1ce590bc8bf5c264d",
    ),
    (
        LIFECYCLE,
        "6821a8f54c7f3fa1951172c3d77b658a3b20f03d85ccc4f8a23aeb1acbe0aef37682a6ced133b31e4b4e5642cabfe5b1",
    ),
    (
        RUN_LEASE,
        "cf04345a9d689b635214b7d99cf59843bdff57ded53f54bfe48ddd1f76aa677a9fea02b08ae075a1bf2b64c2ce5f7843",
    ),
    (
        COMPOSE,
        "ff3b93ed1bc53554059a6e20f1d4c2a2ad247aeba9b8b78c47b37e50467dcf1d8886fb7706bb3b13ffacaaa9ad9cc172",
    ),
    (
        SPLITS,
        "b97bb77ab1c34c47e5a41d3e1ce008bf53d670a3423fbf1c1c670c181408cb13f4986042396e644404e8a5ea1d1a0467",
    ),
    (
        RETENTION,
        "9364d21832daa7b1bd70ba86a328a412151a234be691b67f43aba5535b552b166d250053ed76944eff4363807ab389de",
    ),
    (
        IDEMPOTENCY,
        "1cc4758e31cf51a4eaec124caccc38331226a94c8286a734bc28386ad242c868fde1c3bf7777aaa3d711973ba20d485d",
    ),
    (
        INCLUDES,
        "99231ddca384489c5bae9bf2b8c5d21a0a103110a5bd20e9dceeebce40ea27c91211cbb6c4e45feb1c31371d8a8e8a9b",
    ),
    (
        RUNS_BY_USER,
        "7648e0dec8a758ccb3156046e96b8be42de2df6b9793e76da17264e5876c192a4e2ec8bc7855867625546a7e84611572",
    ),
];
const POSTGRES_CHECKSUMS: [(i64, &str); 12] = [
    (
        INITIAL,
        "2b892ecf75b47b8f69ad34f1d1006c2a14ad6fae106cea6b69d154ed41338b54d5c343b66779ca20feb65a87b1f485ff",
    ),
    (
        CREDENTIALS,
        "ed47e601629b8eeff968afac805278b141efcae43ab6dda7cc93b87d7431f2cb930b13e06b50c1ecf56a8237869ced4c",
    ),
    (
        PEOPLE,
        "b192a82348b5ec591d1b429501cc509938457da0ec77f36e174ee4234f96bd87c287dbe8aa56888e71e34d437fcc6f4f",
    ),
    (
        EVENTS,
        "5255df6961f2304d3b33b5ec617a004fe74ab292a86b5868b3298dfb0ff2d3068e963741bbb4047660a00b58a416ceda",
    ),
    (
        LIFECYCLE,
        "dbdb63ea9df26a845772d33148eee1e1fceb0c2443daf0af4c8064ed5d9f69e1761920915fd7daeddbb47a77b7f7bd10",
    ),
    (
        RUN_LEASE,
        "0f98d4a00fd5c44856743b2e75af45dc4969537507689c40c2af72584b8f15e3b956cf13d6afec42c7273379324ff6d9",
    ),
    (
        COMPOSE,
        "6be30c96b2f0e983a7715c507479ac11829104709523c595e67ff5458f1ef265326936c43348bd3adf5bd41100d34e5b",
    ),
    (
        SPLITS,
        "969390af3432ae1c6bd2a3857dd508fd2590e34eb4a7750f72b6e08005653af36608245632ff2e0edb5a32ab818241c2",
    ),
    (
        RETENTION,
        "89a8720417bf43bc611321c55cc7b57fbbf79b313cb9ea1ae7639b9f7e0a8eeb6b43500d110c7cdc66d0bdf99e718c60",
    ),
    (
        IDEMPOTENCY,
        "b0ff77e6d23168729ec698a60c1d8aa92199173e003947a4246cfc43b7bd0aeb9157d5edce10532cf43d71121efcc42e",
    ),
    (
        INCLUDES,
        "ada65255dd8479e764fb89128f452577e511f15ada30dd21ae2b9b44faf19a3dd5ce28537dc34b82c32dfd5c3017dec8",
    ),
    (
        RUNS_BY_USER,
        "7648e0dec8a758ccb3156046e96b8be42de2df6b9793e76da17264e5876c192a4e2ec8bc7855867625546a7e84611572",
    ),
];

/// The migrations as the store embeds them.
static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn reverted(versions: &[(i64, &str)]) -> Vec<RevertedMigration> {
    versions
        .iter()
        .map(|(version, description)| RevertedMigration {
            version: *version,
            description: (*description).to_owned(),
        })
        .collect()
}

fn invalid_count(r: Result<RevertReport, Error>) -> String {
    match r {
        Err(Error::InvalidInput { field, message }) if field == "count" => message,
        other => panic!("expected InvalidInput on count, got {other:?}"),
    }
}

#[test]
fn every_migration_has_a_down_script_and_keeps_its_checksum() {
    for (migrator, checksums) in [(&SQLITE, SQLITE_CHECKSUMS), (&POSTGRES, POSTGRES_CHECKSUMS)] {
        let ups: Vec<&Migration> = migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .collect();
        assert_eq!(ups.iter().map(|m| m.version).collect::<Vec<_>>(), all());
        for up in ups {
            assert_eq!(
                up.migration_type,
                MigrationType::ReversibleUp,
                "migration {} must be an .up.sql/.down.sql pair",
                up.version
            );
            assert!(
                migrator
                    .iter()
                    .any(|m| m.version == up.version && m.migration_type.is_down_migration()),
                "migration {} has no .down.sql",
                up.version
            );
        }
        for (version, sum) in checksums {
            let up = migrator
                .iter()
                .find(|m| m.version == version && m.migration_type.is_up_migration())
                .unwrap();
            assert_eq!(
                hex(&up.checksum),
                sum,
                "the up script of {version} changed: databases migrated by earlier builds \
                 would be refused; add a new migration instead"
            );
        }
    }
}

/// The schema of a SQLite file, without the migration table: one line per table and
/// index, with its SQL.
async fn sqlite_schema(url: &str) -> Vec<String> {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT type, name, tbl_name, sql FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' AND tbl_name <> '_sqlx_migrations' \
         ORDER BY type, name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    rows.into_iter()
        .map(|(ty, name, table, sql)| {
            format!("{ty} {name} on {table}: {}", sql.unwrap_or_default())
        })
        .collect()
}

/// Whether a schema from [`sqlite_schema`] has the table.
fn sqlite_has_table(schema: &[String], table: &str) -> bool {
    let line = format!("table {table} on {table}: ");
    schema.iter().any(|l| l.starts_with(&line))
}

async fn sqlite_scalar(url: &str, sql: &'static str) -> i64 {
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
    c.close().await.unwrap();
    n
}

fn sqlite_url(dir: &tempfile::TempDir, file: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join(file).display())
}

#[tokio::test]
async fn sqlite_up_down_up_gives_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    // The schemas at the credentials and the people migrations, made by running the up
    // scripts to them.
    let before_url = sqlite_url(&dir, "before.db");
    let pool = sqlx::SqlitePool::connect(&before_url).await.unwrap();
    SQLITE.run_to(CREDENTIALS, &pool).await.unwrap();
    let at_credentials = sqlite_schema(&before_url).await;
    SQLITE.run_to(PEOPLE, &pool).await.unwrap();
    let at_people = sqlite_schema(&before_url).await;
    SQLITE.run_to(EVENTS, &pool).await.unwrap();
    let at_events = sqlite_schema(&before_url).await;
    SQLITE.run_to(LIFECYCLE, &pool).await.unwrap();
    let at_lifecycle = sqlite_schema(&before_url).await;
    SQLITE.run_to(RUN_LEASE, &pool).await.unwrap();
    pool.close().await;
    let at_run_lease = sqlite_schema(&before_url).await;
    assert!(at_credentials.iter().any(|l| l.contains("TABLE projects")));
    assert!(at_people.iter().any(|l| l.contains("TABLE organizations")));
    assert_ne!(at_people, at_credentials);
    for table in EVENT_TABLES {
        assert!(
            !sqlite_has_table(&at_people, table),
            "{table}: {at_people:?}"
        );
    }

    let url = sqlite_url(&dir, "m.db");
    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    s.ensure_project("kept").await.unwrap();
    s.close().await;
    let latest = sqlite_schema(&url).await;
    assert!(latest.iter().any(|l| l.contains("TABLE organizations")));
    for table in EVENT_TABLES {
        assert!(sqlite_has_table(&latest, table), "{table}: {latest:?}");
    }
    assert_ne!(latest, at_people);
    for table in LIFECYCLE_TABLES {
        assert!(sqlite_has_table(&latest, table), "{table}: {latest:?}");
    }

    // Down to the run lease schema, then one more: the schema of the lifecycle
    // migration, without the lease columns of runs.
    let report = prompt_store::revert(&url, count_since(COMPOSE))
        .await
        .unwrap();
    assert_eq!(report.reverted, reverted_since(COMPOSE));
    assert_eq!(report.current, Some(RUN_LEASE));
    assert_eq!(sqlite_schema(&url).await, at_run_lease);
    let report = prompt_store::revert(&url, 1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(RUN_LEASE, "run lease")]));
    assert_eq!(report.current, Some(LIFECYCLE));
    assert_eq!(sqlite_schema(&url).await, at_lifecycle);

    // Down one more: the schema of the events migration, without the lifecycle tables
    // and columns; the data of its tables is kept.
    let report = prompt_store::revert(&url, 1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(LIFECYCLE, "lifecycle")]));
    assert_eq!(report.current, Some(EVENTS));
    assert_eq!(sqlite_schema(&url).await, at_events);
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM projects").await,
        1
    );

    // Down one more: the schema of the people migration, without the events tables;
    // the data of its tables is kept.
    let report = prompt_store::revert(&url, 1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(EVENTS, "events")]));
    assert_eq!(report.current, Some(PEOPLE));
    let after_events = sqlite_schema(&url).await;
    for table in EVENT_TABLES {
        assert!(
            !sqlite_has_table(&after_events, table),
            "{table}: {after_events:?}"
        );
    }
    assert_eq!(after_events, at_people);
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM projects").await,
        1
    );
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM _sqlx_migrations").await,
        3
    );

    // Down one more: the schema of the credentials migration; the data of its tables
    // is kept.
    let report = prompt_store::revert(&url, 1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(PEOPLE, "people")]));
    assert_eq!(report.current, Some(CREDENTIALS));
    assert_eq!(sqlite_schema(&url).await, at_credentials);
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM projects").await,
        1
    );
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM _sqlx_migrations").await,
        2
    );

    // Down the other two: nothing but the migration table is left.
    let report = prompt_store::revert(&url, 2).await.unwrap();
    assert_eq!(
        report.reverted,
        reverted(&[(CREDENTIALS, "provider credentials"), (INITIAL, "initial")])
    );
    assert_eq!(report.current, None);
    assert_eq!(sqlite_schema(&url).await, Vec::<String>::new());
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM _sqlx_migrations").await,
        0
    );

    // Up again: the same schema as before.
    let report = prompt_store::migrate(&url).await.unwrap();
    assert_eq!(report.applied, all());
    assert_eq!(sqlite_schema(&url).await, latest);

    // All at once, newest first, and up again through an open.
    let report = prompt_store::revert(&url, all_count()).await.unwrap();
    assert_eq!(report.reverted, reverted_since(INITIAL));
    assert_eq!(sqlite_schema(&url).await, Vec::<String>::new());
    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    s.ensure_project("again").await.unwrap();
    s.close().await;
    assert_eq!(sqlite_schema(&url).await, latest);
}

#[tokio::test]
async fn sqlite_revert_refuses_bad_counts_before_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "m.db");
    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    let latest = sqlite_schema(&url).await;

    let msg = invalid_count(s.revert(0).await);
    assert!(msg.contains("at least 1"), "{msg}");
    let msg = invalid_count(s.revert(all_count() + 1).await);
    assert!(
        msg.contains(&format!("cannot revert {} migrations", all_count() + 1)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("only {} applied", all_count())),
        "{msg}"
    );
    assert!(
        msg.contains(
            &MIGRATIONS
                .iter()
                .map(|(v, d)| format!("{v} ({d})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "{msg}"
    );
    let msg = invalid_count(prompt_store::revert(&url, u32::MAX).await);
    assert!(
        msg.contains(&format!("only {} applied", all_count())),
        "{msg}"
    );
    assert_eq!(sqlite_schema(&url).await, latest, "nothing was reverted");
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM _sqlx_migrations").await,
        i64::from(all_count())
    );

    s.revert(all_count()).await.unwrap();
    let msg = invalid_count(s.revert(1).await);
    assert!(msg.contains("none applied"), "{msg}");
    s.close().await;

    // A database migrated by a newer binary: refused, untouched.
    prompt_store::migrate(&url).await.unwrap();
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
    let msg = conflict_message(prompt_store::revert(&url, 1).await);
    assert!(msg.contains("newer version"), "{msg}");
    assert_eq!(sqlite_schema(&url).await, latest);
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM _sqlx_migrations").await,
        MIGRATIONS.len() as i64 + 1
    );

    match prompt_store::revert("memory://", 1).await {
        Err(Error::Unsupported { .. }) => {}
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

/// The migrations as builds before reversible migrations had them: simple migrations
/// with the same SQL (the checksum test above pins it), so the same checksums and
/// descriptions in `_sqlx_migrations`.
fn earlier_build(migrator: &Migrator) -> Migrator {
    let mut simple = Migrator::with_migrations(
        migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| {
                Migration::new(
                    m.version,
                    m.description.clone(),
                    MigrationType::Simple,
                    m.sql.clone(),
                    m.no_tx,
                )
            })
            .collect(),
    );
    simple.set_locking(true);
    simple
}

#[tokio::test]
async fn sqlite_database_of_an_earlier_build_is_accepted_and_revertible() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "old.db");
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    earlier_build(&SQLITE).run(&pool).await.unwrap();
    pool.close().await;
    let latest = sqlite_schema(&url).await;

    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    assert!(s.migrate().await.unwrap().applied.is_empty());
    s.ensure_project("kept").await.unwrap();
    s.close().await;
    let mut config = SqliteConfig::new(&url);
    config.run_migrations = false;
    SqliteStore::open(config).await.unwrap().close().await;

    let report = prompt_store::revert(&url, count_since(PEOPLE))
        .await
        .unwrap();
    assert_eq!(report.reverted, reverted_since(PEOPLE));
    assert_eq!(report.current, Some(CREDENTIALS));
    assert_eq!(
        prompt_store::migrate(&url).await.unwrap().applied,
        applied_since(PEOPLE)
    );
    assert_eq!(sqlite_schema(&url).await, latest);
}

/// The schema of a Postgres schema, without the migration table: relations, columns,
/// indexes and constraints, with the schema's name replaced so that two schemas compare.
async fn postgres_schema(pool: &sqlx::PgPool, schema: &str) -> Vec<String> {
    let queries = [
        "SELECT 'relation ' || relname::text || ' ' || relkind::text FROM pg_class \
         WHERE relnamespace = $1::text::regnamespace AND relname NOT LIKE '\\_sqlx\\_migrations%'",
        // The rank of the column, not its number: a column dropped by a revert leaves
        // a gap in the numbers of the columns added after it by a new up.
        "SELECT 'column ' || table_name || '.' || column_name || ' #' \
         || rank() OVER (PARTITION BY table_name ORDER BY ordinal_position) || ' ' \
         || data_type || ' ' || udt_name || ' null=' || is_nullable || ' default=' \
         || coalesce(column_default, '-') || ' collate=' || coalesce(collation_name, '-') \
         FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name <> '_sqlx_migrations'",
        "SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes \
         WHERE schemaname = $1 AND tablename <> '_sqlx_migrations'",
        "SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE connamespace = $1::text::regnamespace AND conname NOT LIKE '\\_sqlx\\_migrations%'",
    ];
    let mut lines = Vec::new();
    for q in queries {
        let rows: Vec<String> = sqlx::query_scalar(q)
            .bind(schema)
            .fetch_all(pool)
            .await
            .unwrap();
        lines.extend(rows.into_iter().map(|l| l.replace(schema, "<schema>")));
    }
    lines.sort();
    lines
}

/// Whether a schema from [`postgres_schema`] has the table.
fn postgres_has_table(schema: &[String], table: &str) -> bool {
    schema.contains(&format!("relation {table} r"))
}

fn schema_url(url: &str, schema: &str) -> String {
    format!(
        "{url}{}options=-c%20search_path%3D{schema}",
        if url.contains('?') { "&" } else { "?" },
    )
}

#[tokio::test]
async fn postgres_up_down_up_gives_the_same_schema() {
    let Some(url) = postgres_url() else { return };
    // The schemas at the credentials and the people migrations, in a schema of their
    // own.
    let initial = PgTestSchema::create(&url).await;
    let pool = sqlx::PgPool::connect(&schema_url(&url, initial.name()))
        .await
        .unwrap();
    POSTGRES.run_to(CREDENTIALS, &pool).await.unwrap();
    let at_credentials = postgres_schema(&pool, initial.name()).await;
    POSTGRES.run_to(PEOPLE, &pool).await.unwrap();
    let at_people = postgres_schema(&pool, initial.name()).await;
    POSTGRES.run_to(EVENTS, &pool).await.unwrap();
    let at_events = postgres_schema(&pool, initial.name()).await;
    POSTGRES.run_to(LIFECYCLE, &pool).await.unwrap();
    let at_lifecycle = postgres_schema(&pool, initial.name()).await;
    POSTGRES.run_to(RUN_LEASE, &pool).await.unwrap();
    let at_run_lease = postgres_schema(&pool, initial.name()).await;
    pool.close().await;
    assert!(
        at_credentials
            .iter()
            .any(|l| l.starts_with("relation projects"))
    );
    assert!(
        at_people
            .iter()
            .any(|l| l.starts_with("relation organizations"))
    );
    assert_ne!(at_people, at_credentials);
    for table in EVENT_TABLES {
        assert!(!postgres_has_table(&at_people, table), "{table}");
    }

    let schema = PgTestSchema::create(&url).await;
    let s = PostgresStore::open(schema.config()).await.unwrap();
    s.ensure_project("kept").await.unwrap();
    let latest = postgres_schema(s.pool(), schema.name()).await;
    assert!(latest.iter().any(|l| l.contains("organizations")));
    for table in EVENT_TABLES {
        assert!(postgres_has_table(&latest, table), "{table}: {latest:?}");
    }
    assert_ne!(latest, at_people);
    for table in LIFECYCLE_TABLES {
        assert!(postgres_has_table(&latest, table), "{table}: {latest:?}");
    }

    let report = s.revert(count_since(COMPOSE)).await.unwrap();
    assert_eq!(report.reverted, reverted_since(COMPOSE));
    assert_eq!(report.current, Some(RUN_LEASE));
    assert_eq!(postgres_schema(s.pool(), schema.name()).await, at_run_lease);

    let report = s.revert(1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(RUN_LEASE, "run lease")]));
    assert_eq!(report.current, Some(LIFECYCLE));
    assert_eq!(postgres_schema(s.pool(), schema.name()).await, at_lifecycle);

    let report = s.revert(1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(LIFECYCLE, "lifecycle")]));
    assert_eq!(report.current, Some(EVENTS));
    assert_eq!(postgres_schema(s.pool(), schema.name()).await, at_events);

    let report = s.revert(1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(EVENTS, "events")]));
    assert_eq!(report.current, Some(PEOPLE));
    let after_events = postgres_schema(s.pool(), schema.name()).await;
    for table in EVENT_TABLES {
        assert!(
            !postgres_has_table(&after_events, table),
            "{table}: {after_events:?}"
        );
    }
    assert_eq!(after_events, at_people);
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(projects, 1, "the data of the tables kept is kept");

    let report = s.revert(1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(PEOPLE, "people")]));
    assert_eq!(report.current, Some(CREDENTIALS));
    assert_eq!(
        postgres_schema(s.pool(), schema.name()).await,
        at_credentials
    );
    let projects: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(projects, 1, "the data of the tables kept is kept");

    // Through the URL, like `prompt-registry migrate --revert` gets it.
    let via_url = schema_url(&url, schema.name());
    let report = prompt_store::revert(&via_url, 2).await.unwrap();
    assert_eq!(
        report.reverted,
        reverted(&[(CREDENTIALS, "provider credentials"), (INITIAL, "initial")])
    );
    assert_eq!(report.current, None);
    assert_eq!(
        postgres_schema(s.pool(), schema.name()).await,
        Vec::<String>::new()
    );
    let msg = invalid_count(prompt_store::revert(&via_url, 1).await);
    assert!(msg.contains("none applied"), "{msg}");

    assert_eq!(s.migrate().await.unwrap().applied, all());
    assert_eq!(postgres_schema(s.pool(), schema.name()).await, latest);

    let msg = invalid_count(s.revert(all_count() + 1).await);
    assert!(
        msg.contains(&format!("only {} applied", all_count())),
        "{msg}"
    );
    let report = s.revert(all_count()).await.unwrap();
    assert_eq!(report.reverted, reverted_since(INITIAL));
    assert_eq!(
        postgres_schema(s.pool(), schema.name()).await,
        Vec::<String>::new()
    );
    s.close().await;
    let s = PostgresStore::open(schema.config()).await.unwrap();
    assert_eq!(postgres_schema(s.pool(), schema.name()).await, latest);
    s.close().await;
}

#[tokio::test]
async fn postgres_database_of_an_earlier_build_is_accepted_and_revertible() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let pool = sqlx::PgPool::connect(&schema_url(&url, schema.name()))
        .await
        .unwrap();
    earlier_build(&POSTGRES).run(&pool).await.unwrap();
    let latest = postgres_schema(&pool, schema.name()).await;
    pool.close().await;

    let s = PostgresStore::open(schema.config()).await.unwrap();
    assert!(s.migrate().await.unwrap().applied.is_empty());
    let report = s.revert(count_since(PEOPLE)).await.unwrap();
    assert_eq!(report.reverted, reverted_since(PEOPLE));
    assert_eq!(report.current, Some(CREDENTIALS));
    assert_eq!(s.migrate().await.unwrap().applied, applied_since(PEOPLE));
    assert_eq!(postgres_schema(s.pool(), schema.name()).await, latest);
    s.close().await;
}

// -- the people migration on a database with data ----------------------------------

/// Fill a database at the credentials migration with a project, a prompt with a
/// version, an API key and a provider credential, through the old schema's SQL.
/// Returns the project's and the prompt's ids.
async fn old_schema_rows<'c, E>(conn: E, ids: (uuid::Uuid, uuid::Uuid), t: &str)
where
    E: sqlx::Executor<'c> + Copy,
    for<'q> <E::Database as sqlx::Database>::Arguments: sqlx::IntoArguments<E::Database>,
    for<'q> uuid::Uuid: sqlx::Encode<'q, E::Database> + sqlx::Type<E::Database>,
{
    let (project, prompt) = ids;
    let statements = [
        format!("INSERT INTO projects (id, name, created_at) VALUES ($1, 'legacy', {t})"),
        format!(
            "INSERT INTO prompts (id, project_id, name, revision, created_at, updated_at) \
             VALUES ($2, $1, 'greet', 1, {t}, {t})"
        ),
        format!(
            "INSERT INTO api_keys (id, project_id, name, role, prefix, hash, created_at) \
             VALUES ($2, $1, 'ci', 'viewer', 'pr_x', 'hash-1', {t})"
        ),
        format!(
            "INSERT INTO provider_credentials (project_id, name, kind, sealed_api_key, key_hint, \
             default_params, created_at, updated_at) \
             VALUES ($1, 'openai', 'openai', 'sealed', 'sk-…', '{{}}', {t}, {t})"
        ),
    ];
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(prompt)
            .execute(conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn sqlite_people_migration_keeps_data_and_foreign_keys() {
    use prompt_core::domain::DEFAULT_ORG_ID;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "old.db");
    let ids = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    SQLITE.run_to(CREDENTIALS, &pool).await.unwrap();
    old_schema_rows(&pool, ids, "1").await;
    pool.close().await;

    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    let p = s.project_by_name("legacy").await.unwrap();
    assert_eq!((p.id, p.org_id), (ids.0, DEFAULT_ORG_ID));
    assert_eq!(s.get_prompt(p.id, "greet").await.unwrap().id, ids.1);
    assert_eq!(s.list_api_keys(p.id).await.unwrap().len(), 1);
    s.get_provider_credential(p.id, "openai").await.unwrap();
    s.close().await;
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let broken: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    // The references to projects still hold against the rebuilt table.
    let e = sqlx::query(
        "INSERT INTO prompts (id, project_id, name, revision, created_at, updated_at) \
         VALUES (x'01', x'02', 'orphan', 1, 1, 1)",
    )
    .execute(&mut c)
    .await
    .unwrap_err();
    assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
    c.close().await.unwrap();

    // The events migration and every newer one go first: the people
    // migration is the newest again.
    let report = prompt_store::revert(&url, count_since(EVENTS))
        .await
        .unwrap();
    assert_eq!(report.reverted, reverted_since(EVENTS));
    assert_eq!(report.current, Some(PEOPLE));

    // Two organizations with a project of the same name: the revert fails, changes
    // nothing.
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES (x'03', 'acme', 1)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO projects (id, org_id, name, created_at) VALUES (x'04', x'03', 'legacy', 1)",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
    let latest = sqlite_schema(&url).await;
    let e = prompt_store::revert(&url, 1).await.unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(sqlite_schema(&url).await, latest);
    assert_eq!(
        sqlite_scalar(&url, "SELECT count(*) FROM organizations").await,
        2
    );
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("DELETE FROM projects WHERE id = x'04'")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let report = prompt_store::revert(&url, 1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(PEOPLE, "people")]));
    assert_eq!(report.current, Some(CREDENTIALS));
    assert_eq!(
        sqlite_scalar(
            &url,
            "SELECT count(*) FROM prompts WHERE project_id IN (SELECT id FROM projects)"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn postgres_people_migration_keeps_data_and_foreign_keys() {
    use prompt_core::domain::DEFAULT_ORG_ID;
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let pool = sqlx::PgPool::connect(&schema_url(&url, schema.name()))
        .await
        .unwrap();
    POSTGRES.run_to(CREDENTIALS, &pool).await.unwrap();
    let ids = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    old_schema_rows(&pool, ids, "now()").await;

    let s = PostgresStore::open(schema.config()).await.unwrap();
    let p = s.project_by_name("legacy").await.unwrap();
    assert_eq!((p.id, p.org_id), (ids.0, DEFAULT_ORG_ID));
    assert_eq!(s.get_prompt(p.id, "greet").await.unwrap().id, ids.1);
    assert_eq!(s.list_api_keys(p.id).await.unwrap().len(), 1);

    // The events migration and every newer one go first: the people
    // migration is the newest again.
    let report = s.revert(count_since(EVENTS)).await.unwrap();
    assert_eq!(report.reverted, reverted_since(EVENTS));
    assert_eq!(report.current, Some(PEOPLE));

    // Two organizations with a project of the same name: the revert fails, changes
    // nothing.
    let acme = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, 'acme', now())")
        .bind(acme)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO projects (id, org_id, name, created_at) VALUES ($1, $2, 'legacy', now())",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(acme)
    .execute(&pool)
    .await
    .unwrap();
    let latest = postgres_schema(&pool, schema.name()).await;
    let e = s.revert(1).await.unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(postgres_schema(&pool, schema.name()).await, latest);
    sqlx::query("DELETE FROM projects WHERE org_id = $1")
        .bind(acme)
        .execute(&pool)
        .await
        .unwrap();
    let report = s.revert(1).await.unwrap();
    assert_eq!(report.reverted, reverted(&[(PEOPLE, "people")]));
    assert_eq!(report.current, Some(CREDENTIALS));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM prompts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
    pool.close().await;
    s.close().await;
}

// -- the retention migration on a database with runs --------------------------------

/// The runs of a schema, by id.
async fn pg_run_ids(pool: &sqlx::PgPool) -> Vec<uuid::Uuid> {
    sqlx::query_scalar("SELECT id FROM runs ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The run log becomes partitioned by month with every run kept (recent ones in their
/// month's partition, ones older than five years in `runs_default`), readable through
/// the store; new runs go into their month; the revert makes it one table again with
/// every run.
#[tokio::test]
async fn postgres_retention_migration_keeps_runs() {
    use prompt_core::RunLog;
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let pool = sqlx::PgPool::connect(&schema_url(&url, schema.name()))
        .await
        .unwrap();
    POSTGRES.run_to(RUN_LEASE, &pool).await.unwrap();
    let project = uuid::Uuid::now_v7();
    let old_ids: Vec<uuid::Uuid> = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
    for (id, age) in old_ids.iter().zip(["0 days", "40 days", "3650 days"]) {
        sqlx::query(
            "INSERT INTO runs (id, project_id, variables, input, status, metadata, created_at) \
             VALUES ($1, $2, '{}', '{}', 'completed', '{}', now() - $3::interval)",
        )
        .bind(id)
        .bind(project)
        .bind(age)
        .execute(&pool)
        .await
        .unwrap();
    }

    let s = PostgresStore::open(schema.config()).await.unwrap();
    let kind: String =
        sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE oid = 'runs'::regclass")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kind, "p", "runs is partitioned");
    let mut expected = old_ids.clone();
    expected.sort();
    assert_eq!(pg_run_ids(&pool).await, expected);
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM runs_default")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(in_default, 1, "only the run older than five years");
    for id in &old_ids {
        assert_eq!(s.get_run(project, *id).await.unwrap().id, *id);
    }
    let mut new = prompt_core::NewRun::with_status(prompt_core::RunStatus::Completed)
        .into_run(project)
        .unwrap();
    new.created_at = prompt_core::domain::now();
    s.insert_runs(std::slice::from_ref(&new)).await.unwrap();
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM runs_default")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(in_default, 1, "a new run goes into its month's partition");
    // The primary key still refuses the same run twice.
    assert!(matches!(
        s.insert_runs(std::slice::from_ref(&new)).await,
        Err(Error::AlreadyExists { .. })
    ));
    expected.push(new.id);
    expected.sort();

    // Down past the retention migration (and the newer ones).
    let report = s.revert(count_since(RETENTION)).await.unwrap();
    assert_eq!(report.reverted, reverted_since(RETENTION));
    let kind: String =
        sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE oid = 'runs'::regclass")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kind, "r", "one table again");
    assert_eq!(pg_run_ids(&pool).await, expected, "every run is kept");
    s.close().await;
    pool.close().await;
}
