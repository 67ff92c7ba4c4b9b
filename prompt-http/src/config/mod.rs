//! Service configuration: flags and environment variables, validated once at start-up.
//! What `serve` builds from them before it opens the database is [`Prepared`] ([`ServeArgs::prepare`]).

mod prepare;
mod webhooks;

pub use prepare::Prepared;
pub use webhooks::WebhookArgs;

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for machines).
    Json,
    /// Human-readable.
    Pretty,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://FILE` (default: prompt-registry.db in the working
    /// directory), `sqlite::memory:`, `memory://` or `postgres://USER@HOST/DB`.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "sqlite://prompt-registry.db",
        hide_env_values = true
    )]
    pub database_url: String,
}

/// Settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// A TOML file of settings (see docs/configuration.md); flags and environment
    /// variables override it.
    #[arg(long, env = "PROMPT_REGISTRY_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// The `[env]` table of the configuration file (environment-only settings).
    #[arg(skip)]
    pub file_env: crate::config_file::FileEnv,
    /// Every setting with its value and source (filled by
    /// [`crate::config_cli::parse`], for `config check`).
    #[arg(skip)]
    pub effective: Vec<crate::config_cli::Effective>,
    #[command(flatten)]
    /// Database.
    pub db: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "PROMPT_REGISTRY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Log format.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_LOG_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    /// Requests per second allowed per API key (0 = unlimited).
    #[arg(long, env = "PROMPT_REGISTRY_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,
    /// Burst of requests allowed per API key above the rate.
    #[arg(long, env = "PROMPT_REGISTRY_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "PROMPT_REGISTRY_BODY_LIMIT", default_value_t = 8 * 1024 * 1024)]
    pub body_limit: usize,
    /// Seconds a request may take before it is answered with 503.
    #[arg(long, env = "PROMPT_REGISTRY_REQUEST_TIMEOUT", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Seconds a label lookup may be served from the cache (0 disables the cache).
    #[arg(long, env = "PROMPT_REGISTRY_CACHE_TTL", default_value_t = 60)]
    pub cache_ttl_secs: u64,
    /// Milliseconds an API key may be served from the cache (0: every request reads
    /// it). A revocation through this server, or through any server on Postgres, takes
    /// effect at once; this bounds only a revocation by another process on SQLite
    /// (`prompt-registry keys revoke` next to a running server).
    #[arg(
        long,
        env = "PROMPT_REGISTRY_KEY_CACHE_TTL_MS",
        default_value_t = 5_000
    )]
    pub key_cache_ttl_ms: u64,
    /// Stale-if-error: seconds the last answer of a resolve (and of an API key lookup)
    /// is kept to answer while the database is unavailable, marked with the response
    /// header `x-prompt-registry-stale: AGE_SECONDS` (0: never; needs the cache).
    #[arg(
        long,
        env = "PROMPT_REGISTRY_STALE_IF_ERROR_SECS",
        default_value_t = 3_600
    )]
    pub stale_if_error_secs: u64,
    /// Milliseconds an operation waits for a Postgres connection (including making
    /// one) before answering 503. While the database is down, requests fail this fast;
    /// once the cache's probe has found it down, at once.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub db_acquire_timeout_ms: u64,
    /// Comma-separated labels only admin keys may set or delete.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_PROTECTED_LABELS",
        default_value = "production",
        value_delimiter = ','
    )]
    pub protected_labels: Vec<String>,
    /// Background workers executing `async` runs.
    #[arg(long, env = "PROMPT_REGISTRY_WORKERS", default_value_t = 4)]
    pub workers: usize,
    /// Seconds a run being executed is leased for: its executor renews the lease every
    /// third of it, and workers re-queue a `running` run whose lease expired (its
    /// process died) — so it is executed again within about this long. Every instance
    /// sharing a database must use the same value.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_RUN_LEASE_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub run_lease_secs: u64,
    /// Seconds between two rounds of the run retention task, which deletes the runs of
    /// each project with a retention (`PUT /api/v1/project {"run_retention_days": N}`)
    /// that are older than it, in batches (Postgres: dropping whole expired months
    /// first). 0 turns the task off.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_RETENTION_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub retention_interval_secs: u64,
    /// Seconds an `Idempotency-Key` and the answer of its request are kept: a retry of
    /// the same request within this long gets the first answer and creates nothing.
    /// Expired keys are purged every 10 minutes.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_IDEMPOTENCY_TTL_SECS",
        default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub idempotency_ttl_secs: u64,
    /// Requests that may wait for the run writer before new ones get 503.
    #[arg(long, env = "PROMPT_REGISTRY_RUN_QUEUE", default_value_t = 4096)]
    pub run_queue: usize,
    /// The model of the prompt tools (analyze, remix, create, optimize), as
    /// PROVIDER/MODEL, e.g. `openai/gpt-4o-mini`.
    #[arg(long, env = "PROMPT_REGISTRY_TOOLS_MODEL", default_value = prompt_core::authoring::DEFAULT_TOOLS_MODEL)]
    pub tools_model: String,
    /// Days the change log keeps events (pruned hourly); a client whose cursor is
    /// older must resync (410 `gone`).
    #[arg(
        long = "event-retention-days",
        env = "PROMPT_REGISTRY_EVENT_RETENTION_DAYS",
        default_value_t = 30
    )]
    pub event_retention_days: u64,
    /// Let anonymous callers (no `Authorization` header) use the prompt analysis
    /// service's routes `POST /api/v1/{analyze,remix,create}` in the project `default`,
    /// rate-limited per client address (off by default: every call runs the tools
    /// model, which costs money).
    #[arg(
        long = "public-tools",
        env = "PROMPT_REGISTRY_PUBLIC_TOOLS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub public_tools: bool,
    /// Anonymous tool calls allowed per minute per client address (with
    /// `--public-tools`; 0 = unlimited).
    #[arg(
        long = "public-tools-rate",
        env = "PROMPT_REGISTRY_PUBLIC_TOOLS_RATE",
        default_value_t = 10
    )]
    pub public_tools_rate: u32,
    /// Burst of anonymous tool calls allowed per client address above the rate.
    #[arg(
        long = "public-tools-burst",
        env = "PROMPT_REGISTRY_PUBLIC_TOOLS_BURST",
        default_value_t = 10
    )]
    pub public_tools_burst: u32,
    /// Most connections open at once (default: the soft fd limit, raised to the hard
    /// limit at start-up, less 256). Over it the oldest idle connection is closed, or
    /// the new one when every connection has a request in flight.
    #[arg(long, env = "PROMPT_REGISTRY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a new connection may take to start a request, and an HTTP/1 client to
    /// send a request's headers (also the TLS handshake, and how long a keep-alive
    /// HTTP/1 connection waits for its next request).
    #[arg(long, env = "PROMPT_REGISTRY_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in flight (a streaming
    /// response such as SSE is in flight until it ends).
    #[arg(long, env = "PROMPT_REGISTRY_IDLE_TIMEOUT", default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Seconds the server waits for the next part of a request body before it answers
    /// 400 and drops the request.
    #[arg(long, env = "PROMPT_REGISTRY_BODY_TIMEOUT", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Seconds requests in flight (and background executions) may run on after
    /// SIGTERM/Ctrl-C before they are cut off; queued run writes are always flushed.
    #[arg(long, env = "PROMPT_REGISTRY_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// Require `Authorization: Bearer TOKEN` on `/metrics` (401 without it).
    #[arg(long, env = "PROMPT_REGISTRY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Serve `/metrics` on this address only (plain HTTP), not on --addr.
    #[arg(long, env = "PROMPT_REGISTRY_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Redis for rate limits shared by every instance:
    /// `redis://[:PASSWORD@]HOST[:PORT][/DB]` or `rediss://…` (TLS). Without it each
    /// instance counts its own; while Redis is unreachable each instance falls back to
    /// its own, logged and counted on `/metrics`.
    #[arg(long, env = "PROMPT_REGISTRY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// The start of every Redis key this server writes (instances sharing limits use
    /// the same prefix).
    #[arg(
        long,
        env = "PROMPT_REGISTRY_REDIS_PREFIX",
        default_value = "prompt-registry"
    )]
    pub redis_prefix: String,
    /// Export traces (a span per HTTP request and per LLM call, GenAI conventions) to
    /// this OTLP/HTTP collector, e.g. `http://127.0.0.1:4318` (spans are posted to its
    /// `/v1/traces`). Without it, the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` turn export on; with neither, it is off.
    #[arg(long, env = "PROMPT_REGISTRY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Report internal errors (500s) and panics to this Sentry DSN, with the request id
    /// and never a body, header or secret.
    #[arg(long, env = "SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<String>,
    /// People: sign-up, sign-in, mail, CORS and TLS.
    #[command(flatten)]
    pub people: PeopleArgs,
    /// Webhooks: the delivery worker and its limits.
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Settings of users, sign-in, mail, browser access and TLS.
#[derive(Debug, Clone, Args)]
pub struct PeopleArgs {
    /// Who may sign up: `open`, `invite-only` or `closed`.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_SIGNUP",
        value_enum,
        default_value = "open"
    )]
    pub signup: crate::accounts::SignupPolicy,
    /// Refuse sign-in until the user's email is verified.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_REQUIRE_VERIFIED_EMAIL",
        default_value_t = false
    )]
    pub require_verified_email: bool,
    /// Minutes an access token lives.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_ACCESS_TOKEN_MINUTES",
        default_value_t = 15
    )]
    pub access_token_minutes: u64,
    /// Days a refresh token lives (each use starts a new one).
    #[arg(long, env = "PROMPT_REGISTRY_REFRESH_TOKEN_DAYS", default_value_t = 30)]
    pub refresh_token_days: u64,
    /// Days after which the token signing key is replaced (without signing anyone out).
    #[arg(long, env = "PROMPT_REGISTRY_SIGNING_KEY_DAYS", default_value_t = 30)]
    pub signing_key_days: u64,
    /// The service's public base URL, for links in emails (default: http://ADDR).
    #[arg(long, env = "PROMPT_REGISTRY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP server for account emails: `smtp://[user:pass@]host:port` (STARTTLS when
    /// offered) or `smtps://…`; without it, links are logged at `info`.
    #[arg(long, env = "PROMPT_REGISTRY_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of account emails.
    #[arg(
        long,
        env = "PROMPT_REGISTRY_SMTP_FROM",
        default_value = "Prompt Registry <no-reply@localhost>"
    )]
    pub smtp_from: String,
    /// Comma-separated browser origins allowed to call the API (CORS, with
    /// credentials); none by default (CORS off).
    #[arg(long, env = "PROMPT_REGISTRY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// PEM certificate chain: serve HTTPS directly (with --tls-key).
    #[arg(long, env = "PROMPT_REGISTRY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "PROMPT_REGISTRY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

impl PeopleArgs {
    /// The accounts settings; `addr` is the bound address (for the default public
    /// URL), `lookup` reads the environment-only settings (sign-in providers).
    pub fn accounts_config(
        &self,
        addr: SocketAddr,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<crate::accounts::AccountsConfig, String> {
        use std::time::Duration;
        let tls = self.tls_cert.is_some();
        let public_url = match &self.public_url {
            Some(u) => {
                let u = u.trim_end_matches('/').to_owned();
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(format!(
                        "invalid PROMPT_REGISTRY_PUBLIC_URL / --public-url '{u}': must start with http:// or https://"
                    ));
                }
                u
            }
            None => format!("{}://{addr}", if tls { "https" } else { "http" }),
        };
        for (name, v, max) in [
            (
                "PROMPT_REGISTRY_ACCESS_TOKEN_MINUTES / --access-token-minutes",
                self.access_token_minutes,
                24 * 60,
            ),
            (
                "PROMPT_REGISTRY_REFRESH_TOKEN_DAYS / --refresh-token-days",
                self.refresh_token_days,
                365,
            ),
            (
                "PROMPT_REGISTRY_SIGNING_KEY_DAYS / --signing-key-days",
                self.signing_key_days,
                3650,
            ),
        ] {
            if v == 0 || v > max {
                return Err(format!("invalid {name} {v}: must be 1 to {max}"));
            }
        }
        for o in &self.cors_origins {
            let ok = (o.starts_with("http://") || o.starts_with("https://"))
                && !o.ends_with('/')
                && o.split("://")
                    .nth(1)
                    .is_some_and(|h| !h.is_empty() && !h.contains('/'));
            if !ok {
                return Err(format!(
                    "invalid PROMPT_REGISTRY_CORS_ORIGINS / --cors-origins '{o}': an origin is SCHEME://HOST[:PORT] with no path or trailing slash"
                ));
            }
        }
        let social = crate::accounts::social::SocialProviderConfig::from_env(lookup)?;
        Ok(crate::accounts::AccountsConfig {
            social,
            signup: self.signup,
            require_verified_email: self.require_verified_email,
            access_ttl: Duration::from_secs(self.access_token_minutes * 60),
            refresh_ttl: Duration::from_secs(self.refresh_token_days * 24 * 3600),
            key_rotation: Duration::from_secs(self.signing_key_days * 24 * 3600),
            secure_cookies: tls || public_url.starts_with("https://"),
            public_url,
            allowed_origins: self.cors_origins.clone(),
            ..crate::accounts::AccountsConfig::default()
        })
    }

    /// The mailer of `--smtp-url`, or the log.
    pub fn mailer(&self) -> Result<crate::accounts::mail::Mailer, String> {
        match &self.smtp_url {
            Some(url) => crate::accounts::mail::Mailer::smtp(url, &self.smtp_from)
                .map_err(|e| format!("invalid PROMPT_REGISTRY_SMTP_URL / --smtp-url or PROMPT_REGISTRY_SMTP_FROM: {e}")),
            None => Ok(crate::accounts::mail::Mailer::Log),
        }
    }
}

impl ServeArgs {
    /// The live feed's settings: the defaults with the configured retention.
    pub fn feed_config(&self) -> crate::feed::FeedConfig {
        crate::feed::FeedConfig {
            retention: std::time::Duration::from_secs(self.event_retention_days * 24 * 3600),
            ..crate::feed::FeedConfig::default()
        }
    }

    /// The connection limits and timeouts; the cap defaults to what the (already
    /// raised) fd limit allows.
    pub fn connection_limits(&self) -> crate::ConnectionLimits {
        use std::time::Duration;
        crate::ConnectionLimits {
            max_connections: self
                .max_connections
                .unwrap_or_else(crate::connections::default_max_connections),
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
        }
    }

    /// The separate `/metrics` address, if any (it must differ from `addr`).
    pub fn metrics_addr(&self, addr: SocketAddr) -> Result<Option<SocketAddr>, String> {
        let Some(m) = &self.metrics_addr else {
            return Ok(None);
        };
        let parsed: SocketAddr = m.parse().map_err(|e| {
            format!(
                "invalid PROMPT_REGISTRY_METRICS_ADDR / --metrics-addr '{m}': {e} (expected HOST:PORT, e.g. 127.0.0.1:9090)"
            )
        })?;
        if parsed == addr && addr.port() != 0 {
            return Err(format!(
                "invalid PROMPT_REGISTRY_METRICS_ADDR / --metrics-addr '{m}': the same address as --addr; choose another port"
            ));
        }
        Ok(Some(parsed))
    }

    /// Validate; the error names the bad setting.
    pub fn validate(&self) -> Result<SocketAddr, String> {
        let addr: SocketAddr = self.addr.parse().map_err(|e| {
            format!(
                "invalid PROMPT_REGISTRY_ADDR / --addr '{}': {e} (expected HOST:PORT, e.g. 127.0.0.1:8080)",
                self.addr
            )
        })?;
        if self.body_limit < 1024 {
            return Err(format!(
                "invalid PROMPT_REGISTRY_BODY_LIMIT / --body-limit {}: must be at least 1024 bytes",
                self.body_limit
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err("invalid PROMPT_REGISTRY_REQUEST_TIMEOUT / --request-timeout-secs: must be at least 1".into());
        }
        for l in &self.protected_labels {
            prompt_core::validate::label(l).map_err(|e| {
                format!("invalid PROMPT_REGISTRY_PROTECTED_LABELS / --protected-labels '{l}': {e}")
            })?;
        }
        prompt_core::ToolsConfig::from_model(&self.tools_model)
            .map_err(|e| format!("invalid PROMPT_REGISTRY_TOOLS_MODEL / --tools-model: {e}"))?;
        if self.event_retention_days == 0 || self.event_retention_days > 36_500 {
            return Err(format!(
                "invalid PROMPT_REGISTRY_EVENT_RETENTION_DAYS / --event-retention-days {}: must be 1 to 36500",
                self.event_retention_days
            ));
        }
        self.webhooks.config()?;
        for (name, v) in [
            (
                "PROMPT_REGISTRY_HEADER_TIMEOUT / --header-timeout-secs",
                self.header_timeout_secs,
            ),
            (
                "PROMPT_REGISTRY_IDLE_TIMEOUT / --idle-timeout-secs",
                self.idle_timeout_secs,
            ),
            (
                "PROMPT_REGISTRY_BODY_TIMEOUT / --body-timeout-secs",
                self.body_timeout_secs,
            ),
            (
                "PROMPT_REGISTRY_SHUTDOWN_TIMEOUT / --shutdown-timeout-secs",
                self.shutdown_timeout_secs,
            ),
        ] {
            if v == 0 || v > 86_400 {
                return Err(format!("invalid {name} {v}: must be 1 to 86400 seconds"));
            }
        }
        if self.max_connections == Some(0) {
            return Err(
                "invalid PROMPT_REGISTRY_MAX_CONNECTIONS / --max-connections: must be at least 1"
                    .into(),
            );
        }
        if let Some(t) = &self.metrics_token
            && (t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(
                "invalid PROMPT_REGISTRY_METRICS_TOKEN / --metrics-token: must be at least 16 characters with no spaces"
                    .into(),
            );
        }
        self.metrics_addr(addr)?;
        if self.run_queue == 0 {
            return Err(
                "invalid PROMPT_REGISTRY_RUN_QUEUE / --run-queue: must be at least 1".into(),
            );
        }
        Ok(addr)
    }
}
