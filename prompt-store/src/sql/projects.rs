//! Projects (named `NAME` in the organization `default`, or `ORG/NAME`) and API key
//! records on any SQL dialect, for [`super::prompts`].

use prompt_core::domain::{DEFAULT_ORG_ID, new_id, now, split_project_ref};
use prompt_core::{ApiKeyRecord, Error, KeyRole, NewEvent, Project, Result};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::prompt_sql::project_not_found_on_fk;
use super::store::{begin_write, finish, write};
use super::{Failure, SqlStore, is_foreign_key_violation, is_unique_violation};

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
    pub(super) fn project_from_row(r: &D::Row) -> Result<Project, Failure> {
        Ok(Project {
            id: r.try_get("id")?,
            org_id: r.try_get("org_id")?,
            name: r.try_get("name")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            run_retention_days: r
                .try_get::<Option<i64>, _>("run_retention_days")?
                .map(|d| {
                    u32::try_from(d)
                        .map_err(|_| Error::storage("projects.run_retention_days is out of range"))
                })
                .transpose()?,
        })
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

    /// The id of the organization a project reference names (`NAME`: the default
    /// organization; `ORG/NAME`: ORG, `NotFound` if there is none), and the name.
    async fn org_of_ref<'r>(&self, reference: &'r str) -> Result<(Uuid, &'r str), Failure> {
        match split_project_ref(reference) {
            (None, name) => Ok((DEFAULT_ORG_ID, name)),
            (Some(org), name) => {
                let row = sqlx::query("SELECT id FROM organizations WHERE name = $1")
                    .bind(org)
                    .fetch_optional(&self.reader)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("organization '{org}'")))?;
                Ok((row.try_get("id")?, name))
            }
        }
    }

    /// Create a project in `org` (`AlreadyExists` if the organization has a project of
    /// that name, `NotFound` if the organization does not exist); `shown` names it in
    /// errors.
    pub(super) async fn insert_project_in(
        &self,
        org: Uuid,
        name: &str,
        shown: &str,
    ) -> Result<Project, Failure> {
        let p = Project {
            id: new_id(),
            org_id: org,
            name: name.to_owned(),
            created_at: now(),
            run_retention_days: None,
        };
        let r = sqlx::query(
            "INSERT INTO projects (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(p.id)
        .bind(p.org_id)
        .bind(&p.name)
        .bind(D::time(p.created_at))
        .execute(&self.writer)
        .await;
        match r {
            Ok(_) => Ok(p),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::already_exists(format!("project '{shown}'")).into())
            }
            Err(e) if is_foreign_key_violation(&e) => {
                Err(Error::not_found(format!("organization {org}")).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Create a project named by a reference, `NAME` or `ORG/NAME`
    /// (`AlreadyExists` if the name is taken in the organization, `NotFound` if the
    /// organization does not exist).
    pub(super) async fn insert_project(&self, reference: &str) -> Result<Project> {
        write::<D, _, _, _>(|| async {
            let (org, name) = self.org_of_ref(reference).await?;
            self.insert_project_in(org, name, reference).await
        })
        .await
    }

    /// The project a reference (`NAME` or `ORG/NAME`) names, or `NotFound`.
    pub(super) async fn project_named(&self, reference: &str) -> Result<Project> {
        finish::<D, _>(
            async {
                let (org, name) = self.org_of_ref(reference).await?;
                let row = sqlx::query(
                    "SELECT id, org_id, name, created_at, run_retention_days FROM projects \
                     WHERE org_id = $1 AND name = $2",
                )
                .bind(org)
                .bind(name)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("project '{reference}'")))?;
                Self::project_from_row(&row)
            }
            .await,
        )
    }

    /// The project with that id, or `NotFound`.
    pub(super) async fn project_with_id(&self, id: Uuid) -> Result<Project> {
        finish::<D, _>(
            async {
                let row = sqlx::query(
                    "SELECT id, org_id, name, created_at, run_retention_days FROM projects \
                     WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("project {id}")))?;
                Self::project_from_row(&row)
            }
            .await,
        )
    }

    /// Store an API key record (`NotFound` if its project does not exist).
    pub(super) async fn insert_api_key(&self, record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
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
            .execute(&mut *tx)
            .await;
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::already_exists("api key").into());
                }
                Err(e) => return Err(project_not_found_on_fk(e, record.project_id)),
            }
            let ev = vec![NewEvent::api_key_created(&record)];
            let c = self.append_events(&mut tx, record.project_id, ev).await?;
            tx.commit().await?;
            self.committed(c);
            Ok(record.clone())
        })
        .await
    }

    /// The live key with that hash, or `NotFound`.
    pub(super) async fn live_key_by_hash(&self, hash: &str) -> Result<ApiKeyRecord> {
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

    /// The keys of `project`, oldest first.
    pub(super) async fn api_keys_of(&self, project: Uuid) -> Result<Vec<ApiKeyRecord>> {
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

    /// Revoke a key of `project` (idempotent; `NotFound` if there is none).
    pub(super) async fn revoke_key(&self, project: Uuid, id: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let r = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 \
                 WHERE id = $2 AND project_id = $3 AND revoked_at IS NULL",
            )
            .bind(D::time(now()))
            .bind(id)
            .bind(project)
            .execute(&mut *tx)
            .await?;
            if D::rows_affected(&r) == 0 {
                // Revoked before (nothing changes, no event), or not this project's.
                let exists =
                    sqlx::query("SELECT 1 FROM api_keys WHERE id = $1 AND project_id = $2")
                        .bind(id)
                        .bind(project)
                        .fetch_optional(&mut *tx)
                        .await?;
                return match exists {
                    Some(_) => Ok(()),
                    None => Err(Error::not_found(format!("api key {id}")).into()),
                };
            }
            // Other instances' caches drop their keys when this commits.
            D::notify_keys(&self.state, &mut tx, project).await?;
            let ev = vec![NewEvent::api_key_revoked(id)];
            let c = self.append_events(&mut tx, project, ev).await?;
            tx.commit().await?;
            self.committed(c);
            Ok(())
        })
        .await
    }

    /// Set or clear `project`'s run retention (`NotFound` if it does not exist).
    pub(super) async fn set_retention(&self, project: Uuid, days: Option<u32>) -> Result<Project> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query("UPDATE projects SET run_retention_days = $1 WHERE id = $2")
                .bind(days.map(i64::from))
                .bind(project)
                .execute(&self.writer)
                .await?;
            if D::rows_affected(&r) == 0 {
                return Err(Error::not_found(format!("project {project}")).into());
            }
            Ok(())
        })
        .await?;
        self.project_with_id(project).await
    }

    /// The projects with a run retention, by id.
    pub(super) async fn retained_projects(&self) -> Result<Vec<Project>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(
                    "SELECT id, org_id, name, created_at, run_retention_days FROM projects \
                     WHERE run_retention_days IS NOT NULL ORDER BY id",
                )
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::project_from_row).collect()
            }
            .await,
        )
    }
}
