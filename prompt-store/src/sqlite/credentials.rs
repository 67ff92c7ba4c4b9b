//! Provider credentials on SQLite (the sealed keys are opaque text here).

use prompt_core::credential::Reseal;
use prompt_core::{Error, ProviderCredential, ProviderKind, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::error::{is_foreign_key_violation, rolled_back};
use super::{SqliteStore, finish, micros, time, write};
use crate::sql::{self, Failure, from_json, to_json};

const COLS: &str = "project_id, name, kind, base_url, sealed_api_key, key_hint, default_params, \
                    created_at, updated_at";

fn from_row(r: &SqliteRow) -> Result<ProviderCredential, Failure> {
    Ok(ProviderCredential {
        project_id: r.try_get("project_id")?,
        name: r.try_get("name")?,
        kind: ProviderKind::parse(&r.try_get::<String, _>("kind")?)?,
        base_url: r.try_get("base_url")?,
        sealed_api_key: r.try_get("sealed_api_key")?,
        key_hint: r.try_get("key_hint")?,
        default_params: from_json("default_params", &r.try_get::<String, _>("default_params")?)?,
        created_at: time(r.try_get("created_at")?)?,
        updated_at: time(r.try_get("updated_at")?)?,
    })
}

fn not_found(name: &str) -> Error {
    Error::not_found(format!("provider '{name}'"))
}

pub(super) async fn put(s: &SqliteStore, c: ProviderCredential) -> Result<ProviderCredential> {
    c.validate()?;
    let params = to_json("default_params", &c.default_params)?;
    write(|| async {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO provider_credentials ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
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
        .bind(&params)
        .bind(micros(c.created_at))
        .bind(micros(c.updated_at))
        .fetch_one(&s.writer)
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

pub(super) async fn get(s: &SqliteStore, project: Uuid, name: &str) -> Result<ProviderCredential> {
    finish(
        async {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM provider_credentials WHERE project_id = ?1 AND name = ?2"
            )))
            .bind(project)
            .bind(name)
            .fetch_optional(&s.reader)
            .await?
            .ok_or_else(|| not_found(name))?;
            from_row(&row)
        }
        .await,
    )
}

pub(super) async fn list(s: &SqliteStore, project: Uuid) -> Result<Vec<ProviderCredential>> {
    finish(
        async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM provider_credentials WHERE project_id = ?1 ORDER BY name"
            )))
            .bind(project)
            .fetch_all(&s.reader)
            .await?;
            rows.iter().map(from_row).collect()
        }
        .await,
    )
}

pub(super) async fn delete(s: &SqliteStore, project: Uuid, name: &str) -> Result<()> {
    write(|| async {
        let r = sqlx::query("DELETE FROM provider_credentials WHERE project_id = ?1 AND name = ?2")
            .bind(project)
            .bind(name)
            .execute(&s.writer)
            .await?;
        if r.rows_affected() == 0 {
            return Err(not_found(name).into());
        }
        Ok(())
    })
    .await
}

pub(super) async fn reseal(s: &SqliteStore, reseal: &Reseal) -> Result<u64> {
    finish(
        sql::retry(rolled_back, || async {
            let mut tx = s.begin_write().await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLS} FROM provider_credentials"
            )))
            .fetch_all(&mut *tx)
            .await?;
            let mut n = 0u64;
            for row in &rows {
                let c = from_row(row)?;
                let sealed = reseal(&c)?;
                sqlx::query(
                    "UPDATE provider_credentials SET sealed_api_key = ?1 \
                     WHERE project_id = ?2 AND name = ?3",
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
