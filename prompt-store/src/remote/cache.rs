//! The client-side cache of remote lookups: fresh entries are answered at once, stale
//! ones too while one background request per key refreshes them.
//!
//! Races: a write through this client, once answered, bumps an epoch and drops the
//! prompt's entries; a fetch only stores its answer if the epoch did not move while it
//! was in flight, checking and inserting under the same lock as the bump and drop. So
//! an answer read before such a write is either stored before the drop (and dropped
//! with it) or not stored at all.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prompt_core::{Error, PromptVersion, Result, Selector};

use super::RemoteStore;

type Key = (String, Selector);

#[derive(Debug)]
struct Entry {
    version: Arc<PromptVersion>,
    fetched: Instant,
}

/// Cached `resolve` answers of one [`RemoteStore`].
pub(super) struct ResolveCache {
    ttl: Duration,
    entries: moka::sync::Cache<Key, Arc<Entry>>,
    /// Keys with a background refresh in flight (one per key at a time).
    refreshing: Mutex<HashSet<Key>>,
    epoch: AtomicU64,
    /// Held across "check the epoch, insert" and "bump the epoch, drop": an insert
    /// checked before a drop then lands before it, and is dropped with it.
    writes: Mutex<()>,
}

impl ResolveCache {
    pub(super) fn new(ttl: Duration, capacity: u64) -> Self {
        ResolveCache {
            ttl,
            entries: moka::sync::Cache::builder().max_capacity(capacity).build(),
            refreshing: Mutex::new(HashSet::new()),
            epoch: AtomicU64::new(0),
            writes: Mutex::new(()),
        }
    }

    pub(super) fn clear(&self) {
        let _w = self.writes.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate_all();
    }

    /// Drop every lookup of `name` (after a write to it through this client).
    pub(super) fn invalidate_prompt(&self, name: &str) {
        let _w = self.writes.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Each matching key at once (a prompt has a few lookups cached). Not
        // `invalidate_entries_if`: it works in the background by insertion time, at a
        // clock granularity that can take an answer stored right after this drop for
        // one stored before it, and drop it too.
        let keys: Vec<Key> = self
            .entries
            .iter()
            .filter(|(k, _)| k.0 == name)
            .map(|(k, _)| Key::clone(&k))
            .collect();
        for k in keys {
            self.entries.invalidate(&k);
        }
    }

    fn store(&self, key: Key, version: Arc<PromptVersion>, epoch: u64) {
        let _w = self.writes.lock();
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.entries.insert(
                key,
                Arc::new(Entry {
                    version,
                    fetched: Instant::now(),
                }),
            );
        }
    }

    pub(super) async fn resolve(
        &self,
        store: &RemoteStore,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<PromptVersion>> {
        let key = (name.to_owned(), selector.clone());
        if let Some(hit) = self.entries.get(&key) {
            if hit.fetched.elapsed() >= self.ttl {
                self.refresh_in_background(store, key);
            }
            return Ok(hit.version.clone());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let version = Arc::new(store.fetch_version(name, selector).await?);
        self.store(key, version.clone(), epoch);
        Ok(version)
    }

    fn refresh_in_background(&self, store: &RemoteStore, key: Key) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        match self.refreshing.lock() {
            Ok(mut set) => {
                if !set.insert(key.clone()) {
                    return;
                }
            }
            Err(_) => return,
        }
        let store = store.clone();
        handle.spawn(async move {
            let Some(cache) = store.inner.cache.as_ref() else {
                return;
            };
            let epoch = cache.epoch.load(Ordering::Acquire);
            match store.fetch_version(&key.0, &key.1).await {
                Ok(v) => cache.store(key.clone(), Arc::new(v), epoch),
                // The label was deleted or the prompt archived: stop serving it.
                Err(Error::NotFound { .. }) => cache.entries.invalidate(&key),
                // Server down or refusing: keep serving what we have; the next lookup
                // after the TTL tries again.
                Err(e) => {
                    tracing::warn!(prompt = %key.0, error = %e, "remote refresh failed; serving the cached version");
                }
            }
            if let Ok(mut set) = cache.refreshing.lock() {
                set.remove(&key);
            }
        });
    }
}
