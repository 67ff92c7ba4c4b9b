//! Prompts as code over HTTP: `GET /api/v1/export` and `POST /api/v1/import` on the
//! memory, SQLite and Postgres backends (the plan itself is checked on every backend
//! by the store's behaviour suite).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

#[macro_use]
mod common;

use axum::http::StatusCode;
use common::{TestApp, assert_error};
use prompt_core::KeyRole;
use serde_json::{Value, json};

/// Prompt `team/tone`: versions 1 and 2, `production` (protected) at 1, `staging` at
/// 2; prompt `chat`: one chat version with a config.
async fn seed(app: &TestApp) {
    for (t, labels) in [
        (json!("Be kind.\nBe brief."), json!(["production"])),
        (json!("Be kind, {{name}}."), json!(["staging"])),
    ] {
        let r = app
            .post(
                "/api/v1/prompts/team/tone/versions",
                &app.admin,
                json!({"template": t, "labels": labels, "commit_message": "tone"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .post(
            "/api/v1/prompts/chat/versions",
            &app.admin,
            json!({"template": [{"role": "system", "content": "You are {{who}}."}],
                   "config": {"model": "gpt-4o-mini", "temperature": 0.5}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

fn import_path(query: &str) -> String {
    format!("/api/v1/import{query}")
}

async fn export_then_import(app: &TestApp) {
    seed(app).await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let exported = app.get("/api/v1/export", &viewer).await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text);
    let bundle = exported.body.clone();
    let names: Vec<&str> = bundle["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chat", "team/tone"]);
    assert_eq!(
        bundle["prompts"][1]["labels"],
        json!({"production": 1, "staging": 2})
    );
    assert_eq!(
        bundle["prompts"][1]["versions"][0]["template"],
        "Be kind.\nBe brief."
    );
    let heads = app
        .get("/api/v1/export?heads=true&prefix=team/", &viewer)
        .await;
    assert_eq!(heads.body["prompts"].as_array().unwrap().len(), 1);

    // Into another project: viewers may not import, editors may not move `production`.
    let copy_viewer = app.key("copy", KeyRole::Viewer).await;
    let copy_editor = app.key("copy", KeyRole::Editor).await;
    let copy_admin = app.key("copy", KeyRole::Admin).await;
    assert_error(
        &app.post(&import_path(""), &copy_viewer, bundle.clone())
            .await,
        403,
        "forbidden",
    );
    let dry = app
        .post(&import_path("?dry_run=true"), &copy_editor, bundle.clone())
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    assert_eq!(dry.body["applied"], false);
    assert_eq!(dry.body["created_prompts"], json!(["chat", "team/tone"]));
    assert_eq!(dry.body["created_versions"].as_array().unwrap().len(), 3);
    let r = app
        .post(&import_path(""), &copy_editor, bundle.clone())
        .await;
    assert_error(&r, 403, "forbidden");
    assert_error(
        &app.get("/api/v1/prompts/chat", &copy_admin).await,
        404,
        "not_found",
    );

    let applied = app
        .post(&import_path(""), &copy_admin, bundle.clone())
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    assert_eq!(applied.body["applied"], true);
    let versions: Vec<Value> = applied.body["created_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].clone())
        .collect();
    assert_eq!(versions, [json!(1), json!(1), json!(2)]);
    let copy = app.get("/api/v1/export", &copy_viewer).await;
    assert_eq!(copy.body, bundle);

    // Again: nothing to do.
    let again = app
        .post(&import_path(""), &copy_editor, bundle.clone())
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["applied"], false);
    assert_eq!(again.body["created_versions"], json!([]));
    assert_eq!(again.body["moved_labels"], json!([]));

    // A conflict refuses everything: 409, nothing written; a dry run lists it.
    let mut broken = bundle.clone();
    broken["prompts"][0]["name"] = json!("fresh");
    broken["prompts"][1]["labels"]["staging"] = json!(7);
    let r = app
        .post(&import_path(""), &copy_admin, broken.clone())
        .await;
    assert_error(&r, 409, "conflict");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("version 7"),
        "{}",
        r.text
    );
    assert_error(
        &app.get("/api/v1/prompts/fresh", &copy_admin).await,
        404,
        "not_found",
    );
    let dry = app
        .post(&import_path("?dry_run=true"), &copy_admin, broken)
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    assert_eq!(dry.body["conflicts"][0]["prompt"], "team/tone");

    // Bad bodies and queries are the one error shape.
    let r = app
        .post(
            &import_path(""),
            &copy_admin,
            json!({"prompts": [{"nam": "x"}]}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
    let r = app.get("/api/v1/export?heads=maybe", &viewer).await;
    assert_eq!(r.status.as_u16(), 422, "{}", r.text);
}

/// A label carrying a release split is exported as `{"split": {…}}` and imported into
/// a fresh server (the backend under test) as the same split, its arms created by the
/// import; importing again changes nothing.
async fn export_then_import_keeps_a_split(dest: &TestApp) {
    let source = TestApp::memory().await;
    seed(&source).await;
    let r = source
        .put(
            "/api/v1/prompts/team/tone/labels/production",
            &source.admin,
            json!({"split": {"1": 90, "2": 10}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let bundle = source.get("/api/v1/export", &source.admin).await.body;
    assert_eq!(
        bundle["prompts"][1]["labels"],
        json!({"production": {"split": {"1": 90, "2": 10}}, "staging": 2})
    );

    let applied = dest
        .post(&import_path(""), &dest.admin, bundle.clone())
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{}", applied.text);
    assert_eq!(applied.body["applied"], true);
    let moved = applied.body["moved_labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["label"] == "production")
        .cloned()
        .unwrap();
    assert_eq!(
        moved["split"],
        json!({"1": 90, "2": 10}),
        "{}",
        applied.text
    );
    assert_eq!(moved["to"], 1);
    let p = dest.get("/api/v1/prompts/team/tone", &dest.admin).await;
    assert_eq!(p.body["splits"]["production"], json!({"1": 90, "2": 10}));
    assert_eq!(p.body["labels"]["production"], 1);
    let copy = dest.get("/api/v1/export", &dest.admin).await;
    assert_eq!(copy.body, bundle);

    let again = dest.post(&import_path(""), &dest.admin, bundle).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["applied"], false);
    assert_eq!(again.body["moved_labels"], json!([]));
}

backend_suites!(
    [memory, sqlite, postgres];
    export_then_import,
    export_then_import_keeps_a_split,
);
