#![doc = include_str!("../README.md")]

use std::sync::Arc;

use prompt_core::{ValidatedRunLog, ValidatedStore};

use prompt_core::{Error, EventLog, PeopleStore, PromptStore, Result, RunLog, WebhookStore};

pub mod cache;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "remote")]
pub mod remote;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use cache::{CacheConfig, CacheStats, CachedStore};
pub use memory::{MemoryConfig, MemoryIdempotency, MemoryStore};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresStore, parse_postgres_error};
#[cfg(feature = "remote")]
pub use remote::{RemoteCaller, RemoteConfig, RemoteKey, RemoteStore, parse_remote_error};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{SqlStore, redact_url};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConfig, SqliteStore, parse_sqlite_error};

/// A fresh in-memory prompt store and run log (one object behind both traits).
pub fn memory() -> (Arc<dyn PromptStore>, Arc<dyn RunLog>) {
    let (store, runs, _) = memory_with_people();
    (store, runs)
}

/// A fresh in-memory prompt store, run log and people store (one object behind the
/// three traits, so projects made through one are seen by the others).
pub fn memory_with_people() -> (Arc<dyn PromptStore>, Arc<dyn RunLog>, Arc<dyn PeopleStore>) {
    let s = Arc::new(MemoryStore::new(MemoryConfig::default()));
    (
        ValidatedStore::wrap(s.clone()),
        ValidatedRunLog::wrap(s.clone()),
        s,
    )
}

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The migrations applied by this run, oldest first; empty when the database was
    /// already up to date.
    pub applied: Vec<i64>,
    /// The newest migration the database now has, `None` for a backend without
    /// migrations (memory).
    pub current: Option<i64>,
}

/// What a revert (`prompt-registry migrate --revert N`) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevertReport {
    /// The migrations reverted by this run, newest first.
    pub reverted: Vec<RevertedMigration>,
    /// The newest migration the database still has; `None` when none is left (the
    /// schema is gone: `migrate` re-creates it).
    pub current: Option<i64>,
}

/// One reverted migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertedMigration {
    /// Its version, e.g. `20261122000701`.
    pub version: i64,
    /// Its description, from the file name (`provider credentials`).
    pub description: String,
}

/// Which kind of backend a [`Backend`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// In memory.
    Memory,
    /// A SQLite file (or in-memory database).
    Sqlite,
    /// A Postgres database.
    Postgres,
}

/// How [`open_with`] opens a backend.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Apply pending migrations on open (default). When `false`, a database that
    /// needs migrations is refused with an error saying to run `migrate`.
    pub run_migrations: bool,
    /// Pool size; `None` keeps the backend's default.
    pub max_connections: Option<u32>,
    /// How long an operation waits for a Postgres connection (including making one)
    /// before failing with `Unavailable`; `None` keeps the default (1 s).
    pub acquire_timeout: Option<std::time::Duration>,
    /// Put a [`CachedStore`] in front of the prompt store (on Postgres it also listens
    /// for invalidations from other instances, on a task of the current Tokio runtime).
    pub cache: Option<CacheConfig>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            run_migrations: true,
            max_connections: None,
            acquire_timeout: None,
            cache: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Concrete {
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(PostgresStore),
}

/// An opened backend: the prompt store, the run log and the people store behind the
/// traits, plus what only a database has (migrations, closing the pool).
#[derive(Debug, Clone)]
pub struct Backend {
    /// The prompt store (cached if the options asked for it).
    pub store: Arc<dyn PromptStore>,
    /// The run log.
    pub runs: Arc<dyn RunLog>,
    /// Organizations, users and sign-in state, on the same database (never cached:
    /// sign-in state must be current). Every backend [`open`] opens has one; a remote
    /// store (`RemoteStore`) is not a `Backend` and offers no people store, its server
    /// owns the people.
    pub people: Arc<dyn PeopleStore>,
    /// The change log of every project (see [`prompt_core::domain::event`]), on the
    /// same database; never cached.
    pub events: Arc<dyn EventLog>,
    /// Webhooks, their outbox cursors and delivery logs, on the same database.
    pub webhooks: Arc<dyn WebhookStore>,
    concrete: Concrete,
}

impl Backend {
    /// Which kind of backend this is.
    pub fn kind(&self) -> BackendKind {
        match &self.concrete {
            Concrete::Memory => BackendKind::Memory,
            #[cfg(feature = "sqlite")]
            Concrete::Sqlite(_) => BackendKind::Sqlite,
            #[cfg(feature = "postgres")]
            Concrete::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The migrations this binary would apply, oldest first (none on memory); a
    /// database migrated by a newer binary is a `Conflict`.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        match &self.concrete {
            Concrete::Memory => Ok(Vec::new()),
            #[cfg(feature = "sqlite")]
            Concrete::Sqlite(s) => s.pending_migrations().await,
            #[cfg(feature = "postgres")]
            Concrete::Postgres(s) => s.pending_migrations().await,
        }
    }

    /// Apply pending migrations (what `prompt-registry migrate` runs). Running it on
    /// an up-to-date database is a no-op; a database migrated by a newer binary is
    /// refused. Memory has nothing to migrate.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        match &self.concrete {
            Concrete::Memory => Ok(MigrationReport::default()),
            #[cfg(feature = "sqlite")]
            Concrete::Sqlite(s) => s.migrate().await,
            #[cfg(feature = "postgres")]
            Concrete::Postgres(s) => s.migrate().await,
        }
    }

    /// Revert the newest `count` applied migrations with their down scripts (what
    /// `prompt-registry migrate --revert N` runs); the data of what they created is
    /// lost. Refused before anything changes when `count` is 0 or more than the
    /// database has applied (`InvalidInput` on `count`) or when the database was
    /// migrated by a newer binary (`Conflict`). Memory has nothing to revert
    /// (`Unsupported`).
    pub async fn revert(&self, count: u32) -> Result<RevertReport> {
        match &self.concrete {
            Concrete::Memory => Err(Error::unsupported(format!(
                "reverting {count} migration(s) of memory:// (it has no schema)"
            ))),
            #[cfg(feature = "sqlite")]
            Concrete::Sqlite(s) => s.revert(count).await,
            #[cfg(feature = "postgres")]
            Concrete::Postgres(s) => s.revert(count).await,
        }
    }

    /// Close the connection pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.concrete {
            Concrete::Memory => {}
            #[cfg(feature = "sqlite")]
            Concrete::Sqlite(s) => s.close().await,
            #[cfg(feature = "postgres")]
            Concrete::Postgres(s) => s.close().await,
        }
    }

    /// The SQLite store, if this is one.
    #[cfg(feature = "sqlite")]
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        match &self.concrete {
            Concrete::Sqlite(s) => Some(s),
            _ => None,
        }
    }

    /// The Postgres store, if this is one.
    #[cfg(feature = "postgres")]
    pub fn as_postgres(&self) -> Option<&PostgresStore> {
        match &self.concrete {
            Concrete::Postgres(s) => Some(s),
            _ => None,
        }
    }

    fn cached(mut self, config: CacheConfig) -> Self {
        let cached = match &self.concrete {
            #[cfg(feature = "postgres")]
            Concrete::Postgres(pg) => {
                CachedStore::with_postgres_invalidation(self.store.clone(), config, pg)
            }
            _ => CachedStore::new(self.store.clone(), config),
        };
        self.store = Arc::new(cached);
        self
    }
}

/// Open a backend from a URL with default options (migrations applied, no cache):
///
/// - `memory://` — in memory, nothing persists;
/// - `sqlite:///absolute/path.db`, `sqlite://relative/path.db`, `sqlite::memory:` —
///   a SQLite file (created if missing) or an in-memory SQLite database;
/// - `postgres://…` or `postgresql://…` — a Postgres database (libpq URL).
///
/// Anything else is `InvalidInput` on the field `url` (the URL is not echoed, it may
/// hold a password).
pub async fn open(url: &str) -> Result<Backend> {
    open_with(url, &OpenOptions::default()).await
}

/// [`open`] with options.
pub async fn open_with(url: &str, options: &OpenOptions) -> Result<Backend> {
    if let Some(c) = &options.cache {
        c.validate()?;
    }
    let backend = match scheme_of(url)? {
        Scheme::Memory => {
            let m = Arc::new(MemoryStore::new(MemoryConfig::default()));
            Backend {
                store: m.clone(),
                runs: m.clone(),
                people: m.clone(),
                events: m.clone(),
                webhooks: m,
                concrete: Concrete::Memory,
            }
        }
        Scheme::Sqlite => connect_sqlite(url, options, true).await?,
        Scheme::Postgres => connect_postgres(url, options, true).await?,
    };
    let mut backend = match &options.cache {
        Some(c) => backend.cached(c.clone()),
        None => backend,
    };
    // Validation in front of everything (the cache included): backends assume valid
    // input (see `prompt_core::validated`).
    backend.store = ValidatedStore::wrap(backend.store);
    backend.runs = ValidatedRunLog::wrap(backend.runs);
    Ok(backend)
}

/// Open the database at `url`, apply pending migrations, close it, and say what was
/// done: the library side of `prompt-registry migrate`. Running it twice is a no-op the
/// second time; a database migrated by a newer binary is refused.
pub async fn migrate(url: &str) -> Result<MigrationReport> {
    let options = OpenOptions {
        run_migrations: false,
        max_connections: Some(2),
        acquire_timeout: None,
        cache: None,
    };
    let backend = match scheme_of(url)? {
        Scheme::Memory => return Ok(MigrationReport::default()),
        Scheme::Sqlite => connect_sqlite(url, &options, false).await?,
        Scheme::Postgres => connect_postgres(url, &options, false).await?,
    };
    let report = backend.migrate().await;
    backend.close().await;
    report
}

/// What [`check`] found at a database URL, without changing anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseCheck {
    /// Which kind of backend the URL names.
    pub kind: Option<BackendKind>,
    /// Whether the database exists (a SQLite file not created yet: `false`; `serve`
    /// creates it).
    pub exists: bool,
    /// The migrations `serve` (or `migrate`) would apply, oldest first.
    pub pending: Vec<i64>,
}

/// Look at the database at `url` without creating, migrating or writing anything: is
/// it reachable, does it exist, which migrations are pending (what `prompt-registry
/// config check` reports). A Postgres server that does not answer within
/// `acquire_timeout` is `Unavailable`; a database migrated by a newer binary is a
/// `Conflict`.
pub async fn check(url: &str, acquire_timeout: std::time::Duration) -> Result<DatabaseCheck> {
    let options = OpenOptions {
        run_migrations: false,
        max_connections: Some(1),
        acquire_timeout: Some(acquire_timeout),
        cache: None,
    };
    match scheme_of(url)? {
        Scheme::Memory => Ok(DatabaseCheck {
            kind: Some(BackendKind::Memory),
            exists: true,
            pending: Vec::new(),
        }),
        Scheme::Sqlite => check_sqlite(url).await,
        Scheme::Postgres => {
            let backend = connect_postgres(url, &options, false).await?;
            let pending = backend.pending_migrations().await;
            backend.close().await;
            Ok(DatabaseCheck {
                kind: Some(BackendKind::Postgres),
                exists: true,
                pending: pending?,
            })
        }
    }
}

#[cfg(feature = "sqlite")]
async fn check_sqlite(url: &str) -> Result<DatabaseCheck> {
    let mut config = SqliteConfig::new(url);
    config.run_migrations = false;
    config.create_if_missing = false;
    config.max_connections = 1;
    if !config.is_memory() && !config.file_exists()? {
        return Ok(DatabaseCheck {
            kind: Some(BackendKind::Sqlite),
            exists: false,
            pending: sqlite::MIGRATOR
                .iter()
                .filter(|m| m.migration_type.is_up_migration())
                .map(|m| m.version)
                .collect(),
        });
    }
    let store = SqliteStore::connect(config).await?;
    let pending = store.pending_migrations().await;
    store.close().await;
    Ok(DatabaseCheck {
        kind: Some(BackendKind::Sqlite),
        exists: true,
        pending: pending?,
    })
}

#[cfg(not(feature = "sqlite"))]
async fn check_sqlite(_url: &str) -> Result<DatabaseCheck> {
    Err(Error::invalid(
        "url",
        "this build has no SQLite backend (feature `sqlite` is off)",
    ))
}

/// Open the database at `url`, revert its newest `count` migrations, close it, and say
/// what was reverted: the library side of `prompt-registry migrate --revert N`. See
/// [`Backend::revert`] for what is refused.
pub async fn revert(url: &str, count: u32) -> Result<RevertReport> {
    let options = OpenOptions {
        run_migrations: false,
        max_connections: Some(2),
        acquire_timeout: None,
        cache: None,
    };
    let backend = match scheme_of(url)? {
        Scheme::Memory => {
            return Err(Error::unsupported(
                "reverting migrations of memory:// (it has no schema)",
            ));
        }
        Scheme::Sqlite => connect_sqlite(url, &options, false).await?,
        Scheme::Postgres => connect_postgres(url, &options, false).await?,
    };
    let report = backend.revert(count).await;
    backend.close().await;
    report
}

/// Write a consistent online copy of the SQLite database at `url` to `target` (a file
/// that must not exist yet; see [`SqliteStore::backup_into`]): what `prompt-registry
/// backup` runs while a server keeps writing. The database is neither created nor
/// migrated. A Postgres URL is refused (`Unsupported`: back it up with `pg_dump`), and
/// so is `memory://` and an in-memory SQLite database (nothing outlives the process).
pub async fn backup(url: &str, target: &std::path::Path) -> Result<()> {
    match scheme_of(url)? {
        Scheme::Memory => Err(Error::unsupported(
            "backing up memory:// (it lives only inside its process)",
        )),
        Scheme::Postgres => Err(Error::unsupported(
            "backing up a Postgres database from prompt-registry; use pg_dump \
             (e.g. `pg_dump --format=custom --file=FILE \"$DATABASE_URL\"`, restored \
             with pg_restore)",
        )),
        Scheme::Sqlite => backup_sqlite(url, target).await,
    }
}

#[cfg(feature = "sqlite")]
async fn backup_sqlite(url: &str, target: &std::path::Path) -> Result<()> {
    let mut config = SqliteConfig::new(url);
    if config.is_memory() {
        return Err(Error::unsupported(
            "backing up an in-memory SQLite database (it lives only inside its process)",
        ));
    }
    config.create_if_missing = false;
    config.run_migrations = false;
    config.max_connections = 1;
    let store = SqliteStore::connect(config).await?;
    let copied = store.backup_into(target).await;
    store.close().await;
    copied
}

#[cfg(not(feature = "sqlite"))]
async fn backup_sqlite(_url: &str, _target: &std::path::Path) -> Result<()> {
    Err(Error::invalid(
        "url",
        "this build has no SQLite backend (feature `sqlite` is off)",
    ))
}

enum Scheme {
    Memory,
    Sqlite,
    Postgres,
}

fn scheme_of(url: &str) -> Result<Scheme> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("memory") => Ok(Scheme::Memory),
        Some("sqlite") => Ok(Scheme::Sqlite),
        Some("postgres" | "postgresql") => Ok(Scheme::Postgres),
        Some(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            Err(Error::invalid(
                "url",
                format!(
                    "unsupported scheme '{s}'; expected memory://, sqlite://PATH, \
                     sqlite::memory: or postgres://…"
                ),
            ))
        }
        _ => Err(Error::invalid(
            "url",
            "is not a URL; expected memory://, sqlite://PATH, sqlite::memory: or postgres://…",
        )),
    }
}

/// `check`: migrate or check the schema as the options say (an open); without it the
/// connection is made and nothing else (for `migrate`).
#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str, options: &OpenOptions, check: bool) -> Result<Backend> {
    let mut config = SqliteConfig::new(url);
    config.run_migrations = options.run_migrations;
    if let Some(n) = options.max_connections {
        config.max_connections = n;
    }
    let s = if check {
        SqliteStore::open(config).await?
    } else {
        SqliteStore::connect(config).await?
    };
    Ok(Backend {
        store: Arc::new(s.clone()),
        runs: Arc::new(s.clone()),
        people: Arc::new(s.clone()),
        events: Arc::new(s.clone()),
        webhooks: Arc::new(s.clone()),
        concrete: Concrete::Sqlite(s),
    })
}

#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(_url: &str, _options: &OpenOptions, _check: bool) -> Result<Backend> {
    Err(Error::invalid(
        "url",
        "this build has no SQLite backend (feature `sqlite` is off)",
    ))
}

#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str, options: &OpenOptions, check: bool) -> Result<Backend> {
    let mut config = PostgresConfig::new(url);
    config.run_migrations = options.run_migrations;
    if let Some(n) = options.max_connections {
        config.max_connections = n;
    }
    if let Some(t) = options.acquire_timeout {
        config.acquire_timeout_ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1);
    }
    let s = if check {
        PostgresStore::open(config).await?
    } else {
        PostgresStore::connect(config).await?
    };
    Ok(Backend {
        store: Arc::new(s.clone()),
        runs: Arc::new(s.clone()),
        people: Arc::new(s.clone()),
        events: Arc::new(s.clone()),
        webhooks: Arc::new(s.clone()),
        concrete: Concrete::Postgres(s),
    })
}

#[cfg(not(feature = "postgres"))]
async fn connect_postgres(_url: &str, _options: &OpenOptions, _check: bool) -> Result<Backend> {
    Err(Error::invalid(
        "url",
        "this build has no Postgres backend (feature `postgres` is off)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_name_the_field_without_echoing_secrets() {
        for url in [
            "mysql://root:hunter2@db/x",
            "hunter2",
            "",
            "://x",
            "http://u:hunter2@h",
        ] {
            let e = open(url).await.unwrap_err();
            match &e {
                Error::InvalidInput { field, message } => {
                    assert_eq!(field, "url");
                    assert!(!message.contains("hunter2"), "{message}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn memory_url() {
        let b = open("memory://").await.unwrap();
        assert_eq!(b.kind(), BackendKind::Memory);
        assert_eq!(b.migrate().await.unwrap(), MigrationReport::default());
        b.store.ensure_project("x").await.unwrap();
        // One database behind the three traits.
        let org = b.people.create_org("acme", None).await.unwrap();
        let p = b.store.ensure_project("acme/x").await.unwrap();
        assert_eq!(p.org_id, org.id);
    }
}
