//! Stored provider credentials everywhere a provider is called: background (`async`)
//! executions use the project's stored provider first, as synchronous ones do, and
//! stored providers retry under the server's retry policy
//! (`PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS`), not a built-in one. Over a real SQLite file,
//! the real router, real workers and the mock vendor server.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;
use common::free_port;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestApp;
use prompt_core::{KeyRole, Provider, ProviderSet};
use prompt_http::secrets::{Keyring, MasterKey};
use prompt_http::{RouterConfig, StateConfig, app, build_state, start_workers};
use prompt_providers::{MockProvider, MockServer, OpenAiConfig, OpenAiProvider, RetryPolicy};
use serde_json::{Value, json};

const KEY_HEX: &str = "8f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const SECRET: &str = "sk-test-STORED-0123456789abcdef";

struct Setup {
    app: TestApp,
    mock: MockServer,
    _dir: tempfile::TempDir,
}

/// An app on a SQLite file with the master key, providers `mock` and `shadow` (an
/// unreachable environment provider), the retry policy `retry`, and one background
/// worker.
async fn setup(retry: RetryPolicy) -> Setup {
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("p.db").display());
    let s = prompt_store::SqliteStore::open(prompt_store::SqliteConfig::new(db_url))
        .await
        .unwrap();
    let store: Arc<dyn prompt_core::PromptStore> = Arc::new(s.clone());
    let runs: Arc<dyn prompt_core::RunLog> = Arc::new(s);
    let shadow: Arc<dyn Provider> = Arc::new(
        OpenAiProvider::new(OpenAiConfig::compatible("shadow", "http://127.0.0.1:9/v1")).unwrap(),
    );
    let providers = ProviderSet::new()
        .with(Arc::new(MockProvider::new()))
        .with(shadow)
        .with_pricing(Arc::new(prompt_providers::PriceTable::builtin()));
    let (state, _writer) = build_state(
        store.clone(),
        runs.clone(),
        &StateConfig {
            providers,
            master_key: Some(Keyring {
                current: MasterKey::parse(KEY_HEX).unwrap(),
                previous: None,
            }),
            retry,
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
    let router = app(state, RouterConfig::default());
    Setup {
        app: TestApp {
            router,
            store,
            runs,
            admin,
            _guard: Some(Box::new(workers)),
        },
        mock,
        _dir: dir,
    }
}

/// Retry at once: the tests count attempts, not wait for backoffs.
fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        ..RetryPolicy::default()
    }
}

async fn store_provider(app: &TestApp, name: &str, base_url: &str) {
    let r = app
        .put(
            &format!("/api/v1/providers/{name}"),
            &app.admin,
            json!({"kind": "openai_compatible", "base_url": base_url, "api_key": SECRET}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Poll a run until it is finished (completed or failed).
async fn finished_run(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get(&format!("/api/v1/runs/{id}"), key).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let status = r.body["status"].as_str().unwrap().to_owned();
        if status == "completed" || status == "failed" {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "run {id} still {status}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_version(app: &TestApp, name: &str, provider: &str) {
    let r = app
        .post(
            &format!("/api/v1/prompts/{name}/versions"),
            &app.admin,
            json!({"template": "Hello {{name}}", "config": {"provider": provider, "model": "m1"},
                   "labels": ["production"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

async fn execute_async(app: &TestApp, key: &str, name: &str) -> Value {
    let r = app
        .post(
            &format!("/api/v1/prompts/{name}/execute"),
            key,
            json!({"variables": {"name": "Ada"}, "async": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "pending");
    finished_run(app, key, r.body["id"].as_str().unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_executions_use_the_projects_stored_provider_first() {
    let s = setup(fast_retry(1)).await;
    let app = &s.app;
    let editor = app.key("default", KeyRole::Editor).await;

    // A provider that exists only as a stored credential.
    store_provider(app, "vendor", &s.mock.openai_base_url()).await;
    create_version(app, "only-stored", "vendor").await;
    let run = execute_async(app, &editor, "only-stored").await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["provider"], "vendor");
    assert_eq!(run["model"], "m1");
    assert_eq!(run["output"], "Hello Ada");
    let sent = s.mock.requests().pop().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str()),
        "the stored key was used"
    );

    // A stored provider shadows the environment's (unreachable) one of the same name,
    // in the background as in a synchronous execution.
    store_provider(app, "shadow", &s.mock.openai_base_url()).await;
    create_version(app, "shadowed", "shadow").await;
    let before = s.mock.request_count();
    let run = execute_async(app, &editor, "shadowed").await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["provider"], "shadow");
    assert_eq!(run["output"], "Hello Ada");
    assert_eq!(s.mock.request_count(), before + 1);
    let sync = app
        .post(
            "/api/v1/prompts/shadowed/execute",
            &editor,
            json!({"variables": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(sync.status, 200, "{}", sync.text);
    assert_eq!(sync.body["provider"], run["provider"]);
    assert_eq!(sync.body["output"], run["output"]);

    // Deleted: the background run falls back to the environment's provider (and fails
    // there, recording why), as a synchronous one would.
    assert_eq!(
        app.delete("/api/v1/providers/shadow", &app.admin)
            .await
            .status,
        204
    );
    let run = execute_async(app, &editor, "shadowed").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["provider"], "shadow");
    assert!(run["error"]["message"].is_string(), "{run}");

    // Another project does not see this project's credentials.
    let other = app.key("other", KeyRole::Admin).await;
    let r = app
        .post(
            "/api/v1/prompts/only-stored/versions",
            &other,
            json!({"template": "Hi {{name}}", "config": {"provider": "vendor", "model": "m1"},
                   "labels": ["production"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let run = execute_async(app, &other, "only-stored").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no provider named 'vendor'"),
        "{run}"
    );
    assert!(!run.to_string().contains("STORED"), "secret leaked: {run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_providers_retry_under_the_servers_policy() {
    // 3 attempts: neither the built-in default (4) nor no retry (1).
    let s = setup(fast_retry(3)).await;
    let app = &s.app;
    store_provider(app, "vendor", &s.mock.openai_base_url()).await;
    let attempts = |model: &'static str| {
        s.mock
            .requests()
            .iter()
            .filter(|r| r.body["model"] == model)
            .count()
    };

    // Execute (synchronous).
    create_version(app, "p", "vendor").await;
    let r = app
        .post(
            "/api/v1/prompts/p/execute",
            &app.admin,
            json!({"variables": {"name": "Ada"}, "model": "error-503"}),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(attempts("error-503"), 3);

    // The gateway.
    let r = app
        .post(
            "/v1/chat/completions",
            &app.admin,
            json!({"model": "vendor/error-500", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert!(r.status.is_server_error(), "{}", r.text);
    assert_eq!(attempts("error-500"), 3);

    // A background execution.
    let r = app
        .post(
            "/api/v1/prompts/p/execute",
            &app.admin,
            json!({"variables": {"name": "Ada"}, "model": "error-529", "async": true}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let run = finished_run(app, &app.admin, r.body["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(attempts("error-529"), 3);

    // Not retryable: one attempt whatever the policy.
    let r = app
        .post(
            "/api/v1/prompts/p/execute",
            &app.admin,
            json!({"variables": {"name": "Ada"}, "model": "error-400"}),
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text);
    assert_eq!(attempts("error-400"), 1);
}

/// The binary reads `PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS` once, for the environment's
/// providers and the stored ones alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_setting_of_the_binary_applies_to_stored_providers() {
    use std::io::BufRead;
    let mock = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prompt-registry"))
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("b.db").display()),
        )
        .env("PROMPT_REGISTRY_ADDR", format!("127.0.0.1:{port}"))
        .env("PROMPT_REGISTRY_MASTER_KEY", KEY_HEX)
        .env("PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let admin = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        line.trim().to_owned()
    })
    .await
    .unwrap();
    assert!(admin.starts_with("pr_"), "{admin}");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = client
        .put(format!("{base}/api/v1/providers/vendor"))
        .bearer_auth(&admin)
        .json(&json!({"kind": "openai_compatible", "base_url": mock.openai_base_url(), "api_key": SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&admin)
        .json(
            &json!({"model": "vendor/error-503", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(status.is_server_error(), "{status}");
    let attempts = mock
        .requests()
        .iter()
        .filter(|r| r.body["model"] == "error-503")
        .count();
    assert_eq!(attempts, 2, "PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS=2 applies");
}

/// A stored credential this server cannot open (here: it has no master key) fails only
/// the executions that name it, with the reason; the project's other executions, sync
/// and in the background, go on with the other providers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unopenable_credential_fails_only_its_own_calls() {
    let s = setup(fast_retry(1)).await;
    let app = &s.app;
    store_provider(app, "vendor", &s.mock.openai_base_url()).await;
    create_version(app, "uses-vendor", "vendor").await;
    create_version(app, "uses-mock", "mock").await;

    // The same database, served by a process without the master key.
    let (state, _writer) = build_state(
        app.store.clone(),
        app.runs.clone(),
        &StateConfig {
            providers: ProviderSet::new().with(Arc::new(MockProvider::new())),
            master_key: None,
            retry: fast_retry(1),
            ..StateConfig::default()
        },
    )
    .await
    .unwrap();
    let workers = start_workers(&state, 1).await.unwrap();
    let keyless = TestApp {
        router: prompt_http::app(state, RouterConfig::default()),
        store: app.store.clone(),
        runs: app.runs.clone(),
        admin: app.admin.clone(),
        _guard: Some(Box::new(workers)),
    };
    let editor = keyless.key("default", KeyRole::Editor).await;
    let sync = keyless
        .post(
            "/api/v1/prompts/uses-mock/execute",
            &editor,
            json!({"variables": {"name": "Ada"}}),
        )
        .await;
    assert_eq!(sync.status, 200, "{}", sync.text);
    let run = execute_async(&keyless, &editor, "uses-mock").await;
    assert_eq!(run["status"], "completed", "{run}");

    let run = execute_async(&keyless, &editor, "uses-vendor").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["provider"], "vendor");
    assert_eq!(run["error"]["kind"], "not_configured", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("master key"),
        "{run}"
    );
    assert!(!run.to_string().contains("STORED"), "secret leaked: {run}");
}
