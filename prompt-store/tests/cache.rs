//! The cache layer: hits and misses, invalidation by writes through it, the TTL when
//! something else writes, and — on Postgres — invalidation across instances through
//! LISTEN/NOTIFY, including after the listening connection was lost.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use prompt_core::{NewVersion, PromptStore, Selector};
use prompt_store::testkit::{PgTestSchema, postgres_url};
use prompt_store::{CacheConfig, CachedStore, PostgresStore};
use uuid::Uuid;

/// Poll `f` until it returns `true` or `within` has passed; how long it took.
async fn eventually<F, Fut>(within: Duration, mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn project(s: &dyn PromptStore) -> Uuid {
    s.ensure_project("cache-test").await.unwrap().id
}

#[tokio::test]
async fn hits_misses_and_write_through_invalidation() {
    let (inner, _) = prompt_store::memory();
    let cache = CachedStore::new(inner, CacheConfig::default());
    let p = project(&cache).await;
    let prod = Selector::default();
    cache
        .create_version(p, "x", NewVersion::new("one").with_labels(["production"]))
        .await
        .unwrap();
    assert_eq!(cache.resolve(p, "x", &prod).await.unwrap().version, 1);
    assert_eq!(cache.resolve(p, "x", &prod).await.unwrap().version, 1);
    assert_eq!(
        cache
            .resolve(p, "x", &Selector::Version(1))
            .await
            .unwrap()
            .labels,
        vec!["latest", "production"]
    );
    let s = cache.stats();
    assert_eq!((s.misses, s.hits), (1, 2), "{s:?}");

    // A new version moves `latest` off version 1: the cached version 1 must not keep
    // claiming it.
    cache
        .create_version(p, "x", NewVersion::new("two"))
        .await
        .unwrap();
    assert_eq!(
        cache
            .resolve(p, "x", &Selector::Version(1))
            .await
            .unwrap()
            .labels,
        vec!["production"]
    );
    cache
        .set_label(p, "x", "production", 2, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap();
    assert_eq!(cache.resolve(p, "x", &prod).await.unwrap().version, 2);
    assert!(
        cache
            .resolve(p, "x", &Selector::Version(1))
            .await
            .unwrap()
            .labels
            .is_empty()
    );
    cache
        .delete_label(p, "x", "production", prompt_core::LabelExpect::Any, None)
        .await
        .unwrap();
    assert!(cache.resolve(p, "x", &prod).await.is_err(), "deleted label");
    cache.archive_prompt(p, "x").await.unwrap();
    assert!(
        cache.resolve(p, "x", &Selector::Version(2)).await.is_err(),
        "archived"
    );
    assert!(cache.stats().invalidations >= 4);
    // Bad input is refused exactly like the inner store does, cached or not.
    assert!(cache.resolve(p, "bad name", &prod).await.is_err());
}

/// Writes that bypass the cache (another process on SQLite, here the inner store
/// directly) are seen once the label TTL has passed; version lookups stay cached.
#[tokio::test]
async fn ttl_bounds_staleness_of_foreign_writes() {
    let (inner, _) = prompt_store::memory();
    let cache = CachedStore::new(
        inner.clone(),
        CacheConfig {
            label_ttl_ms: 300,
            ..Default::default()
        },
    );
    let p = project(&cache).await;
    let prod = Selector::default();
    inner
        .create_version(p, "t", NewVersion::new("a").with_labels(["production"]))
        .await
        .unwrap();
    inner
        .create_version(p, "t", NewVersion::new("b"))
        .await
        .unwrap();
    assert_eq!(cache.resolve(p, "t", &prod).await.unwrap().version, 1);
    let moved = Instant::now();
    inner
        .set_label(p, "t", "production", 2, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap();
    assert_eq!(
        cache.resolve(p, "t", &prod).await.unwrap().version,
        1,
        "served from the cache until the TTL passes"
    );
    let took = eventually(Duration::from_secs(3), || async {
        cache.resolve(p, "t", &prod).await.unwrap().version == 2
    })
    .await
    .expect("the TTL must end staleness");
    assert!(moved.elapsed() >= Duration::from_millis(250), "{took:?}");
    // An explicit invalidation (what a listener does) works at once.
    inner
        .set_label(p, "t", "production", 1, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap();
    cache.invalidator().invalidate_prompt(p, "t");
    assert_eq!(cache.resolve(p, "t", &prod).await.unwrap().version, 1);
}

/// A read that fetched the old version just before a write must not put it back in
/// the cache after the write's invalidation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reads_never_cache_stale_versions() {
    let (inner, _) = prompt_store::memory();
    let cache = Arc::new(CachedStore::new(inner, CacheConfig::default()));
    let p = project(cache.as_ref()).await;
    cache
        .create_version(p, "r", NewVersion::new("0").with_labels(["production"]))
        .await
        .unwrap();
    for n in 2..=30u32 {
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let c = cache.clone();
                tokio::spawn(async move {
                    for _ in 0..20 {
                        let _ = c.resolve(p, "r", &Selector::default()).await;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        cache
            .create_version(
                p,
                "r",
                NewVersion::new(format!("{n}")).with_labels(["production"]),
            )
            .await
            .unwrap();
        for r in readers {
            r.await.unwrap();
        }
        assert_eq!(
            cache
                .resolve(p, "r", &Selector::default())
                .await
                .unwrap()
                .version,
            n
        );
    }
}

async fn pg_cache(schema: &PgTestSchema, config: CacheConfig) -> (PostgresStore, CachedStore) {
    let s = PostgresStore::open(schema.config()).await.unwrap();
    let c = CachedStore::with_postgres_invalidation(Arc::new(s.clone()), config, &s);
    (s, c)
}

async fn connected(c: &CachedStore, connects: u64) {
    let l = c.postgres_listener().unwrap();
    eventually(Duration::from_secs(10), || async {
        l.is_connected() && l.connects() >= connects
    })
    .await
    .expect("the listener connects");
}

/// Two independent instances (own pools, own caches) on one database: a label move
/// through one is seen by the other within a second, by notification (the TTL is the
/// default minute). Then the listening connection is killed by the server: the cache
/// reconnects, and moves made meanwhile and afterwards are seen too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_label_move_reaches_other_instances() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let (_sa, a) = pg_cache(&schema, CacheConfig::default()).await;
    let (_sb, b) = pg_cache(&schema, CacheConfig::default()).await;
    connected(&a, 1).await;
    connected(&b, 1).await;
    let p = project(&a).await;
    let prod = Selector::default();
    for i in 0..3 {
        a.create_version(p, "shared", NewVersion::new(format!("{i}")))
            .await
            .unwrap();
    }
    a.set_label(
        p,
        "shared",
        "production",
        1,
        prompt_core::LabelExpect::Any,
        Some("alice"),
    )
    .await
    .unwrap();
    // B reads production (a miss, then a hit: it is cached).
    let seen = |want: u32| {
        let b = &b;
        let prod = &prod;
        move || async move { b.resolve(p, "shared", prod).await.unwrap().version == want }
    };
    // A's four writes so far each notified B twice (the prompt's invalidation and the
    // change feed's wake-up); once B has them all, what B caches stays cached.
    let lb = b.postgres_listener().unwrap();
    eventually(Duration::from_secs(1), || async { lb.notifications() >= 8 })
        .await
        .expect("B receives A's notifications");
    eventually(Duration::from_secs(1), seen(1)).await.unwrap();
    let before = b.stats();
    assert_eq!(b.resolve(p, "shared", &prod).await.unwrap().version, 1);
    assert_eq!(
        b.stats().hits,
        before.hits + 1,
        "B serves it from its cache"
    );

    a.set_label(
        p,
        "shared",
        "production",
        2,
        prompt_core::LabelExpect::Any,
        Some("alice"),
    )
    .await
    .unwrap();
    let took = eventually(Duration::from_secs(1), seen(2))
        .await
        .expect("B sees the move within a second");
    eprintln!("label move seen by the other instance after {took:?}");
    assert_eq!(
        b.resolve(p, "shared", &Selector::Version(2))
            .await
            .unwrap()
            .labels,
        vec!["production"]
    );
    assert!(b.postgres_listener().unwrap().notifications() >= 1);

    // The server drops B's listening connection.
    let pid = b.postgres_listener().unwrap().backend_pid();
    assert_ne!(pid, 0);
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(killed);
    // Moved while B may well be disconnected: the flush on reconnect covers it.
    a.set_label(
        p,
        "shared",
        "production",
        3,
        prompt_core::LabelExpect::Any,
        None,
    )
    .await
    .unwrap();
    connected(&b, 2).await;
    eventually(Duration::from_secs(1), seen(3))
        .await
        .expect("seen after reconnecting");
    a.set_label(
        p,
        "shared",
        "production",
        1,
        prompt_core::LabelExpect::Any,
        None,
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(1), seen(1))
        .await
        .expect("notifications flow again after reconnecting");
    assert!(b.stats().flushes >= 2, "{:?}", b.stats());
}

/// Composition through the cache: a dependent's render resolves its includes through
/// the cache (hits once warm), and a label moved on a dependency is seen by the
/// dependent's next render, with nothing keeping the expanded text.
#[tokio::test]
async fn label_move_on_a_dependency_is_seen_by_the_next_render() {
    let (inner, runs) = prompt_store::memory();
    let cache = Arc::new(CachedStore::new(inner, CacheConfig::default()));
    let store: Arc<dyn PromptStore> = cache.clone();
    let r = prompt_core::Registry::new(store, runs).await.unwrap();
    r.create_version("tone", NewVersion::new("kind").with_labels(["production"]))
        .await
        .unwrap();
    r.create_version("tone", NewVersion::new("terse"))
        .await
        .unwrap();
    r.create_version(
        "mail",
        NewVersion::new("Be {{> tone }}.").with_labels(["production"]),
    )
    .await
    .unwrap();
    let render = || async {
        let (c, out) = r
            .render_composed(
                "mail",
                &Selector::default(),
                &Default::default(),
                Default::default(),
            )
            .await
            .unwrap();
        (out, c.resolution[0].version)
    };
    let text = |s: &str| prompt_core::Rendered::Text(s.into());
    assert_eq!(render().await, (text("Be kind."), 1));
    let before = cache.stats();
    assert_eq!(render().await, (text("Be kind."), 1));
    assert_eq!(
        cache.stats().hits,
        before.hits + 2,
        "the dependent and its dependency come from the cache"
    );
    r.set_label("tone", "production", 2, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap();
    assert_eq!(render().await, (text("Be terse."), 2));
}

fn key_record(project: Uuid) -> prompt_core::ApiKeyRecord {
    prompt_core::ApiKeyRecord {
        id: prompt_core::domain::new_id(),
        project_id: project,
        name: "ci".into(),
        role: prompt_core::KeyRole::Editor,
        prefix: "pr_abcd".into(),
        hash: format!("h-{}", Uuid::new_v4()),
        created_at: prompt_core::domain::now(),
        revoked_at: None,
    }
}

/// Keys found by hash are cached (a request costs no query); a revocation through the
/// cache drops them all at once; one behind its back is bounded by `key_ttl_ms`.
#[tokio::test]
async fn api_keys_are_cached_and_revocation_through_the_cache_is_immediate() {
    let (inner, _) = prompt_store::memory();
    let cache = CachedStore::new(
        inner.clone(),
        CacheConfig {
            key_ttl_ms: 60_000,
            ..CacheConfig::default()
        },
    );
    let p = project(&cache).await;
    let a = cache.create_api_key(key_record(p)).await.unwrap();
    let b = cache.create_api_key(key_record(p)).await.unwrap();
    assert_eq!(cache.api_key_by_hash(&a.hash).await.unwrap().id, a.id);
    assert_eq!(cache.api_key_by_hash(&b.hash).await.unwrap().id, b.id);

    // Revoked behind the cache's back (another process on SQLite): still served.
    inner.revoke_api_key(p, a.id).await.unwrap();
    assert_eq!(cache.api_key_by_hash(&a.hash).await.unwrap().id, a.id);

    // Revoked through the cache: every cached key is dropped, so both are refused now.
    cache.revoke_api_key(p, b.id).await.unwrap();
    for k in [&a, &b] {
        assert!(matches!(
            cache.api_key_by_hash(&k.hash).await,
            Err(prompt_core::Error::NotFound { .. })
        ));
    }
    // Unknown keys are not cached: one created behind the cache works at once.
    let c = inner.create_api_key(key_record(p)).await.unwrap();
    assert!(matches!(
        cache.api_key_by_hash("nope").await,
        Err(prompt_core::Error::NotFound { .. })
    ));
    assert_eq!(cache.api_key_by_hash(&c.hash).await.unwrap().id, c.id);
}

#[tokio::test]
async fn key_ttl_bounds_a_revocation_made_elsewhere() {
    let (inner, _) = prompt_store::memory();
    let cache = CachedStore::new(
        inner.clone(),
        CacheConfig {
            key_ttl_ms: 50,
            ..CacheConfig::default()
        },
    );
    let p = project(&cache).await;
    let k = cache.create_api_key(key_record(p)).await.unwrap();
    cache.api_key_by_hash(&k.hash).await.unwrap();
    inner.revoke_api_key(p, k.id).await.unwrap();
    eventually(Duration::from_secs(10), || async {
        cache.api_key_by_hash(&k.hash).await.is_err()
    })
    .await
    .expect("refused once the TTL has passed");
}

/// On Postgres, a key revoked through one instance is refused by the other at once
/// (by notification; its key TTL is a minute here).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_key_revocation_reaches_other_instances() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let config = CacheConfig {
        key_ttl_ms: 60_000,
        ..CacheConfig::default()
    };
    let (_sa, a) = pg_cache(&schema, config.clone()).await;
    let (_sb, b) = pg_cache(&schema, config).await;
    connected(&a, 1).await;
    connected(&b, 1).await;
    let p = project(&a).await;
    let k = a.create_api_key(key_record(p)).await.unwrap();
    assert_eq!(b.api_key_by_hash(&k.hash).await.unwrap().id, k.id);
    let before = b.postgres_listener().unwrap().notifications();
    a.revoke_api_key(p, k.id).await.unwrap();
    let took = eventually(Duration::from_secs(5), || async {
        b.api_key_by_hash(&k.hash).await.is_err()
    })
    .await
    .expect("B refuses the revoked key");
    assert!(b.postgres_listener().unwrap().notifications() > before);
    eprintln!("revocation seen by the other instance after {took:?}");
}
