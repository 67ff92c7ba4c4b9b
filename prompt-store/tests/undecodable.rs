//! A stored row that cannot be decoded (a value no write should have let through, from
//! an older version, a manual edit or a bug) never takes down a listing (issue 20,
//! item 5): a run is left out of its page and logged, paging goes past it, reading it
//! by id names the fault; a provider credential is left out of the providers (which
//! the gateway and every execution read), and can still be deleted. On a SQLite file
//! and on Postgres.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

use prompt_core::page::PageRequest;
use prompt_core::{
    Error, NewRun, PromptStore, ProviderCredential, ProviderKind, RunLog, RunQuery, RunStatus,
};
use prompt_store::testkit::{PgTestSchema, postgres_url};
use prompt_store::{PostgresStore, SqliteConfig, SqliteStore};
use uuid::Uuid;

/// Five runs stored through `log`; the ids, oldest first.
async fn five_runs(log: &dyn RunLog, project: Uuid) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let start = chrono::Utc::now();
    for i in 0..5u64 {
        let mut r = NewRun::with_status(RunStatus::Completed);
        r.latency_ms = Some(i);
        let mut run = r.into_run(project).unwrap();
        // Distinct creation times, so that the order is the insertion order.
        run.created_at = start + chrono::Duration::milliseconds(i as i64);
        ids.push(run.id);
        log.insert_runs(std::slice::from_ref(&run)).await.unwrap();
    }
    ids
}

/// Page through every run, `limit` at a time, newest first.
async fn all_runs(log: &dyn RunLog, project: Uuid, limit: u32) -> Vec<Uuid> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let q = RunQuery {
            page: page.clone(),
            ..Default::default()
        };
        let p = log.query_runs(project, &q).await.unwrap();
        out.extend(p.items.iter().map(|r| r.id));
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
}

/// The listing leaves out the run `bad` (corrupted by the caller) and nothing else.
async fn check(log: &dyn RunLog, project: Uuid, ids: &[Uuid], bad: Uuid) {
    let expected: Vec<Uuid> = ids.iter().rev().copied().filter(|id| *id != bad).collect();
    for limit in [1, 2, 10] {
        assert_eq!(
            all_runs(log, project, limit).await,
            expected,
            "limit {limit}"
        );
    }
    match log.get_run(project, bad).await {
        Err(Error::Storage { message, .. }) => assert!(message.contains("attempts"), "{message}"),
        other => panic!("expected a storage error naming the column, got {other:?}"),
    }
}

/// Providers `a`, `b`, `c` of `project`.
async fn three_providers(store: &dyn PromptStore, project: Uuid) {
    for name in ["a", "b", "c"] {
        let now = chrono::Utc::now();
        store
            .put_provider_credential(ProviderCredential {
                project_id: project,
                name: name.into(),
                kind: ProviderKind::Openai,
                base_url: None,
                sealed_api_key: "sealed".into(),
                key_hint: "…abcd".into(),
                default_params: serde_json::json!({"temperature": 0.5}),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
    }
}

/// `b` is corrupted: the others are listed; `b` can still be deleted.
async fn check_providers(store: &dyn PromptStore, project: Uuid) {
    let names = |list: Vec<ProviderCredential>| -> Vec<String> {
        list.into_iter().map(|c| c.name).collect()
    };
    let listed = store.list_provider_credentials(project).await.unwrap();
    assert_eq!(names(listed), ["a", "c"]);
    store
        .delete_provider_credential(project, "b")
        .await
        .unwrap();
    let listed = store.list_provider_credentials(project).await.unwrap();
    assert_eq!(names(listed), ["a", "c"]);
}

#[tokio::test]
async fn sqlite_listings_survive_undecodable_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("runs.db").display());
    let s = SqliteStore::open(SqliteConfig::new(&url)).await.unwrap();
    let project = s.ensure_project("p").await.unwrap().id;
    let ids = five_runs(&s, project).await;
    let bad = ids[2];
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE runs SET attempts = -1 WHERE id = ?")
        .bind(bad)
        .execute(&mut c)
        .await
        .unwrap();
    check(&s, project, &ids, bad).await;

    three_providers(&s, project).await;
    sqlx::query("UPDATE provider_credentials SET default_params = 'not json' WHERE name = 'b'")
        .execute(&mut c)
        .await
        .unwrap();
    check_providers(&s, project).await;
}

#[tokio::test]
async fn postgres_listings_survive_undecodable_rows() {
    let Some(url) = postgres_url() else {
        eprintln!("SKIPPED: PROMPT_REGISTRY_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = PgTestSchema::create(&url).await;
    let s = PostgresStore::open(schema.config()).await.unwrap();
    let project = s.ensure_project("p").await.unwrap().id;
    let ids = five_runs(&s, project).await;
    let bad = ids[2];
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {}.runs SET attempts = -1 WHERE id = $1",
        schema.name()
    )))
    .bind(bad)
    .execute(s.pool())
    .await
    .unwrap();
    check(&s, project, &ids, bad).await;

    // A number jsonb keeps and f64 cannot hold.
    three_providers(&s, project).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE {}.provider_credentials SET default_params = '{{\"x\": 1e400}}'::jsonb \
         WHERE name = 'b'",
        schema.name()
    )))
    .execute(s.pool())
    .await
    .unwrap();
    check_providers(&s, project).await;
    s.close().await;
}
