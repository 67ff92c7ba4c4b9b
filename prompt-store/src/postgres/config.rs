//! Configuration of the Postgres backend.

use std::time::Duration;

use prompt_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::sql::redact_url;

/// The default notification channel of cache invalidations.
pub const DEFAULT_NOTIFY_CHANNEL: &str = "prompt_registry_cache";

/// Configuration of [`super::PostgresStore`]. `Debug` hides the password of the URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database?…` (libpq URL).
    pub url: String,
    /// Most connections in the pool (default 10).
    pub max_connections: u32,
    /// Connections kept open when idle (default 0).
    pub min_connections: u32,
    /// How long an operation waits for a connection (including making one) before
    /// failing with `Unavailable`, in milliseconds (default 1000: while the database
    /// is down, every request would otherwise wait this long for its 503).
    pub acquire_timeout_ms: u64,
    /// Apply pending migrations on open (default `true`). When `false`, opening a
    /// database that needs migrations fails with an error telling to run `migrate`.
    pub run_migrations: bool,
    /// Work in this schema (set as `search_path`; created by `migrate` if missing)
    /// instead of the user's default. Lets several registries, or tests, share one
    /// database.
    pub schema: Option<String>,
    /// Publish a notification on [`Self::notify_channel`] in every transaction that
    /// changes a prompt, its versions or labels, so that caches of other instances
    /// invalidate (default `true`).
    pub notify: bool,
    /// The channel of those notifications (default `prompt_registry_cache`).
    pub notify_channel: String,
    /// `application_name` of the connections, shown in `pg_stat_activity` (default
    /// `prompt-registry`; the cache listener adds `-cache-listener`).
    pub application_name: String,
    /// Interval of the cache listener's health check of its connection, in
    /// milliseconds (default 30 000): a connection that silently died is noticed
    /// within about this long.
    pub listener_ping_ms: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: String::new(),
            max_connections: 10,
            min_connections: 0,
            acquire_timeout_ms: 1_000,
            run_migrations: true,
            schema: None,
            notify: true,
            notify_channel: DEFAULT_NOTIFY_CHANNEL.to_owned(),
            application_name: "prompt-registry".to_owned(),
            listener_ping_ms: 30_000,
        }
    }
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("run_migrations", &self.run_migrations)
            .field("schema", &self.schema)
            .field("notify", &self.notify)
            .field("notify_channel", &self.notify_channel)
            .field("application_name", &self.application_name)
            .field("listener_ping_ms", &self.listener_ping_ms)
            .finish()
    }
}

/// A plain lower-case SQL identifier: safe to put in SQL text unquoted.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl PostgresConfig {
    /// Defaults with this URL.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    /// Check the values; the error names the bad field (and never shows the password).
    pub fn validate(&self) -> Result<()> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(Error::invalid(
                "url",
                "must start with postgres:// or postgresql://",
            ));
        }
        if self.max_connections == 0 {
            return Err(Error::invalid("max_connections", "must be at least 1"));
        }
        if self.min_connections > self.max_connections {
            return Err(Error::invalid(
                "min_connections",
                "must not exceed max_connections",
            ));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(Error::invalid("acquire_timeout_ms", "must be at least 1"));
        }
        if let Some(s) = &self.schema
            && !is_identifier(s)
        {
            return Err(Error::invalid(
                "schema",
                "must be 1 to 63 characters of [a-z0-9_], not starting with a digit",
            ));
        }
        if !is_identifier(&self.notify_channel) {
            return Err(Error::invalid(
                "notify_channel",
                "must be 1 to 63 characters of [a-z0-9_], not starting with a digit",
            ));
        }
        if self.listener_ping_ms == 0 {
            return Err(Error::invalid("listener_ping_ms", "must be at least 1"));
        }
        Ok(())
    }

    pub(crate) fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let c = PostgresConfig::new("postgres://app:s3cret@db:5432/reg");
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret"), "{d}");
        assert!(d.contains("app:***@db"), "{d}");
    }

    #[test]
    fn validation_names_the_field() {
        let field = |c: &PostgresConfig| match c.validate() {
            Err(Error::InvalidInput { field, message }) => {
                assert!(!message.contains("s3cret"));
                field
            }
            other => panic!("{other:?}"),
        };
        let mut c = PostgresConfig::new("mysql://u:s3cret@h/d");
        assert_eq!(field(&c), "url");
        c.url = "postgres://u:s3cret@h/d".into();
        c.schema = Some("Bad-Schema".into());
        assert_eq!(field(&c), "schema");
        c.schema = Some("t_1".into());
        c.max_connections = 0;
        assert_eq!(field(&c), "max_connections");
        c.max_connections = 3;
        assert!(c.validate().is_ok());
        let c: PostgresConfig =
            serde_json::from_str(r#"{"url": "postgres://h/d", "max_connections": 3}"#).unwrap();
        assert!(c.run_migrations && c.notify);
        assert_eq!(c.notify_channel, DEFAULT_NOTIFY_CHANNEL);
    }
}
