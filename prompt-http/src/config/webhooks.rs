//! The settings of webhooks and their delivery worker.

use clap::Args;

/// Settings of webhooks and their delivery worker.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Run the webhook delivery worker in this instance (deliveries are shared safely
    /// by every instance that runs one).
    #[arg(
        long = "webhooks-worker",
        env = "PROMPT_REGISTRY_WEBHOOKS_WORKER",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub worker: bool,
    /// Milliseconds one delivery attempt may take (connect, send, answer).
    #[arg(
        long = "webhooks-timeout-ms",
        env = "PROMPT_REGISTRY_WEBHOOKS_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub timeout_ms: u64,
    /// Allow webhook URLs on loopback, private (RFC 1918, fc00::/7), link-local and
    /// CGNAT addresses (refused by default: they reach this server's own network).
    #[arg(
        long = "webhooks-allow-private",
        env = "PROMPT_REGISTRY_WEBHOOKS_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_private: bool,
    /// Failed attempts in a row after which a webhook is disabled.
    #[arg(
        long = "webhooks-max-failures",
        env = "PROMPT_REGISTRY_WEBHOOKS_MAX_FAILURES",
        default_value_t = 50
    )]
    pub max_failures: u32,
    /// Milliseconds before the first retry of a failed event; doubled at each attempt.
    #[arg(
        long = "webhooks-backoff-base-ms",
        env = "PROMPT_REGISTRY_WEBHOOKS_BACKOFF_BASE_MS",
        default_value_t = 1_000
    )]
    pub backoff_base_ms: u64,
    /// Longest delay between retries, in milliseconds.
    #[arg(
        long = "webhooks-backoff-max-ms",
        env = "PROMPT_REGISTRY_WEBHOOKS_BACKOFF_MAX_MS",
        default_value_t = 3_600_000
    )]
    pub backoff_max_ms: u64,
    /// Seconds an event is retried from its first failed attempt before it is given up.
    #[arg(
        long = "webhooks-retry-window-secs",
        env = "PROMPT_REGISTRY_WEBHOOKS_RETRY_WINDOW_SECS",
        default_value_t = 86_400
    )]
    pub retry_window_secs: u64,
    /// Seconds a worker holds the webhooks it took (more than twice the attempt
    /// timeout). A crashed worker's webhooks wait for their lease to run out, then
    /// another worker (or the restarted one) resumes them.
    #[arg(
        long = "webhooks-lease-secs",
        env = "PROMPT_REGISTRY_WEBHOOKS_LEASE_SECS",
        default_value_t = 60
    )]
    pub lease_secs: u64,
    /// Milliseconds between looks for due webhooks when nothing wakes the worker.
    #[arg(
        long = "webhooks-tick-ms",
        env = "PROMPT_REGISTRY_WEBHOOKS_TICK_MS",
        default_value_t = 5_000
    )]
    pub tick_ms: u64,
}

impl WebhookArgs {
    /// The settings; the error names the bad one.
    pub fn config(&self) -> Result<crate::webhooks::WebhookConfig, String> {
        use std::time::Duration;
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            return Err(format!(
                "invalid PROMPT_REGISTRY_WEBHOOKS_TIMEOUT_MS / --webhooks-timeout-ms {}: must be 1 to 300000",
                self.timeout_ms
            ));
        }
        if self.max_failures == 0 {
            return Err(
                "invalid PROMPT_REGISTRY_WEBHOOKS_MAX_FAILURES / --webhooks-max-failures: must be at least 1"
                    .into(),
            );
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            return Err(format!(
                "invalid PROMPT_REGISTRY_WEBHOOKS_BACKOFF_BASE_MS / _MAX_MS ({} / {}): base must be at least 1 and max at least base",
                self.backoff_base_ms, self.backoff_max_ms
            ));
        }
        if self.tick_ms == 0 {
            return Err(
                "invalid PROMPT_REGISTRY_WEBHOOKS_TICK_MS / --webhooks-tick-ms: must be at least 1"
                    .into(),
            );
        }
        let timeout = Duration::from_millis(self.timeout_ms);
        let config = crate::webhooks::WebhookConfig {
            worker: self.worker,
            timeout,
            allow_private: self.allow_private,
            max_failures: self.max_failures,
            backoff_base: Duration::from_millis(self.backoff_base_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
            retry_window: Duration::from_secs(self.retry_window_secs),
            lease: Duration::from_secs(self.lease_secs),
            tick: Duration::from_millis(self.tick_ms),
            ..crate::webhooks::WebhookConfig::default()
        };
        config
            .validate()
            .map_err(|e| format!("invalid webhook settings (PROMPT_REGISTRY_WEBHOOKS_*): {e}"))?;
        Ok(config)
    }
}
