//! The shared behaviour suite on the remote store: every test body that the other
//! backends pass, run through `prompt_store::RemoteStore` against a real
//! `prompt-registry` service on a socket (a fresh one per test, SQLite in a temp dir).
//!
//! A remote store is scoped to its API key's one project, and the server keeps the
//! run log's internals (ids, status updates, the workers' queue), API key records and
//! the sealing of provider credentials to itself: the suite skips those tests here
//! (printing why), as [`Capabilities`] says. Everything else runs unchanged, with the
//! client cache on, as users run it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;

use prompt_core::{KeyRole, PromptStore, Registry};
use prompt_http::{RouterConfig, StateConfig, auth, bootstrap_admin_key, build_state, serve};
use prompt_store::testkit::{Capabilities, TestBackend};
use prompt_store::{RemoteConfig, RemoteStore, SqliteConfig, SqliteStore};

/// What a remote store can do through the store traits.
const REMOTE: Capabilities = Capabilities {
    projects: false,
    api_keys: false,
    provider_credentials: false,
    run_internals: false,
    version_by_id: false,
    named_actors: false,
};

/// The server of one test: stopped (graceful shutdown) when dropped, with its
/// database directory.
struct Server {
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// A fresh server, and a remote backend on its `default` project whose registries are
/// made on projects (and admin keys) created on the server.
async fn remote_backend() -> Option<TestBackend> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("server.db").display());
    let db = SqliteStore::open(SqliteConfig::new(url)).await.unwrap();
    let store: Arc<dyn PromptStore> = Arc::new(db.clone());
    let admin = bootstrap_admin_key(&store).await.unwrap().unwrap();
    let (state, writer_task) = build_state(store.clone(), Arc::new(db), &StateConfig::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(
        listener,
        state,
        writer_task,
        RouterConfig::default(),
        async move {
            let _ = rx.await;
        },
    ));

    let default = Arc::new(RemoteStore::new(RemoteConfig::new(&base, admin)).unwrap());
    let make = {
        let base = base.clone();
        move |project: String| {
            let (store, base) = (store.clone(), base.clone());
            Box::pin(async move {
                let p = store.ensure_project(&project).await.unwrap();
                let key = auth::create_key(&store, p.id, "suite", KeyRole::Admin)
                    .await
                    .unwrap()
                    .key;
                let remote = Arc::new(RemoteStore::new(RemoteConfig::new(base, key)).unwrap());
                let project = remote.caller().await.unwrap().project.clone();
                Registry::from_parts(remote.clone(), remote, project)
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = Registry> + Send>>
        }
    };
    Some(TestBackend {
        caps: REMOTE,
        registry_factory: Some(Arc::new(make)),
        ..TestBackend::with_guard(
            default.clone(),
            default,
            Server {
                _stop: stop,
                _dir: dir,
            },
        )
    })
}

prompt_store::behaviour_suite!(remote_backend);
