//! The Langfuse-compatible prompt API: Basic auth with a key pair, Langfuse's shapes,
//! the same prompts as `/api/v1`.
//!
//! Over 600 lines as one suite: the routes of one compatibility surface (list, get,
//! create, label updates, deletes) and its error shapes, sharing one set of helpers.
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

/// Langfuse's error body: `{"message", "error": "<ErrorName>"}`, nothing else.
fn assert_langfuse_error(r: &Resp, status: u16, name: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(r.body["error"], name, "body: {}", r.text);
    assert!(r.body["message"].is_string(), "body: {}", r.text);
    assert_eq!(
        r.body.as_object().unwrap().len(),
        2,
        "only message and error: {}",
        r.text
    );
    assert!(r.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn errors_are_in_langfuses_shape() {
    let app = TestApp::memory().await;
    let admin = pair(&app, KeyRole::Admin).await;
    let editor = pair(&app, KeyRole::Editor).await;
    let viewer = pair(&app, KeyRole::Viewer).await;
    let path = "/api/public/v2/prompts";

    // 401: no, malformed or unknown credentials.
    let r = app.call(Method::GET, path, None, None).await;
    assert_langfuse_error(&r, 401, "UnauthorizedError");
    let r = lf(&app, "Basic eDp5", Method::GET, path, None).await;
    assert_langfuse_error(&r, 401, "UnauthorizedError");
    assert!(r.body["message"].as_str().unwrap().contains("key pair"));

    // 403: the role.
    let r = lf(
        &app,
        &viewer,
        Method::POST,
        path,
        Some(json!({"name": "p", "prompt": "x"})),
    )
    .await;
    assert_langfuse_error(&r, 403, "ForbiddenError");
    let r = lf(
        &app,
        &editor,
        Method::POST,
        path,
        Some(json!({"name": "p", "prompt": "x", "labels": ["production"]})),
    )
    .await;
    assert_langfuse_error(&r, 403, "ForbiddenError");
    assert!(r.body["message"].as_str().unwrap().contains("production"));

    // 400: validation (our 422) and malformed requests, naming the field.
    for (body, field) in [
        (json!({"name": "p", "prompt": "x", "type": "bogus"}), "type"),
        (
            json!({"name": "p", "prompt": ["x"], "type": "text"}),
            "prompt",
        ),
        (json!({"name": "p", "prompt": 1}), "prompt"),
        (json!({"prompt": "x"}), "name"),
        (json!({"name": "bad//name", "prompt": "x"}), "name"),
        (
            json!({"name": "p", "type": "chat", "prompt": [{"role": "nobody", "content": "x"}]}),
            "prompt[0].role",
        ),
    ] {
        let r = lf(&app, &admin, Method::POST, path, Some(body.clone())).await;
        assert_langfuse_error(&r, 400, "InvalidRequestError");
        assert!(
            r.body["message"].as_str().unwrap().contains(field),
            "{body} → {}",
            r.text
        );
    }
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("authorization", &admin)
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_langfuse_error(&app.send(req).await, 400, "InvalidRequestError");
    let r = lf(
        &app,
        &admin,
        Method::GET,
        "/api/public/v2/prompts/p?label=production&version=1",
        None,
    )
    .await;
    assert_langfuse_error(&r, 400, "InvalidRequestError");
    let r = lf(
        &app,
        &admin,
        Method::GET,
        "/api/public/v2/prompts/p?version=first",
        None,
    )
    .await;
    assert_langfuse_error(&r, 400, "InvalidRequestError");
    assert!(r.body["message"].as_str().unwrap().contains("version"));

    // 404: the prompt, its label or version, the version of a label move, a route.
    let r = lf(
        &app,
        &admin,
        Method::GET,
        "/api/public/v2/prompts/nope",
        None,
    )
    .await;
    assert_langfuse_error(&r, 404, "LangfuseNotFoundError");
    assert!(r.body["message"].as_str().unwrap().contains("nope"));
    let r = lf(
        &app,
        &admin,
        Method::POST,
        path,
        Some(json!({"name": "p", "prompt": "x"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for (method, p, body) in [
        (Method::GET, "/api/public/v2/prompts/p", None),
        (Method::GET, "/api/public/v2/prompts/p?version=9", None),
        (
            Method::PATCH,
            "/api/public/v2/prompts/p/versions/9",
            Some(json!({"newLabels": ["x"]})),
        ),
        (Method::DELETE, "/api/public/v2/prompts/ghost", None),
        (Method::GET, "/api/public/v2/nothing-here", None),
    ] {
        let r = lf(&app, &admin, method, p, body).await;
        assert_langfuse_error(&r, 404, "LangfuseNotFoundError");
    }

    // 405: a method the route does not have.
    let r = lf(&app, &admin, Method::PUT, path, Some(json!({}))).await;
    assert_langfuse_error(&r, 405, "MethodNotAllowedError");

    // 409: deleting a version a label points at.
    let r = lf(
        &app,
        &admin,
        Method::PATCH,
        "/api/public/v2/prompts/p/versions/1",
        Some(json!({"newLabels": ["staging"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = lf(
        &app,
        &admin,
        Method::DELETE,
        "/api/public/v2/prompts/p?version=1",
        None,
    )
    .await;
    assert_langfuse_error(&r, 409, "LangfuseConflictError");
    assert!(
        r.body["message"].as_str().unwrap().contains("'staging'"),
        "{}",
        r.text
    );

    // The rest of the API keeps its own shape.
    let r = app.get("/api/v1/prompts/nope", &app.admin).await;
    common::assert_error(&r, 404, "not_found");
}

#[tokio::test]
async fn rate_limited_in_langfuses_shape() {
    let (store, runs) = prompt_store::memory();
    let app = TestApp::new(
        store,
        runs,
        common::Options {
            rate_limit: 1,
            rate_burst: 1,
            ..common::Options::default()
        },
    )
    .await;
    let editor = pair(&app, KeyRole::Editor).await;
    let mut last = None;
    for _ in 0..5 {
        let r = lf(&app, &editor, Method::GET, "/api/public/v2/prompts", None).await;
        if r.status == 429 {
            last = Some(r);
            break;
        }
    }
    let r = last.expect("the limit is reached");
    assert_langfuse_error(&r, 429, "RateLimitError");
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn chat_placeholders_round_trip_and_render() {
    let app = TestApp::memory().await;
    let admin = pair(&app, KeyRole::Admin).await;
    let prompt = json!([
        {"type": "chatmessage", "role": "system", "content": "You are {{persona}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ]);
    let r = lf(
        &app,
        &admin,
        Method::POST,
        "/api/public/v2/prompts",
        Some(json!({"name": "with-history", "type": "chat", "prompt": prompt,
                    "labels": ["production"], "config": {"provider": "mock", "model": "mock/echo"}})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let expected = json!([
        {"type": "chatmessage", "role": "system", "content": "You are {{persona}}."},
        {"type": "placeholder", "name": "history"},
        {"type": "chatmessage", "role": "user", "content": "{{question}}"},
    ]);
    assert_eq!(r.body["prompt"], expected);
    let r = lf(
        &app,
        &admin,
        Method::GET,
        "/api/public/v2/prompts/with-history",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["type"], "chat");
    assert_eq!(r.body["prompt"], expected, "returned as it came");

    // Stored as a message of role `placeholder` naming the variable that fills it.
    let r = app
        .get("/api/v1/prompts/with-history/versions/1", &app.admin)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["template"][1],
        json!({"role": "placeholder", "content": "history"})
    );
    assert_eq!(
        r.body["variables"],
        json!(["persona", "history", "question"])
    );

    // Rendered and executed with the messages of the variable in its place.
    let history = json!([
        {"role": "user", "content": "My name is {{ not a variable }}."},
        {"role": "assistant", "content": "Noted."},
    ]);
    let r = app
        .post(
            "/api/v1/prompts/with-history/render",
            &app.admin,
            json!({"variables": {"persona": "kind", "question": "Who am I?", "history": history}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["messages"],
        json!([
            {"role": "system", "content": "You are kind."},
            {"role": "user", "content": "My name is {{ not a variable }}."},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": "Who am I?"},
        ])
    );
    let r = app
        .post(
            "/api/v1/prompts/with-history/execute",
            &app.admin,
            json!({"variables": {"persona": "kind", "question": "Who am I?", "history": []}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["input"].as_array().unwrap().len(), 2, "{}", r.text);
    assert!(!r.text.contains("placeholder"), "{}", r.text);
    let r = app
        .post(
            "/api/v1/prompts/with-history/render",
            &app.admin,
            json!({"variables": {"persona": "kind"}}),
        )
        .await;
    common::assert_error(&r, 422, "validation_failed");
    assert_eq!(
        r.body["error"]["details"]["missing_variables"],
        json!(["history", "question"])
    );
    let r = app
        .post(
            "/api/v1/prompts/with-history/render",
            &app.admin,
            json!({"variables": {"persona": "kind", "question": "q", "history": "not messages"}}),
        )
        .await;
    common::assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "variables.history");

    // Refused: a bad name, a missing name, a role that is not a speaker, an unknown type.
    for (bad, field) in [
        (
            json!({"type": "placeholder", "name": "1st"}),
            "prompt[0].name",
        ),
        (json!({"type": "placeholder"}), "prompt[0].name"),
        (
            json!({"role": "placeholder", "content": "history"}),
            "prompt[0].role",
        ),
        (
            json!({"type": "image", "role": "user", "content": "x"}),
            "prompt[0].type",
        ),
    ] {
        let r = lf(
            &app,
            &admin,
            Method::POST,
            "/api/public/v2/prompts",
            Some(json!({"name": "bad", "type": "chat", "prompt": [bad]})),
        )
        .await;
        assert_langfuse_error(&r, 400, "InvalidRequestError");
        assert!(
            r.body["message"].as_str().unwrap().contains(field),
            "{bad} → {}",
            r.text
        );
    }
}

#[tokio::test]
async fn deleting_versions_as_langfuse_does() {
    let app = TestApp::memory().await;
    let admin = pair(&app, KeyRole::Admin).await;
    let viewer = pair(&app, KeyRole::Viewer).await;
    for text in ["one", "two", "three"] {
        let r = lf(
            &app,
            &admin,
            Method::POST,
            "/api/public/v2/prompts",
            Some(json!({"name": "p", "prompt": text, "labels": ["staging"]})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let delete = |q: &'static str, auth: String| {
        let app = &app;
        async move {
            lf(
                app,
                &auth,
                Method::DELETE,
                &format!("/api/public/v2/prompts/p?{q}"),
                None,
            )
            .await
        }
    };
    let r = delete("version=1&label=staging", admin.clone()).await;
    assert_langfuse_error(&r, 400, "InvalidRequestError");
    let r = delete("version=1", viewer.clone()).await;
    assert_langfuse_error(&r, 403, "ForbiddenError");
    // `staging` points at version 3: it must be moved first.
    let r = delete("label=staging", admin.clone()).await;
    assert_langfuse_error(&r, 409, "LangfuseConflictError");
    assert!(r.text.contains("'staging'"), "{}", r.text);
    // By number: version 1 is gone (404 saying so), the others stay.
    let r = delete("version=1", admin.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = lf(
        &app,
        &admin,
        Method::GET,
        "/api/public/v2/prompts/p?version=1",
        None,
    )
    .await;
    assert_langfuse_error(&r, 404, "LangfuseNotFoundError");
    assert!(r.text.contains("deleted"), "{}", r.text);
    let r = delete("version=1", admin.clone()).await;
    assert_langfuse_error(&r, 404, "LangfuseNotFoundError");
    // By label: `latest` is the registry's own, so the newest version goes with it
    // once `staging` has moved off it.
    let r = lf(
        &app,
        &admin,
        Method::PATCH,
        "/api/public/v2/prompts/p/versions/2",
        Some(json!({"newLabels": ["staging"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = delete("label=latest", admin.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = lf(
        &app,
        &admin,
        Method::GET,
        "/api/public/v2/prompts/p?label=latest",
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["version"], 2);
    let r = delete("label=nope", admin.clone()).await;
    assert_langfuse_error(&r, 404, "LangfuseNotFoundError");
    // Neither: every version (the prompt is archived).
    let r = delete("", admin.clone()).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = lf(&app, &admin, Method::GET, "/api/public/v2/prompts/p", None).await;
    assert_langfuse_error(&r, 404, "LangfuseNotFoundError");
}
