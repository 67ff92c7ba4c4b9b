//! Protected labels on any SQL dialect: a project's list (`protected_labels`), seeded
//! with the caller's defaults the first time it is used (`protected_label_seeds`
//! records which projects are seeded; see [`prompt_core::PromptStore::protected_labels`]).

use prompt_core::domain::now;
use prompt_core::{Error, NewEvent, ProtectedLabel, Result};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::prompt_sql::project_not_found_on_fk;
use super::store::{begin_write, finish, write};
use super::{Failure, SqlStore};

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
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
{
    fn protected_from_row(r: &D::Row) -> Result<ProtectedLabel, Failure> {
        Ok(ProtectedLabel {
            label: r.try_get("label")?,
            created_by: r.try_get("created_by")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
        })
    }

    /// Seed `project`'s list with `defaults` unless it is seeded already, in the write
    /// transaction on `conn`. A concurrent seeder of the same project makes the insert
    /// wait for its commit and then do nothing, so the defaults go in once.
    async fn seed_protected(
        conn: &mut D::Connection,
        project: Uuid,
        defaults: &[String],
    ) -> Result<(), Failure> {
        let at = now();
        let r = sqlx::query(
            "INSERT INTO protected_label_seeds (project_id, seeded_at) VALUES ($1, $2) \
             ON CONFLICT (project_id) DO NOTHING",
        )
        .bind(project)
        .bind(D::time(at))
        .execute(&mut *conn)
        .await
        .map_err(|e| project_not_found_on_fk(e, project))?;
        if D::rows_affected(&r) == 0 {
            return Ok(());
        }
        for l in defaults {
            sqlx::query(
                "INSERT INTO protected_labels (project_id, label, created_by, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, label) DO NOTHING",
            )
            .bind(project)
            .bind(l.as_str())
            .bind(None::<String>)
            .bind(D::time(at))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// The list of a seeded project, on `conn`.
    async fn read_protected<'e, E>(conn: E, project: Uuid) -> Result<Vec<ProtectedLabel>, Failure>
    where
        E: Executor<'e, Database = D>,
    {
        let rows = sqlx::query(
            "SELECT label, created_by, created_at FROM protected_labels \
             WHERE project_id = $1 ORDER BY label",
        )
        .bind(project)
        .fetch_all(conn)
        .await?;
        rows.iter().map(Self::protected_from_row).collect()
    }

    pub(crate) async fn list_protected(
        &self,
        project: Uuid,
        defaults: &[String],
    ) -> Result<Vec<ProtectedLabel>> {
        // Seeded projects (all but the first call) read without a write transaction.
        let seeded = finish::<D, _>(
            async {
                let row = sqlx::query(
                    "SELECT project_id FROM protected_label_seeds WHERE project_id = $1",
                )
                .bind(project)
                .fetch_optional(&self.reader)
                .await?;
                Ok(row.is_some())
            }
            .await,
        )?;
        if seeded {
            return finish::<D, _>(Self::read_protected(&self.reader, project).await);
        }
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            Self::seed_protected(&mut tx, project, defaults).await?;
            let out = Self::read_protected(&mut *tx, project).await?;
            tx.commit().await?;
            Ok(out)
        })
        .await
    }

    pub(crate) async fn protect(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<(ProtectedLabel, bool)> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            Self::seed_protected(&mut tx, project, defaults).await?;
            let at = now();
            let inserted = sqlx::query(
                "INSERT INTO protected_labels (project_id, label, created_by, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, label) DO NOTHING",
            )
            .bind(project)
            .bind(label)
            .bind(actor.map(str::to_owned))
            .bind(D::time(at))
            .execute(&mut *tx)
            .await?;
            let created = D::rows_affected(&inserted) == 1;
            let row = sqlx::query(
                "SELECT label, created_by, created_at FROM protected_labels \
                 WHERE project_id = $1 AND label = $2",
            )
            .bind(project)
            .bind(label)
            .fetch_one(&mut *tx)
            .await?;
            let stored = Self::protected_from_row(&row)?;
            let done = if created {
                let ev = vec![NewEvent::protected_label(label, true, actor)];
                self.append_events(&mut tx, project, ev).await?
            } else {
                None
            };
            tx.commit().await?;
            self.committed(done);
            Ok((stored, created))
        })
        .await
    }

    pub(crate) async fn unprotect(
        &self,
        project: Uuid,
        label: &str,
        defaults: &[String],
        actor: Option<&str>,
    ) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            Self::seed_protected(&mut tx, project, defaults).await?;
            let r =
                sqlx::query("DELETE FROM protected_labels WHERE project_id = $1 AND label = $2")
                    .bind(project)
                    .bind(label)
                    .execute(&mut *tx)
                    .await?;
            if D::rows_affected(&r) == 0 {
                return Err(Error::not_found(format!("protected label '{label}'")).into());
            }
            let ev = vec![NewEvent::protected_label(label, false, actor)];
            let done = self.append_events(&mut tx, project, ev).await?;
            tx.commit().await?;
            self.committed(done);
            Ok(())
        })
        .await
    }
}
