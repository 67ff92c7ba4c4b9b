//! Configuration of the SQLite backend.

use std::time::Duration;

use prompt_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// How hard SQLite makes a commit durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSynchronous {
    /// Sync the write-ahead log on every commit: a commit that returned survives a
    /// power loss. The default.
    #[default]
    Full,
    /// Sync only at checkpoints: a commit survives a crash of the process, but the
    /// last ones may be lost on power loss. Faster.
    Normal,
}

/// Configuration of [`super::SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// `sqlite:///absolute/path.db`, `sqlite://relative/path.db` or `sqlite::memory:`.
    pub url: String,
    /// Read connections (writes always go through one connection: SQLite has a single
    /// writer anyway, and queueing in the pool is fairer and cheaper than SQLite's
    /// busy-waiting). Ignored for `sqlite::memory:`, which uses one connection.
    pub max_connections: u32,
    /// Apply pending migrations on open (default `true`). When `false`, opening a
    /// database that needs migrations fails with an error telling to run `migrate`.
    pub run_migrations: bool,
    /// Create the database file if it does not exist (default `true`).
    pub create_if_missing: bool,
    /// How long a write waits for another process holding the write lock, in
    /// milliseconds (default 5000).
    pub busy_timeout_ms: u64,
    /// How long an operation waits for a free connection, in milliseconds (default
    /// 30000).
    pub acquire_timeout_ms: u64,
    /// Durability of commits (default `full`).
    pub synchronous: SqliteSynchronous,
    /// Most pages the database may hold (SQLite's `max_page_count`; a page is 4 KiB
    /// by default): a size quota. A write that needs more fails as on a full disk
    /// (`Storage`, answered 507) until rows are deleted. `None` (the default): no
    /// quota beyond SQLite's own limit.
    pub max_page_count: Option<u32>,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            url: "sqlite::memory:".to_owned(),
            max_connections: 4,
            run_migrations: true,
            create_if_missing: true,
            busy_timeout_ms: 5_000,
            acquire_timeout_ms: 30_000,
            synchronous: SqliteSynchronous::Full,
            max_page_count: None,
        }
    }
}

impl SqliteConfig {
    /// Defaults with this URL.
    pub fn new(url: impl Into<String>) -> Self {
        SqliteConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    /// Check the values; the error names the bad field.
    pub fn validate(&self) -> Result<()> {
        if !self.url.starts_with("sqlite:") {
            return Err(Error::invalid(
                "url",
                "must start with sqlite:// (or be sqlite::memory:)",
            ));
        }
        if self.url == "sqlite://" || self.url == "sqlite:" {
            return Err(Error::invalid("url", "names no database file"));
        }
        if self.max_page_count == Some(0) {
            return Err(Error::invalid("max_page_count", "must be at least 1"));
        }
        if self.max_connections == 0 {
            return Err(Error::invalid("max_connections", "must be at least 1"));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(Error::invalid("acquire_timeout_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// Whether the database lives in memory only.
    pub fn is_memory(&self) -> bool {
        let rest = self
            .url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        rest.starts_with(":memory:") || rest.contains("mode=memory")
    }

    /// Whether the database file of a file URL exists already; a file whose
    /// directory does not exist cannot be created (`InvalidInput`).
    pub(crate) fn file_exists(&self) -> Result<bool> {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
            .map_err(|e| Error::invalid("url", format!("is not a SQLite URL: {e}")))?;
        let path = options.get_filename();
        if path.exists() {
            return Ok(true);
        }
        match path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Err(Error::invalid(
                "url",
                format!("the directory {} does not exist", dir.display()),
            )),
            _ => Ok(false),
        }
    }

    pub(crate) fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.busy_timeout_ms)
    }

    pub(crate) fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut c = SqliteConfig::new("postgres://x");
        assert!(matches!(c.validate(), Err(Error::InvalidInput { field, .. }) if field == "url"));
        c.url = "sqlite:///tmp/x.db".into();
        c.max_connections = 0;
        assert!(
            matches!(c.validate(), Err(Error::InvalidInput { field, .. }) if field == "max_connections")
        );
        assert!(SqliteConfig::new("sqlite::memory:").is_memory());
        assert!(!SqliteConfig::new("sqlite:///tmp/x.db").is_memory());
        let c: SqliteConfig = serde_json::from_str(r#"{"url": "sqlite://a.db"}"#).unwrap();
        assert!(c.run_migrations);
        assert_eq!(c.busy_timeout_ms, 5000);
    }
}
