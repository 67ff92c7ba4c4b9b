//! Opening the storage backend named by a database URL, with the resolve cache in front.

use std::sync::Arc;
use std::time::Duration;

use prompt_core::{PromptStore, Result, RunLog};
use prompt_store::{Backend, CacheConfig, CachedStore, OpenOptions};

/// An opened backend as the service uses it.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The prompt store, behind the cache when one is configured.
    pub store: Arc<dyn PromptStore>,
    /// The run log.
    pub runs: Arc<dyn RunLog>,
    /// The cache, for its hit/miss counters.
    pub cache: Option<Arc<CachedStore>>,
    /// The backend itself (to close its pool on shutdown).
    pub backend: Backend,
}

/// How the service opens its backend (see [`open_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendSettings {
    /// How long a label lookup is served from the cache; zero: no cache at all.
    pub cache_ttl: Duration,
    /// How long an API key is served from the cache; zero: not cached.
    pub key_ttl: Duration,
    /// How long the last answers of resolves and key lookups are kept to answer while
    /// the database is unavailable (stale-if-error); zero: never.
    pub stale_if_error: Duration,
    /// How long an operation waits for a Postgres connection before `Unavailable`
    /// (`None`: the backend's default, 1 s).
    pub acquire_timeout: Option<Duration>,
}

impl Default for BackendSettings {
    fn default() -> Self {
        let cache = CacheConfig::default();
        BackendSettings {
            cache_ttl: cache.label_ttl(),
            key_ttl: Duration::from_millis(cache.key_ttl_ms),
            stale_if_error: Duration::from_millis(cache.stale_if_error_ms),
            acquire_timeout: None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Open the backend of `url` (applying migrations) with a label cache of `cache_ttl`
/// (none when zero) that also caches API keys for `key_ttl` (not when zero), and the
/// other settings at their defaults. See [`open_with`].
pub async fn open(url: &str, cache_ttl: Duration, key_ttl: Duration) -> Result<Opened> {
    open_with(
        url,
        &BackendSettings {
            cache_ttl,
            key_ttl,
            ..BackendSettings::default()
        },
    )
    .await
}

/// Open the backend of `url` (applying migrations) as `settings` say. On Postgres the
/// cache also listens for invalidations (and revocations) from other instances.
pub async fn open_with(url: &str, settings: &BackendSettings) -> Result<Opened> {
    let options = OpenOptions {
        acquire_timeout: settings.acquire_timeout,
        ..OpenOptions::default()
    };
    let backend = prompt_store::open_with(url, &options).await?;
    let cache = if settings.cache_ttl.is_zero() {
        None
    } else {
        let config = CacheConfig {
            label_ttl_ms: millis(settings.cache_ttl),
            key_ttl_ms: millis(settings.key_ttl),
            stale_if_error_ms: millis(settings.stale_if_error),
            ..CacheConfig::default()
        };
        config.validate()?;
        let cached = match backend.as_postgres() {
            Some(pg) => CachedStore::with_postgres_invalidation(backend.store.clone(), config, pg),
            None => CachedStore::new(backend.store.clone(), config),
        };
        Some(Arc::new(cached))
    };
    let store: Arc<dyn PromptStore> = match &cache {
        Some(c) => c.clone(),
        None => backend.store.clone(),
    };
    Ok(Opened {
        store,
        runs: backend.runs.clone(),
        cache,
        backend,
    })
}

/// Apply the migrations of the database at `url`; returns the applied versions.
pub async fn migrate(url: &str) -> Result<Vec<i64>> {
    prompt_store::migrate(url).await.map(|r| r.applied)
}

/// Revert the newest `count` migrations of the database at `url` (see
/// [`prompt_store::revert`]).
pub async fn revert(url: &str, count: u32) -> Result<prompt_store::RevertReport> {
    prompt_store::revert(url, count).await
}
