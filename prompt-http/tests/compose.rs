//! Prompt composition over HTTP: `{{> name@label }}` expanded by resolve, render and
//! execute with its `resolution`, `?resolve=false`, refusals at creation, and the
//! Langfuse-compatible routes' prompt references and `resolutionGraph`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use common::{TestApp, assert_error};
use prompt_core::KeyRole;
use serde_json::{Value, json};

async fn version(app: &TestApp, name: &str, body: Value) -> common::Resp {
    app.post(
        &format!("/api/v1/prompts/{}/versions", name.replace('/', "%2F")),
        &app.admin,
        body,
    )
    .await
}

/// Two levels: `mail` includes `team/tone` and `team/sign`, which includes
/// `team/tone#1`.
async fn seed(app: &TestApp) {
    for (name, body) in [
        (
            "team/tone",
            json!({"template": "Be {{ mood }}.", "labels": ["production"]}),
        ),
        (
            "team/sign",
            json!({"template": "-- {{> team/tone#1 }}", "labels": ["production"]}),
        ),
        (
            "mail",
            json!({"template": "Hi {{ name }}. {{> team/tone }} {{> team/sign@production }}",
                   "labels": ["production"],
                   "config": {"provider": "mock", "model": "mock/echo"}}),
        ),
    ] {
        let r = version(app, name, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.text);
    }
}

#[tokio::test]
async fn render_resolve_and_execute_report_the_resolution() {
    let app = TestApp::memory().await;
    let k = &app.admin;
    seed(&app).await;
    let want = json!([
        {"name": "team/tone", "selector": "production", "version": 1, "includes": []},
        {"name": "team/sign", "selector": "production", "version": 1, "includes": [
            {"name": "team/tone", "selector": "#1", "version": 1, "includes": []}
        ]}
    ]);

    let r = app
        .post(
            "/api/v1/prompts/mail/render",
            k,
            json!({"variables": {"name": "Ann", "mood": "kind"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["text"], "Hi Ann. Be kind. -- Be kind.");
    assert_eq!(r.body["resolution"], want);

    let r = app
        .post(
            "/api/v1/prompts/mail/render?resolve=false",
            k,
            json!({"variables": {"name": "Ann"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["text"],
        "Hi Ann. {{> team/tone }} {{> team/sign@production }}"
    );
    assert!(r.body.get("resolution").is_none(), "{}", r.text);

    let r = app.get("/api/v1/prompts/mail/resolve", k).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["template"],
        "Hi {{ name }}. Be {{ mood }}. -- Be {{ mood }}."
    );
    assert_eq!(r.body["variables"], json!(["name", "mood"]));
    assert_eq!(r.body["resolution"], want);
    let r = app
        .get("/api/v1/prompts/mail/resolve?resolve=false", k)
        .await;
    assert_eq!(
        r.body["template"],
        "Hi {{ name }}. {{> team/tone }} {{> team/sign@production }}"
    );
    assert_eq!(r.body["variables"], json!(["name"]));
    assert!(r.body.get("resolution").is_none(), "{}", r.text);

    let r = app
        .post(
            "/api/v1/prompts/mail/execute",
            k,
            json!({"variables": {"name": "Ann", "mood": "calm"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    assert!(
        r.body["output"].as_str().unwrap().contains("Be calm."),
        "{}",
        r.text
    );
    assert_eq!(r.body["resolution"], want);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/api/v1/runs/{id}"), k).await;
    assert_eq!(r.body["resolution"], want);
}

#[tokio::test]
async fn creation_refuses_cycles_and_missing_targets() {
    let app = TestApp::memory().await;
    seed(&app).await;
    let r = version(&app, "team/tone", json!({"template": "{{> mail }}"})).await;
    assert_error(&r, 422, "validation_failed");
    assert!(
        r.text
            .contains("include cycle: team/tone -> mail -> team/tone"),
        "{}",
        r.text
    );
    let r = version(&app, "x", json!({"template": "{{> nope@staging }}"})).await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text.contains("prompt 'nope'"), "{}", r.text);
}

async fn langfuse(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> common::Resp {
    let p = app.store.ensure_project("default").await.unwrap();
    let (public, issued) =
        prompt_http::routes::langfuse::generate_langfuse_key(p.id, "lf", KeyRole::Admin);
    app.store.create_api_key(issued.record).await.unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{public}:{}", issued.key))
    );
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
async fn langfuse_prompt_references_round_trip() {
    let app = TestApp::memory().await;
    let r = langfuse(
        &app,
        Method::POST,
        "/api/public/v2/prompts",
        Some(json!({"name": "base", "type": "text", "prompt": "Be {{tone}}.", "labels": ["production"]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let base_id = r.body["id"].as_str().unwrap().to_owned();
    let text = "A @@@langfusePrompt:name=base|label=production@@@ B \
                @@@langfusePrompt:name=base|version=1@@@";
    let r = langfuse(
        &app,
        Method::POST,
        "/api/public/v2/prompts",
        Some(
            json!({"name": "top", "type": "chat", "labels": ["production"],
                    "prompt": [{"role": "system", "content": text}]}),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Given back as written.
    assert_eq!(r.body["prompt"][0]["content"], text);
    let top_id = r.body["id"].as_str().unwrap().to_owned();
    // Stored as our include tags.
    let v = app
        .get("/api/v1/prompts/top/resolve?resolve=false", &app.admin)
        .await;
    assert_eq!(
        v.body["template"][0]["content"],
        "A {{> base@production }} B {{> base#1 }}"
    );

    let r = langfuse(&app, Method::GET, "/api/public/v2/prompts/top", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["prompt"][0]["content"],
        "A Be {{tone}}. B Be {{tone}}."
    );
    let dep = json!({"id": base_id, "name": "base", "version": 1});
    assert_eq!(
        r.body["resolutionGraph"],
        json!({"root": {"id": top_id, "name": "top", "version": 1},
               "dependencies": {top_id.clone(): [dep.clone(), dep]}})
    );
    let r = langfuse(
        &app,
        Method::GET,
        "/api/public/v2/prompts/top?resolve=false",
        None,
    )
    .await;
    assert_eq!(r.body["prompt"][0]["content"], text);
    assert_eq!(r.body["resolutionGraph"], Value::Null);

    // A malformed reference, a missing target: 400 in Langfuse's shape.
    for bad in [
        "@@@langfusePrompt:name=base@@@",
        "@@@langfusePrompt:name=nope|label=production@@@",
    ] {
        let r = langfuse(
            &app,
            Method::POST,
            "/api/public/v2/prompts",
            Some(json!({"name": "bad", "prompt": bad})),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.body["error"], "InvalidRequestError", "{}", r.text);
    }
}
