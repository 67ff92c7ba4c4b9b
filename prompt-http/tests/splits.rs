//! Release splits over HTTP: `PUT …/labels/{label}` with `split`, resolve / render /
//! execute with `split_key`, the gateway's `split_key` and `user`, the label history
//! and audit, runs recording the split and `stats?group_by=version` — on the memory,
//! SQLite and Postgres backends.
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
use prompt_core::domain::split;
use serde_json::{Value, json};

/// Versions 1, 2, 3 of `name`, run by the mock provider; `production` split 90/10
/// over 2 and 3. Returns the prompt's id.
async fn seed(app: &TestApp, name: &str) -> uuid::Uuid {
    for t in ["one {{x}}", "two {{x}}", "three {{x}}"] {
        let r = app
            .post(
                &format!("/api/v1/prompts/{name}/versions"),
                &app.admin,
                json!({"template": t, "config": {"provider": "mock", "model": "mock/echo"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .put(
            &format!("/api/v1/prompts/{name}/labels/production"),
            &app.admin,
            json!({"split": {"2": 90, "3": 10}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["to_version"], 2);
    assert_eq!(r.body["split"], json!({"2": 90, "3": 10}));
    let p = app
        .get(&format!("/api/v1/prompts/{name}"), &app.admin)
        .await;
    assert_eq!(p.body["labels"]["production"], 2);
    assert_eq!(p.body["splits"]["production"], json!({"2": 90, "3": 10}));
    p.body["id"].as_str().unwrap().parse().unwrap()
}

fn weights() -> prompt_core::SplitWeights {
    [(2, 90), (3, 10)].into_iter().collect()
}

async fn set_resolve_render_and_end(app: &TestApp) {
    let id = seed(app, "ab").await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    // Sticky per key, and the key's pick is the core's.
    for i in 0..200 {
        let key = format!("user-{i}");
        let want = split::pick(&weights(), id, "production", Some(&key));
        let r = app
            .get(
                &format!("/api/v1/prompts/ab/resolve?label=production&split_key={key}"),
                &viewer,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["version"], want, "{key}");
        assert_eq!(r.body["split"]["label"], "production");
        assert_eq!(r.body["split"]["weights"], json!({"2": 90, "3": 10}));
        let r = app
            .post(
                "/api/v1/prompts/ab/render",
                &viewer,
                json!({"split_key": key, "variables": {"x": "y"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["version"], want, "{key}");
        assert_eq!(r.body["split"]["label"], "production");
    }
    // By number: no split.
    let r = app
        .get("/api/v1/prompts/ab/resolve?version=3", &viewer)
        .await;
    assert!(r.body.get("split").is_none(), "{}", r.text);

    // Execute records the version and the split.
    let r = app
        .post(
            "/api/v1/prompts/ab/execute",
            &app.admin,
            json!({"split_key": "user-7", "variables": {"x": "y"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["version"],
        split::pick(&weights(), id, "production", Some("user-7"))
    );
    assert_eq!(r.body["label"], "production");
    assert_eq!(r.body["split"]["weights"], json!({"2": 90, "3": 10}));
    let run = app
        .get(
            &format!("/api/v1/runs/{}", r.body["id"].as_str().unwrap()),
            &viewer,
        )
        .await;
    assert_eq!(run.body["split"], r.body["split"]);

    // Moving the label to one version ends the split; both moves are in the history.
    let r = app
        .put(
            "/api/v1/prompts/ab/labels/production",
            &app.admin,
            json!({"version": 1, "expected_version": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("split").is_none());
    let r = app
        .get("/api/v1/prompts/ab/resolve?split_key=user-7", &viewer)
        .await;
    assert_eq!(r.body["version"], 1);
    assert!(r.body.get("split").is_none());
    let h = app
        .get("/api/v1/prompts/ab/labels/production/history", &viewer)
        .await;
    let items = h.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", h.text);
    assert!(items[0].get("split").is_none());
    assert_eq!(items[1]["split"], json!({"2": 90, "3": 10}));
}

async fn invalid_splits_are_refused(app: &TestApp) {
    seed(app, "bad").await;
    let put = |body: Value| async move {
        app.put("/api/v1/prompts/bad/labels/staging", &app.admin, body)
            .await
    };
    for (body, field) in [
        (json!({"split": {"2": 100}}), "split"),
        (json!({"split": {"2": 1, "3": 0}}), "split.3"),
        (json!({"split": {"2": 1, "9": 1}}), "split.9"),
    ] {
        let r = put(body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.text);
    }
    let r = put(json!({"split": {"2": -1, "3": 1}})).await;
    assert_eq!(r.status.as_u16() / 100, 4, "{}", r.text);
    let r = put(json!({"version": 2, "split": {"2": 1, "3": 1}})).await;
    assert_error(&r, 400, "bad_request");
    let r = put(json!({})).await;
    assert_error(&r, 400, "bad_request");
    // A version in a split cannot be deleted while the split stands.
    let r = app
        .delete("/api/v1/prompts/bad/versions/3", &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // An editor may not split a protected label; an admin may.
    let editor = app.key("default", KeyRole::Editor).await;
    let r = app
        .put(
            "/api/v1/prompts/bad/labels/production",
            &editor,
            json!({"split": {"2": 1, "3": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

async fn gateway_and_stats_compare_the_arms(app: &TestApp) {
    let id = seed(app, "gw").await;
    let mut got = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..30 {
        // `split_key` first; the OpenAI `user` field when it is absent.
        let (field, key) = if i % 2 == 0 {
            ("split_key", format!("s{i}"))
        } else {
            ("user", format!("u{i}"))
        };
        let mut body = json!({"model": "prompt:gw@production", "prompt_variables": {"x": "y"},
                              "messages": [{"role": "user", "content": "hi"}]});
        body[field] = json!(key);
        let r = app.post("/v1/chat/completions", &app.admin, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let run_id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
        let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
        let want = split::pick(&weights(), id, "production", Some(&key));
        assert_eq!(run.body["version"], want, "{key}: {}", run.text);
        assert_eq!(run.body["split"]["label"], "production");
        *got.entry(want.to_string()).or_default() += 1;
    }
    let r = app
        .get("/api/v1/prompts/gw/stats?group_by=version", &app.admin)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rows = r.body["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.text));
    for (version, n) in got {
        let row = rows
            .iter()
            .find(|row| row["group"].as_str() == Some(version.as_str()))
            .unwrap_or_else(|| panic!("no row for version {version}: {}", r.text));
        assert_eq!(row["count"], n);
    }
}

/// `POST /api/v1/batch`: `set_label` with `split` (on versions created by the same
/// batch) sets the split as `PUT …/labels/{label}` does; a bad one is a 422 naming
/// `ops[i].split`, nothing of the batch written; an editor may not split a protected
/// label.
async fn batch_sets_a_split(app: &TestApp) {
    let create =
        |t: &str| json!({"op": "create_version", "name": "bt", "version": {"template": t}});
    let split = |s: Value| json!({"op": "set_label", "name": "bt", "label": "canary", "split": s});
    let r = app
        .post(
            "/api/v1/batch",
            &app.admin,
            json!({"ops": [create("one"), create("two"), split(json!({"1": 90, "2": 10}))]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let m = &r.body["results"][2]["label_move"];
    assert_eq!(m["to_version"], 1, "{}", r.text);
    assert_eq!(m["split"], json!({"1": 90, "2": 10}));
    let p = app.get("/api/v1/prompts/bt", &app.admin).await;
    assert_eq!(p.body["labels"]["canary"], 1);
    assert_eq!(p.body["splits"]["canary"], json!({"1": 90, "2": 10}));
    let h = app
        .get("/api/v1/prompts/bt/labels/canary/history", &app.admin)
        .await;
    assert_eq!(h.body["items"][0]["split"], json!({"1": 90, "2": 10}));

    for (op, field) in [
        (split(json!({"1": 100})), "ops[1].split"),
        (split(json!({"1": 1, "2": 0})), "ops[1].split.2"),
        (split(json!({"1": 1, "9": 1})), "ops[1].split.9"),
        (
            json!({"op": "set_label", "name": "bt", "label": "canary", "version": 1,
                   "split": {"1": 1, "2": 1}}),
            "ops[1].split",
        ),
        (
            json!({"op": "set_label", "name": "bt", "label": "canary"}),
            "ops[1].split",
        ),
    ] {
        let r = app
            .post(
                "/api/v1/batch",
                &app.admin,
                json!({"ops": [create("three"), op]}),
            )
            .await;
        assert_error(&r, 422, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.text);
    }
    let p = app.get("/api/v1/prompts/bt", &app.admin).await;
    assert_eq!(p.body["latest_version"], 2, "nothing was written");
    assert_eq!(p.body["splits"]["canary"], json!({"1": 90, "2": 10}));

    let editor = app.key("default", KeyRole::Editor).await;
    let r = app
        .post(
            "/api/v1/batch",
            &editor,
            json!({"ops": [{"op": "set_label", "name": "bt", "label": "production",
                            "split": {"1": 1, "2": 1}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

backend_suites!(
    [memory, sqlite, postgres];
    set_resolve_render_and_end,
    invalid_splits_are_refused,
    gateway_and_stats_compare_the_arms,
    batch_sets_a_split,
);
