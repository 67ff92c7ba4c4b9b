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

/// Open the backend of `url` (applying migrations) with a label cache of `cache_ttl`
/// (none when zero) that also caches API keys for `key_ttl` (not when zero). On
/// Postgres the cache also listens for invalidations (and revocations) from other
/// instances.
pub async fn open(url: &str, cache_ttl: Duration, key_ttl: Duration) -> Result<Opened> {
    let backend = prompt_store::open_with(url, &OpenOptions::default()).await?;
    let cache = if cache_ttl.is_zero() {
        None
    } else {
        let config = CacheConfig {
            label_ttl_ms: u64::try_from(cache_ttl.as_millis()).unwrap_or(u64::MAX),
            key_ttl_ms: u64::try_from(key_ttl.as_millis()).unwrap_or(u64::MAX),
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
