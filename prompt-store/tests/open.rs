//! Opening backends from URLs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::path::{Component, Path, PathBuf};

use prompt_core::{NewVersion, Registry, Selector};
use prompt_store::testkit::{PgTestSchema, postgres_url};
use prompt_store::{BackendKind, CacheConfig, OpenOptions};

async fn roundtrip(url: &str, kind: BackendKind) {
    let b = prompt_store::open(url).await.unwrap();
    assert_eq!(b.kind(), kind);
    let reg = Registry::new(b.store.clone(), b.runs.clone())
        .await
        .unwrap();
    reg.create_version("hello", NewVersion::new("hi").with_labels(["production"]))
        .await
        .unwrap();
    assert!(b.migrate().await.unwrap().applied.is_empty());
    b.close().await;
}

async fn reads_back(url: &str) {
    let b = prompt_store::open(url).await.unwrap();
    let reg = Registry::new(b.store.clone(), b.runs.clone())
        .await
        .unwrap();
    assert_eq!(
        reg.resolve("hello", &Selector::default())
            .await
            .unwrap()
            .version,
        1
    );
    b.close().await;
}

#[tokio::test]
async fn memory_and_sqlite_urls() {
    roundtrip("memory://", BackendKind::Memory).await;
    roundtrip("sqlite::memory:", BackendKind::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let abs = format!("sqlite://{}", dir.path().join("abs.db").display());
    assert!(abs.starts_with("sqlite:///"));
    roundtrip(&abs, BackendKind::Sqlite).await;
    reads_back(&abs).await;
}

/// `sqlite://relative/path.db` is relative to the working directory.
#[tokio::test]
async fn sqlite_relative_url() {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rel-{}.db", uuid::Uuid::new_v4().simple()));
    let rel = relative_to(&target, &std::env::current_dir().unwrap());
    assert!(rel.is_relative());
    let url = format!("sqlite://{}", rel.display());
    roundtrip(&url, BackendKind::Sqlite).await;
    assert!(target.exists(), "created at {}", target.display());
    reads_back(&url).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
}

fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

#[tokio::test]
async fn cached_open_serves_resolves_from_the_cache() {
    let b = prompt_store::open_with(
        "sqlite::memory:",
        &OpenOptions {
            cache: Some(CacheConfig::default()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reg = Registry::new(b.store.clone(), b.runs.clone())
        .await
        .unwrap();
    reg.create_version("c", NewVersion::new("x").with_labels(["production"]))
        .await
        .unwrap();
    for _ in 0..3 {
        reg.resolve("c", &Selector::default()).await.unwrap();
    }
    assert!(
        format!("{:?}", b.store).contains("hits: 2"),
        "{:?}",
        b.store
    );
}

#[tokio::test]
async fn postgres_urls() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let url = format!(
        "{url}{}options=-c%20search_path%3D{}",
        if url.contains('?') { "&" } else { "?" },
        schema.name()
    );
    roundtrip(&url, BackendKind::Postgres).await;
    reads_back(&url).await;
    let pgsql = url.replacen("postgres://", "postgresql://", 1);
    reads_back(&pgsql).await;
}
