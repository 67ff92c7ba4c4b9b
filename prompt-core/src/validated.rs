//! Validation as a layer: [`ValidatedStore`] and [`ValidatedRunLog`] check every
//! caller-supplied value (names, labels, version numbers, new prompts and updates,
//! credentials, run queries) once, in front of any backend — memory, SQL, remote,
//! cached — so that backends may assume valid input and answer the same
//! `InvalidInput { field }` for the same mistake.
//!
//! [`Registry`](crate::Registry) puts the layer in front of the stores it is given
//! (once: [`PromptStore::is_validated`] says a store is layered already), and
//! `prompt_store::open_with` returns layered stores, so every entry point (Rust, the
//! HTTP service, Python) validates exactly here. A program that calls a bare backend
//! directly should wrap it with [`ValidatedStore::wrap`].
//!
//! What a backend still checks is what only it can: existence, uniqueness,
//! preconditions, and values it derives (a version's template is parsed where its
//! variables are extracted, `NewVersion::prepare`).

use std::sync::Arc;

use async_trait::async_trait;

/// The future every store method returns (what `async_trait` makes of an `async fn`).
type BoxFuture<'f, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'f>>;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::credential::{ProviderCredential, Reseal};
use crate::domain::{
    ApiKeyRecord, BatchFailure, BatchOp, BatchOutcome, LabelExpect, LabelMove, NewPrompt,
    NewVersion, Project, Prompt, PromptUpdate, PromptVersion, ProtectedLabel, Selector,
    SplitWeights,
};
use crate::error::{Error, Result};
use crate::export::{ExportOptions, ImportOptions, ImportPlan, Progress, PromptBundle};
use crate::page::{Page, PageRequest};
use crate::run::{Run, RunLease, RunQuery, RunStats, RunUpdate, StatsQuery};
use crate::server::RegistryServer;
use crate::store::{PromptFilter, PromptStore, RunLog};
use crate::validate;

/// What a resolve is checked for, owned or shared.
fn check_resolve(name: &str, selector: &Selector) -> Result<()> {
    validate::prompt_name(name)?;
    selector.validate()
}

/// Check the default protected labels a caller seeds a project with: each a settable
/// label (`InvalidInput` on `defaults` naming the bad one).
fn check_defaults(defaults: &[String]) -> Result<()> {
    for l in defaults {
        validate::settable_label(l).map_err(|e| {
            Error::invalid(
                "defaults",
                format!("the default protected label '{l}' is not valid: {e}"),
            )
        })?;
    }
    Ok(())
}

/// A [`PromptStore`] that validates every input before the store behind it sees it.
#[derive(Debug, Clone)]
pub struct ValidatedStore {
    inner: Arc<dyn PromptStore>,
}

impl ValidatedStore {
    /// `store` behind the validation layer, unless it is layered already.
    pub fn wrap(store: Arc<dyn PromptStore>) -> Arc<dyn PromptStore> {
        if store.is_validated() {
            store
        } else {
            Arc::new(ValidatedStore { inner: store })
        }
    }

    /// The store behind the layer.
    pub fn inner(&self) -> &Arc<dyn PromptStore> {
        &self.inner
    }
}

impl ValidatedStore {
    /// The includes of a batch's new versions (see [`crate::compose`]): every tag is
    /// parsed, and those whose targets the batch does not touch are checked as
    /// `create_version` checks them (a target the batch creates or moves is only
    /// there once it is applied; it is checked at render time).
    async fn check_batch_includes(
        &self,
        project: Uuid,
        ops: &[BatchOp],
    ) -> Result<(), BatchFailure> {
        let touched: std::collections::HashSet<&str> =
            ops.iter().map(BatchOp::prompt_name).collect();
        for (i, op) in ops.iter().enumerate() {
            let BatchOp::CreateVersion { name, version } = op else {
                continue;
            };
            let at = |e: Error| BatchFailure::at(i, e.in_field(&format!("ops[{i}].version")));
            let includes = crate::compose::includes_of(&version.template).map_err(at)?;
            if includes.is_empty()
                || includes
                    .iter()
                    .any(|(_, inc)| touched.contains(inc.name.as_str()))
            {
                continue;
            }
            crate::compose::check_new_version(
                self.inner.as_ref(),
                project,
                name,
                &version.template,
                version.template_format,
            )
            .await
            .map_err(at)?;
        }
        Ok(())
    }
}

#[async_trait]
impl PromptStore for ValidatedStore {
    async fn create_project(&self, name: &str) -> Result<Project> {
        validate::project_ref(name)?;
        self.inner.create_project(name).await
    }

    async fn project_by_name(&self, name: &str) -> Result<Project> {
        validate::project_ref(name)?;
        self.inner.project_by_name(name).await
    }

    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        self.inner.project_by_id(id).await
    }

    async fn ensure_project(&self, name: &str) -> Result<Project> {
        validate::project_ref(name)?;
        self.inner.ensure_project(name).await
    }

    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt> {
        self.inner.create_prompt(project, new.validated()?).await
    }

    async fn get_prompt(&self, project: Uuid, name: &str) -> Result<Prompt> {
        validate::prompt_name(name)?;
        self.inner.get_prompt(project, name).await
    }

    async fn prompt_by_id(&self, project: Uuid, id: Uuid) -> Result<Prompt> {
        self.inner.prompt_by_id(project, id).await
    }

    async fn list_prompts(
        &self,
        project: Uuid,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>> {
        page.limit()?;
        self.inner.list_prompts(project, filter, page).await
    }

    async fn update_prompt(
        &self,
        project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt> {
        validate::prompt_name(name)?;
        let update = update.validated()?;
        self.inner
            .update_prompt(project, name, update, if_match)
            .await
    }

    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()> {
        validate::prompt_name(name)?;
        self.inner.archive_prompt(project, name).await
    }

    async fn create_version(
        &self,
        project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion> {
        validate::prompt_name(name)?;
        // Includes are checked here, once for every entry point (see `crate::compose`).
        crate::compose::check_new_version(
            self.inner.as_ref(),
            project,
            name,
            &new.template,
            new.template_format,
        )
        .await?;
        self.inner.create_version(project, name, new).await
    }

    async fn list_versions(
        &self,
        project: Uuid,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>> {
        validate::prompt_name(name)?;
        page.limit()?;
        self.inner.list_versions(project, name, page).await
    }

    // The hot path (every resolve, every authenticated request): checked in place and
    // handed the inner store's future as it is, with no second boxed future.
    fn resolve<'a, 'b, 'c, 'f>(
        &'a self,
        project: Uuid,
        name: &'b str,
        selector: &'c Selector,
    ) -> BoxFuture<'f, Result<PromptVersion>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        match check_resolve(name, selector) {
            Ok(()) => self.inner.resolve(project, name, selector),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    // The same, shared: the hot path of `Registry::resolve`.
    fn resolve_shared<'a, 'b, 'c, 'f>(
        &'a self,
        project: Uuid,
        name: &'b str,
        selector: &'c Selector,
    ) -> BoxFuture<'f, Result<Arc<PromptVersion>>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        match check_resolve(name, selector) {
            Ok(()) => self.inner.resolve_shared(project, name, selector),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    async fn version_by_id(&self, project: Uuid, id: Uuid) -> Result<PromptVersion> {
        self.inner.version_by_id(project, id).await
    }

    async fn set_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        version: u32,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        validate::prompt_name(name)?;
        validate::settable_label(label)?;
        validate::version_number(version)?;
        self.inner
            .set_label(project, name, label, version, expect, actor)
            .await
    }

    async fn set_label_split(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        weights: &SplitWeights,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        validate::prompt_name(name)?;
        validate::settable_label(label)?;
        crate::domain::split::validate_split(weights)?;
        self.inner
            .set_label_split(project, name, label, weights, expect, actor)
            .await
    }

    async fn delete_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        validate::prompt_name(name)?;
        validate::settable_label(label)?;
        self.inner
            .delete_label(project, name, label, expect, actor)
            .await
    }

    async fn delete_version(
        &self,
        project: Uuid,
        name: &str,
        version: u32,
        actor: Option<&str>,
    ) -> Result<()> {
        validate::prompt_name(name)?;
        validate::version_number(version)?;
        self.inner
            .delete_version(project, name, version, actor)
            .await
    }

    async fn protected_labels(
        &self,
        project: Uuid,
        defaults: &[String],
    ) -> Result<Vec<ProtectedLabel>> {
        check_defaults(defaults)?;
        self.inner.protected_labels(project, defaults).await
    }

    async fn protect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<(ProtectedLabel, bool)> {
        validate::settable_label(label)?;
        check_defaults(defaults)?;
        self.inner
            .protect_label(project, label, defaults, actor)
            .await
    }

    async fn unprotect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<()> {
        validate::settable_label(label)?;
        check_defaults(defaults)?;
        self.inner
            .unprotect_label(project, label, defaults, actor)
            .await
    }

    async fn apply_batch(
        &self,
        project: Uuid,
        ops: Vec<BatchOp>,
    ) -> Result<Vec<BatchOutcome>, BatchFailure> {
        let ops = crate::domain::validate_ops(ops)?;
        self.check_batch_includes(project, &ops).await?;
        self.inner.apply_batch(project, ops).await
    }

    async fn export_bundle(
        &self,
        project: Uuid,
        options: &ExportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<PromptBundle>> {
        self.inner.export_bundle(project, options, progress).await
    }

    async fn import_bundle(
        &self,
        project: Uuid,
        bundle: &PromptBundle,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<ImportPlan>> {
        self.inner
            .import_bundle(project, bundle, options, progress)
            .await
    }

    async fn label_history(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>> {
        validate::prompt_name(name)?;
        validate::label(label)?;
        page.limit()?;
        self.inner.label_history(project, name, label, page).await
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        self.inner.create_api_key(record).await
    }

    fn api_key_by_hash<'a, 'b, 'f>(&'a self, hash: &'b str) -> BoxFuture<'f, Result<ApiKeyRecord>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.inner.api_key_by_hash(hash)
    }

    async fn list_api_keys(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        self.inner.list_api_keys(project).await
    }

    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        self.inner.revoke_api_key(project, id).await
    }

    async fn put_provider_credential(
        &self,
        credential: ProviderCredential,
    ) -> Result<ProviderCredential> {
        credential.validate()?;
        self.inner.put_provider_credential(credential).await
    }

    async fn get_provider_credential(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<ProviderCredential> {
        self.inner.get_provider_credential(project, name).await
    }

    async fn list_provider_credentials(&self, project: Uuid) -> Result<Vec<ProviderCredential>> {
        self.inner.list_provider_credentials(project).await
    }

    async fn delete_provider_credential(&self, project: Uuid, name: &str) -> Result<()> {
        self.inner.delete_provider_credential(project, name).await
    }

    async fn reseal_provider_credentials(&self, reseal: &Reseal) -> Result<u64> {
        self.inner.reseal_provider_credentials(reseal).await
    }

    async fn set_run_retention(&self, project: Uuid, days: Option<u32>) -> Result<Project> {
        validate::run_retention_days(days)?;
        self.inner.set_run_retention(project, days).await
    }

    async fn projects_with_retention(&self) -> Result<Vec<Project>> {
        self.inner.projects_with_retention().await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    fn server(&self) -> Option<Arc<dyn RegistryServer>> {
        self.inner.server()
    }

    fn idempotency(&self) -> Option<Arc<dyn crate::IdempotencyStore>> {
        self.inner.idempotency()
    }

    fn is_validated(&self) -> bool {
        true
    }
}

/// A [`RunLog`] that validates run queries before the log behind it sees them (runs
/// themselves are validated when they are built, by `NewRun::into_run`).
#[derive(Debug, Clone)]
pub struct ValidatedRunLog {
    inner: Arc<dyn RunLog>,
}

impl ValidatedRunLog {
    /// `runs` behind the validation layer, unless it is layered already.
    pub fn wrap(runs: Arc<dyn RunLog>) -> Arc<dyn RunLog> {
        if runs.is_validated() {
            runs
        } else {
            Arc::new(ValidatedRunLog { inner: runs })
        }
    }
}

#[async_trait]
impl RunLog for ValidatedRunLog {
    // The run writer's path: the inner log's future as it is.
    fn insert_runs<'a, 'b, 'f>(&'a self, runs: &'b [Run]) -> BoxFuture<'f, Result<()>>
    where
        'a: 'f,
        'b: 'f,
        Self: 'f,
    {
        self.inner.insert_runs(runs)
    }

    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        update.validate()?;
        self.inner.update_run(project, id, update).await
    }

    async fn get_run(&self, project: Uuid, id: Uuid) -> Result<Run> {
        self.inner.get_run(project, id).await
    }

    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        query.validate()?;
        self.inner.query_runs(project, query).await
    }

    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        query.validate()?;
        self.inner.stats(project, query).await
    }

    async fn claim_pending(&self, limit: u32) -> Result<Vec<Run>> {
        self.inner.claim_pending(limit).await
    }

    async fn heartbeat(&self, leases: &[RunLease]) -> Result<u64> {
        self.inner.heartbeat(leases).await
    }

    async fn requeue_stale(&self, lease_expired_before: DateTime<Utc>) -> Result<u64> {
        self.inner.requeue_stale(lease_expired_before).await
    }

    async fn delete_runs_before(
        &self,
        project: Uuid,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        if limit == 0 {
            return Err(Error::invalid("limit", "must be at least 1"));
        }
        self.inner.delete_runs_before(project, before, limit).await
    }

    async fn maintain_runs(&self, retention: &[Project], now: DateTime<Utc>) -> Result<u64> {
        self.inner.maintain_runs(retention, now).await
    }

    fn is_validated(&self) -> bool {
        true
    }
}
