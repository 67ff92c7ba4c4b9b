//! The providers a project can call: its stored credentials first, then the providers
//! configured by environment.
//!
//! A stored credential is opened (decrypted) and turned into a provider when it is
//! needed, and kept for [`STORED_PROVIDER_TTL`] so the gateway does not pay a store
//! query and a decryption on every call. Writes through this process invalidate at
//! once; other instances see a change within the TTL.
//!
//! Stored providers retry under the server's [`RetryPolicy`] (the one the environment's
//! providers get, e.g. `PROMPT_REGISTRY_RETRY_MAX_ATTEMPTS`), and background runs use
//! the same providers as runs executed by the caller ([`WorkerProviders`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prompt_core::{
    ChatRequest, ChatResponse, ChatStream, Error, PromptStore, Provider, ProviderCredential,
    ProviderError, ProviderKind, ProviderSet, ProviderSource, Result,
};
use prompt_providers::{
    AnthropicConfig, AnthropicProvider, GeminiConfig, GeminiProvider, OpenAiConfig, OpenAiProvider,
    RetryPolicy, RetryProvider,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::secrets::Keyring;

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
    let inner: Arc<dyn Provider> = match credential.kind {
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
            let mut c = if credential.kind == ProviderKind::Openai {
                OpenAiConfig::openai(api_key)
            } else {
                OpenAiConfig::compatible(name.clone(), String::new()).with_api_key(api_key)
            };
            c.name.clone_from(&name);
            if let Some(u) = &credential.base_url {
                c.base_url.clone_from(u);
            }
            c.default_model = default_model;
            Arc::new(OpenAiProvider::new(c)?)
        }
        ProviderKind::Anthropic => {
            let mut c = AnthropicConfig::new(api_key);
            c.name.clone_from(&name);
            if let Some(u) = &credential.base_url {
                c.base_url.clone_from(u);
            }
            c.default_model = default_model;
            Arc::new(AnthropicProvider::new(c)?)
        }
        ProviderKind::Gemini => {
            let mut c = GeminiConfig::new(api_key);
            c.name.clone_from(&name);
            if let Some(u) = &credential.base_url {
                c.base_url.clone_from(u);
            }
            c.default_model = default_model;
            Arc::new(GeminiProvider::new(c)?)
        }
    };
    let inner: Arc<dyn Provider> = Arc::new(RetryProvider::new(inner, retry.clone()));
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
    /// The name prices are looked up under (the vendor of a stored provider).
    pub pricing_name: String,
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

    fn open(&self, credential: &ProviderCredential) -> Result<Arc<StoredProvider>> {
        let Some(keyring) = &self.keyring else {
            return Err(ProviderError::new(
                prompt_core::ProviderErrorKind::NotConfigured,
                credential.name.as_str(),
                format!(
                    "provider '{}' is stored, but this server has no master key ({}) to open it",
                    credential.name,
                    crate::secrets::MASTER_KEY_ENV
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
                pricing_name: p.kind().as_str().trim_end_matches("_compatible").to_owned(),
                provider: p,
                stored: true,
            }));
        }
        Ok(self.base.get(name).map(|p| ResolvedProvider {
            provider: p.clone(),
            pricing_name: name.to_owned(),
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
                Err(e) => set.insert(Arc::new(Unopenable::new(&c.name, e))),
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
    error: ProviderError,
}

impl Unopenable {
    fn new(name: &str, e: Error) -> Self {
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
}

impl crate::state::AppState {
    /// The registry of `project` with the providers it can execute with: its stored
    /// credentials first, then the environment's.
    pub async fn executing_registry(
        &self,
        project: &prompt_core::Project,
    ) -> Result<prompt_core::Registry> {
        let set = self
            .project_providers
            .set_for(&self.store, project.id)
            .await?;
        Ok(self.registry(project).with_providers(set))
    }
}

/// The providers of each project for the background workers: the same resolution as
/// [`AppState::executing_registry`](crate::state::AppState::executing_registry), its
/// stored credentials first, then the environment's.
///
/// Holds only the store and the providers, not the whole state: the workers outlive
/// the router, and a state clone would keep the run writer open after shutdown.
#[derive(Debug, Clone)]
pub struct WorkerProviders {
    store: Arc<dyn PromptStore>,
    providers: ProjectProviders,
}

impl WorkerProviders {
    /// The providers of `state`'s projects.
    pub fn new(state: &crate::state::AppState) -> Self {
        WorkerProviders {
            store: state.store.clone(),
            providers: state.project_providers.clone(),
        }
    }
}

#[async_trait]
impl ProviderSource for WorkerProviders {
    async fn providers_for(&self, project: Uuid) -> Result<ProviderSet> {
        self.providers.set_for(&self.store, project).await
    }
}
