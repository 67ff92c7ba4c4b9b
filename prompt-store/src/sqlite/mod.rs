//! The SQLite backend: a file (or an in-memory database), zero set-up, bundled SQLite.
//!
//! Concurrency: the database is in WAL mode, so readers never block the writer or each
//! other. Every write goes through one dedicated connection, inside `BEGIN IMMEDIATE`:
//! the write lock is taken when the transaction starts, never upgraded from a read
//! lock half-way (which is what makes deferred SQLite transactions fail with
//! `SQLITE_BUSY` under concurrency). Writers of this process queue for that
//! connection in the pool; writers of other processes wait on SQLite's busy timeout,
//! and a transaction that still finds the lock busy is retried (nothing of it ran).
//! Version numbers are therefore gapless without any retry visible to the caller.
//!
//! Durability: `synchronous = FULL` by default — a commit that returned is in the
//! synced write-ahead log.
//!
//! Failed writes: a write transaction whose statement or `COMMIT` fails is rolled back
//! when it is dropped (sqlx queues a `ROLLBACK` and runs it as the connection returns
//! to the pool). On a full disk (`SQLITE_FULL`) or an I/O error SQLite may have rolled
//! the transaction back already, so that `ROLLBACK` fails and sqlx's transaction depth
//! stays at one: every later `BEGIN IMMEDIATE` on that connection would fail with
//! "attempted to call begin_with at non-zero transaction depth" until a restart. So the
//! writer pool checks every connection it gets back (`release_writer`) and closes one
//! still inside a transaction; the next write opens a fresh connection, and writes
//! recover by themselves once the disk has space again.

mod config;
mod dialect;
mod error;

use std::str::FromStr;

use prompt_core::{Error, Result};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions,
    SqliteSynchronous as DriverSynchronous,
};
use sqlx::{Row, Sqlite};

pub use config::{SqliteConfig, SqliteSynchronous};
pub use error::parse_sqlite_error;

use crate::sql::{self, AppliedMigration, SqlStore};
use crate::{MigrationReport, RevertReport};

/// The migrations of the SQLite schema, built into the binary.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Prompt store and run log in SQLite: the generic SQL store in the SQLite dialect.
/// Its `writer` pool is the one connection that writes; its `reader` pool has the
/// connections that read (the writer itself for an in-memory database). Cheap to clone
/// (clones share the pools).
pub type SqliteStore = SqlStore<Sqlite, SqliteConfig>;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("url", &self.state.url)
            .field("max_connections", &self.state.max_connections)
            .finish_non_exhaustive()
    }
}

/// Whether the writer connection `conn`, just released, may go back to the pool: only
/// once no transaction is left open on it. The ping runs the `ROLLBACK` that dropping
/// an unfinished transaction queued; if that `ROLLBACK` failed (SQLite had rolled the
/// transaction back itself on a full disk or an I/O error, or the disk failed again)
/// the connection is still inside a transaction as far as sqlx knows and is closed
/// instead, which also ends any transaction SQLite still holds. The pool opens a new
/// one for the next write.
///
/// An in-memory database lives only as long as its one connection, so that connection
/// is kept whatever its state (it has no disk to fill).
async fn release_writer(
    conn: &mut sqlx::SqliteConnection,
    memory: bool,
) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    conn.ping().await?;
    if conn.is_in_transaction() && !memory {
        tracing::warn!(
            "closing the SQLite writer connection: a failed write left it inside a \
             transaction that could not be rolled back"
        );
        return Ok(false);
    }
    Ok(true)
}

impl SqliteStore {
    /// Open the database: connect, then apply pending migrations (or, with
    /// `run_migrations = false`, refuse a database that needs them). A database
    /// migrated by a newer binary is refused either way.
    pub async fn open(config: SqliteConfig) -> Result<Self> {
        let run = config.run_migrations;
        let store = Self::connect(config).await?;
        if run {
            store.migrate().await?;
        } else {
            let pending = sql::check_migrations(&store.applied_migrations().await?, &MIGRATOR)?;
            if !pending.is_empty() {
                return Err(sql::needs_migration(&pending));
            }
        }
        Ok(store)
    }

    /// Connect without looking at the schema (for `migrate`).
    pub(crate) async fn connect(config: SqliteConfig) -> Result<Self> {
        config.validate()?;
        let sync = match config.synchronous {
            SqliteSynchronous::Full => DriverSynchronous::Full,
            SqliteSynchronous::Normal => DriverSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str(&config.url)
            .map_err(|e| Error::invalid("url", format!("is not a SQLite URL: {e}")))?
            .create_if_missing(config.create_if_missing)
            .foreign_keys(true)
            .busy_timeout(config.busy_timeout())
            .synchronous(sync);
        let options = match config.max_page_count {
            Some(pages) => options.pragma("max_page_count", pages.to_string()),
            None => options,
        };
        let memory = config.is_memory();
        let options = if memory {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        let writer_options = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.acquire_timeout())
            .after_release(move |conn, _| Box::pin(release_writer(conn, memory)));
        // An in-memory database lives as long as a connection to it: keep the one
        // connection open for the life of the store.
        let writer_options = if memory {
            writer_options
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            writer_options
        };
        let writer = writer_options
            .connect_with(options.clone())
            .await
            .map_err(parse_sqlite_error)?;
        let reader = if memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(config.acquire_timeout())
                .connect_lazy_with(options)
        };
        Ok(SqlStore {
            commits: sql::commit_channel(),
            writer,
            reader,
            state: std::sync::Arc::new(config),
        })
    }

    /// Apply pending migrations. A no-op on an up-to-date database; a database
    /// migrated by a newer binary is refused (`Conflict`) before anything is changed.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        let before = self.applied_migrations().await?;
        sql::check_migrations(&before, &MIGRATOR)?;
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| sql::migrate_error(e, parse_sqlite_error))?;
        let after = self.applied_migrations().await?;
        Ok(sql::report(&before, &after))
    }

    /// Revert the newest `count` applied migrations (see [`crate::Backend::revert`]).
    pub async fn revert(&self, count: u32) -> Result<RevertReport> {
        let before = self.applied_migrations().await?;
        sql::revert(&MIGRATOR, &before, count, &self.writer, parse_sqlite_error).await?;
        let after = self.applied_migrations().await?;
        Ok(sql::revert_report(&before, &after, &MIGRATOR))
    }

    /// The migrations this binary would apply, oldest first.
    pub(crate) async fn pending_migrations(&self) -> Result<Vec<i64>> {
        sql::check_migrations(&self.applied_migrations().await?, &MIGRATOR)
    }

    /// What the migration table says (empty if there is none yet).
    pub(crate) async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.writer)
        .await
        .map_err(parse_sqlite_error)?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&self.writer)
                .await
                .map_err(parse_sqlite_error)?;
        rows.iter()
            .map(|r| {
                Ok(AppliedMigration {
                    version: r.try_get("version")?,
                    checksum: r.try_get("checksum")?,
                    success: r.try_get("success")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(parse_sqlite_error)
    }

    /// Write a consistent copy of the database to `target` (a file that must not exist
    /// yet) with `VACUUM INTO`, while other connections, of this process or another
    /// (a running server), keep writing: the copy is the database as of one read
    /// transaction, compacted, and holds every write committed before it started. Runs
    /// on a reading connection, so writers are not held up (WAL).
    pub async fn backup_into(&self, target: &std::path::Path) -> Result<()> {
        let target = target.to_str().ok_or_else(|| {
            Error::invalid(
                "target",
                format!("'{}' is not a UTF-8 path", target.display()),
            )
        })?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.reader)
            .await
            .map_err(parse_sqlite_error)?;
        Ok(())
    }

    /// Close the pools, waiting for connections in use.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &SqliteConfig {
        &self.state
    }
}
