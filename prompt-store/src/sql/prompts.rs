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
use prompt_core::domain::{etag_of, new_id, now};
use prompt_core::page::{Page, PageRequest};
use prompt_core::store::PromptFilter;
use prompt_core::{
    ApiKeyRecord, Error, LabelMove, NewPrompt, NewVersion, Project, Prompt, PromptStore,
    PromptUpdate, PromptVersion, Result, Selector, validate,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, QueryBuilder, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::prompt_sql::{project_not_found_on_fk, prompt_not_found};
use super::store::{begin_write, finish, write};
use super::{SqlStore, is_unique_violation, opt_version};

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
{
    /// A local backend: runs execute in the caller's process.
    fn server(&self) -> Option<std::sync::Arc<dyn prompt_core::RegistryServer>> {
        None
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
        let tags = D::text_list("tags", &new.tags)?;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let id = new_id();
            let at = now();
            let r = sqlx::query(D::prompt_sql().insert_prompt.as_str())
                .bind(id)
                .bind(project)
                .bind(&new.name)
                .bind(&new.description)
                .bind(&tags)
                .bind(D::time(at))
                .execute(&mut *tx)
                .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::already_exists(format!("prompt '{}'", new.name)).into());
                }
                Err(e) => return Err(project_not_found_on_fk(e, project)),
            }
            self.notify(&mut tx, project, &new.name).await?;
            let p = Self::load_prompt(&mut tx, id).await?;
            tx.commit().await?;
            Ok(p)
        })
        .await
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
        let tags = update
            .tags
            .as_ref()
            .map(|t| D::text_list("tags", t))
            .transpose()?;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let row = sqlx::query(D::prompt_sql().lock_revision.as_str())
                .bind(project)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| prompt_not_found(name))?;
            let id: Uuid = row.try_get("id")?;
            let etag = etag_of(id, row.try_get("revision")?);
            if let Some(expected) = if_match
                && expected != etag
                && expected != "*"
            {
                return Err(Error::PreconditionFailed {
                    message: format!("prompt '{name}' has changed; its etag is now {etag}"),
                }
                .into());
            }
            sqlx::query(D::prompt_sql().update_prompt.as_str())
                .bind(update.description.is_some())
                .bind(update.description.clone().flatten())
                .bind(&tags)
                .bind(D::time(now()))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            self.notify(&mut tx, project, name).await?;
            let p = Self::load_prompt(&mut tx, id).await?;
            tx.commit().await?;
            Ok(p)
        })
        .await
    }

    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let r = sqlx::query(D::prompt_sql().archive_prompt.as_str())
                .bind(D::time(now()))
                .bind(project)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            if D::rows_affected(&r) == 0 {
                return Err(prompt_not_found(name).into());
            }
            self.notify(&mut tx, project, name).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn create_version(
        &self,
        project: Uuid,
        name: &str,
        new: NewVersion,
    ) -> Result<PromptVersion> {
        let (new, variables) = new.prepare()?;
        let template = D::json("template", &new.template)?;
        let variables_json = D::json("variables", &variables)?;
        let config = D::json("config", &new.config)?;
        let no_tags = D::text_list("tags", &[])?;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let at = now();
            // Lock the prompt; create it first if it is missing. A prompt we insert is
            // ours until commit; a concurrent creator of the same name makes the insert
            // return nothing, and the lock that follows sees its committed row. A
            // prompt archived in between is simply created again (bounded).
            let mut tries = 0;
            let (prompt_id, latest) = loop {
                if let Some(found) = Self::lock_prompt(&mut tx, project, name).await? {
                    break found;
                }
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
                    .bind(&no_tags)
                    .bind(D::time(at))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| project_not_found_on_fk(e, project))?;
                if let Some(row) = inserted {
                    break (row.try_get("id")?, None);
                }
            };
            let number = latest
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| Error::conflict("too many versions"))?;
            let id = new_id();
            sqlx::query(
                "INSERT INTO prompt_versions (id, prompt_id, version, template, template_format, \
                 variables, config, commit_message, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id)
            .bind(prompt_id)
            .bind(i64::from(number))
            .bind(&template)
            .bind(new.template_format.as_str())
            .bind(&variables_json)
            .bind(&config)
            .bind(&new.commit_message)
            .bind(&new.created_by)
            .bind(D::time(at))
            .execute(&mut *tx)
            .await?;
            for l in &new.labels {
                Self::move_label(
                    &mut tx,
                    prompt_id,
                    name,
                    l,
                    Some(number),
                    prompt_core::LabelExpect::Any,
                    new.created_by.as_deref(),
                    at,
                )
                .await?;
            }
            sqlx::query(
                "UPDATE prompts SET latest_version = $1, revision = revision + $2, updated_at = $3 \
                 WHERE id = $4",
            )
            .bind(i64::from(number))
            .bind(1 + new.labels.len() as i64)
            .bind(D::time(at))
            .bind(prompt_id)
            .execute(&mut *tx)
            .await?;
            self.notify(&mut tx, project, name).await?;
            tx.commit().await?;
            let mut labels = new.labels.clone();
            labels.push(validate::LATEST_LABEL.to_owned());
            labels.sort();
            Ok(PromptVersion {
                id,
                prompt: name.to_owned(),
                prompt_id,
                version: number,
                kind: new.template.kind(),
                template: new.template.clone(),
                template_format: new.template_format,
                variables: variables.clone(),
                config: new.config.clone(),
                labels,
                commit_message: new.commit_message.clone(),
                created_by: new.created_by.clone(),
                created_at: at,
            })
        })
        .await
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
                match Self::version_from_row(&row)? {
                    Some(v) => Ok(v),
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
        expect: prompt_core::LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let (prompt_id, latest) = Self::lock_prompt(&mut tx, project, name)
                .await?
                .ok_or_else(|| prompt_not_found(name))?;
            if latest.is_none_or(|l| version > l) {
                return Err(
                    Error::not_found(format!("version {version} of prompt '{name}'")).into(),
                );
            }
            let at = now();
            let m = Self::move_label(
                &mut tx,
                prompt_id,
                name,
                label,
                Some(version),
                expect,
                actor,
                at,
            )
            .await?;
            Self::touch(&mut tx, prompt_id, 1, at).await?;
            self.notify(&mut tx, project, name).await?;
            tx.commit().await?;
            Ok(m)
        })
        .await
    }

    async fn delete_label(
        &self,
        project: Uuid,
        name: &str,
        label: &str,
        expect: prompt_core::LabelExpect,
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let (prompt_id, _) = Self::lock_prompt(&mut tx, project, name)
                .await?
                .ok_or_else(|| prompt_not_found(name))?;
            let at = now();
            let m =
                Self::move_label(&mut tx, prompt_id, name, label, None, expect, actor, at).await?;
            Self::touch(&mut tx, prompt_id, 1, at).await?;
            self.notify(&mut tx, project, name).await?;
            tx.commit().await?;
            Ok(m)
        })
        .await
    }

    async fn apply_batch(
        &self,
        _project: Uuid,
        _ops: Vec<prompt_core::BatchOp>,
    ) -> std::result::Result<Vec<prompt_core::BatchOutcome>, prompt_core::BatchFailure> {
        Err(Error::unsupported("apply_batch on SQL (being written)").into())
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
