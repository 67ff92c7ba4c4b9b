//! Correctness under concurrency in the database itself: several independent stores
//! (separate pools, like separate processes) on one database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use prompt_core::{NewRun, NewVersion, PageRequest, PromptStore, Registry, RunLog, RunStatus};
use prompt_store::testkit::{PgTestSchema, postgres_url};
use prompt_store::{PostgresStore, SqliteConfig, SqliteStore};

/// Two registries over two stores on the same database, same project.
async fn pair(
    a: (Arc<dyn PromptStore>, Arc<dyn RunLog>),
    b: (Arc<dyn PromptStore>, Arc<dyn RunLog>),
) -> (Registry, Registry) {
    let ra = Registry::with_project(a.0, a.1, "shared").await.unwrap();
    let rb = Registry::with_project(b.0, b.1, "shared").await.unwrap();
    assert_eq!(ra.project().id, rb.project().id);
    (ra, rb)
}

/// 2 × 25 creators through two stores on a prompt that does not exist yet: one prompt,
/// versions 1..=50, no error asking anyone to retry.
async fn versions_gapless_across_stores(ra: Registry, rb: Registry) {
    let mut tasks = Vec::new();
    for i in 0..50 {
        let r = if i % 2 == 0 { ra.clone() } else { rb.clone() };
        tasks.push(tokio::spawn(async move {
            r.create_version("race", NewVersion::new(format!("v{i}")))
                .await
                .map(|v| (v.prompt_id, v.version))
        }));
    }
    let mut ids = BTreeSet::new();
    let mut nums = Vec::new();
    for t in tasks {
        let (id, n) = t.await.unwrap().expect("no creator may fail");
        ids.insert(id);
        nums.push(n);
    }
    nums.sort_unstable();
    assert_eq!(ids.len(), 1);
    assert_eq!(nums, (1..=50).collect::<Vec<u32>>());
}

/// 40 concurrent label moves through two stores: the history is a chain (each move's
/// `from` is the previous move's `to`), because the move and its history row are one
/// transaction under the prompt's lock.
async fn label_history_is_a_chain(ra: Registry, rb: Registry) {
    for i in 0..5 {
        ra.create_version("chain", NewVersion::new(format!("{i}")))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..40u32 {
        let r = if i % 2 == 0 { ra.clone() } else { rb.clone() };
        tasks.push(tokio::spawn(async move {
            r.set_label(
                "chain",
                "production",
                i % 5 + 1,
                prompt_core::LabelExpect::Any,
                None,
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut moves = Vec::new();
    let mut page = PageRequest::first(7);
    loop {
        let p = ra
            .label_history("chain", "production", &page)
            .await
            .unwrap();
        moves.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(moves.len(), 40);
    moves.reverse();
    assert_eq!(moves[0].from_version, None);
    for w in moves.windows(2) {
        assert_eq!(w[1].from_version, w[0].to_version, "{:?}", w);
    }
    let current = ra.get_prompt("chain").await.unwrap().labels["production"];
    assert_eq!(Some(current), moves.last().unwrap().to_version);
}

/// Two stores claiming the same queue: every pending run once.
async fn claims_are_disjoint(ra: Registry, logs: [Arc<dyn RunLog>; 2]) {
    let batch = (0..60)
        .map(|_| NewRun::with_status(RunStatus::Pending))
        .collect();
    let mine: BTreeSet<_> = ra
        .log_runs(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let log = logs[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let b = log.claim_pending(4).await.unwrap();
                if b.is_empty() {
                    return got;
                }
                got.extend(b.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: BTreeSet<_> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a run was claimed twice");
    assert_eq!(unique, mine);
}

async fn sqlite_pair(url: &str) -> (SqliteStore, SqliteStore) {
    (
        SqliteStore::open(SqliteConfig::new(url)).await.unwrap(),
        SqliteStore::open(SqliteConfig::new(url)).await.unwrap(),
    )
}

fn halves<S: PromptStore + RunLog + Clone + 'static>(
    s: &S,
) -> (Arc<dyn PromptStore>, Arc<dyn RunLog>) {
    (Arc::new(s.clone()), Arc::new(s.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_stores_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let (a, b) = sqlite_pair(&url).await;
    let (ra, rb) = pair(halves(&a), halves(&b)).await;
    versions_gapless_across_stores(ra.clone(), rb.clone()).await;
    label_history_is_a_chain(ra.clone(), rb).await;
    claims_are_disjoint(ra, [Arc::new(a), Arc::new(b)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_stores_one_database() {
    let Some(url) = postgres_url() else { return };
    let schema = PgTestSchema::create(&url).await;
    let a = PostgresStore::open(schema.config()).await.unwrap();
    let b = PostgresStore::open(schema.config()).await.unwrap();
    let (ra, rb) = pair(halves(&a), halves(&b)).await;
    versions_gapless_across_stores(ra.clone(), rb.clone()).await;
    label_history_is_a_chain(ra.clone(), rb).await;
    claims_are_disjoint(ra, [Arc::new(a.clone()), Arc::new(b.clone())]).await;
    a.close().await;
    b.close().await;
}
