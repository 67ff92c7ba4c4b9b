//! Provider credentials on any SQL dialect (the sealed keys are opaque text here).

use prompt_core::credential::Reseal;
use prompt_core::{Error, NewEvent, ProviderCredential, ProviderKind, Result};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::store::{begin_write, finish, write};
use super::{Failure, SqlStore, is_foreign_key_violation};

/// The columns of a credential.
macro_rules! cols {
    () => {
        "project_id, name, kind, base_url, sealed_api_key, key_hint, default_params, \
         created_at, updated_at"
    };
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("provider '{name}'"))
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
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
{
    fn credential_from_row(r: &D::Row) -> Result<ProviderCredential, Failure> {
        Ok(ProviderCredential {
            project_id: r.try_get("project_id")?,
            name: r.try_get("name")?,
            kind: ProviderKind::parse(&r.try_get::<String, _>("kind")?)?,
            base_url: r.try_get("base_url")?,
            sealed_api_key: r.try_get("sealed_api_key")?,
            key_hint: r.try_get("key_hint")?,
            default_params: D::from_json("default_params", r.try_get("default_params")?)?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            updated_at: D::from_time(r.try_get("updated_at")?)?,
        })
    }

    /// Create or replace a credential (`NotFound` if the project does not exist).
    pub(crate) async fn put_credential(&self, c: ProviderCredential) -> Result<ProviderCredential> {
        let params = D::json("default_params", &c.default_params)?;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let r = sqlx::query(concat!(
                "INSERT INTO provider_credentials (",
                cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (project_id, name) DO UPDATE SET kind = excluded.kind, \
                 base_url = excluded.base_url, sealed_api_key = excluded.sealed_api_key, \
                 key_hint = excluded.key_hint, default_params = excluded.default_params, \
                 updated_at = excluded.updated_at \
                 RETURNING ",
                cols!()
            ))
            .bind(c.project_id)
            .bind(&c.name)
            .bind(c.kind.as_str())
            .bind(&c.base_url)
            .bind(&c.sealed_api_key)
            .bind(&c.key_hint)
            .bind(&params)
            .bind(D::time(c.created_at))
            .bind(D::time(c.updated_at))
            .fetch_one(&mut *tx)
            .await;
            let stored = match r {
                Ok(row) => Self::credential_from_row(&row)?,
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(Error::not_found(format!("project {}", c.project_id)).into());
                }
                Err(e) => return Err(e.into()),
            };
            let ev = vec![NewEvent::credential_put(&stored)];
            let done = self.append_events(&mut tx, c.project_id, ev).await?;
            tx.commit().await?;
            self.committed(done);
            Ok(stored)
        })
        .await
    }

    /// The credential `name` of `project`, or `NotFound`.
    pub(crate) async fn get_credential(
        &self,
        project: Uuid,
        name: &str,
    ) -> Result<ProviderCredential> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    cols!(),
                    " FROM provider_credentials WHERE project_id = $1 AND name = $2"
                ))
                .bind(project)
                .bind(name)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| not_found(name))?;
                Self::credential_from_row(&row)
            }
            .await,
        )
    }

    /// The credentials of `project`, by name.
    pub(crate) async fn list_credentials(&self, project: Uuid) -> Result<Vec<ProviderCredential>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    cols!(),
                    " FROM provider_credentials WHERE project_id = $1 ORDER BY name"
                ))
                .bind(project)
                .fetch_all(&self.reader)
                .await?;
                // A credential that cannot be decoded is left out (and logged), not the
                // listing's failure: the providers, `/v1/models` and every execution
                // read this list; that one provider answers "not configured" until it
                // is put again or deleted (neither needs to decode it).
                Ok(rows
                    .iter()
                    .filter_map(|row| {
                        Self::credential_from_row(row)
                            .map_err(|e| {
                                let name = row.try_get::<String, _>("name").unwrap_or_default();
                                tracing::error!(
                                    provider = %name,
                                    error = ?e,
                                    "a stored provider credential cannot be decoded: left out"
                                );
                            })
                            .ok()
                    })
                    .collect())
            }
            .await,
        )
    }

    /// Delete the credential `name` of `project` (`NotFound` if there is none).
    pub(crate) async fn delete_credential(&self, project: Uuid, name: &str) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let r =
                sqlx::query("DELETE FROM provider_credentials WHERE project_id = $1 AND name = $2")
                    .bind(project)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            if D::rows_affected(&r) == 0 {
                return Err(not_found(name).into());
            }
            let ev = vec![NewEvent::credential_deleted(name)];
            let c = self.append_events(&mut tx, project, ev).await?;
            tx.commit().await?;
            self.committed(c);
            Ok(())
        })
        .await
    }

    /// Re-seal every stored key with `reseal`, in one transaction that holds the rows
    /// (all or nothing). Returns how many were re-sealed.
    pub(crate) async fn reseal_credentials(&self, reseal: &Reseal) -> Result<u64> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                concat!("SELECT ", cols!(), " FROM provider_credentials{}"),
                D::FOR_UPDATE
            )))
            .fetch_all(&mut *tx)
            .await?;
            let mut n = 0u64;
            for row in &rows {
                let c = Self::credential_from_row(row)?;
                let sealed = reseal(&c)?;
                sqlx::query(
                    "UPDATE provider_credentials SET sealed_api_key = $1 \
                     WHERE project_id = $2 AND name = $3",
                )
                .bind(&sealed)
                .bind(c.project_id)
                .bind(&c.name)
                .execute(&mut *tx)
                .await?;
                n += 1;
            }
            tx.commit().await?;
            Ok(n)
        })
        .await
    }
}
