//! The HTTP API driven through the real router, on every backend. One file over 600
//! lines: one suite of scenarios (`backend_suites!`) run per backend, with its route table.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

#[macro_use]
mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Options, TestApp, assert_error};
use prompt_core::KeyRole;
use serde_json::{Value, json};

/// Create a prompt with a text version labelled production.
async fn seed(app: &TestApp, key: &str, name: &str) {
    let r = app
        .post(
            &format!("/api/v1/prompts/{}/versions", name.replace('/', "%2F")),
            key,
            json!({"template": "Classify: {{ ticket }}", "config": {"provider": "mock", "model": "mock/echo"}, "labels": ["production"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn service_endpoints(app: &TestApp) {
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        r.body["openapi"]
    );
    for path in [
        "/api/v1/prompts",
        "/api/v1/prompts/{name}/resolve",
        "/api/v1/runs/batch",
        "/api/v1/stats",
        "/api/v1/keys/{id}",
        "/healthz",
    ] {
        assert!(r.body["paths"][path].is_object(), "openapi lacks {path}");
    }
    let r = app.call(Method::GET, "/docs/", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("swagger"), "docs page");
    assert!(!r.text.contains("cdn"), "docs must not load from a CDN");
    app.get("/api/v1/prompts", &app.admin).await;
    let r = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("prompt_registry_http_requests_total"),
        "{}",
        r.text
    );
    // Outside the API namespaces a GET is the console's (tests/console.rs); inside, an
    // unknown path is a JSON 404.
    let r = app.call(Method::GET, "/api/v1/nope", None, None).await;
    assert_error(&r, 404, "not_found");
    let r = app.call(Method::DELETE, "/nope", None, None).await;
    assert_error(&r, 404, "not_found");
}

async fn request_ids(app: &TestApp) {
    let req = Request::builder()
        .uri("/healthz")
        .header("x-request-id", "my-id-123")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.headers["x-request-id"], "my-id-123");
    let r = app.call(Method::GET, "/healthz", None, None).await;
    let generated = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID is generated: {generated}");
}

async fn auth_and_roles(app: &TestApp) {
    let r = app.call(Method::GET, "/api/v1/prompts", None, None).await;
    assert_error(&r, 401, "unauthorized");
    let r = app.get("/api/v1/prompts", "pr_bogus_key").await;
    assert_error(&r, 401, "unauthorized");
    let req = Request::builder()
        .uri("/api/v1/prompts")
        .header("authorization", "Basic abc")
        .body(Body::empty())
        .unwrap();
    assert_error(&app.send(req).await, 401, "unauthorized");
    let viewer = app.key("default", KeyRole::Viewer).await;
    let editor = app.key("default", KeyRole::Editor).await;
    let r = app
        .post("/api/v1/prompts", &viewer, json!({"name": "x"}))
        .await;
    assert_error(&r, 403, "forbidden");
    let r = app
        .post("/api/v1/prompts", &editor, json!({"name": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.get("/api/v1/prompts/x", &viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(
            "/api/v1/keys",
            &editor,
            json!({"name": "k", "role": "viewer"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = app.get("/api/v1/keys", &viewer).await;
    assert_error(&r, 403, "forbidden");
}

async fn protected_labels_need_admin_and_roles_come_before_bodies(app: &TestApp) {
    let editor = app.key("default", KeyRole::Editor).await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let r = app
        .post(
            "/api/v1/prompts/pl/versions",
            &editor,
            json!({"template": "x", "labels": ["staging"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            "/api/v1/prompts/pl/versions",
            &editor,
            json!({"template": "x", "labels": ["production"]}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert!(r.text.contains("protected"), "{}", r.text);
    assert_error(
        &app.put(
            "/api/v1/prompts/pl/labels/production",
            &editor,
            json!({"version": 1}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_eq!(
        app.put(
            "/api/v1/prompts/pl/labels/staging",
            &editor,
            json!({"version": 1})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        app.put(
            "/api/v1/prompts/pl/labels/production",
            &app.admin,
            json!({"version": 1})
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_error(
        &app.delete("/api/v1/prompts/pl/labels/production", &editor)
            .await,
        403,
        "forbidden",
    );
    // The role is checked before the body is read: a viewer with a broken body gets 403.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/prompts")
        .header("authorization", format!("Bearer {viewer}"))
        .header("content-type", "application/json")
        .body(Body::from("{broken"))
        .unwrap();
    assert_error(&app.send(req).await, 403, "forbidden");
    // Absurd figures are a 422, not a dropped connection.
    let r = app
        .post(
            "/api/v1/runs",
            &editor,
            json!({"status": "completed", "latency_ms": 10_000_000_000_000_000u64}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "latency_ms");
    let r = app
        .post(
            "/api/v1/runs",
            &editor,
            json!({"status": "completed", "output": "a\u{0}b"}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
}

async fn keys_lifecycle(app: &TestApp) {
    let r = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "ci", "role": "editor"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["key"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(r.body["prefix"].as_str().unwrap()));
    let list = app.get("/api/v1/keys", &app.admin).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(!list.text.contains(&key), "secrets are never listed");
    assert!(!list.text.contains("hash"), "hashes are never listed");
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );
    assert_eq!(
        app.get("/api/v1/prompts", &key).await.status,
        StatusCode::OK
    );
    let r = app.delete(&format!("/api/v1/keys/{id}"), &app.admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_error(&app.get("/api/v1/prompts", &key).await, 401, "unauthorized");
    let r = app.delete("/api/v1/keys/not-a-uuid", &app.admin).await;
    assert_error(&r, 422, "validation_failed");
    let r = app
        .delete(
            &format!("/api/v1/keys/{}", uuid::Uuid::now_v7()),
            &app.admin,
        )
        .await;
    assert_error(&r, 404, "not_found");
    let r = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "x", "role": "root"}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "role");
}

async fn prompt_crud_and_etag(app: &TestApp) {
    let k = &app.admin;
    let r = app
        .post(
            "/api/v1/prompts",
            k,
            json!({"name": "support/triage", "description": "d", "tags": ["b", "a"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["tags"], json!(["a", "b"]));
    let r = app
        .post("/api/v1/prompts", k, json!({"name": "support/triage"}))
        .await;
    assert_error(&r, 409, "conflict");
    let r = app.get("/api/v1/prompts/support%2Ftriage", k).await;
    assert_eq!(r.status, StatusCode::OK);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(r.body["etag"], etag.as_str());
    let raw = app.get("/api/v1/prompts/support/triage", k).await;
    assert_eq!(raw.status, StatusCode::OK, "raw slashes work too");
    let patch = |if_match: Option<String>, body: Value| {
        let mut b = Request::builder()
            .method(Method::PATCH)
            .uri("/api/v1/prompts/support%2Ftriage")
            .header("authorization", format!("Bearer {k}"))
            .header("content-type", "application/json");
        if let Some(m) = if_match {
            b = b.header("if-match", m);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let r = app
        .send(patch(Some(etag.clone()), json!({"description": "new"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["description"], "new");
    assert_ne!(r.headers["etag"].to_str().unwrap(), etag);
    let r = app
        .send(patch(Some(etag), json!({"description": "stale"})))
        .await;
    assert_error(&r, 412, "precondition_failed");
    let r = app.send(patch(None, json!({"tags": ["z"]}))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["description"], "new");
    let r = app.send(patch(None, json!({"descriptoin": "typo"}))).await;
    assert_error(&r, 422, "validation_failed");
    let r = app.delete("/api/v1/prompts/support%2Ftriage", k).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_error(
        &app.get("/api/v1/prompts/support%2Ftriage", k).await,
        404,
        "not_found",
    );
    assert_error(
        &app.delete("/api/v1/prompts/support%2Ftriage", k).await,
        404,
        "not_found",
    );
}

async fn versions_labels_resolve_render(app: &TestApp) {
    let k = &app.admin;
    seed(app, k, "t").await;
    let r = app
        .post("/api/v1/prompts/t/versions", k, json!({
            "template": [{"role": "system", "content": "You triage {{ team }}."}, {"role": "user", "content": "{{ ticket }}"}],
            "commit_message": "chat"
        }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["kind"], "chat");
    assert_eq!(r.body["variables"], json!(["team", "ticket"]));
    assert_eq!(r.body["template_format"], "mustache");
    assert_eq!(r.body["labels"], json!(["latest"]));
    assert!(r.body["created_by"].as_str().unwrap().starts_with("key:"));
    let r = app.get("/api/v1/prompts/t", k).await;
    assert_eq!(r.body["labels"], json!({"latest": 2, "production": 1}));
    assert_eq!(r.body["latest_version"], 2);
    let r = app.get("/api/v1/prompts/t/versions?limit=1", k).await;
    assert_eq!(r.body["items"][0]["version"], 2);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_owned();
    let r = app
        .get(
            &format!("/api/v1/prompts/t/versions?limit=1&cursor={cursor}"),
            k,
        )
        .await;
    assert_eq!(r.body["items"][0]["version"], 1);
    assert_eq!(r.body["next_cursor"], Value::Null);
    assert_eq!(
        app.get("/api/v1/prompts/t/versions/1", k).await.body["version"],
        1
    );
    assert_error(
        &app.get("/api/v1/prompts/t/versions/9", k).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/api/v1/prompts/t/versions/x", k).await,
        422,
        "validation_failed",
    );
    assert_eq!(
        app.get("/api/v1/prompts/t/resolve", k).await.body["version"],
        1
    );
    assert_eq!(
        app.get("/api/v1/prompts/t/resolve?label=latest", k)
            .await
            .body["version"],
        2
    );
    assert_eq!(
        app.get("/api/v1/prompts/t/resolve?version=2", k).await.body["version"],
        2
    );
    assert_error(
        &app.get("/api/v1/prompts/t/resolve?label=latest&version=1", k)
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &app.get("/api/v1/prompts/t/resolve?label=nope", k).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/api/v1/prompts/t/resolve?version=abc", k).await,
        422,
        "validation_failed",
    );
    let r = app
        .put(
            "/api/v1/prompts/t/labels/production",
            k,
            json!({"version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["from_version"].clone(), r.body["to_version"].clone()),
        (json!(1), json!(2))
    );
    assert_error(
        &app.put("/api/v1/prompts/t/labels/latest", k, json!({"version": 1}))
            .await,
        422,
        "validation_failed",
    );
    assert_error(
        &app.put("/api/v1/prompts/t/labels/Bad", k, json!({"version": 1}))
            .await,
        422,
        "validation_failed",
    );
    assert_error(
        &app.put("/api/v1/prompts/t/labels/x", k, json!({"version": 7}))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.put("/api/v1/prompts/t/labels/x", k, json!({"version": "one"}))
            .await,
        422,
        "validation_failed",
    );
    let h = app
        .get("/api/v1/prompts/t/labels/production/history", k)
        .await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(h.body["items"][0]["to_version"], 2);
    let r = app
        .post(
            "/api/v1/prompts/t/render",
            k,
            json!({"variables": {"team": "IT"}}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(
        r.body["error"]["details"]["missing_variables"],
        json!(["ticket"])
    );
    let r = app
        .post(
            "/api/v1/prompts/t/render",
            k,
            json!({"variables": {"team": "IT", "ticket": "fire"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["version"], 2);
    assert_eq!(
        r.body["messages"][1],
        json!({"role": "user", "content": "fire"})
    );
    let r = app
        .post(
            "/api/v1/prompts/t/render",
            k,
            json!({"version": 1, "variables": {"ticket": 42}}),
        )
        .await;
    assert_eq!(r.body["text"], "Classify: 42");
    let r = app.delete("/api/v1/prompts/t/labels/production", k).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_error(
        &app.delete("/api/v1/prompts/t/labels/production", k).await,
        404,
        "not_found",
    );
}

async fn bad_input_gets_clear_errors(app: &TestApp) {
    let k = &app.admin;
    let send_raw = |body: &'static str, ct: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/prompts")
            .header("authorization", format!("Bearer {k}"))
            .header("content-type", ct)
            .body(Body::from(body))
            .unwrap()
    };
    let r = app.send(send_raw("{not json", "application/json")).await;
    assert_error(&r, 400, "bad_request");
    let r = app.send(send_raw("{\"name\": \"x\"}", "text/plain")).await;
    assert_error(&r, 400, "bad_request");
    let r = app
        .send(send_raw("{\"name\": 5}", "application/json"))
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "name");
    let r = app
        .post("/api/v1/prompts", k, json!({"name": "bad name"}))
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "name");
    let r = app
        .post("/api/v1/prompts", k, json!({"name": "x".repeat(201)}))
        .await;
    assert_error(&r, 422, "validation_failed");
    let r = app
        .post(
            "/api/v1/prompts/v/versions",
            k,
            json!({"template": "x", "template_format": "handlebars"}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "template_format");
    let r = app
        .post(
            "/api/v1/prompts/v/versions",
            k,
            json!({"template": [{"role": "boss", "content": "x"}]}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    let r = app
        .post(
            "/api/v1/prompts/v/versions",
            k,
            json!({"template": "x", "labels": ["latest"]}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "labels[0]");
    let r = app.get("/api/v1/prompts?limit=501", k).await;
    assert_error(&r, 422, "validation_failed");
    let r = app.get("/api/v1/prompts?limit=abc", k).await;
    assert_error(&r, 422, "validation_failed");
    let r = app.get("/api/v1/prompts?cursor=zzz", k).await;
    assert_error(&r, 422, "validation_failed");
    let r = app.get("/api/v1/runs?status=exploded", k).await;
    assert_error(&r, 422, "validation_failed");
    let r = app.get("/api/v1/runs/123", k).await;
    assert_error(&r, 422, "validation_failed");
    let r = app
        .call(Method::PUT, "/api/v1/prompts", Some(k), Some(json!({})))
        .await;
    assert_error(&r, 405, "method_not_allowed");
    let big = "x".repeat(300 * 1024);
    let r = app
        .post("/api/v1/prompts/big/versions", k, json!({"template": big}))
        .await;
    assert_error(&r, 413, "payload_too_large");
}

async fn project_isolation(app: &TestApp) {
    let other = app.key("other-project", KeyRole::Admin).await;
    seed(app, &app.admin, "mine").await;
    let r = app
        .post(
            "/api/v1/runs",
            &app.admin,
            json!({"prompt": "mine", "version": 1, "status": "completed", "output": "x"}),
        )
        .await;
    let run_id = r.body["id"].as_str().unwrap().to_owned();
    assert_error(
        &app.get("/api/v1/prompts/mine", &other).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/api/v1/prompts/mine/resolve", &other).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get(&format!("/api/v1/runs/{run_id}"), &other).await,
        404,
        "not_found",
    );
    assert_error(
        &app.put(
            "/api/v1/prompts/mine/labels/x",
            &other,
            json!({"version": 1}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/api/v1/prompts/mine/stats", &other).await,
        404,
        "not_found",
    );
    assert_eq!(
        app.get("/api/v1/prompts", &other).await.body["items"],
        json!([])
    );
    assert_eq!(
        app.get("/api/v1/runs", &other).await.body["items"],
        json!([])
    );
    let keys = app.get("/api/v1/keys", &other).await;
    assert_eq!(
        keys.body["items"].as_array().unwrap().len(),
        1,
        "only its own key"
    );
}

async fn runs_log_list_stats(app: &TestApp) {
    let k = &app.admin;
    seed(app, k, "r").await;
    let r = app
        .post("/api/v1/runs", k, json!({
            "prompt": "r", "version": 1, "label": "production", "provider": "openai", "model": "gpt-4o-mini",
            "variables": {"ticket": "x"}, "input": "Classify: x", "output": "hardware",
            "status": "completed", "latency_ms": 120, "input_tokens": 10, "output_tokens": 5,
            "cost_usd": "0.000042", "metadata": {"user": "u1"}
        }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["cost_usd"], "0.000042");
    let id = r.body["id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/api/v1/runs/{id}"), k).await;
    assert_eq!(got.body, r.body);
    let r = app.post("/api/v1/runs", k, json!({"prompt": "r", "version": 1, "status": "failed", "error": {"kind": "timeout", "message": "slow"}, "latency_ms": 300})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_error(
        &app.post(
            "/api/v1/runs",
            k,
            json!({"prompt": "r", "status": "failed"}),
        )
        .await,
        422,
        "validation_failed",
    );
    assert_error(
        &app.post(
            "/api/v1/runs",
            k,
            json!({"prompt": "ghost", "status": "completed"}),
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &app.post(
            "/api/v1/runs",
            k,
            json!({"status": "completed", "cost_usd": "abc"}),
        )
        .await,
        422,
        "validation_failed",
    );
    let list = app.get("/api/v1/runs?prompt=r&status=failed", k).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let asc = app.get("/api/v1/runs?prompt=r&order=asc", k).await;
    assert_eq!(asc.body["items"][0]["id"], id.as_str());
    let s = app.get("/api/v1/prompts/r/stats", k).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    let g = &s.body["groups"][0];
    assert_eq!(g["count"], 2);
    assert_eq!(g["failed"], 1);
    assert_eq!(g["error_rate"], 0.5);
    assert_eq!(g["latency_p50_ms"], 210.0);
    assert_eq!(g["cost_usd"], "0.000042");
    let s = app.get("/api/v1/prompts/r/stats?group_by=model", k).await;
    assert_eq!(s.body["groups"].as_array().unwrap().len(), 2);
    assert_error(
        &app.get("/api/v1/prompts/r/stats?group_by=colour", k).await,
        422,
        "validation_failed",
    );
}

/// A run of project `default` created at `at` (RFC 3339), stored directly so that its
/// time is known.
async fn run_at(app: &TestApp, prompt: &str, model: &str, failed: bool, latency: u64, at: &str) {
    let project = app.store.ensure_project("default").await.unwrap().id;
    let mut n = prompt_core::NewRun::with_status(if failed {
        prompt_core::RunStatus::Failed
    } else {
        prompt_core::RunStatus::Completed
    });
    n.prompt = Some(prompt.into());
    n.version = Some(1);
    n.model = Some(model.into());
    if failed {
        n.error = Some(prompt_core::RunError {
            kind: "timeout".into(),
            message: "slow".into(),
        });
    } else {
        n.latency_ms = Some(latency);
        n.input_tokens = Some(10);
        n.output_tokens = Some(5);
        n.cost_usd = Some("0.001".parse().unwrap());
    }
    let mut run = n.into_run(project).unwrap();
    run.created_at = at.parse().unwrap();
    app.runs.insert_runs(&[run]).await.unwrap();
}

/// The field a 422 names.
fn field_of(r: &common::Resp) -> &str {
    r.body["error"]["details"]["field"]
        .as_str()
        .unwrap_or("<no field>")
}

async fn stats_buckets_and_project_wide(app: &TestApp) {
    let k = &app.admin;
    seed(app, k, "r").await;
    seed(app, k, "s").await;
    run_at(app, "r", "gpt", false, 10, "2026-01-05T10:05:00Z").await;
    run_at(app, "r", "gpt", false, 30, "2026-01-05T10:55:00Z").await;
    run_at(app, "r", "claude", true, 0, "2026-01-05T10:56:00Z").await;
    run_at(app, "r", "gpt", false, 100, "2026-01-05T11:00:00Z").await;
    run_at(app, "r", "gpt", false, 7, "2026-01-05T12:59:59Z").await;
    run_at(app, "s", "claude", false, 50, "2026-01-05T10:30:00Z").await;
    let range = "since=2026-01-05T10:00:00Z&until=2026-01-05T13:00:00Z";

    // A prompt's series.
    let s = app
        .get(&format!("/api/v1/prompts/r/stats?bucket=hour&{range}"), k)
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text);
    assert_eq!(s.body["prompt"], "r");
    assert_eq!(s.body["bucket"], "hour");
    let groups = s.body["groups"].as_array().unwrap();
    let summary: Vec<(Value, Value, Value)> = groups
        .iter()
        .map(|g| (g["bucket"].clone(), g["count"].clone(), g["failed"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("2026-01-05T10:00:00Z"), json!(3), json!(1)),
            (json!("2026-01-05T11:00:00Z"), json!(1), json!(0)),
            (json!("2026-01-05T12:00:00Z"), json!(1), json!(0)),
        ]
    );
    assert_eq!(groups[0]["latency_p50_ms"], 20.0);
    assert_eq!(groups[0]["input_tokens"], 20);
    assert_eq!(groups[0]["cost_usd"], "0.002");
    assert_eq!(groups[0]["group"], Value::Null);
    // Not bucketed: the same answer as before, each row with a null bucket.
    let s = app
        .get(&format!("/api/v1/prompts/r/stats?{range}"), k)
        .await;
    assert_eq!(s.body["bucket"], Value::Null);
    assert_eq!(s.body["groups"][0]["bucket"], Value::Null);
    assert_eq!(s.body["groups"][0]["count"], 5);

    // The project's series, grouped by model.
    let p = app
        .get(
            &format!("/api/v1/stats?bucket=hour&group_by=model&{range}"),
            k,
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.body["prompt"], Value::Null);
    assert_eq!(p.body["group_by"], "model");
    let rows: Vec<(Value, Value, Value)> = p.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["bucket"].clone(), g["group"].clone(), g["count"].clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (json!("2026-01-05T10:00:00Z"), json!("claude"), json!(2)),
            (json!("2026-01-05T10:00:00Z"), json!("gpt"), json!(2)),
            (json!("2026-01-05T11:00:00Z"), json!("gpt"), json!(1)),
            (json!("2026-01-05T12:00:00Z"), json!("gpt"), json!(1)),
        ]
    );
    let total = app.get("/api/v1/stats", k).await;
    assert_eq!(total.status, StatusCode::OK, "{}", total.text);
    assert_eq!(total.body["groups"][0]["count"], 6);
    let one = app.get("/api/v1/stats?prompt=s", k).await;
    assert_eq!(one.body["prompt"], "s");
    assert_eq!(one.body["groups"][0]["count"], 1);
    assert_error(
        &app.get("/api/v1/stats?prompt=ghost", k).await,
        404,
        "not_found",
    );

    // Bad input: 422 naming the parameter, never a 500.
    for (url, field, says) in [
        (
            format!("/api/v1/stats?bucket=week&{range}"),
            "bucket",
            "unknown variant",
        ),
        (
            format!("/api/v1/prompts/r/stats?bucket=fortnight&{range}"),
            "bucket",
            "unknown variant",
        ),
        (
            "/api/v1/stats?bucket=hour".to_owned(),
            "since",
            "a bucketed query needs since",
        ),
        (
            "/api/v1/prompts/r/stats?bucket=day".to_owned(),
            "since",
            "a bucketed query needs since",
        ),
        (
            "/api/v1/stats?bucket=minute&since=2026-01-01T00:00:00Z&until=2026-01-09T00:00:00Z"
                .to_owned(),
            "bucket",
            "11520",
        ),
        ("/api/v1/stats?since=yesterday".to_owned(), "since", ""),
        ("/api/v1/stats?group_by=colour".to_owned(), "group_by", ""),
        ("/api/v1/stats?prompt=bad%20name".to_owned(), "prompt", ""),
    ] {
        let r = app.get(&url, k).await;
        assert_error(&r, 422, "validation_failed");
        assert_eq!(field_of(&r), field, "{url}: {}", r.text);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(says),
            "{url}: {}",
            r.text
        );
    }
    let r = app.get("/api/v1/stats?colour=red", k).await;
    assert_error(&r, 422, "validation_failed");
}

async fn runs_batch_partial_failure(app: &TestApp) {
    let k = &app.admin;
    seed(app, k, "b").await;
    let r = app
        .post(
            "/api/v1/runs/batch",
            k,
            json!({"runs": [
                {"prompt": "b", "version": 1, "status": "completed"},
                {"prompt": "b", "version": 9, "status": "completed"},
                {"status": "exploded"},
                {"prompt": "b", "status": "failed"},
                {"prompt": "b", "status": "completed", "output": "ok"}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let res = r.body["results"].as_array().unwrap();
    assert_eq!(res.len(), 5);
    assert!(res[0]["id"].is_string() && res[0].get("error").is_none());
    assert_eq!(res[1]["error"]["code"], "not_found");
    assert_eq!(res[2]["error"]["code"], "validation_failed");
    assert_eq!(res[2]["error"]["details"]["field"], "status");
    assert_eq!(res[3]["error"]["details"]["field"], "error");
    assert!(res[4]["id"].is_string());
    for (i, item) in res.iter().enumerate() {
        assert_eq!(item["index"], i);
    }
    let list = app.get("/api/v1/runs?prompt=b", k).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"status": "completed"})).collect();
    assert_error(
        &app.post("/api/v1/runs/batch", k, json!({"runs": too_many}))
            .await,
        422,
        "validation_failed",
    );
    assert_error(
        &app.post("/api/v1/runs/batch", k, json!({"runs": []})).await,
        422,
        "validation_failed",
    );
}

async fn pagination_of_prompts_and_runs(app: &TestApp) {
    let k = &app.admin;
    for i in 0..12 {
        app.post(
            "/api/v1/prompts",
            k,
            json!({"name": format!("p{i:02}"), "tags": [if i % 2 == 0 { "even" } else { "odd" }]}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut url = "/api/v1/prompts?limit=5".to_owned();
    loop {
        let r = app.get(&url, k).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for p in r.body["items"].as_array().unwrap() {
            seen.push(p["name"].as_str().unwrap().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("/api/v1/prompts?limit=5&cursor={c}"),
            None => break,
        }
    }
    // The tools' meta-prompts, seeded at start-up, are listed like any prompt.
    let tools: Vec<String> = seen.extract_if(.., |n| n.starts_with("_tools/")).collect();
    assert_eq!(tools.len(), 4);
    assert_eq!(
        seen,
        (0..12).map(|i| format!("p{i:02}")).collect::<Vec<_>>()
    );
    let r = app.get("/api/v1/prompts?tag=even&q=p0", k).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5);
    let runs: Vec<Value> = (0..7)
        .map(|i| json!({"status": "completed", "latency_ms": i}))
        .collect();
    app.post("/api/v1/runs/batch", k, json!({"runs": runs}))
        .await;
    let p1 = app.get("/api/v1/runs?limit=4", k).await;
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 4);
    let c = p1.body["next_cursor"].as_str().unwrap();
    let p2 = app
        .get(&format!("/api/v1/runs?limit=4&cursor={c}"), k)
        .await;
    assert_eq!(p2.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(p2.body["next_cursor"], Value::Null);
}

async fn execute_with_mock_provider(app: &TestApp) {
    let k = &app.admin;
    seed(app, k, "ex").await;
    let r = app
        .post(
            "/api/v1/prompts/ex/execute",
            k,
            json!({"variables": {"ticket": "printer on fire"}, "metadata": {"user": "u1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["provider"], "mock");
    assert_eq!(r.body["version"], 1);
    assert!(
        r.body["output"]
            .as_str()
            .unwrap()
            .contains("printer on fire"),
        "{}",
        r.text
    );
    assert!(r.body["input_tokens"].as_u64().unwrap() > 0);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get(&format!("/api/v1/runs/{id}"), k).await.body["status"],
        "completed"
    );
    let r = app
        .post("/api/v1/prompts/ex/execute", k, json!({"variables": {}}))
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(
        r.body["error"]["details"]["missing_variables"],
        json!(["ticket"])
    );
    let failed_id = r.body["error"]["details"]["run_id"]
        .as_str()
        .expect("the failed run is recorded")
        .to_owned();
    assert_eq!(
        app.get(&format!("/api/v1/runs/{failed_id}"), k).await.body["status"],
        "failed"
    );
    let r = app
        .post(
            "/api/v1/prompts/ex/execute",
            k,
            json!({"variables": {"ticket": "x"}, "provider": "nope"}),
        )
        .await;
    // The caller named a provider that is not configured: their mistake, a 422 on the
    // field, never a 5xx; the failed run still records the kind.
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "provider");
    assert_eq!(r.body["error"]["details"]["provider"], "nope");
    assert_eq!(r.body["error"]["details"]["kind"], "not_configured");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("'nope'")),
        "{}",
        r.text
    );
    let r = app
        .post(
            "/api/v1/prompts/ex/execute",
            k,
            json!({"variables": {"ticket": "x"}, "async": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert!(r.body["id"].is_string());
    let viewer = app.key("default", KeyRole::Viewer).await;
    assert_error(
        &app.post(
            "/api/v1/prompts/ex/execute",
            &viewer,
            json!({"variables": {"ticket": "x"}}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.post("/api/v1/prompts/ghost/execute", k, json!({"variables": {}}))
            .await,
        404,
        "not_found",
    );
}

backend_suites!([memory, sqlite, postgres, cached_postgres];
    service_endpoints, protected_labels_need_admin_and_roles_come_before_bodies, request_ids, auth_and_roles, keys_lifecycle, prompt_crud_and_etag, versions_labels_resolve_render, bad_input_gets_clear_errors, project_isolation, runs_log_list_stats, stats_buckets_and_project_wide, runs_batch_partial_failure, pagination_of_prompts_and_runs, execute_with_mock_provider);

#[tokio::test]
async fn rate_limit_per_key() {
    let (store, runs) = prompt_store::memory();
    let app = TestApp::new(
        store,
        runs,
        Options {
            rate_limit: 1,
            rate_burst: 3,
            ..Options::default()
        },
    )
    .await;
    let other = app.key("default", KeyRole::Viewer).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(app.get("/api/v1/prompts", &app.admin).await);
    }
    let limited = codes
        .iter()
        .find(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .expect("the burst is exhausted");
    assert_error(limited, 429, "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(
        app.get("/api/v1/prompts", &other).await.status,
        StatusCode::OK,
        "limits are per key"
    );
}

/// Every route of the service, `(method, path)`: the OpenAPI document lists exactly
/// these, and each is routed. A route added to the router without its `#[utoipa::path]`
/// (or documented without a handler) fails here once it is added to this list.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/events"),
    ("get", "/api/v1/events/stream"),
    ("get", "/api/v1/ws"),
    ("get", "/api/sync/status"),
    ("post", "/api/v1/batch"),
    ("get", "/api/v1/export"),
    ("post", "/api/v1/import"),
    ("get", "/api/auth/social"),
    ("get", "/api/auth/social/{provider}/start"),
    ("get", "/api/auth/social/{provider}/callback"),
    ("post", "/api/auth/social/{provider}"),
    ("post", "/api/auth/register"),
    ("post", "/api/auth/login"),
    ("post", "/api/auth/refresh"),
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/logout-all"),
    ("get", "/api/auth/sessions"),
    ("delete", "/api/auth/sessions/{id}"),
    ("post", "/api/auth/verify-email"),
    ("post", "/api/auth/verify-email/send"),
    ("post", "/api/auth/password-reset"),
    ("post", "/api/auth/password-reset/confirm"),
    ("get", "/api/users/me"),
    ("patch", "/api/users/me"),
    ("delete", "/api/users/me"),
    ("post", "/api/users/me/password"),
    ("get", "/api/users/me/preferences"),
    ("patch", "/api/users/me/preferences"),
    ("get", "/api/users/me/export"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{org}"),
    ("patch", "/api/v1/orgs/{org}"),
    ("delete", "/api/v1/orgs/{org}"),
    ("get", "/api/v1/orgs/{org}/members"),
    ("patch", "/api/v1/orgs/{org}/members/{user}"),
    ("delete", "/api/v1/orgs/{org}/members/{user}"),
    ("post", "/api/v1/orgs/{org}/invitations"),
    ("get", "/api/v1/orgs/{org}/invitations"),
    ("delete", "/api/v1/orgs/{org}/invitations/{id}"),
    ("post", "/api/v1/invitations/accept"),
    ("post", "/api/v1/orgs/{org}/projects"),
    ("get", "/api/v1/orgs/{org}/projects"),
    ("patch", "/api/v1/orgs/{org}/projects/{project}"),
    ("delete", "/api/v1/orgs/{org}/projects/{project}"),
    ("get", "/api/v1/orgs/{org}/audit"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/v1/prompts"),
    ("get", "/api/v1/prompts"),
    ("get", "/api/v1/prompts/{name}"),
    ("patch", "/api/v1/prompts/{name}"),
    ("delete", "/api/v1/prompts/{name}"),
    ("get", "/api/v1/prompts-by-id/{id}"),
    ("post", "/api/v1/prompts/{name}/versions"),
    ("get", "/api/v1/prompts/{name}/versions"),
    ("get", "/api/v1/prompts/{name}/versions/{version}"),
    ("delete", "/api/v1/prompts/{name}/versions/{version}"),
    ("get", "/api/v1/protected-labels"),
    ("get", "/api/v1/protected-labels/{label}"),
    ("put", "/api/v1/protected-labels/{label}"),
    ("delete", "/api/v1/protected-labels/{label}"),
    ("get", "/api/v1/prompts/{name}/resolve"),
    ("get", "/api/v1/prompts/{name}/diff"),
    ("put", "/api/v1/prompts/{name}/labels/{label}"),
    ("delete", "/api/v1/prompts/{name}/labels/{label}"),
    ("get", "/api/v1/prompts/{name}/labels/{label}/history"),
    ("post", "/api/v1/prompts/{name}/render"),
    ("post", "/api/v1/prompts/{name}/execute"),
    ("get", "/api/v1/prompts/{name}/stats"),
    ("get", "/api/v1/stats"),
    ("post", "/api/v1/prompts/{name}/optimize"),
    ("post", "/api/v1/runs"),
    ("get", "/api/v1/runs"),
    ("delete", "/api/v1/runs"),
    ("post", "/api/v1/runs/batch"),
    ("get", "/api/v1/runs/{id}"),
    ("post", "/api/v1/keys"),
    ("get", "/api/v1/keys"),
    ("delete", "/api/v1/keys/{id}"),
    ("get", "/api/v1/project"),
    ("put", "/api/v1/project"),
    ("post", "/api/v1/tools/analyze"),
    ("post", "/api/v1/tools/render"),
    ("post", "/api/v1/tools/remix"),
    ("post", "/api/v1/tools/create"),
    ("get", "/api/v1/providers"),
    ("put", "/api/v1/providers/{name}"),
    ("get", "/api/v1/providers/{name}"),
    ("delete", "/api/v1/providers/{name}"),
    // Webhooks.
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("patch", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("post", "/api/v1/webhooks/{id}/rotate-secret"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    (
        "post",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
    ),
    // The OpenAI-compatible gateway.
    ("post", "/v1/chat/completions"),
    ("get", "/v1/models"),
    // The routes of the designs this service replaces.
    ("post", "/api/v1/analyze"),
    ("post", "/api/v1/remix"),
    ("post", "/api/v1/create"),
    ("post", "/ai/prompts/"),
    ("get", "/ai/prompts/"),
    ("get", "/ai/prompts/{id}"),
    ("get", "/api/models"),
    ("get", "/api/models/config"),
    ("put", "/api/models/config/{model}"),
    ("delete", "/api/models/config/{model}"),
    ("get", "/api/prompts"),
    ("post", "/api/prompts"),
    ("get", "/api/prompts/{id}"),
    ("put", "/api/prompts/{id}"),
    ("delete", "/api/prompts/{id}"),
    ("get", "/api/prompts/{id}/history"),
    ("post", "/api/prompts/{id}/optimize"),
    ("post", "/api/sync/force"),
    // The Langfuse-compatible prompt API.
    ("get", "/api/public/v2/prompts"),
    ("post", "/api/public/v2/prompts"),
    ("get", "/api/public/v2/prompts/{name}"),
    ("delete", "/api/public/v2/prompts/{name}"),
    ("patch", "/api/public/v2/prompts/{name}/versions/{version}"),
];

#[tokio::test]
async fn openapi_documents_every_route() {
    let app = TestApp::memory().await;
    let r = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in r.body["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);

    // Each documented route is routed: no "no route", no 405 (no key: 401 or 200).
    for (method, path) in ROUTES {
        let uri = path
            .replace("{name}", "x")
            .replace("{version}", "1")
            .replace("{label}", "staging")
            .replace("{org}", "acme")
            .replace("{user}", "0190f0e0-0000-7000-8000-000000000000")
            .replace("{project}", "web")
            .replace("{provider}", "google")
            .replace("{model}", "deepseek")
            .replace("{delivery_id}", "0190f0e0-0000-7000-8000-000000000001")
            .replace("{id}", "0190f0e0-0000-7000-8000-000000000000");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let r = app.call(method.clone(), &uri, None, body).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert!(
            !(r.status == StatusCode::NOT_FOUND && r.text.contains("no route")),
            "{method} {uri} is not routed: {}",
            r.text
        );
    }

    // The Langfuse routes document their Basic auth and Langfuse's error body.
    let get = &r.body["paths"]["/api/public/v2/prompts/{name}"]["get"];
    assert_eq!(get["security"], json!([{"basic": []}]), "{get}");
    assert!(
        r.body["components"]["schemas"]["LangfuseErrorBody"].is_object(),
        "{}",
        r.body["components"]["schemas"]
    );
    assert_eq!(
        r.body["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
}

/// Every run of the key's project, counted page by page through the API.
async fn count_runs(app: &TestApp, key: &str) -> usize {
    let mut n = 0;
    let mut path = "/api/v1/runs?limit=500".to_owned();
    loop {
        let r = app.get(&path, key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        n += r.body["items"].as_array().unwrap().len();
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/runs?limit=500&cursor={c}"),
            None => return n,
        }
    }
}

/// Issue 20: the disk holding the SQLite file fills up while runs are ingested. Every
/// write is refused with 507 `insufficient_storage` and `Retry-After` (never a 500),
/// `/readyz` answers 503 meanwhile; once space is freed, writes succeed again without
/// a restart, `/readyz` is back to 200 and every run acknowledged before is there.
#[tokio::test]
async fn sqlite_disk_full_answers_507_and_recovers() {
    use prompt_store::testkit::SmallDisk;
    let disk = SmallDisk::new();
    let store = prompt_store::SqliteStore::open(disk.config())
        .await
        .unwrap();
    let app = TestApp::new(
        std::sync::Arc::new(store.clone()),
        std::sync::Arc::new(store.clone()),
        Options::default(),
    )
    .await;
    let key = app.admin.clone();
    let run =
        |i: usize| json!({"status": "completed", "output": format!("{i}:{}", "x".repeat(4_000))});
    let ready = |app: &TestApp| {
        let app = app.router.clone();
        async move {
            let r = tower::ServiceExt::oneshot(
                app,
                Request::get("/readyz").body(Body::empty()).unwrap(),
            )
            .await
            .unwrap();
            r.status()
        }
    };
    let mut acked = 0;
    for i in 0..20 {
        let r = app.post("/api/v1/runs", &key, run(i)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        acked += 1;
    }
    assert_eq!(ready(&app).await, StatusCode::OK);
    disk.fill().await;
    let mut refused = 0;
    for i in 0..2_000 {
        let r = app.post("/api/v1/runs", &key, run(i)).await;
        if r.status == StatusCode::CREATED {
            acked += 1;
            continue;
        }
        assert_error(&r, 507, "insufficient_storage");
        assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
        assert!(
            !r.text.contains("disk is full"),
            "the cause stays in the log: {}",
            r.text
        );
        assert_eq!(
            ready(&app).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "readyz while writes fail"
        );
        refused += 1;
        if refused == 5 {
            break;
        }
    }
    assert_eq!(
        refused, 5,
        "the disk never filled up ({acked} runs written)"
    );
    let r = app.call(Method::GET, "/metrics", None, None).await;
    assert!(
        r.text
            .contains("prompt_registry_write_failures_total{kind=\"storage\"}"),
        "{}",
        r.text
    );
    disk.free().await;
    for i in 0..5 {
        let r = app.post("/api/v1/runs", &key, run(i)).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "write {i} after space was freed: {}",
            r.text
        );
        acked += 1;
    }
    assert_eq!(
        ready(&app).await,
        StatusCode::OK,
        "readyz once writes succeed"
    );
    assert_eq!(
        count_runs(&app, &key).await,
        acked,
        "acknowledged runs are all there"
    );
    drop(app);
    store.close().await;
}
