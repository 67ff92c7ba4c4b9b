//! The prompt tools over HTTP, driving the real router: with the default `mock/echo`
//! model on every backend, and with the mock vendor server (OpenAI wire format) as the
//! tools model answering good JSON, bad JSON, slowly, or with errors.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::{TestApp, assert_error};
use prompt_core::{KeyRole, ProviderSet, ToolsConfig};
use prompt_http::{RouterConfig, StateConfig, app, build_state};
use prompt_providers::{MockProvider, MockServer, OpenAiConfig, OpenAiProvider};
use serde_json::{Value, json};

/// An app (memory store) whose tools model is `model` of the mock vendor server.
async fn app_with_vendor(server: &MockServer, model: &str, timeout: Option<Duration>) -> TestApp {
    let (store, runs) = prompt_store::memory();
    let mut c = OpenAiConfig::compatible("vendor", server.openai_base_url());
    c.api_key = Some("sk-test".into());
    let providers = ProviderSet::new()
        .with(Arc::new(MockProvider::new()))
        .with(Arc::new(OpenAiProvider::new(c).unwrap()));
    let config = StateConfig {
        providers,
        tools: ToolsConfig {
            provider: "vendor".into(),
            model: model.into(),
            timeout,
        },
        ..StateConfig::default()
    };
    let (state, _writer) = build_state(store.clone(), runs.clone(), &config)
        .await
        .unwrap();
    let admin = prompt_http::bootstrap_admin_key(&store)
        .await
        .unwrap()
        .unwrap();
    TestApp {
        router: app(state, RouterConfig::default()),
        store,
        runs,
        admin,
        _guard: None,
    }
}

fn lint_codes(body: &Value) -> Vec<&str> {
    body["lints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect()
}

async fn echo_tools_end_to_end(app: &TestApp) {
    let admin = &app.admin;
    let editor = app.key("default", KeyRole::Editor).await;
    let viewer = app.key("default", KeyRole::Viewer).await;

    // Seeded at start-up, readable by everyone, writable by admins only.
    let p = app.get("/api/v1/prompts/_tools%2Fanalyze", &viewer).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert_eq!(p.body["labels"]["production"], 1);
    let v = app
        .get("/api/v1/prompts/_tools/remix/resolve", &viewer)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    assert_eq!(v.body["kind"], "chat");
    let new = json!({"template": "{{ draft }}"});
    for key in [&editor, &viewer] {
        assert_error(
            &app.post("/api/v1/prompts/_tools/remix/versions", key, new.clone())
                .await,
            403,
            "forbidden",
        );
    }
    assert_error(
        &app.post("/api/v1/prompts", &editor, json!({"name": "_tools/mine"}))
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.put(
            "/api/v1/prompts/_tools/remix/labels/staging",
            &editor,
            json!({"version": 1}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.delete("/api/v1/prompts/_tools%2Fremix", &editor).await,
        403,
        "forbidden",
    );
    let r = app
        .post("/api/v1/prompts/_tools/remix/versions", admin, new)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Roll back: production stays on the seeded version 1.
    assert_eq!(
        app.get("/api/v1/prompts/_tools%2Fremix", &viewer)
            .await
            .body["labels"]["production"],
        1
    );

    // Analyze: static report + critique unavailable under the echo model.
    let a = app
        .post(
            "/api/v1/tools/analyze",
            &editor,
            json!({"template": [{"role": "system", "content": "Summarize {text}"}],
                   "variables": ["text"]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["kind"], "chat");
    assert_eq!(a.body["messages"], 1);
    assert_eq!(
        lint_codes(&a.body),
        vec![
            "no_user_message",
            "unused_variable",
            "single_brace_placeholder"
        ]
    );
    assert_eq!(a.body["lints"][0]["severity"], "error");
    assert_eq!(a.body["length"]["chars"], 16);
    assert_eq!(a.body["length"]["tokens"], 4 + 4);
    assert_eq!(a.body["critique"]["available"], false);
    assert!(
        a.body["critique"]["reason"]
            .as_str()
            .unwrap()
            .contains("mock/echo")
    );
    assert_eq!(a.body["critique"]["runs"].as_array().unwrap().len(), 2);

    // Analyze a stored prompt.
    app.post(
        "/api/v1/prompts/greet/versions",
        &editor,
        json!({"template": "Hello {{ name }}", "config": {"response_format": {"type": "json_object"}}}),
    )
    .await;
    let a = app
        .post(
            "/api/v1/tools/analyze",
            &editor,
            json!({"prompt": "greet", "label": "latest", "critique": false}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["source"], json!({"prompt": "greet", "version": 1}));
    assert_eq!(lint_codes(&a.body), vec!["json_without_format_instruction"]);
    assert_eq!(a.body["critique"]["runs"], json!([]));

    // Remix: the echo gives the template back, same variables.
    let r = app
        .post(
            "/api/v1/tools/remix",
            &editor,
            json!({"template": "Translate {{ text }} into {{ lang }}", "style": {"custom": "pirate talk"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["template"], "Translate {{ text }} into {{ lang }}");
    assert_eq!(r.body["variables"], json!(["text", "lang"]));
    assert_eq!(r.body["style"], "custom");
    assert_eq!(r.body["model"], "mock/echo");

    // Create, saved: 201; the name is taken afterwards: 409.
    let body = json!({"goal": "Answer billing questions politely", "audience": "customers",
        "constraints": ["under 100 words"], "variables": ["question"], "save_as": "billing/answer"});
    let c = app
        .post("/api/v1/tools/create", &editor, body.clone())
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.text);
    assert_eq!(c.body["variables"], json!(["question"]));
    assert_eq!(c.body["saved"]["version"], 1);
    assert_eq!(c.body["saved"]["created_by"], "key:test");
    assert_error(
        &app.post("/api/v1/tools/create", &editor, body).await,
        409,
        "conflict",
    );
    let c = app
        .post(
            "/api/v1/tools/create",
            &editor,
            json!({"goal": "Write haiku"}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.body["kind"], "text");
    assert!(c.body.get("saved").is_none());
    assert_error(
        &app.post(
            "/api/v1/tools/create",
            &editor,
            json!({"goal": "x", "save_as": "_tools/x"}),
        )
        .await,
        403,
        "forbidden",
    );

    // A label and a version at once: 400 on every tool, as everywhere in the API.
    for (path, body) in [
        (
            "/api/v1/tools/analyze",
            json!({"prompt": "billing/answer", "label": "production", "version": 1}),
        ),
        (
            "/api/v1/prompts/billing%2Fanswer/optimize",
            json!({"label": "production", "version": 1}),
        ),
    ] {
        assert_error(&app.post(path, &editor, body).await, 400, "bad_request");
    }

    // Optimize: 201, a new version, no label moved, history says where it came from.
    let o = app
        .post(
            "/api/v1/prompts/billing/answer/optimize",
            &editor,
            json!({"version": 1, "goal": "shorter"}),
        )
        .await;
    assert_eq!(o.status, StatusCode::CREATED, "{}", o.text);
    assert_eq!(o.body["source_version"], 1);
    assert_eq!(o.body["version"]["version"], 2);
    assert_eq!(o.body["version"]["labels"], json!(["latest"]));
    assert!(
        o.body["version"]["commit_message"]
            .as_str()
            .unwrap()
            .starts_with("Optimized from version 1 by _tools/optimize v1 (mock/echo) for: shorter")
    );
    assert_error(
        &app.post(
            "/api/v1/prompts/_tools%2Fremix/optimize",
            &editor,
            json!({}),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &app.post(
            "/api/v1/prompts/billing%2Fanswer/optimize",
            &editor,
            json!({"label": "latest", "version": 1}),
        )
        .await,
        400,
        "bad_request",
    );
    assert_error(
        &app.post("/api/v1/prompts/nope/optimize", &editor, json!({}))
            .await,
        404,
        "not_found",
    );

    // Every tool call is a run of its meta-prompt.
    for (tool, n) in [("analyze", 2), ("remix", 1), ("create", 2), ("optimize", 1)] {
        let runs = app
            .get(&format!("/api/v1/runs?prompt=_tools/{tool}"), &viewer)
            .await;
        assert_eq!(runs.status, StatusCode::OK, "{}", runs.text);
        let items = runs.body["items"].as_array().unwrap();
        assert_eq!(items.len(), n, "{tool}: {}", runs.text);
        assert!(items.iter().all(|r| r["status"] == "completed"
            && r["model"] == "mock/echo"
            && r["metadata"]["tool"] == tool));
    }

    // Roles and bad input.
    assert_error(
        &app.post("/api/v1/tools/remix", &viewer, json!({})).await,
        403,
        "forbidden",
    );
    let bad = app
        .post(
            "/api/v1/tools/remix",
            &editor,
            json!({"template": "x", "style": "loud"}),
        )
        .await;
    assert_error(&bad, 422, "validation_failed");
    assert_eq!(bad.body["error"]["details"]["field"], "style");
    let bad = app
        .post(
            "/api/v1/tools/create",
            &editor,
            json!({"goal": "g", "variables": ["ok", "1bad"]}),
        )
        .await;
    assert_error(&bad, 422, "validation_failed");
    assert_eq!(bad.body["error"]["details"]["field"], "variables[1]");
    let bad = app.post("/api/v1/tools/analyze", &editor, json!({})).await;
    assert_error(&bad, 422, "validation_failed");
    assert_eq!(bad.body["error"]["details"]["field"], "template");
}

async fn other_projects_are_seeded_on_first_use(app: &TestApp) {
    let key = app.key("team-b", KeyRole::Editor).await;
    assert_error(
        &app.get("/api/v1/prompts/_tools%2Fremix", &key).await,
        404,
        "not_found",
    );
    let r = app
        .post(
            "/api/v1/tools/remix",
            &key,
            json!({"template": "{{ a }}", "style": "formal"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = app.get("/api/v1/prompts/_tools%2Fremix", &key).await;
    assert_eq!(p.body["labels"]["production"], 1);
}

macro_rules! suite {
    ($factory:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn echo_tools_end_to_end() {
            let Some(app) = $factory().await else { return };
            super::echo_tools_end_to_end(&app).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn other_projects_are_seeded_on_first_use() {
            let Some(app) = $factory().await else { return };
            super::other_projects_are_seeded_on_first_use(&app).await;
        }
    };
}

mod memory {
    use super::*;

    async fn app() -> Option<TestApp> {
        Some(TestApp::memory().await)
    }

    suite!(app);
}

mod sqlite {
    use super::*;

    async fn app() -> Option<TestApp> {
        TestApp::from_backend(prompt_store::testkit::sqlite_backend().await).await
    }

    suite!(app);
}

mod postgres {
    use super::*;

    async fn app() -> Option<TestApp> {
        TestApp::from_backend(prompt_store::testkit::postgres_backend().await).await
    }

    suite!(app);
}

#[tokio::test]
async fn mock_server_good_and_bad_json() {
    let server = MockServer::start().await.unwrap();
    let app = app_with_vendor(&server, "tools-http", None).await;
    let k = &app.admin;

    server.script(
        "tools-http",
        [r#"{"template": "Tell me about {{ topic }}, step by step.", "rationale": "Added steps."}"#],
    );
    let r = app
        .post(
            "/api/v1/tools/remix",
            k,
            json!({"template": "Tell me about {{ topic }}", "style": "step_by_step"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["template"],
        "Tell me about {{ topic }}, step by step."
    );
    assert_eq!(r.body["model"], "vendor/tools-http");

    server.script(
        "tools-http",
        [r#"{"clarity": {"score": 9, "reason": "Clear."}, "specificity": {"score": 3, "reason": "Vague."}, "structure": {"score": 5, "reason": "Flat."}, "suggestions": ["Say how long."]}"#],
    );
    let a = app
        .post(
            "/api/v1/tools/analyze",
            k,
            json!({"template": "Tell me about {{ topic }}"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["critique"]["available"], true);
    assert_eq!(
        a.body["critique"]["clarity"],
        json!({"score": 9, "reason": "Clear."})
    );
    assert_eq!(a.body["critique"]["suggestions"], json!(["Say how long."]));

    // Bad JSON twice: 502 for remix; analyze keeps its static part.
    server.script("tools-http", ["not json", "still not json"]);
    let r = app
        .post(
            "/api/v1/tools/remix",
            k,
            json!({"template": "Tell me about {{ topic }}", "style": "concise"}),
        )
        .await;
    assert_error(&r, 502, "provider_error");
    assert_eq!(r.body["error"]["details"]["kind"], "malformed_response");
    server.script("tools-http", ["not json", "still not json"]);
    let a = app
        .post(
            "/api/v1/tools/analyze",
            k,
            json!({"template": "Tell me about {{ topic }}"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.body["critique"]["available"], false);
    assert_eq!(a.body["variables"], json!(["topic"]));

    // A rewrite that invents a variable, twice: 502.
    let invent = r#"{"template": "Tell me about {{ topic }} in {{ lang }}"}"#;
    server.script("tools-http", [invent, invent]);
    app.post(
        "/api/v1/prompts/t/versions",
        k,
        json!({"template": "Tell me about {{ topic }}"}),
    )
    .await;
    let o = app
        .post("/api/v1/prompts/t/optimize", k, json!({"label": "latest"}))
        .await;
    assert_error(&o, 502, "provider_error");
    assert!(
        o.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invents lang")
    );
    assert_eq!(
        app.get("/api/v1/prompts/t", k).await.body["latest_version"],
        1,
        "no version was created"
    );
}

#[tokio::test]
async fn mock_server_timeout_and_unavailable() {
    let server = MockServer::start().await.unwrap();
    let body = json!({"goal": "Summarize articles", "variables": ["article"]});

    let app = app_with_vendor(&server, "slow-5000", Some(Duration::from_millis(100))).await;
    let r = app
        .post("/api/v1/tools/create", &app.admin, body.clone())
        .await;
    assert_error(&r, 503, "unavailable");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("vendor/slow-5000")
    );
    assert!(r.headers.contains_key("retry-after"));

    let app = app_with_vendor(&server, "error-503", None).await;
    let r = app
        .post("/api/v1/tools/create", &app.admin, body.clone())
        .await;
    assert_error(&r, 503, "unavailable");

    let app = app_with_vendor(&server, "error-429", None).await;
    let r = app
        .post("/api/v1/tools/create", &app.admin, body.clone())
        .await;
    assert_error(&r, 503, "unavailable");
    assert_eq!(r.headers["retry-after"], "20");

    let app = app_with_vendor(&server, "error-401", None).await;
    let r = app.post("/api/v1/tools/create", &app.admin, body).await;
    assert_error(&r, 502, "provider_error");
    assert_eq!(r.body["error"]["details"]["kind"], "auth");
}

#[tokio::test]
async fn tools_are_in_the_openapi_document() {
    let doc = serde_json::to_value(prompt_http::openapi()).unwrap();
    for path in [
        "/api/v1/tools/analyze",
        "/api/v1/tools/remix",
        "/api/v1/tools/create",
        "/api/v1/prompts/{name}/optimize",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "{path} missing");
    }
    for schema in [
        "Analysis",
        "Remix",
        "Created",
        "Optimized",
        "RemixStyle",
        "Lint",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
}
