//! The prompt optimizer backend's prompt routes (`/api/prompts…`) and
//! `POST /api/sync/force`, driven as that design's client calls them: a signed-in user
//! without `X-Project`, or an API key.

use axum::http::{Method, StatusCode};
use prompt_core::KeyRole;
use serde_json::{Value, json};

use super::common::{Resp, assert_error};
use super::{Compat, Parts, Setup, as_user, compat_app, memory_parts, signed_up};

fn prompt_names(r: &Resp) -> Vec<String> {
    r.body
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", r.text))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn create(c: &Compat, token: &str, body: Value) -> Resp {
    as_user(c, Method::POST, "/api/prompts", token, Some(body)).await
}

pub async fn optimizer_prompts_round_trip(parts: Parts) {
    let c = compat_app(
        parts,
        Setup {
            public_tools: None,
            tools_model: None,
        },
    )
    .await;
    let app = &c.app;
    let alice = signed_up(&c, "alice@example.com", None).await;
    let me = as_user(&c, Method::GET, "/api/users/me", &alice, None).await;
    let alice_id = me.body["id"].as_str().unwrap().to_owned();
    let editor = app.key("default", KeyRole::Editor).await;
    let outsider = app.key("elsewhere", KeyRole::Admin).await;

    // A title that is no name: the name is derived, the title kept as the description.
    let r = create(
        &c,
        &alice,
        json!({"title": "Summarize a ticket", "original_text": "Summarize {{ ticket }}",
               "tags": ["support"], "client_field": "ignored"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["user_id"], alice_id.as_str());
    assert_eq!(r.body["title"], "Summarize a ticket");
    assert_eq!(r.body["name"], "summarize-a-ticket");
    assert_eq!(r.body["description"], "Summarize a ticket");
    assert_eq!(r.body["original_text"], "Summarize {{ ticket }}");
    assert!(r.body["optimized_text"].is_null(), "{}", r.text);
    assert!(r.body["model_used"].is_null(), "{}", r.text);
    assert_eq!(r.body["tags"], json!(["support"]));
    let history = r.body["optimization_history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{}", r.text);
    assert_eq!(history[0]["version"], 1);
    assert_eq!(history[0]["optimized"], false);
    assert_eq!(history[0]["created_by"], "user:alice@example.com");
    assert!(r.body["created_at"].is_string() && r.body["updated_at"].is_string());
    assert_eq!(
        r.headers["etag"].to_str().unwrap(),
        r.body["etag"].as_str().unwrap()
    );
    // A title that is a name is the name; made with an API key, it has no user.
    let r = app
        .post(
            "/api/prompts",
            &editor,
            json!({"title": "greeting", "original_text": [{"role": "user", "content": "Hi {{ name }}"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.body["user_id"].is_null(), "{}", r.text);
    assert_eq!(r.body["title"], "greeting");
    assert_eq!(r.body["original_text"][0]["content"], "Hi {{ name }}");
    let greeting = r.body["id"].as_str().unwrap().to_owned();
    // Names are unique; bad fields are named as the design names them.
    let r = create(
        &c,
        &alice,
        json!({"title": "summarize  a TICKET", "original_text": "x"}),
    )
    .await;
    assert_error(&r, 409, "conflict");
    let r = create(&c, &alice, json!({"title": " ", "original_text": "x"})).await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "title", "{}", r.text);
    let r = create(&c, &alice, json!({"title": "t"})).await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text.contains("original_text"), "{}", r.text);

    // Listed by name, without the tools' reserved prompts; read by id, scoped.
    let list = as_user(&c, Method::GET, "/api/prompts", &alice, None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(prompt_names(&list), ["greeting", "summarize-a-ticket"]);
    let page = app.get("/api/prompts?limit=1", &editor).await;
    assert_eq!(prompt_names(&page), ["greeting"]);
    let next = page.headers["x-next-cursor"].to_str().unwrap();
    let page = app
        .get(&format!("/api/prompts?limit=1&cursor={next}"), &editor)
        .await;
    assert_eq!(prompt_names(&page), ["summarize-a-ticket"]);
    let tagged = app.get("/api/prompts?tag=support", &editor).await;
    assert_eq!(prompt_names(&tagged), ["summarize-a-ticket"]);
    let path = format!("/api/prompts/{id}");
    let r = as_user(&c, Method::GET, &path, &alice, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["title"], "Summarize a ticket");
    assert_error(&app.get(&path, &outsider).await, 404, "not_found");
    let r = app.get("/api/prompts/not-a-uuid", &editor).await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "id");
    // Our own API finds it by id too (what the remote store calls).
    let r = app
        .get(&format!("/api/v1/prompts-by-id/{id}"), &editor)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "summarize-a-ticket");
    let r = app
        .get(&format!("/api/v1/prompts-by-id/{id}"), &outsider)
        .await;
    assert_error(&r, 404, "not_found");

    // Optimize: a new version from the original, its model recorded.
    let opt = format!("{path}/optimize");
    let r = as_user(&c, Method::POST, &opt, &alice, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The echo model answers the draft: the original, unchanged.
    assert_eq!(r.body["optimized_text"], "Summarize {{ ticket }}");
    assert_eq!(r.body["model_used"], "mock/echo");
    assert_eq!(r.body["original_text"], "Summarize {{ ticket }}");
    let history = r.body["optimization_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{}", r.text);
    assert_eq!(history[0]["version"], 2);
    assert_eq!(history[0]["optimized"], true);
    assert_eq!(history[0]["model_used"], "mock/echo");
    let v2 = app
        .get("/api/v1/prompts/summarize-a-ticket/versions/2", &editor)
        .await;
    let message = v2.body["commit_message"].as_str().unwrap();
    assert!(
        message.starts_with("Optimized from version 1 ") && message.contains("(mock/echo)"),
        "{message}"
    );
    let r = app
        .post(
            &opt,
            &editor,
            json!({"goal": "brevity", "model": "mock/echo"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.post(&opt, &editor, json!({"model": "gpt-4o"})).await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "model");
    let r = app.post(&opt, &editor, json!({"goal": ""})).await;
    assert_error(&r, 422, "validation_failed");
    let r = app.post(&opt, &outsider, json!({})).await;
    assert_error(&r, 404, "not_found");
    let viewer = app.key("default", KeyRole::Viewer).await;
    assert_error(&app.post(&opt, &viewer, json!({})).await, 403, "forbidden");

    let h = as_user(&c, Method::GET, &format!("{path}/history"), &alice, None).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let versions: Vec<u64> = h
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);

    // PUT: a new text is a new version (the new original, not optimized yet).
    let before = app.get(&path, &editor).await;
    let r = as_user(
        &c,
        Method::PUT,
        &path,
        &alice,
        Some(
            json!({"original_text": "Summarize {{ ticket }} in one line",
                    "tags": ["support", "short"]}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["original_text"],
        "Summarize {{ ticket }} in one line"
    );
    assert!(r.body["optimized_text"].is_null(), "{}", r.text);
    assert!(r.body["model_used"].is_null(), "{}", r.text);
    assert_eq!(r.body["tags"], json!(["short", "support"]));
    assert_eq!(r.body["optimization_history"].as_array().unwrap().len(), 4);
    assert_eq!(r.body["title"], "Summarize a ticket");
    // The same text again adds nothing; a stale etag is 412; no renames.
    let same = app
        .put(
            &path,
            &editor,
            json!({"original_text": "Summarize {{ ticket }} in one line"}),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    assert_eq!(
        same.body["optimization_history"].as_array().unwrap().len(),
        4
    );
    let stale = before.body["etag"].as_str().unwrap();
    let r = c
        .app
        .send(
            axum::http::Request::builder()
                .method(Method::PUT)
                .uri(&path)
                .header("authorization", format!("Bearer {editor}"))
                .header("content-type", "application/json")
                .header("if-match", stale)
                .body(axum::body::Body::from(r#"{"tags": ["x"]}"#))
                .unwrap(),
        )
        .await;
    assert_error(&r, 412, "precondition_failed");
    let r = app
        .put(&path, &editor, json!({"title": "Something else"}))
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "title");
    let r = app
        .put(&path, &editor, json!({"title": "Summarize a Ticket."}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["title"], "Summarize a Ticket.");
    assert_error(
        &app.put(&path, &outsider, json!({"tags": []})).await,
        404,
        "not_found",
    );

    // DELETE archives.
    assert_error(&app.delete(&path, &viewer).await, 403, "forbidden");
    let r = as_user(&c, Method::DELETE, &path, &alice, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_error(&app.get(&path, &editor).await, 404, "not_found");
    assert_error(&app.delete(&path, &editor).await, 404, "not_found");
    let list = app.get("/api/prompts", &editor).await;
    assert_eq!(prompt_names(&list), ["greeting"]);
    assert_eq!(list.body[0]["id"], greeting.as_str());
}

pub async fn sync_force_resynchronises(parts: Parts) {
    let c = compat_app(
        parts,
        Setup {
            public_tools: None,
            tools_model: None,
        },
    )
    .await;
    let app = &c.app;
    let editor = app.key("default", KeyRole::Editor).await;
    let force = |query: &str| {
        let path = format!("/api/sync/force{query}");
        let editor = editor.clone();
        async move { app.call(Method::POST, &path, Some(&editor), None).await }
    };
    for name in ["a", "b"] {
        let r = app
            .post(
                &format!("/api/v1/prompts/{name}/versions"),
                &editor,
                json!({"template": "v1"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // No cursor: everything, and the head to follow from.
    let full = force("").await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.text);
    assert_eq!(full.body["full"], true);
    let names: Vec<&str> = full.body["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"a") && names.contains(&"b"), "{names:?}");
    let cursor = full.body["cursor"].as_u64().unwrap();
    let status = app.get("/api/sync/status", &editor).await;
    assert_eq!(status.body["head"].as_u64().unwrap(), cursor);
    assert_eq!(full.body["project"], status.body["project"]);

    // Offline meanwhile: a changed, b archived, c created.
    let r = app
        .post(
            "/api/v1/prompts/a/versions",
            &editor,
            json!({"template": "v2"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        app.delete("/api/v1/prompts/b", &editor).await.status,
        StatusCode::NO_CONTENT
    );
    let r = app
        .post(
            "/api/v1/prompts/c/versions",
            &editor,
            json!({"template": "v1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let since = force(&format!("?cursor={cursor}")).await;
    assert_eq!(since.status, StatusCode::OK, "{}", since.text);
    assert_eq!(since.body["full"], false);
    let changed: Vec<&str> = since.body["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["a", "c"]);
    assert_eq!(since.body["removed"], json!(["b"]));
    let a = &since.body["prompts"][0];
    assert_eq!(a["latest_version"], 2);
    assert_eq!(a["labels"]["latest"], 2);
    let got = app.get("/api/v1/prompts/a", &editor).await;
    assert_eq!(a["etag"], got.body["etag"]);
    assert_eq!(a["id"], got.body["id"]);
    let head = since.body["cursor"].as_u64().unwrap();
    assert!(head > cursor, "{}", since.text);
    // Up to date: nothing to apply.
    let none = force(&format!("?cursor={head}")).await;
    assert_eq!(none.body["prompts"], json!([]), "{}", none.text);
    assert_eq!(none.body["removed"], json!([]));
    assert_eq!(none.body["cursor"].as_u64().unwrap(), head);
    // A cursor ahead of the head (another server's?): a full snapshot.
    let ahead = force(&format!("?cursor={}", head + 1000)).await;
    assert_eq!(ahead.body["full"], true, "{}", ahead.text);
    assert_error(&force("?cursor=x").await, 400, "bad_request");
    // A signed-in user without X-Project resyncs the project `default`.
    let alice = signed_up(&c, "alice@example.com", None).await;
    let r = as_user(&c, Method::POST, "/api/sync/force", &alice, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["project"], status.body["project"]);
    assert_error(
        &app.call(Method::POST, "/api/sync/force", None, None).await,
        401,
        "unauthorized",
    );
}

#[tokio::test]
async fn optimize_with_the_model_down_is_a_503() {
    let c = compat_app(
        memory_parts(),
        Setup {
            public_tools: None,
            tools_model: Some("error-503"),
        },
    )
    .await;
    let app = &c.app;
    let r = app
        .post(
            "/api/prompts",
            &app.admin,
            json!({"title": "t", "original_text": "Hi {{ name }}"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let path = format!("/api/prompts/{}", r.body["id"].as_str().unwrap());
    let r = app
        .post(&format!("{path}/optimize"), &app.admin, json!({}))
        .await;
    assert_error(&r, 503, "unavailable");
    assert!(r.headers.contains_key("retry-after"));
    let r = app.get(&path, &app.admin).await;
    assert!(r.body["optimized_text"].is_null(), "{}", r.text);
    assert_eq!(r.body["optimization_history"].as_array().unwrap().len(), 1);
}
