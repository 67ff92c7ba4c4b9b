//! [`PromptStore`] on any SQL dialect: the transaction scripts of prompts, versions
//! and labels, once (their statements, row mappings and shared steps are in
//! [`super::prompt_sql`]; projects and API keys in [`super::projects`], provider
//! credentials in [`super::credentials`]).
//!
//! Concurrency is the same script on both databases: every write that depends on a
//! prompt's current state first reads the prompt's row with [`Dialect::FOR_UPDATE`]
//! inside a write transaction. On Postgres that locks the row until commit (so version
//! numbers are gapless and label moves serialize per prompt); on SQLite the write
//! transaction (`BEGIN IMMEDIATE`) already holds the database's single write lock.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::page::{Page, PageRequest};
use prompt_core::store::PromptFilter;
use prompt_core::{
    ApiKeyRecord, BatchFailure, BatchOp, BatchOutcome, Error, LabelExpect, LabelMove, LabelSplit,
    NewPrompt, NewVersion, Project, Prompt, PromptStore, PromptUpdate, PromptVersion, Result,
    Selector, SplitWeights, validate,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, QueryBuilder, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::prompt_ops::Op;
use super::prompt_sql::prompt_not_found;
use super::store::finish;
use super::{SqlStore, opt_version, split_from_text};

#[async_trait]
impl<D, S> PromptStore for SqlStore<D, S>
where
    D: Dialect<State = S>,
    S: Send + Sync + 'static,
    SqlStore<D, S>: std::fmt::Debug,
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
    SqlStore<D, S>: prompt_core::IdempotencyStore + Clone,
{
    /// A local backend: runs execute in the caller's process.
    fn server(&self) -> Option<std::sync::Arc<dyn prompt_core::RegistryServer>> {
        None
    }

    /// The keys are on the same database (`idempotency_keys`).
    fn idempotency(&self) -> Option<std::sync::Arc<dyn prompt_core::IdempotencyStore>> {
        Some(std::sync::Arc::new(self.clone()))
    }

    async fn create_project(&self, name: &str) -> Result<Project> {
        self.insert_project(name).await
    }

    async fn project_by_name(&self, name: &str) -> Result<Project> {
        self.project_named(name).await
    }

    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        self.project_with_id(id).await
    }

    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt> {
        match self.run_one(project, Op::create_prompt(new)?).await? {
            BatchOutcome::Prompt(p) => Ok(p),
            _ => Err(unexpected()),
        }
    }

    async fn get_prompt(&self, project: Uuid, name: &str) -> Result<Prompt> {
        finish::<D, _>(
            async {
                let row = sqlx::query(D::prompt_sql().get_prompt.as_str())
                    .bind(project)
                    .bind(name)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| prompt_not_found(name))?;
                Self::prompt_from_row(&row)
            }
            .await,
        )
    }

    async fn prompt_by_id(&self, project: Uuid, id: Uuid) -> Result<Prompt> {
        finish::<D, _>(
            async {
                let row = sqlx::query(D::prompt_sql().prompt_by_id.as_str())
                    .bind(id)
                    .bind(project)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("prompt {id}")))?;
                Self::prompt_from_row(&row)
            }
            .await,
        )
    }

    async fn list_prompts(
        &self,
        project: Uuid,
        filter: &PromptFilter,
        page: &PageRequest,
    ) -> Result<Page<Prompt>> {
        let limit = page.limit()?;
        let after: Option<String> = page.position()?;
        let mut q = QueryBuilder::<D>::new(D::prompt_sql().list_prompts.as_str());
        q.push_bind(project);
        if let Some(a) = after {
            q.push(" AND p.name > ").push_bind(a);
        }
        if let Some(t) = &filter.tag {
            D::push_has_tag(&mut q, t);
        }
        if let Some(prefix) = &filter.name_prefix {
            D::push_name_starts_with(&mut q, prefix);
        }
        if let Some(t) = filter.created_after {
            q.push(" AND p.created_at >= ").push_bind(D::time(t));
        }
        if let Some(t) = filter.created_before {
            q.push(" AND p.created_at < ").push_bind(D::time(t));
        }
        q.push(" ORDER BY p.name LIMIT ")
            .push_bind(i64::from(limit) + 1);
        finish::<D, _>(
            async {
                let rows = q.build().fetch_all(&self.reader).await?;
                let items = rows
                    .iter()
                    .map(Self::prompt_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(items, limit, |p| p.name.clone())?)
            }
            .await,
        )
    }

    async fn update_prompt(
        &self,
        project: Uuid,
        name: &str,
        update: PromptUpdate,
        if_match: Option<&str>,
    ) -> Result<Prompt> {
        let op = Op::update_prompt(name, update, if_match.map(str::to_owned))?;
        match self.run_one(project, op).await? {
            BatchOutcome::Prompt(p) => Ok(p),
            _ => Err(unexpected()),
        }
    }

    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()> {
        let op = Op::ArchivePrompt {
            name: name.to_owned(),
        };
        self.run_one(project, op).await.map(|_| ())
    }

    async fn create_version(
        &self,
        project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion> {
        match self
            .run_one(project, Op::create_version(name, new)?)
            .await?
        {
            BatchOutcome::Version(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }

    async fn list_versions(
        &self,
        project: Uuid,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PromptVersion>> {
        let limit = page.limit()?;
        let before: Option<u32> = page.position()?;
        finish::<D, _>(
            async {
                let rows = sqlx::query(D::prompt_sql().list_versions.as_str())
                    .bind(project)
                    .bind(name)
                    .bind(before.map_or(i64::MAX, i64::from))
                    .bind(i64::from(limit) + 1)
                    .fetch_all(&self.reader)
                    .await?;
                if rows.is_empty() {
                    return Err(prompt_not_found(name).into());
                }
                let mut items = Vec::with_capacity(rows.len());
                for r in &rows {
                    items.extend(Self::version_from_row(r)?);
                }
                Ok(Page::from_overfetch(items, limit, |v| v.version)?)
            }
            .await,
        )
    }

    async fn resolve(
        &self,
        project: Uuid,
        name: &str,
        selector: &Selector,
    ) -> Result<PromptVersion> {
        let sql = D::prompt_sql();
        // Parameters are numbered: $1 project, $2 name, $3 label or number.
        let q = match selector {
            Selector::Label(l) if l == validate::LATEST_LABEL => {
                sqlx::query(sql.resolve_latest.as_str())
                    .bind(project)
                    .bind(name)
            }
            Selector::Label(l) => sqlx::query(sql.resolve_by_label.as_str())
                .bind(project)
                .bind(name)
                .bind(l.as_str()),
            Selector::Version(n) => sqlx::query(sql.resolve_by_number.as_str())
                .bind(project)
                .bind(name)
                .bind(i64::from(*n)),
        };
        finish::<D, _>(
            async {
                let row = q
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| prompt_not_found(name))?;
                if row.try_get::<bool, _>("vdeleted")?
                    && let Selector::Version(n) = selector
                {
                    return Err(prompt_core::domain::version_deleted(name, *n).into());
                }
                match Self::version_from_row(&row)? {
                    Some(mut v) => {
                        if let Selector::Label(l) = selector
                            && let Some(weights) =
                                split_from_text("labels.split", row.try_get("lsplit")?)?
                        {
                            v.split = Some(LabelSplit {
                                label: l.clone(),
                                weights,
                            });
                        }
                        Ok(v)
                    }
                    None => Err(selector.not_found(name).into()),
                }
            }
            .await,
        )
    }

    async fn version_by_id(&self, project: Uuid, id: Uuid) -> Result<PromptVersion> {
        finish::<D, _>(
            async {
                let row = sqlx::query(D::prompt_sql().version_by_id.as_str())
                    .bind(id)
                    .bind(project)
                    .fetch_optional(&self.reader)
                    .await?;
                match row {
                    Some(r) => Self::version_from_row(&r)?,
                    None => None,
                }
                .ok_or_else(|| Error::not_found(format!("version {id}")).into())
            }
            .await,
        )
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
        self.move_one(project, name, label, Some(version), None, expect, actor)
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
        let primary = prompt_core::domain::split::primary(weights);
        self.move_one(
            project,
            name,
            label,
            Some(primary),
            Some(weights.clone()),
            expect,
            actor,
        )
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
        self.move_one(project, name, label, None, None, expect, actor)
            .await
    }

    async fn delete_version(
        &self,
        project: Uuid,
        name: &str,
        version: u32,
        actor: Option<&str>,
    ) -> Result<()> {
        let op = Op::DeleteVersion {
            name: name.to_owned(),
            version,
            actor: actor.map(str::to_owned),
        };
        match self.run_one(project, op).await? {
            BatchOutcome::Version(_) => Ok(()),
            _ => Err(unexpected()),
        }
    }

    async fn protected_labels(
        &self,
        project: Uuid,
        defaults: &[String],
    ) -> Result<Vec<prompt_core::ProtectedLabel>> {
        self.list_protected(project, defaults).await
    }

    async fn protect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<(prompt_core::ProtectedLabel, bool)> {
        self.protect(project, label, defaults, actor).await
    }

    async fn unprotect_label(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<()> {
        self.unprotect(project, label, defaults, actor).await
    }

    async fn apply_batch(
        &self,
        project: Uuid,
        ops: Vec<BatchOp>,
    ) -> std::result::Result<Vec<BatchOutcome>, BatchFailure> {
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| Op::from_batch(op).map_err(|e| BatchFailure::at(i, e)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.run_ops(project, &ops).await
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
        let sql = D::prompt_sql();
        let q = match before {
            None => sqlx::query(sql.label_history.as_str()),
            Some(_) => sqlx::query(sql.label_history_after.as_str()),
        }
        .bind(project)
        .bind(name)
        .bind(label)
        .bind(i64::from(limit) + 1);
        let q = match before {
            None => q,
            Some((t, id)) => q.bind(D::time(t)).bind(id),
        };
        finish::<D, _>(
            async {
                let rows = q.fetch_all(&self.reader).await?;
                if rows.is_empty() {
                    return Err(prompt_not_found(name).into());
                }
                let mut items = Vec::with_capacity(rows.len());
                for r in &rows {
                    let Some(id) = r.try_get::<Option<Uuid>, _>("id")? else {
                        continue;
                    };
                    items.push(LabelMove {
                        id,
                        prompt: name.to_owned(),
                        label: label.to_owned(),
                        from_version: opt_version(r.try_get("from_version")?)?,
                        to_version: opt_version(r.try_get("to_version")?)?,
                        moved_by: r.try_get("moved_by")?,
                        moved_at: D::from_time(r.try_get("moved_at")?)?,
                        split: split_from_text("label_moves.split", r.try_get("split")?)?,
                    });
                }
                Ok(Page::from_overfetch(items, limit, |m| (m.moved_at, m.id))?)
            }
            .await,
        )
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        self.insert_api_key(record).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        self.live_key_by_hash(hash).await
    }

    async fn list_api_keys(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        self.api_keys_of(project).await
    }

    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        self.revoke_key(project, id).await
    }

    async fn put_provider_credential(
        &self,
        credential: prompt_core::ProviderCredential,
    ) -> Result<prompt_core::ProviderCredential> {
        self.put_credential(credential).await
    }

    async fn get_provider_credential(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<prompt_core::ProviderCredential> {
        self.get_credential(project, name).await
    }

    async fn list_provider_credentials(
        &self,
        project: Uuid,
    ) -> Result<Vec<prompt_core::ProviderCredential>> {
        self.list_credentials(project).await
    }

    async fn delete_provider_credential(&self, project: Uuid, name: &str) -> Result<()> {
        self.delete_credential(project, name).await
    }

    async fn reseal_provider_credentials(
        &self,
        reseal: &prompt_core::credential::Reseal,
    ) -> Result<u64> {
        self.reseal_credentials(reseal).await
    }

    async fn set_run_retention(&self, project: Uuid, days: Option<u32>) -> Result<Project> {
        self.set_retention(project, days).await
    }

    async fn projects_with_retention(&self) -> Result<Vec<Project>> {
        self.retained_projects().await
    }

    async fn ping(&self) -> Result<()> {
        finish::<D, _>(
            async {
                sqlx::query("SELECT 1").execute(&self.reader).await?;
                Ok(())
            }
            .await,
        )
    }
}

/// The error of an operation whose outcome is of another kind (a bug).
fn unexpected() -> Error {
    Error::internal("a store operation returned the outcome of another kind")
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
    /// One operation in its own transaction.
    async fn run_one(&self, project: Uuid, op: Op<D>) -> Result<BatchOutcome> {
        self.run_ops(project, std::slice::from_ref(&op))
            .await
            .map_err(|f| f.error)?
            .pop()
            .ok_or_else(unexpected)
    }

    /// Move (`Some`) or remove (`None`) a label in its own transaction.
    #[expect(
        clippy::too_many_arguments,
        reason = "the arguments of a label move: where, to what, on what condition, by whom"
    )]
    async fn move_one(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        to: Option<u32>,
        split: Option<SplitWeights>,
        expect: LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        let op = Op::MoveLabel {
            name: name.to_owned(),
            label: label.to_owned(),
            to,
            split,
            expect,
            actor: actor.map(str::to_owned),
        };
        match self.run_one(project, op).await? {
            BatchOutcome::LabelMove(m) => Ok(m),
            _ => Err(unexpected()),
        }
    }
}
