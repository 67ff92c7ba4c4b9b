//! [`PromptStore`] on SQLite.

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
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::error::{is_foreign_key_violation, is_unique_violation};
use super::{SqliteStore, finish, micros, opt_time, time, write};
use crate::sql::{Failure, from_json, opt_version, to_json, to_version};

/// The columns of a prompt with its labels (a JSON object label → version).
macro_rules! prompt_cols {
    () => {
        "p.id, p.name, p.description, p.tags, p.archived, p.revision, p.latest_version, \
         p.created_at, p.updated_at, \
         (SELECT json_group_object(l.label, l.version) FROM labels l WHERE l.prompt_id = p.id) \
         AS labels"
    };
}

/// The columns of a version joined with its prompt, with the labels pointing at it.
/// `vid` is NULL when a LEFT JOIN found no version.
macro_rules! version_cols {
    () => {
        "v.id AS vid, p.id AS prompt_id, p.name AS prompt, v.version, v.template, \
         v.template_format, v.variables, v.config, v.commit_message, v.created_by, \
         v.created_at AS vcreated_at, p.latest_version, \
         (SELECT json_group_array(l.label) FROM labels l \
          WHERE l.prompt_id = v.prompt_id AND l.version = v.version) AS vlabels"
    };
}

/// Resolve: the live prompt, LEFT JOINed with the version `$target` selects.
macro_rules! resolve_sql {
    ($target:literal) => {
        concat!(
            "SELECT ",
            version_cols!(),
            " FROM prompts p LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = ",
            $target,
            " WHERE p.project_id = ?1 AND p.name = ?2 AND p.archived = 0"
        )
    };
}

const RESOLVE_BY_LABEL: &str =
    resolve_sql!("(SELECT l2.version FROM labels l2 WHERE l2.prompt_id = p.id AND l2.label = ?3)");
const RESOLVE_LATEST: &str = resolve_sql!("p.latest_version");
const RESOLVE_BY_NUMBER: &str = resolve_sql!("?3");

fn prompt_not_found(name: &str) -> Error {
    Error::not_found(format!("prompt '{name}'"))
}

fn prompt_from_row(r: &SqliteRow) -> Result<Prompt, Failure> {
    let id: Uuid = r.try_get("id")?;
    let latest = opt_version(r.try_get("latest_version")?)?;
    let mut labels: BTreeMap<String, u32> =
        from_json("labels", &r.try_get::<String, _>("labels")?)?;
    if let Some(l) = latest {
        labels.insert(validate::LATEST_LABEL.to_owned(), l);
    }
    Ok(Prompt {
        id,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        tags: from_json("tags", &r.try_get::<String, _>("tags")?)?,
        archived: r.try_get("archived")?,
        labels,
        latest_version: latest,
        etag: etag_of(id, r.try_get("revision")?),
        created_at: time(r.try_get("created_at")?)?,
        updated_at: time(r.try_get("updated_at")?)?,
    })
}

/// A version from [`version_cols`]; `None` if the LEFT JOIN found none.
fn version_from_row(r: &SqliteRow) -> Result<Option<PromptVersion>, Failure> {
    let Some(id) = r.try_get::<Option<Uuid>, _>("vid")? else {
        return Ok(None);
    };
    let number = to_version(r.try_get("version")?)?;
    let template: Template = from_json("template", &r.try_get::<String, _>("template")?)?;
    let mut labels: Vec<String> = from_json("labels", &r.try_get::<String, _>("vlabels")?)?;
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
        variables: from_json("variables", &r.try_get::<String, _>("variables")?)?,
        config: from_json("config", &r.try_get::<String, _>("config")?)?,
        labels,
        commit_message: r.try_get("commit_message")?,
        created_by: r.try_get("created_by")?,
        created_at: time(r.try_get("vcreated_at")?)?,
    }))
}

fn key_from_row(r: &SqliteRow) -> Result<ApiKeyRecord, Failure> {
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        role: KeyRole::parse(&r.try_get::<String, _>("role")?)?,
        prefix: r.try_get("prefix")?,
        hash: r.try_get("hash")?,
        created_at: time(r.try_get("created_at")?)?,
        revoked_at: opt_time(r.try_get("revoked_at")?)?,
    })
}

/// The live prompt `name`: (id, latest version).
async fn live_prompt(
    conn: &mut SqliteConnection,
    project: Uuid,
    name: &str,
) -> Result<(Uuid, Option<u32>), Failure> {
    let row = sqlx::query(
        "SELECT id, latest_version FROM prompts \
         WHERE project_id = ?1 AND name = ?2 AND archived = 0",
    )
    .bind(project)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| prompt_not_found(name))?;
    Ok((
        row.try_get("id")?,
        opt_version(row.try_get("latest_version")?)?,
    ))
}

async fn load_prompt(conn: &mut SqliteConnection, id: Uuid) -> Result<Prompt, Failure> {
    let row = sqlx::query(concat!(
        "SELECT ",
        prompt_cols!(),
        " FROM prompts p WHERE p.id = ?1"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    prompt_from_row(&row)
}

/// Insert a prompt; `AlreadyExists` if a live one has the name, `NotFound` if the
/// project does not exist.
async fn insert_prompt(
    conn: &mut SqliteConnection,
    project: Uuid,
    new: &NewPrompt,
    at: DateTime<Utc>,
) -> Result<Uuid, Failure> {
    let id = new_id();
    let r = sqlx::query(
        "INSERT INTO prompts (id, project_id, name, description, tags, archived, revision, \
         latest_version, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, 1, NULL, ?6, ?6)",
    )
    .bind(id)
    .bind(project)
    .bind(&new.name)
    .bind(&new.description)
    .bind(to_json("tags", &new.tags)?)
    .bind(micros(at))
    .execute(&mut *conn)
    .await;
    match r {
        Ok(_) => Ok(id),
        Err(e) if is_unique_violation(&e) => {
            Err(Error::already_exists(format!("prompt '{}'", new.name)).into())
        }
        Err(e) if is_foreign_key_violation(&e) => {
            Err(Error::not_found(format!("project {project}")).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Point `label` at `to` (or delete it with `None`) and record the move.
async fn move_label(
    conn: &mut SqliteConnection,
    prompt_id: Uuid,
    prompt: &str,
    label: &str,
    to: Option<u32>,
    actor: Option<&str>,
    at: DateTime<Utc>,
) -> Result<LabelMove, Failure> {
    let from: Option<i64> =
        sqlx::query_scalar("SELECT version FROM labels WHERE prompt_id = ?1 AND label = ?2")
            .bind(prompt_id)
            .bind(label)
            .fetch_optional(&mut *conn)
            .await?;
    match to {
        Some(v) => {
            sqlx::query(
                "INSERT INTO labels (prompt_id, label, version, updated_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (prompt_id, label) DO UPDATE \
                 SET version = excluded.version, updated_at = excluded.updated_at",
            )
            .bind(prompt_id)
            .bind(label)
            .bind(i64::from(v))
            .bind(micros(at))
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM labels WHERE prompt_id = ?1 AND label = ?2")
                .bind(prompt_id)
                .bind(label)
                .execute(&mut *conn)
                .await?;
        }
    }
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
        "INSERT INTO label_moves (id, prompt_id, label, from_version, to_version, moved_by, moved_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(m.id)
    .bind(prompt_id)
    .bind(label)
    .bind(m.from_version.map(i64::from))
    .bind(m.to_version.map(i64::from))
    .bind(&m.moved_by)
    .bind(micros(at))
    .execute(&mut *conn)
    .await?;
    Ok(m)
}

/// Bump the etag revision (by `n`) and `updated_at` of a prompt.
async fn touch(
    conn: &mut SqliteConnection,
    prompt_id: Uuid,
    n: i64,
    at: DateTime<Utc>,
) -> Result<(), Failure> {
    sqlx::query("UPDATE prompts SET revision = revision + ?1, updated_at = ?2 WHERE id = ?3")
        .bind(n)
        .bind(micros(at))
        .bind(prompt_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl PromptStore for SqliteStore {
    async fn create_project(&self, name: &str) -> Result<Project> {
        validate::project_name(name)?;
        write(|| async {
            let p = Project {
                id: new_id(),
                name: name.to_owned(),
                created_at: now(),
            };
            let r = sqlx::query("INSERT INTO projects (id, name, created_at) VALUES (?1, ?2, ?3)")
                .bind(p.id)
                .bind(&p.name)
                .bind(micros(p.created_at))
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
        finish(
            async {
                let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE name = ?1")
                    .bind(name)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("project '{name}'")))?;
                Ok(Project {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: time(row.try_get("created_at")?)?,
                })
            }
            .await,
        )
    }

    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        finish(
            async {
                let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = ?1")
                    .bind(id)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("project {id}")))?;
                Ok(Project {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: time(row.try_get("created_at")?)?,
                })
            }
            .await,
        )
    }

    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt> {
        let new = new.validated()?;
        write(|| async {
            let mut tx = self.begin_write().await?;
            let id = insert_prompt(&mut tx, project, &new, now()).await?;
            let p = load_prompt(&mut tx, id).await?;
            tx.commit().await?;
            Ok(p)
        })
        .await
    }

    async fn get_prompt(&self, project: Uuid, name: &str) -> Result<Prompt> {
        validate::prompt_name(name)?;
        finish(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    prompt_cols!(),
                    " FROM prompts p WHERE p.project_id = ?1 AND p.name = ?2 AND p.archived = 0"
                ))
                .bind(project)
                .bind(name)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| prompt_not_found(name))?;
                prompt_from_row(&row)
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
        let mut q = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            prompt_cols!(),
            " FROM prompts p WHERE p.archived = 0 AND p.project_id = "
        ));
        q.push_bind(project);
        if let Some(a) = after {
            q.push(" AND p.name > ").push_bind(a);
        }
        if let Some(t) = &filter.tag {
            q.push(" AND EXISTS (SELECT 1 FROM json_each(p.tags) WHERE json_each.value = ")
                .push_bind(t.clone())
                .push(")");
        }
        if let Some(prefix) = &filter.name_prefix {
            // Literal prefix: compare the leading characters, no LIKE patterns.
            q.push(" AND substr(p.name, 1, ")
                .push_bind(prefix.chars().count() as i64)
                .push(") = ")
                .push_bind(prefix.clone());
        }
        if let Some(t) = filter.created_after {
            q.push(" AND p.created_at >= ").push_bind(micros(t));
        }
        if let Some(t) = filter.created_before {
            q.push(" AND p.created_at < ").push_bind(micros(t));
        }
        q.push(" ORDER BY p.name LIMIT ")
            .push_bind(i64::from(limit) + 1);
        finish(
            async {
                let rows = q.build().fetch_all(&self.reader).await?;
                let items = rows
                    .iter()
                    .map(prompt_from_row)
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
        write(|| async {
            let mut tx = self.begin_write().await?;
            let row = sqlx::query(
                "SELECT id, revision FROM prompts WHERE project_id = ?1 AND name = ?2 AND archived = 0",
            )
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
            if let Some(d) = &update.description {
                sqlx::query("UPDATE prompts SET description = ?1 WHERE id = ?2")
                    .bind(d)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(t) = &update.tags {
                sqlx::query("UPDATE prompts SET tags = ?1 WHERE id = ?2")
                    .bind(to_json("tags", t)?)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            touch(&mut tx, id, 1, now()).await?;
            let p = load_prompt(&mut tx, id).await?;
            tx.commit().await?;
            Ok(p)
        })
        .await
    }

    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()> {
        validate::prompt_name(name)?;
        write(|| async {
            let r = sqlx::query(
                "UPDATE prompts SET archived = 1, revision = revision + 1, updated_at = ?1 \
                 WHERE project_id = ?2 AND name = ?3 AND archived = 0",
            )
            .bind(micros(now()))
            .bind(project)
            .bind(name)
            .execute(&self.writer)
            .await?;
            if r.rows_affected() == 0 {
                return Err(prompt_not_found(name).into());
            }
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
        let template = to_json("template", &new.template)?;
        let variables_json = to_json("variables", &variables)?;
        let config = to_json("config", &new.config)?;
        write(|| async {
            let mut tx = self.begin_write().await?;
            let at = now();
            let (prompt_id, latest) = match live_prompt(&mut tx, project, name).await {
                Ok(found) => found,
                Err(Failure::App(Error::NotFound { .. })) => (
                    insert_prompt(&mut tx, project, &NewPrompt::named(name), at).await?,
                    None,
                ),
                Err(e) => return Err(e),
            };
            let number = latest
                .unwrap_or(0)
                .checked_add(1)
                .ok_or_else(|| Error::conflict("too many versions"))?;
            let id = new_id();
            sqlx::query(
                "INSERT INTO prompt_versions (id, prompt_id, version, template, template_format, \
                 variables, config, commit_message, created_by, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
            .bind(micros(at))
            .execute(&mut *tx)
            .await?;
            for l in &new.labels {
                move_label(
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
                "UPDATE prompts SET latest_version = ?1, revision = revision + ?2, updated_at = ?3 \
                 WHERE id = ?4",
            )
            .bind(i64::from(number))
            .bind(1 + new.labels.len() as i64)
            .bind(micros(at))
            .bind(prompt_id)
            .execute(&mut *tx)
            .await?;
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
        finish(
            async {
                let mut tx = self.begin_read().await?;
                let (prompt_id, _) = live_prompt(&mut tx, project, name).await?;
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    version_cols!(),
                    " FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id \
                     WHERE v.prompt_id = ?1 AND v.version < ?2 ORDER BY v.version DESC LIMIT ?3"
                ))
                .bind(prompt_id)
                .bind(before.map_or(i64::MAX, i64::from))
                .bind(i64::from(limit) + 1)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                let mut items = Vec::with_capacity(rows.len());
                for r in &rows {
                    items.extend(version_from_row(r)?);
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
        // Parameters are numbered: ?1 project, ?2 name, ?3 label or number.
        let q = match selector {
            Selector::Label(l) if l == validate::LATEST_LABEL => {
                sqlx::query(RESOLVE_LATEST).bind(project).bind(name)
            }
            Selector::Label(l) => sqlx::query(RESOLVE_BY_LABEL)
                .bind(project)
                .bind(name)
                .bind(l.as_str()),
            Selector::Version(n) => sqlx::query(RESOLVE_BY_NUMBER)
                .bind(project)
                .bind(name)
                .bind(i64::from(*n)),
        };
        finish(
            async {
                let row = q
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| prompt_not_found(name))?;
                match version_from_row(&row)? {
                    Some(v) => Ok(v),
                    None => Err(selector.not_found(name).into()),
                }
            }
            .await,
        )
    }

    async fn version_by_id(&self, project: Uuid, id: Uuid) -> Result<PromptVersion> {
        finish(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    version_cols!(),
                    " FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id \
                     WHERE v.id = ?1 AND p.project_id = ?2"
                ))
                .bind(id)
                .bind(project)
                .fetch_optional(&self.reader)
                .await?;
                match row {
                    Some(r) => version_from_row(&r)?,
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
        write(|| async {
            let mut tx = self.begin_write().await?;
            let (prompt_id, latest) = live_prompt(&mut tx, project, name).await?;
            if latest.is_none_or(|l| version > l) {
                return Err(
                    Error::not_found(format!("version {version} of prompt '{name}'")).into(),
                );
            }
            let at = now();
            let m = move_label(&mut tx, prompt_id, name, label, Some(version), actor, at).await?;
            touch(&mut tx, prompt_id, 1, at).await?;
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
        write(|| async {
            let mut tx = self.begin_write().await?;
            let (prompt_id, _) = live_prompt(&mut tx, project, name).await?;
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM labels WHERE prompt_id = ?1 AND label = ?2")
                    .bind(prompt_id)
                    .bind(label)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Err(Error::not_found(format!("label '{label}' of prompt '{name}'")).into());
            }
            let at = now();
            let m = move_label(&mut tx, prompt_id, name, label, None, actor, at).await?;
            touch(&mut tx, prompt_id, 1, at).await?;
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
        finish(
            async {
                let mut tx = self.begin_read().await?;
                let (prompt_id, _) = live_prompt(&mut tx, project, name).await?;
                let rows = match before {
                    None => sqlx::query(
                        "SELECT id, from_version, to_version, moved_by, moved_at FROM label_moves \
                             WHERE prompt_id = ?1 AND label = ?2 \
                             ORDER BY moved_at DESC, id DESC LIMIT ?3",
                    )
                    .bind(prompt_id)
                    .bind(label)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(&mut *tx)
                    .await?,
                    Some((t, id)) => sqlx::query(
                        "SELECT id, from_version, to_version, moved_by, moved_at FROM label_moves \
                             WHERE prompt_id = ?1 AND label = ?2 AND (moved_at, id) < (?3, ?4) \
                             ORDER BY moved_at DESC, id DESC LIMIT ?5",
                    )
                    .bind(prompt_id)
                    .bind(label)
                    .bind(micros(t))
                    .bind(id)
                    .bind(i64::from(limit) + 1)
                    .fetch_all(&mut *tx)
                    .await?,
                };
                tx.commit().await?;
                let items = rows
                    .iter()
                    .map(|r| {
                        Ok(LabelMove {
                            id: r.try_get("id")?,
                            prompt: name.to_owned(),
                            label: label.to_owned(),
                            from_version: opt_version(r.try_get("from_version")?)?,
                            to_version: opt_version(r.try_get("to_version")?)?,
                            moved_by: r.try_get("moved_by")?,
                            moved_at: time(r.try_get("moved_at")?)?,
                        })
                    })
                    .collect::<Result<Vec<_>, Failure>>()?;
                Ok(Page::from_overfetch(items, limit, |m| (m.moved_at, m.id))?)
            }
            .await,
        )
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        write(|| async {
            let r = sqlx::query(
                "INSERT INTO api_keys (id, project_id, name, role, prefix, hash, created_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(record.id)
            .bind(record.project_id)
            .bind(&record.name)
            .bind(record.role.as_str())
            .bind(&record.prefix)
            .bind(&record.hash)
            .bind(micros(record.created_at))
            .bind(record.revoked_at.map(micros))
            .execute(&self.writer)
            .await;
            match r {
                Ok(_) => Ok(record.clone()),
                Err(e) if is_unique_violation(&e) => Err(Error::already_exists("api key").into()),
                Err(e) if is_foreign_key_violation(&e) => {
                    Err(Error::not_found(format!("project {}", record.project_id)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        finish(
            async {
                let row = sqlx::query(
                    "SELECT id, project_id, name, role, prefix, hash, created_at, revoked_at \
                     FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL",
                )
                .bind(hash)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found("api key"))?;
                key_from_row(&row)
            }
            .await,
        )
    }

    async fn list_api_keys(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>> {
        finish(
            async {
                let rows = sqlx::query(
                    "SELECT id, project_id, name, role, prefix, hash, created_at, revoked_at \
                     FROM api_keys WHERE project_id = ?1 ORDER BY created_at, id",
                )
                .bind(project)
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(key_from_row).collect()
            }
            .await,
        )
    }

    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        write(|| async {
            let r = sqlx::query(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) \
                 WHERE id = ?2 AND project_id = ?3",
            )
            .bind(micros(now()))
            .bind(id)
            .bind(project)
            .execute(&self.writer)
            .await?;
            if r.rows_affected() == 0 {
                return Err(Error::not_found(format!("api key {id}")).into());
            }
            Ok(())
        })
        .await
    }

    async fn put_provider_credential(
        &self,
        credential: prompt_core::ProviderCredential,
    ) -> Result<prompt_core::ProviderCredential> {
        super::credentials::put(self, credential).await
    }

    async fn get_provider_credential(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<prompt_core::ProviderCredential> {
        super::credentials::get(self, project, name).await
    }

    async fn list_provider_credentials(
        &self,
        project: Uuid,
    ) -> Result<Vec<prompt_core::ProviderCredential>> {
        super::credentials::list(self, project).await
    }

    async fn delete_provider_credential(&self, project: Uuid, name: &str) -> Result<()> {
        super::credentials::delete(self, project, name).await
    }

    async fn reseal_provider_credentials(
        &self,
        reseal: &prompt_core::credential::Reseal,
    ) -> Result<u64> {
        super::credentials::reseal(self, reseal).await
    }

    async fn ping(&self) -> Result<()> {
        finish(
            async {
                sqlx::query("SELECT 1").execute(&self.reader).await?;
                Ok(())
            }
            .await,
        )
    }
}
