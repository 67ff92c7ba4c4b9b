//! The Langfuse-compatible prompt API: Basic auth with a key pair, Langfuse's shapes,
//! the same prompts as `/api/v1`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine;
use common::{Resp, TestApp};
use prompt_core::KeyRole;
use serde_json::{Value, json};

async fn pair(app: &TestApp, role: KeyRole) -> String {
    let p = app.store.ensure_project("default").await.unwrap();
    let (public, issued) = prompt_http::routes::langfuse::generate_langfuse_key(p.id, "lf", role);
    app.store.create_api_key(issued.record).await.unwrap();
    assert!(public.starts_with("pk-lf-") && issued.key.starts_with("sk-lf-"));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{public}:{}", issued.key))
    )
}

async fn lf(app: &TestApp, auth: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", auth);
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&v).unwrap()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    app.send(req).await
}

#[tokio::test]
async fn langfuse_prompt_api_shapes_and_auth() {
    let app = TestApp::memory().await;
    let admin = pair(&app, KeyRole::Admin).await;
    let editor = pair(&app, KeyRole::Editor).await;
    let r = lf(
        &app,
        "Basic eDp5",
        Method::GET,
        "/api/public/v2/prompts",
        None,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // The bearer key of /api/v1 is not a Langfuse pair.
    let r = lf(
        &app,
        &format!("Bearer {}", app.admin),
        Method::GET,
        "/api/public/v2/prompts",
        None,
    )
    .await;
    assert_eq!(r.status, 401);

    let r = lf(
        &app,
        &admin,
        Method::POST,
        "/api/public/v2/prompts",
        Some(
            json!({"name": "folder/movie-critic", "type": "text", "prompt": "Rate {{movie}}",
                    "labels": ["production"], "tags": ["films"], "config": {"model": "mock/echo"},
                    "commitMessage": "first"}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["name"], "folder/movie-critic");
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["type"], "text");
    assert_eq!(r.body["prompt"], "Rate {{movie}}");
    assert_eq!(r.body["commitMessage"], "first");
    assert_eq!(r.body["tags"], json!(["films"]));
    assert!(
        r.body["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("production"))
    );
    // Editors may not move the protected label, but may create other versions.
    let r = lf(
        &app,
        &editor,
        Method::POST,
        "/api/public/v2/prompts",
        Some(json!({"name": "folder/movie-critic", "type": "chat",
                    "prompt": [{"role": "system", "content": "Critic of {{movie}}", "type": "chatmessage"}],
                    "labels": ["production"]})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = lf(
        &app,
        &editor,
        Method::POST,
        "/api/public/v2/prompts",
        Some(json!({"name": "folder/movie-critic", "type": "chat",
                    "prompt": [{"role": "system", "content": "Critic of {{movie}}", "type": "chatmessage"}],
                    "labels": ["staging"]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["type"], "chat");
    assert_eq!(r.body["prompt"][0]["role"], "system");

    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts/folder%2Fmovie-critic",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], 1, "production by default");
    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts/folder%2Fmovie-critic?version=2",
        None,
    )
    .await;
    assert_eq!(r.body["version"], 2);
    assert!(
        r.body["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("latest"))
    );
    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts/folder%2Fmovie-critic?label=staging",
        None,
    )
    .await;
    assert_eq!(r.body["version"], 2);
    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts/folder%2Fmovie-critic?label=staging&version=1",
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts/nope",
        None,
    )
    .await;
    assert_eq!(r.status, 404);

    // The same prompt through /api/v1.
    let r = app
        .get("/api/v1/prompts/folder%2Fmovie-critic", &app.admin)
        .await;
    assert_eq!(r.body["latest_version"], 2, "{}", r.text);

    let r = lf(
        &app,
        &editor,
        Method::PATCH,
        "/api/public/v2/prompts/folder%2Fmovie-critic/versions/1",
        Some(json!({"newLabels": ["canary"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("canary"))
    );

    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts?label=canary&limit=10",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["meta"]["totalItems"], 1);
    assert_eq!(r.body["meta"]["page"], 1);
    let meta = &r.body["data"][0];
    assert_eq!(meta["name"], "folder/movie-critic");
    assert_eq!(meta["versions"], json!([1, 2]));
    assert_eq!(meta["type"], "chat");
    assert!(meta["lastUpdatedAt"].is_string());
    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts?tag=other",
        None,
    )
    .await;
    assert_eq!(r.body["data"], json!([]));

    let r = lf(
        &app,
        &editor,
        Method::DELETE,
        "/api/public/v2/prompts/folder%2Fmovie-critic",
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = lf(
        &app,
        &editor,
        Method::GET,
        "/api/public/v2/prompts/folder%2Fmovie-critic",
        None,
    )
    .await;
    assert_eq!(r.status, 404);

    // The tools' meta-prompts are written by admins only, through this API too.
    let r = lf(
        &app,
        &editor,
        Method::POST,
        "/api/public/v2/prompts",
        Some(json!({"name": "_tools/remix", "type": "text", "prompt": "x"})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    for (method, path, body) in [
        (
            Method::PATCH,
            "/api/public/v2/prompts/_tools%2Fremix/versions/1",
            Some(json!({"newLabels": ["staging"]})),
        ),
        (
            Method::DELETE,
            "/api/public/v2/prompts/_tools%2Fremix",
            None,
        ),
    ] {
        let r = lf(&app, &editor, method, path, body).await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
}
