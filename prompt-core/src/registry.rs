//! The [`Registry`] facade: the one type an embedding program uses.
//!
//! One file over 600 lines: it is one job, the facade's methods, each a few lines that
//! scope a store, run-log or executor call to the registry's project (resolve with a
//! release split, expand includes, render, log runs); the work they delegate lives in
//! `compose`, `domain::split`, `execute` and the stores.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::authoring::ToolsConfig;
use crate::compose::Composed;
use crate::diff::VersionDiff;
use crate::domain::{
    DEFAULT_PROJECT, LabelExpect, LabelMove, NewPrompt, NewVersion, Project, Prompt, PromptUpdate,
    PromptVersion, Rendered, Selector,
};
use crate::error::{Error, Result};
use crate::execute::ProviderSource;
use crate::page::{Page, PageRequest};
use crate::provider::ProviderSet;
use crate::run::{NewRun, Run, RunQuery, RunStats, RunUpdate, StatsQuery};
use crate::server::RegistryServer;
use crate::store::{PromptFilter, PromptStore, RunLog};
use crate::template::{RenderOptions, Variables};
use crate::validated::{ValidatedRunLog, ValidatedStore};

/// Prompts, versions, labels, rendering and runs of one project, over any store and
/// run log. Cheap to clone; [`Registry::for_project`] gives a view of another project
/// sharing the same backends.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) store: Arc<dyn PromptStore>,
    pub(crate) runs: Arc<dyn RunLog>,
    pub(crate) project: Project,
    /// Providers prompts are executed with (see [`Registry::with_providers`]).
    pub(crate) providers: Arc<ProviderSet>,
    /// Wakes this process' workers when a run is submitted.
    pub(crate) jobs: Arc<Notify>,
    /// The model of the prompt tools (see [`Registry::with_tools`]).
    pub(crate) tools: Arc<ToolsConfig>,
    /// Set when the store is a server's: executions, background runs, run ingestion
    /// and the authoring aids happen there (see [`crate::server`]).
    pub(crate) server: Option<Arc<dyn RegistryServer>>,
    /// Where each call finds its project's providers (stored credentials), over
    /// [`Registry::providers`](crate::Registry::providers) (see
    /// [`Registry::with_provider_source`]).
    pub(crate) provider_source: Option<Arc<dyn ProviderSource>>,
    /// The run lease and the runs this process holds (see [`Registry::with_run_lease`]).
    pub(crate) leases: Arc<crate::execute::Leases>,
}

impl Registry {
    /// A registry on the `default` project (created if missing).
    pub async fn new(store: Arc<dyn PromptStore>, runs: Arc<dyn RunLog>) -> Result<Self> {
        let store = ValidatedStore::wrap(store);
        let project = store.ensure_project(DEFAULT_PROJECT).await?;
        Ok(Registry::from_parts(store, runs, project))
    }

    /// A registry on the named project (created if missing).
    pub async fn with_project(
        store: Arc<dyn PromptStore>,
        runs: Arc<dyn RunLog>,
        project: &str,
    ) -> Result<Self> {
        let store = ValidatedStore::wrap(store);
        let project = store.ensure_project(project).await?;
        Ok(Registry::from_parts(store, runs, project))
    }

    /// A registry on a project the caller already has (no lookup is made): for stores
    /// that know their project themselves, such as a remote store scoped by its key.
    ///
    /// Every constructor puts the validation layer ([`crate::validated`]) in front of
    /// the store and run log given, unless they have it already.
    pub fn from_parts(
        store: Arc<dyn PromptStore>,
        runs: Arc<dyn RunLog>,
        project: Project,
    ) -> Self {
        let store = ValidatedStore::wrap(store);
        let runs = ValidatedRunLog::wrap(runs);
        Registry {
            server: store.server(),
            provider_source: None,
            store,
            runs,
            project,
            providers: Arc::default(),
            jobs: Arc::default(),
            tools: Arc::default(),
            leases: Arc::default(),
        }
    }

    /// The same backends, another project (which must exist; no lookup is made).
    pub fn for_project(&self, project: Project) -> Self {
        Registry {
            store: self.store.clone(),
            runs: self.runs.clone(),
            project,
            providers: self.providers.clone(),
            jobs: self.jobs.clone(),
            tools: self.tools.clone(),
            server: self.server.clone(),
            provider_source: self.provider_source.clone(),
            leases: self.leases.clone(),
        }
    }

    /// The project this registry works in.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The project as its backend knows it: this registry's, or for a registry over a
    /// server, the project the server scopes it to (asked once the server can be
    /// reached, if it could not be when the registry was made).
    pub async fn current_project(&self) -> Result<Project> {
        match &self.server {
            Some(server) => server.project().await,
            None => Ok(self.project.clone()),
        }
    }

    /// The server's URL when the store is a server's (see [`crate::server`]).
    pub fn server_url(&self) -> Option<&str> {
        self.server.as_deref().map(RegistryServer::url)
    }

    fn pid(&self) -> Uuid {
        self.project.id
    }

    /// The prompt store.
    pub fn store(&self) -> &Arc<dyn PromptStore> {
        &self.store
    }

    /// The run log.
    pub fn run_log(&self) -> &Arc<dyn RunLog> {
        &self.runs
    }

    /// Create a prompt. `AlreadyExists` if the name is taken.
    pub async fn create_prompt(&self, new: NewPrompt) -> Result<Prompt> {
        self.store.create_prompt(self.pid(), new).await
    }

    /// A prompt by name with its labels.
    pub async fn get_prompt(&self, name: &str) -> Result<Prompt> {
        self.store.get_prompt(self.pid(), name).await
    }

    /// A live prompt by its id with its labels (`NotFound` for another project's).
    pub async fn prompt_by_id(&self, id: Uuid) -> Result<Prompt> {
        self.store.prompt_by_id(self.pid(), id).await
    }

    /// List live prompts.
    pub async fn list_prompts(
        &self,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>> {
        self.store.list_prompts(self.pid(), filter, page).await
    }

    /// Update description/tags, optionally only if the etag still matches.
    pub async fn update_prompt(
        &self,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt> {
        self.store
            .update_prompt(self.pid(), name, update, if_match)
            .await
    }

    /// Archive a prompt.
    pub async fn archive_prompt(&self, name: &str) -> Result<()> {
        self.store.archive_prompt(self.pid(), name).await
    }

    /// Create the next version (and the prompt, if missing); `latest` moves to it and so
    /// do the labels of `new`, atomically.
    pub async fn create_version(&self, name: &str, new: NewVersion) -> Result<PromptVersion> {
        self.store.create_version(self.pid(), name, new).await
    }

    /// Versions, newest first.
    pub async fn list_versions(
        &self,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>> {
        self.store.list_versions(self.pid(), name, page).await
    }

    /// Delete version `version` of a prompt: a tombstone (see
    /// [`PromptStore::delete_version`]): it no longer resolves and is hidden from the
    /// version list, its number is never reused, runs keep referring to it. Labels
    /// other than `latest` must be moved off it first (`Conflict` naming them). The
    /// actor is the scoped one ([`crate::domain::actor`]).
    pub async fn delete_version(&self, name: &str, version: u32) -> Result<()> {
        let actor = crate::domain::actor::current();
        self.store
            .delete_version(self.pid(), name, version, actor.as_deref())
            .await
    }

    /// The labels protected in this project, seeded with
    /// [`DEFAULT_PROTECTED_LABELS`](crate::DEFAULT_PROTECTED_LABELS) when the project
    /// has none recorded yet (see [`PromptStore::protected_labels`]; a registry over a
    /// server gets the server's list).
    pub async fn protected_labels(&self) -> Result<Vec<crate::ProtectedLabel>> {
        self.store
            .protected_labels(self.pid(), &default_protected_labels())
            .await
    }

    /// Protect `label` in this project; `true` if it was not protected yet. (Whoever
    /// may call this is the caller's business: the HTTP service lets admins only.)
    pub async fn protect_label(&self, label: &str) -> Result<(crate::ProtectedLabel, bool)> {
        let actor = crate::domain::actor::current();
        self.store
            .protect_label(
                self.pid(),
                label,
                &default_protected_labels(),
                actor.as_deref(),
            )
            .await
    }

    /// Stop protecting `label` in this project; `NotFound` if it is not protected.
    pub async fn unprotect_label(&self, label: &str) -> Result<()> {
        let actor = crate::domain::actor::current();
        self.store
            .unprotect_label(
                self.pid(),
                label,
                &default_protected_labels(),
                actor.as_deref(),
            )
            .await
    }

    /// One version by number.
    pub async fn get_version(&self, name: &str, version: u32) -> Result<PromptVersion> {
        self.resolve(name, &Selector::Version(version)).await
    }

    /// Resolve by label (default `production`) or version number. A label carrying a
    /// release split answers one of its versions at random (see
    /// [`Registry::resolve_with`] for a sticky pick).
    pub async fn resolve(&self, name: &str, selector: &Selector) -> Result<PromptVersion> {
        self.resolve_with(name, selector, None).await
    }

    /// Resolve, picking a version of a label's release split by `split_key`: the same
    /// key gets the same version while the split stands; without a key the pick is
    /// uniformly random (see [`crate::domain::split::pick`], the one place a version
    /// is picked). The answer's [`PromptVersion::split`] says which split it came
    /// from. The label (with its split) is what the store and its cache resolve; the
    /// pick happens after, and the picked version is resolved by number (cached
    /// without expiry).
    pub async fn resolve_with(
        &self,
        name: &str,
        selector: &Selector,
        split_key: Option<&str>,
    ) -> Result<PromptVersion> {
        self.resolve_shared_with(name, selector, split_key)
            .await
            .map(Arc::unwrap_or_clone)
    }

    /// [`Registry::resolve`] without copying the version: a cache hit hands out the
    /// cache's shared copy (the fastest read; what the HTTP service and the Python
    /// module use).
    pub async fn resolve_shared(
        &self,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<PromptVersion>> {
        self.resolve_shared_with(name, selector, None).await
    }

    /// [`Registry::resolve_with`], shared: the one implementation of a resolve and its
    /// split pick. Only a version picked from a split is copied (to say which split).
    pub async fn resolve_shared_with(
        &self,
        name: &str,
        selector: &Selector,
        split_key: Option<&str>,
    ) -> Result<Arc<PromptVersion>> {
        if let Some(k) = split_key {
            crate::domain::split::check_key(k)?;
        }
        let v = self
            .store
            .resolve_shared(self.pid(), name, selector)
            .await?;
        let Some(split) = &v.split else {
            return Ok(v);
        };
        // Only the label carrying the split picks from it (a version resolved by
        // number carries none; a copy that did would not be picked from).
        if !matches!(selector, Selector::Label(l) if *l == split.label) {
            return Ok(Arc::new(PromptVersion {
                split: None,
                ..PromptVersion::clone(&v)
            }));
        }
        let arm = split.pick(v.prompt_id, split_key);
        if arm == v.version {
            return Ok(v);
        }
        match self
            .store
            .resolve_shared(self.pid(), &v.prompt, &Selector::Version(arm))
            .await
        {
            Ok(picked) => Ok(Arc::new(PromptVersion {
                split: v.split.clone(),
                ..PromptVersion::clone(&picked)
            })),
            // An arm deleted between the two reads: the primary arm answers.
            Err(Error::NotFound { .. }) => Ok(v),
            Err(e) => Err(e),
        }
    }

    /// Point a label at a release split (audited; see
    /// [`PromptStore::set_label_split`]). Moving it to one version with
    /// [`Registry::set_label`] ends the split.
    pub async fn set_label_split(
        &self,
        name: &str,
        label: &str,
        weights: &crate::SplitWeights,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        self.store
            .set_label_split(self.pid(), name, label, weights, expect, actor)
            .await
    }

    /// Resolve by label or number and expand the version's includes (see
    /// [`crate::compose`]): the expanded version, its variables those of the whole
    /// expansion, and which version of each dependency was used. Dependencies are
    /// resolved through the store, so through its cache.
    pub async fn resolve_composed(&self, name: &str, selector: &Selector) -> Result<Composed> {
        self.resolve_composed_with(name, selector, None).await
    }

    /// [`Registry::resolve_composed`] with a release split's sticky `split_key` (see
    /// [`Registry::resolve_with`]): the split picks the version, then its includes are
    /// expanded.
    pub async fn resolve_composed_with(
        &self,
        name: &str,
        selector: &Selector,
        split_key: Option<&str>,
    ) -> Result<Composed> {
        let v = self.resolve_shared_with(name, selector, split_key).await?;
        crate::compose::compose(self.store.as_ref(), self.pid(), v).await
    }

    /// What changed from one version of a prompt to another, each picked by label or
    /// number (see [`crate::diff`]); the same version twice gives an identical diff.
    /// `NotFound` names the side (`from` or `to`) that is missing.
    pub async fn diff(&self, name: &str, from: &Selector, to: &Selector) -> Result<VersionDiff> {
        let (from, to) = futures_util::future::try_join(
            self.diff_side(name, from, "from"),
            self.diff_side(name, to, "to"),
        )
        .await?;
        Ok(VersionDiff::between(&from, &to))
    }

    /// One side of [`Registry::diff`]: a `NotFound` says which side it is.
    async fn diff_side(
        &self,
        name: &str,
        selector: &Selector,
        side: &str,
    ) -> Result<PromptVersion> {
        // The label's own version (a split's primary arm): a diff picks nothing at random.
        let v = self.store.resolve(self.pid(), name, selector).await;
        v.map(|mut v| {
            v.split = None;
            v
        })
        .map_err(|e| match e {
            Error::NotFound { what } => Error::not_found(format!("{what} (the diff's `{side}`)")),
            other => other,
        })
    }

    /// Point a label at a version (audited). `latest` is refused; `expect` is a
    /// compare-and-set precondition (`LabelExpect::Any` for none).
    pub async fn set_label(
        &self,
        name: &str,
        label: &str,
        version: u32,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        self.store
            .set_label(self.pid(), name, label, version, expect, actor)
            .await
    }

    /// Remove a label (audited), if it satisfies `expect`.
    pub async fn delete_label(
        &self,
        name: &str,
        label: &str,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        self.store
            .delete_label(self.pid(), name, label, expect, actor)
            .await
    }

    /// Apply 1 to [`MAX_BATCH_OPS`](crate::domain::MAX_BATCH_OPS) prompt, version and
    /// label operations in one transaction, all or nothing (see
    /// [`PromptStore::apply_batch`]).
    pub async fn apply_batch(
        &self,
        ops: Vec<crate::BatchOp>,
    ) -> Result<Vec<crate::BatchOutcome>, crate::BatchFailure> {
        crate::check_batch_size(&ops)?;
        self.store.apply_batch(self.pid(), ops).await
    }

    /// Apply any number of operations in one transaction, all or nothing:
    /// [`Registry::apply_batch`] without its cap, for imports
    /// ([`Registry::import_prompts`], `POST /api/v1/import`) and for entry points that
    /// size their batches themselves (`POST /api/v1/batch`).
    pub async fn apply_ops(
        &self,
        ops: Vec<crate::BatchOp>,
    ) -> Result<Vec<crate::BatchOutcome>, crate::BatchFailure> {
        self.store.apply_batch(self.pid(), ops).await
    }

    /// Who moved a label, from which version to which, newest first.
    pub async fn label_history(
        &self,
        name: &str,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>> {
        page.limit()?;
        self.store
            .label_history(self.pid(), name, label, page)
            .await
    }

    /// Resolve and render. Missing variables are all named in one error.
    pub async fn render(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
    ) -> Result<(Arc<PromptVersion>, Rendered)> {
        self.render_with(name, selector, variables, RenderOptions::default())
            .await
    }

    /// Resolve and render with options (e.g. rejecting extra variables). The version
    /// returned is the expanded one ([`Registry::resolve_composed`]).
    pub async fn render_with(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: RenderOptions,
    ) -> Result<(Arc<PromptVersion>, Rendered)> {
        self.render_split(name, selector, None, variables, options)
            .await
    }

    /// Resolve with a release split's sticky `split_key` (see
    /// [`Registry::resolve_with`]), expand the includes and render with options.
    pub async fn render_split(
        &self,
        name: &str,
        selector: &Selector,
        split_key: Option<&str>,
        variables: &Variables,
        options: RenderOptions,
    ) -> Result<(Arc<PromptVersion>, Rendered)> {
        let (c, r) = self
            .render_composed_with(name, selector, split_key, variables, options)
            .await?;
        Ok((c.version, r))
    }

    /// Resolve, expand the includes and render: the expanded version with the
    /// resolution graph ([`Composed`]), and the rendered template.
    pub async fn render_composed(
        &self,
        name: &str,
        selector: &Selector,
        variables: &Variables,
        options: RenderOptions,
    ) -> Result<(Composed, Rendered)> {
        self.render_composed_with(name, selector, None, variables, options)
            .await
    }

    /// [`Registry::render_composed`] with a release split's sticky `split_key`.
    pub async fn render_composed_with(
        &self,
        name: &str,
        selector: &Selector,
        split_key: Option<&str>,
        variables: &Variables,
        options: RenderOptions,
    ) -> Result<(Composed, Rendered)> {
        let c = self
            .resolve_composed_with(name, selector, split_key)
            .await?;
        let r = c.version.render_with(variables, options)?;
        Ok((c, r))
    }

    async fn check_run_refs(
        &self,
        run: &Run,
        seen: &mut HashMap<(String, Option<u32>), ()>,
    ) -> Result<()> {
        let Some(prompt) = &run.prompt else {
            return Ok(());
        };
        let key = (prompt.clone(), run.version);
        if seen.contains_key(&key) {
            return Ok(());
        }
        match run.version {
            Some(v) => {
                self.store
                    .resolve(self.pid(), prompt, &Selector::Version(v))
                    .await?;
            }
            None => {
                self.store.get_prompt(self.pid(), prompt).await?;
            }
        }
        seen.insert(key, ());
        Ok(())
    }

    /// Record a run executed elsewhere (or by the executor). The prompt and version, if
    /// named, must exist.
    pub async fn log_run(&self, new: NewRun) -> Result<Run> {
        if let Some(server) = &self.server {
            return server.log_run(new).await;
        }
        let run = new.into_run(self.pid())?;
        self.check_run_refs(&run, &mut HashMap::new()).await?;
        self.runs.insert_runs(std::slice::from_ref(&run)).await?;
        Ok(run)
    }

    /// Record many runs: each is validated alone (its error says which field), the valid
    /// ones are stored in one transaction. The result has one entry per input, in order.
    pub async fn log_runs(&self, runs: Vec<NewRun>) -> Result<Vec<Result<Run>>> {
        if let Some(server) = &self.server {
            return server.log_runs(runs).await;
        }
        let results = self.prepare_runs(runs).await?;
        let valid: Vec<Run> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        if !valid.is_empty() {
            self.runs.insert_runs(&valid).await?;
        }
        Ok(results)
    }

    /// Validate runs and check that the prompts and versions they name exist, without
    /// storing them: one result per input, in order. For callers that store through
    /// their own writer (the HTTP service's group commit).
    pub async fn prepare_runs(&self, runs: Vec<NewRun>) -> Result<Vec<Result<Run>>> {
        let mut seen = HashMap::new();
        let mut results = Vec::with_capacity(runs.len());
        for new in runs {
            let r = match new.into_run(self.pid()) {
                Ok(run) => match self.check_run_refs(&run, &mut seen).await {
                    Ok(()) => Ok(run),
                    Err(e) if e.is_retryable() || matches!(e, Error::Internal { .. }) => {
                        return Err(e);
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            results.push(r);
        }
        Ok(results)
    }

    /// Update a run's status and figures.
    pub async fn update_run(&self, id: Uuid, update: RunUpdate) -> Result<Run> {
        self.runs.update_run(self.pid(), id, update).await
    }

    /// One run.
    pub async fn get_run(&self, id: Uuid) -> Result<Run> {
        self.runs.get_run(self.pid(), id).await
    }

    /// Runs matching a query.
    pub async fn runs(&self, query: &RunQuery) -> Result<Page<Run>> {
        self.runs.query_runs(self.pid(), query).await
    }

    /// Delete the project's runs created strictly before `before`, whatever their
    /// status (all of them, or at most `limit`, the oldest first), in bounded batches
    /// (see [`crate::retention`]); returns how many were deleted.
    pub async fn delete_runs_before(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: Option<u64>,
    ) -> Result<u64> {
        crate::retention::delete_runs_before(self.runs.as_ref(), self.pid(), before, limit).await
    }

    /// The project's run retention in days, as stored now (`None`: runs are kept
    /// forever).
    pub async fn run_retention_days(&self) -> Result<Option<u32>> {
        Ok(self
            .store
            .project_by_id(self.pid())
            .await?
            .run_retention_days)
    }

    /// Set the project's run retention: runs created more than `days` days ago
    /// (1–36500) are deleted by a server's retention task; `None` keeps them forever.
    /// Returns the project as stored.
    pub async fn set_run_retention(&self, days: Option<u32>) -> Result<Project> {
        self.store.set_run_retention(self.pid(), days).await
    }

    /// Aggregates of a prompt's runs, or of every run of the project when
    /// `query.prompt` is `None` (see [`StatsQuery`] for the rows and their order).
    /// `NotFound` if the prompt does not exist.
    pub async fn stats(&self, query: &StatsQuery) -> Result<Vec<RunStats>> {
        // The query is checked (by the run log's validation layer) before the prompt.
        let stats = self.runs.stats(self.pid(), query).await?;
        if let Some(p) = &query.prompt {
            self.store.get_prompt(self.pid(), p).await?;
        }
        Ok(stats)
    }

    /// Check that `name` exists, as a convenience for callers that need a clean
    /// `NotFound` before doing work.
    pub async fn require_prompt(&self, name: &str) -> Result<()> {
        self.get_prompt(name).await.map(|_| ())
    }

    /// Map a `NotFound` of the prompt store into one naming the prompt.
    pub fn prompt_not_found(name: &str) -> Error {
        Error::not_found(format!("prompt '{name}'"))
    }
}

/// [`crate::DEFAULT_PROTECTED_LABELS`] as owned strings.
fn default_protected_labels() -> Vec<String> {
    crate::DEFAULT_PROTECTED_LABELS
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}
