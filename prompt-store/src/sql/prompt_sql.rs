//! The statements, row mappings and transaction steps of prompts, versions and labels,
//! for [`super::prompts`]: each once, for every dialect.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prompt_core::domain::{etag_of, new_id};
use prompt_core::{
    Error, LabelMove, Prompt, PromptVersion, Result, SplitWeights, Template, TemplateFormat,
    validate,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::{Failure, SqlStore, is_foreign_key_violation, opt_version, split_text, to_version};

/// A prompt row locked by a write transaction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Locked {
    /// Its id.
    pub(super) id: Uuid,
    /// Its latest version.
    pub(super) latest: Option<u32>,
    /// Its etag revision.
    pub(super) revision: i64,
}

impl Locked {
    /// Its etag.
    pub(super) fn etag(&self) -> String {
        etag_of(self.id, self.revision)
    }
}

/// The statements of this module that contain dialect fragments, built once per
/// dialect (see [`Dialect::prompt_sql`]).
#[derive(Debug)]
pub(crate) struct PromptSql {
    pub(super) get_prompt: String,
    pub(super) prompt_by_id: String,
    pub(super) load_prompt: String,
    pub(super) list_prompts: String,
    pub(super) lock_prompt: String,
    pub(super) insert_prompt: String,
    pub(super) insert_missing_prompt: String,
    pub(super) update_prompt: String,
    pub(super) archive_prompt: String,
    pub(super) list_versions: String,
    pub(super) resolve_by_label: String,
    pub(super) resolve_latest: String,
    pub(super) resolve_by_number: String,
    pub(super) version_by_id: String,
    pub(super) including_versions: String,
    pub(super) label_history: String,
    pub(super) label_history_after: String,
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
             p.created_at, p.updated_at, {} AS labels, {} AS splits",
            D::LABELS_OBJECT,
            D::SPLITS_OBJECT
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
        // that a missing prompt and a missing version differ in one statement; a
        // deleted version comes back flagged (`vdeleted`), so that its error says so.
        // `lsplit`: the release split of the label resolved through (NULL otherwise).
        let resolve = |join: &str, target: &str, split: &str| {
            format!(
                "SELECT {version_cols}, v.deleted_at IS NOT NULL AS vdeleted, \
                 {split} AS lsplit FROM prompts p {join}\
                 LEFT JOIN prompt_versions v ON v.prompt_id = p.id AND v.version = {target} \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p}"
            )
        };
        // Label history: the prompt row always comes back (LEFT JOIN), so a missing
        // prompt differs from a label without history, in one statement.
        let history = |after: &str| {
            let moves = D::limited_join(
                "label_moves",
                "m",
                &format!("m.prompt_id = p.id AND m.label = $3{after}"),
                "m.moved_at DESC, m.id DESC",
                "$4",
            );
            format!(
                "SELECT m.id, m.from_version, m.to_version, m.moved_by, m.moved_at, m.split \
                 FROM prompts p {moves} \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p} \
                 ORDER BY m.moved_at DESC, m.id DESC LIMIT $4"
            )
        };
        let versions = D::limited_join(
            "prompt_versions",
            "v",
            "v.prompt_id = p.id AND v.version < $3 AND v.deleted_at IS NULL",
            "v.version DESC",
            "$4",
        );
        PromptSql {
            get_prompt: format!(
                "SELECT {prompt_cols} FROM prompts p \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p}"
            ),
            prompt_by_id: format!(
                "SELECT {prompt_cols} FROM prompts p \
                 WHERE p.id = $1 AND p.project_id = $2 AND {live_p}"
            ),
            load_prompt: format!("SELECT {prompt_cols} FROM prompts p WHERE p.id = $1"),
            list_prompts: format!(
                "SELECT {prompt_cols} FROM prompts p WHERE {live_p} AND p.project_id = "
            ),
            lock_prompt: format!(
                "SELECT id, latest_version, revision FROM prompts \
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
                "SELECT {version_cols} FROM prompts p {versions} \
                 WHERE p.project_id = $1 AND p.name = $2 AND {live_p} \
                 ORDER BY v.version DESC LIMIT $4"
            ),
            // By (project, name, label): the live-name index, the labels primary key,
            // the versions' (prompt_id, version) key — three index probes.
            resolve_by_label: resolve(
                "LEFT JOIN labels l0 ON l0.prompt_id = p.id AND l0.label = $3 ",
                "l0.version",
                "l0.split",
            ),
            resolve_latest: resolve("", "p.latest_version", "CAST(NULL AS TEXT)"),
            resolve_by_number: resolve("", "$3", "CAST(NULL AS TEXT)"),
            version_by_id: format!(
                "SELECT {version_cols} FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id \
                 WHERE v.id = $1 AND p.project_id = $2 AND v.deleted_at IS NULL"
            ),
            // The project's live versions that hold include tags (the partial index
            // `prompt_versions_including`), for the dependents of a label move.
            including_versions: format!(
                "SELECT {version_cols} FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id \
                 WHERE v.has_includes AND v.deleted_at IS NULL AND p.project_id = $1 AND {live_p}"
            ),
            label_history: history(""),
            label_history_after: history(" AND (m.moved_at, m.id) < ($5, $6)"),
        }
    }
}

pub(super) fn prompt_not_found(name: &str) -> Error {
    Error::not_found(format!("prompt '{name}'"))
}

/// `NotFound` for the project when `e` is a foreign key violation (the only foreign
/// key of the rows we insert that a caller can get wrong is the project).
pub(super) fn project_not_found_on_fk(e: sqlx::Error, project: Uuid) -> Failure {
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
    pub(super) fn prompt_from_row(r: &D::Row) -> Result<Prompt, Failure> {
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
            splits: D::from_json("splits", r.try_get("splits")?)?,
            latest_version: latest,
            etag: etag_of(id, r.try_get("revision")?),
            created_at: D::from_time(r.try_get("created_at")?)?,
            updated_at: D::from_time(r.try_get("updated_at")?)?,
        })
    }

    /// A version from `version_cols`; `None` if the LEFT JOIN found none.
    pub(super) fn version_from_row(r: &D::Row) -> Result<Option<PromptVersion>, Failure> {
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
            split: None,
        }))
    }

    /// The live prompt `name`, locked for the rest of the write transaction, or
    /// `None`.
    pub(super) async fn lock_prompt(
        conn: &mut D::Connection,
        project: Uuid,
        name: &str,
    ) -> Result<Option<Locked>, Failure> {
        let row = sqlx::query(D::prompt_sql().lock_prompt.as_str())
            .bind(project)
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(r) => Ok(Some(Locked {
                id: r.try_get("id")?,
                latest: opt_version(r.try_get("latest_version")?)?,
                revision: r.try_get("revision")?,
            })),
            None => Ok(None),
        }
    }

    pub(super) async fn load_prompt(conn: &mut D::Connection, id: Uuid) -> Result<Prompt, Failure> {
        let row = sqlx::query(D::prompt_sql().load_prompt.as_str())
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        Self::prompt_from_row(&row)
    }

    /// Point `label` at `to` (or delete it with `None`; `NotFound` if it does not
    /// exist), carrying release split `split` (`None` ends one), and record the move.
    /// The caller holds the prompt's row lock.
    #[expect(
        clippy::too_many_arguments,
        reason = "one step of a transaction script: the connection, the row and the move"
    )]
    pub(super) async fn move_label(
        conn: &mut D::Connection,
        prompt_id: Uuid,
        prompt: &str,
        label: &str,
        to: Option<u32>,
        split: Option<&SplitWeights>,
        expect: prompt_core::LabelExpect,
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
                let old: Option<i64> = old.map(|r| r.try_get("version")).transpose()?;
                expect.check(prompt, label, opt_version(old)?)?;
                sqlx::query(
                    "INSERT INTO labels (prompt_id, label, version, updated_at, split) \
                     VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (prompt_id, label) DO UPDATE \
                     SET version = excluded.version, updated_at = excluded.updated_at, \
                     split = excluded.split",
                )
                .bind(prompt_id)
                .bind(label)
                .bind(i64::from(v))
                .bind(D::time(at))
                .bind(split_text("labels.split", split)?)
                .execute(&mut *conn)
                .await?;
                old
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
                let old: i64 = old.try_get("version")?;
                expect.check(prompt, label, opt_version(Some(old))?)?;
                Some(old)
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
            split: to.and(split.cloned()),
        };
        sqlx::query(
            "INSERT INTO label_moves (id, prompt_id, label, from_version, to_version, moved_by, \
             moved_at, split) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(m.id)
        .bind(prompt_id)
        .bind(label)
        .bind(m.from_version.map(i64::from))
        .bind(m.to_version.map(i64::from))
        .bind(&m.moved_by)
        .bind(D::time(at))
        .bind(split_text("label_moves.split", m.split.as_ref())?)
        .execute(&mut *conn)
        .await?;
        Ok(m)
    }

    /// Bump the etag revision (by `n`) and `updated_at` of a prompt.
    pub(super) async fn touch(
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
    pub(super) async fn notify(
        &self,
        conn: &mut D::Connection,
        project: Uuid,
        name: &str,
    ) -> Result<(), Failure> {
        D::notify_prompt(&self.state, conn, project, name).await
    }
}
