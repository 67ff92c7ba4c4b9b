//! [`ServeArgs::prepare`]: every setting of `serve` checked and turned into what the
//! server runs with (providers, tools model, master key, accounts, mail, webhooks,
//! shared limits, trace export, error reports) — what `serve` runs at start and
//! `config check` validates, in one place.

use std::net::SocketAddr;

use super::ServeArgs;

/// Everything `serve` builds from its settings before it opens the database, checked:
/// what `serve` runs on and what `config check` validates, in one place.
#[derive(Debug)]
pub struct Prepared {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// The separate `/metrics` address, if any.
    pub metrics_addr: Option<SocketAddr>,
    /// The provider configuration (its retry policy applies to stored credentials).
    pub providers_config: prompt_providers::ProvidersConfig,
    /// The providers.
    pub providers: prompt_core::ProviderSet,
    /// The tools model.
    pub tools: prompt_core::ToolsConfig,
    /// The master key of stored credentials, if set.
    pub master_key: Option<crate::secrets::Keyring>,
    /// Accounts and sign-in.
    pub accounts: crate::accounts::AccountsConfig,
    /// Account mail.
    pub mailer: crate::accounts::mail::Mailer,
    /// Webhook delivery.
    pub webhooks: crate::webhooks::WebhookConfig,
    /// Redis for shared rate limits, if configured.
    pub shared_limits: Option<std::sync::Arc<crate::limit::SharedLimits>>,
    /// Where traces are exported, if anywhere.
    pub otlp: Option<crate::otel::OtlpTarget>,
    /// Where internal errors are reported, if anywhere.
    pub sentry_dsn: Option<sentry::types::Dsn>,
}

impl ServeArgs {
    /// An environment-only setting: the process environment, then the configuration
    /// file's `[env]` table.
    pub fn lookup(&self, key: &str) -> Option<String> {
        self.file_env.lookup(key)
    }

    /// Check every setting and build what `serve` needs before the database; the
    /// error names the bad setting.
    pub fn prepare(&self) -> Result<Prepared, String> {
        let addr = self.validate()?;
        let lookup = |k: &str| self.lookup(k);
        let providers_config = prompt_providers::ProvidersConfig::from_lookup(lookup)
            .map_err(|e| format!("invalid provider configuration: {e}"))?;
        let providers = providers_config
            .build()
            .map_err(|e| format!("invalid provider configuration: {e}"))?;
        let tools = tools_config(&self.tools_model, &providers)?;
        let master_key = crate::secrets::Keyring::from_lookup(lookup)?;
        Ok(Prepared {
            addr,
            metrics_addr: self.metrics_addr(addr)?,
            providers_config,
            tools,
            providers,
            master_key,
            accounts: self.people.accounts_config(addr, &lookup)?,
            mailer: self.people.mailer()?,
            webhooks: self.webhooks.config()?,
            shared_limits: self
                .redis_url
                .as_deref()
                .map(|url| crate::limit::SharedLimits::new(url, &self.redis_prefix))
                .transpose()?
                .map(std::sync::Arc::new),
            otlp: crate::otel::OtlpTarget::resolve(self.otlp_endpoint.as_deref(), lookup)?,
            sentry_dsn: self
                .sentry_dsn
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .map(crate::error_reports::parse_dsn)
                .transpose()?,
        })
    }
}

/// The tools model, whose provider must be configured.
fn tools_config(
    spec: &str,
    providers: &prompt_core::ProviderSet,
) -> Result<prompt_core::ToolsConfig, String> {
    let tools = prompt_core::ToolsConfig::from_model(spec)
        .map_err(|e| format!("PROMPT_REGISTRY_TOOLS_MODEL / --tools-model: {e}"))?;
    if providers.get(&tools.provider).is_none() {
        return Err(format!(
            "PROMPT_REGISTRY_TOOLS_MODEL / --tools-model '{spec}' names the provider '{}', which \
             is not configured (configured: {}); set its credentials or choose another model",
            tools.provider,
            providers.names().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(tools)
}
