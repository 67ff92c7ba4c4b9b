//! `prompt-registry`: the Prompt Registry server and its admin commands.
//!
//! One job: the command line and its dispatch. It is over 600 lines because `serve`
//! wires every part of the service together (telemetry, limits, state, workers,
//! listeners, graceful shutdown) in one readable sequence; the commands with logic of
//! their own live in modules of the library (`config_cli`, `people_cli`,
//! `prompts_cli`, `backup`, `secrets`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use prompt_core::{KeyRole, PromptStore, RunLog, validate};
use prompt_http::backend::Opened;
use prompt_http::config::{DatabaseArgs, LogFormat, ServeArgs};
use prompt_http::writer::WriterConfig;
use prompt_http::{
    RouterConfig, StateConfig, auth, bootstrap_admin_key, build_state, start_workers,
};
use uuid::Uuid;

/// The server's allocator: mimalloc allocates the many small, short-lived values of a
/// request (JSON, headers, runs) with less CPU than the system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prompt Registry: prompt management and LLM-run observability.
#[derive(Debug, Parser)]
#[command(name = "prompt-registry", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service. On an empty database it creates project `default` and
    /// prints one admin API key, once.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit (serve also applies them on start-up), or
    /// with `--revert [N]` revert the newest N of them.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Revert the newest N applied migrations (default 1) with their down scripts,
        /// instead of applying. What they created is dropped with its data.
        #[arg(
            long,
            value_name = "N",
            num_args = 0..=1,
            default_missing_value = "1",
            allow_negative_numbers = true
        )]
        revert: Option<u32>,
        /// Confirm a `--revert`: what the reverted migrations created is dropped with
        /// its data, so a revert without `--yes` is refused and changes nothing.
        #[arg(long)]
        yes: bool,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: prompt_http::people_cli::UsersCommand,
    },
    /// Organizations.
    Orgs {
        #[command(subcommand)]
        command: prompt_http::people_cli::OrgsCommand,
    },
    /// Projects.
    Projects {
        #[command(subcommand)]
        command: prompt_http::people_cli::ProjectsCommand,
    },
    /// Re-encrypt every stored provider credential under a new master key, in one
    /// transaction. Then restart the servers with the new key.
    RotateMasterKey(prompt_http::secrets::RotateArgs),
    /// Check a configuration without starting (`config check`), or print the settings
    /// table (`config docs`).
    Config {
        #[command(subcommand)]
        command: prompt_http::config_cli::ConfigCommand,
    },
    /// Print the OpenAPI document (what `/openapi.json` serves) on stdout, without a
    /// database or a server; the console's typed client is generated from it.
    Openapi,
    /// Write a consistent copy of a SQLite database to --to FILE, safe while a server
    /// is writing to it (for Postgres use pg_dump). Restore: stop the server, replace
    /// the database file with the copy (and delete its -wal and -shm files), start it.
    Backup(prompt_http::backup::BackupArgs),
    /// Write every prompt of a project to DIR as one YAML file per prompt (all live
    /// versions, or `--heads`), from a database or a server (`--url`).
    Export(prompt_http::prompts_cli::ExportArgs),
    /// Apply a directory written by `export` idempotently: print the plan, then create
    /// only the versions whose content differs and move labels as declared, in one
    /// transaction. Exit 1 on a conflict (nothing written), 2 on a usage error.
    Import(prompt_http::prompts_cli::ImportArgs),
}

impl prompt_http::config_cli::WithServeArgs for Cli {
    fn serve_args(&mut self) -> Option<&mut ServeArgs> {
        match &mut self.command {
            Command::Serve(args) => Some(args),
            Command::Config {
                command: prompt_http::config_cli::ConfigCommand::Check(args),
            } => Some(args),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key (and the project if it does not exist yet). Prints the key alone on
    /// stdout, so `KEY=$(prompt-registry keys create --project P --role editor)` works.
    Create {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Project name.
        #[arg(long, default_value = "default")]
        project: String,
        /// viewer, editor or admin.
        #[arg(long)]
        role: String,
        /// A name for the key.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Make a Langfuse-compatible key pair (HTTP Basic on /api/public/…) and print
        /// it as `PUBLIC SECRET` on one line.
        #[arg(long)]
        langfuse: bool,
    },
    /// List a project's keys (never the secrets).
    List {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Project name.
        #[arg(long, default_value = "default")]
        project: String,
    },
    /// Revoke a key by id; it stops working at once.
    Revoke {
        #[command(flatten)]
        db: DatabaseArgs,
        /// Project name.
        #[arg(long, default_value = "default")]
        project: String,
        /// The key's id.
        id: String,
    },
}

fn init_logs(format: LogFormat) {
    init_logs_with(format, None);
}

/// Logs on stderr (filtered by `RUST_LOG`, default `info`) and, when export is on,
/// spans to OpenTelemetry (filtered on their own: see `prompt_http::otel`).
fn init_logs_with(format: LogFormat, telemetry: Option<&prompt_http::otel::Telemetry>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => fmt.with_filter(filter).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(telemetry.map(|t| t.layer()))
        .try_init();
}

async fn open_cached(
    db: &DatabaseArgs,
    settings: &prompt_http::backend::BackendSettings,
) -> Result<Opened, String> {
    prompt_http::backend::open_with(&db.database_url, settings)
        .await
        .map_err(|e| format!("cannot open the database (DATABASE_URL / --database-url): {e}"))
}

async fn open(db: &DatabaseArgs) -> Result<(Arc<dyn PromptStore>, Arc<dyn RunLog>), String> {
    let o = open_cached(
        db,
        &prompt_http::backend::BackendSettings {
            cache_ttl: Duration::ZERO,
            ..Default::default()
        },
    )
    .await?;
    Ok((o.store, o.runs))
}

/// When the shutdown signal arrived: requests in flight and background executions
/// share one shutdown timeout from then.
static SHUTDOWN_AT: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    let _ = SHUTDOWN_AT.set(tokio::time::Instant::now());
    tracing::info!("shutdown requested: finishing in-flight requests and queued run writes");
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            // Every setting checked (what `config check` runs) before anything starts.
            let prepared = args.prepare()?;
            let addr = prepared.addr;
            let telemetry = prepared
                .otlp
                .as_ref()
                .map(prompt_http::otel::Telemetry::start)
                .transpose()?;
            init_logs_with(args.log_format, telemetry.as_ref());
            if let Some(t) = &prepared.otlp {
                tracing::info!(endpoint = ?t.traces_url(), "exporting traces over OTLP/HTTP");
            }
            let error_reports = prepared
                .sentry_dsn
                .clone()
                .map(prompt_http::error_reports::init);
            if error_reports.is_some() {
                tracing::info!("reporting internal errors and panics to Sentry");
            }
            if let Some(path) = &args.config {
                tracing::info!(file = %path.display(), "settings read from the configuration file");
            }
            // The default 1,024 descriptors would cap connections far below what the
            // machine allows: raise the soft limit to the hard one.
            match prompt_http::connections::raise_fd_limit() {
                Ok(l) => tracing::info!(
                    soft_before = l.before,
                    soft = l.soft,
                    hard = l.hard,
                    "open file limit (RLIMIT_NOFILE)"
                ),
                Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
            }
            let limits = args.connection_limits();
            tracing::info!(
                max_connections = limits.max_connections,
                header_timeout_s = args.header_timeout_secs,
                idle_timeout_s = args.idle_timeout_secs,
                body_timeout_s = args.body_timeout_secs,
                shutdown_timeout_s = args.shutdown_timeout_secs,
                "connection limits"
            );
            // The configuration, not only the built set: stored credentials get the same
            // retry policy as the environment's providers.
            let providers_config = prepared.providers_config;
            let providers = prepared.providers;
            let tools = prepared.tools;
            let master_key = prepared.master_key;
            if master_key.is_none() {
                tracing::warn!(
                    "no {} set: provider credentials cannot be stored",
                    prompt_http::secrets::MASTER_KEY_ENV
                );
            }
            let opened = open_cached(
                &args.db,
                &prompt_http::backend::BackendSettings {
                    cache_ttl: Duration::from_secs(args.cache_ttl_secs),
                    key_ttl: Duration::from_millis(args.key_cache_ttl_ms),
                    stale_if_error: Duration::from_secs(args.stale_if_error_secs),
                    acquire_timeout: Some(Duration::from_millis(args.db_acquire_timeout_ms)),
                },
            )
            .await?;
            let store = opened.store.clone();
            let runs = opened.runs.clone();
            if let Some(key) = bootstrap_admin_key(&store)
                .await
                .map_err(|e| e.to_string())?
            {
                eprintln!(
                    "Created project 'default' and its first admin API key (shown once, store it now):"
                );
                println!("{key}");
            }
            let state_config = StateConfig {
                rate_limit: args.rate_limit,
                rate_burst: args.rate_burst,
                public_tools: args.public_tools.then_some(prompt_http::PublicToolsConfig {
                    per_minute: args.public_tools_rate,
                    burst: args.public_tools_burst,
                }),
                writer: WriterConfig {
                    queue: args.run_queue,
                    ..WriterConfig::default()
                },
                providers,
                protected_labels: args.protected_labels.clone(),
                tools,
                master_key,
                retry: providers_config.retry.clone(),
                accounts: Some(prompt_http::AccountsSetup {
                    people: opened.backend.people.clone(),
                    mailer: prepared.mailer,
                    config: prepared.accounts,
                }),
                events: Some(opened.backend.events.clone()),
                feed: args.feed_config(),
                shared_limits: prepared.shared_limits.clone(),
                webhooks: Some(prompt_http::webhooks::WebhooksSetup {
                    store: opened.backend.webhooks.clone(),
                    events: opened.backend.events.clone(),
                    projects: opened.store.clone(),
                    people: Some(opened.backend.people.clone()),
                    config: prepared.webhooks,
                }),
                run_lease: std::time::Duration::from_secs(args.run_lease_secs),
                retention_interval: (args.retention_interval_secs > 0)
                    .then(|| std::time::Duration::from_secs(args.retention_interval_secs)),
                idempotency_ttl: std::time::Duration::from_secs(args.idempotency_ttl_secs),
            };
            if args.people.smtp_url.is_none() {
                tracing::info!(
                    "no PROMPT_REGISTRY_SMTP_URL set: verification, password-reset and invitation links are logged at info for an operator to pass on"
                );
            }
            let (mut state, writer) = build_state(store, runs, &state_config)
                .await
                .map_err(|e| e.to_string())?;
            state.set_cache(opened.cache.clone());
            let workers = start_workers(&state, args.workers)
                .await
                .map_err(|e| e.to_string())?;
            let hook_worker = state
                .webhooks
                .clone()
                .filter(|w| w.config().worker)
                .map(prompt_http::webhooks::worker::spawn);
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                format!("cannot listen on {addr} (PROMPT_REGISTRY_ADDR / --addr): {e}")
            })?;
            // The bound address, so `--addr 127.0.0.1:0` tells which port it got.
            let addr = listener.local_addr().unwrap_or(addr);
            tracing::info!(%addr, "prompt-registry listening");
            let scheme = if args.people.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            eprintln!(
                "prompt-registry listening on {scheme}://{addr} (docs: {scheme}://{addr}/docs)"
            );
            let metrics_addr = prepared.metrics_addr;
            let metrics_listener = match metrics_addr {
                Some(m) => {
                    let l = tokio::net::TcpListener::bind(m).await.map_err(|e| {
                        format!(
                            "cannot listen on {m} (PROMPT_REGISTRY_METRICS_ADDR / --metrics-addr): {e}"
                        )
                    })?;
                    let bound = l.local_addr().unwrap_or(m);
                    tracing::info!(addr = %bound, "serving /metrics on its own address");
                    eprintln!("prompt-registry metrics on http://{bound}/metrics");
                    Some(l)
                }
                None => None,
            };
            let router_config = RouterConfig {
                body_limit: args.body_limit,
                request_timeout: Duration::from_secs(args.request_timeout_secs),
                body_timeout: Duration::from_secs(args.body_timeout_secs),
                metrics_route: metrics_listener.is_none(),
                metrics_token: args
                    .metrics_token
                    .as_deref()
                    .map(prompt_http::router::MetricsToken::new),
            };
            let tls = match (&args.people.tls_cert, &args.people.tls_key) {
                (Some(cert), Some(key)) => Some(prompt_http::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            };
            let served = prompt_http::serve_with_options(
                listener,
                state,
                writer,
                prompt_http::ServeOptions {
                    router: router_config,
                    tls,
                    limits,
                    metrics_listener,
                },
                shutdown_signal(),
            )
            .await;
            // Background executions finish within the shutdown timeout; one still
            // running then is cut off and left claimed, and a live instance takes it
            // back once its claim is stale.
            let finishing = async {
                workers.shutdown().await;
                if let Some(w) = hook_worker {
                    w.shutdown().await;
                }
            };
            let deadline = SHUTDOWN_AT
                .get()
                .copied()
                .unwrap_or_else(tokio::time::Instant::now)
                + limits.shutdown_timeout;
            if tokio::time::timeout_at(deadline, finishing).await.is_err() {
                tracing::warn!(
                    "shutdown timeout reached: background executions still running were cut off; they are requeued once stale"
                );
            }
            tracing::info!("shutdown complete: every acknowledged run write is committed");
            opened.backend.close().await;
            if let Some(t) = telemetry {
                // Within the shutdown timeout, but never less than 2 s to send the last
                // spans (the requests' own time may have used the timeout up).
                let within = deadline
                    .saturating_duration_since(tokio::time::Instant::now())
                    .max(Duration::from_secs(2));
                t.shutdown(within).await;
            }
            // Sends queued reports (up to 2 s).
            drop(error_reports);
            served.map_err(|e| format!("server error: {e}"))
        }
        Command::Migrate {
            db,
            revert: Some(n),
            yes,
        } => {
            init_logs(LogFormat::Pretty);
            if !yes {
                return Err(format!(
                    "--revert {n} drops what the reverted migrations created, with its data \
                     (prompts, runs, stored credentials …): add --yes to confirm; nothing was \
                     reverted"
                ));
            }
            let report = prompt_http::backend::revert(&db.database_url, n)
                .await
                .map_err(|e| match e {
                    prompt_core::Error::InvalidInput { field, message } if field == "count" => {
                        format!("--revert {n}: {message}")
                    }
                    e => format!("revert failed: {e}"),
                })?;
            for m in &report.reverted {
                eprintln!("reverted migration {} ({})", m.version, m.description);
            }
            match report.current {
                Some(v) => eprintln!("the database is now at migration {v}"),
                None => eprintln!(
                    "no migration is applied any more; `prompt-registry migrate` re-creates the schema"
                ),
            }
            Ok(())
        }
        Command::Migrate {
            db, revert: None, ..
        } => {
            init_logs(LogFormat::Pretty);
            let applied = prompt_http::backend::migrate(&db.database_url)
                .await
                .map_err(|e| format!("migration failed: {e}"))?;
            if applied.is_empty() {
                eprintln!("database is up to date");
            } else {
                eprintln!("applied migrations {applied:?}");
            }
            Ok(())
        }
        Command::Keys { command } => keys(command).await,
        Command::Users { command } => prompt_http::people_cli::users(command).await,
        Command::Orgs { command } => prompt_http::people_cli::orgs(command).await,
        Command::Projects { command } => prompt_http::people_cli::projects(command).await,
        Command::Backup(args) => {
            init_logs(LogFormat::Pretty);
            let report =
                prompt_http::backup::backup(&args.db.database_url, &args.to, args.force).await?;
            eprintln!(
                "wrote {} ({} bytes) in {:.2} s",
                report.path.display(),
                report.bytes,
                report.elapsed.as_secs_f64()
            );
            Ok(())
        }
        Command::Config { command } => prompt_http::config_cli::run(command).await,
        // Answered by `main` with their own exit codes (1 conflict, 2 usage).
        Command::Export(_) | Command::Import(_) => {
            Err("export and import are run before the other commands".to_owned())
        }
        Command::Openapi => {
            println!("{}", prompt_http::openapi_json());
            Ok(())
        }
        Command::RotateMasterKey(args) => {
            init_logs(LogFormat::Pretty);
            let (store, _) = open(&args.db).await?;
            let n = prompt_http::secrets::rotate(&store, &args).await?;
            eprintln!(
                "re-encrypted {n} stored provider credential(s) under the new master key; \
                 restart the servers with it as {}",
                prompt_http::secrets::MASTER_KEY_ENV
            );
            Ok(())
        }
    }
}

async fn keys(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create {
            db,
            project,
            role,
            name,
            langfuse,
        } => {
            validate::project_ref(&project).map_err(|e| format!("--project: {e}"))?;
            let role = KeyRole::parse(&role).map_err(|e| format!("--role: {e}"))?;
            let (store, _) = open(&db).await?;
            let p = store
                .ensure_project(&project)
                .await
                .map_err(|e| e.to_string())?;
            if langfuse {
                validate::max_len("name", &name, 100).map_err(|e| format!("--name: {e}"))?;
                let (public, issued) =
                    prompt_http::routes::langfuse::generate_langfuse_key(p.id, &name, role);
                store
                    .create_api_key(issued.record.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                eprintln!(
                    "created {} Langfuse key pair '{}' in project '{}'",
                    role.as_str(),
                    name,
                    project
                );
                println!("{public} {}", issued.key);
                return Ok(());
            }
            let issued = auth::create_key(&store, p.id, &name, role)
                .await
                .map_err(|e| format!("--name: {e}"))?;
            eprintln!(
                "created {} key '{}' ({}) in project '{}'",
                role.as_str(),
                name,
                issued.record.prefix,
                project
            );
            println!("{}", issued.key);
            Ok(())
        }
        KeysCommand::List { db, project } => {
            let (store, _) = open(&db).await?;
            let p = store
                .project_by_name(&project)
                .await
                .map_err(|e| e.to_string())?;
            for k in store.list_api_keys(p.id).await.map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.id,
                    k.prefix,
                    k.role.as_str(),
                    k.name,
                    k.revoked_at
                        .map_or("active".to_owned(), |t| format!("revoked {t}"))
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { db, project, id } => {
            let id =
                Uuid::parse_str(&id).map_err(|_| format!("'{id}' is not a key id (a UUID)"))?;
            let (store, _) = open(&db).await?;
            let p = store
                .project_by_name(&project)
                .await
                .map_err(|e| e.to_string())?;
            store
                .revoke_api_key(p.id, id)
                .await
                .map_err(|e| e.to_string())?;
            eprintln!("revoked {id}");
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // `--config FILE` (of `serve` and `config check`) adds the file's settings below
    // the command line and the environment.
    let cli = match prompt_http::config_cli::parse::<Cli>(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = match cli.command {
        Command::Export(args) => return prompt_http::prompts_cli::export(args).await,
        Command::Import(args) => return prompt_http::prompts_cli::import(args).await,
        command => Cli { command },
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
