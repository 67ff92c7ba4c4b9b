#![doc = include_str!("../README.md")]

use std::sync::Arc;
use std::time::Duration;

use prompt_core::domain::DEFAULT_PROJECT;
use prompt_core::{
    KeyRole, PromptStore, ProviderSet, Registry, Result, RunLog, ToolsConfig, WorkerPool,
    WorkerPoolConfig,
};
use tokio::task::JoinHandle;

pub mod accounts;
mod api_doc;
pub mod auth;
pub mod backend;
pub mod backup;
pub mod config;
pub mod config_cli;
pub mod config_file;
pub mod connections;
pub mod error;
pub mod error_reports;
pub mod extract;
pub mod feed;
pub mod heavy;
pub mod idempotency;
pub mod limit;
pub mod metrics;
pub mod otel;
pub mod people_cli;
pub mod project_providers;
pub mod prompts_cli;
pub mod retention;
pub mod router;
pub mod routes;
pub mod secrets;
pub mod state;
pub mod storage;
pub mod ui;
pub mod webhooks;
pub mod writer;

pub use connections::ConnectionLimits;
pub use router::{RouterConfig, app, metrics_app, openapi, openapi_json};
pub use state::AppState;

use crate::limit::KeyLimiter;
use crate::writer::{RunWriter, WriterConfig};

/// Settings of the application state.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// Requests per second per key (0 = unlimited).
    pub rate_limit: u32,
    /// Burst per key.
    pub rate_burst: u32,
    /// Anonymous use of the prompt analysis service's routes (`--public-tools`); `None`:
    /// they need credentials like every other route.
    pub public_tools: Option<PublicToolsConfig>,
    /// The run writer.
    pub writer: WriterConfig,
    /// Providers prompts are executed with (`mock` at least).
    pub providers: ProviderSet,
    /// Labels only admin keys may set or delete.
    pub protected_labels: Vec<String>,
    /// The model of the prompt tools (`PROMPT_REGISTRY_TOOLS_MODEL`, default `mock/echo`).
    pub tools: ToolsConfig,
    /// The master key of stored provider credentials (none: they cannot be stored).
    pub master_key: Option<secrets::Keyring>,
    /// The retry policy of providers built from stored credentials: the one `providers`
    /// were built with (`PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS`), so one setting applies
    /// to every provider.
    pub retry: prompt_providers::RetryPolicy,
    /// People (users, organizations, sign-in), when the backend has a people store.
    pub accounts: Option<AccountsSetup>,
    /// The change log (`Backend::events`); without it the change-feed routes answer
    /// 501 and nothing is pruned.
    pub events: Option<Arc<dyn prompt_core::EventLog>>,
    /// The live feed's settings and the log's retention.
    pub feed: feed::FeedConfig,
    /// Webhooks, when the backend has a webhook store and event log (their secrets
    /// are sealed with `master_key`).
    pub webhooks: Option<webhooks::WebhooksSetup>,
    /// The lease of a run being executed (`--run-lease-secs`): renewed every third of
    /// it while the run executes; a `running` run not renewed for that long is
    /// re-queued by the workers (see `prompt_core::Registry::with_run_lease`).
    pub run_lease: std::time::Duration,
    /// Redis counting the rate limits of every instance (`--redis-url`); `None`: each
    /// instance counts its own.
    pub shared_limits: Option<Arc<limit::SharedLimits>>,
    /// How often the retention task deletes runs past their project's retention
    /// (`--retention-interval-secs`); `None`: never (see [`retention`]).
    pub retention_interval: Option<Duration>,
    /// How long an `Idempotency-Key` and its answer are kept
    /// (`--idempotency-ttl-secs`, 24 h by default; see [`idempotency`]).
    pub idempotency_ttl: Duration,
}

/// The limits of anonymous tool calls (`--public-tools`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicToolsConfig {
    /// Calls allowed per minute per client address (0 = unlimited).
    pub per_minute: u32,
    /// Calls allowed at once per client address above the rate.
    pub burst: u32,
}

/// What the people features are built from.
#[derive(Debug, Clone)]
pub struct AccountsSetup {
    /// The store.
    pub people: Arc<dyn prompt_core::PeopleStore>,
    /// Where account emails go.
    pub mailer: accounts::mail::Mailer,
    /// Settings.
    pub config: accounts::AccountsConfig,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            rate_limit: 0,
            rate_burst: 0,
            public_tools: None,
            writer: WriterConfig::default(),
            providers: ProviderSet::new().with(Arc::new(prompt_providers::MockProvider::new())),
            protected_labels: vec!["production".to_owned()],
            tools: ToolsConfig::default(),
            master_key: None,
            retry: prompt_providers::RetryPolicy::default(),
            shared_limits: None,
            accounts: None,
            events: None,
            feed: feed::FeedConfig::default(),
            webhooks: None,
            run_lease: prompt_core::DEFAULT_RUN_LEASE,
            retention_interval: None,
            idempotency_ttl: idempotency::DEFAULT_TTL,
        }
    }
}

/// Build the state over a store and run log. The returned handle finishes when the
/// state (and every clone) is dropped and the run writer has drained its queue.
pub async fn build_state(
    store: Arc<dyn PromptStore>,
    runs: Arc<dyn RunLog>,
    config: &StateConfig,
) -> Result<(AppState, JoinHandle<()>)> {
    // Every handler's store calls go through the one validation layer.
    let store = prompt_core::ValidatedStore::wrap(store);
    // Idempotency keys on the backend's database; in this process' memory where the
    // store keeps none (a remote store).
    let idempotency = idempotency::Idempotency {
        store: store
            .idempotency()
            .unwrap_or_else(|| Arc::new(prompt_store::MemoryIdempotency::default())),
        ttl: config.idempotency_ttl,
    };
    let runs = prompt_core::ValidatedRunLog::wrap(runs);
    let base = Registry::new(store.clone(), runs.clone())
        .await?
        .with_providers(config.providers.clone())
        .with_tools(config.tools.clone())
        .with_run_lease(config.run_lease);
    // The tools' meta-prompts of the default project (other projects: on first use).
    base.seed_tools().await?;
    let (writer, writer_task) = RunWriter::start(runs.clone(), config.writer);
    let shared = |l: KeyLimiter| match &config.shared_limits {
        Some(redis) => l.shared_through(redis.clone()),
        None => l,
    };
    let limiter = shared(KeyLimiter::new(config.rate_limit, config.rate_burst));
    let accounts = match &config.accounts {
        Some(setup) => Some(
            accounts::Accounts::new(
                setup.people.clone(),
                setup.mailer.clone(),
                setup.config.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let webhooks = config
        .webhooks
        .clone()
        .map(|setup| webhooks::Webhooks::new(setup, config.master_key.clone()))
        .transpose()?;
    Ok((
        AppState::new(state::AppStateParts {
            store,
            runs,
            base,
            writer,
            limiter,
            public_tools: config.public_tools.map(|c| state::PublicTools {
                limiter: match &config.shared_limits {
                    Some(redis) => limit::AddrLimiter::per_minute(c.per_minute, c.burst)
                        .shared_through(redis.clone()),
                    None => limit::AddrLimiter::per_minute(c.per_minute, c.burst),
                },
                project: Arc::default(),
            }),
            cache: None,
            protected_labels: Arc::new(config.protected_labels.clone()),
            project_providers: project_providers::ProjectProviders::new(
                config.master_key.clone(),
                config.providers.clone(),
                config.retry.clone(),
            ),
            accounts,
            feed: config
                .events
                .clone()
                .map(|events| feed::Feed::new(events, config.feed.clone())),
            webhooks,
            storage: storage::StorageHealth::default(),
            retention_interval: config.retention_interval,
            idempotency,
        }),
        writer_task,
    ))
}

/// On a database with no API key at all, create project `default` and one admin key;
/// return the key (to print once). `None` when keys exist already.
pub async fn bootstrap_admin_key(store: &Arc<dyn PromptStore>) -> Result<Option<String>> {
    let project = store.ensure_project(DEFAULT_PROJECT).await?;
    if !store.list_api_keys(project.id).await?.is_empty() {
        return Ok(None);
    }
    let issued = auth::create_key(store, project.id, "bootstrap-admin", KeyRole::Admin).await?;
    Ok(Some(issued.key))
}

/// Start the background workers that execute submitted (`async: true`) runs, each with
/// its project's providers: stored credentials first, then the environment's, as a
/// synchronous execution.
pub async fn start_workers(state: &AppState, workers: usize) -> Result<WorkerPool> {
    state
        .base
        .start_workers_with(
            WorkerPoolConfig {
                workers: workers.max(1),
                ..WorkerPoolConfig::default()
            },
            Arc::new(state.worker_providers()),
        )
        .await
}

/// Certificate and key files of a server that speaks HTTPS itself.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: std::path::PathBuf,
    /// PEM private key.
    pub key: std::path::PathBuf,
}

/// How [`serve_with_options`] serves: the router's settings, TLS, connection limits
/// and timeouts, and where `/metrics` is served.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// The router's settings.
    pub router: RouterConfig,
    /// Speak HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Connection cap, header/idle timeouts, and how long a shutdown waits.
    pub limits: ConnectionLimits,
    /// Serve `/metrics` on this listener alone (plain HTTP, same limits) and not on
    /// the main one; set `router.metrics_route = false` with it.
    pub metrics_listener: Option<tokio::net::TcpListener>,
}

/// Serve `app` on `listener` until `shutdown` resolves, then finish in-flight requests,
/// drain the run writer, and return.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    writer_task: JoinHandle<()>,
    config: RouterConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, writer_task, config, None, shutdown).await
}

/// [`serve`], over TLS (rustls) when `tls` is given. Handlers see the client's
/// address (`ConnectInfo`) either way, for throttling and the audit log.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    writer_task: JoinHandle<()>,
    config: RouterConfig,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = ServeOptions {
        router: config,
        tls,
        ..ServeOptions::default()
    };
    serve_with_options(listener, state, writer_task, options, shutdown).await
}

/// [`serve_with`] with every setting: connection limits and timeouts (see
/// [`connections`]) and an optional separate `/metrics` listener. When `shutdown`
/// resolves: stop accepting, close idle connections and end SSE/WebSocket streams,
/// let requests in flight finish for up to `limits.shutdown_timeout`, then drain the
/// run writer (every acknowledged run is committed) and return.
pub async fn serve_with_options(
    listener: tokio::net::TcpListener,
    state: AppState,
    writer_task: JoinHandle<()>,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ServeOptions {
        router: config,
        tls,
        limits,
        metrics_listener,
    } = options;
    // Load the certificate before anything is spawned, so a bad file fails start-up.
    let acceptor = match tls {
        None => None,
        Some(files) => Some(tls_acceptor(&files).await?),
    };
    let limiter = state.limiter.clone();
    let public_limiter = state.public_tools.as_ref().map(|p| p.limiter.clone());
    let feed = state.feed.clone();
    let hooks = state.webhooks.as_ref().map(|w| w.store().clone());
    let pruner = feed
        .clone()
        .map(|feed| tokio::spawn(prune_events(feed, hooks)));
    let retention = state
        .retention_interval
        .map(|every| retention::spawn(state.store.clone(), state.runs.clone(), every));
    // Open SSE streams and WebSockets would hold a graceful shutdown up forever: end
    // them (each with a final `cut_off`) as soon as it starts.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        if let Some(feed) = feed {
            feed.close();
        }
        let _ = stop_tx.send(true);
        // Keep the sender alive: a dropped sender would also wake the receivers.
        std::future::pending::<()>().await;
    });
    let rotation = state.accounts.clone().map(|accounts| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(accounts::tokens::KEY_RELOAD_INTERVAL);
            loop {
                tick.tick().await;
                if let Err(e) = accounts.keys.rotate_if_due().await {
                    tracing::warn!(error = %e, "signing key rotation failed; will retry");
                }
            }
        })
    });
    let shrinker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.shrink();
            if let Some(l) = &public_limiter {
                l.shrink();
            }
        }
    });
    let purger = tokio::spawn(idempotency::purge_expired(state.idempotency.store.clone()));
    let metrics_server = metrics_listener.map(|l| {
        let router = metrics_app(state.clone(), config.metrics_token.clone());
        tokio::spawn(connections::serve_connections(
            l,
            router,
            None,
            limits,
            stop.clone(),
        ))
    });
    let router = app(state, config);
    connections::serve_connections(listener, router, acceptor, limits, stop).await;
    if let Some(m) = metrics_server {
        let _ = m.await;
    }
    signal.abort();
    shrinker.abort();
    purger.abort();
    if let Some(p) = pruner {
        p.abort();
    }
    if let Some(r) = retention {
        r.abort();
    }
    if let Some(r) = rotation {
        r.abort();
    }
    // Every clone of the state (and so of the writer's sender) is gone once the
    // connections are closed: the writer drains what is queued and ends.
    if let Err(e) = writer_task.await {
        tracing::error!(error = %e, "run writer task failed");
    }
    Ok(())
}

/// The TLS acceptor of `files` (rustls, ALPN h2 and http/1.1); the error names them.
async fn tls_acceptor(files: &TlsFiles) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    // rustls needs a process-wide crypto provider when more than one is linked.
    let _ = rustls_provider_install();
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot load --tls-cert {} / --tls-key {}: {e}",
                    files.cert.display(),
                    files.key.display()
                ),
            )
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(rustls.get_inner()))
}

/// How often the change log is pruned.
pub const EVENT_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Every [`EVENT_PRUNE_INTERVAL`] (and once at start-up), delete the events older
/// than the feed's retention, and the webhook delivery log entries as old. With
/// several instances each prunes; the deletes are idempotent.
async fn prune_events(feed: feed::Feed, hooks: Option<Arc<dyn prompt_core::WebhookStore>>) {
    let mut tick = tokio::time::interval(EVENT_PRUNE_INTERVAL);
    loop {
        tick.tick().await;
        let retention =
            chrono::Duration::from_std(feed.config().retention).unwrap_or(chrono::Duration::MAX);
        let before = chrono::Utc::now()
            .checked_sub_signed(retention)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        match feed.events().prune_events(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, %before, "pruned old events from the change log"),
            Err(prompt_core::Error::Unsupported { .. }) => {}
            Err(e) => tracing::warn!(error = %e, "pruning the change log failed; will retry"),
        }
        if let Some(h) = &hooks {
            match h.prune_deliveries(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, %before, "pruned old webhook deliveries"),
                Err(prompt_core::Error::Unsupported { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "pruning webhook deliveries failed; will retry")
                }
            }
        }
    }
}

fn rustls_provider_install() -> Result<(), ()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| ())
}
