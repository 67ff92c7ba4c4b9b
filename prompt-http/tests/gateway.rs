//! Stored provider credentials and the OpenAI-compatible gateway, over a real SQLite
//! file and the mock vendor server: keys encrypted at rest (read from the raw column),
//! masked in every response, used before the environment's providers; chat
//! completions (plain, prompt references, streamed) logged as runs; OpenAI's error
//! shape, with vendor 429/529 mapped to 429/503 and `Retry-After`.
//!
//! One file over 600 lines: the scenarios share one server set-up (SQLite file, mock
//! vendor, master key) and its request helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;
use common::free_port;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{Resp, TestApp};
use prompt_core::{KeyRole, Provider, ProviderSet};
use prompt_http::secrets::{Keyring, MasterKey};
use prompt_http::{RouterConfig, StateConfig, app, build_state};
use prompt_providers::{
    AnthropicConfig, AnthropicProvider, MockProvider, MockServer, OpenAiConfig, OpenAiProvider,
};
use serde_json::{Value, json};
use sqlx::Connection;

const KEY_HEX: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const SECRET: &str = "sk-test-SUPERSECRET-0123456789abcdef";

struct Gateway {
    app: TestApp,
    mock: MockServer,
    db_url: String,
    _dir: tempfile::TempDir,
}

/// An app on a SQLite file with providers `mock`, `upstream` (OpenAI-compatible, on
/// the mock server), `anthropic` (on the mock server) and `shadow` (unreachable),
/// without retries; with the master key unless `master_key` is false.
async fn gateway(master_key: bool) -> Gateway {
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("g.db").display());
    let s = prompt_store::SqliteStore::open(prompt_store::SqliteConfig::new(db_url.clone()))
        .await
        .unwrap();
    let store: Arc<dyn prompt_core::PromptStore> = Arc::new(s.clone());
    let runs: Arc<dyn prompt_core::RunLog> = Arc::new(s);
    let upstream: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new(
            OpenAiConfig::compatible("upstream", mock.openai_base_url()).with_api_key("env-key"),
        )
        .unwrap(),
    );
    let shadow: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new(OpenAiConfig::compatible("shadow", "http://127.0.0.1:9/v1")).unwrap(),
    );
    let anthropic: Arc<dyn Provider> = Arc::new(
        AnthropicProvider::new(AnthropicConfig::new("ak").with_base_url(mock.anthropic_base_url()))
            .unwrap(),
    );
    let providers = ProviderSet::new()
        .with(Arc::new(MockProvider::new()))
        .with(upstream)
        .with(shadow)
        .with(anthropic)
        .with_pricing(Arc::new(prompt_providers::PriceTable::builtin()));
    let keyring = master_key.then(|| Keyring {
        current: MasterKey::parse(KEY_HEX).unwrap(),
        previous: None,
    });
    let (state, _writer) = build_state(
        store.clone(),
        runs.clone(),
        &StateConfig {
            providers,
            master_key: keyring,
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    let admin = prompt_http::bootstrap_admin_key(&store)
        .await
        .unwrap()
        .unwrap();
    let router = app(state, RouterConfig::default());
    Gateway {
        app: TestApp {
            router,
            store,
            runs,
            admin,
            _guard: None,
        },
        mock,
        db_url,
        _dir: dir,
    }
}

fn assert_openai_error(r: &Resp, status: u16, kind: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    let e = &r.body["error"];
    assert_eq!(e["type"], kind, "body: {}", r.text);
    assert!(e["message"].is_string(), "body: {}", r.text);
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "body: {}",
        r.text
    );
}

async fn chat(app: &TestApp, key: &str, body: Value) -> Resp {
    app.post("/v1/chat/completions", key, body).await
}

async fn raw_credential_columns(db_url: &str) -> Vec<String> {
    let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT name, sealed_api_key, key_hint, default_params FROM provider_credentials",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    rows.into_iter()
        .flat_map(|(a, b, c, d)| [a, b, c, d])
        .collect()
}

#[tokio::test]
async fn without_master_key_credentials_are_refused_and_the_rest_works() {
    let g = gateway(false).await;
    let r = g
        .app
        .put(
            "/api/v1/providers/openai",
            &g.app.admin,
            json!({"kind": "openai", "api_key": SECRET}),
        )
        .await;
    common::assert_error(&r, 503, "master_key_not_configured");
    assert!(r.text.contains("PROMPT_REGISTRY_MASTER_KEY"), "{}", r.text);
    assert!(!r.text.contains(SECRET));
    let r = g.app.get("/api/v1/providers", &g.app.admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["items"], json!([]));
    let r = chat(
        &g.app,
        &g.app.admin,
        json!({"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn stored_credentials_are_encrypted_masked_and_used_first() {
    let g = gateway(true).await;
    let app = &g.app;
    let editor = app.key("default", KeyRole::Editor).await;
    let viewer = app.key("default", KeyRole::Viewer).await;
    let body = json!({
        "kind": "openai_compatible",
        "base_url": g.mock.openai_base_url(),
        "api_key": SECRET,
        "default_params": {"model": "stored-default", "temperature": 0.25},
    });
    // Admin only to write; editors read (masked), viewers not at all.
    common::assert_error(
        &app.put("/api/v1/providers/shadow", &editor, body.clone())
            .await,
        403,
        "forbidden",
    );
    let r = app
        .put("/api/v1/providers/shadow", &app.admin, body.clone())
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["api_key"], "sk-…cdef");
    assert_eq!(r.body["kind"], "openai_compatible");
    let again = app
        .put("/api/v1/providers/shadow", &app.admin, body.clone())
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["created_at"], r.body["created_at"]);
    let mut seen = vec![r.text, again.text];
    let r = app.get("/api/v1/providers/shadow", &editor).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["default_params"]["temperature"], 0.25);
    seen.push(r.text);
    let r = app.get("/api/v1/providers", &editor).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
    seen.push(r.text);
    common::assert_error(
        &app.get("/api/v1/providers", &viewer).await,
        403,
        "forbidden",
    );
    common::assert_error(
        &app.put(
            "/api/v1/providers/Bad%2FName",
            &app.admin,
            json!({"kind": "openai", "api_key": "x"}),
        )
        .await,
        422,
        "validation_failed",
    );
    common::assert_error(
        &app.put(
            "/api/v1/providers/compat",
            &app.admin,
            json!({"kind": "openai_compatible", "api_key": "x"}),
        )
        .await,
        422,
        "validation_failed",
    );

    // At rest: ciphertext, never the key.
    let raw = raw_credential_columns(&g.db_url).await;
    assert!(raw.iter().any(|c| c.starts_with("v1.")), "{raw:?}");
    for c in &raw {
        assert!(!c.contains(SECRET) && !c.contains("SUPERSECRET"), "{c}");
    }

    // `shadow` is also an (unreachable) environment provider: the stored one wins.
    let r = chat(
        app,
        &editor,
        json!({"model": "shadow/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    seen.push(r.text.clone());
    let sent = g.mock.requests().pop().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(sent.body["temperature"], 0.25, "default params apply");
    // The provider's name alone: its default model.
    let r = chat(
        app,
        &editor,
        json!({"model": "shadow", "messages": [{"role": "user", "content": "hi"}], "temperature": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = g.mock.requests().pop().unwrap();
    assert_eq!(sent.body["model"], "stored-default");
    assert_eq!(sent.body["temperature"], 1, "the request's params win");

    // Executing a prompt uses the stored provider too.
    let r = app
        .post(
            "/api/v1/prompts/greet/versions",
            &app.admin,
            json!({"template": "Hello {{name}}", "config": {"provider": "shadow", "model": "m1"}, "labels": ["production"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/v1/prompts/greet/execute",
            &editor,
            json!({"variables": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["output"], "Hello Ada");
    seen.push(r.text);
    let r = app.get("/api/v1/runs?limit=500", &editor).await;
    assert!(r.body["items"].as_array().unwrap().len() >= 3, "{}", r.text);
    seen.push(r.text);
    for text in &seen {
        assert!(!text.contains("SUPERSECRET"), "secret leaked: {text}");
    }

    // Deleted: the environment's unreachable `shadow` answers again.
    assert_eq!(
        app.delete("/api/v1/providers/shadow", &app.admin)
            .await
            .status,
        204
    );
    common::assert_error(
        &app.get("/api/v1/providers/shadow", &editor).await,
        404,
        "not_found",
    );
    let r = chat(
        app,
        &editor,
        json!({"model": "shadow/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_openai_error(&r, 502, "server_error");
}

#[tokio::test]
async fn master_key_rotation_reseals_everything_at_once() {
    let g = gateway(true).await;
    let r = g
        .app
        .put(
            "/api/v1/providers/mine",
            &g.app.admin,
            json!({"kind": "openai", "api_key": SECRET, "base_url": g.mock.openai_base_url()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new_hex = "11".repeat(32);
    let db = prompt_http::config::DatabaseArgs {
        database_url: g.db_url.clone(),
    };
    // A wrong old key changes nothing.
    let bad = prompt_http::secrets::RotateArgs {
        db: db.clone(),
        old_key: "22".repeat(32),
        new_key: new_hex.clone(),
    };
    let e = prompt_http::secrets::rotate(&g.app.store, &bad)
        .await
        .unwrap_err();
    assert!(e.contains("nothing was changed"), "{e}");
    let before = raw_credential_columns(&g.db_url).await;
    let args = prompt_http::secrets::RotateArgs {
        db,
        old_key: KEY_HEX.into(),
        new_key: new_hex.clone(),
    };
    assert_eq!(
        prompt_http::secrets::rotate(&g.app.store, &args)
            .await
            .unwrap(),
        1
    );
    let after = raw_credential_columns(&g.db_url).await;
    assert_ne!(before[1], after[1]);
    let c = g
        .app
        .store
        .get_provider_credential(
            g.app.store.project_by_name("default").await.unwrap().id,
            "mine",
        )
        .await
        .unwrap();
    let new_ring = Keyring {
        current: MasterKey::parse(&new_hex).unwrap(),
        previous: None,
    };
    assert_eq!(new_ring.open(&c).unwrap(), SECRET);
    let old_ring = Keyring {
        current: MasterKey::parse(KEY_HEX).unwrap(),
        previous: None,
    };
    assert!(old_ring.open(&c).is_err());
}

/// A client written for one vendor's SDK sends that vendor's bare model name: it
/// reaches the vendor's provider, a project's stored one first; a vendor that is not
/// configured is refused naming it, and a name no vendor uses stays a provider name.
#[tokio::test]
async fn a_vendor_model_name_alone_reaches_its_vendor() {
    let g = gateway(true).await;
    let app = &g.app;
    let hi = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let r = chat(app, &app.admin, hi("claude-3-5-haiku-latest")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = g.mock.requests().pop().unwrap();
    assert_eq!(sent.vendor, "anthropic");
    assert_eq!(sent.body["model"], "claude-3-5-haiku-latest");
    let run_id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
    assert_eq!(run.body["provider"], "anthropic", "{}", run.text);
    assert_eq!(run.body["model"], "claude-3-5-haiku-latest");

    // No `openai` provider here: refused, naming it.
    let r = chat(app, &app.admin, hi("gpt-4o-mini")).await;
    assert!(
        r.status.is_client_error() || r.status.is_server_error(),
        "{}",
        r.text
    );
    assert!(r.text.contains("'openai'"), "{}", r.text);
    // The project stores credentials for `openai`: the same call now reaches them.
    let put = app
        .put(
            "/api/v1/providers/openai",
            &app.admin,
            json!({"kind": "openai_compatible", "base_url": g.mock.openai_base_url(), "api_key": "sk-stored"}),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text);
    let r = chat(app, &app.admin, hi("gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = g.mock.requests().pop().unwrap();
    assert_eq!(sent.vendor, "openai");
    assert_eq!(sent.body["model"], "gpt-4o-mini");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-stored"));
    // Not a vendor's model name: an unknown provider, as before.
    let r = chat(app, &app.admin, hi("nonesuch")).await;
    assert!(r.text.contains("'nonesuch'"), "{}", r.text);
}

#[tokio::test]
async fn chat_completion_is_openai_shaped_and_logged() {
    let g = gateway(true).await;
    let app = &g.app;
    let r = chat(
        app,
        &app.admin,
        json!({
            "model": "upstream/gpt-4o-mini",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "temperature": 0.1,
            "user": "u-1",
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["object"], "chat.completion");
    assert!(r.body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(r.body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
    let usage = &r.body["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{}", r.text);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    let overhead: f64 = r.headers["x-prompt-registry-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead >= 0.0);
    let run_id = r.headers["x-prompt-registry-run-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Acknowledged means logged: the run is there at once.
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
    assert_eq!(run.status, 200, "{}", run.text);
    assert_eq!(run.body["status"], "completed");
    assert_eq!(run.body["provider"], "upstream");
    assert_eq!(run.body["model"], "gpt-4o-mini");
    assert_eq!(run.body["metadata"]["user"], "u-1");
    assert_eq!(run.body["input_tokens"], usage["prompt_tokens"]);
    assert_eq!(
        run.body["output"],
        r.body["choices"][0]["message"]["content"]
    );
    assert_eq!(run.body["input"][1]["content"], "hi");
    // Anthropic answers are translated (usage included).
    let r = chat(
        app,
        &app.admin,
        json!({"model": "anthropic/claude-3-5-haiku-latest", "messages": [{"role": "user", "content": "hey"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["choices"][0]["finish_reason"], "stop");
    assert!(r.body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    // The metric is exported.
    let m = app.call(Method::GET, "/metrics", None, None).await;
    assert!(
        m.text.contains("prompt_registry_gateway_overhead_seconds"),
        "{}",
        m.text
    );
    // Models the key can call.
    let r = app.get("/v1/models", &app.admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["object"], "list");
    let ids: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"mock/echo"), "{ids:?}");
}

#[tokio::test]
async fn prompt_references_supply_messages_model_and_params() {
    let g = gateway(true).await;
    let app = &g.app;
    for (template, labels) in [
        (
            json!([{"role": "system", "content": "You greet {{name}}."}]),
            json!(["production"]),
        ),
        (
            json!([{"role": "system", "content": "Version two for {{name}}."}]),
            json!(["staging"]),
        ),
    ] {
        let r = app
            .post(
                "/api/v1/prompts/team/greet/versions",
                &app.admin,
                json!({"template": template, "labels": labels,
                       "config": {"provider": "upstream", "model": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 10}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let call = |model: &str| {
        json!({"model": model, "prompt_variables": {"name": "Ada"},
               "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5})
    };
    let r = chat(app, &app.admin, call("prompt:team/greet")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = g.mock.requests().pop().unwrap();
    assert_eq!(sent.body["model"], "gpt-4o-mini");
    assert_eq!(sent.body["messages"][0]["content"], "You greet Ada.");
    assert_eq!(sent.body["messages"][1]["content"], "hello");
    assert_eq!(sent.body["temperature"], 0.7);
    assert_eq!(sent.body["max_tokens"], 5, "the request's params win");
    let run_id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
    assert_eq!(run.body["prompt"], "team/greet");
    assert_eq!(run.body["version"], 1);
    assert_eq!(run.body["label"], "production");
    assert_eq!(run.body["variables"]["name"], "Ada");

    let r = chat(app, &app.admin, call("prompt:team/greet@staging")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        g.mock.requests().pop().unwrap().body["messages"][0]["content"],
        "Version two for Ada."
    );
    let r = chat(app, &app.admin, call("prompt:team/greet#1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = chat(app, &app.admin, call("prompt:team/greet@nope")).await;
    assert_openai_error(&r, 404, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "model_not_found");
    // A version whose config names no provider, or a provider without a default model
    // and no model given: the caller's `model` is incomplete (400 on `model`), not a
    // missing model (404) nor an upstream's refusal.
    let r = app
        .post(
            "/api/v1/prompts/team/unrouted/versions",
            &app.admin,
            json!({"template": "Hi", "labels": ["production"], "config": {"temperature": 0}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for model in ["prompt:team/unrouted", "upstream"] {
        let r = chat(app, &app.admin, call(model)).await;
        assert_openai_error(&r, 400, "invalid_request_error");
        assert_eq!(
            r.body["error"]["code"], "invalid_value",
            "{model}: {}",
            r.text
        );
        assert_eq!(r.body["error"]["param"], "model", "{model}: {}", r.text);
    }
    let r = chat(app, &app.admin, call("prompt:missing")).await;
    assert_openai_error(&r, 404, "invalid_request_error");
    // A refused call is a failed run too, named by the header.
    let run_id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
    assert_eq!(run.body["status"], "failed", "{}", run.text);
    assert_eq!(run.body["error"]["kind"], "not_found");
    assert_eq!(run.body["model"], "prompt:missing");
    assert!(run.body["prompt"].is_null());
    assert_eq!(run.body["metadata"]["source"], "gateway");
    let r = chat(
        app,
        &app.admin,
        json!({"model": "prompt:team/greet", "messages": []}),
    )
    .await;
    assert_openai_error(&r, 400, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "missing_variables");
    assert!(r.text.contains("name"), "{}", r.text);
    // Refused after the version was found: the run names the prompt and version.
    let run_id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
    assert_eq!(run.body["status"], "failed", "{}", run.text);
    assert_eq!(run.body["error"]["kind"], "template");
    assert_eq!(run.body["prompt"], "team/greet");
    assert_eq!(run.body["version"], 1);
    assert_eq!(run.body["label"], "production");
    assert_eq!(run.body["provider"], serde_json::Value::Null);
    assert_eq!(
        g.mock.requests().len(),
        3,
        "no upstream call for refused calls"
    );
}

/// Server-sent events of a response body: the `data:` payloads.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn streaming_sends_openai_chunks_usage_and_done_after_logging() {
    let g = gateway(true).await;
    let app = &g.app;
    let r = chat(
        app,
        &app.admin,
        json!({"model": "upstream/gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "stream me please"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let ev = events(&r.text);
    assert_eq!(ev.last().unwrap(), "[DONE]", "{}", r.text);
    let chunks: Vec<Value> = ev[..ev.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "stream me please");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let run_id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
    assert_eq!(run.body["status"], "completed", "{}", run.text);
    assert_eq!(run.body["output"], "stream me please");
    assert!(run.body["time_to_first_token_ms"].is_u64(), "{}", run.text);

    // A stream failing midway ends with an error event (no [DONE]); the run failed.
    let r = chat(
        app,
        &app.admin,
        json!({"model": "upstream/midstream-error", "stream": true,
               "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let ev = events(&r.text);
    let last: Value = serde_json::from_str(ev.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "{}", r.text);
    let run_id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{run_id}"), &app.admin).await;
    assert_eq!(run.body["status"], "failed", "{}", run.text);
    // A provider that cannot stream still answers as a stream.
    let r = chat(
        app,
        &app.admin,
        json!({"model": "mock/echo", "stream": true, "messages": [{"role": "user", "content": "abc"}]}),
    )
    .await;
    assert_eq!(events(&r.text).last().unwrap(), "[DONE]", "{}", r.text);
    assert!(r.text.contains("abc"));
}

#[tokio::test]
async fn errors_use_openai_shape_and_vendor_limits_map_to_429_and_503() {
    let g = gateway(true).await;
    let app = &g.app;
    let msg = json!([{"role": "user", "content": "x"}]);
    let r = app
        .call(
            Method::POST,
            "/v1/chat/completions",
            None,
            Some(json!({"model": "mock/echo", "messages": msg})),
        )
        .await;
    assert_openai_error(&r, 401, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "invalid_api_key");
    let viewer = app.key("default", KeyRole::Viewer).await;
    let r = chat(app, &viewer, json!({"model": "mock/echo", "messages": msg})).await;
    assert_openai_error(&r, 403, "permission_error");
    let r = chat(
        app,
        &app.admin,
        json!({"model": "nowhere/x", "messages": msg}),
    )
    .await;
    assert_openai_error(&r, 404, "invalid_request_error");
    assert_eq!(r.body["error"]["code"], "model_not_found");
    let r = chat(app, &app.admin, json!({"messages": msg})).await;
    assert_openai_error(&r, 400, "invalid_request_error");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/chat/completions")
        .header("authorization", format!("Bearer {}", app.admin))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_openai_error(&app.send(req).await, 400, "invalid_request_error");

    let r = chat(
        app,
        &app.admin,
        json!({"model": "upstream/error-429", "messages": msg}),
    )
    .await;
    assert_openai_error(&r, 429, "rate_limit_error");
    assert_eq!(r.headers["retry-after"], "20");
    let r = chat(
        app,
        &app.admin,
        json!({"model": "anthropic/error-529", "messages": msg}),
    )
    .await;
    assert_openai_error(&r, 503, "server_error");
    assert!(r.headers.contains_key("retry-after"));
    let r = chat(
        app,
        &app.admin,
        json!({"model": "upstream/error-429", "stream": true, "messages": msg}),
    )
    .await;
    assert_openai_error(&r, 429, "rate_limit_error");
    // Failed calls are logged too.
    let runs = app.get("/api/v1/runs?status=failed", &app.admin).await;
    let kinds: Vec<&str> = runs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["error"]["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"rate_limited"), "{kinds:?}");
    assert!(kinds.contains(&"overloaded"), "{kinds:?}");

    // What the run log would refuse is refused before the upstream is called (and paid).
    let before = app.get("/api/v1/runs?limit=500", &app.admin).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    let long_model = format!("upstream/{}", "m".repeat(300));
    let r = chat(
        app,
        &app.admin,
        json!({"model": long_model, "messages": msg}),
    )
    .await;
    assert_openai_error(&r, 400, "invalid_request_error");
    assert_eq!(r.body["error"]["param"], "model", "{}", r.text);
    let r = chat(
        app,
        &app.admin,
        json!({"model": "upstream/gpt-4o-mini", "messages": [{"role": "user", "content": "a\u{0}b"}]}),
    )
    .await;
    assert_openai_error(&r, 400, "invalid_request_error");
    let after = app.get("/api/v1/runs?limit=500", &app.admin).await.body["items"]
        .as_array()
        .unwrap()
        .clone();
    // Both refused calls are logged as failed runs, without what the log cannot
    // hold (the over-long model, the NUL message), with the reason.
    assert_eq!(after.len(), before + 2, "one failed run per refused call");
    let refused: Vec<&Value> = after
        .iter()
        .filter(|r| r["error"]["kind"] == "invalid_input")
        .collect();
    assert_eq!(refused.len(), 2, "{after:?}");
    for r in &refused {
        assert_eq!(r["status"], "failed");
        assert!(r["model"].is_null() && r["input"].is_null(), "{r}");
    }
    // What the answer could not carry back is refused, not passed on and dropped.
    for (extra, param) in [
        (
            json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
            "tools",
        ),
        (json!({"top_logprobs": 3}), "top_logprobs"),
        (json!({"logprobs": true}), "logprobs"),
        (
            json!({"messages": [{"role": "assistant", "content": null,
                "tool_calls": [{"id": "c1", "type": "function"}]}]}),
            "messages[0].tool_calls",
        ),
    ] {
        let mut body = json!({"model": "upstream/gpt-4o-mini", "messages": msg});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = chat(app, &app.admin, body).await;
        assert_openai_error(&r, 400, "invalid_request_error");
        assert_eq!(r.body["error"]["param"], param, "{}", r.text);
    }
    // Fields that ask for nothing pass; tool qualifiers without tools are not sent on.
    let r = chat(
        app,
        &app.admin,
        json!({"model": "upstream/gpt-4o-mini", "messages": msg, "tools": [], "logprobs": false,
               "top_logprobs": 0, "tool_choice": "auto", "parallel_tool_calls": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = g.mock.requests().pop().unwrap().body;
    assert!(
        sent.get("tool_choice").is_none() && sent.get("parallel_tool_calls").is_none(),
        "{sent}"
    );

    // An upstream error answer names its (stored) run.
    let r = chat(
        app,
        &app.admin,
        json!({"model": "upstream/error-429", "messages": msg}),
    )
    .await;
    assert_eq!(r.status, 429);
    let id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{id}"), &app.admin).await;
    assert_eq!(run.body["error"]["kind"], "rate_limited", "{}", run.text);
    // A refused call whose error quotes what the run log cannot hold (a NUL in the
    // model) is still logged, with a fixed message.
    let r = chat(
        app,
        &app.admin,
        json!({"model": "no\u{0}where/x", "messages": msg}),
    )
    .await;
    assert_openai_error(&r, 404, "invalid_request_error");
    let id = r.headers["x-prompt-registry-run-id"].to_str().unwrap();
    let run = app.get(&format!("/api/v1/runs/{id}"), &app.admin).await;
    assert_eq!(run.body["status"], "failed", "{}", run.text);
    // An unknown provider is the executor's `not_configured` here too (one call path:
    // the same condition is the same kind on every path).
    assert_eq!(run.body["error"]["kind"], "not_configured");
    assert!(
        run.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be stored"),
        "{}",
        run.text
    );
    let missing_key = chat(
        app,
        "pr_nope",
        json!({"model": "mock/echo", "messages": msg}),
    )
    .await;
    assert_openai_error(&missing_key, 401, "invalid_request_error");
    assert!(
        !missing_key.headers.contains_key("x-prompt-registry-run-id"),
        "no run without a project"
    );
}

/// `prompt-registry serve` on `db_url` with `master_key`, debug logs to `log`;
/// returns the child and the first stdout line (the bootstrap admin key, if any).
async fn serve_binary(
    db_url: &str,
    master_key: &str,
    port: u16,
    log: &std::path::Path,
    expect_key: bool,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prompt-registry"))
        .arg("serve")
        .env("DATABASE_URL", db_url)
        .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{port}"))
        .env("PROMPT_REGISTRY_MASTER_KEY", master_key)
        .env("PROMPT_REGISTRY_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line.trim().to_owned()
    });
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == 200
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first = if expect_key {
        first.await.unwrap()
    } else {
        String::new()
    };
    (child, first)
}

/// The binary end to end: the secret is stored, used, rotated, and appears in no
/// response and no log line (debug level, JSON logs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_never_in_responses_or_logs_and_rotation_by_cli() {
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log1 = dir.path().join("serve1.log");
    let (mut child, admin) = serve_binary(&db_url, KEY_HEX, port, &log1, true).await;
    assert!(admin.starts_with("pr_"), "{admin}");
    let client = reqwest::Client::new();
    let mut texts = Vec::new();
    let send = async |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut b = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&admin);
        if let Some(v) = body {
            b = b.json(&v);
        }
        let r = b.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, text)
    };
    let (s, t) = send(
        reqwest::Method::PUT,
        "/api/v1/providers/vendor",
        Some(json!({"kind": "openai_compatible", "base_url": mock.openai_base_url(), "api_key": SECRET})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    texts.push(t);
    // A refused body that carries the secret does not echo it.
    let (s, t) = send(
        reqwest::Method::PUT,
        "/api/v1/providers/vendor",
        Some(json!({"kind": "nonsense", "api_key": SECRET})),
    )
    .await;
    assert_eq!(s, 422, "{t}");
    texts.push(t);
    let (s, t) = send(
        reqwest::Method::POST,
        "/v1/chat/completions",
        Some(
            json!({"model": "vendor/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    texts.push(t);
    let (s, t) = send(
        reqwest::Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": "vendor/error-401", "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    assert_eq!(s, 502, "{t}");
    texts.push(t);
    for path in [
        "/api/v1/providers",
        "/api/v1/providers/vendor",
        "/api/v1/runs",
    ] {
        let (s, t) = send(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "{t}");
        texts.push(t);
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Rotate with the CLI, then serve with the new key: the stored provider works.
    let new_key = "ab".repeat(32);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prompt-registry"))
        .arg("rotate-master-key")
        .env("DATABASE_URL", &db_url)
        .env("PROMPT_REGISTRY_MASTER_KEY", KEY_HEX)
        .env("PROMPT_REGISTRY_NEW_MASTER_KEY", &new_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("re-encrypted 1"), "{stderr}");
    texts.push(stderr);
    texts.push(String::from_utf8_lossy(&out.stdout).into_owned());
    let log2 = dir.path().join("serve2.log");
    let (mut child, _) = serve_binary(&db_url, &new_key, port, &log2, false).await;
    let (s, t) = send(
        reqwest::Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": "vendor/gpt-4o-mini", "messages": [{"role": "user", "content": "again"}]})),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    texts.push(t);
    child.kill().unwrap();
    child.wait().unwrap();
    let sent: Vec<_> = mock
        .requests()
        .into_iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert!(
        sent.iter().all(|h| h == &format!("Bearer {SECRET}")),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 3);

    for log in [&log1, &log2] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(text.lines().count() > 5, "logs were captured: {text}");
        texts.push(text);
    }
    for t in &texts {
        assert!(!t.contains("SUPERSECRET"), "secret leaked: {t}");
    }
}
