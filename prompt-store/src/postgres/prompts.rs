//! [`PromptStore`] on Postgres.

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
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::error::{is_foreign_key_violation, unique_violation};
use super::{PostgresStore, attempt, finish};
use crate::sql::{Failure, opt_version, to_version};

/// The columns of a prompt with its labels (a JSON object label → version).
macro_rules! prompt_cols {
    () => {
        "p.id, p.name, p.description, p.tags, p.archived, p.revision, p.latest_version, \
         p.created_at, p.updated_at, \
         COALESCE((SELECT jsonb_object_agg(l.label, l.version) FROM labels l \
                   WHERE l.prompt_id = p.id), '{}'::jsonb) AS labels"
    };
}

/// The columns of a version joined with its prompt, with the labels pointing at it.
/// `vid` is NULL when a LEFT JOIN found no version.
macro_rules! version_cols {
    () => {
        "v.id AS vid, p.id AS prompt_id, p.name AS prompt, v.version, v.template, \
         v.template_format, v.variables, v.config, v.commit_message, v.created_by, \
         v.created_at AS vcreated_at, p.latest_version, \
         ARRAY(SELECT l.label FROM labels l \
               WHERE l.prompt_id = v.prompt_id AND l.version = v.version) AS vlabels"
    };
}

/// By (project, name, label): the live-name index, the labels primary key, the
/// versions' (prompt_id, version) key — three index probes.
const RESOLVE_BY_LABEL: &str = concat!(
    "SELECT ",
    version_cols!(),
    " FROM prompts p \
     LEFT JOIN labels l0 ON l0.prompt_id = p.id AND l0.label = $3 \
     LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = l0.version \
     WHERE p.project_id = $1 AND p.name = $2 AND NOT p.archived"
);
const RESOLVE_LATEST: &str = concat!(
    "SELECT ",
    version_cols!(),
    " FROM prompts p \
     LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = p.latest_version \
     WHERE p.project_id = $1 AND p.name = $2 AND NOT p.archived"
);
const RESOLVE_BY_NUMBER: &str = concat!(
    "SELECT ",
    version_cols!(),
    " FROM prompts p \
     LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = $3 \
     WHERE p.project_id = $1 AND p.name = $2 AND NOT p.archived"
);

fn prompt_not_found(name: &str) -> Error {
    Error::not_found(format!("prompt '{name}'"))
}

fn json_of<T: serde::de::DeserializeOwned>(column: &str, v: Value) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| Error::internal(format!("stored {column} has an unexpected shape: {e}")))
}

fn prompt_from_row(r: &PgRow) -> Result<Prompt, Failure> {
    let id: Uuid = r.try_get("id")?;
    let latest = opt_version(r.try_get("latest_version")?)?;
    let mut labels: BTreeMap<String, u32> = json_of("labels", r.try_get("labels")?)?;
    if let Some(l) = latest {
        labels.insert(validate::LATEST_LABEL.to_owned(), l);
    }
    Ok(Prompt {
        id,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        tags: r.try_get("tags")?,
        archived: r.try_get("archived")?,
        labels,
        latest_version: latest,
        etag: etag_of(id, r.try_get("revision")?),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A version from [`version_cols`]; `None` if the LEFT JOIN found none.
fn version_from_row(r: &PgRow) -> Result<Option<PromptVersion>, Failure> {
    let Some(id) = r.try_get::<Option<Uuid>, _>("vid")? else {
        return Ok(None);
    };
    let number = to_version(r.try_get("version")?)?;
    let template: Template = json_of("template", r.try_get("template")?)?;
    let mut labels: Vec<String> = r.try_get("vlabels")?;
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
        variables: json_of("variables", r.try_get("variables")?)?,
        config: r.try_get("config")?,
        labels,
        commit_message: r.try_get("commit_message")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("vcreated_at")?,
    }))
}

fn key_from_row(r: &PgRow) -> Result<ApiKeyRecord, Failure> {
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        role: KeyRole::parse(&r.try_get::<String, _>("role")?)?,
        prefix: r.try_get("prefix")?,
        hash: r.try_get("hash")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Lock the live prompt `name` for the rest of the transaction: (id, latest version).
async fn lock_prompt(
    conn: &mut PgConnection,
    project: Uuid,
    name: &str,
) -> Result<Option<(Uuid, Option<u32>)>, Failure> {
    let row = sqlx::query(
        "SELECT id, latest_version FROM prompts \
         WHERE project_id = $1 AND name = $2 AND NOT archived FOR UPDATE",
    )
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

async fn load_prompt(conn: &mut PgConnection, id: Uuid) -> Result<Prompt, Failure> {
    let row = sqlx::query(concat!(
        "SELECT ",
        prompt_cols!(),
        " FROM prompts p WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    prompt_from_row(&row)
}

fn project_not_found_on_fk(e: sqlx::Error, project: Uuid) -> Failure {
    if is_foreign_key_violation(&e) {
        Error::not_found(format!("project {project}")).into()
    } else {
        e.into()
    }
}

/// Point `label` at `to` (or delete it with `None`) and record the move. The caller
/// holds the prompt's row lock.
async fn move_label(
    conn: &mut PgConnection,
    prompt_id: Uuid,
    prompt: &str,
    label: &str,
    to: Option<u32>,
    actor: Option<&str>,
    at: DateTime<Utc>,
) -> Result<LabelMove, Failure> {
    let from: Option<i64> = match to {
        Some(v) => {
            // The old version comes from a snapshot taken before the upsert, in the
            // same statement.
            sqlx::query_scalar(
                "WITH old AS (SELECT version FROM labels WHERE prompt_id = $1 AND label = $2), \
                 up AS (INSERT INTO labels (prompt_id, label, version, updated_at) \
                        VALUES ($1, $2, $3, $4) \
                        ON CONFLICT (prompt_id, label) DO UPDATE \
                        SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at) \
                 SELECT version FROM old",
            )
            .bind(prompt_id)
            .bind(label)
            .bind(i64::from(v))
            .bind(at)
            .fetch_optional(&mut *conn)
            .await?
        }
        None => {
            sqlx::query_scalar(
                "DELETE FROM labels WHERE prompt_id = $1 AND label = $2 RETURNING version",
            )
            .bind(prompt_id)
            .bind(label)
            .fetch_optional(&mut *conn)
            .await?
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
        "INSERT INTO label_moves (id, prompt_id, label, from_version, to_version, moved_by, moved_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(m.id)
    .bind(prompt_id)
    .bind(label)
    .bind(m.from_version.map(i64::from))
    .bind(m.to_version.map(i64::from))
    .bind(&m.moved_by)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(m)
}

/// Bump the etag revision (by `n`) and `updated_at` of a prompt.
async fn touch(
    conn: &mut PgConnection,
    prompt_id: Uuid,
    n: i64,
    at: DateTime<Utc>,
) -> Result<(), Failure> {
    sqlx::query("UPDATE prompts SET revision = revision + $1, updated_at = $2 WHERE id = $3")
        .bind(n)
        .bind(at)
        .bind(prompt_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl PromptStore for PostgresStore {
    async fn create_project(&self, name: &str) -> Result<Project> {
        validate::project_name(name)?;
        attempt(|| async {
            let p = Project {
                id: new_id(),
                name: name.to_owned(),
                created_at: now(),
            };
            let r = sqlx::query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(p.id)
                .bind(&p.name)
                .bind(p.created_at)
                .execute(&self.pool)
                .await;
            match r {
                Ok(_) => Ok(p),
                Err(e) if unique_violation(&e).is_some() => {
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
                let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("project '{name}'")))?;
                Ok(Project {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            }
            .await,
        )
    }

    async fn project_by_id(&self, id: Uuid) -> Result<Project> {
        finish(
            async {
                let row = sqlx::query("SELECT id, name, created_at FROM projects WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("project {id}")))?;
                Ok(Project {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            }
            .await,
        )
    }

    async fn create_prompt(&self, project: Uuid, new: NewPrompt) -> Result<Prompt> {
        let new = new.validated()?;
        attempt(|| async {
            let mut tx = self.pool.begin().await?;
            let id = new_id();
            let at = now();
            let r = sqlx::query(
                "INSERT INTO prompts (id, project_id, name, description, tags, archived, revision, \
                 latest_version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, false, 1, NULL, $6, $6)",
            )
            .bind(id)
            .bind(project)
            .bind(&new.name)
            .bind(&new.description)
            .bind(&new.tags)
            .bind(at)
            .execute(&mut *tx)
            .await;
            match r {
                Ok(_) => {}
                Err(e) if unique_violation(&e).is_some() => {
                    return Err(Error::already_exists(format!("prompt '{}'", new.name)).into());
                }
                Err(e) => return Err(project_not_found_on_fk(e, project)),
            }
            self.notify(&mut tx, project, &new.name).await?;
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
                    " FROM prompts p WHERE p.project_id = $1 AND p.name = $2 AND NOT p.archived"
                ))
                .bind(project)
                .bind(name)
                .fetch_optional(&self.pool)
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
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            prompt_cols!(),
            " FROM prompts p WHERE NOT p.archived AND p.project_id = "
        ));
        q.push_bind(project);
        if let Some(a) = after {
            q.push(" AND p.name > ").push_bind(a);
        }
        if let Some(t) = &filter.tag {
            q.push(" AND ").push_bind(t.clone()).push(" = ANY(p.tags)");
        }
        if let Some(prefix) = &filter.name_prefix {
            // Literal prefix, no LIKE patterns.
            q.push(" AND starts_with(p.name, ")
                .push_bind(prefix.clone())
                .push(")");
        }
        if let Some(t) = filter.created_after {
            q.push(" AND p.created_at >= ").push_bind(t);
        }
        if let Some(t) = filter.created_before {
            q.push(" AND p.created_at < ").push_bind(t);
        }
        q.push(" ORDER BY p.name LIMIT ")
            .push_bind(i64::from(limit) + 1);
        finish(
            async {
                let rows = q.build().fetch_all(&self.pool).await?;
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
        attempt(|| async {
            let mut tx = self.pool.begin().await?;
            let row = sqlx::query(
                "SELECT id, revision FROM prompts \
                 WHERE project_id = $1 AND name = $2 AND NOT archived FOR UPDATE",
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
            let at = now();
            sqlx::query(
                "UPDATE prompts SET \
                 description = CASE WHEN $1 THEN $2 ELSE description END, \
                 tags = COALESCE($3, tags), revision = revision + 1, updated_at = $4 \
                 WHERE id = $5",
            )
            .bind(update.description.is_some())
            .bind(update.description.clone().flatten())
            .bind(update.tags.clone())
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            self.notify(&mut tx, project, name).await?;
            let p = load_prompt(&mut tx, id).await?;
            tx.commit().await?;
            Ok(p)
        })
        .await
    }

    async fn archive_prompt(&self, project: Uuid, name: &str) -> Result<()> {
        validate::prompt_name(name)?;
        attempt(|| async {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "UPDATE prompts SET archived = true, revision = revision + 1, updated_at = $1 \
                 WHERE project_id = $2 AND name = $3 AND NOT archived",
            )
            .bind(now())
            .bind(project)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
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
        attempt(|| async {
            let mut tx = self.pool.begin().await?;
            let at = now();
            // Lock the prompt; create it first if it is missing. ON CONFLICT DO NOTHING
            // waits for a concurrent creator of the same name and then does nothing,
            // and the lock that follows sees its committed row. A prompt archived
            // between the two statements is simply created again (bounded).
            let mut locked = lock_prompt(&mut tx, project, name).await?;
            let mut tries = 0;
            while locked.is_none() {
                tries += 1;
                if tries > 10 {
                    return Err(Error::conflict(format!(
                        "prompt '{name}' keeps being archived while a version is created"
                    ))
                    .into());
                }
                sqlx::query(
                    "INSERT INTO prompts (id, project_id, name, description, tags, archived, \
                     revision, latest_version, created_at, updated_at) \
                     VALUES ($1, $2, $3, NULL, '{}', false, 1, NULL, $4, $4) \
                     ON CONFLICT (project_id, name) WHERE NOT archived DO NOTHING",
                )
                .bind(new_id())
                .bind(project)
                .bind(name)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(|e| project_not_found_on_fk(e, project))?;
                locked = lock_prompt(&mut tx, project, name).await?;
            }
            let Some((prompt_id, latest)) = locked else {
                return Err(Error::internal("prompt lock vanished").into());
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
            .bind(Json(&new.template))
            .bind(new.template_format.as_str())
            .bind(Json(&variables))
            .bind(&new.config)
            .bind(&new.commit_message)
            .bind(&new.created_by)
            .bind(at)
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
                "UPDATE prompts SET latest_version = $1, revision = revision + $2, updated_at = $3 \
                 WHERE id = $4",
            )
            .bind(i64::from(number))
            .bind(1 + new.labels.len() as i64)
            .bind(at)
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
        finish(
            async {
                // The prompt row is always returned (a LEFT JOIN), so a missing prompt
                // and a page past the end differ, in one statement (one snapshot).
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    version_cols!(),
                    " FROM prompts p LEFT JOIN LATERAL (\
                       SELECT * FROM prompt_versions pv WHERE pv.prompt_id = p.id AND pv.version < $3 \
                       ORDER BY pv.version DESC LIMIT $4) v ON true \
                     WHERE p.project_id = $1 AND p.name = $2 AND NOT p.archived \
                     ORDER BY v.version DESC"
                ))
                .bind(project)
                .bind(name)
                .bind(before.map_or(i64::MAX, i64::from))
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.pool)
                .await?;
                if rows.is_empty() {
                    return Err(prompt_not_found(name).into());
                }
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
                    .fetch_optional(&self.pool)
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
                     WHERE v.id = $1 AND p.project_id = $2"
                ))
                .bind(id)
                .bind(project)
                .fetch_optional(&self.pool)
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
        attempt(|| async {
            let mut tx = self.pool.begin().await?;
            let (prompt_id, latest) = lock_prompt(&mut tx, project, name)
                .await?
                .ok_or_else(|| prompt_not_found(name))?;
            if latest.is_none_or(|l| version > l) {
                return Err(
                    Error::not_found(format!("version {version} of prompt '{name}'")).into(),
                );
            }
            let at = now();
            let m = move_label(&mut tx, prompt_id, name, label, Some(version), actor, at).await?;
            touch(&mut tx, prompt_id, 1, at).await?;
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
        attempt(|| async {
            let mut tx = self.pool.begin().await?;
            let (prompt_id, _) = lock_prompt(&mut tx, project, name)
                .await?
                .ok_or_else(|| prompt_not_found(name))?;
            let at = now();
            let m = move_label(&mut tx, prompt_id, name, label, None, actor, at).await?;
            if m.from_version.is_none() {
                // Nothing was deleted: roll back (dropping the transaction) the history row.
                return Err(Error::not_found(format!("label '{label}' of prompt '{name}'")).into());
            }
            touch(&mut tx, prompt_id, 1, at).await?;
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
        let (t, id) = before.unzip();
        finish(
            async {
                // One statement: the prompt row always comes back (LEFT JOIN), so a
                // missing prompt differs from a label without history.
                let rows = sqlx::query(
                    "SELECT p.id AS pid, m.id, m.from_version, m.to_version, m.moved_by, m.moved_at \
                     FROM prompts p LEFT JOIN LATERAL (\
                       SELECT * FROM label_moves lm WHERE lm.prompt_id = p.id AND lm.label = $3 \
                       AND ($4::timestamptz IS NULL OR (lm.moved_at, lm.id) < ($4, $5)) \
                       ORDER BY lm.moved_at DESC, lm.id DESC LIMIT $6) m ON true \
                     WHERE p.project_id = $1 AND p.name = $2 AND NOT p.archived \
                     ORDER BY m.moved_at DESC, m.id DESC",
                )
                .bind(project)
                .bind(name)
                .bind(label)
                .bind(t)
                .bind(id)
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.pool)
                .await?;
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
                        moved_at: r.try_get("moved_at")?,
                    });
                }
                Ok(Page::from_overfetch(items, limit, |m| (m.moved_at, m.id))?)
            }
            .await,
        )
    }

    async fn create_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        attempt(|| async {
            let r = sqlx::query(
                "INSERT INTO api_keys (id, project_id, name, role, prefix, hash, created_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(record.id)
            .bind(record.project_id)
            .bind(&record.name)
            .bind(record.role.as_str())
            .bind(&record.prefix)
            .bind(&record.hash)
            .bind(record.created_at)
            .bind(record.revoked_at)
            .execute(&self.pool)
            .await;
            match r {
                Ok(_) => Ok(record.clone()),
                Err(e) if unique_violation(&e).is_some() => {
                    Err(Error::already_exists("api key").into())
                }
                Err(e) => Err(project_not_found_on_fk(e, record.project_id)),
            }
        })
        .await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
        finish(
            async {
                let row = sqlx::query(
                    "SELECT id, project_id, name, role, prefix, hash, created_at, revoked_at \
                     FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
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
                     FROM api_keys WHERE project_id = $1 ORDER BY created_at, id",
                )
                .bind(project)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(key_from_row).collect()
            }
            .await,
        )
    }

    async fn revoke_api_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        attempt(|| async {
            let mut tx = self.pool.begin().await?;
            let r = sqlx::query(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) \
                 WHERE id = $2 AND project_id = $3",
            )
            .bind(now())
            .bind(id)
            .bind(project)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Err(Error::not_found(format!("api key {id}")).into());
            }
            // Other instances' caches drop their keys when this commits.
            self.notify_keys(&mut tx, project).await?;
            tx.commit().await?;
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
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
            .await,
        )
    }
}
