//! The in-memory backend: for tests and embedding. Everything lives behind one
//! `RwLock`, so every method is atomic and version numbers are gapless by
//! construction. Nothing survives the process.
//!
//! One file, over 600 lines, on purpose: the whole backend is one lock's state and the
//! trait methods over it; split, every part would reach into the same private state.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::compose;
use prompt_core::domain::{DEFAULT_ORG_ID, etag_of, new_id, now, split_project_ref};
use prompt_core::domain::{LabelSplit, SplitWeights, actor, split};
use prompt_core::page::{Page, PageRequest};
use prompt_core::run::RunPosition;
use prompt_core::store::PromptFilter;
use prompt_core::{
    ApiKeyRecord, BatchFailure, BatchOp, BatchOutcome, Error, EventType, LabelExpect, LabelMove,
    LabelTarget, NewEvent, NewPrompt, NewVersion, Order, Project, Prompt, PromptStore,
    PromptUpdate, PromptVersion, ProtectedLabel, ProviderCredential, Result, Run, RunLease, RunLog,
    RunQuery, RunStats, RunStatus, RunUpdate, Selector, StatsQuery, check_if_match,
    check_parent_version, validate,
};
use uuid::Uuid;

mod feed;
mod idempotency;
mod people;
mod webhooks;

use feed::{Notifier, ProjectLog};
pub use idempotency::MemoryIdempotency;
use people::People;

/// Configuration of the memory backend (it has none yet; kept for the uniform shape of
/// backends).
#[derive(Debug, Clone, Default)]
pub struct MemoryConfig {}

#[derive(Debug, Clone)]
struct PromptRow {
    id: Uuid,
    project: Uuid,
    name: String,
    description: Option<String>,
    tags: Vec<String>,
    archived: bool,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Versions in order, deleted ones included; `versions[i].version == i + 1`.
    versions: Vec<Arc<PromptVersion>>,
    /// Numbers of the deleted versions (tombstones), with when they were deleted.
    deleted: BTreeMap<u32, DateTime<Utc>>,
    /// label → (version, updated_at); `latest` is not stored, it is computed.
    labels: BTreeMap<String, (u32, DateTime<Utc>)>,
    /// label → moves, oldest first.
    history: HashMap<String, Vec<LabelMove>>,
    /// label → its release split (the label's version is the primary arm).
    splits: BTreeMap<String, SplitWeights>,
}

impl PromptRow {
    /// The newest version that is not deleted (what `latest` points at).
    fn latest(&self) -> Option<u32> {
        self.versions
            .iter()
            .rev()
            .map(|v| v.version)
            .find(|n| !self.deleted.contains_key(n))
    }

    /// `NotFound` unless version `n` exists and is not deleted.
    fn check_live(&self, n: u32) -> Result<()> {
        if n as usize > self.versions.len() {
            return Err(Error::not_found(format!(
                "version {n} of prompt '{}'",
                self.name
            )));
        }
        if self.deleted.contains_key(&n) {
            return Err(prompt_core::domain::version_deleted(&self.name, n));
        }
        Ok(())
    }

    fn label_map(&self) -> BTreeMap<String, u32> {
        let mut m: BTreeMap<String, u32> = self
            .labels
            .iter()
            .map(|(k, (v, _))| (k.clone(), *v))
            .collect();
        if let Some(latest) = self.latest() {
            m.insert(validate::LATEST_LABEL.to_owned(), latest);
        }
        m
    }

    fn to_prompt(&self) -> Prompt {
        Prompt {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            archived: self.archived,
            labels: self.label_map(),
            splits: self.splits.clone(),
            latest_version: self.latest(),
            etag: etag_of(self.id, self.revision),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The version with its current labels filled in; `None` if missing or deleted.
    fn version_with_labels(&self, n: u32) -> Option<PromptVersion> {
        if self.deleted.contains_key(&n) {
            return None;
        }
        let v = self.versions.get((n as usize).checked_sub(1)?)?;
        let mut out = PromptVersion::clone(v);
        out.labels = self
            .labels
            .iter()
            .filter(|(_, (ver, _))| *ver == n)
            .map(|(k, _)| k.clone())
            .collect();
        if self.latest() == Some(n) {
            out.labels.push(validate::LATEST_LABEL.to_owned());
            out.labels.sort();
        }
        out.prompt.clone_from(&self.name);
        Some(out)
    }

    fn touch(&mut self, at: DateTime<Utc>) {
        self.revision += 1;
        self.updated_at = at;
    }

    /// Move `label` to `to` (`None`: remove it), carrying `split` (`None` ends one).
    fn move_label(
        &mut self,
        label: &str,
        to: Option<u32>,
        split: Option<SplitWeights>,
        actor: Option<&str>,
        at: DateTime<Utc>,
    ) -> LabelMove {
        match &split {
            Some(s) => self.splits.insert(label.to_owned(), s.clone()),
            None => self.splits.remove(label),
        };
        let from = match to {
            Some(v) => self
                .labels
                .insert(label.to_owned(), (v, at))
                .map(|(v, _)| v),
            None => self.labels.remove(label).map(|(v, _)| v),
        };
        let m = LabelMove {
            id: new_id(),
            prompt: self.name.clone(),
            label: label.to_owned(),
            from_version: from,
            to_version: to,
            moved_by: actor.map(str::to_owned),
            moved_at: at,
            split,
        };
        self.history
            .entry(label.to_owned())
            .or_default()
            .push(m.clone());
        self.touch(at);
        m
    }
}

#[derive(Debug, Default)]
struct State {
    projects: HashMap<Uuid, Project>,
    /// (organization, name) → project.
    project_names: HashMap<(Uuid, String), Uuid>,
    /// Organizations, users and sign-in state.
    people: People,
    /// Webhooks and their delivery logs.
    hooks: webhooks::Hooks,
    prompts: HashMap<Uuid, PromptRow>,
    /// (project, name) → live prompt id, ordered for listing.
    live: BTreeMap<(Uuid, String), Uuid>,
    /// version id → prompt id.
    version_ids: HashMap<Uuid, Uuid>,
    keys: HashMap<Uuid, ApiKeyRecord>,
    key_hashes: HashMap<String, Uuid>,
    /// (project, provider name) → credential.
    credentials: BTreeMap<(Uuid, String), ProviderCredential>,
    /// project → its change log.
    feed: HashMap<Uuid, ProjectLog>,
    /// project → its protected labels; a project is missing until its list is first
    /// used (then seeded with the caller's defaults).
    protected: HashMap<Uuid, BTreeMap<String, ProtectedLabel>>,
}

impl State {
    /// The organization a project reference names and the project's name.
    fn resolve_ref<'r>(&self, reference: &'r str) -> Result<(Uuid, &'r str)> {
        match split_project_ref(reference) {
            (None, name) => Ok((DEFAULT_ORG_ID, name)),
            (Some(org), name) => Ok((self.people.org_named(org)?.id, name)),
        }
    }

    /// Create project `name` in `org` (which exists); `shown` names it in errors.
    fn insert_project(&mut self, org: Uuid, name: &str, shown: &str) -> Result<Project> {
        let key = (org, name.to_owned());
        if self.project_names.contains_key(&key) {
            return Err(Error::already_exists(format!("project '{shown}'")));
        }
        let p = Project {
            id: new_id(),
            org_id: org,
            name: name.to_owned(),
            created_at: now(),
            run_retention_days: None,
        };
        self.project_names.insert(key, p.id);
        self.projects.insert(p.id, p.clone());
        Ok(p)
    }

    /// The protected labels of `project`, seeded with `defaults` on first use.
    fn protected_mut(
        &mut self,
        project: Uuid,
        defaults: &[String],
    ) -> Result<&mut BTreeMap<String, ProtectedLabel>> {
        if !self.projects.contains_key(&project) {
            return Err(Error::not_found(format!("project {project}")));
        }
        Ok(self.protected.entry(project).or_insert_with(|| {
            let at = now();
            defaults
                .iter()
                .map(|l| {
                    let p = ProtectedLabel {
                        label: l.clone(),
                        created_by: None,
                        created_at: at,
                    };
                    (l.clone(), p)
                })
                .collect()
        }))
    }

    /// The `prompt.dependency_changed` events that `events`, about to be appended to
    /// `project`'s log, imply (see [`compose::dependency_events`]); nothing is read
    /// unless a label moved or a version was created.
    fn dependency_events(&self, project: Uuid, events: &[NewEvent]) -> Vec<NewEvent> {
        let moves_a_label = events.iter().any(|e| {
            matches!(
                e.kind,
                EventType::LabelMoved | EventType::LabelRemoved | EventType::VersionCreated
            )
        });
        if !moves_a_label {
            return Vec::new();
        }
        let including: Vec<PromptVersion> = self
            .live
            .range((project, String::new())..)
            .take_while(|((p, _), _)| *p == project)
            .filter_map(|(_, id)| self.prompts.get(id))
            .flat_map(|row| {
                row.versions
                    .iter()
                    .filter(|v| compose::has_includes(&v.template))
                    .filter_map(|v| row.version_with_labels(v.version))
            })
            .collect();
        compose::dependency_events(events, &including)
    }

    fn live_prompt(&self, project: Uuid, name: &str) -> Result<&PromptRow> {
        self.live
            .get(&(project, name.to_owned()))
            .and_then(|id| self.prompts.get(id))
            .ok_or_else(|| prompt_not_found(name))
    }

    fn live_prompt_mut(&mut self, project: Uuid, name: &str) -> Result<&mut PromptRow> {
        let id = *self
            .live
            .get(&(project, name.to_owned()))
            .ok_or_else(|| prompt_not_found(name))?;
        self.prompts
            .get_mut(&id)
            .ok_or_else(|| prompt_not_found(name))
    }

    fn insert_prompt(&mut self, project: Uuid, new: NewPrompt) -> Result<&mut PromptRow> {
        let key = (project, new.name.clone());
        if self.live.contains_key(&key) {
            return Err(Error::already_exists(format!("prompt '{}'", new.name)));
        }
        if !self.projects.contains_key(&project) {
            return Err(Error::not_found(format!("project {project}")));
        }
        let at = now();
        let row = PromptRow {
            id: new_id(),
            project,
            name: new.name,
            description: new.description,
            tags: new.tags,
            archived: false,
            revision: 1,
            created_at: at,
            updated_at: at,
            versions: Vec::new(),
            deleted: BTreeMap::new(),
            labels: BTreeMap::new(),
            history: HashMap::new(),
            splits: BTreeMap::new(),
        };
        let id = row.id;
        self.live.insert(key, id);
        Ok(self.prompts.entry(id).or_insert(row))
    }

    // The prompt writes, once each: the single-operation methods and `apply_batch`
    // run them; each pushes the events it causes onto `ev`.

    fn create_prompt_op(
        &mut self,
        project: Uuid,
        new: NewPrompt,
        ev: &mut Vec<NewEvent>,
    ) -> Result<Prompt> {
        let p = self.insert_prompt(project, new)?.to_prompt();
        ev.push(NewEvent::prompt_created(
            &p.name,
            p.description.as_deref(),
            &p.tags,
        ));
        Ok(p)
    }

    fn update_prompt_op(
        &mut self,
        project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<Prompt> {
        let row = self.live_prompt_mut(project, name)?;
        check_if_match(name, Some(&etag_of(row.id, row.revision)), if_match)?;
        ev.push(NewEvent::prompt_updated(name, &update));
        if let Some(d) = update.description {
            row.description = d;
        }
        if let Some(t) = update.tags {
            row.tags = t;
        }
        row.touch(now());
        Ok(row.to_prompt())
    }

    fn archive_prompt_op(
        &mut self,
        project: Uuid,
        name: &str,
        ev: &mut Vec<NewEvent>,
    ) -> Result<()> {
        let id = self
            .live
            .remove(&(project, name.to_owned()))
            .ok_or_else(|| prompt_not_found(name))?;
        if let Some(row) = self.prompts.get_mut(&id) {
            row.archived = true;
            row.touch(now());
        }
        ev.push(NewEvent::prompt_archived(name));
        Ok(())
    }

    fn create_version_op(
        &mut self,
        project: Uuid,
        name: &str,
        new: NewVersion,
        ev: &mut Vec<NewEvent>,
    ) -> Result<PromptVersion> {
        let (new, variables) = new.prepare()?;
        let row = match self.live_prompt(project, name) {
            Ok(_) => self.live_prompt_mut(project, name)?,
            Err(Error::NotFound { .. }) => {
                check_if_match(name, None, new.if_match.as_deref())?;
                let row = self.insert_prompt(project, NewPrompt::named(name))?;
                ev.push(NewEvent::prompt_created(name, None, &[]));
                row
            }
            Err(e) => return Err(e),
        };
        check_if_match(
            name,
            Some(&etag_of(row.id, row.revision)),
            new.if_match.as_deref(),
        )?;
        check_parent_version(name, row.latest(), new.parent_version)?;
        let at = now();
        let number = u32::try_from(row.versions.len() + 1)
            .map_err(|_| Error::conflict("too many versions"))?;
        let version = PromptVersion {
            id: new_id(),
            prompt: row.name.clone(),
            prompt_id: row.id,
            version: number,
            kind: new.template.kind(),
            template: new.template,
            template_format: new.template_format,
            variables,
            config: new.config,
            labels: Vec::new(),
            commit_message: new.commit_message,
            created_by: new.created_by.clone(),
            created_at: at,
            split: None,
        };
        let (vid, pid) = (version.id, row.id);
        row.versions.push(Arc::new(version));
        let mut moves = Vec::with_capacity(new.labels.len());
        for l in &new.labels {
            moves.push(row.move_label(l, Some(number), None, new.created_by.as_deref(), at));
        }
        row.touch(at);
        let out = row
            .version_with_labels(number)
            .ok_or_else(|| Error::internal("version vanished"))?;
        self.version_ids.insert(vid, pid);
        ev.push(NewEvent::version_created(&out));
        ev.extend(moves.iter().map(NewEvent::label_changed));
        Ok(out)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments of PromptStore::set_label, plus the events"
    )]
    fn set_label_op(
        &mut self,
        project: Uuid,
        name: &str,
        label: &str,
        version: u32,
        expect: LabelExpect,
        actor: Option<&str>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<LabelMove> {
        let row = self.live_prompt_mut(project, name)?;
        row.check_live(version)?;
        expect.check(name, label, row.labels.get(label).map(|(v, _)| *v))?;
        let m = row.move_label(label, Some(version), None, actor, now());
        ev.push(NewEvent::label_changed(&m));
        Ok(m)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments of PromptStore::set_label_split, plus the events"
    )]
    fn set_label_split_op(
        &mut self,
        project: Uuid,
        name: &str,
        label: &str,
        weights: &SplitWeights,
        expect: LabelExpect,
        actor: Option<&str>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<LabelMove> {
        let row = self.live_prompt_mut(project, name)?;
        for &v in weights.keys() {
            row.check_live(v).map_err(|e| split::arm_error(e, v))?;
        }
        expect.check(name, label, row.labels.get(label).map(|(v, _)| *v))?;
        let primary = split::primary(weights);
        let m = row.move_label(label, Some(primary), Some(weights.clone()), actor, now());
        ev.push(NewEvent::label_changed(&m));
        Ok(m)
    }

    fn delete_label_op(
        &mut self,
        project: Uuid,
        name: &str,
        label: &str,
        expect: LabelExpect,
        actor: Option<&str>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<LabelMove> {
        let row = self.live_prompt_mut(project, name)?;
        let Some((current, _)) = row.labels.get(label) else {
            return Err(Error::not_found(format!(
                "label '{label}' of prompt '{name}'"
            )));
        };
        expect.check(name, label, Some(*current))?;
        let m = row.move_label(label, None, None, actor, now());
        ev.push(NewEvent::label_changed(&m));
        Ok(m)
    }

    fn delete_version_op(
        &mut self,
        project: Uuid,
        name: &str,
        version: u32,
        actor: Option<&str>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<PromptVersion> {
        let row = self.live_prompt_mut(project, name)?;
        row.check_live(version)?;
        let labels: Vec<&str> = row
            .labels
            .iter()
            .filter(|(l, (v, _))| {
                *v == version || row.splits.get(*l).is_some_and(|s| s.contains_key(&version))
            })
            .map(|(l, _)| l.as_str())
            .collect();
        if !labels.is_empty() {
            return Err(prompt_core::domain::labels_block_deletion(
                name, version, &labels,
            ));
        }
        let out = row
            .version_with_labels(version)
            .ok_or_else(|| Error::internal("version vanished"))?;
        let at = now();
        row.deleted.insert(version, at);
        row.touch(at);
        ev.push(NewEvent::version_deleted(name, version, out.id, actor));
        Ok(out)
    }

    /// One operation of a batch.
    fn batch_op(
        &mut self,
        project: Uuid,
        op: BatchOp,
        ev: &mut Vec<NewEvent>,
    ) -> Result<BatchOutcome> {
        let expect = op.label_expect();
        Ok(match op {
            BatchOp::CreatePrompt { prompt } => {
                BatchOutcome::Prompt(self.create_prompt_op(project, prompt, ev)?)
            }
            BatchOp::UpdatePrompt {
                name,
                update,
                if_match,
            } => BatchOutcome::Prompt(self.update_prompt_op(
                project,
                &name,
                update,
                if_match.as_deref(),
                ev,
            )?),
            BatchOp::ArchivePrompt { name } => {
                self.archive_prompt_op(project, &name, ev)?;
                BatchOutcome::Archived(name)
            }
            BatchOp::CreateVersion { name, version } => {
                BatchOutcome::Version(self.create_version_op(project, &name, version, ev)?)
            }
            BatchOp::SetLabel {
                name,
                label,
                version,
                split,
                ..
            } => {
                let actor = actor::current();
                BatchOutcome::LabelMove(match LabelTarget::from_wire(version, split)? {
                    LabelTarget::Version(v) => {
                        self.set_label_op(project, &name, &label, v, expect, actor.as_deref(), ev)?
                    }
                    LabelTarget::Split(w) => self.set_label_split_op(
                        project,
                        &name,
                        &label,
                        &w,
                        expect,
                        actor.as_deref(),
                        ev,
                    )?,
                })
            }
            BatchOp::DeleteLabel { name, label, .. } => {
                BatchOutcome::LabelMove(self.delete_label_op(
                    project,
                    &name,
                    &label,
                    expect,
                    actor::current().as_deref(),
                    ev,
                )?)
            }
        })
    }
}

fn prompt_not_found(name: &str) -> Error {
    Error::not_found(format!("prompt '{name}'"))
}

/// Prompt store, run log and people store in memory, with the organization `default`
/// from the start. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<RwLock<State>>,
    runs: Arc<RwLock<RunState>>,
    notifier: Arc<Notifier>,
    idempotency: Arc<MemoryIdempotency>,
}

#[derive(Debug, Default)]
struct RunState {
    /// (project, created_at, id) → run: the keyset order of listings.
    ordered: BTreeMap<(Uuid, DateTime<Utc>, Uuid), Run>,
    /// id → created_at.
    by_id: HashMap<Uuid, DateTime<Utc>>,
}

/// Turn a poisoned lock into an error rather than a panic: a panic while holding the
/// lock cannot leave half-written state (every write builds first, then inserts), but
/// we still refuse to go on silently.
fn poisoned<T>(_: T) -> Error {
    Error::internal("memory store lock poisoned by an earlier panic")
}

impl MemoryStore {
    /// An empty store.
    pub fn new(_config: MemoryConfig) -> Self {
        MemoryStore::default()
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.state.read().map_err(poisoned)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(poisoned)
    }

    /// Append `events` of `project` under the write lock `s`, release it, then wake
    /// subscribers; returns `out`.
    fn commit<T>(
        &self,
        mut s: RwLockWriteGuard<'_, State>,
        project: Uuid,
        mut events: Vec<NewEvent>,
        out: T,
    ) -> T {
        let dependents = s.dependency_events(project, &events);
        events.extend(dependents);
        let c = s.append(project, events);
        drop(s);
        self.notifier.send(c);
        out
    }

    fn runs_read(&self) -> Result<RwLockReadGuard<'_, RunState>> {
        self.runs.read().map_err(poisoned)
    }

    fn runs_write(&self) -> Result<RwLockWriteGuard<'_, RunState>> {
        self.runs.write().map_err(poisoned)
    }

    /// Whether `project` has runs.
    fn has_runs(&self, project: Uuid) -> Result<bool> {
        let lo = (project, DateTime::<Utc>::MIN_UTC, Uuid::nil());
        let hi = (project, DateTime::<Utc>::MAX_UTC, Uuid::max());
        Ok(self.runs_read()?.ordered.range(lo..=hi).next().is_some())
    }
}

#[async_trait]
impl PromptStore for MemoryStore {
    /// A local backend: runs execute in the caller's process.
    fn server(&self) -> Option<Arc<dyn prompt_core::RegistryServer>> {
        None
    }

    fn idempotency(&self) -> Option<Arc<dyn prompt_core::IdempotencyStore>> {
        Some(self.idempotency.clone())
    }

    async fn create_project(&self, name: &str) -> Result<Project> {
        let mut s = self.write()?;
        let (org, short) = s.resolve_ref(name)?;
        s.insert_project(org, short, name)
    }

    async fn project_by_name(&self, name: &str) -> Result<Project> {
        let s = self.read()?;
        let (org, short) = s.resolve_ref(name)?;
        s.project_names
            .get(&(org, short.to_owned()))
            .and_then(|id| s.projects.get(id))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("project '{name}'")))
    }

    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        self.read()?
            .projects
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("project {id}")))
    }

    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt> {
        let mut s = self.write()?;
        let mut ev = Vec::new();
        let p = s.create_prompt_op(project, new, &mut ev)?;
        Ok(self.commit(s, project, ev, p))
    }

    async fn get_prompt(&self, project: Uuid, name: &str) -> Result<Prompt> {
        Ok(self.read()?.live_prompt(project, name)?.to_prompt())
    }

    async fn prompt_by_id(&self, project: Uuid, id: Uuid) -> Result<Prompt> {
        let s = self.read()?;
        s.prompts
            .get(&id)
            .filter(|row| row.project == project && !row.archived)
            .map(PromptRow::to_prompt)
            .ok_or_else(|| Error::not_found(format!("prompt {id}")))
    }

    async fn list_prompts(
        &self,
        project: Uuid,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>> {
        let limit = page.limit()?;
        let after: Option<String> = page.position()?;
        let s = self.read()?;
        let lower = match &after {
            Some(name) => Bound::Excluded((project, name.clone())),
            None => Bound::Included((project, String::new())),
        };
        let mut items = Vec::new();
        for ((p, _), id) in s.live.range((lower, Bound::Unbounded)) {
            if *p != project || items.len() > limit as usize {
                break;
            }
            if let Some(row) = s.prompts.get(id) {
                let prompt = row.to_prompt();
                if filter.matches(&prompt) {
                    items.push(prompt);
                }
            }
        }
        Page::from_overfetch(items, limit, |p| p.name.clone())
    }

    async fn update_prompt(
        &self,
        project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt> {
        let mut s = self.write()?;
        let mut ev = Vec::new();
        let p = s.update_prompt_op(project, name, update, if_match, &mut ev)?;
        Ok(self.commit(s, project, ev, p))
    }

    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()> {
        let mut s = self.write()?;
        let mut ev = Vec::new();
        s.archive_prompt_op(project, name, &mut ev)?;
        self.commit(s, project, ev, ());
        Ok(())
    }

    async fn create_version(
        &self,
        project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion> {
        let mut s = self.write()?;
        let mut ev = Vec::new();
        let v = s.create_version_op(project, name, new, &mut ev)?;
        Ok(self.commit(s, project, ev, v))
    }

    async fn list_versions(
        &self,
        project: Uuid,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>> {
        let limit = page.limit()?;
        let before: Option<u32> = page.position()?;
        let s = self.read()?;
        let row = s.live_prompt(project, name)?;
        let top = before.map_or(row.versions.len() as u32, |b| b.saturating_sub(1));
        let items: Vec<PromptVersion> = (1..=top)
            .rev()
            .filter_map(|n| row.version_with_labels(n))
            .take(limit as usize + 1)
            .collect();
        Page::from_overfetch(items, limit, |v| v.version)
    }

    async fn resolve(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion> {
        let s = self.read()?;
        let row = s.live_prompt(project, name)?;
        let n = match selector {
            Selector::Version(n) => {
                row.check_live(*n)?;
                Some(*n)
            }
            Selector::Label(l) if l == validate::LATEST_LABEL => row.latest(),
            Selector::Label(l) => row.labels.get(l).map(|(v, _)| *v),
        };
        let mut v = n
            .and_then(|n| row.version_with_labels(n))
            .ok_or_else(|| selector.not_found(name))?;
        if let Selector::Label(l) = selector {
            v.split = row.splits.get(l).map(|w| LabelSplit {
                label: l.clone(),
                weights: w.clone(),
            });
        }
        Ok(v)
    }

    async fn version_by_id(&self, project: Uuid, id: Uuid) -> Result<PromptVersion> {
        let s = self.read()?;
        let missing = || Error::not_found(format!("version {id}"));
        let row = s
            .version_ids
            .get(&id)
            .and_then(|pid| s.prompts.get(pid))
            .filter(|row| row.project == project)
            .ok_or_else(missing)?;
        let n = row
            .versions
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.version)
            .ok_or_else(missing)?;
        row.version_with_labels(n).ok_or_else(missing)
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
        let mut s = self.write()?;
        let mut ev = Vec::new();
        let m = s.set_label_op(project, name, label, version, expect, actor, &mut ev)?;
        Ok(self.commit(s, project, ev, m))
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
        let mut s = self.write()?;
        let mut ev = Vec::new();
        let m = s.set_label_split_op(project, name, label, weights, expect, actor, &mut ev)?;
        Ok(self.commit(s, project, ev, m))
    }

    async fn delete_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        let mut s = self.write()?;
        let mut ev = Vec::new();
        let m = s.delete_label_op(project, name, label, expect, actor, &mut ev)?;
        Ok(self.commit(s, project, ev, m))
    }

    async fn delete_version(
        &self,
        project: Uuid,
        name: &str,
        version: u32,
        actor: Option<&str>,
    ) -> Result<()> {
        let mut s = self.write()?;
        let mut ev = Vec::new();
        s.delete_version_op(project, name, version, actor, &mut ev)?;
        self.commit(s, project, ev, ());
        Ok(())
    }

    async fn protected_labels(
        &self,
        project: Uuid,
        defaults: &[String],
    ) -> Result<Vec<ProtectedLabel>> {
        let mut s = self.write()?;
        Ok(s.protected_mut(project, defaults)?
            .values()
            .cloned()
            .collect())
    }

    async fn protect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<(ProtectedLabel, bool)> {
        let mut s = self.write()?;
        let list = s.protected_mut(project, defaults)?;
        if let Some(p) = list.get(label) {
            return Ok((p.clone(), false));
        }
        let p = ProtectedLabel {
            label: label.to_owned(),
            created_by: actor.map(str::to_owned),
            created_at: now(),
        };
        list.insert(label.to_owned(), p.clone());
        let ev = vec![NewEvent::protected_label(label, true, actor)];
        Ok(self.commit(s, project, ev, (p, true)))
    }

    async fn unprotect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<()> {
        let mut s = self.write()?;
        s.protected_mut(project, defaults)?
            .remove(label)
            .ok_or_else(|| Error::not_found(format!("protected label '{label}'")))?;
        let ev = vec![NewEvent::protected_label(label, false, actor)];
        self.commit(s, project, ev, ());
        Ok(())
    }

    /// All or nothing: the prompts' state is saved first and put back if an
    /// operation fails (the memory store has no transactions).
    async fn apply_batch(
        &self,
        project: Uuid,
        ops: Vec<BatchOp>,
    ) -> std::result::Result<Vec<BatchOutcome>, BatchFailure> {
        let mut s = self.write()?;
        if !s.projects.contains_key(&project) {
            return Err(Error::not_found(format!("project {project}")).into());
        }
        let saved = (s.prompts.clone(), s.live.clone(), s.version_ids.clone());
        let mut ev = Vec::new();
        let mut out = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            match s.batch_op(project, op, &mut ev) {
                Ok(o) => out.push(o),
                Err(e) => {
                    (s.prompts, s.live, s.version_ids) = saved;
                    return Err(BatchFailure::at(i, e));
                }
            }
        }
        Ok(self.commit(s, project, ev, out))
    }

    async fn label_history(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        page: &PageRequest,
    ) -> Result<Page<LabelMove>> {
        let limit = page.limit()?;
        let before: Option<(DateTime<Utc>, Uuid)> = page.position()?;
        let s = self.read()?;
        let row = s.live_prompt(project, name)?;
        let items: Vec<LabelMove> = row
            .history
            .get(label)
            .map(|moves| {
                moves
                    .iter()
                    .rev()
                    .filter(|m| before.is_none_or(|b| (m.moved_at, m.id) < b))
                    .take(limit as usize + 1)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Page::from_overfetch(items, limit, |m| (m.moved_at, m.id))
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        let mut s = self.write()?;
        if !s.projects.contains_key(&record.project_id) {
            return Err(Error::not_found(format!("project {}", record.project_id)));
        }
        if s.key_hashes.contains_key(&record.hash) || s.keys.contains_key(&record.id) {
            return Err(Error::already_exists("api key"));
        }
        s.key_hashes.insert(record.hash.clone(), record.id);
        s.keys.insert(record.id, record.clone());
        let ev = vec![NewEvent::api_key_created(&record)];
        Ok(self.commit(s, record.project_id, ev, record))
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        let s = self.read()?;
        s.key_hashes
            .get(hash)
            .and_then(|id| s.keys.get(id))
            .filter(|k| k.revoked_at.is_none())
            .cloned()
            .ok_or_else(|| Error::not_found("api key"))
    }

    async fn list_api_keys(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        let s = self.read()?;
        let mut keys: Vec<ApiKeyRecord> = s
            .keys
            .values()
            .filter(|k| k.project_id == project)
            .cloned()
            .collect();
        keys.sort_by_key(|k| (k.created_at, k.id));
        Ok(keys)
    }

    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        let mut s = self.write()?;
        match s.keys.get_mut(&id) {
            Some(k) if k.project_id == project => {
                let mut ev = Vec::new();
                if k.revoked_at.is_none() {
                    k.revoked_at = Some(now());
                    ev.push(NewEvent::api_key_revoked(id));
                }
                self.commit(s, project, ev, ());
                Ok(())
            }
            _ => Err(Error::not_found(format!("api key {id}"))),
        }
    }

    async fn put_provider_credential(
        &self,
        mut credential: ProviderCredential,
    ) -> Result<ProviderCredential> {
        let mut s = self.write()?;
        if !s.projects.contains_key(&credential.project_id) {
            return Err(Error::not_found(format!(
                "project {}",
                credential.project_id
            )));
        }
        let key = (credential.project_id, credential.name.clone());
        if let Some(old) = s.credentials.get(&key) {
            credential.created_at = old.created_at;
        }
        s.credentials.insert(key, credential.clone());
        let ev = vec![NewEvent::credential_put(&credential)];
        Ok(self.commit(s, credential.project_id, ev, credential))
    }

    async fn get_provider_credential(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<ProviderCredential> {
        self.read()?
            .credentials
            .get(&(project, name.to_owned()))
            .cloned()
            .ok_or_else(|| credential_not_found(name))
    }

    async fn list_provider_credentials(&self, project: Uuid) -> Result<Vec<ProviderCredential>> {
        Ok(self
            .read()?
            .credentials
            .range((project, String::new())..)
            .take_while(|((p, _), _)| *p == project)
            .map(|(_, c)| c.clone())
            .collect())
    }

    async fn delete_provider_credential(&self, project: Uuid, name: &str) -> Result<()> {
        let mut s = self.write()?;
        s.credentials
            .remove(&(project, name.to_owned()))
            .ok_or_else(|| credential_not_found(name))?;
        let ev = vec![NewEvent::credential_deleted(name)];
        self.commit(s, project, ev, ());
        Ok(())
    }

    async fn reseal_provider_credentials(
        &self,
        reseal: &prompt_core::credential::Reseal,
    ) -> Result<u64> {
        let mut s = self.write()?;
        // Compute every new value first: a failure leaves everything as it was.
        let mut sealed = Vec::with_capacity(s.credentials.len());
        for (k, c) in &s.credentials {
            sealed.push((k.clone(), reseal(c)?));
        }
        for (k, v) in &sealed {
            if let Some(c) = s.credentials.get_mut(k) {
                c.sealed_api_key.clone_from(v);
            }
        }
        Ok(sealed.len() as u64)
    }

    async fn set_run_retention(&self, project: Uuid, days: Option<u32>) -> Result<Project> {
        let mut s = self.write()?;
        let p = s
            .projects
            .get_mut(&project)
            .ok_or_else(|| Error::not_found(format!("project {project}")))?;
        p.run_retention_days = days;
        Ok(p.clone())
    }

    async fn projects_with_retention(&self) -> Result<Vec<Project>> {
        let s = self.read()?;
        let mut out: Vec<Project> = s
            .projects
            .values()
            .filter(|p| p.run_retention_days.is_some())
            .cloned()
            .collect();
        out.sort_by_key(|p| p.id);
        Ok(out)
    }
}

fn credential_not_found(name: &str) -> Error {
    Error::not_found(format!("provider '{name}'"))
}

#[async_trait]
impl RunLog for MemoryStore {
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        let mut s = self.runs_write()?;
        let mut batch = std::collections::HashSet::with_capacity(runs.len());
        // A duplicate of a stored run, or twice the same id in the batch: none stored.
        if let Some(dup) = runs
            .iter()
            .find(|r| s.by_id.contains_key(&r.id) || !batch.insert(r.id))
        {
            return Err(Error::already_exists(format!("run {}", dup.id)));
        }
        for r in runs {
            s.by_id.insert(r.id, r.created_at);
            s.ordered
                .insert((r.project_id, r.created_at, r.id), r.clone());
        }
        Ok(())
    }

    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        let mut s = self.runs_write()?;
        let missing = || Error::not_found(format!("run {id}"));
        let created = *s.by_id.get(&id).ok_or_else(missing)?;
        let run = s
            .ordered
            .get_mut(&(project, created, id))
            .ok_or_else(missing)?;
        let mut next = run.clone();
        update.apply(&mut next)?;
        *run = next.clone();
        Ok(next)
    }

    async fn get_run(&self, project: Uuid, id: Uuid) -> Result<Run> {
        let s = self.runs_read()?;
        s.by_id
            .get(&id)
            .and_then(|c| s.ordered.get(&(project, *c, id)))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("run {id}")))
    }

    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        let limit = query.page.limit()?;
        let pos: Option<RunPosition> = query.page.position()?;
        let s = self.runs_read()?;
        let lo = (project, DateTime::<Utc>::MIN_UTC, Uuid::nil());
        let hi = (project, DateTime::<Utc>::MAX_UTC, Uuid::max());
        let range = match (query.order, pos) {
            (Order::Desc, Some((t, id))) => {
                (Bound::Included(lo), Bound::Excluded((project, t, id)))
            }
            (Order::Asc, Some((t, id))) => (Bound::Excluded((project, t, id)), Bound::Included(hi)),
            (_, None) => (Bound::Included(lo), Bound::Included(hi)),
        };
        let iter = s.ordered.range(range).map(|(_, r)| r);
        let take = limit as usize + 1;
        let items: Vec<Run> = match query.order {
            Order::Desc => iter
                .rev()
                .filter(|r| query.matches(r))
                .take(take)
                .cloned()
                .collect(),
            Order::Asc => iter
                .filter(|r| query.matches(r))
                .take(take)
                .cloned()
                .collect(),
        };
        Page::from_overfetch(items, limit, |r| (r.created_at, r.id))
    }

    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        let s = self.runs_read()?;
        // Keyed by (bucket, group): the map's order is the answer's.
        let mut groups = prompt_core::run::StatsGroups::new();
        let lo = (
            project,
            query.since.unwrap_or(DateTime::<Utc>::MIN_UTC),
            Uuid::nil(),
        );
        let hi = (project, DateTime::<Utc>::MAX_UTC, Uuid::max());
        for r in s.ordered.range(lo..=hi).map(|(_, r)| r) {
            if !query.matches(r) {
                continue;
            }
            groups
                .entry((query.bucket_of(r), query.group_of(r)))
                .or_default()
                .add_run(r);
        }
        Ok(prompt_core::run::stats_rows(groups, query))
    }

    async fn claim_pending(&self, limit: u32) -> Result<Vec<Run>> {
        let mut s = self.runs_write()?;
        let mut claimed = Vec::new();
        let at = now();
        for run in s.ordered.values_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            if run.status == RunStatus::Pending {
                run.status = RunStatus::Running;
                run.started_at = Some(at);
                run.heartbeat_at = Some(at);
                run.attempts = run.attempts.saturating_add(1);
                claimed.push(run.clone());
            }
        }
        Ok(claimed)
    }

    async fn heartbeat(&self, leases: &[RunLease]) -> Result<u64> {
        let mut s = self.runs_write()?;
        let at = now();
        let mut n = 0;
        for lease in leases {
            let Some(created) = s.by_id.get(&lease.id).copied() else {
                continue;
            };
            if let Some(run) = s.ordered.get_mut(&(lease.project, created, lease.id))
                && run.attempts == lease.attempt
                && !run.status.is_terminal()
            {
                run.status = RunStatus::Running;
                run.started_at.get_or_insert(at);
                run.heartbeat_at = Some(at);
                n += 1;
            }
        }
        Ok(n)
    }

    async fn requeue_stale(&self, lease_expired_before: DateTime<Utc>) -> Result<u64> {
        let mut s = self.runs_write()?;
        let mut n = 0;
        for run in s.ordered.values_mut() {
            if run.status == RunStatus::Running
                && run
                    .heartbeat_at
                    .or(run.started_at)
                    .is_none_or(|t| t < lease_expired_before)
            {
                run.status = RunStatus::Pending;
                run.started_at = None;
                run.heartbeat_at = None;
                n += 1;
            }
        }
        Ok(n)
    }
    async fn delete_runs_before(
        &self,
        project: Uuid,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        let mut s = self.runs_write()?;
        // The keyset order (project, created_at, id) is oldest first within a project.
        let doomed: Vec<(Uuid, DateTime<Utc>, Uuid)> = s
            .ordered
            .range((project, DateTime::<Utc>::MIN_UTC, Uuid::nil())..(project, before, Uuid::nil()))
            .map(|(k, _)| *k)
            .take(limit as usize)
            .collect();
        for k in &doomed {
            s.ordered.remove(k);
            s.by_id.remove(&k.2);
        }
        Ok(doomed.len() as u64)
    }
}
