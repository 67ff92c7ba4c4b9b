//! Configuration of the cache layer.

use std::time::Duration;

use prompt_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// Configuration of [`super::CachedStore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How long a version resolved through a label is served from the cache before it
    /// is read again, in milliseconds (default 60 000). Writes through this cache
    /// invalidate at once, and so do other instances' writes on Postgres; this bounds
    /// staleness in every other case (another process writing to SQLite, a lost
    /// notification connection).
    pub label_ttl_ms: u64,
    /// Most versions kept by (project, prompt, number); they never expire, being
    /// immutable (default 10 000).
    pub max_versions: u64,
    /// Most label lookups kept (default 10 000).
    pub max_labels: u64,
    /// How long an API key found by its hash is served from the cache, in milliseconds
    /// (default 5 000; 0 turns key caching off). A revocation through this cache, or on
    /// Postgres through any instance, takes effect at once; this bounds the delay only
    /// when another process revokes on SQLite (e.g. `prompt-registry keys revoke` next
    /// to a running server).
    pub key_ttl_ms: u64,
    /// Stale-if-error: how long the last answer of a `resolve` or of a key lookup is
    /// kept to answer it while the database is unavailable, in milliseconds (default
    /// 3 600 000, an hour; 0 turns it off). Such answers are marked (see
    /// [`super::watch_stale`]). A revocation empties the stale keys at once.
    pub stale_if_error_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            label_ttl_ms: 60_000,
            max_versions: 10_000,
            max_labels: 10_000,
            key_ttl_ms: 5_000,
            stale_if_error_ms: 3_600_000,
        }
    }
}

impl CacheConfig {
    /// Check the values; the error names the bad field.
    pub fn validate(&self) -> Result<()> {
        if self.label_ttl_ms == 0 {
            return Err(Error::invalid(
                "label_ttl_ms",
                "must be at least 1 (disable the cache instead)",
            ));
        }
        if self.max_versions == 0 {
            return Err(Error::invalid("max_versions", "must be at least 1"));
        }
        if self.max_labels == 0 {
            return Err(Error::invalid("max_labels", "must be at least 1"));
        }
        Ok(())
    }

    /// The label TTL as a duration.
    pub fn label_ttl(&self) -> Duration {
        Duration::from_millis(self.label_ttl_ms)
    }
}
