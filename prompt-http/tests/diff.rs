//! `GET /api/v1/prompts/{name}/diff`: a structured diff of two versions, by number or
//! label, on the memory, SQLite and Postgres backends.
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

/// Versions 1 (text, labelled `production`) and 2 (text, labelled `staging`) of `name`,
/// then 3 (chat) and 4 (chat with a message inserted in the middle).
async fn seed(app: &TestApp, name: &str) {
    let path = format!("/api/v1/prompts/{}/versions", name.replace('/', "%2F"));
    for body in [
        json!({"template": "You triage tickets.\nClassify: {{ ticket }}\nBe brief.",
               "config": {"model": "gpt-4o", "temperature": 0.2},
               "commit_message": "first", "labels": ["production"]}),
        json!({"template": "You triage tickets.\nClassify this: {{ ticket }} for {{ team }}\nBe brief.",
               "config": {"model": "gpt-4.1", "temperature": 0.2, "max_tokens": 100},
               "commit_message": "mention the team", "labels": ["staging"]}),
        json!({"template": [{"role": "system", "content": "You triage tickets."},
                            {"role": "user", "content": "Classify: {{ ticket }}"}],
               "commit_message": "chat"}),
        json!({"template": [{"role": "system", "content": "You triage tickets."},
                            {"role": "assistant", "content": "Which ticket?"},
                            {"role": "user", "content": "Classify: {{ ticket }}"}],
               "template_format": "jinja", "commit_message": "few-shot"}),
    ] {
        let r = app.post(&path, &app.admin, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

fn statuses(body: &Value) -> Vec<&str> {
    body["template"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect()
}

async fn by_numbers_and_labels(app: &TestApp) {
    seed(app, "triage").await;
    let viewer = app.key("default", KeyRole::Viewer).await;

    // By version numbers, as a viewer.
    let r = app
        .get("/api/v1/prompts/triage/diff?from=1&to=2", &viewer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["prompt"], "triage");
    assert_eq!(b["from"]["version"], 1);
    assert_eq!(b["to"]["version"], 2);
    assert_eq!(b["from"]["commit_message"], "first");
    assert_eq!(b["to"]["commit_message"], "mention the team");
    assert_eq!(b["identical"], false);
    assert_eq!(b["kind_changed"], false);
    assert_eq!(b["template"]["kind"], "text");
    let hunk = &b["template"]["hunks"][0];
    assert_eq!(
        (
            &hunk["old_start"],
            &hunk["old_lines"],
            &hunk["new_start"],
            &hunk["new_lines"]
        ),
        (&json!(1), &json!(3), &json!(1), &json!(3))
    );
    let change = &hunk["lines"][1];
    assert_eq!(change["op"], "change");
    assert_eq!(change["old_text"], "Classify: {{ ticket }}");
    assert_eq!(
        change["new_text"],
        "Classify this: {{ ticket }} for {{ team }}"
    );
    assert!(
        change["segments"]
            .as_array()
            .unwrap()
            .contains(&json!({"op": "insert", "text": " for {{ team }}"})),
        "{change}"
    );
    assert_eq!(b["variables"], json!({"added": ["team"], "removed": []}));
    let mut config = json!({"model": "gpt-4o", "temperature": 0.2});
    let patch: json_patch::Patch = serde_json::from_value(b["config"].clone()).unwrap();
    json_patch::patch(&mut config, &patch).unwrap();
    assert_eq!(
        config,
        json!({"model": "gpt-4.1", "temperature": 0.2, "max_tokens": 100})
    );

    // By labels: the same answer.
    let r2 = app
        .get(
            "/api/v1/prompts/triage/diff?from=production&to=staging",
            &viewer,
        )
        .await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.text);
    assert_eq!(r2.body["template"], b["template"]);
    assert_eq!(r2.body["config"], b["config"]);

    // The same version twice: an empty diff.
    let r = app
        .get("/api/v1/prompts/triage/diff?from=production&to=1", &viewer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["identical"], true);
    assert_eq!(r.body["template"]["hunks"], json!([]));
    assert_eq!(r.body["config"], json!([]));

    // Chat: a message inserted in the middle is one `added`; the format changed.
    let r = app
        .get("/api/v1/prompts/triage/diff?from=3&to=latest", &viewer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["template"]["kind"], "chat");
    assert_eq!(statuses(&r.body), ["unchanged", "added", "unchanged"]);
    assert_eq!(r.body["format_changed"], true);
    assert_eq!(r.body["to"]["template_format"], "jinja");

    // Text → chat: the kind changed.
    let r = app
        .get("/api/v1/prompts/triage/diff?from=1&to=3", &viewer)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["kind_changed"], true);
    assert_eq!(r.body["template"]["kind"], "text");
    assert_eq!(
        (&r.body["from"]["kind"], &r.body["to"]["kind"]),
        (&json!("text"), &json!("chat"))
    );
}

async fn raw_slash_names(app: &TestApp) {
    seed(app, "support/triage").await;
    for path in [
        "/api/v1/prompts/support/triage/diff?from=1&to=2",
        "/api/v1/prompts/support%2Ftriage/diff?from=1&to=2",
    ] {
        let r = app.get(path, &app.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.body["prompt"], "support/triage");
        assert_eq!(r.body["variables"]["added"], json!(["team"]));
    }
}

async fn missing_sides_and_bad_values(app: &TestApp) {
    seed(app, "triage").await;
    let k = &app.admin;

    let r = app.get("/api/v1/prompts/triage/diff?from=9&to=1", k).await;
    assert_error(&r, 404, "not_found");
    let m = r.body["error"]["message"].as_str().unwrap();
    assert!(m.contains("version 9") && m.contains("`from`"), "{m}");

    let r = app
        .get("/api/v1/prompts/triage/diff?from=1&to=nope", k)
        .await;
    assert_error(&r, 404, "not_found");
    let m = r.body["error"]["message"].as_str().unwrap();
    assert!(m.contains("label 'nope'") && m.contains("`to`"), "{m}");

    let r = app.get("/api/v1/prompts/ghost/diff?from=1&to=2", k).await;
    assert_error(&r, 404, "not_found");

    for (query, field) in [
        ("from=&to=1", "from"),
        ("from=-1&to=1", "from"),
        ("from=0&to=1", "from"),
        ("from=1&to=Bad%20Label", "to"),
    ] {
        let r = app
            .get(&format!("/api/v1/prompts/triage/diff?{query}"), k)
            .await;
        assert_error(&r, 422, "validation_failed");
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{query}: {}",
            r.text
        );
    }
    // Both are required.
    let r = app.get("/api/v1/prompts/triage/diff?from=1", k).await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text.contains("to"), "{}", r.text);
}

backend_suites!([memory, sqlite, postgres];
    by_numbers_and_labels, raw_slash_names, missing_sides_and_bad_values);
