//! The cache layer: [`CachedStore`], a decorator implementing [`PromptStore`] around
//! any other store, caching resolved versions in memory (moka).
//!
//! - `resolve` by version number is cached without expiry (versions are immutable);
//!   by label with a TTL ([`CacheConfig::label_ttl_ms`], default 60 s).
//! - Every write through the cache invalidates the prompt it touched at once — all of
//!   that prompt's entries, since a version's `labels` change when a label moves.
//! - Other processes' writes arrive through an [`Invalidator`]: on Postgres,
//!   [`CachedStore::with_postgres_invalidation`] listens to the store's `NOTIFY`
//!   channel, and flushes everything whenever the listening connection was lost
//!   (notifications may have been missed); meanwhile the TTL bounds staleness.
//!
//! - `api_key_by_hash` is cached for [`CacheConfig::key_ttl_ms`] (default 5 s), so an
//!   authenticated request does not cost a database query; `revoke_api_key` through
//!   the cache drops every cached key at once, and on Postgres a revocation by another
//!   instance arrives by `NOTIFY` like a prompt write. Unknown keys are not cached.
//!
//! Invalidation does not remove entries: it bumps a generation counter of the prompt
//! (one of a fixed set of striped counters) and every entry carries the generation it
//! was read under. An entry of an older generation is a miss. This also closes the
//! race of a read that fetched the old version just before a write and would
//! otherwise cache it after the invalidation: it carries the old generation.
//!
//! Over 600 lines as one job, the cache: its state and the one `PromptStore`
//! implementation that consults it (each method either delegates, invalidates or
//! looks up). What is done while the database is down is its own module, `outage` (`cache/outage.rs`).

mod config;
mod key;
mod outage;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use moka::sync::Cache;
use prompt_core::export::Progress;
use prompt_core::page::{Page, PageRequest};
use prompt_core::store::PromptFilter;
use prompt_core::{
    ApiKeyRecord, BatchFailure, BatchOp, BatchOutcome, Error, ExportOptions, ImportOptions,
    ImportPlan, LabelExpect, LabelMove, NewPrompt, NewVersion, Project, Prompt, PromptBundle,
    PromptStore, PromptUpdate, PromptVersion, Result, Selector, SplitWeights,
};
use uuid::Uuid;

pub use config::CacheConfig;
use key::{KeyParts, OwnedKey, Probe};
use outage::Outage;
pub use outage::{OUTAGE_RETRY_AFTER, PROBE_INTERVAL, PROBE_TIMEOUT, watch_stale};

/// How many generation counters prompts are spread over. Two prompts sharing one only
/// cost each other a cache miss when either is written.
const STRIPES: usize = 1024;

/// Counters of a cache, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `resolve` calls answered from the cache.
    pub hits: u64,
    /// `resolve` calls that went to the inner store.
    pub misses: u64,
    /// Prompts invalidated (by writes here or notifications from elsewhere).
    pub invalidations: u64,
    /// Whole-cache flushes (e.g. after the notification connection was re-made).
    pub flushes: u64,
}

/// The generation an entry was read under: (global epoch, prompt's stripe counter).
type Stamp = (u64, u64);

#[derive(Clone)]
struct Entry {
    version: Arc<PromptVersion>,
    stamp: Stamp,
}

/// The last answer read from the database for a lookup, kept for
/// [`CacheConfig::stale_if_error_ms`] to answer it while the database is unavailable.
#[derive(Clone)]
struct LastGood<T> {
    value: T,
    read_at: std::time::Instant,
}

#[derive(Clone)]
struct KeyEntry {
    record: ApiKeyRecord,
    /// (global epoch, key generation) when it was read.
    stamp: Stamp,
}

/// The hasher of the version caches and the stripes: randomly seeded, and several
/// times faster than SipHash on these short keys (a resolve hashes two).
type Hasher = foldhash::fast::RandomState;
type VersionKey = OwnedKey<u32>;
type LabelKey = OwnedKey<String>;
/// A resolve as it was asked: (project, prompt, selector).
type ResolveKey = (Uuid, String, Selector);

struct State {
    by_version: Cache<VersionKey, Entry, Hasher>,
    by_label: Cache<LabelKey, Entry, Hasher>,
    /// Every resolve's last answer (by label and by number), for stale-if-error.
    last_good: Option<Cache<ResolveKey, LastGood<Arc<PromptVersion>>>>,
    /// Every key lookup's last answer, for stale-if-error; emptied by revocations.
    last_good_keys: Option<Cache<String, LastGood<ApiKeyRecord>>>,
    /// API keys by hash (absent when key caching is off).
    keys: Option<Cache<String, KeyEntry>>,
    /// Bumped by every revocation (here or notified): older key entries are misses.
    key_generation: AtomicU64,
    epoch: AtomicU64,
    stripes: Box<[AtomicU64]>,
    hasher: Hasher,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

impl State {
    fn stripe(&self, project: Uuid, name: &str) -> &AtomicU64 {
        let h = self.hasher.hash_one((project, name)) as usize;
        &self.stripes[h % self.stripes.len()]
    }

    fn stamp(&self, project: Uuid, name: &str) -> Stamp {
        (
            self.epoch.load(Ordering::Acquire),
            self.stripe(project, name).load(Ordering::Acquire),
        )
    }

    fn invalidate(&self, project: Uuid, name: &str) {
        self.stripe(project, name).fetch_add(1, Ordering::AcqRel);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        // Free the memory too; correctness does not depend on it (the epoch did it).
        self.by_version.invalidate_all();
        self.by_label.invalidate_all();
        if let Some(k) = &self.keys {
            k.invalidate_all();
        }
        if let Some(k) = &self.last_good_keys {
            k.invalidate_all();
        }
    }

    fn key_stamp(&self) -> Stamp {
        (
            self.epoch.load(Ordering::Acquire),
            self.key_generation.load(Ordering::Acquire),
        )
    }

    fn invalidate_keys(&self) {
        self.key_generation.fetch_add(1, Ordering::AcqRel);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = &self.keys {
            k.invalidate_all();
        }
        // A revoked key must not come back from the stale copies either.
        if let Some(k) = &self.last_good_keys {
            k.invalidate_all();
        }
    }
}

/// The cache of last answers kept `ttl_ms` for stale-if-error (none when 0).
fn stale_cache<K, V>(ttl_ms: u64, max: u64) -> Option<Cache<K, V>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    (ttl_ms > 0).then(|| {
        Cache::builder()
            .max_capacity(max.max(1))
            .time_to_live(std::time::Duration::from_millis(ttl_ms))
            .build()
    })
}

/// A handle that invalidates a [`CachedStore`] from outside, e.g. from a listener of
/// another process's writes. It does not keep the cache alive: once the cache is
/// dropped, its methods return `false`.
#[derive(Clone)]
pub struct Invalidator {
    state: Weak<State>,
}

impl std::fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator")
            .field("cache_alive", &!self.is_closed())
            .finish()
    }
}

impl Invalidator {
    /// Forget everything cached about one prompt. `false` if the cache is gone.
    pub fn invalidate_prompt(&self, project: Uuid, name: &str) -> bool {
        match self.state.upgrade() {
            Some(s) => {
                s.invalidate(project, name);
                true
            }
            None => false,
        }
    }

    /// Forget every cached API key (a key was revoked elsewhere). `false` if the cache
    /// is gone.
    pub fn invalidate_keys(&self) -> bool {
        match self.state.upgrade() {
            Some(s) => {
                s.invalidate_keys();
                true
            }
            None => false,
        }
    }

    /// Forget everything. `false` if the cache is gone.
    pub fn invalidate_all(&self) -> bool {
        match self.state.upgrade() {
            Some(s) => {
                s.flush();
                true
            }
            None => false,
        }
    }

    /// Whether the cache was dropped.
    pub fn is_closed(&self) -> bool {
        self.state.strong_count() == 0
    }
}

/// A [`PromptStore`] that caches `resolve` in front of another store and delegates
/// everything else. See the [module docs](self).
pub struct CachedStore {
    inner: Arc<dyn PromptStore>,
    state: Arc<State>,
    config: CacheConfig,
    /// Whether the database is down (see [`outage`]).
    outage: Arc<Outage>,
    /// Whatever feeds invalidations from other processes; dropped with the cache.
    listener: Option<Box<dyn std::any::Any + Send + Sync>>,
    #[cfg(feature = "postgres")]
    pg_listener: Option<Arc<crate::postgres::ListenerStatus>>,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl CachedStore {
    /// A cache in front of `inner`, invalidated by its own writes and the TTL.
    /// Zero sizes or TTL are raised to 1 (see [`CacheConfig::validate`] to refuse them).
    pub fn new(inner: Arc<dyn PromptStore>, config: CacheConfig) -> Self {
        let by_version = Cache::builder()
            .max_capacity(config.max_versions.max(1))
            .build_with_hasher(Hasher::default());
        let by_label = Cache::builder()
            .max_capacity(config.max_labels.max(1))
            .time_to_live(config.label_ttl().max(std::time::Duration::from_millis(1)))
            .build_with_hasher(Hasher::default());
        let keys = (config.key_ttl_ms > 0).then(|| {
            Cache::builder()
                .max_capacity(config.max_labels.max(1))
                .time_to_live(std::time::Duration::from_millis(config.key_ttl_ms))
                .build()
        });
        let stripes: Box<[AtomicU64]> = (0..STRIPES).map(|_| AtomicU64::new(0)).collect();
        CachedStore {
            inner,
            state: Arc::new(State {
                by_version,
                by_label,
                last_good: stale_cache(
                    config.stale_if_error_ms,
                    config.max_versions.saturating_add(config.max_labels),
                ),
                last_good_keys: if config.key_ttl_ms > 0 {
                    stale_cache(config.stale_if_error_ms, config.max_labels)
                } else {
                    None
                },
                keys,
                key_generation: AtomicU64::new(0),
                epoch: AtomicU64::new(0),
                stripes,
                hasher: Hasher::default(),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                invalidations: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
            }),
            config,
            outage: Arc::default(),
            listener: None,
            #[cfg(feature = "postgres")]
            pg_listener: None,
        }
    }

    /// A cache in front of `inner` (which should be `postgres` or a wrapper of it) that
    /// also listens to `postgres`'s notification channel, so that writes made by other
    /// processes on the same database invalidate it within moments. The listener runs
    /// on the current Tokio runtime and stops when the cache is dropped.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (like `tokio::spawn`).
    #[cfg(feature = "postgres")]
    pub fn with_postgres_invalidation(
        inner: Arc<dyn PromptStore>,
        config: CacheConfig,
        postgres: &crate::postgres::PostgresStore,
    ) -> Self {
        let mut cache = CachedStore::new(inner, config);
        let handle = postgres.listen_for_invalidations(cache.invalidator());
        cache.pg_listener = Some(handle.status());
        cache.listener = Some(Box::new(handle));
        cache
    }

    /// The state of the Postgres notification listener, if this cache has one.
    #[cfg(feature = "postgres")]
    pub fn postgres_listener(&self) -> Option<&crate::postgres::ListenerStatus> {
        self.pg_listener.as_deref()
    }

    /// Keep `guard` alive as long as the cache (e.g. the handle of a task feeding an
    /// [`Invalidator`]).
    pub fn keep_alive(&mut self, guard: Box<dyn std::any::Any + Send + Sync>) {
        self.listener = Some(guard);
    }

    /// A handle to invalidate this cache from elsewhere.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator {
            state: Arc::downgrade(&self.state),
        }
    }

    /// Hit, miss and invalidation counters.
    pub fn stats(&self) -> CacheStats {
        let s = &self.state;
        CacheStats {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            invalidations: s.invalidations.load(Ordering::Relaxed),
            flushes: s.flushes.load(Ordering::Relaxed),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<dyn PromptStore> {
        &self.inner
    }

    /// Forget everything cached about one prompt.
    pub fn invalidate_prompt(&self, project: Uuid, name: &str) {
        self.state.invalidate(project, name);
    }

    /// Forget everything.
    pub fn invalidate_all(&self) {
        self.state.flush();
    }

    fn lookup(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
        stamp: Stamp,
    ) -> Option<Arc<PromptVersion>> {
        let entry = match selector {
            Selector::Version(n) => {
                let probe: &dyn KeyParts<u32> = &Probe {
                    project,
                    name,
                    part: n,
                };
                self.state.by_version.get(probe)
            }
            Selector::Label(l) => {
                let probe: &dyn KeyParts<str> = &Probe {
                    project,
                    name,
                    part: l.as_str(),
                };
                self.state.by_label.get(probe)
            }
        }?;
        (entry.stamp == stamp).then_some(entry.version)
    }

    /// Cache `v` as the answer of `selector` (and of its number); returns the shared
    /// copy, for the stale-if-error one to reuse instead of cloning again.
    fn remember(
        &self,
        project: Uuid,
        selector: &Selector,
        v: PromptVersion,
        stamp: Stamp,
    ) -> Arc<PromptVersion> {
        let shared = Arc::new(v);
        let entry = Entry {
            version: shared.clone(),
            stamp,
        };
        if let Selector::Label(l) = selector {
            self.state.by_label.insert(
                OwnedKey::new(project, &shared.prompt, l.clone()),
                entry.clone(),
            );
        }
        // A version found through a label is also the answer for its number (without
        // the label's release split, which a number does not carry).
        let entry = match &shared.split {
            None => entry,
            Some(_) => Entry {
                version: Arc::new(PromptVersion {
                    split: None,
                    ..PromptVersion::clone(&shared)
                }),
                stamp,
            },
        };
        self.state.by_version.insert(
            OwnedKey::new(project, &shared.prompt, shared.version),
            entry,
        );
        shared
    }

    /// Run an operation of the inner store: refused at once while the database is down;
    /// an `Unavailable` answer makes the layer check whether it is (see [`outage`]).
    async fn guarded<T>(&self, op: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        if let Some(since) = self.outage.down_since() {
            return Err(self.outage.refused(since));
        }
        let r = op.await;
        self.outage.observe(&r, &self.inner);
        r
    }

    /// Since when the database has not answered, if it does not (found by the probe an
    /// `Unavailable` error starts). Meanwhile every operation but the stale-served
    /// `resolve` and key lookups is refused at once with `Unavailable`.
    pub fn database_down_since(&self) -> Option<std::time::Instant> {
        self.outage.down_since()
    }

    /// Check whether the database is down (as an `Unavailable` answer does): for a
    /// caller that gave up waiting on it, e.g. a readiness check that timed out.
    pub fn check_database(&self) {
        self.outage.suspect(&self.inner);
    }

    /// After a write to `name` (successful or not: a failed write may still have
    /// committed, e.g. when the connection broke during the commit).
    fn wrote(&self, project: Uuid, name: &str) {
        self.state.invalidate(project, name);
    }
}

#[async_trait]
impl PromptStore for CachedStore {
    fn server(&self) -> Option<Arc<dyn prompt_core::RegistryServer>> {
        self.inner.server()
    }

    /// The inner store's keys: they are never cached (a claim must be atomic).
    fn idempotency(&self) -> Option<Arc<dyn prompt_core::IdempotencyStore>> {
        self.inner.idempotency()
    }

    async fn create_project(&self, name: &str) -> Result<Project> {
        self.guarded(self.inner.create_project(name)).await
    }

    async fn project_by_name(&self, name: &str) -> Result<Project> {
        self.guarded(self.inner.project_by_name(name)).await
    }

    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        self.guarded(self.inner.project_by_id(id)).await
    }

    async fn ensure_project(&self, name: &str) -> Result<Project> {
        self.guarded(self.inner.ensure_project(name)).await
    }

    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt> {
        let name = new.name.clone();
        let r = self.guarded(self.inner.create_prompt(project, new)).await;
        self.wrote(project, &name);
        r
    }

    async fn get_prompt(&self, project: Uuid, name: &str) -> Result<Prompt> {
        self.guarded(self.inner.get_prompt(project, name)).await
    }

    async fn prompt_by_id(&self, project: Uuid, id: Uuid) -> Result<Prompt> {
        self.guarded(self.inner.prompt_by_id(project, id)).await
    }

    async fn list_prompts(
        &self,
        project: Uuid,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>> {
        self.guarded(self.inner.list_prompts(project, filter, page))
            .await
    }

    async fn update_prompt(
        &self,
        project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt> {
        let r = self
            .guarded(self.inner.update_prompt(project, name, update, if_match))
            .await;
        self.wrote(project, name);
        r
    }

    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()> {
        let r = self.guarded(self.inner.archive_prompt(project, name)).await;
        self.wrote(project, name);
        r
    }

    async fn create_version(
        &self,
        project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion> {
        let r = self
            .guarded(self.inner.create_version(project, name, new))
            .await;
        self.wrote(project, name);
        r
    }

    async fn list_versions(
        &self,
        project: Uuid,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>> {
        self.guarded(self.inner.list_versions(project, name, page))
            .await
    }

    async fn resolve(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion> {
        self.resolve_shared(project, name, selector)
            .await
            .map(Arc::unwrap_or_clone)
    }

    async fn resolve_shared(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<PromptVersion>> {
        let stamp = self.state.stamp(project, name);
        if let Some(v) = self.lookup(project, name, selector, stamp) {
            self.state.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v);
        }
        self.state.misses.fetch_add(1, Ordering::Relaxed);
        let last_key = || (project, name.to_owned(), selector.clone());
        let r = match self.outage.down_since() {
            Some(since) => Err(self.outage.refused(since)),
            None => {
                let r = self.inner.resolve(project, name, selector).await;
                self.outage.observe(&r, &self.inner);
                r
            }
        };
        match r {
            Ok(v) => {
                let shared = self.remember(project, selector, v, stamp);
                if let Some(last) = &self.state.last_good {
                    last.insert(
                        last_key(),
                        LastGood {
                            value: shared.clone(),
                            read_at: std::time::Instant::now(),
                        },
                    );
                }
                Ok(shared)
            }
            // Stale-if-error: the database does not answer; the last answer does.
            Err(e @ Error::Unavailable { .. }) => {
                match self
                    .state
                    .last_good
                    .as_ref()
                    .and_then(|l| l.get(&last_key()))
                {
                    Some(last) => {
                        outage::served_stale(last.read_at.elapsed());
                        Ok(last.value)
                    }
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn version_by_id(&self, project: Uuid, id: Uuid) -> Result<PromptVersion> {
        self.guarded(self.inner.version_by_id(project, id)).await
    }

    async fn set_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        version: u32,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        let r = self
            .guarded(
                self.inner
                    .set_label(project, name, label, version, expect, actor),
            )
            .await;
        self.wrote(project, name);
        r
    }

    async fn set_label_split(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        weights: &SplitWeights,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        let r = self
            .guarded(
                self.inner
                    .set_label_split(project, name, label, weights, expect, actor),
            )
            .await;
        self.wrote(project, name);
        r
    }

    async fn delete_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        let r = self
            .guarded(self.inner.delete_label(project, name, label, expect, actor))
            .await;
        self.wrote(project, name);
        r
    }

    async fn delete_version(
        &self,
        project: Uuid,
        name: &str,
        version: u32,
        actor: Option<&str>,
    ) -> Result<()> {
        let r = self
            .guarded(self.inner.delete_version(project, name, version, actor))
            .await;
        self.wrote(project, name);
        r
    }

    // Protected labels are not cached: the HTTP service reads them only on label
    // writes, never on the resolve path.
    async fn protected_labels(
        &self,
        project: Uuid,
        defaults: &[String],
    ) -> Result<Vec<prompt_core::ProtectedLabel>> {
        self.guarded(self.inner.protected_labels(project, defaults))
            .await
    }

    async fn protect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<(prompt_core::ProtectedLabel, bool)> {
        self.guarded(self.inner.protect_label(project, label, defaults, actor))
            .await
    }

    async fn unprotect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<()> {
        self.guarded(self.inner.unprotect_label(project, label, defaults, actor))
            .await
    }

    async fn apply_batch(
        &self,
        project: Uuid,
        ops: Vec<BatchOp>,
    ) -> std::result::Result<Vec<BatchOutcome>, BatchFailure> {
        let names: Vec<String> = ops.iter().map(|op| op.prompt_name().to_owned()).collect();
        if let Some(since) = self.outage.down_since() {
            return Err(self.outage.refused(since).into());
        }
        let r = self.inner.apply_batch(project, ops).await;
        if let Err(f) = &r
            && matches!(f.error, Error::Unavailable { .. })
        {
            self.outage
                .observe::<()>(&Err(f.error.clone()), &self.inner);
        }
        for name in &names {
            self.wrote(project, name);
        }
        r
    }

    async fn export_bundle(
        &self,
        project: Uuid,
        options: &ExportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<PromptBundle>> {
        self.guarded(self.inner.export_bundle(project, options, progress))
            .await
    }

    async fn import_bundle(
        &self,
        project: Uuid,
        bundle: &PromptBundle,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<ImportPlan>> {
        let r = self
            .guarded(self.inner.import_bundle(project, bundle, options, progress))
            .await;
        if !options.dry_run {
            for doc in &bundle.prompts {
                self.wrote(project, &doc.name);
            }
        }
        r
    }

    async fn label_history(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>> {
        self.guarded(self.inner.label_history(project, name, label, page))
            .await
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        self.guarded(self.inner.create_api_key(record)).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        let Some(keys) = &self.state.keys else {
            return self.guarded(self.inner.api_key_by_hash(hash)).await;
        };
        let stamp = self.state.key_stamp();
        if let Some(e) = keys.get(hash)
            && e.stamp == stamp
        {
            return Ok(e.record);
        }
        let record = match self.guarded(self.inner.api_key_by_hash(hash)).await {
            Ok(r) => r,
            Err(e @ Error::Unavailable { .. }) => {
                let last = self.state.last_good_keys.as_ref().and_then(|l| l.get(hash));
                return match last {
                    Some(last) => {
                        outage::served_stale(last.read_at.elapsed());
                        Ok(last.value)
                    }
                    None => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        if let Some(last) = &self.state.last_good_keys {
            last.insert(
                hash.to_owned(),
                LastGood {
                    value: record.clone(),
                    read_at: std::time::Instant::now(),
                },
            );
        }
        keys.insert(
            hash.to_owned(),
            KeyEntry {
                record: record.clone(),
                stamp,
            },
        );
        Ok(record)
    }

    async fn list_api_keys(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        self.guarded(self.inner.list_api_keys(project)).await
    }

    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        let r = self.guarded(self.inner.revoke_api_key(project, id)).await;
        // Also after an error: the revocation may have committed.
        self.state.invalidate_keys();
        r
    }

    async fn put_provider_credential(
        &self,
        credential: prompt_core::ProviderCredential,
    ) -> Result<prompt_core::ProviderCredential> {
        self.guarded(self.inner.put_provider_credential(credential))
            .await
    }

    async fn get_provider_credential(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<prompt_core::ProviderCredential> {
        self.guarded(self.inner.get_provider_credential(project, name))
            .await
    }

    async fn list_provider_credentials(
        &self,
        project: Uuid,
    ) -> Result<Vec<prompt_core::ProviderCredential>> {
        self.guarded(self.inner.list_provider_credentials(project))
            .await
    }

    async fn delete_provider_credential(&self, project: Uuid, name: &str) -> Result<()> {
        self.guarded(self.inner.delete_provider_credential(project, name))
            .await
    }

    async fn reseal_provider_credentials(
        &self,
        reseal: &prompt_core::credential::Reseal,
    ) -> Result<u64> {
        self.guarded(self.inner.reseal_provider_credentials(reseal))
            .await
    }

    async fn set_run_retention(&self, project: Uuid, days: Option<u32>) -> Result<Project> {
        self.guarded(self.inner.set_run_retention(project, days))
            .await
    }

    async fn projects_with_retention(&self) -> Result<Vec<Project>> {
        self.guarded(self.inner.projects_with_retention()).await
    }

    /// Answers at once while the database is known to be down.
    async fn ping(&self) -> Result<()> {
        self.guarded(self.inner.ping()).await
    }
}
