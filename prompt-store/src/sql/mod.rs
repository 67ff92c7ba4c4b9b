//! What the SQL backends share: the store itself, written once over a [`Dialect`]
//! (the statements, transaction scripts and row mappings of [`prompts`] with
//! [`prompt_sql`], [`projects`], [`credentials`], [`runs`], and the people store of
//! [`people`] with [`sign_in`]), the failure type of a transaction attempt, the retry of
//! attempts that the database rolled back, number conversions, migration checks and
//! reverts, and URL redaction.
//!
//! # Why a dialect and not a query builder
//!
//! The two ways to write the SQL once were a small [`Dialect`] trait over statements
//! written once as text, and a query builder (sea-query, whose `sea-query-sqlx` 0.9
//! line does support sqlx 0.9). The dialect won, on what our statements need:
//!
//! - the real differences are few and are not syntax a builder abstracts: which
//!   write lock a transaction takes (SQLite's single writer with `BEGIN IMMEDIATE`
//!   vs Postgres' `FOR UPDATE` row locks), `FOR UPDATE SKIP LOCKED` job claims, bulk
//!   inserts (`UNNEST` of arrays vs chunked multi-row `VALUES`), statistics
//!   (`percentile_cont` vs an in-process accumulator), the live-name predicate that
//!   must match each schema's partial index word for word, and aggregation functions.
//!   With a builder these would still be per-database custom expressions, next to a
//!   second language to read;
//! - what differs most is value encoding (timestamps as integer microseconds vs
//!   `timestamptz`, JSON text vs `jsonb`, JSON lists vs `text[]`, decimal text vs
//!   `numeric`), in binding and in row decoding alike; a builder does not help with
//!   decoding, the dialect's associated types do both;
//! - placeholders are not a difference at all: SQLite binds `$N` by number, so every
//!   fixed statement is plain text with `$N`, a `&'static str` that sqlx prepares
//!   and caches once per connection (the few with dialect fragments are formatted
//!   once per dialect, and only the listings with optional filters are built per
//!   call, as before);
//! - no new dependency for the workspace to keep building together.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use prompt_core::{Error, Result};
use sqlx::Acquire;
use sqlx::migrate::{Migrate, MigrateError, Migrator};

use crate::{MigrationReport, RevertReport, RevertedMigration};

mod credentials;
mod dialect;
mod feed;
mod idempotency;
mod people;
mod projects;
mod prompt_ops;
mod prompt_sql;
mod prompts;
mod protected;
mod runs;
mod sign_in;
mod store;
mod webhooks;

pub(crate) use dialect::Dialect;
pub(crate) use prompt_sql::PromptSql;
pub(crate) use runs::{RunSql, push_stats_filter, run_cols, run_read_cols, stats_group};
pub use store::SqlStore;
// What only SQLite's own run insertion and claim use.
#[cfg(feature = "sqlite")]
pub(crate) use {runs::Mutable, store::begin_write};

/// The channel of a store's commit wake-ups.
pub(crate) fn commit_channel() -> tokio::sync::broadcast::Sender<prompt_core::Committed> {
    tokio::sync::broadcast::channel(1024).0
}

/// Why one attempt of a store operation failed: a driver error (to be classified by the
/// backend's `parse_…_error`, and maybe retried), or one of our errors, final.
#[derive(Debug)]
pub(crate) enum Failure {
    /// From the driver.
    Db(sqlx::Error),
    /// Ours (validation, not found, …).
    App(Error),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::App(e)
    }
}

/// Whether `e` is a unique or primary key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether `e` is a foreign key violation.
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// How many times an attempt rolled back by the database (serialization failure,
/// deadlock, SQLite busy) is tried in all before the error goes to the caller.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Run `attempt` until it succeeds, fails for good, or has failed `MAX_ATTEMPTS` times
/// with an error for which `rolled_back` holds. Only errors after which the database
/// guarantees that nothing of the attempt was committed may be retried, so a retry
/// never applies a write twice.
pub(crate) async fn retry<T, F, Fut>(
    rolled_back: fn(&sqlx::Error) -> bool,
    mut attempt: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut delay = Duration::from_millis(2);
    let mut n = 1;
    loop {
        match attempt().await {
            Err(Failure::Db(e)) if n < MAX_ATTEMPTS && rolled_back(&e) => {
                tracing::debug!(attempt = n, error = %e, "transaction rolled back by the database; retrying");
                tokio::time::sleep(delay + jitter(delay)).await;
                delay = delay.saturating_mul(4);
                n += 1;
            }
            other => return other,
        }
    }
}

/// Up to `d` of pseudo-random extra delay so that retrying transactions spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let max = d.as_micros().max(1) as u64;
    Duration::from_micros(u64::from(nanos) % max)
}

/// A `u64` figure as the signed 64-bit integer databases store.
pub(crate) fn to_i64(field: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid(field, "is too large"))
}

/// An optional `u64` figure as a signed 64-bit integer.
pub(crate) fn opt_i64(field: &str, v: Option<u64>) -> Result<Option<i64>> {
    v.map(|v| to_i64(field, v)).transpose()
}

/// A stored signed figure back as `u64`.
pub(crate) fn to_u64(field: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::internal(format!("stored {field} is negative: {v}")))
}

/// An optional stored signed figure back as `u64`.
pub(crate) fn opt_u64(field: &str, v: Option<i64>) -> Result<Option<u64>> {
    v.map(|v| to_u64(field, v)).transpose()
}

/// A stored version number back as `u32`.
pub(crate) fn to_version(v: i64) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| Error::internal(format!("stored version number {v} is out of range")))
}

/// An optional stored version number back as `u32`.
pub(crate) fn opt_version(v: Option<i64>) -> Result<Option<u32>> {
    v.map(to_version).transpose()
}

/// A stored release split (JSON text in a `split` column, on both databases) back;
/// `None` for NULL. A failure means a corrupt row.
pub(crate) fn split_from_text<T: serde::de::DeserializeOwned>(
    column: &str,
    v: Option<String>,
) -> Result<Option<T>> {
    v.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| Error::internal(format!("stored {column} is not a split: {e}")))
    })
    .transpose()
}

/// A release split as stored in a `split` column (JSON text); `None` for none.
pub(crate) fn split_text<T: serde::Serialize>(
    column: &str,
    v: Option<&T>,
) -> Result<Option<String>> {
    v.map(|s| {
        serde_json::to_string(s)
            .map_err(|e| Error::internal(format!("cannot encode {column}: {e}")))
    })
    .transpose()
}

/// One row of sqlx's migration table.
#[derive(Debug, Clone)]
pub(crate) struct AppliedMigration {
    pub version: i64,
    pub checksum: Vec<u8>,
    pub success: bool,
}

/// Compare what the database has applied with what this binary knows. Returns the
/// versions still to apply, or a `Conflict` when the database cannot be used by this
/// binary: a migration it does not know (a newer binary migrated it), a migration that
/// differs from ours, or one that failed half-way.
pub(crate) fn check_migrations(
    applied: &[AppliedMigration],
    migrator: &Migrator,
) -> Result<Vec<i64>> {
    let known: HashMap<i64, &[u8]> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    let newest_known = known.keys().copied().max().unwrap_or(0);
    for a in applied {
        match known.get(&a.version) {
            None => return Err(newer_database(a.version, Some(newest_known))),
            Some(sum) if *sum != a.checksum.as_slice() => {
                return Err(Error::conflict(format!(
                    "database migration {} differs from the one built into this binary \
                     (the database was migrated by another build of prompt-registry); \
                     refusing to open it",
                    a.version
                )));
            }
            Some(_) if !a.success => {
                return Err(Error::conflict(format!(
                    "database migration {} failed part-way; repair the database before \
                     opening it",
                    a.version
                )));
            }
            Some(_) => {}
        }
    }
    let mut pending: Vec<i64> = known
        .keys()
        .copied()
        .filter(|v| !applied.iter().any(|a| a.version == *v))
        .collect();
    pending.sort_unstable();
    Ok(pending)
}

fn newer_database(version: i64, newest_known: Option<i64>) -> Error {
    let newest = newest_known
        .map(|n| format!(" (its newest is {n})"))
        .unwrap_or_default();
    Error::conflict(format!(
        "the database was migrated by a newer version of prompt-registry: migration \
         {version} is unknown to this binary{newest}; upgrade prompt-registry, or point it \
         at another database"
    ))
}

/// Our error for a failed migration run; `parse` classifies driver errors.
pub(crate) fn migrate_error(e: MigrateError, parse: fn(sqlx::Error) -> Error) -> Error {
    match e {
        MigrateError::VersionMissing(v) => newer_database(v, None),
        MigrateError::VersionMismatch(v) => Error::conflict(format!(
            "database migration {v} differs from the one built into this binary"
        )),
        MigrateError::Dirty(v) => Error::conflict(format!(
            "database migration {v} failed part-way; repair the database"
        )),
        MigrateError::Execute(e) => parse(e),
        MigrateError::ExecuteMigration(e, v) => match parse(e) {
            e @ (Error::Unavailable { .. } | Error::Storage { .. }) => e,
            e => Error::internal(format!("database migration {v} failed: {e}")),
        },
        other => Error::internal(format!("database migration failed: {other}")),
    }
}

/// The report of a migration run from the migration table before and after.
pub(crate) fn report(before: &[AppliedMigration], after: &[AppliedMigration]) -> MigrationReport {
    let mut applied: Vec<i64> = after
        .iter()
        .map(|a| a.version)
        .filter(|v| !before.iter().any(|b| b.version == *v))
        .collect();
    applied.sort_unstable();
    MigrationReport {
        applied,
        current: after.iter().map(|a| a.version).max(),
    }
}

/// Revert the newest `count` applied migrations with their down scripts, newest first,
/// each in its own transaction (sqlx's `undo`, under its lock). Refused before anything
/// changes: a `count` of 0 or more than the database has applied (`InvalidInput` on
/// `count`), and every database `check_migrations` refuses (`Conflict`).
pub(crate) async fn revert<'c, A>(
    migrator: &Migrator,
    applied: &[AppliedMigration],
    count: u32,
    conn: A,
    parse: fn(sqlx::Error) -> Error,
) -> Result<()>
where
    A: Acquire<'c>,
    <A::Connection as std::ops::Deref>::Target: Migrate,
{
    let target = revert_target(applied, migrator, count)?;
    migrator
        .undo(conn, target)
        .await
        .map_err(|e| migrate_error(e, parse))
}

/// The version `revert(count)` leaves the database at (0: none), or why it refuses.
fn revert_target(applied: &[AppliedMigration], migrator: &Migrator, count: u32) -> Result<i64> {
    check_migrations(applied, migrator)?;
    let mut versions: Vec<i64> = applied.iter().map(|a| a.version).collect();
    versions.sort_unstable();
    let listed = || {
        versions
            .iter()
            .map(|v| format!("{v} ({})", description(migrator, *v)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    if n == 0 {
        return Err(Error::invalid(
            "count",
            "must be at least 1 (the number of migrations to revert, newest first)",
        ));
    }
    if versions.is_empty() {
        return Err(Error::invalid(
            "count",
            format!("cannot revert {count} migration(s): the database has none applied"),
        ));
    }
    if n > versions.len() {
        return Err(Error::invalid(
            "count",
            format!(
                "cannot revert {count} migrations: the database has only {} applied: {}; \
                 nothing was reverted",
                versions.len(),
                listed()
            ),
        ));
    }
    let keep = versions.len() - n;
    for v in &versions[keep..] {
        let reversible = migrator
            .iter()
            .any(|m| m.version == *v && m.migration_type.is_down_migration());
        if !reversible {
            return Err(Error::conflict(format!(
                "migration {v} has no down script in this binary; nothing was reverted"
            )));
        }
    }
    Ok(keep.checked_sub(1).map_or(0, |i| versions[i]))
}

/// A migration's description as this binary knows it (`?` for an unknown one).
fn description(migrator: &Migrator, version: i64) -> String {
    migrator
        .iter()
        .find(|m| m.version == version)
        .map_or_else(|| "?".to_owned(), |m| m.description.to_string())
}

/// The report of a revert from the migration table before and after.
pub(crate) fn revert_report(
    before: &[AppliedMigration],
    after: &[AppliedMigration],
    migrator: &Migrator,
) -> RevertReport {
    let mut reverted: Vec<RevertedMigration> = before
        .iter()
        .filter(|b| !after.iter().any(|a| a.version == b.version))
        .map(|b| RevertedMigration {
            version: b.version,
            description: description(migrator, b.version),
        })
        .collect();
    reverted.sort_unstable_by_key(|m| std::cmp::Reverse(m.version));
    RevertReport {
        reverted,
        current: after.iter().map(|a| a.version).max(),
    }
}

/// The refusal to open a database whose migrations are not applied when the
/// configuration says not to apply them.
pub(crate) fn needs_migration(pending: &[i64]) -> Error {
    Error::conflict(format!(
        "the database schema is out of date ({} migration(s) pending, the first is {}); \
         run `prompt-registry migrate` or enable run_migrations",
        pending.len(),
        pending.first().copied().unwrap_or_default()
    ))
}

/// Map the driver errors that are the same for every database; `database` maps the
/// database's own errors.
pub(crate) fn parse_driver_error(
    e: sqlx::Error,
    database: fn(&dyn sqlx::error::DatabaseError) -> Error,
) -> Error {
    use sqlx::Error as E;
    match e {
        E::Database(db) => database(db.as_ref()),
        E::PoolTimedOut => Error::Unavailable {
            message: "database: no connection became available in time (pool timed out)".to_owned(),
            retry_after: Some(Duration::from_secs(1)),
        },
        E::PoolClosed => Error::unavailable("database: the connection pool is closed"),
        E::Io(io) => Error::unavailable(format!("database connection failed: {io}")),
        E::Tls(t) => Error::unavailable(format!("database TLS handshake failed: {t}")),
        E::Protocol(p) => Error::unavailable(format!("database protocol error: {p}")),
        E::WorkerCrashed => Error::unavailable("database: a connection worker crashed"),
        E::Configuration(c) => Error::invalid("url", format!("database configuration: {c}")),
        E::Migrate(m) => migrate_error(*m, parse_generic),
        other => Error::internal(format!("database: {other}")),
    }
}

fn parse_generic(e: sqlx::Error) -> Error {
    parse_driver_error(e, |db| Error::internal(db.message().to_owned()))
}

/// `url` with the password (if any) replaced by `***`, for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return redact_query(url);
    };
    let userinfo = &authority[..at];
    let redacted = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => userinfo.to_owned(),
    };
    redact_query(&format!(
        "{}{}{}",
        &url[..scheme_end + 3],
        redacted,
        &rest[at..]
    ))
}

/// Hide `password=` query parameters too (libpq style URLs accept them).
fn redact_query(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_owned();
    };
    let (head, query) = url.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{head}{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(
            redact_url("postgres://user:s3cret@db:5432/x"),
            "postgres://user:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://user@db/x?sslmode=require&password=hunter2"),
            "postgres://user@db/x?sslmode=require&password=***"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact_url("postgresql://a:b:c@h/d"),
            "postgresql://a:***@h/d"
        );
        assert!(!redact_url("postgres://u:p%40ss@h/d").contains("p%40ss"));
    }

    #[tokio::test]
    async fn retry_only_what_was_rolled_back() {
        let mut calls = 0;
        let r: Result<(), Failure> = retry(
            |_| true,
            || {
                calls += 1;
                async { Err(Failure::Db(sqlx::Error::PoolTimedOut)) }
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls, MAX_ATTEMPTS);
        let mut calls = 0;
        let r: Result<(), Failure> = retry(
            |_| false,
            || {
                calls += 1;
                async { Err(Failure::Db(sqlx::Error::PoolTimedOut)) }
            },
        )
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
