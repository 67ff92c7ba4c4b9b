//! The writes of prompts, versions and labels, once each, for the single-operation
//! methods of [`prompt_core::PromptStore`] and for `apply_batch` alike: an [`Op`] is a
//! write prepared before its transaction (validated, its values encoded), and
//! [`SqlStore::run_ops`] is the one transaction script that applies a list of them,
//! appends their events (with the dependents' events they imply) and commits, all or
//! nothing.
//!
//! One file, just over 600 lines, on purpose: the transaction script and the one body
//! of each prompt write share the `Op` type and its preparation; splitting them would
//! put the script and what it runs in two places.

use std::sync::atomic::{AtomicUsize, Ordering};

use prompt_core::compose;
use prompt_core::domain::{actor, new_id, now, split};
use prompt_core::{
    BatchFailure, BatchOp, BatchOutcome, Error, EventType, LabelExpect, LabelTarget, NewEvent,
    NewPrompt, NewVersion, PromptUpdate, PromptVersion, Result, SplitWeights, check_if_match,
    check_parent_version, validate,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::prompt_sql::{project_not_found_on_fk, prompt_not_found};
use super::store::{begin_write, write};
use super::{Failure, SqlStore, is_unique_violation, split_from_text};

/// A version to create, prepared: validated, its variables found, its JSON encoded.
pub(super) struct PreparedVersion<D: Dialect> {
    new: NewVersion,
    variables: Vec<String>,
    template: D::Json,
    variables_json: D::Json,
    config: D::Json,
    no_tags: D::TextList,
}

/// One prompt write, prepared.
pub(super) enum Op<D: Dialect> {
    /// Create a prompt.
    CreatePrompt { new: NewPrompt, tags: D::TextList },
    /// Update a prompt's description and/or tags.
    UpdatePrompt {
        name: String,
        update: PromptUpdate,
        tags: Option<D::TextList>,
        if_match: Option<String>,
    },
    /// Archive a prompt.
    ArchivePrompt { name: String },
    /// Create a version.
    CreateVersion {
        name: String,
        version: Box<PreparedVersion<D>>,
    },
    /// Delete (tombstone) a version.
    DeleteVersion {
        name: String,
        version: u32,
        actor: Option<String>,
    },
    /// Point a label at a version (`Some`) or remove it (`None`), with a release split
    /// whose primary arm is `to` (`None` ends one).
    MoveLabel {
        name: String,
        label: String,
        to: Option<u32>,
        split: Option<SplitWeights>,
        expect: LabelExpect,
        actor: Option<String>,
    },
}

impl<D: Dialect> Op<D> {
    /// Create prompt `new`.
    pub(super) fn create_prompt(new: NewPrompt) -> Result<Self> {
        let tags = D::text_list("tags", &new.tags)?;
        Ok(Op::CreatePrompt { new, tags })
    }

    /// Update prompt `name`.
    pub(super) fn update_prompt(
        name: &str,
        update: PromptUpdate,
        if_match: Option<String>,
    ) -> Result<Self> {
        let tags = update
            .tags
            .as_ref()
            .map(|t| D::text_list("tags", t))
            .transpose()?;
        Ok(Op::UpdatePrompt {
            name: name.to_owned(),
            update,
            tags,
            if_match,
        })
    }

    /// Create the next version of `name`.
    pub(super) fn create_version(name: &str, new: NewVersion) -> Result<Self> {
        let (new, variables) = new.prepare()?;
        Ok(Op::CreateVersion {
            name: name.to_owned(),
            version: Box::new(PreparedVersion {
                template: D::json("template", &new.template)?,
                variables_json: D::json("variables", &variables)?,
                config: D::json("config", &new.config)?,
                no_tags: D::text_list("tags", &[])?,
                new,
                variables,
            }),
        })
    }

    /// A batch operation (label moves are by the scoped actor).
    pub(super) fn from_batch(op: BatchOp) -> Result<Self> {
        let expect = op.label_expect();
        match op {
            BatchOp::CreatePrompt { prompt } => Self::create_prompt(prompt),
            BatchOp::UpdatePrompt {
                name,
                update,
                if_match,
            } => Self::update_prompt(&name, update, if_match),
            BatchOp::ArchivePrompt { name } => Ok(Op::ArchivePrompt { name }),
            BatchOp::CreateVersion { name, version } => Self::create_version(&name, version),
            BatchOp::SetLabel {
                name,
                label,
                version,
                split,
                ..
            } => {
                let target = LabelTarget::from_wire(version, split)?;
                Ok(Op::MoveLabel {
                    name,
                    label,
                    to: Some(target.version()),
                    split: target.into_split(),
                    expect,
                    actor: actor::current(),
                })
            }
            BatchOp::DeleteLabel { name, label, .. } => Ok(Op::MoveLabel {
                name,
                label,
                to: None,
                split: None,
                expect,
                actor: actor::current(),
            }),
        }
    }

    /// The prompt the operation writes.
    fn name(&self) -> &str {
        match self {
            Op::CreatePrompt { new, .. } => &new.name,
            Op::UpdatePrompt { name, .. }
            | Op::ArchivePrompt { name }
            | Op::CreateVersion { name, .. }
            | Op::DeleteVersion { name, .. }
            | Op::MoveLabel { name, .. } => name,
        }
    }
}

#[expect(
    private_bounds,
    reason = "crate-internal helpers of the generic store: its public surface is the store traits"
)]
impl<D, S> SqlStore<D, S>
where
    D: Dialect<State = S>,
    S: Send + Sync + 'static,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'a> &'a str: ColumnIndex<D::Row>,
    for<'q> Uuid: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> bool: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> Option<D::Time>: Encode<'q, D>,
    for<'q> Option<D::TextList>: Encode<'q, D>,
{
    /// Apply `ops` in one write transaction, in order, append their events and
    /// commit; all or nothing. A failure names the failing operation's index.
    pub(super) async fn run_ops(
        &self,
        project: Uuid,
        ops: &[Op<D>],
    ) -> Result<Vec<BatchOutcome>, BatchFailure> {
        const NONE: usize = usize::MAX;
        let failed_at = AtomicUsize::new(NONE);
        let r = write::<D, _, _, _>(|| async {
            failed_at.store(NONE, Ordering::Relaxed);
            let mut tx = begin_write(&self.writer).await?;
            let mut ev = Vec::new();
            let mut out = Vec::with_capacity(ops.len());
            for (i, op) in ops.iter().enumerate() {
                match self.apply_op(&mut tx, project, op, &mut ev).await {
                    Ok(o) => out.push(o),
                    Err(f) => {
                        failed_at.store(i, Ordering::Relaxed);
                        return Err(f);
                    }
                }
            }
            let mut names: Vec<&str> = ops.iter().map(Op::name).collect();
            names.sort_unstable();
            names.dedup();
            for n in names {
                self.notify(&mut tx, project, n).await?;
            }
            let dependents = self.dependency_events(&mut tx, project, &ev).await?;
            ev.extend(dependents);
            let c = self.append_events(&mut tx, project, ev).await?;
            tx.commit().await?;
            self.committed(c);
            Ok(out)
        })
        .await;
        r.map_err(|error| {
            let i = failed_at.load(Ordering::Relaxed);
            BatchFailure {
                index: (i != NONE).then_some(i),
                error,
            }
        })
    }

    /// Apply one operation: the only body of each prompt write.
    async fn apply_op(
        &self,
        tx: &mut D::Connection,
        project: Uuid,
        op: &Op<D>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<BatchOutcome, Failure> {
        match op {
            Op::CreatePrompt { new, tags } => {
                let id = new_id();
                let r = sqlx::query(D::prompt_sql().insert_prompt.as_str())
                    .bind(id)
                    .bind(project)
                    .bind(&new.name)
                    .bind(&new.description)
                    .bind(tags)
                    .bind(D::time(now()))
                    .execute(&mut *tx)
                    .await;
                match r {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => {
                        return Err(Error::already_exists(format!("prompt '{}'", new.name)).into());
                    }
                    Err(e) => return Err(project_not_found_on_fk(e, project)),
                }
                ev.push(NewEvent::prompt_created(
                    &new.name,
                    new.description.as_deref(),
                    &new.tags,
                ));
                Ok(BatchOutcome::Prompt(Self::load_prompt(tx, id).await?))
            }
            Op::UpdatePrompt {
                name,
                update,
                tags,
                if_match,
            } => {
                let locked = Self::lock_prompt(tx, project, name)
                    .await?
                    .ok_or_else(|| prompt_not_found(name))?;
                check_if_match(name, Some(&locked.etag()), if_match.as_deref())?;
                sqlx::query(D::prompt_sql().update_prompt.as_str())
                    .bind(update.description.is_some())
                    .bind(update.description.clone().flatten())
                    .bind(tags)
                    .bind(D::time(now()))
                    .bind(locked.id)
                    .execute(&mut *tx)
                    .await?;
                ev.push(NewEvent::prompt_updated(name, update));
                Ok(BatchOutcome::Prompt(
                    Self::load_prompt(tx, locked.id).await?,
                ))
            }
            Op::ArchivePrompt { name } => {
                let r = sqlx::query(D::prompt_sql().archive_prompt.as_str())
                    .bind(D::time(now()))
                    .bind(project)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                if D::rows_affected(&r) == 0 {
                    return Err(prompt_not_found(name).into());
                }
                ev.push(NewEvent::prompt_archived(name));
                Ok(BatchOutcome::Archived(name.clone()))
            }
            Op::CreateVersion { name, version } => Ok(BatchOutcome::Version(
                self.insert_version(tx, project, name, version, ev).await?,
            )),
            Op::DeleteVersion {
                name,
                version,
                actor,
            } => Ok(BatchOutcome::Version(
                self.tombstone(tx, project, name, *version, actor.as_deref(), ev)
                    .await?,
            )),
            Op::MoveLabel {
                name,
                label,
                to,
                split,
                expect,
                actor,
            } => {
                let locked = Self::lock_prompt(tx, project, name)
                    .await?
                    .ok_or_else(|| prompt_not_found(name))?;
                if let Some(weights) = split {
                    for &v in weights.keys() {
                        Self::live_version_id(tx, locked.id, name, v)
                            .await
                            .map_err(|f| match f {
                                Failure::App(e) => Failure::App(split::arm_error(e, v)),
                                other => other,
                            })?;
                    }
                } else if let Some(v) = to {
                    Self::live_version_id(tx, locked.id, name, *v).await?;
                }
                let at = now();
                let m = Self::move_label(
                    tx,
                    locked.id,
                    name,
                    label,
                    *to,
                    split.as_ref(),
                    *expect,
                    actor.as_deref(),
                    at,
                )
                .await?;
                Self::touch(tx, locked.id, 1, at).await?;
                ev.push(NewEvent::label_changed(&m));
                Ok(BatchOutcome::LabelMove(m))
            }
        }
    }

    /// The `prompt.dependency_changed` events that the write's events `ev` imply (see
    /// [`compose::dependency_events`]), read in its transaction: nothing is read unless
    /// a label moved or a version was created.
    async fn dependency_events(
        &self,
        tx: &mut D::Connection,
        project: Uuid,
        ev: &[NewEvent],
    ) -> Result<Vec<NewEvent>, Failure> {
        let moves_a_label = ev.iter().any(|e| {
            matches!(
                e.kind,
                EventType::LabelMoved | EventType::LabelRemoved | EventType::VersionCreated
            )
        });
        if !moves_a_label {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(D::prompt_sql().including_versions.as_str())
            .bind(project)
            .fetch_all(&mut *tx)
            .await?;
        let mut including = Vec::with_capacity(rows.len());
        for r in &rows {
            including.extend(Self::version_from_row(r)?);
        }
        Ok(compose::dependency_events(ev, &including))
    }

    /// Create the next version of `name` (and the prompt if it is missing).
    async fn insert_version(
        &self,
        tx: &mut D::Connection,
        project: Uuid,
        name: &str,
        p: &PreparedVersion<D>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<PromptVersion, Failure> {
        let new = &p.new;
        let at = now();
        // Lock the prompt; create it first if it is missing. A prompt we insert is
        // ours until commit; a concurrent creator of the same name makes the insert
        // return nothing, and the lock that follows sees its committed row. A prompt
        // archived in between is simply created again (bounded).
        let mut tries = 0;
        let locked = loop {
            if let Some(found) = Self::lock_prompt(tx, project, name).await? {
                check_if_match(name, Some(&found.etag()), new.if_match.as_deref())?;
                break found;
            }
            check_if_match(name, None, new.if_match.as_deref())?;
            tries += 1;
            if tries > 10 {
                return Err(Error::conflict(format!(
                    "prompt '{name}' keeps being archived while a version is created"
                ))
                .into());
            }
            let inserted = sqlx::query(D::prompt_sql().insert_missing_prompt.as_str())
                .bind(new_id())
                .bind(project)
                .bind(name)
                .bind(&p.no_tags)
                .bind(D::time(at))
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| project_not_found_on_fk(e, project))?;
            if let Some(row) = inserted {
                ev.push(NewEvent::prompt_created(name, None, &[]));
                break super::prompt_sql::Locked {
                    id: row.try_get("id")?,
                    latest: None,
                    revision: 1,
                };
            }
        };
        check_parent_version(name, locked.latest, new.parent_version)?;
        // Past the highest number ever given, deleted versions included: a deleted
        // version's number is never reused (runs still refer to it).
        let highest: Option<i64> =
            sqlx::query("SELECT MAX(version) AS top FROM prompt_versions WHERE prompt_id = $1")
                .bind(locked.id)
                .fetch_one(&mut *tx)
                .await?
                .try_get("top")?;
        let number = super::opt_version(highest)?
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| Error::conflict("too many versions"))?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO prompt_versions (id, prompt_id, version, template, template_format, \
             variables, config, commit_message, created_by, created_at, has_includes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(locked.id)
        .bind(i64::from(number))
        .bind(&p.template)
        .bind(new.template_format.as_str())
        .bind(&p.variables_json)
        .bind(&p.config)
        .bind(&new.commit_message)
        .bind(&new.created_by)
        .bind(D::time(at))
        .bind(compose::has_includes(&new.template))
        .execute(&mut *tx)
        .await?;
        let mut moves = Vec::with_capacity(new.labels.len());
        for l in &new.labels {
            moves.push(
                Self::move_label(
                    tx,
                    locked.id,
                    name,
                    l,
                    Some(number),
                    None,
                    LabelExpect::Any,
                    new.created_by.as_deref(),
                    at,
                )
                .await?,
            );
        }
        sqlx::query(
            "UPDATE prompts SET latest_version = $1, revision = revision + $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(i64::from(number))
        .bind(1 + new.labels.len() as i64)
        .bind(D::time(at))
        .bind(locked.id)
        .execute(&mut *tx)
        .await?;
        let mut labels = new.labels.clone();
        labels.push(validate::LATEST_LABEL.to_owned());
        labels.sort();
        let v = PromptVersion {
            id,
            prompt: name.to_owned(),
            prompt_id: locked.id,
            version: number,
            kind: new.template.kind(),
            template: new.template.clone(),
            template_format: new.template_format,
            variables: p.variables.clone(),
            config: new.config.clone(),
            labels,
            commit_message: new.commit_message.clone(),
            created_by: new.created_by.clone(),
            created_at: at,
            split: None,
        };
        ev.push(NewEvent::version_created(&v));
        ev.extend(moves.iter().map(NewEvent::label_changed));
        Ok(v)
    }

    /// The id of version `n` of the locked prompt `prompt_id` (named `name`):
    /// `NotFound` if it does not exist, or saying it was deleted.
    async fn live_version_id(
        tx: &mut D::Connection,
        prompt_id: Uuid,
        name: &str,
        n: u32,
    ) -> Result<Uuid, Failure> {
        let row = sqlx::query(
            "SELECT id, deleted_at IS NOT NULL AS deleted FROM prompt_versions \
             WHERE prompt_id = $1 AND version = $2",
        )
        .bind(prompt_id)
        .bind(i64::from(n))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("version {n} of prompt '{name}'")))?;
        if row.try_get::<bool, _>("deleted")? {
            return Err(prompt_core::domain::version_deleted(name, n).into());
        }
        Ok(row.try_get("id")?)
    }

    /// Tombstone version `n` of `name` (see [`prompt_core::PromptStore::delete_version`]);
    /// the version as it was.
    async fn tombstone(
        &self,
        tx: &mut D::Connection,
        project: Uuid,
        name: &str,
        n: u32,
        actor: Option<&str>,
        ev: &mut Vec<NewEvent>,
    ) -> Result<PromptVersion, Failure> {
        let locked = Self::lock_prompt(tx, project, name)
            .await?
            .ok_or_else(|| prompt_not_found(name))?;
        let id = Self::live_version_id(tx, locked.id, name, n).await?;
        // Labels on it, and labels whose release split has it as an arm.
        let mut labels: Vec<String> = Vec::new();
        for r in sqlx::query(
            "SELECT label, version, split FROM labels \
             WHERE prompt_id = $1 AND (version = $2 OR split IS NOT NULL) ORDER BY label",
        )
        .bind(locked.id)
        .bind(i64::from(n))
        .fetch_all(&mut *tx)
        .await?
        {
            let on_it = r.try_get::<i64, _>("version")? == i64::from(n);
            let weights: Option<SplitWeights> =
                split_from_text("labels.split", r.try_get("split")?)?;
            if on_it || weights.is_some_and(|w| w.contains_key(&n)) {
                labels.push(r.try_get("label")?);
            }
        }
        if !labels.is_empty() {
            let names: Vec<&str> = labels.iter().map(String::as_str).collect();
            return Err(prompt_core::domain::labels_block_deletion(name, n, &names).into());
        }
        let row = sqlx::query(D::prompt_sql().resolve_by_number.as_str())
            .bind(project)
            .bind(name)
            .bind(i64::from(n))
            .fetch_one(&mut *tx)
            .await?;
        let version = Self::version_from_row(&row)?
            .ok_or_else(|| Error::internal("a locked version vanished"))?;
        let at = now();
        sqlx::query("UPDATE prompt_versions SET deleted_at = $1, deleted_by = $2 WHERE id = $3")
            .bind(D::time(at))
            .bind(actor.map(str::to_owned))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if locked.latest == Some(n) {
            sqlx::query(
                "UPDATE prompts SET latest_version = (SELECT MAX(version) FROM prompt_versions \
                 WHERE prompt_id = $1 AND deleted_at IS NULL) WHERE id = $1",
            )
            .bind(locked.id)
            .execute(&mut *tx)
            .await?;
        }
        Self::touch(tx, locked.id, 1, at).await?;
        ev.push(NewEvent::version_deleted(name, n, version.id, actor));
        Ok(version)
    }
}
