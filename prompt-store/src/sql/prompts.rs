//! [`PromptStore`] on any SQL dialect: every statement, transaction script and row
//! mapping of prompts, versions, labels, projects and API keys, once.
//!
//! Concurrency is the same script on both databases: every write that depends on a
//! prompt's current state first reads the prompt's row with [`Dialect::FOR_UPDATE`]
//! inside a write transaction. On Postgres that locks the row until commit (so version
//! numbers are gapless and label moves serialize per prompt); on SQLite the write
//! transaction (`BEGIN IMMEDIATE`) already holds the database's single write lock.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::model::{etag_of, new_id, now};
use prompt_core::page::{Page, PageRequest};
use prompt_core::store::PromptFilter;
use prompt_core::{
    ApiKeyRecord, Error, KeyRole, LabelMove, NewPrompt, NewVersion, Project, Prompt, PromptStore,
    PromptUpdate, PromptVersion, Result, Selector, Template, TemplateFormat, validate,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, QueryBuilder, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::store::{begin_write, finish, write};
use super::{
    Failure, SqlStore, is_foreign_key_violation, is_unique_violation, opt_version, to_version,
};

/// The statements of this module that contain dialect fragments, built once per
/// dialect (see [`Dialect::prompt_sql`]).
#[derive(Debug)]
pub(crate) struct PromptSql {
    get_prompt: String,
    load_prompt: String,
    list_prompts: String,
    lock_prompt: String,
    lock_revision: String,
    insert_prompt: String,
    insert_missing_prompt: String,
    update_prompt: String,
    archive_prompt: String,
    list_versions: String,
    resolve_by_label: String,
    resolve_latest: String,
    resolve_by_number: String,
    version_by_id: String,
    label_history: String,
    label_history_after: String,
}

impl PromptSql {
    /// The statements in dialect `D`.
    pub(crate) fn new<D: Dialect>() -> Self {
        let live = D::live("");
        let live_p = D::live("p.");
        let (t, f, lock) = (D::TRUE, D::FALSE, D::FOR_UPDATE);
        // A prompt with its labels (a JSON object label → version).
        let prompt_cols = format!(
            "p.id, p.name, p.description, p.tags, p.archived, p.revision, p.latest_version, \
             p.created_at, p.updated_at, {} AS labels",
            D::LABELS_OBJECT
        );
        // A version joined with its prompt, with the labels pointing at it. `vid` is
        // NULL when a LEFT JOIN found no version.
        let version_cols = format!(
            "v.id AS vid, p.id AS prompt_id, p.name AS prompt, v.version, v.template, \
             v.template_format, v.variables, v.config, v.commit_message, v.created_by, \
             v.created_at AS vcreated_at, p.latest_version, {} AS vlabels",
            D::VERSION_LABELS
        );
        // Resolve: the live prompt, LEFT JOINed with the version `target` selects, so
        // that a missing prompt and a missing version differ in one statement.
        let resolve = |join: &str, target: &str| {
            format!(
                "SELECT {version_cols} FROM prompts p {join}\
                 LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = {target} \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p}"
            )
        };
        // Label history: the prompt row always comes back (LEFT JOIN), so a missing
        // prompt differs from a label without history, in one statement.
        let history = |after: &str| {
            format!(
                "SELECT m.id, m.from_version, m.to_version, m.moved_by, m.moved_at \
                 FROM prompts p LEFT JOIN label_moves m \
                 ON m.prompt_id = p.id AND m.label = $3{after} \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p} \
                 ORDER BY m.moved_at DESC, m.id DESC LIMIT $4"
            )
        };
        PromptSql {
            get_prompt: format!(
                "SELECT {prompt_cols} FROM prompts p \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p}"
            ),
            load_prompt: format!("SELECT {prompt_cols} FROM prompts p WHERE p.id = $1"),
            list_prompts: format!(
                "SELECT {prompt_cols} FROM prompts p WHERE {live_p} AND p.project_id = "
            ),
            lock_prompt: format!(
                "SELECT id, latest_version FROM prompts \
                 WHERE project_id = $1 AND name = $2 AND {live}{lock}"
            ),
            lock_revision: format!(
                "SELECT id, revision FROM prompts \
                 WHERE project_id = $1 AND name = $2 AND {live}{lock}"
            ),
            insert_prompt: format!(
                "INSERT INTO prompts (id, project_id, name, description, tags, archived, \
                 revision, latest_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, {f}, 1, NULL, $6, $6)"
            ),
            // ON CONFLICT DO NOTHING waits for a concurrent creator of the same name
            // (Postgres) and then returns no row.
            insert_missing_prompt: format!(
                "INSERT INTO prompts (id, project_id, name, description, tags, archived, \
                 revision, latest_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, NULL, $4, {f}, 1, NULL, $5, $5) \
                 ON CONFLICT (project_id, name) WHERE {live} DO NOTHING RETURNING id"
            ),
            update_prompt: "UPDATE prompts SET \
                            description = CASE WHEN $1 THEN $2 ELSE description END, \
                            tags = COALESCE($3, tags), revision = revision + 1, updated_at = $4 \
                            WHERE id = $5"
                .to_owned(),
            archive_prompt: format!(
                "UPDATE prompts SET archived = {t}, revision = revision + 1, updated_at = $1 \
                 WHERE project_id = $2 AND name = $3 AND {live}"
            ),
            // The prompt row always comes back (LEFT JOIN), so a missing prompt and a
            // page past the end differ, in one statement (one snapshot).
            list_versions: format!(
                "SELECT {version_cols} FROM prompts p \
                 LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version < $3 \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p} \
                 ORDER BY v.version DESC LIMIT $4"
            ),
            // By (project, name, label): the live-name index, the labels primary key,
            // the versions' (prompt_id, version) key — three index probes.
            resolve_by_label: resolve(
                "LEFT JOIN labels l0 ON l0.prompt_id = p.id AND l0.label = $3 ",
                "l0.version",
            ),
            resolve_latest: resolve("", "p.latest_version"),
            resolve_by_number: resolve("", "$3"),
            version_by_id: format!(
                "SELECT {version_cols} FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id \
                 WHERE v.id = $1 AND p.project_id = $2"
            ),
            label_history: history(""),
            label_history_after: history(" AND (m.moved_at, m.id) < ($5, $6)"),
        }
    }
}

fn prompt_not_found(name: &str) -> Error {
    Error::not_found(format!("prompt '{name}'"))
}

/// `NotFound` for the project when `e` is a foreign key violation (the only foreign
/// key of the rows we insert that a caller can get wrong is the project).
fn project_not_found_on_fk(e: sqlx::Error, project: Uuid) -> Failure {
    if is_foreign_key_violation(&e) {
        Error::not_found(format!("project {project}")).into()
    } else {
        e.into()
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
    fn project_from_row(r: &D::Row) -> Result<Project, Failure> {
        Ok(Project {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
        })
    }

    fn prompt_from_row(r: &D::Row) -> Result<Prompt, Failure> {
        let id: Uuid = r.try_get("id")?;
        let latest = opt_version(r.try_get("latest_version")?)?;
        let mut labels: BTreeMap<String, u32> = D::from_json("labels", r.try_get("labels")?)?;
        if let Some(l) = latest {
            labels.insert(validate::LATEST_LABEL.to_owned(), l);
        }
        Ok(Prompt {
            id,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            tags: D::from_text_list("tags", r.try_get("tags")?)?,
            archived: r.try_get("archived")?,
            labels,
            latest_version: latest,
            etag: etag_of(id, r.try_get("revision")?),
            created_at: D::from_time(r.try_get("created_at")?)?,
            updated_at: D::from_time(r.try_get("updated_at")?)?,
        })
    }

    /// A version from `version_cols`; `None` if the LEFT JOIN found none.
    fn version_from_row(r: &D::Row) -> Result<Option<PromptVersion>, Failure> {
        let Some(id) = r.try_get::<Option<Uuid>, _>("vid")? else {
            return Ok(None);
        };
        let number = to_version(r.try_get("version")?)?;
        let template: Template = D::from_json("template", r.try_get("template")?)?;
        let mut labels = D::from_text_list("labels", r.try_get("vlabels")?)?;
        if opt_version(r.try_get("latest_version")?)? == Some(number) {
            labels.push(validate::LATEST_LABEL.to_owned());
        }
        labels.sort();
        Ok(Some(PromptVersion {
            id,
            prompt: r.try_get("prompt")?,
            prompt_id: r.try_get("prompt_id")?,
            version: number,
            kind: template.kind(),
            template,
            template_format: TemplateFormat::parse(&r.try_get::<String, _>("template_format")?)?,
            variables: D::from_json("variables", r.try_get("variables")?)?,
            config: D::from_json("config", r.try_get("config")?)?,
            labels,
            commit_message: r.try_get("commit_message")?,
            created_by: r.try_get("created_by")?,
            created_at: D::from_time(r.try_get("vcreated_at")?)?,
        }))
    }

    fn key_from_row(r: &D::Row) -> Result<ApiKeyRecord, Failure> {
        Ok(ApiKeyRecord {
            id: r.try_get("id")?,
            project_id: r.try_get("project_id")?,
            name: r.try_get("name")?,
            role: KeyRole::parse(&r.try_get::<String, _>("role")?)?,
            prefix: r.try_get("prefix")?,
            hash: r.try_get("hash")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            revoked_at: r
                .try_get::<Option<D::Time>, _>("revoked_at")?
                .map(D::from_time)
                .transpose()?,
        })
    }

    /// The live prompt `name`, locked for the rest of the write transaction: (id,
    /// latest version), or `None`.
    async fn lock_prompt(
        conn: &mut D::Connection,
        project: Uuid,
        name: &str,
    ) -> Result<Option<(Uuid, Option<u32>)>, Failure> {
        let row = sqlx::query(D::prompt_sql().lock_prompt.as_str())
            .bind(project)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(r) => Ok(Some((
                r.try_get("id")?,
                opt_version(r.try_get("latest_version")?)?,
            ))),
            None => Ok(None),
        }
    }

    async fn load_prompt(conn: &mut D::Connection, id: Uuid) -> Result<Prompt, Failure> {
        let row = sqlx::query(D::prompt_sql().load_prompt.as_str())
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        Self::prompt_from_row(&row)
    }

    /// Point `label` at `to` (or delete it with `None`; `NotFound` if it does not
    /// exist) and record the move. The caller holds the prompt's row lock.
    async fn move_label(
        conn: &mut D::Connection,
        prompt_id: Uuid,
        prompt: &str,
        label: &str,
        to: Option<u32>,
        actor: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<LabelMove, Failure> {
        let from: Option<i64> = match to {
            Some(v) => {
                let old =
                    sqlx::query("SELECT version FROM labels WHERE prompt_id = $1 AND label = $2")
                        .bind(prompt_id)
                        .bind(label)
                        .fetch_optional(&mut *conn)
                        .await?;
                sqlx::query(
                    "INSERT INTO labels (prompt_id, label, version, updated_at) \
                     VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (prompt_id, label) DO UPDATE \
                     SET version = excluded.version, updated_at = excluded.updated_at",
                )
                .bind(prompt_id)
                .bind(label)
                .bind(i64::from(v))
                .bind(D::time(at))
                .execute(&mut *conn)
                .await?;
                old.map(|r| r.try_get("version")).transpose()?
            }
            None => {
                let old = sqlx::query(
                    "DELETE FROM labels WHERE prompt_id = $1 AND label = $2 RETURNING version",
                )
                .bind(prompt_id)
                .bind(label)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| Error::not_found(format!("label '{label}' of prompt '{prompt}'")))?;
                Some(old.try_get("version")?)
            }
        };
        let m = LabelMove {
            id: new_id(),
            prompt: prompt.to_owned(),
            label: label.to_owned(),
            from_version: opt_version(from)?,
            to_version: to,
            moved_by: actor.map(str::to_owned),
            moved_at: at,
        };
        sqlx::query(
            "INSERT INTO label_moves (id, prompt_id, label, from_version, to_version, moved_by, \
             moved_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(m.id)
        .bind(prompt_id)
        .bind(label)
        .bind(m.from_version.map(i64::from))
        .bind(m.to_version.map(i64::from))
        .bind(&m.moved_by)
        .bind(D::time(at))
        .execute(&mut *conn)
        .await?;
        Ok(m)
    }

    /// Bump the etag revision (by `n`) and `updated_at` of a prompt.
    async fn touch(
        conn: &mut D::Connection,
        prompt_id: Uuid,
        n: i64,
        at: DateTime<Utc>,
    ) -> Result<(), Failure> {
        sqlx::query("UPDATE prompts SET revision = revision + $1, updated_at = $2 WHERE id = $3")
            .bind(n)
            .bind(D::time(at))
            .bind(prompt_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Tell other instances' caches that prompt `name` changed (on commit).
    async fn notify(
        &self,
        conn: &mut D::Connection,
        project: Uuid,
        name: &str,
    ) -> Result<(), Failure> {
        D::notify_prompt(&self.state, conn, project, name).await
    }
}

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
    async fn create_project(&self, name: &str) -> Result<Project> {
        validate::project_name(name)?;
        write::<D, _, _, _>(|| async {
            let p = Project {
                id: new_id(),
                name: name.to_owned(),
                created_at: now(),
            };
            let r = sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(p.id)
                .bind(&p.name)
                .bind(D::time(p.created_at))
                .execute(&self.writer)
                .await;
            match r {
                Ok(_) => Ok(p),
                Err(e) if is_unique_violation(&e) => {
                    Err(Error::already_exists(format!("project '{name}'")).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn project_by_name(&self, name: &str) -> Result<Project> {
        validate::project_name(name)?;
        finish::<D, _>(
            async {
                let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("project '{name}'")))?;
                Self::project_from_row(&row)
            }
            .await,
        )
    }

    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        finish::<D, _>(
            async {
                let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("project {id}")))?;
                Self::project_from_row(&row)
            }
            .await,
        )
    }

    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt> {
        let new = new.validated()?;
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
        validate::prompt_name(name)?;
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
        validate::prompt_name(name)?;
        let update = update.validated()?;
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
        validate::prompt_name(name)?;
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
        validate::prompt_name(name)?;
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
        validate::prompt_name(name)?;
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
        validate::prompt_name(name)?;
        selector.validate()?;
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
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        validate::prompt_name(name)?;
        validate::settable_label(label)?;
        validate::version_number(version)?;
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
            let m =
                Self::move_label(&mut tx, prompt_id, name, label, Some(version), actor, at).await?;
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
        actor: Option<&str>,
    ) -> Result<LabelMove> {
        validate::prompt_name(name)?;
        validate::settable_label(label)?;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let (prompt_id, _) = Self::lock_prompt(&mut tx, project, name)
                .await?
                .ok_or_else(|| prompt_not_found(name))?;
            let at = now();
            let m = Self::move_label(&mut tx, prompt_id, name, label, None, actor, at).await?;
            Self::touch(&mut tx, prompt_id, 1, at).await?;
            self.notify(&mut tx, project, name).await?;
            tx.commit().await?;
            Ok(m)
        })
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
        write::<D, _, _, _>(|| async {
            let r = sqlx::query(
                "INSERT INTO api_keys (id, project_id, name, role, prefix, hash, created_at, \
                 revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(record.id)
            .bind(record.project_id)
            .bind(&record.name)
            .bind(record.role.as_str())
            .bind(&record.prefix)
            .bind(&record.hash)
            .bind(D::time(record.created_at))
            .bind(record.revoked_at.map(D::time))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(record.clone()),
                Err(e) if is_unique_violation(&e) => Err(Error::already_exists("api key").into()),
                Err(e) => Err(project_not_found_on_fk(e, record.project_id)),
            }
        })
        .await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        finish::<D, _>(
            async {
                let row = sqlx::query(
                    "SELECT id, project_id, name, role, prefix, hash, created_at, revoked_at \
                     FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
                )
                .bind(hash)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found("api key"))?;
                Self::key_from_row(&row)
            }
            .await,
        )
    }

    async fn list_api_keys(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(
                    "SELECT id, project_id, name, role, prefix, hash, created_at, revoked_at \
                     FROM api_keys WHERE project_id = $1 ORDER BY created_at, id",
                )
                .bind(project)
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::key_from_row).collect()
            }
            .await,
        )
    }

    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let r = sqlx::query(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
                 WHERE id = $2 AND project_id = $3",
            )
            .bind(D::time(now()))
            .bind(id)
            .bind(project)
            .execute(&mut *tx)
            .await?;
            if D::rows_affected(&r) == 0 {
                return Err(Error::not_found(format!("api key {id}")).into());
            }
            // Other instances' caches drop their keys when this commits.
            D::notify_keys(&self.state, &mut tx, project).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
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
