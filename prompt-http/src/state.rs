//! Shared state of the handlers.

use std::sync::Arc;

use prompt_core::{Project, PromptStore, Registry, RunLog};
use prompt_store::CachedStore;

use crate::limit::{AddrLimiter, KeyLimiter};
use crate::writer::RunWriter;

/// Anonymous tool calls: their per-address limiter and the project they run in.
#[derive(Debug, Clone)]
pub struct PublicTools {
    /// Calls per client address.
    pub limiter: AddrLimiter,
    /// The project `default`, looked up on the first anonymous call.
    pub project: Arc<tokio::sync::OnceCell<Project>>,
}

/// What every handler can reach: [`AppStateParts`] behind one `Arc`.
///
/// Cheap to clone, which axum does several times a request (each `from_fn_with_state`
/// layer and the routed handler take their own copy): one reference count, where
/// cloning the parts themselves touched some thirty (issue 20 item 16: cloning and
/// dropping the state was 30 % of a cached resolve's server CPU).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppStateParts>);

impl AppState {
    /// The state made of `parts`.
    pub fn new(parts: AppStateParts) -> Self {
        AppState(Arc::new(parts))
    }

    /// Set the resolve cache reported in the metrics (before the state is shared).
    pub fn set_cache(&mut self, cache: Option<Arc<CachedStore>>) {
        Arc::make_mut(&mut self.0).cache = cache;
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug, Clone)]
pub struct AppStateParts {
    /// The prompt store (possibly cached).
    pub store: Arc<dyn PromptStore>,
    /// The run log.
    pub runs: Arc<dyn RunLog>,
    /// A registry over the backends; [`AppState::registry`] scopes it to a project.
    pub base: Registry,
    /// Group-commit writer for runs.
    pub writer: RunWriter,
    /// Per-key rate limiter.
    pub limiter: KeyLimiter,
    /// Anonymous use of the prompt analysis service's routes (`--public-tools`), when
    /// the operator turned it on.
    pub public_tools: Option<PublicTools>,
    /// The resolve cache, when there is one (for its metrics).
    pub cache: Option<Arc<CachedStore>>,
    /// The protected labels every project starts with (`--protected-labels`,
    /// `production` by default): each project's own list is in the store, seeded with
    /// these the first time it is used, and changed through `/api/v1/protected-labels`.
    pub protected_labels: Arc<Vec<String>>,
    /// Each project's providers: its stored credentials over the environment's.
    pub project_providers: crate::project_providers::ProjectProviders,
    /// People: users, organizations, sign-in (none over a backend without a people
    /// store; then only API keys authenticate).
    pub accounts: Option<crate::accounts::Accounts>,
    /// The change feed: the log and this instance's live subscribers (none over a
    /// store without a change log; then the feed routes answer 501).
    pub feed: Option<crate::feed::Feed>,
    /// Webhooks (none when the server was started without them: their routes answer
    /// 501).
    pub webhooks: Option<crate::webhooks::Webhooks>,
    /// Whether the database's storage takes writes (for `/readyz`).
    pub storage: crate::storage::StorageHealth,
    /// How often the retention task runs (`None`: it does not; see
    /// [`crate::retention`]).
    pub retention_interval: Option<std::time::Duration>,
    /// The keys of idempotent writes (`Idempotency-Key`) and how long they are kept.
    pub idempotency: crate::idempotency::Idempotency,
}

impl AppState {
    /// The labels protected in `project` (the store's list, seeded with
    /// [`AppStateParts::protected_labels`] the first time it is used).
    pub async fn protected_labels_of(
        &self,
        project: &Project,
    ) -> Result<Vec<String>, crate::error::ApiError> {
        Ok(self
            .store
            .protected_labels(project.id, &self.protected_labels)
            .await?
            .into_iter()
            .map(|p| p.label)
            .collect())
    }

    /// `Forbidden` unless `caller` may move every label of `labels` (protected ones
    /// need an admin); the project's protected labels, for auditing the moves.
    pub async fn check_labels<'a>(
        &self,
        caller: &crate::auth::Caller,
        labels: impl IntoIterator<Item = &'a String>,
    ) -> Result<Vec<String>, crate::error::ApiError> {
        let mut labels = labels.into_iter().peekable();
        if labels.peek().is_none() {
            return Ok(Vec::new());
        }
        let protected = self.protected_labels_of(&caller.project).await?;
        check_protected(caller, &protected, labels)?;
        Ok(protected)
    }

    /// `Forbidden` unless `caller` may write the prompt `name`: the reserved `_tools/`
    /// namespace of the tools' meta-prompts is read-only for non-admin keys.
    pub fn check_reserved(
        &self,
        caller: &crate::auth::Caller,
        name: &str,
    ) -> Result<(), crate::error::ApiError> {
        if prompt_core::authoring::is_reserved_name(name) {
            caller.require(prompt_core::KeyRole::Admin).map_err(|_| {
                crate::error::ApiError::Forbidden(format!(
                    "'{name}' is in the reserved namespace {}: only admin keys may change the \
                     tools' meta-prompts",
                    prompt_core::authoring::TOOLS_NAMESPACE
                ))
            })?;
        }
        Ok(())
    }

    /// The people features, or `Unsupported` (501) when this server has none.
    pub fn accounts(&self) -> Result<&crate::accounts::Accounts, crate::error::ApiError> {
        self.accounts.as_ref().ok_or_else(|| {
            prompt_core::Error::unsupported(
                "user accounts (this server's backend has no people store)",
            )
            .into()
        })
    }

    /// Record a security-relevant action of `caller` in its project's audit log (a
    /// no-op without a people store). Never pass a secret in `data`.
    pub async fn audit(
        &self,
        caller: &crate::auth::Caller,
        client: &crate::accounts::ClientInfo,
        action: &str,
        data: serde_json::Value,
    ) {
        let Some(accounts) = &self.accounts else {
            return;
        };
        // Key auth does not load the project's organization; a user's grant did.
        let org = match caller.principal {
            crate::auth::Principal::User { .. } => Some(caller.project.org_id),
            crate::auth::Principal::Key { .. } => self
                .store
                .project_by_id(caller.project.id)
                .await
                .ok()
                .map(|p| p.org_id),
        };
        accounts
            .audit(
                org,
                Some(caller.project.id),
                caller.user_id(),
                &caller.actor(),
                action,
                client,
                data,
            )
            .await;
    }

    /// Audit a label move of `caller` as the label routes and `POST /api/v1/batch`
    /// alike do: every move or removal of a `protected` label
    /// (`protected_label.moved` / `.removed`), and every release split
    /// (`label.split`), with the move's prompt, label, versions and split.
    pub async fn audit_label_move(
        &self,
        caller: &crate::auth::Caller,
        client: &crate::accounts::ClientInfo,
        m: &prompt_core::LabelMove,
        protected: bool,
    ) {
        let action = match (protected, m.to_version, &m.split) {
            (true, Some(_), _) => "protected_label.moved",
            (true, None, _) => "protected_label.removed",
            (false, _, Some(_)) => "label.split",
            (false, _, None) => return,
        };
        let data = serde_json::json!({"prompt": m.prompt, "label": m.label, "from": m.from_version, "to": m.to_version, "split": m.split});
        self.audit(caller, client, action, data).await;
    }

    /// The change feed, or `Unsupported` (501) when this server has none.
    pub fn feed(&self) -> Result<&crate::feed::Feed, crate::error::ApiError> {
        self.feed.as_ref().ok_or_else(|| {
            prompt_core::Error::unsupported(
                "the change feed (this server's store has no change log)",
            )
            .into()
        })
    }

    /// The registry scoped to `project`.
    pub fn registry(&self, project: &Project) -> Registry {
        self.base.for_project(project.clone())
    }
}

/// `Forbidden` unless `caller` may move every label of `labels`, given the project's
/// `protected` labels: only admins move protected ones.
pub fn check_protected<'a>(
    caller: &crate::auth::Caller,
    protected: &[String],
    labels: impl IntoIterator<Item = &'a String>,
) -> Result<(), crate::error::ApiError> {
    for l in labels {
        if protected.contains(l) {
            caller.require(prompt_core::KeyRole::Admin).map_err(|_| {
                crate::error::ApiError::Forbidden(format!(
                    "label '{l}' is protected: only admin keys may move it"
                ))
            })?;
        }
    }
    Ok(())
}
