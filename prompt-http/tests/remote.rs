//! The remote store (`prompt_store::RemoteStore`) against the real service on a real
//! socket: every call goes over HTTP, errors come back as the core errors they were,
//! and the client cache serves stale entries while the server is down.
//!
//! One file, over 600 lines, on purpose: every test drives the same in-process server
//! harness (`Server`) through the remote client; split, each part would repeat it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;
use std::time::Duration;

use prompt_core::{
    Error, ExecuteOptions, KeyRole, NewPrompt, NewRun, NewVersion, PageRequest, PromptFilter,
    PromptStore, PromptUpdate, Registry, RunQuery, RunStatus, Selector, StatsQuery, TemplateError,
    TemplateFormat,
};
use prompt_http::{RouterConfig, StateConfig, auth, bootstrap_admin_key, build_state, serve};
use prompt_store::{MemoryConfig, MemoryStore, RemoteConfig, RemoteStore};
use serde_json::{Map, json};

struct Server {
    url: String,
    admin: String,
    store: Arc<dyn PromptStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    async fn start() -> Server {
        let m = Arc::new(MemoryStore::new(MemoryConfig::default()));
        let store: Arc<dyn PromptStore> = m.clone();
        let admin = bootstrap_admin_key(&store).await.unwrap().unwrap();
        Server::start_on(m, admin, "127.0.0.1:0").await
    }

    /// A server over `m` (its event log included) listening on `addr`.
    async fn start_on(m: Arc<MemoryStore>, admin: String, addr: &str) -> Server {
        let store: Arc<dyn PromptStore> = m.clone();
        let config = StateConfig {
            events: Some(m.clone()),
            ..StateConfig::default()
        };
        let (state, writer_task) = build_state(store.clone(), m.clone(), &config)
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve(
            listener,
            state,
            writer_task,
            RouterConfig::default(),
            async move {
                let _ = rx.await;
            },
        ));
        Server {
            url,
            admin,
            store,
            stop: Some(stop),
            done: Some(done),
        }
    }

    async fn key(&self, project: &str, role: KeyRole) -> String {
        let p = self.store.ensure_project(project).await.unwrap();
        auth::create_key(&self.store, p.id, "remote-test", role)
            .await
            .unwrap()
            .key
    }

    fn remote(&self, key: &str, ttl: Option<Duration>, follow: bool) -> RemoteStore {
        let mut c = RemoteConfig::new(&self.url, key);
        c.cache_ttl = ttl;
        c.follow_events = follow;
        RemoteStore::new(c).unwrap()
    }

    async fn registry(&self, key: &str, ttl: Option<Duration>) -> (Registry, RemoteStore) {
        self.registry_with(key, ttl, true).await
    }

    async fn registry_with(
        &self,
        key: &str,
        ttl: Option<Duration>,
        follow: bool,
    ) -> (Registry, RemoteStore) {
        let remote = self.remote(key, ttl, follow);
        let project = remote.caller().await.unwrap().project.clone();
        let reg = Registry::from_parts(Arc::new(remote.clone()), Arc::new(remote.clone()), project);
        (reg, remote)
    }

    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            d.await.unwrap().unwrap();
        }
    }
}

/// The `greet` prompt, executed by the server's mock provider.
async fn greet(reg: &Registry) {
    reg.create_version(
        "greet",
        NewVersion::new("Hello {{ name }}")
            .with_config(json!({"provider": "mock", "model": "mock/echo"}))
            .with_labels(["production"]),
    )
    .await
    .unwrap();
}

fn vars(v: serde_json::Value) -> Map<String, serde_json::Value> {
    v.as_object().cloned().unwrap()
}

#[tokio::test]
async fn prompts_versions_and_labels_round_trip_over_http() {
    let server = Server::start().await;
    let (reg, remote) = server.registry(&server.admin, None).await;
    assert_eq!(remote.caller().await.unwrap().project.name, "default");
    assert_eq!(remote.caller().await.unwrap().role(), Some(KeyRole::Admin));

    let p = reg
        .create_prompt(NewPrompt {
            name: "support/triage".into(),
            description: Some("Routes tickets".into()),
            tags: vec!["support".into()],
        })
        .await
        .unwrap();
    assert_eq!(p.name, "support/triage");
    match reg
        .create_prompt(NewPrompt {
            name: "support/triage".into(),
            ..NewPrompt::default()
        })
        .await
    {
        Err(Error::AlreadyExists { what }) => assert_eq!(what, "prompt 'support/triage'"),
        other => panic!("{other:?}"),
    }

    let v1 = reg
        .create_version(
            "support/triage",
            NewVersion::new("Classify: {{ ticket }}")
                .with_config(json!({"provider": "mock", "model": "mock/echo"}))
                .with_labels(["production"]),
        )
        .await
        .unwrap();
    assert_eq!(
        (v1.version, v1.variables.clone()),
        (1, vec!["ticket".into()])
    );
    let v2 = reg
        .create_version(
            "support/triage",
            NewVersion::new("Classify {{ ticket }} for {{ team }}").with_commit_message("team"),
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.created_by.as_deref(), Some("key:bootstrap-admin"));

    let got = reg
        .resolve("support/triage", &Selector::default())
        .await
        .unwrap();
    assert_eq!(got.version, 1);
    let latest = reg
        .resolve("support/triage", &Selector::Label("latest".into()))
        .await
        .unwrap();
    assert_eq!(latest.version, 2);
    let mv = reg
        .set_label(
            "support/triage",
            "production",
            2,
            prompt_core::LabelExpect::Any,
            None,
        )
        .await
        .unwrap();
    assert_eq!((mv.from_version, mv.to_version), (Some(1), Some(2)));
    let history = reg
        .label_history("support/triage", "production", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(history.items.len(), 2);

    let del = reg
        .delete_label(
            "support/triage",
            "production",
            prompt_core::LabelExpect::Any,
            None,
        )
        .await
        .unwrap();
    assert_eq!((del.from_version, del.to_version), (Some(2), None));
    match reg.resolve("support/triage", &Selector::default()).await {
        Err(Error::NotFound { what }) => assert!(what.contains("production"), "{what}"),
        other => panic!("{other:?}"),
    }

    let versions = reg
        .list_versions("support/triage", &PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(versions.items[0].version, 2);
    let next = reg
        .list_versions(
            "support/triage",
            &PageRequest {
                limit: Some(1),
                cursor: versions.next_cursor,
            },
        )
        .await
        .unwrap();
    assert_eq!(next.items[0].version, 1);

    let listed = reg
        .list_prompts(
            &PromptFilter {
                tag: Some("support".into()),
                name_prefix: Some("support/".into()),
                ..PromptFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);

    let current = reg.get_prompt("support/triage").await.unwrap();
    let updated = reg
        .update_prompt(
            "support/triage",
            PromptUpdate {
                description: Some(Some("Triage".into())),
                tags: None,
            },
            Some(&current.etag),
        )
        .await
        .unwrap();
    assert_eq!(updated.description.as_deref(), Some("Triage"));
    match reg
        .update_prompt(
            "support/triage",
            PromptUpdate {
                description: Some(None),
                tags: None,
            },
            Some(&current.etag),
        )
        .await
    {
        Err(Error::PreconditionFailed { .. }) => {}
        other => panic!("{other:?}"),
    }

    match reg
        .create_version(
            "support/triage",
            NewVersion::new("{% if %}").with_format(TemplateFormat::Jinja),
        )
        .await
    {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "template"),
        other => panic!("{other:?}"),
    }
    match reg.get_prompt("missing").await {
        Err(Error::NotFound { what }) => assert_eq!(what, "prompt 'missing'"),
        other => panic!("{other:?}"),
    }

    reg.archive_prompt("support/triage").await.unwrap();
    assert!(matches!(
        reg.get_prompt("support/triage").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn runs_executions_and_stats_over_http() {
    let server = Server::start().await;
    let (reg, remote) = server.registry(&server.admin, None).await;
    greet(&reg).await;

    let ex = remote
        .execute(
            "greet",
            &Selector::default(),
            &vars(json!({"name": "Ada"})),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert!(ex.error.is_none());
    assert_eq!(ex.run.status, RunStatus::Completed);
    assert!(ex.run.output.as_deref().unwrap().contains("Hello Ada"));

    // A failed execution still records its run; the typed error comes back with it.
    let failed = remote
        .execute(
            "greet",
            &Selector::default(),
            &vars(json!({"name": "Ada"})),
            ExecuteOptions::provider("nope", "m"),
        )
        .await
        .unwrap();
    assert_eq!(failed.run.status, RunStatus::Failed);
    assert!(
        matches!(failed.error, Some(Error::Provider(_))),
        "{failed:?}"
    );
    match remote
        .execute(
            "greet",
            &Selector::default(),
            &Map::new(),
            ExecuteOptions::default(),
        )
        .await
    {
        Ok(ex) => match ex.error {
            Some(Error::Template(TemplateError::MissingVariables(v))) => {
                assert_eq!(v, vec!["name".to_owned()])
            }
            other => panic!("{other:?}"),
        },
        Err(Error::Template(TemplateError::MissingVariables(v))) => {
            assert_eq!(v, vec!["name".to_owned()])
        }
        Err(e) => panic!("{e:?}"),
    }

    let pending = remote
        .submit(
            "greet",
            &Selector::default(),
            &vars(json!({"name": "Bob"})),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert!(matches!(
        pending.status,
        RunStatus::Pending | RunStatus::Running | RunStatus::Completed
    ));

    let mut ok = NewRun::with_status(RunStatus::Completed);
    ok.prompt = Some("greet".into());
    ok.version = Some(1);
    ok.provider = Some("openai".into());
    ok.model = Some("gpt-4o-mini".into());
    ok.latency_ms = Some(120);
    let mut bad = ok.clone();
    bad.version = Some(9);
    let mut invalid = ok.clone();
    invalid.status = RunStatus::Failed;
    let results = remote
        .log_runs(vec![ok.clone(), bad, invalid])
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    let stored = results[0].as_ref().unwrap();
    assert_eq!(stored.latency_ms, Some(120));
    assert_eq!(reg.get_run(stored.id).await.unwrap(), *stored);
    assert!(
        matches!(&results[1], Err(Error::NotFound { .. })),
        "{:?}",
        results[1]
    );
    match &results[2] {
        Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "error"),
        other => panic!("{other:?}"),
    }
    let one = remote.log_run(ok).await.unwrap();
    assert_eq!(reg.get_run(one.id).await.unwrap().id, one.id);

    let page = reg
        .runs(&RunQuery {
            prompt: Some("greet".into()),
            provider: Some("openai".into()),
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let stats = reg.stats(&StatsQuery::prompt("greet")).await.unwrap();
    assert!(stats[0].count >= 4, "{stats:?}");
    assert!(stats[0].failed >= 1, "{stats:?}");
}

#[tokio::test]
async fn keys_scope_and_roles_come_back_as_auth_errors() {
    let server = Server::start().await;
    let (admin, _) = server.registry(&server.admin, None).await;
    admin
        .create_version("secret", NewVersion::new("x"))
        .await
        .unwrap();

    let bad = server.remote("pr_00000000_nope", None, true);
    assert!(matches!(
        bad.caller().await,
        Err(Error::Unauthorized { .. })
    ));

    let viewer_key = server.key("default", KeyRole::Viewer).await;
    let (viewer, _) = server.registry(&viewer_key, None).await;
    viewer
        .resolve("secret", &Selector::Label("latest".into()))
        .await
        .unwrap();
    assert!(matches!(
        viewer.create_version("secret", NewVersion::new("y")).await,
        Err(Error::Forbidden { .. })
    ));

    // Another project's prompt is not found, exactly like a missing one.
    let other_key = server.key("other", KeyRole::Admin).await;
    let (other, remote) = server.registry(&other_key, None).await;
    assert_eq!(other.project().name, "other");
    assert!(matches!(
        other.get_prompt("secret").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        remote.project_by_name("default").await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_client_cache_serves_stale_while_the_server_is_down() {
    let mut server = Server::start().await;
    let (writer, _) = server.registry(&server.admin, None).await;
    writer
        .create_version("p", NewVersion::new("one").with_labels(["production"]))
        .await
        .unwrap();

    // A client whose entries stay fresh for a minute and one whose entries are stale
    // at once (a TTL of 1 ns): the states of the cache without waiting for time to pass.
    // Neither follows the event stream, so the TTL alone decides (what it does when
    // the stream is down).
    let (fresh, _) = server
        .registry_with(&server.admin, Some(Duration::from_secs(60)), false)
        .await;
    let (reader, remote) = server
        .registry_with(&server.admin, Some(Duration::from_nanos(1)), false)
        .await;
    let sel = Selector::default();
    assert_eq!(fresh.resolve("p", &sel).await.unwrap().version, 1);
    assert_eq!(reader.resolve("p", &sel).await.unwrap().version, 1);

    // Another client moves the label: a fresh entry is answered as it is until its TTL;
    // a stale one is answered at once while a background request refreshes it.
    writer
        .create_version("p", NewVersion::new("two").with_labels(["production"]))
        .await
        .unwrap();
    assert_eq!(fresh.resolve("p", &sel).await.unwrap().version, 1);
    let mut seen = Vec::new();
    // Polls until the refresh lands (a generous deadline: the machine may be busy).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = reader.resolve("p", &sel).await.unwrap().version;
        seen.push(v);
        if v == 2 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.first(), Some(&1), "stale answer first: {seen:?}");
    assert_eq!(
        seen.last(),
        Some(&2),
        "refreshed in the background: {seen:?}"
    );

    // A write through this client is seen at once, whatever the TTL.
    reader
        .set_label("p", "production", 1, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap();
    assert_eq!(reader.resolve("p", &sel).await.unwrap().version, 1);

    // Server gone: the cached lookup is still answered; an uncached one is Unavailable.
    server.stop().await;
    assert_eq!(reader.resolve("p", &sel).await.unwrap().version, 1);
    assert_eq!(reader.resolve("p", &sel).await.unwrap().version, 1);
    match reader.resolve("p", &Selector::Version(2)).await {
        Err(Error::Unavailable { message, .. }) => {
            assert!(message.contains("cannot connect"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    remote.clear_cache();
    assert!(matches!(
        reader.resolve("p", &sel).await,
        Err(Error::Unavailable { .. })
    ));
}

/// A `Registry` over the remote store hands executions, submissions, run logging and
/// the authoring aids to the server (whose providers and workers run them), as the
/// Python module does: where runs execute is the store's business, not the caller's.
#[tokio::test]
async fn a_registry_over_the_remote_store_executes_on_the_server() {
    let server = Server::start().await;
    let (reg, _remote) = server.registry(&server.admin, None).await;
    assert_eq!(reg.server_url(), Some(server.url.as_str()));
    assert_eq!(reg.current_project().await.unwrap().name, "default");
    greet(&reg).await;

    // This registry has no providers of its own: the server executed the call, and
    // the run is in the server's log.
    let ex = reg
        .execute(
            "greet",
            &Selector::default(),
            &vars(json!({"name": "Ada"})),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert!(ex.error.is_none(), "{ex:?}");
    assert_eq!(ex.run.status, RunStatus::Completed);
    assert!(ex.run.output.as_deref().unwrap().contains("Hello Ada"));
    assert_eq!(reg.get_run(ex.run.id).await.unwrap().id, ex.run.id);

    let pending = reg
        .submit(
            "greet",
            &Selector::default(),
            &vars(json!({"name": "Bob"})),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(reg.get_run(pending.id).await.unwrap().id, pending.id);
    // Nothing to start here: the server's workers execute submitted runs.
    let pool = reg
        .start_workers(prompt_core::WorkerPoolConfig::default())
        .await
        .unwrap();
    pool.shutdown().await;

    let mut ok = NewRun::with_status(RunStatus::Completed);
    ok.prompt = Some("greet".into());
    ok.version = Some(1);
    let one = reg.log_run(ok.clone()).await.unwrap();
    assert_eq!(reg.get_run(one.id).await.unwrap(), one);
    let many = reg.log_runs(vec![ok]).await.unwrap();
    assert!(many[0].is_ok(), "{many:?}");

    // The authoring aids read the stored prompt on the server.
    let analysis = reg
        .analyze(prompt_core::AnalyzeRequest {
            prompt: Some("greet".into()),
            critique: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(analysis.source.unwrap().version, 1);
    assert_eq!(analysis.variables, vec!["name".to_owned()]);
}

/// Poll `check` until it holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// A cached remote store follows the server's event stream: a label moved by another
/// client is served as soon as its event arrives, not after the TTL (an hour here);
/// after the server restarts, the follower resumes from its cursor and catches up
/// with a move made while it was away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_lookups_follow_the_event_stream_across_a_restart() {
    let m = Arc::new(MemoryStore::new(MemoryConfig::default()));
    let store: Arc<dyn PromptStore> = m.clone();
    let admin = bootstrap_admin_key(&store).await.unwrap().unwrap();
    let mut server = Server::start_on(m.clone(), admin.clone(), "127.0.0.1:0").await;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let (writer, _) = server.registry(&admin, None).await;
    for t in ["one", "two", "three"] {
        writer
            .create_version("live", NewVersion::new(t))
            .await
            .unwrap();
    }
    let expect = prompt_core::LabelExpect::Any;
    writer
        .set_label("live", "production", 1, expect, None)
        .await
        .unwrap();
    let (reader, remote) = server
        .registry(&admin, Some(Duration::from_secs(3600)))
        .await;
    let prod = Selector::default();
    assert_eq!(reader.resolve("live", &prod).await.unwrap().version, 1);
    assert!(
        eventually(Duration::from_secs(10), || async {
            remote.feed_status().connected
        })
        .await,
        "the follower connects: {:?}",
        remote.feed_status()
    );

    writer
        .set_label("live", "production", 2, expect, None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            reader.resolve("live", &prod).await.unwrap().version == 2
        })
        .await,
        "the move is seen well within the TTL"
    );
    // Once the follower has seen the head, a lookup is cached for good (one made while
    // the move's event was in flight is answered but, rightly, not kept).
    let head = prompt_core::EventLog::head(&remote, uuid::Uuid::nil())
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            remote.feed_status().cursor >= head
        })
        .await
    );
    assert_eq!(reader.resolve("live", &prod).await.unwrap().version, 2);
    let cursor = remote.feed_status().cursor;
    assert!(cursor > 0);

    // The server goes away; a move is made meanwhile (straight into its store); the
    // reader keeps serving what it has.
    server.stop().await;
    m.set_label(
        m.project_by_name("default").await.unwrap().id,
        "live",
        "production",
        3,
        expect,
        Some("offline"),
    )
    .await
    .unwrap();
    assert_eq!(reader.resolve("live", &prod).await.unwrap().version, 2);
    let mut again = Server::start_on(m.clone(), admin.clone(), &addr).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            reader.resolve("live", &prod).await.unwrap().version == 3
        })
        .await,
        "after the restart the follower catches up from its cursor: {:?}",
        remote.feed_status()
    );
    let status = remote.feed_status();
    assert!(status.connects >= 2, "{status:?}");
    assert!(status.cursor > cursor, "{status:?}");
    again.stop().await;
}
