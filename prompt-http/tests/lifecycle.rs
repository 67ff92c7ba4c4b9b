//! The prompt lifecycle over HTTP: deleting versions (tombstones) and a project's
//! protected labels (`/api/v1/protected-labels`), on the memory, SQLite and Postgres
//! backends; their audit entries over a store with people.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

#[macro_use]
mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::{Options, TestApp, assert_error};
use prompt_core::{KeyRole, PageRequest, PeopleStore, PromptStore, RunLog};
use serde_json::{Value, json};

/// Versions 1, 2 and 3 of `name`, version 3 labelled `staging`.
async fn seed(app: &TestApp, name: &str) {
    for (t, labels) in [
        ("one {{ x }}", json!([])),
        ("two", json!([])),
        ("three", json!(["staging"])),
    ] {
        let r = app
            .post(
                &format!("/api/v1/prompts/{name}/versions"),
                &app.admin,
                json!({"template": t, "config": {"provider": "mock", "model": "mock/echo"}, "labels": labels}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

fn numbers(r: &common::Resp) -> Vec<u64> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect()
}

async fn deleting_versions(app: &TestApp) {
    seed(app, "d").await;
    let editor = app.key("default", KeyRole::Editor).await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let stranger = app.key("elsewhere", KeyRole::Admin).await;
    // A run of version 1, before it is deleted.
    let run = app
        .post(
            "/api/v1/prompts/d/execute",
            &editor,
            json!({"version": 1, "variables": {"x": "y"}}),
        )
        .await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    let run_id = run.body["id"].as_str().unwrap().to_owned();

    // Roles, other projects, bad numbers, labelled versions.
    assert_error(
        &app.delete("/api/v1/prompts/d/versions/1", &viewer).await,
        403,
        "forbidden",
    );
    assert_error(
        &app.delete("/api/v1/prompts/d/versions/1", &stranger).await,
        404,
        "not_found",
    );
    for bad in ["0", "x", "-1"] {
        let r = app
            .delete(&format!("/api/v1/prompts/d/versions/{bad}"), &editor)
            .await;
        assert_error(&r, 422, "validation_failed");
    }
    assert_error(
        &app.delete("/api/v1/prompts/d/versions/9", &editor).await,
        404,
        "not_found",
    );
    assert_error(
        &app.delete("/api/v1/prompts/nope/versions/1", &editor).await,
        404,
        "not_found",
    );
    let r = app.delete("/api/v1/prompts/d/versions/3", &editor).await;
    assert_error(&r, 409, "conflict");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'staging'"),
        "{}",
        r.text
    );

    // Deleted: nothing resolves it, the list hides it, the run still names it.
    let r = app.delete("/api/v1/prompts/d/versions/1", &editor).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for r in [
        app.get("/api/v1/prompts/d/versions/1", &viewer).await,
        app.get("/api/v1/prompts/d/resolve?version=1", &viewer)
            .await,
        app.post(
            "/api/v1/prompts/d/render",
            &viewer,
            json!({"version": 1, "variables": {"x": "y"}}),
        )
        .await,
        app.post(
            "/api/v1/prompts/d/execute",
            &editor,
            json!({"version": 1, "variables": {"x": "y"}}),
        )
        .await,
        app.delete("/api/v1/prompts/d/versions/1", &editor).await,
    ] {
        assert_error(&r, 404, "not_found");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("deleted"),
            "{}",
            r.text
        );
    }
    assert_eq!(
        numbers(&app.get("/api/v1/prompts/d/versions", &viewer).await),
        [3, 2]
    );
    let r = app.get(&format!("/api/v1/runs/{run_id}"), &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["version"], 1,
        "runs keep pointing at a deleted version"
    );
    let r = app
        .put(
            "/api/v1/prompts/d/labels/production",
            &app.admin,
            json!({"version": 1}),
        )
        .await;
    assert_error(&r, 404, "not_found");

    // `latest` is not a label to move first: deleting the newest moves it back.
    assert_eq!(
        app.delete("/api/v1/prompts/d/labels/staging", &editor)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete("/api/v1/prompts/d/versions/3", &editor)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let p = app.get("/api/v1/prompts/d", &viewer).await;
    assert_eq!(p.body["latest_version"], 2, "{}", p.text);
    assert_eq!(p.body["labels"], json!({"latest": 2}));
    // Numbers are never reused.
    let r = app
        .post(
            "/api/v1/prompts/d/versions",
            &editor,
            json!({"template": "four"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["version"], 4);
}

fn labels(r: &common::Resp) -> Vec<&str> {
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect()
}

async fn protected_labels_per_project(app: &TestApp) {
    seed(app, "pl").await;
    let editor = app.key("default", KeyRole::Editor).await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let other = app.key("other", KeyRole::Admin).await;

    // The server's default, readable by any role.
    let r = app.get("/api/v1/protected-labels", &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(labels(&r), ["production"]);
    assert_eq!(r.body["next_cursor"], Value::Null);
    let r = app
        .get("/api/v1/protected-labels/production", &viewer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["label"], "production");
    assert_error(
        &app.get("/api/v1/protected-labels/staging", &viewer).await,
        404,
        "not_found",
    );

    // Only admins change the list; 201 then 200.
    assert_error(
        &app.put("/api/v1/protected-labels/staging", &editor, json!(null))
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.delete("/api/v1/protected-labels/production", &editor)
            .await,
        403,
        "forbidden",
    );
    let r = app
        .put("/api/v1/protected-labels/staging", &app.admin, json!(null))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["label"], "staging");
    assert!(
        r.body["created_by"].as_str().unwrap().starts_with("key:"),
        "{}",
        r.text
    );
    let again = app
        .put("/api/v1/protected-labels/staging", &app.admin, json!(null))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body, r.body);
    for bad in ["latest", "Bad", "a%20b"] {
        let r = app
            .put(
                &format!("/api/v1/protected-labels/{bad}"),
                &app.admin,
                json!(null),
            )
            .await;
        assert_error(&r, 422, "validation_failed");
    }

    // The new list is what label moves and the caller view follow.
    let who = app.get("/api/v1/project", &viewer).await;
    assert_eq!(
        who.body["protected_labels"],
        json!(["production", "staging"])
    );
    let r = app
        .put(
            "/api/v1/prompts/pl/labels/staging",
            &editor,
            json!({"version": 1}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert!(r.text.contains("protected"), "{}", r.text);
    let r = app
        .post(
            "/api/v1/batch",
            &editor,
            json!({"ops": [{"op": "delete_label", "name": "pl", "label": "staging"}]}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert_eq!(
        app.delete("/api/v1/protected-labels/production", &app.admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &app.delete("/api/v1/protected-labels/production", &app.admin)
            .await,
        404,
        "not_found",
    );
    let r = app
        .put(
            "/api/v1/prompts/pl/labels/production",
            &editor,
            json!({"version": 2}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "an editor moves an unprotected label: {}",
        r.text
    );
    assert_eq!(
        labels(&app.get("/api/v1/protected-labels", &viewer).await),
        ["staging"]
    );

    // Another project keeps its own list.
    assert_eq!(
        labels(&app.get("/api/v1/protected-labels", &other).await),
        ["production"]
    );
    assert_error(
        &app.delete("/api/v1/protected-labels/staging", &other).await,
        404,
        "not_found",
    );
}

backend_suites!([memory, sqlite, postgres];
    deleting_versions, protected_labels_per_project);

/// Deleting a version and changing the protected labels are in the audit log and the
/// change log (the feed's events are checked on every backend by the store's
/// behaviour suite).
#[tokio::test]
async fn lifecycle_changes_are_audited() {
    let s = Arc::new(prompt_store::MemoryStore::new(Default::default()));
    let (store, runs, people): (Arc<dyn PromptStore>, Arc<dyn RunLog>, Arc<dyn PeopleStore>) =
        (s.clone(), s.clone(), s.clone());
    let app = TestApp::with_accounts(
        store,
        runs,
        Options::default(),
        Some(prompt_http::AccountsSetup {
            people: people.clone(),
            mailer: prompt_http::accounts::mail::Mailer::Log,
            config: Default::default(),
        }),
    )
    .await;
    seed(&app, "a").await;
    assert_eq!(
        app.delete("/api/v1/prompts/a/versions/1", &app.admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.put("/api/v1/protected-labels/staging", &app.admin, json!(null))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.delete("/api/v1/protected-labels/staging", &app.admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
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
            ("version.deleted", &json!({"prompt": "a", "version": 1})),
            ("protected_label.added", &json!({"label": "staging"})),
            ("protected_label.deleted", &json!({"label": "staging"})),
        ]
    );
    assert!(log.items.iter().all(|e| e.actor.starts_with("key:")));

    // And in the change log, with the calling key as the actor.
    let project = app.store.project_by_name("default").await.unwrap().id;
    let events = prompt_core::EventLog::events(s.as_ref(), project, 0, 1000)
        .await
        .unwrap()
        .events;
    let seen: Vec<(&str, Option<&str>, Option<u32>)> = events
        .iter()
        .filter(|e| {
            e.kind.as_str().starts_with("protected_label.") || e.kind.as_str() == "version.deleted"
        })
        .map(|e| (e.kind.as_str(), e.label.as_deref(), e.version))
        .collect();
    assert_eq!(
        seen,
        [
            ("version.deleted", None, Some(1)),
            ("protected_label.added", Some("staging"), None),
            ("protected_label.deleted", Some("staging"), None),
        ]
    );
    assert!(
        events
            .iter()
            .filter(|e| e.kind.as_str() == "version.deleted")
            .all(|e| e.actor.as_deref().is_some_and(|a| a.starts_with("key:"))),
        "{events:?}"
    );
}
