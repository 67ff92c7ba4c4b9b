//! Stored provider credentials: sealing under the master key ([`keyring`]) and the
//! providers a project can call — its stored credentials first, then the providers
//! configured by environment ([`ProjectProviders`]).
//!
//! Here, below the HTTP service, so that an embedded Rust program or the Python module
//! stores and uses credentials exactly as the server does.
//!
//! A stored credential is opened (decrypted) and turned into a provider when it is
//! needed, and kept for [`STORED_PROVIDER_TTL`] so the gateway does not pay a store
//! query and a decryption on every call. Writes through this process invalidate at
//! once; other instances see a change within the TTL.
//!
//! Stored providers retry under the server's [`RetryPolicy`] (the one the environment's
//! providers get, e.g. `PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS`), and background runs use
//! the same providers as runs executed by the caller ([`StoredProviderSource`]).

pub mod keyring;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use keyring::{Keyring, MASTER_KEY_ENV, MasterKey, PREVIOUS_MASTER_KEY_ENV, open_with, rotate};
use prompt_core::{
    ChatRequest, ChatResponse, ChatStream, Error, PromptStore, Provider, ProviderCredential,
    ProviderError, ProviderKind, ProviderSet, ProviderSource, Result,
};

use crate::RetryPolicy;
use crate::vendor::VendorConfig;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The longest API key accepted, in bytes.
pub const MAX_API_KEY_LEN: usize = 4096;

/// A provider credential to store: the key in clear, sealed by
/// [`ProjectProviders::put`]. `Debug` hides the key.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProviderCredential {
    /// The wire protocol: `openai`, `anthropic`, `gemini` or `openai_compatible`.
    pub kind: ProviderKind,
    /// The API base URL (required for `openai_compatible`; the vendor's by default).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The vendor API key.
    pub api_key: String,
    /// Default generation parameters (`model` sets the default model).
    #[serde(default)]
    pub default_params: Map<String, Value>,
}

impl std::fmt::Debug for NewProviderCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewProviderCredential")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &"<hidden>")
            .field("default_params", &self.default_params)
            .finish()
    }
}

/// How long a stored provider (or its absence) is reused before the store is asked
/// again.
pub const STORED_PROVIDER_TTL: Duration = Duration::from_secs(5);

/// A provider built from a stored credential: its own name, and default parameters
/// applied under the request's.
#[derive(Debug)]
pub struct StoredProvider {
    name: String,
    kind: ProviderKind,
    inner: Arc<dyn Provider>,
    defaults: Map<String, Value>,
}

impl StoredProvider {
    /// The wire protocol (also the vendor whose prices apply).
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn with_defaults(&self, request: &ChatRequest) -> Option<ChatRequest> {
        if self.defaults.is_empty() {
            return None;
        }
        let mut r = request.clone();
        for (k, v) in &self.defaults {
            if k != "model" && !r.params.contains_key(k) {
                r.params.insert(k.clone(), v.clone());
            }
        }
        Some(r)
    }
}

#[async_trait]
impl Provider for StoredProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(
        &self,
        request: &ChatRequest,
    ) -> std::result::Result<ChatResponse, ProviderError> {
        match self.with_defaults(request) {
            Some(r) => self.inner.complete(&r).await,
            None => self.inner.complete(request).await,
        }
    }

    async fn stream(
        &self,
        request: &ChatRequest,
    ) -> std::result::Result<ChatStream, ProviderError> {
        match self.with_defaults(request) {
            Some(r) => self.inner.stream(&r).await,
            None => self.inner.stream(request).await,
        }
    }

    fn default_model(&self) -> Option<&str> {
        self.inner.default_model()
    }

    fn pricing_name(&self) -> &str {
        self.kind.pricing_name()
    }
}

/// Build the provider of a stored credential whose key is `api_key` (in clear), retrying
/// under `retry`.
pub fn build_stored_provider(
    credential: &ProviderCredential,
    api_key: String,
    retry: &RetryPolicy,
) -> Result<Arc<StoredProvider>> {
    let name = credential.name.clone();
    let default_model = credential
        .default_params
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut vendor = VendorConfig::for_kind(credential.kind, &name, api_key);
    if let Some(u) = &credential.base_url {
        vendor = vendor.with_base_url(u);
    }
    let inner = vendor.with_default_model(default_model).build(retry)?;
    Ok(Arc::new(StoredProvider {
        name,
        kind: credential.kind,
        inner,
        defaults: credential
            .default_params
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }))
}

/// A provider a call resolved to.
#[derive(Debug, Clone)]
pub struct ResolvedProvider {
    /// The provider.
    pub provider: Arc<dyn Provider>,
    /// Whether it came from the project's stored credentials.
    pub stored: bool,
}

type CacheKey = (Uuid, String);

/// The providers of each project: stored credentials over the environment's.
#[derive(Debug, Clone)]
pub struct ProjectProviders {
    keyring: Option<Arc<Keyring>>,
    base: ProviderSet,
    retry: RetryPolicy,
    cache: moka::sync::Cache<CacheKey, Option<Arc<StoredProvider>>>,
}

impl ProjectProviders {
    /// Stored credentials opened with `keyring` (none: stored credentials cannot be
    /// written or used), over `base`; stored providers retry under `retry` (the policy
    /// the providers of `base` were built with, so one setting applies to all).
    pub fn new(keyring: Option<Keyring>, base: ProviderSet, retry: RetryPolicy) -> Self {
        ProjectProviders {
            keyring: keyring.map(Arc::new),
            base,
            retry,
            cache: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(STORED_PROVIDER_TTL)
                .build(),
        }
    }

    /// The keyring, if a master key is configured.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    /// The providers configured by environment.
    pub fn base(&self) -> &ProviderSet {
        &self.base
    }

    /// The retry policy of stored providers.
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Forget what is cached of `(project, name)` (after a write).
    pub fn invalidate(&self, project: Uuid, name: &str) {
        self.cache.invalidate(&(project, name.to_owned()));
    }

    /// Store (or replace) the credential `name` of `project`: the key sealed under the
    /// master key, checked first by building its provider (a bad URL is refused before
    /// anything is stored). Returns the stored record (key masked in `key_hint`) and
    /// whether it was created rather than replaced. Without a master key:
    /// `InvalidInput` on `master_key`.
    pub async fn put(
        &self,
        store: &Arc<dyn PromptStore>,
        project: Uuid,
        name: &str,
        new: NewProviderCredential,
    ) -> Result<(ProviderCredential, bool)> {
        if store.server().is_some() {
            return Err(Error::unsupported(
                "storing provider credentials through a remote registry (the server seals \
                 them: PUT /api/v1/providers/{name} with an admin key)",
            ));
        }
        let Some(keyring) = &self.keyring else {
            return Err(Error::invalid(
                "master_key",
                format!(
                    "is not configured: set {MASTER_KEY_ENV} (32 random bytes as 64 hex \
                     characters or base64) to store provider credentials"
                ),
            ));
        };
        prompt_core::credential::validate_provider_name(name)?;
        let key = new.api_key.trim();
        if key.is_empty() || key.len() > MAX_API_KEY_LEN || key.chars().any(char::is_control) {
            return Err(Error::invalid(
                "api_key",
                format!("must be 1 to {MAX_API_KEY_LEN} characters without control characters"),
            ));
        }
        let at = prompt_core::domain::now();
        let credential = ProviderCredential {
            project_id: project,
            name: name.to_owned(),
            kind: new.kind,
            base_url: new
                .base_url
                .map(|u| u.trim().trim_end_matches('/').to_owned()),
            sealed_api_key: keyring.current.seal(project, name, key)?,
            key_hint: prompt_core::credential::mask_secret(key),
            default_params: Value::Object(new.default_params),
            created_at: at,
            updated_at: at,
        };
        credential.validate()?;
        // Refuse what could never be called (bad URL, …) before storing it.
        build_stored_provider(&credential, key.to_owned(), &self.retry)?;
        let stored = store.put_provider_credential(credential).await?;
        self.invalidate(project, name);
        let created = stored.created_at == at;
        Ok((stored, created))
    }

    /// Delete the credential `name` of `project` (`NotFound` if there is none).
    pub async fn delete(
        &self,
        store: &Arc<dyn PromptStore>,
        project: Uuid,
        name: &str,
    ) -> Result<()> {
        prompt_core::credential::validate_provider_name(name)
            .map_err(|_| Error::not_found(format!("provider '{name}'")))?;
        store.delete_provider_credential(project, name).await?;
        self.invalidate(project, name);
        Ok(())
    }

    fn open(&self, credential: &ProviderCredential) -> Result<Arc<StoredProvider>> {
        let Some(keyring) = &self.keyring else {
            return Err(ProviderError::new(
                prompt_core::ProviderErrorKind::NotConfigured,
                credential.name.as_str(),
                format!(
                    "provider '{}' is stored, but this server has no master key ({}) to open it",
                    credential.name, MASTER_KEY_ENV
                ),
            )
            .into());
        };
        build_stored_provider(credential, keyring.open(credential)?, &self.retry)
    }

    async fn stored(
        &self,
        store: &Arc<dyn PromptStore>,
        project: Uuid,
        name: &str,
    ) -> Result<Option<Arc<StoredProvider>>> {
        let key = (project, name.to_owned());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let found = match store.get_provider_credential(project, name).await {
            Ok(c) => Some(self.open(&c)?),
            Err(Error::NotFound { .. } | Error::Unsupported { .. }) => None,
            Err(e) => return Err(e),
        };
        self.cache.insert(key, found.clone());
        Ok(found)
    }

    /// The provider `name` of `project`: its stored credential, else the environment's.
    pub async fn get(
        &self,
        store: &Arc<dyn PromptStore>,
        project: Uuid,
        name: &str,
    ) -> Result<Option<ResolvedProvider>> {
        if prompt_core::credential::validate_provider_name(name).is_ok()
            && let Some(p) = self.stored(store, project, name).await?
        {
            return Ok(Some(ResolvedProvider {
                provider: p,
                stored: true,
            }));
        }
        Ok(self.base.get(name).map(|p| ResolvedProvider {
            provider: p.clone(),
            stored: false,
        }))
    }

    /// Every provider `project` can use: the environment's, with its stored
    /// credentials added over them (a stored provider replaces one of the same name).
    pub async fn set_for(
        &self,
        store: &Arc<dyn PromptStore>,
        project: Uuid,
    ) -> Result<ProviderSet> {
        let stored = match store.list_provider_credentials(project).await {
            Ok(s) => s,
            Err(Error::Unsupported { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut set = self.base.clone();
        for c in &stored {
            // Opened within the TTL (and not replaced through this process since):
            // no second decryption and client per call.
            if let Some(Some(p)) = self.cache.get(&(project, c.name.clone())) {
                set.insert(p);
                continue;
            }
            match self.open(c) {
                Ok(p) => {
                    self.cache
                        .insert((project, c.name.clone()), Some(p.clone()));
                    set.insert(p);
                }
                // A credential that cannot be opened (no master key, sealed under a
                // key no longer configured) fails only the calls that name it — with
                // its reason, never by falling back to the environment's provider of
                // the same name — not every execution of the project.
                Err(e) => set.insert(Arc::new(Unopenable::new(c, e))),
            }
        }
        Ok(set)
    }
}

/// A stored credential that could not be opened, in place of its provider: every call
/// fails with the reason (not retryable).
#[derive(Debug)]
struct Unopenable {
    name: String,
    /// The credential's default model (not a secret), so that a call without a model
    /// fails with the reason the credential cannot be used, not for want of a model.
    default_model: Option<String>,
    error: ProviderError,
}

impl Unopenable {
    fn new(credential: &ProviderCredential, e: Error) -> Self {
        let name = credential.name.as_str();
        let error = match e {
            Error::Provider(p) => *p,
            other => ProviderError::new(
                prompt_core::ProviderErrorKind::NotConfigured,
                name,
                format!("stored provider '{name}' cannot be opened: {other}"),
            ),
        };
        Unopenable {
            name: name.to_owned(),
            default_model: credential
                .default_params
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            error,
        }
    }
}

#[async_trait]
impl Provider for Unopenable {
    fn name(&self) -> &str {
        &self.name
    }

    async fn complete(&self, _request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        Err(self.error.clone())
    }

    async fn stream(&self, _request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        Err(self.error.clone())
    }

    fn default_model(&self) -> Option<&str> {
        self.default_model.as_deref()
    }
}

/// The providers of each project for background workers (a [`ProviderSource`]): the
/// same resolution as a call made by the caller, stored credentials first, then the
/// environment's.
///
/// Holds only the store and the providers: workers may outlive whatever made them.
#[derive(Debug, Clone)]
pub struct StoredProviderSource {
    store: Arc<dyn PromptStore>,
    providers: ProjectProviders,
}

impl StoredProviderSource {
    /// The providers of `store`'s projects.
    pub fn new(store: Arc<dyn PromptStore>, providers: ProjectProviders) -> Self {
        StoredProviderSource { store, providers }
    }
}

#[async_trait]
impl ProviderSource for StoredProviderSource {
    async fn providers_for(&self, project: Uuid) -> Result<ProviderSet> {
        self.providers.set_for(&self.store, project).await
    }
}
