//! The Postgres backend: production storage, and the job queue of background runs.
//!
//! Concurrency is handled by the database itself:
//!
//! - creating a version locks the prompt's row (`SELECT … FOR UPDATE`) after creating
//!   it if missing (`INSERT … ON CONFLICT DO NOTHING`, which waits for a concurrent
//!   creator of the same name to commit), so version numbers are gapless and unique
//!   under any number of connections and nobody is asked to retry;
//! - every label move locks the prompt row too, and writes the label and its history
//!   row in the same transaction;
//! - names are unique among live prompts by a partial unique index;
//! - `claim_pending` takes the oldest pending runs with `FOR UPDATE SKIP LOCKED`, so
//!   concurrent workers in any process never claim the same run.
//!
//! Transactions run at READ COMMITTED; one that the database rolls back anyway
//! (serialization failure, deadlock) is retried a few times, which is safe because
//! nothing of it was committed.
//!
//! Every transaction that changes a prompt, its versions or its labels also sends
//! `NOTIFY` on [`PostgresConfig::notify_channel`] (delivered on commit), which
//! [`crate::CachedStore::with_postgres_invalidation`] listens to.

mod config;
mod dialect;
mod error;
mod listener;
mod partitions;

use std::str::FromStr;
use std::sync::Arc;

use prompt_core::{Error, Result};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Row};

pub use config::{DEFAULT_NOTIFY_CHANNEL, PostgresConfig};
pub use error::parse_postgres_error;
pub use listener::{InvalidationListener, ListenerStatus};

use crate::cache::Invalidator;
use crate::sql::{self, AppliedMigration, SqlStore};
use crate::{MigrationReport, RevertReport};

/// The migrations of the Postgres schema, built into the binary.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Prompt store and run log in Postgres: the generic SQL store in the Postgres
/// dialect, whose reader and writer are the same pool. Cheap to clone (clones share
/// the pool).
pub type PostgresStore = SqlStore<Postgres, PostgresState>;

/// What a [`PostgresStore`] keeps besides its pool.
pub struct PostgresState {
    /// How it connects (for the invalidation listener's own connection).
    options: PgConnectOptions,
    /// The configuration it was opened with.
    config: PostgresConfig,
    /// The listener that passes other instances' commits on to the change feed's
    /// subscribers, started on first use.
    commit_listener: std::sync::OnceLock<InvalidationListener>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("config", &self.state.config)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Open the database: connect, then apply pending migrations (or, with
    /// `run_migrations = false`, refuse a database that needs them). A database
    /// migrated by a newer binary is refused either way. An unreachable server is
    /// `Unavailable`.
    pub async fn open(config: PostgresConfig) -> Result<Self> {
        let run = config.run_migrations;
        let store = Self::connect(config).await?;
        // Follow other instances' commits from now on (not from the first
        // subscriber), so that a subscriber's first wake-up does not wait for the
        // listener to connect.
        drop(prompt_core::EventLog::commits(&store));
        if run {
            store.migrate().await?;
        } else {
            let pending = sql::check_migrations(&store.applied_migrations().await?, &MIGRATOR)?;
            if !pending.is_empty() {
                return Err(sql::needs_migration(&pending));
            }
        }
        // The run log's partitions for the coming months (the retention task keeps
        // them coming); not fatal: runs land in runs_default meanwhile.
        if let Err(e) = partitions::ensure(store.pool(), prompt_core::domain::now()).await {
            tracing::warn!(error = ?e, "creating run log partitions failed; will retry");
        }
        Ok(store)
    }

    /// Connect without looking at the schema (for `migrate`).
    pub(crate) async fn connect(config: PostgresConfig) -> Result<Self> {
        config.validate()?;
        let mut options = PgConnectOptions::from_str(&config.url).map_err(|e| {
            // The driver's message may quote the URL: do not pass it on.
            let _ = e;
            Error::invalid("url", "is not a valid postgres:// URL")
        })?;
        if let Some(schema) = &config.schema {
            options = options.options([("search_path", schema.as_str())]);
        }
        options = options.application_name(&config.application_name);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout())
            .connect_with(options.clone())
            .await
            .map_err(parse_postgres_error)?;
        Ok(SqlStore {
            writer: pool.clone(),
            reader: pool,
            state: Arc::new(PostgresState {
                options,
                config,
                commit_listener: std::sync::OnceLock::new(),
            }),
            commits: sql::commit_channel(),
        })
    }

    /// Apply pending migrations (creating the configured schema first if it is
    /// missing). A no-op on an up-to-date database; a database migrated by a newer
    /// binary is refused (`Conflict`) before anything is changed. Concurrent runs from
    /// several processes are serialized by sqlx's advisory lock.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        if let Some(schema) = &self.config().schema {
            // `schema` is a validated plain identifier.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .execute(self.pool())
            .await
            .map_err(parse_postgres_error)?;
        }
        let before = self.applied_migrations().await?;
        sql::check_migrations(&before, &MIGRATOR)?;
        let pool = self.migration_pool().await?;
        let ran = MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| sql::migrate_error(e, parse_postgres_error));
        pool.close().await;
        ran?;
        let after = self.applied_migrations().await?;
        Ok(sql::report(&before, &after))
    }

    /// A one-connection pool of its own for a migrate or revert. sqlx takes a
    /// session-level advisory lock and does not release it when a migration fails;
    /// closing this pool closes the session, which releases it (through the store's
    /// pool, the next migrate or revert would wait for it forever).
    async fn migration_pool(&self) -> Result<sqlx::PgPool> {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.config().acquire_timeout())
            .connect_with(self.state.options.clone())
            .await
            .map_err(parse_postgres_error)
    }

    /// Revert the newest `count` applied migrations (see [`crate::Backend::revert`]).
    pub async fn revert(&self, count: u32) -> Result<RevertReport> {
        let before = self.applied_migrations().await?;
        let pool = self.migration_pool().await?;
        let reverted = sql::revert(&MIGRATOR, &before, count, &pool, parse_postgres_error).await;
        pool.close().await;
        reverted?;
        let after = self.applied_migrations().await?;
        Ok(sql::revert_report(&before, &after, &MIGRATOR))
    }

    /// The migrations this binary would apply, oldest first.
    pub(crate) async fn pending_migrations(&self) -> Result<Vec<i64>> {
        sql::check_migrations(&self.applied_migrations().await?, &MIGRATOR)
    }

    /// What the migration table says (empty if there is none yet).
    pub(crate) async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        let exists: Option<String> =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
                .fetch_one(self.pool())
                .await
                .map_err(parse_postgres_error)?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows =
            sqlx::query("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(self.pool())
                .await
                .map_err(parse_postgres_error)?;
        rows.iter()
            .map(|r| {
                Ok(AppliedMigration {
                    version: r.try_get("version")?,
                    checksum: r.try_get("checksum")?,
                    success: r.try_get("success")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(parse_postgres_error)
    }

    /// Close the pool, waiting for connections in use.
    pub async fn close(&self) {
        self.writer.close().await;
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &PostgresConfig {
        &self.state.config
    }

    /// The connection pool (for administration and tests).
    pub fn pool(&self) -> &PgPool {
        &self.writer
    }

    /// Start listening to this database's invalidation notifications, feeding them to
    /// `invalidator`: a background task (on the current Tokio runtime) that reconnects
    /// with backoff when its connection drops, and flushes the whole cache each time
    /// it (re)connects, since notifications sent meanwhile were lost. It stops when
    /// the handle is dropped or the cache is gone.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (like `tokio::spawn`).
    pub fn listen_for_invalidations(&self, invalidator: Invalidator) -> InvalidationListener {
        let config = self.config();
        let options = PgConnectOptions::clone(&self.state.options)
            .application_name(&format!("{}-cache-listener", config.application_name));
        listener::spawn(
            options,
            config.notify_channel.clone(),
            std::time::Duration::from_millis(config.listener_ping_ms),
            invalidator,
        )
    }
}
