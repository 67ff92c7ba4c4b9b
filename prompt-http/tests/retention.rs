//! Run retention over HTTP: a project's `run_retention_days` (`PUT /api/v1/project`,
//! admin), `DELETE /api/v1/runs?before=` (admin), and the retention task removing
//! exactly the runs past the retention, on the memory, SQLite and Postgres backends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

#[macro_use]
mod common;

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use common::{TestApp, assert_error};
use prompt_core::{KeyRole, NewRun, Run, RunStatus};
use serde_json::{Value, json};
use uuid::Uuid;

fn run_at(project: Uuid, t: DateTime<Utc>) -> Run {
    let mut r = NewRun::with_status(RunStatus::Completed)
        .into_run(project)
        .unwrap();
    r.created_at = t;
    r
}

/// The ids of the runs the key sees, oldest first.
async fn run_ids(app: &TestApp, key: &str) -> Vec<String> {
    let r = app.get("/api/v1/runs?order=asc&limit=500", key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

fn strs(runs: &[Run]) -> Vec<String> {
    runs.iter().map(|r| r.id.to_string()).collect()
}

async fn retention_setting(app: &TestApp) {
    let editor = app.key("default", KeyRole::Editor).await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let r = app.get("/api/v1/project", &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["project"]["run_retention_days"], Value::Null);

    let body = json!({"run_retention_days": 30});
    assert_error(
        &app.put("/api/v1/project", &editor, body.clone()).await,
        403,
        "forbidden",
    );
    let r = app.put("/api/v1/project", &app.admin, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["project"]["run_retention_days"], 30);
    assert_eq!(r.body["role"], "admin");
    let r = app.get("/api/v1/project", &viewer).await;
    assert_eq!(r.body["project"]["run_retention_days"], 30);
    // An integral number is an integer however JSON writes it.
    let r = app
        .put(
            "/api/v1/project",
            &app.admin,
            json!({"run_retention_days": 31.0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["project"]["run_retention_days"], 31);

    for bad in [
        json!(1.5),
        json!(0),
        json!(-1),
        json!(36_501),
        json!(4_294_967_297_u64),
        json!(100_000_000_000_000_000_000.0),
        json!("30"),
    ] {
        let r = app
            .put(
                "/api/v1/project",
                &app.admin,
                json!({"run_retention_days": bad}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.text
        );
        assert_eq!(
            r.body["error"]["details"]["field"], "run_retention_days",
            "{bad}: {}",
            r.text
        );
    }
    let r = app
        .put("/api/v1/project", &app.admin, json!({"retention": 3}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app.get("/api/v1/project", &viewer).await;
    assert_eq!(r.body["project"]["run_retention_days"], 31, "unchanged");

    let r = app
        .put(
            "/api/v1/project",
            &app.admin,
            json!({"run_retention_days": null}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["project"]["run_retention_days"], Value::Null);
}

async fn deleting_runs_before(app: &TestApp) {
    let editor = app.key("default", KeyRole::Editor).await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let other = app.key("elsewhere", KeyRole::Admin).await;
    let project = app.store.project_by_name("default").await.unwrap().id;
    let elsewhere = app.store.project_by_name("elsewhere").await.unwrap().id;
    let cutoff: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
    let times = [
        cutoff - chrono::Duration::days(60),
        cutoff - chrono::Duration::seconds(1),
        cutoff,
        cutoff + chrono::Duration::days(1),
    ];
    let mine: Vec<Run> = times.iter().map(|t| run_at(project, *t)).collect();
    let theirs: Vec<Run> = times.iter().map(|t| run_at(elsewhere, *t)).collect();
    app.runs.insert_runs(&mine).await.unwrap();
    app.runs.insert_runs(&theirs).await.unwrap();

    let path = "/api/v1/runs?before=2026-06-01T00:00:00Z";
    assert_error(&app.delete(path, &editor).await, 403, "forbidden");
    assert_error(&app.delete(path, &viewer).await, 403, "forbidden");
    let r = app
        .delete("/api/v1/runs?before=yesterday", &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"]["details"]["field"], "before", "{}", r.text);
    let r = app.delete("/api/v1/runs", &app.admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app.delete(&format!("{path}&limit=0"), &app.admin).await;
    assert_eq!(r.body["error"]["details"]["field"], "limit", "{}", r.text);

    // At most one, then the rest; the run created at the instant is kept.
    let r = app.delete(&format!("{path}&limit=1"), &app.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"deleted": 1}));
    let r = app.delete(path, &app.admin).await;
    assert_eq!(r.body, json!({"deleted": 1}), "{}", r.text);
    assert_eq!(run_ids(app, &viewer).await, strs(&mine[2..]));
    assert_eq!(
        run_ids(app, &other).await,
        strs(&theirs),
        "another project's runs stay"
    );
    let r = app.delete(path, &app.admin).await;
    assert_eq!(r.body, json!({"deleted": 0}));
}

async fn retention_task_removes_exactly_the_old_runs(app: &TestApp) {
    let viewer = app.key("default", KeyRole::Viewer).await;
    let other = app.key("elsewhere", KeyRole::Admin).await;
    let project = app.store.project_by_name("default").await.unwrap().id;
    let elsewhere = app.store.project_by_name("elsewhere").await.unwrap().id;
    let now = prompt_core::domain::now();
    let times = [
        now - chrono::Duration::days(40),
        now - chrono::Duration::days(3),
        now - chrono::Duration::hours(47),
        now - chrono::Duration::minutes(1),
    ];
    let mine: Vec<Run> = times.iter().map(|t| run_at(project, *t)).collect();
    let theirs: Vec<Run> = times.iter().map(|t| run_at(elsewhere, *t)).collect();
    app.runs.insert_runs(&mine).await.unwrap();
    app.runs.insert_runs(&theirs).await.unwrap();
    let r = app
        .put(
            "/api/v1/project",
            &app.admin,
            json!({"run_retention_days": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let task = prompt_http::retention::spawn(
        app.store.clone(),
        app.runs.clone(),
        Duration::from_millis(20),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = run_ids(app, &viewer).await;
        if left.len() <= 2 {
            assert_eq!(
                left,
                strs(&mine[2..]),
                "exactly the runs older than 2 days went"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retention task did not delete the old runs: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
    assert_eq!(
        run_ids(app, &other).await,
        strs(&theirs),
        "a project without retention keeps its runs"
    );
}

backend_suites!([memory, sqlite, postgres];
    retention_setting, deleting_runs_before, retention_task_removes_exactly_the_old_runs);

/// Setting the retention and deleting runs are in the audit log.
#[tokio::test]
async fn retention_changes_are_audited() {
    use std::sync::Arc;

    use prompt_core::{PageRequest, PeopleStore, PromptStore, RunLog};
    let s = Arc::new(prompt_store::MemoryStore::new(Default::default()));
    let (store, runs, people): (Arc<dyn PromptStore>, Arc<dyn RunLog>, Arc<dyn PeopleStore>) =
        (s.clone(), s.clone(), s.clone());
    let app = TestApp::with_accounts(
        store,
        runs,
        common::Options::default(),
        Some(prompt_http::AccountsSetup {
            people: people.clone(),
            mailer: prompt_http::accounts::mail::Mailer::Log,
            config: Default::default(),
        }),
    )
    .await;
    for body in [
        json!({"run_retention_days": 7}),
        json!({"run_retention_days": null}),
    ] {
        let r = app.put("/api/v1/project", &app.admin, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app
        .delete("/api/v1/runs?before=2026-01-01T00:00:00Z", &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let log = people
        .list_audit(
            prompt_core::domain::DEFAULT_ORG_ID,
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    let actions: Vec<(&str, &Value)> = log
        .items
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), &e.data))
        .collect();
    assert_eq!(
        actions,
        [
            (
                "project.updated",
                &json!({"run_retention_days": {"from": null, "to": 7}})
            ),
            (
                "project.updated",
                &json!({"run_retention_days": {"from": 7, "to": null}})
            ),
            (
                "runs.deleted",
                &json!({"before": "2026-01-01T00:00:00Z", "deleted": 0})
            ),
        ]
    );
    assert!(log.items.iter().all(|e| e.actor.starts_with("key:")));
}
