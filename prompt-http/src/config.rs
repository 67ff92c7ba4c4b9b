//! Service configuration: flags and environment variables, validated once at start-up.

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
    /// Requests that may wait for the run writer before new ones get 503.
    #[arg(long, env = "PROMPT_REGISTRY_RUN_QUEUE", default_value_t = 4096)]
    pub run_queue: usize,
    /// The model of the prompt tools (analyze, remix, create, optimize), as
    /// PROVIDER/MODEL, e.g. `openai/gpt-4o-mini`.
    #[arg(long, env = "PROMPT_REGISTRY_TOOLS_MODEL", default_value = prompt_core::authoring::DEFAULT_TOOLS_MODEL)]
    pub tools_model: String,
}

impl ServeArgs {
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
        if self.run_queue == 0 {
            return Err(
                "invalid PROMPT_REGISTRY_RUN_QUEUE / --run-queue: must be at least 1".into(),
            );
        }
        Ok(addr)
    }
}
