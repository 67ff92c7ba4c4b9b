//! The routes of the systems this service replaces, driven the way each design's client
//! calls them: the prompt analysis service (`POST /api/v1/{analyze,remix,create}`,
//! anonymous with `--public-tools`, rate-limited per client address) and the AI prompt
//! manager (`/ai/prompts/`, executed by a background worker against the mock vendor
//! server) and the prompt optimizer backend (`/api/models…` here; `/api/prompts…` and
//! `POST /api/sync/force` in [`optimizer`]) — on memory, SQLite files and Postgres.
//!
//! Over 600 lines as one suite: the three replaced designs share the app set-up, the
//! mock vendor and the per-backend runner at the end of the file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a failed unwrap is a failed test"
)]

mod common;
#[path = "compat_routes/optimizer.rs"]
mod optimizer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use common::smtp::{SmtpSink, token_in};
use common::{Resp, TestApp, assert_error};
use optimizer::{optimizer_prompts_round_trip, sync_force_resynchronises};
use prompt_core::{EventLog, KeyRole, PeopleStore, PromptStore, ProviderSet, RunLog, ToolsConfig};
use prompt_http::accounts::AccountsConfig;
use prompt_http::accounts::mail::Mailer;
use prompt_http::secrets::{Keyring, MasterKey};
use prompt_http::{
    AccountsSetup, PublicToolsConfig, RouterConfig, StateConfig, app, build_state, start_workers,
};
use prompt_providers::{MockProvider, MockServer, OpenAiConfig, OpenAiProvider};
use serde_json::{Value, json};

const PW: &str = "violet tugboat ferments quietly";
const KEY_HEX: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const SECRET: &str = "sk-deepseek-SUPERSECRET-4321";

type Parts = (
    Arc<dyn PromptStore>,
    Arc<dyn RunLog>,
    Arc<dyn PeopleStore>,
    Arc<dyn EventLog>,
    Option<Box<dyn std::any::Any + Send + Sync>>,
);

/// An app whose provider `openai` is the mock vendor server, with one background
/// worker, people, and the given tools model and anonymous tool access.
struct Compat {
    app: TestApp,
    sink: SmtpSink,
    vendor: MockServer,
}

struct Setup {
    public_tools: Option<PublicToolsConfig>,
    /// The tools model on the vendor server (`openai/<model>`); `mock/echo` when none.
    tools_model: Option<&'static str>,
}

async fn compat_app(parts: Parts, setup: Setup) -> Compat {
    let (store, runs, people, events, guard) = parts;
    let vendor = MockServer::start().await.unwrap();
    let sink = SmtpSink::start().await;
    let mut c = OpenAiConfig::compatible("openai", vendor.openai_base_url());
    c.api_key = Some("sk-test".into());
    let providers = ProviderSet::new()
        .with(Arc::new(MockProvider::new()))
        .with(Arc::new(OpenAiProvider::new(c).unwrap()));
    let tools = match setup.tools_model {
        Some(model) => ToolsConfig {
            provider: "openai".into(),
            model: model.into(),
            timeout: None,
        },
        None => ToolsConfig::default(),
    };
    let (state, _writer) = build_state(
        store.clone(),
        runs.clone(),
        &StateConfig {
            providers,
            tools,
            public_tools: setup.public_tools,
            events: Some(events),
            master_key: Some(Keyring {
                current: MasterKey::parse(KEY_HEX).unwrap(),
                previous: None,
            }),
            accounts: Some(AccountsSetup {
                people,
                mailer: Mailer::smtp(&sink.url, "Registry <registry@example.com>").unwrap(),
                config: AccountsConfig::default(),
            }),
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    let workers = start_workers(&state, 1).await.unwrap();
    let admin = prompt_http::bootstrap_admin_key(&store)
        .await
        .unwrap()
        .unwrap();
    Compat {
        app: TestApp {
            router: app(state, RouterConfig::default()),
            store,
            runs,
            admin,
            _guard: Some(Box::new((workers, guard))),
        },
        sink,
        vendor,
    }
}

fn memory_parts() -> Parts {
    let s = Arc::new(prompt_store::MemoryStore::new(
        prompt_store::MemoryConfig::default(),
    ));
    (
        prompt_core::ValidatedStore::wrap(s.clone()),
        prompt_core::ValidatedRunLog::wrap(s.clone()),
        s.clone(),
        s,
        None,
    )
}

/// A request from the client address `from` (as the server's socket sees it).
async fn from_address(app: &TestApp, from: &str, path: &str, body: Value) -> Resp {
    let addr: SocketAddr = format!("{from}:40000").parse().unwrap();
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    app.send(req).await
}

/// Sign up, verify, sign in: the access token.
async fn signed_up(c: &Compat, email: &str, invitation: Option<String>) -> String {
    let mut body = json!({"email": email, "password": PW});
    if let Some(i) = &invitation {
        body["invitation"] = json!(i);
    }
    let r = c
        .app
        .call(Method::POST, "/api/auth/register", None, Some(body))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    if invitation.is_none() {
        let mail = c.sink.wait_for(email, "Verify your email").await;
        let v = c
            .app
            .call(
                Method::POST,
                "/api/auth/verify-email",
                None,
                Some(json!({"token": token_in(&mail)})),
            )
            .await;
        assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    }
    let r = c
        .app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": email, "password": PW})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_owned()
}

/// A request with a user's access token and no `X-Project` (the old client sends none).
async fn as_user(c: &Compat, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    c.app.as_user(method, path, token, None, body).await
}

/// Poll a prompt request until it is no longer pending.
async fn finished(c: &Compat, id: &str, key: &str) -> Resp {
    for _ in 0..400 {
        let r = c.app.get(&format!("/ai/prompts/{id}"), key).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["status"] != "pending" {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("prompt request {id} is still pending");
}

// ---- The prompt analysis service ----

async fn analysis_routes_are_the_tools(parts: Parts) {
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
    let viewer = app.key("default", KeyRole::Viewer).await;

    let draft = json!({"template": "Summarize {{ text }} for {{ audience }}"});
    let old = app.post("/api/v1/analyze", &editor, draft.clone()).await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.text);
    let new = app.post("/api/v1/tools/analyze", &editor, draft).await;
    assert_eq!(old.body["variables"], json!(["text", "audience"]));
    assert_eq!(old.body["variables"], new.body["variables"]);
    assert_eq!(old.body["lints"], new.body["lints"]);
    assert_eq!(old.body["length"], new.body["length"]);

    let remix = app
        .post(
            "/api/v1/remix",
            &editor,
            json!({"template": "Summarize {{ text }}", "style": "concise"}),
        )
        .await;
    assert_eq!(remix.status, StatusCode::OK, "{}", remix.text);
    assert_eq!(remix.body["variables"], json!(["text"]));
    assert_eq!(remix.body["style"], "concise");

    let created = app
        .post(
            "/api/v1/create",
            &editor,
            json!({"goal": "Summarize articles", "variables": ["article"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.body["variables"], json!(["article"]));
    // `save_as` stores it, as the tools route does (201).
    let saved = app
        .post(
            "/api/v1/create",
            &editor,
            json!({"goal": "Summarize articles", "variables": ["article"], "save_as": "summarize"}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.text);
    assert_eq!(saved.body["saved"]["created_by"], "key:test");
    assert_eq!(
        app.get("/api/v1/prompts/summarize", &viewer).await.status,
        StatusCode::OK
    );

    // The errors that design stated: 400 not JSON, 422 a bad field (named).
    let r = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/analyze")
                .header("authorization", format!("Bearer {editor}"))
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_error(&r, 400, "bad_request");
    let r = app
        .post("/api/v1/remix", &editor, json!({"style": "concise"}))
        .await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text.contains("template"), "{}", r.text);
    let r = app
        .post(
            "/api/v1/remix",
            &editor,
            json!({"template": "x", "style": "shouty"}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    // Credentials as on the tools routes: none → 401 (public tools are off), a viewer
    // → 403.
    for path in ["/api/v1/analyze", "/api/v1/remix", "/api/v1/create"] {
        let r = app
            .call(Method::POST, path, None, Some(json!({"template": "x"})))
            .await;
        assert_error(&r, 401, "unauthorized");
        let r = app.post(path, &viewer, json!({"template": "x"})).await;
        assert_error(&r, 403, "forbidden");
    }
}

#[tokio::test]
async fn public_tools_are_anonymous_and_limited_per_address() {
    let c = compat_app(
        memory_parts(),
        Setup {
            public_tools: Some(PublicToolsConfig {
                per_minute: 1,
                burst: 2,
            }),
            tools_model: None,
        },
    )
    .await;
    let app = &c.app;
    let body = json!({"template": "Translate {{ text }}", "style": "formal"});
    for _ in 0..2 {
        let r = from_address(app, "192.0.2.1", "/api/v1/remix", body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["variables"], json!(["text"]));
    }
    let r = from_address(app, "192.0.2.1", "/api/v1/remix", body.clone()).await;
    assert_error(&r, 429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    assert!(r.text.contains("client address"), "{}", r.text);
    // Another address has its own quota; a caller with a key is not limited by it.
    let r = from_address(
        app,
        "192.0.2.2",
        "/api/v1/analyze",
        json!({"template": "Hi {{ name }}"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.post("/api/v1/remix", &app.admin, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Anonymous callers cannot read or store prompts.
    let r = from_address(
        app,
        "192.0.2.3",
        "/api/v1/analyze",
        json!({"prompt": "_tools/remix"}),
    )
    .await;
    assert_error(&r, 401, "unauthorized");
    let r = from_address(
        app,
        "192.0.2.4",
        "/api/v1/create",
        json!({"goal": "Summarize articles", "save_as": "mine"}),
    )
    .await;
    assert_error(&r, 401, "unauthorized");
    let r = from_address(
        app,
        "192.0.2.5",
        "/api/v1/create",
        json!({"goal": "Summarize articles"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A bad key is still a 401, not an anonymous call.
    let r = app.post("/api/v1/remix", "pr_nope_nope", body).await;
    assert_error(&r, 401, "unauthorized");
    // The other routes stay closed to anonymous callers.
    let r = app.call(Method::GET, "/api/v1/prompts", None, None).await;
    assert_error(&r, 401, "unauthorized");
}

#[tokio::test]
async fn a_model_that_is_down_is_a_503() {
    let c = compat_app(
        memory_parts(),
        Setup {
            public_tools: None,
            tools_model: Some("error-503"),
        },
    )
    .await;
    let app = &c.app;
    for (path, body) in [
        (
            "/api/v1/remix",
            json!({"template": "Hi {{ name }}", "style": "friendly"}),
        ),
        (
            "/api/v1/create",
            json!({"goal": "Greet people", "variables": ["name"]}),
        ),
    ] {
        let r = app.post(path, &app.admin, body).await;
        assert_error(&r, 503, "unavailable");
        assert!(r.headers.contains_key("retry-after"));
        assert!(r.text.contains("openai/error-503"), "{}", r.text);
    }
    // Analyze degrades: its report, with the critique unavailable and why.
    let r = app
        .post(
            "/api/v1/analyze",
            &app.admin,
            json!({"template": "Hi {{ name }}"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["critique"]["available"], false);
}

// ---- The AI prompt manager ----

async fn ai_prompts_run_in_the_background(parts: Parts) {
    let c = compat_app(
        parts,
        Setup {
            public_tools: None,
            tools_model: None,
        },
    )
    .await;
    let app = &c.app;
    let key = app.admin.clone();
    let alice = signed_up(&c, "alice@example.com", None).await;
    let me = as_user(&c, Method::GET, "/api/users/me", &alice, None).await;
    let alice_id = me.body["id"].as_str().unwrap().to_owned();

    // Submit as the old client does: a user's token, no project header, a vendor's
    // bare model name. Answered at once, pending.
    let r = as_user(
        &c,
        Method::POST,
        "/ai/prompts/",
        &alice,
        Some(json!({"model": "gpt-4o-mini", "prompt_type": "text", "prompt_text": "Say hi to {{ Bob }}"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["user_id"], alice_id.as_str());
    assert_eq!(r.body["model"], "gpt-4o-mini");
    assert_eq!(r.body["prompt_type"], "text");
    assert_eq!(r.body["prompt_text"], "Say hi to {{ Bob }}");
    assert!(r.body["created_at"].is_string());
    assert!(r.body["response"].is_null());
    let id = r.body["id"].as_str().unwrap().to_owned();

    // The worker calls the vendor; the request shows its response.
    let done = finished(&c, &id, &alice).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let resp = &done.body["response"];
    assert_eq!(resp["prompt_id"], id.as_str());
    assert_eq!(resp["id"], id.as_str());
    assert!(
        resp["response_text"]
            .as_str()
            .unwrap()
            .contains("Say hi to {{ Bob }}"),
        "the prompt text is sent as is: {}",
        done.text
    );
    assert!(resp["duration_ms"].is_u64(), "{}", done.text);
    assert!(resp["created_at"].is_string());
    let sent = c.vendor.requests();
    assert!(
        sent.iter().any(|r| r.body["model"] == "gpt-4o-mini"),
        "the vendor was called with the model: {sent:?}"
    );
    // It is a run like any other, in the run log.
    let run = app.get(&format!("/api/v1/runs/{id}"), &key).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.text);
    assert_eq!(run.body["provider"], "openai");
    assert_eq!(run.body["user"], format!("user:{alice_id}").as_str());

    // With an API key, on the slash-less path, with `provider/model`.
    let k = app
        .post(
            "/ai/prompts",
            &key,
            json!({"model": "mock/echo", "prompt_type": "code", "prompt_text": "fn main() {}"}),
        )
        .await;
    assert_eq!(k.status, StatusCode::CREATED, "{}", k.text);
    assert!(k.body["user_id"].is_null());
    let kid = k.body["id"].as_str().unwrap().to_owned();
    let done = finished(&c, &kid, &key).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    assert!(
        done.body["response"]["response_text"]
            .as_str()
            .unwrap()
            .contains("fn main() {}"),
        "{}",
        done.text
    );

    // A vendor error: failed, with why, and no response.
    let f = app
        .post(
            "/ai/prompts/",
            &key,
            json!({"model": "openai/error-401", "prompt_type": "text", "prompt_text": "x"}),
        )
        .await;
    assert_eq!(f.status, StatusCode::CREATED, "{}", f.text);
    let failed = finished(&c, f.body["id"].as_str().unwrap(), &key).await;
    assert_eq!(failed.body["status"], "failed", "{}", failed.text);
    assert_eq!(failed.body["error"]["kind"], "auth");
    assert!(failed.body["response"].is_null());

    // Lists: a user sees their own; a key, the project's; both paths; newest first.
    for path in ["/ai/prompts/", "/ai/prompts"] {
        let mine = as_user(&c, Method::GET, path, &alice, None).await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
        let ids: Vec<&str> = mine
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()]);
        let all = app.get(path, &key).await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.text);
        let all = all.body.as_array().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2]["id"], id.as_str());
        assert_eq!(all[0]["status"], "failed");
        assert!(
            all[0].get("response").is_none(),
            "a summary has no response"
        );
    }
    let page = app.get("/ai/prompts/?limit=2", &key).await;
    assert_eq!(page.body.as_array().unwrap().len(), 2);
    let cursor = page.headers["x-next-cursor"].to_str().unwrap().to_owned();
    let rest = app
        .get(&format!("/ai/prompts/?limit=2&cursor={cursor}"), &key)
        .await;
    assert_eq!(rest.body.as_array().unwrap().len(), 1, "{}", rest.text);
    assert!(rest.headers.get("x-next-cursor").is_none());

    // Another user of the same project: their list is empty, Alice's request is a 404.
    let inv = as_user(
        &c,
        Method::POST,
        "/api/v1/orgs/default/invitations",
        &alice,
        Some(json!({"email": "bob@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{}", inv.text);
    let mailed = c.sink.wait_for("bob@example.com", "invited you").await;
    let bob = signed_up(&c, "bob@example.com", Some(token_in(&mailed))).await;
    let theirs = as_user(&c, Method::GET, "/ai/prompts/", &bob, None).await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    assert_eq!(theirs.body, json!([]));
    let r = as_user(&c, Method::GET, &format!("/ai/prompts/{id}"), &bob, None).await;
    assert_error(&r, 404, "not_found");
    // A user only sees their own, even a key's request in the same project.
    let r = as_user(&c, Method::GET, &format!("/ai/prompts/{kid}"), &alice, None).await;
    assert_error(&r, 404, "not_found");
    // Another project's key: 404.
    let other = app.key("elsewhere", KeyRole::Admin).await;
    assert_error(
        &app.get(&format!("/ai/prompts/{id}"), &other).await,
        404,
        "not_found",
    );
    assert_eq!(app.get("/ai/prompts/", &other).await.body, json!([]));
    // A run that is not a prompt request: 404.
    let g = app
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    let gid = g.headers["x-prompt-registry-run-id"].to_str().unwrap();
    assert_error(
        &app.get(&format!("/ai/prompts/{gid}"), &key).await,
        404,
        "not_found",
    );
    assert_error(
        &app.get("/ai/prompts/nope", &key).await,
        422,
        "validation_failed",
    );
}

async fn ai_prompts_refuse_bad_requests(parts: Parts) {
    let c = compat_app(
        parts,
        Setup {
            public_tools: None,
            tools_model: None,
        },
    )
    .await;
    let app = &c.app;
    let key = app.admin.clone();
    let good = json!({"model": "mock/echo", "prompt_type": "text", "prompt_text": "hi"});
    for (field, value) in [
        ("model", json!("")),
        ("prompt_type", json!("")),
        ("prompt_type", json!("x".repeat(51))),
        ("prompt_text", json!("  ")),
    ] {
        let mut body = good.clone();
        body[field] = value;
        let r = app.post("/ai/prompts/", &key, body).await;
        assert_error(&r, 422, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.text);
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("prompt_text");
    let r = app.post("/ai/prompts/", &key, missing).await;
    assert_error(&r, 422, "validation_failed");
    // A model whose vendor is not configured here: 422 before anything is recorded.
    let mut body = good.clone();
    body["model"] = json!("claude-3-5-haiku");
    let r = app.post("/ai/prompts/", &key, body).await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text.contains("anthropic"), "{}", r.text);
    assert_eq!(app.get("/ai/prompts/", &key).await.body, json!([]));
    // Roles and credentials as for executing a prompt.
    let viewer = app.key("default", KeyRole::Viewer).await;
    assert_error(
        &app.post("/ai/prompts/", &viewer, good.clone()).await,
        403,
        "forbidden",
    );
    assert_eq!(
        app.get("/ai/prompts/", &viewer).await.status,
        StatusCode::OK
    );
    let r = app
        .call(Method::POST, "/ai/prompts/", None, Some(good))
        .await;
    assert_error(&r, 401, "unauthorized");
    // `/ai/` is the API's, never the console's: JSON errors, not index.html.
    for path in ["/ai/prompts/", "/ai/prompts", "/ai/nope"] {
        let r = app.call(Method::GET, path, None, None).await;
        assert!(r.status.is_client_error(), "{path}: {}", r.status);
        assert!(r.body["error"]["code"].is_string(), "{path}: {}", r.text);
    }
}

// ---- The prompt optimizer backend's models ----

async fn model_configs_are_stored_providers(parts: Parts) {
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
    let editor = app.key("default", KeyRole::Editor).await;

    // A user (admin of `default`) configures DeepSeek as that client does.
    let put = |body: Value| {
        as_user(
            &c,
            Method::PUT,
            "/api/models/config/deepseek",
            &alice,
            Some(body),
        )
    };
    let body = json!({
        "model_type": "deepseek",
        "api_key": SECRET,
        "base_url": c.vendor.openai_base_url(),
        "parameters": {"model": "deepseek-chat", "temperature": 0.2},
    });
    let r = put(body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["id"], "deepseek");
    assert_eq!(r.body["model_type"], "deepseek");
    assert!(r.body["user_id"].is_null());
    assert_eq!(r.body["parameters"]["model"], "deepseek-chat");
    assert!(r.body.get("api_key").is_none(), "{}", r.text);
    assert!(!r.text.contains("SUPERSECRET"), "{}", r.text);
    let again = put(body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    // An OpenAI-compatible server needs its URL: 422 naming it.
    let r = put(json!({"model_type": "deepseek", "api_key": SECRET})).await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text.contains("base_url"), "{}", r.text);
    // Writing needs admin.
    let r = app
        .put(
            "/api/models/config/other",
            &editor,
            json!({"model_type": "openai", "api_key": SECRET}),
        )
        .await;
    assert_error(&r, 403, "forbidden");

    let list = as_user(&c, Method::GET, "/api/models/config", &alice, None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let items = list.body.as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["model_type"], "deepseek");
    assert!(!list.text.contains("SUPERSECRET"));
    let models = app.get("/api/models", &editor).await;
    assert_eq!(models.status, StatusCode::OK, "{}", models.text);
    let ids: Vec<&str> = models
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids[0], "deepseek/deepseek-chat",
        "configured first: {ids:?}"
    );
    assert!(ids.contains(&"mock/echo"), "{ids:?}");

    // The configuration serves calls: a bare DeepSeek model name reaches it, with its key.
    let r = as_user(
        &c,
        Method::POST,
        "/ai/prompts/",
        &alice,
        Some(json!({"model": "deepseek-chat", "prompt_type": "text", "prompt_text": "hello"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let done = finished(&c, r.body["id"].as_str().unwrap(), &alice).await;
    assert_eq!(done.body["status"], "completed", "{}", done.text);
    let sent = c.vendor.requests().pop().unwrap();
    assert_eq!(sent.body["model"], "deepseek-chat");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );

    let r = as_user(
        &c,
        Method::DELETE,
        "/api/models/config/deepseek",
        &alice,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let list = as_user(&c, Method::GET, "/api/models/config", &alice, None).await;
    assert_eq!(list.body, json!([]));
    let r = as_user(
        &c,
        Method::DELETE,
        "/api/models/config/deepseek",
        &alice,
        None,
    )
    .await;
    assert_error(&r, 404, "not_found");
}

#[tokio::test]
async fn the_openapi_document_lists_the_compat_routes() {
    let doc: Value = serde_json::from_str(&prompt_http::openapi_json()).unwrap();
    for (path, method) in [
        ("/api/v1/analyze", "post"),
        ("/api/v1/remix", "post"),
        ("/api/v1/create", "post"),
        ("/ai/prompts/", "post"),
        ("/ai/prompts/", "get"),
        ("/ai/prompts/{id}", "get"),
        ("/api/models", "get"),
        ("/api/models/config", "get"),
        ("/api/models/config/{model}", "put"),
        ("/api/models/config/{model}", "delete"),
        ("/api/prompts", "get"),
        ("/api/prompts", "post"),
        ("/api/prompts/{id}", "get"),
        ("/api/prompts/{id}", "put"),
        ("/api/prompts/{id}", "delete"),
        ("/api/prompts/{id}/history", "get"),
        ("/api/prompts/{id}/optimize", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["tags"], json!(["compat"]), "{method} {path}: {op}");
    }
    let force = &doc["paths"]["/api/sync/force"]["post"];
    assert_eq!(force["tags"], json!(["compat", "events"]), "{force}");
    // Operation ids stay unique (the console's client generator refuses duplicates).
    let mut ids: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operationId");
    let schemas = &doc["components"]["schemas"];
    for name in [
        "PromptCreate",
        "PromptOut",
        "PromptDetail",
        "PromptResponse",
        "OptimizerPrompt",
        "OptimizerPromptCreate",
        "OptimizerPromptUpdate",
        "PromptHistoryEntry",
        "SyncSnapshot",
    ] {
        assert!(schemas.get(name).is_some(), "schema {name}");
    }
}

macro_rules! compat_suite {
    ($factory:ident: $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(parts) = $factory().await else { return };
                super::$name(parts).await;
            }
        )*
    };
}

fn from_backend(b: Option<prompt_store::testkit::TestBackend>) -> Option<Parts> {
    let b = b?;
    let people = b.people.clone().expect("the backend offers a people store");
    let events = b.events.clone().expect("the backend offers an event log");
    Some((
        b.store.clone(),
        b.runs.clone(),
        people,
        events,
        Some(Box::new(b)),
    ))
}

mod memory {
    async fn parts() -> Option<super::Parts> {
        Some(super::memory_parts())
    }

    compat_suite!(parts: analysis_routes_are_the_tools, ai_prompts_run_in_the_background, ai_prompts_refuse_bad_requests, model_configs_are_stored_providers, optimizer_prompts_round_trip, sync_force_resynchronises);
}

mod sqlite {
    async fn parts() -> Option<super::Parts> {
        super::from_backend(prompt_store::testkit::sqlite_backend().await)
    }

    compat_suite!(parts: analysis_routes_are_the_tools, ai_prompts_run_in_the_background, ai_prompts_refuse_bad_requests, model_configs_are_stored_providers, optimizer_prompts_round_trip, sync_force_resynchronises);
}

mod postgres {
    async fn parts() -> Option<super::Parts> {
        super::from_backend(prompt_store::testkit::postgres_backend().await)
    }

    compat_suite!(parts: analysis_routes_are_the_tools, ai_prompts_run_in_the_background, ai_prompts_refuse_bad_requests, model_configs_are_stored_providers, optimizer_prompts_round_trip, sync_force_resynchronises);
}
