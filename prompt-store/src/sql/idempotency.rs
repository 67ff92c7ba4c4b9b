//! Idempotency keys on any SQL dialect (`idempotency_keys`): a claim deletes the
//! key's expired or abandoned row, inserts its own unless a row is there, and
//! otherwise reads the row that is, all in one write transaction (see
//! [`prompt_core::IdempotencyStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::{
    ClaimTimes, IdempotencyClaim, IdempotencyStore, IdempotentRequest, IdempotentResponse, Result,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::SqlStore;
use super::dialect::Dialect;
use super::store::{begin_write, write};

/// A stored status back as a status code (a row this store wrote holds one).
fn status_of(n: i64) -> Result<u16> {
    u16::try_from(n)
        .map_err(|_| prompt_core::Error::internal(format!("idempotency key with status {n}")))
}

#[async_trait]
impl<D, S> IdempotencyStore for SqlStore<D, S>
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
    for<'q> Vec<u8>: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> Option<String>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> Option<Vec<u8>>: Encode<'q, D>,
{
    async fn claim_key(
        &self,
        request: &IdempotentRequest,
        times: ClaimTimes,
    ) -> Result<IdempotencyClaim> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            sqlx::query(
                "DELETE FROM idempotency_keys \
                 WHERE project_id = $1 AND principal_id = $2 AND idempotency_key = $3 \
                 AND (expires_at <= $4 OR (status IS NULL AND created_at < $5))",
            )
            .bind(request.project)
            .bind(request.principal)
            .bind(request.key.as_str())
            .bind(D::time(times.now))
            .bind(D::time(times.abandoned_before))
            .execute(&mut *tx)
            .await?;
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (project_id, principal_id, idempotency_key, \
                 request, body_sha256, claim_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (project_id, principal_id, idempotency_key) DO NOTHING",
            )
            .bind(request.project)
            .bind(request.principal)
            .bind(request.key.as_str())
            .bind(request.request.as_str())
            .bind(request.body_sha256.as_str())
            .bind(request.claim)
            .bind(D::time(times.now))
            .bind(D::time(times.expires_at))
            .execute(&mut *tx)
            .await?;
            let claim = if D::rows_affected(&inserted) == 1 {
                IdempotencyClaim::Claimed
            } else {
                let row = sqlx::query(
                    "SELECT request, body_sha256, status, content_type, location, body \
                     FROM idempotency_keys \
                     WHERE project_id = $1 AND principal_id = $2 AND idempotency_key = $3",
                )
                .bind(request.project)
                .bind(request.principal)
                .bind(request.key.as_str())
                .fetch_one(&mut *tx)
                .await?;
                let stored: String = row.try_get("request")?;
                let sha: String = row.try_get("body_sha256")?;
                let status: Option<i64> = row.try_get("status")?;
                if stored != request.request || sha != request.body_sha256 {
                    IdempotencyClaim::Mismatch
                } else {
                    match status {
                        None => IdempotencyClaim::InFlight,
                        Some(n) => IdempotencyClaim::Completed(IdempotentResponse {
                            status: status_of(n)?,
                            content_type: row.try_get("content_type")?,
                            location: row.try_get("location")?,
                            body: row.try_get("body")?,
                        }),
                    }
                }
            };
            tx.commit().await?;
            Ok(claim)
        })
        .await
    }

    async fn complete_key(
        &self,
        request: &IdempotentRequest,
        response: &IdempotentResponse,
    ) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            sqlx::query(
                "UPDATE idempotency_keys \
                 SET status = $5, content_type = $6, location = $7, body = $8 \
                 WHERE project_id = $1 AND principal_id = $2 AND idempotency_key = $3 \
                 AND claim_id = $4",
            )
            .bind(request.project)
            .bind(request.principal)
            .bind(request.key.as_str())
            .bind(request.claim)
            .bind(i64::from(response.status))
            .bind(response.content_type.clone())
            .bind(response.location.clone())
            .bind(response.body.clone())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn release_key(&self, request: &IdempotentRequest) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            sqlx::query(
                "DELETE FROM idempotency_keys \
                 WHERE project_id = $1 AND principal_id = $2 AND idempotency_key = $3 \
                 AND claim_id = $4 AND status IS NULL",
            )
            .bind(request.project)
            .bind(request.principal)
            .bind(request.key.as_str())
            .bind(request.claim)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn purge_expired_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let r = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
                .bind(D::time(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(D::rows_affected(&r))
        })
        .await
    }
}
