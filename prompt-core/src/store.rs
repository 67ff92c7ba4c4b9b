//! The storage traits: [`PromptStore`] and [`RunLog`].
//!
//! Every method takes the project first and never sees another project's data: an
//! object of another project answers `NotFound` exactly like a missing one. Inputs are
//! validated by the backend too (with the same core functions), so a store used
//! directly is as strict as the `Registry` in front of it.

use std::fmt::Debug;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::credential::ProviderCredential;
use crate::domain::{
    ApiKeyRecord, BatchFailure, BatchOp, BatchOutcome, LabelExpect, LabelMove, NewPrompt,
    NewVersion, Project, Prompt, PromptUpdate, PromptVersion, ProtectedLabel, Selector,
    SplitWeights,
};
use crate::error::{Error, Result};
use crate::export::{ExportOptions, ImportOptions, ImportPlan, Progress, PromptBundle};
use crate::page::{Page, PageRequest};
use crate::run::{Run, RunLease, RunQuery, RunStats, RunUpdate, StatsQuery};

/// Filters of a prompt listing. Archived prompts are never listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptFilter {
    /// Only prompts with this tag.
    pub tag: Option<String>,
    /// Only prompts whose name starts with this.
    pub name_prefix: Option<String>,
    /// Only prompts created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Only prompts created before.
    pub created_before: Option<DateTime<Utc>>,
}

impl PromptFilter {
    /// Whether `p` passes (for backends that filter in memory).
    pub fn matches(&self, p: &Prompt) -> bool {
        !p.archived
            && self.tag.as_ref().is_none_or(|t| p.tags.contains(t))
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|q| p.name.starts_with(q.as_str()))
            && self.created_after.is_none_or(|t| p.created_at >= t)
            && self.created_before.is_none_or(|t| p.created_at < t)
    }
}

/// Prompts, versions, labels, projects and API key records. Transactional: each
/// method is all or nothing. Every write appends its events (see
/// [`crate::domain::event`]) to the project's change log in the same transaction.
#[async_trait]
pub trait PromptStore: Send + Sync + Debug {
    /// Create a project. `name` is `NAME` (in the organization `default`) or
    /// `ORG/NAME`. `AlreadyExists` if the organization has a project of that name,
    /// `NotFound` if the organization does not exist.
    async fn create_project(&self, name: &str) -> Result<Project>;

    /// The project of that name (`NAME` in the organization `default`, or
    /// `ORG/NAME`), or `NotFound`.
    async fn project_by_name(&self, name: &str) -> Result<Project>;

    /// The project with that id, or `NotFound`.
    async fn project_by_id(&self, id: Uuid) -> Result<Project>;

    /// The project of that name, created if missing. Safe under concurrent calls: all
    /// callers get the same project.
    async fn ensure_project(&self, name: &str) -> Result<Project> {
        match self.project_by_name(name).await {
            Ok(p) => Ok(p),
            Err(Error::NotFound { .. }) => match self.create_project(name).await {
                Ok(p) => Ok(p),
                Err(Error::AlreadyExists { .. }) => self.project_by_name(name).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Create a prompt without versions. `AlreadyExists` if a live prompt has the name.
    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt>;

    /// A live (not archived) prompt by name, with its labels, or `NotFound`.
    async fn get_prompt(&self, project: Uuid, name: &str) -> Result<Prompt>;

    /// A live (not archived) prompt of `project` by its id, with its labels, or
    /// `NotFound` (also for another project's prompt: its id names nothing here).
    async fn prompt_by_id(&self, project: Uuid, id: Uuid) -> Result<Prompt>;

    /// Live prompts matching `filter`, by name ascending, keyset-paginated: a page never
    /// skips or repeats a prompt that existed when the listing began.
    async fn list_prompts(
        &self,
        project: Uuid,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>>;

    /// Update description and/or tags. With `if_match`, `PreconditionFailed` unless it
    /// equals the current etag (checked and written atomically).
    async fn update_prompt(
        &self,
        project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt>;

    /// Archive a live prompt: hidden from lists and name lookups, its versions still
    /// readable by id (for old runs); the name may be reused. `NotFound` if missing.
    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()>;

    /// Create the next version of a prompt, creating the prompt if it does not exist
    /// (also when several callers race). Version numbers are gapless and unique per
    /// prompt under any concurrency; the labels of `new` move to it in the same
    /// transaction, with history rows. Preconditions, checked under the prompt's
    /// lock: `new.parent_version` (`Conflict` naming the current latest unless it is
    /// still the latest; `0`: no version yet) and `new.if_match` (`PreconditionFailed`
    /// unless it is the prompt's etag; the prompt must then exist).
    async fn create_version(
        &self,
        project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion>;

    /// Versions of a live prompt, newest first, keyset-paginated. `NotFound` if the
    /// prompt does not exist.
    async fn list_versions(
        &self,
        project: Uuid,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>>;

    /// Resolve a version of a live prompt by label or number. `NotFound` names what was
    /// missing: the prompt, the label, or the version.
    async fn resolve(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion>;

    /// [`PromptStore::resolve`], answered as a shared version: a cache hands out its
    /// copy without cloning it (the hot path of every resolve). The default wraps
    /// `resolve`'s answer; only stores that keep versions override it.
    async fn resolve_shared(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<PromptVersion>> {
        self.resolve(project, name, selector).await.map(Arc::new)
    }

    /// A version by id, also of an archived prompt. `NotFound` if missing.
    async fn version_by_id(&self, project: Uuid, id: Uuid) -> Result<PromptVersion>;

    /// Point `label` at `version` atomically, recording the move. `latest` is refused
    /// (`InvalidInput`); `NotFound` if the prompt or version is missing;
    /// `PreconditionFailed` unless the label's current version satisfies `expect`
    /// (checked and moved atomically: compare-and-set).
    async fn set_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        version: u32,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove>;

    /// Point `label` at a release split atomically, recording the move (with the
    /// split) like [`PromptStore::set_label`]: the label's version becomes the split's
    /// primary arm ([`crate::domain::split::primary`]) and resolving it by label
    /// answers that version with [`PromptVersion::split`] set; moving the label to one
    /// version later ends the split. `weights` is checked with
    /// [`crate::domain::split::validate_split`], and every version must exist and not
    /// be deleted (`InvalidInput` naming `split.N`). `expect` compares with the primary
    /// arm. Backends without splits answer `Unsupported`.
    async fn set_label_split(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        weights: &SplitWeights,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        let _ = (project, name, label, weights, expect, actor);
        Err(Error::unsupported("set_label_split"))
    }

    /// Remove a label, recording the move. `NotFound` if the label is not set;
    /// `PreconditionFailed` unless it satisfies `expect`.
    async fn delete_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove>;

    /// Apply `ops` in one transaction: all or nothing, each with its preconditions,
    /// their events appended together. The outcomes are in the order of `ops`; a
    /// failure names the failing operation's index and nothing is written.
    async fn apply_batch(
        &self,
        project: Uuid,
        ops: Vec<BatchOp>,
    ) -> Result<Vec<BatchOutcome>, BatchFailure>;

    /// Export where the prompts are kept, when that is not this process: the remote
    /// store asks the server's `GET /api/v1/export` (one request instead of one per
    /// prompt). `None`, the default: the [`Registry`](crate::Registry) reads the
    /// prompts through this store. Layers that wrap a store forward it.
    async fn export_bundle(
        &self,
        project: Uuid,
        options: &ExportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<PromptBundle>> {
        let _ = (project, options, progress);
        Ok(None)
    }

    /// Plan and apply an import where the prompts are kept, when that is not this
    /// process: the remote store sends `bundle` to the server's `POST /api/v1/import`
    /// (one request, planned and applied there in one transaction; a dry run or a
    /// refused import answers the plan with its conflicts). `None`, the default: the
    /// [`Registry`](crate::Registry) plans here, reading through this store, and
    /// applies the plan with [`PromptStore::apply_batch`]. Layers that wrap a store
    /// forward it.
    async fn import_bundle(
        &self,
        project: Uuid,
        bundle: &PromptBundle,
        options: &ImportOptions,
        progress: &dyn Progress,
    ) -> Result<Option<ImportPlan>> {
        let _ = (project, bundle, options, progress);
        Ok(None)
    }

    /// Delete version `version` of a live prompt: a **tombstone**. The version no
    /// longer resolves (by number: `NotFound` saying it was deleted), is hidden from
    /// [`PromptStore::list_versions`] and [`PromptStore::version_by_id`], and its
    /// number is never given again (the next version is one past the highest ever
    /// created). Runs that refer to it are not touched. `latest` moves to the newest
    /// version still live (none when the last live one is deleted: the prompt then has
    /// no resolvable version until a new one is created). Checked and written under the
    /// prompt's lock: `NotFound` if the prompt or the version is missing or already
    /// deleted; `Conflict` naming the labels (other than `latest`) that still point at
    /// it — they must be moved or removed first. Appends `version.deleted` (with
    /// `actor`).
    async fn delete_version(
        &self,
        project: Uuid,
        name: &str,
        version: u32,
        actor: Option<&str>,
    ) -> Result<()>;

    /// The labels protected in `project` (only admins may move them), by label.
    ///
    /// A project's list is recorded the first time any protected-label method is
    /// called for it: until then it is `defaults`, which are then stored (once: callers
    /// racing on a new project all see the same list) with no event and no author.
    /// So the server's configured defaults seed every project it serves, new ones and
    /// ones that existed before protected labels were stored, and an admin's change is
    /// never overwritten by a default. `NotFound` if the project does not exist.
    async fn protected_labels(
        &self,
        project: Uuid,
        defaults: &[String],
    ) -> Result<Vec<ProtectedLabel>>;

    /// Protect `label` in `project` (seeding the list from `defaults` first, as
    /// [`PromptStore::protected_labels`] does). Idempotent: protecting a protected
    /// label changes nothing and returns it with `false`; otherwise it is stored with
    /// `actor`, `protected_label.added` appended, and returned with `true`. `latest`
    /// cannot be protected (`InvalidInput`).
    async fn protect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<(ProtectedLabel, bool)>;

    /// Stop protecting `label` in `project` (seeding first, as
    /// [`PromptStore::protected_labels`] does), appending `protected_label.deleted`.
    /// `NotFound` if it is not protected.
    async fn unprotect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<()>;

    /// Moves of one label, newest first, keyset-paginated. `NotFound` if the prompt is
    /// missing; an empty page if the label never existed.
    async fn label_history(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>>;

    /// Store an API key record (the hash, never the key). `AlreadyExists` on a hash
    /// collision.
    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord>;

    /// The unrevoked key with that hash, in any project, or `NotFound`.
    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord>;

    /// The keys of a project, revoked ones included, oldest first.
    async fn list_api_keys(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>>;

    /// Revoke a key at once. `NotFound` if missing or of another project.
    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()>;

    /// Store a provider credential under `(project_id, name)`, replacing one of the
    /// same name (keeping its `created_at`); returns what is stored. Validated with
    /// [`ProviderCredential::validate`]; `NotFound` if the project does not exist.
    async fn put_provider_credential(
        &self,
        credential: ProviderCredential,
    ) -> Result<ProviderCredential> {
        let _ = credential;
        Err(Error::unsupported("put_provider_credential"))
    }

    /// The credential of that name in `project`, or `NotFound`.
    async fn get_provider_credential(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<ProviderCredential> {
        let _ = (project, name);
        Err(Error::unsupported("get_provider_credential"))
    }

    /// The credentials of `project`, by name.
    async fn list_provider_credentials(&self, project: Uuid) -> Result<Vec<ProviderCredential>> {
        let _ = project;
        Err(Error::unsupported("list_provider_credentials"))
    }

    /// Delete a credential. `NotFound` if missing.
    async fn delete_provider_credential(&self, project: Uuid, name: &str) -> Result<()> {
        let _ = (project, name);
        Err(Error::unsupported("delete_provider_credential"))
    }

    /// Replace the sealed key of **every** stored credential (all projects) by
    /// `reseal(credential)`, in one transaction: if `reseal` fails for any of them,
    /// nothing is changed and its error is returned. Returns how many were resealed.
    /// (Master key rotation.)
    async fn reseal_provider_credentials(&self, reseal: &crate::credential::Reseal) -> Result<u64> {
        let _ = reseal;
        Err(Error::unsupported("reseal_provider_credentials"))
    }

    /// Set (or, with `None`, clear) how many days `project`'s runs are kept, checked
    /// with [`crate::validate::run_retention_days`]; returns the project as stored.
    /// `NotFound` if the project does not exist.
    async fn set_run_retention(&self, project: Uuid, days: Option<u32>) -> Result<Project> {
        let _ = (project, days);
        Err(Error::unsupported("set_run_retention"))
    }

    /// Every project with a run retention (for the retention task), by id.
    async fn projects_with_retention(&self) -> Result<Vec<Project>> {
        Err(Error::unsupported("projects_with_retention"))
    }

    /// A cheap round trip to the backend (for readiness checks).
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// The server behind this store, when it is a server's (the remote store): a
    /// [`Registry`](crate::Registry) over it executes, queues, logs runs and runs the
    /// authoring aids there (see [`crate::server`]); `None` for a local backend.
    ///
    /// Required, with no default: a wrapper store (a cache, a layer) that forgot to
    /// forward it would make a registry over a server execute locally, silently.
    fn server(&self) -> Option<Arc<dyn crate::server::RegistryServer>>;

    /// Whether this store is the validation layer ([`crate::validated`]), so that it is
    /// not layered twice. Backends keep the default, `false`.
    fn is_validated(&self) -> bool {
        false
    }

    /// The store of idempotency keys on the same database, if the backend has one
    /// (see [`crate::idempotency`]); wrappers (validation, cache) forward it. `None`
    /// (the default, and the remote store's: its server keeps the keys): the HTTP
    /// service keeps them in its own memory.
    fn idempotency(&self) -> Option<Arc<dyn crate::idempotency::IdempotencyStore>> {
        None
    }
}

/// The run log: append runs, update their status, query and aggregate them.
#[async_trait]
pub trait RunLog: Send + Sync + Debug {
    /// Append runs in one transaction: all are stored or none. The runs are already
    /// validated (built by [`crate::NewRun::into_run`]). Once this returns `Ok`, they
    /// are durable.
    async fn insert_runs(&self, runs: &[Run]) -> Result<()>;

    /// Apply an update to a run of `project` atomically (the status transition is
    /// checked against the stored status). `NotFound` if missing, `Conflict` on an
    /// illegal transition.
    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run>;

    /// One run, or `NotFound`.
    async fn get_run(&self, project: Uuid, id: Uuid) -> Result<Run>;

    /// Runs matching `query`, ordered by `(created_at, id)`, keyset-paginated.
    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>>;

    /// Aggregates of a prompt's runs (or of all the project's runs when
    /// `query.prompt` is `None`), one row per (time bucket, group), ordered by bucket
    /// then group (no group first, then by key bytes). One row in all without grouping
    /// or buckets, with zero counts if there are no runs; buckets without runs are
    /// omitted. Percentiles are [`crate::run::percentile_cont`]'s.
    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>>;

    /// Claim up to `limit` pending runs for execution, oldest first, so that no two
    /// workers (in any process) claim the same run; claimed runs become `running`,
    /// their [`Run::attempts`](crate::Run::attempts) goes up by one and their lease
    /// starts (`heartbeat_at` = now). Backends without job support answer
    /// `Unsupported`.
    async fn claim_pending(&self, limit: u32) -> Result<Vec<Run>> {
        let _ = limit;
        Err(Error::unsupported("claim_pending"))
    }

    /// Renew the leases of runs this process is executing: `heartbeat_at` = now for
    /// each run still in the leased attempt and not finished. A run re-queued since
    /// (its lease expired, e.g. during a database outage) but not claimed again is
    /// taken back (`running` again), so a live executor keeps its run. Returns how
    /// many leases were renewed; a lease not renewed is lost (the run finished, or
    /// another attempt claimed it). Backends without job support answer
    /// `Unsupported`.
    async fn heartbeat(&self, leases: &[RunLease]) -> Result<u64> {
        let _ = leases;
        Err(Error::unsupported("heartbeat"))
    }

    /// Put `running` runs whose lease expired — last renewed (or, never renewed,
    /// started) before `lease_expired_before` — back to `pending` (their executor
    /// died: a crash, a restart, a lost connection), so they are claimed again; their
    /// attempt count is kept. Returns how many were re-queued. Live executors renew
    /// their leases ([`RunLog::heartbeat`]) well within the lease, so their runs are
    /// left alone.
    async fn requeue_stale(&self, lease_expired_before: DateTime<Utc>) -> Result<u64> {
        let _ = lease_expired_before;
        Err(Error::unsupported("requeue_stale"))
    }

    /// Delete up to `limit` (at least 1) of `project`'s runs created strictly before
    /// `before` (a run created exactly at `before` is kept), oldest first, whatever
    /// their status, in one short transaction; returns how many were deleted (fewer
    /// than `limit`: none is left). Callers loop to delete more, so that no statement
    /// holds locks for long. Other projects' runs are never touched.
    async fn delete_runs_before(
        &self,
        project: Uuid,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        let _ = (project, before, limit);
        Err(Error::unsupported("delete_runs_before"))
    }

    /// Storage upkeep of the run log for retention, given every project's retention
    /// (see [`PromptStore::projects_with_retention`]) and the time `now`. Postgres
    /// creates the run log's monthly partitions ahead and drops whole partitions whose
    /// every run is older than its project's retention (see the Postgres backend's
    /// documentation); returns how many runs' storage was dropped so (an estimate).
    /// Backends without partitions do nothing (the default): the retention task's
    /// batched [`RunLog::delete_runs_before`] does it all.
    async fn maintain_runs(&self, retention: &[Project], now: DateTime<Utc>) -> Result<u64> {
        let _ = (retention, now);
        Ok(0)
    }

    /// Whether this run log is the validation layer ([`crate::validated`]). Backends
    /// keep the default, `false`.
    fn is_validated(&self) -> bool {
        false
    }
}
