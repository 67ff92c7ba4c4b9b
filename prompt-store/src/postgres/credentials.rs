//! Provider credentials on Postgres (the sealed keys are opaque text here).

use prompt_core::credential::Reseal;
use prompt_core::{Error, ProviderCredential, ProviderKind, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use sqlx::types::Json;

use super::error::{is_foreign_key_violation, rolled_back};
use super::{PostgresStore, attempt, finish};
use crate::sql::{self, Failure};

const COLS: &str = "project_id, name, kind, base_url, sealed_api_key, key_hint, default_params, \
                    created_at, updated_at";

fn from_row(r: &PgRow) -> Result<ProviderCredential, Failure> {
    Ok(ProviderCredential {
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        kind: ProviderKind::parse(&r.try_get::<String, _>("kind")?)?,
        base_url: r.try_get("base_url")?,
        sealed_api_key: r.try_get("sealed_api_key")?,
        key_hint: r.try_get("key_hint")?,
        default_params: r.try_get::<Json<serde_json::Value>, _>("default_params")?.0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("provider '{name}'"))
}

pub(super) async fn put(s: &PostgresStore, c: ProviderCredential) -> Result<ProviderCredential> {
    c.validate()?;
    attempt(|| async {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO provider_credentials ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (project_id, name) DO UPDATE SET kind = excluded.kind, \
             base_url = excluded.base_url, sealed_api_key = excluded.sealed_api_key, \
             key_hint = excluded.key_hint, default_params = excluded.default_params, \
             updated_at = excluded.updated_at \
             RETURNING {COLS}"
        )))
        .bind(c.project_id)
        .bind(&c.name)
        .bind(c.kind.as_str())
        .bind(&c.base_url)
        .bind(&c.sealed_api_key)
        .bind(&c.key_hint)
        .bind(Json(&c.default_params))
        .bind(c.created_at)
        .bind(c.updated_at)
        .fetch_one(&s.pool)
        .await;
        match r {
            Ok(row) => from_row(&row),
            Err(e) if is_foreign_key_violation(&e) => {
                Err(Error::not_found(format!("project {}", c.project_id)).into())
            }
            Err(e) => Err(e.into()),
        }
    })
    .await
}

pub(super) async fn get(
    s: &PostgresStore,
    project: Uuid,
    name: &str,
) -> Result<ProviderCredential> {
    finish(
        async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM provider_credentials WHERE project_id = $1 AND name = $2"
            )))
            .bind(project)
            .bind(name)
            .fetch_optional(&s.pool)
            .await?
            .ok_or_else(|| not_found(name))?;
            from_row(&row)
        }
        .await,
    )
}

pub(super) async fn list(s: &PostgresStore, project: Uuid) -> Result<Vec<ProviderCredential>> {
    finish(
        async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM provider_credentials WHERE project_id = $1 ORDER BY name"
            )))
            .bind(project)
            .fetch_all(&s.pool)
            .await?;
            rows.iter().map(from_row).collect()
        }
        .await,
    )
}

pub(super) async fn delete(s: &PostgresStore, project: Uuid, name: &str) -> Result<()> {
    attempt(|| async {
        let r = sqlx::query("DELETE FROM provider_credentials WHERE project_id = $1 AND name = $2")
            .bind(project)
            .bind(name)
            .execute(&s.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(not_found(name).into());
        }
        Ok(())
    })
    .await
}

pub(super) async fn reseal(s: &PostgresStore, reseal: &Reseal) -> Result<u64> {
    finish(
        sql::retry(rolled_back, || async {
            let mut tx = s.pool.begin().await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM provider_credentials FOR UPDATE"
            )))
            .fetch_all(&mut *tx)
            .await?;
            let mut n = 0u64;
            for row in &rows {
                let c = from_row(row)?;
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
        .await,
    )
}
