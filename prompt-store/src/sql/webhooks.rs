//! [`WebhookStore`] on any SQL dialect: one statement body per operation for both
//! databases (`$N` placeholders bind by number on SQLite too).
//!
//! Concurrency: a lease is one conditional `UPDATE … RETURNING` whose outer `WHERE`
//! repeats the "free and due" test, so a worker whose candidate row was leased by
//! another in the meantime skips it (Postgres re-checks the `WHERE` of a row it
//! waited for; SQLite's single writer runs the statement alone). On Postgres the
//! candidates are also picked `FOR UPDATE SKIP LOCKED`, so concurrent workers take
//! disjoint sets instead of waiting for each other. Recording a delivery reads the
//! webhook's row with [`Dialect::FOR_UPDATE`] in a write transaction, checks the lease
//! owner, then writes the log row and the new state before commit.
//!
//! One file, over 600 lines, on purpose: it is the one implementation of
//! `WebhookStore` (its statements, row mappings and transaction scripts) for both
//! dialects, as `prompts.rs` is for `PromptStore`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::domain::now;
use prompt_core::page::{Page, PageRequest};
use prompt_core::{
    Delivery, DeliveryReport, DeliveryStatus, Error, EventType, Result, Webhook, WebhookStore,
    WebhookUpdate,
};
use sqlx::{ColumnIndex, Decode, Encode, Executor, Row, Type};
use uuid::Uuid;

use super::dialect::Dialect;
use super::store::{begin_write, finish, write};
use super::{Failure, SqlStore, is_foreign_key_violation, is_unique_violation, to_i64, to_u64};

/// The columns of a webhook.
macro_rules! hook_cols {
    () => {
        "id, project_id, url, event_types, prompts, enabled, disabled_reason, secret_sealed, \
         cursor, failures, next_attempt_at, failing_since, created_by, created_at, updated_at"
    };
}

/// The columns of a delivery.
macro_rules! delivery_cols {
    () => {
        "id, webhook_id, event_seq, event_id, event_type, attempt, manual, status, \
         http_status, error, response_excerpt, latency_ms, at"
    };
}

fn not_found(id: Uuid) -> Error {
    Error::not_found(format!("webhook {id}"))
}

fn status_str(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::GivenUp => "given_up",
    }
}

fn parse_status(s: &str) -> Result<DeliveryStatus> {
    match s {
        "delivered" => Ok(DeliveryStatus::Delivered),
        "failed" => Ok(DeliveryStatus::Failed),
        "given_up" => Ok(DeliveryStatus::GivenUp),
        other => Err(Error::internal(format!(
            "stored delivery status '{other}' is unknown"
        ))),
    }
}

fn small(field: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::internal(format!("stored {field} is out of range: {v}")))
}

/// The lease statement: `$1` worker, `$2` until, `$3` now, `$4` limit. Only webhooks
/// with pending events (cursor below the project's head) are candidates. `lock` picks
/// the candidates without waiting on rows other workers are leasing (Postgres).
fn lease_sql(lock: &str) -> String {
    format!(
        concat!(
            "WITH picked AS MATERIALIZED (\
               SELECT id FROM webhooks WHERE enabled AND next_attempt_at <= $3 \
               AND (lease_owner IS NULL OR lease_until <= $3) \
               AND cursor < COALESCE((SELECT h.seq FROM event_heads h \
                                      WHERE h.project_id = webhooks.project_id), 0) \
               ORDER BY next_attempt_at, id LIMIT $4{}) \
             UPDATE webhooks SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT id FROM picked) AND enabled AND next_attempt_at <= $3 \
             AND (lease_owner IS NULL OR lease_until <= $3) \
             RETURNING ",
            hook_cols!()
        ),
        lock
    )
}

#[expect(
    private_bounds,
    reason = "crate-internal helpers of the generic store: its public surface is the store traits"
)]
impl<D, S> SqlStore<D, S>
where
    D: Dialect<State = S>,
    S: Send + Sync + 'static,
    for<'a> &'a str: ColumnIndex<D::Row>,
    for<'q> Uuid: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> String: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> i64: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> bool: Encode<'q, D> + Decode<'q, D> + Type<D>,
{
    fn webhook_from_row(r: &D::Row) -> Result<Webhook, Failure> {
        let types: Vec<String> = D::from_text_list("event_types", r.try_get("event_types")?)?;
        let events = types
            .iter()
            .map(|t| {
                EventType::parse("event_types", t)
                    .map_err(|_| Error::internal(format!("stored event type '{t}' is unknown")))
            })
            .collect::<Result<Vec<_>>>()?;
        let failing_since: Option<D::Time> = r.try_get("failing_since")?;
        Ok(Webhook {
            id: r.try_get("id")?,
            project_id: r.try_get("project_id")?,
            url: r.try_get("url")?,
            events,
            prompts: D::from_text_list("prompts", r.try_get("prompts")?)?,
            enabled: r.try_get("enabled")?,
            disabled_reason: r.try_get("disabled_reason")?,
            cursor: to_u64("cursor", r.try_get("cursor")?)?,
            failures: small("failures", r.try_get("failures")?)?,
            next_attempt_at: D::from_time(r.try_get("next_attempt_at")?)?,
            failing_since: failing_since.map(D::from_time).transpose()?,
            created_by: r.try_get("created_by")?,
            created_at: D::from_time(r.try_get("created_at")?)?,
            updated_at: D::from_time(r.try_get("updated_at")?)?,
            secret_sealed: r.try_get("secret_sealed")?,
        })
    }

    fn delivery_from_row(r: &D::Row) -> Result<Delivery, Failure> {
        let kind: String = r.try_get("event_type")?;
        let http_status: Option<i64> = r.try_get("http_status")?;
        Ok(Delivery {
            id: r.try_get("id")?,
            webhook_id: r.try_get("webhook_id")?,
            event_seq: to_u64("event_seq", r.try_get("event_seq")?)?,
            event_id: r.try_get("event_id")?,
            event_type: EventType::parse("event_type", &kind)
                .map_err(|_| Error::internal(format!("stored event type '{kind}' is unknown")))?,
            attempt: small("attempt", r.try_get("attempt")?)?,
            manual: r.try_get("manual")?,
            status: parse_status(&r.try_get::<String, _>("status")?)?,
            http_status: http_status
                .map(|s| {
                    u16::try_from(s)
                        .map_err(|_| Error::internal(format!("stored http_status {s} is invalid")))
                })
                .transpose()?,
            error: r.try_get("error")?,
            response_excerpt: r.try_get("response_excerpt")?,
            latency_ms: to_u64("latency_ms", r.try_get("latency_ms")?)?,
            at: D::from_time(r.try_get("at")?)?,
        })
    }
}

/// A delivery's values, checked and encoded once (before any retried attempt).
struct DeliveryRow {
    seq: i64,
    attempt: i64,
    http_status: Option<i64>,
    latency: i64,
}

impl DeliveryRow {
    fn of(d: &Delivery) -> Result<Self> {
        Ok(DeliveryRow {
            seq: to_i64("event_seq", d.event_seq)?,
            attempt: i64::from(d.attempt),
            http_status: d.http_status.map(i64::from),
            latency: to_i64("latency_ms", d.latency_ms)?,
        })
    }
}

const INSERT_DELIVERY: &str = concat!(
    "INSERT INTO webhook_deliveries (",
    delivery_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

#[async_trait]
impl<D, S> WebhookStore for SqlStore<D, S>
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
    for<'q> Option<bool>: Encode<'q, D>,
    for<'q> Option<D::Time>: Encode<'q, D>,
    for<'q> Option<D::TextList>: Encode<'q, D>,
{
    async fn create_webhook(&self, webhook: Webhook) -> Result<Webhook> {
        let types: Vec<String> = webhook.events.iter().map(|t| t.to_string()).collect();
        let types = D::text_list("event_types", &types)?;
        let prompts = D::text_list("prompts", &webhook.prompts)?;
        let w = &webhook;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            // The project's head, read in the transaction that stores the cursor.
            let head: Option<i64> =
                sqlx::query("SELECT seq FROM event_heads WHERE project_id = $1")
                    .bind(w.project_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("seq"))
                    .transpose()?;
            let r = sqlx::query(concat!(
                "INSERT INTO webhooks (",
                hook_cols!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                 RETURNING ",
                hook_cols!()
            ))
            .bind(w.id)
            .bind(w.project_id)
            .bind(&w.url)
            .bind(&types)
            .bind(&prompts)
            .bind(w.enabled)
            .bind(&w.disabled_reason)
            .bind(&w.secret_sealed)
            .bind(head.unwrap_or(0))
            .bind(0i64)
            .bind(D::time(w.next_attempt_at))
            .bind(None::<D::Time>)
            .bind(&w.created_by)
            .bind(D::time(w.created_at))
            .bind(D::time(w.updated_at))
            .fetch_one(&mut *tx)
            .await;
            let row = match r {
                Ok(row) => row,
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(Error::not_found(format!("project {}", w.project_id)).into());
                }
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::already_exists(format!("webhook {}", w.id)).into());
                }
                Err(e) => return Err(e.into()),
            };
            let hook = Self::webhook_from_row(&row)?;
            tx.commit().await?;
            Ok(hook)
        })
        .await
    }

    async fn list_webhooks(&self, project: Uuid) -> Result<Vec<Webhook>> {
        finish::<D, _>(
            async {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    hook_cols!(),
                    " FROM webhooks WHERE project_id = $1 ORDER BY created_at, id"
                ))
                .bind(project)
                .fetch_all(&self.reader)
                .await?;
                rows.iter().map(Self::webhook_from_row).collect()
            }
            .await,
        )
    }

    async fn get_webhook(&self, project: Uuid, id: Uuid) -> Result<Webhook> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    hook_cols!(),
                    " FROM webhooks WHERE project_id = $1 AND id = $2"
                ))
                .bind(project)
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| not_found(id))?;
                Self::webhook_from_row(&row)
            }
            .await,
        )
    }

    async fn update_webhook(
        &self,
        project: Uuid,
        id: Uuid,
        update: WebhookUpdate,
    ) -> Result<Webhook> {
        let types = update
            .events
            .as_ref()
            .map(|e| {
                let names: Vec<String> = e.iter().map(|t| t.to_string()).collect();
                D::text_list("event_types", &names)
            })
            .transpose()?;
        let prompts = update
            .prompts
            .as_ref()
            .map(|p| D::text_list("prompts", p))
            .transpose()?;
        let u = &update;
        write::<D, _, _, _>(|| async {
            let at = D::time(now());
            // Enabling clears the failure state and makes the next attempt due now;
            // disabling by hand keeps it (and the automatic reason, if any).
            let row = sqlx::query(concat!(
                "UPDATE webhooks SET \
                   url = COALESCE($3, url), \
                   event_types = COALESCE($4, event_types), \
                   prompts = COALESCE($5, prompts), \
                   secret_sealed = COALESCE($6, secret_sealed), \
                   enabled = COALESCE($7, enabled), \
                   disabled_reason = CASE WHEN $8 THEN NULL ELSE disabled_reason END, \
                   failures = CASE WHEN $8 THEN 0 ELSE failures END, \
                   failing_since = CASE WHEN $8 THEN NULL ELSE failing_since END, \
                   next_attempt_at = CASE WHEN $8 THEN $9 ELSE next_attempt_at END, \
                   updated_at = $9 \
                 WHERE project_id = $1 AND id = $2 RETURNING ",
                hook_cols!()
            ))
            .bind(project)
            .bind(id)
            .bind(&u.url)
            .bind(&types)
            .bind(&prompts)
            .bind(&u.secret_sealed)
            .bind(u.enabled)
            .bind(u.enabled == Some(true))
            .bind(&at)
            .fetch_optional(&self.writer)
            .await?
            .ok_or_else(|| not_found(id))?;
            Self::webhook_from_row(&row)
        })
        .await
    }

    async fn delete_webhook(&self, project: Uuid, id: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let r = sqlx::query("DELETE FROM webhooks WHERE project_id = $1 AND id = $2")
                .bind(project)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if D::rows_affected(&r) == 0 {
                return Err(not_found(id).into());
            }
            // The schema cascades too; explicit so that the log goes with the webhook
            // whatever the connection's foreign-key setting.
            sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn lease_webhooks(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Webhook>> {
        // Postgres: skip rows another worker is leasing right now (its FOR_UPDATE is
        // a row lock); SQLite: the single writer runs the statement alone.
        let lock = if D::FOR_UPDATE.is_empty() {
            String::new()
        } else {
            format!("{} SKIP LOCKED", D::FOR_UPDATE)
        };
        let sql = lease_sql(&lock);
        let mut hooks = write::<D, _, _, _>(|| async {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(worker)
                .bind(D::time(until))
                .bind(D::time(now))
                .bind(i64::from(limit))
                .fetch_all(&self.writer)
                .await?;
            rows.iter()
                .map(Self::webhook_from_row)
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        hooks.sort_by_key(|h| (h.next_attempt_at, h.id));
        Ok(hooks)
    }

    async fn record_delivery(&self, worker: &str, report: DeliveryReport) -> Result<Webhook> {
        let d = &report.delivery;
        let vals = DeliveryRow::of(d)?;
        let cursor = to_i64("cursor", report.cursor)?;
        let r = &report;
        let vals = &vals;
        write::<D, _, _, _>(|| async {
            let mut tx = begin_write(&self.writer).await?;
            let owner: Option<Option<String>> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT lease_owner FROM webhooks WHERE id = $1{}",
                D::FOR_UPDATE
            )))
            .bind(d.webhook_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("lease_owner"))
            .transpose()?;
            match owner {
                None => return Err(not_found(d.webhook_id).into()),
                Some(Some(w)) if w == worker => {}
                Some(_) => {
                    return Err(Error::conflict(format!(
                        "webhook {} is not leased to worker '{worker}' (any more)",
                        d.webhook_id
                    ))
                    .into());
                }
            }
            sqlx::query(INSERT_DELIVERY)
                .bind(d.id)
                .bind(d.webhook_id)
                .bind(vals.seq)
                .bind(d.event_id)
                .bind(d.event_type.as_str())
                .bind(vals.attempt)
                .bind(d.manual)
                .bind(status_str(d.status))
                .bind(vals.http_status)
                .bind(&d.error)
                .bind(&d.response_excerpt)
                .bind(vals.latency)
                .bind(D::time(d.at))
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(concat!(
                "UPDATE webhooks SET cursor = $2, failures = $3, next_attempt_at = $4, \
                   failing_since = $5, \
                   enabled = CASE WHEN $6 IS NULL THEN enabled ELSE $7 END, \
                   disabled_reason = COALESCE($6, disabled_reason) \
                 WHERE id = $1 RETURNING ",
                hook_cols!()
            ))
            .bind(d.webhook_id)
            .bind(cursor)
            .bind(i64::from(r.failures))
            .bind(D::time(r.next_attempt_at))
            .bind(r.failing_since.map(D::time))
            .bind(&r.disable)
            .bind(false)
            .fetch_one(&mut *tx)
            .await?;
            let hook = Self::webhook_from_row(&row)?;
            tx.commit().await?;
            Ok(hook)
        })
        .await
    }

    async fn skip_events(&self, worker: &str, id: Uuid, cursor: u64) -> Result<Webhook> {
        let cursor = to_i64("cursor", cursor)?;
        write::<D, _, _, _>(|| async {
            // One conditional statement: the lease check and the move together.
            let row = sqlx::query(concat!(
                "UPDATE webhooks SET cursor = CASE WHEN cursor < $3 THEN $3 ELSE cursor END \
                 WHERE id = $1 AND lease_owner = $2 RETURNING ",
                hook_cols!()
            ))
            .bind(id)
            .bind(worker)
            .bind(cursor)
            .fetch_optional(&self.writer)
            .await?;
            match row {
                Some(row) => Self::webhook_from_row(&row),
                None => {
                    let exists = sqlx::query("SELECT id FROM webhooks WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.writer)
                        .await?;
                    Err(match exists {
                        None => not_found(id),
                        Some(_) => Error::conflict(format!(
                            "webhook {id} is not leased to worker '{worker}' (any more)"
                        )),
                    }
                    .into())
                }
            }
        })
        .await
    }

    async fn log_delivery(&self, project: Uuid, delivery: Delivery) -> Result<Delivery> {
        let vals = DeliveryRow::of(&delivery)?;
        let d = &delivery;
        let vals = &vals;
        write::<D, _, _, _>(|| async {
            // Inserted only if the webhook is the project's: one statement.
            let r = sqlx::query(concat!(
                "INSERT INTO webhook_deliveries (",
                delivery_cols!(),
                ") SELECT $1, id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
                 FROM webhooks WHERE id = $2 AND project_id = $14"
            ))
            .bind(d.id)
            .bind(d.webhook_id)
            .bind(vals.seq)
            .bind(d.event_id)
            .bind(d.event_type.as_str())
            .bind(vals.attempt)
            .bind(d.manual)
            .bind(status_str(d.status))
            .bind(vals.http_status)
            .bind(&d.error)
            .bind(&d.response_excerpt)
            .bind(vals.latency)
            .bind(D::time(d.at))
            .bind(project)
            .execute(&self.writer)
            .await?;
            if D::rows_affected(&r) == 0 {
                return Err(not_found(d.webhook_id).into());
            }
            Ok(())
        })
        .await?;
        Ok(delivery)
    }

    async fn release_webhook(&self, worker: &str, id: Uuid) -> Result<()> {
        write::<D, _, _, _>(|| async {
            sqlx::query(
                "UPDATE webhooks SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(worker)
            .execute(&self.writer)
            .await?;
            Ok(())
        })
        .await
    }

    async fn list_deliveries(
        &self,
        project: Uuid,
        webhook: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Delivery>> {
        let limit = page.limit()?;
        let before: Option<Uuid> = page.position()?;
        let items = finish::<D, _>(
            async {
                let exists =
                    sqlx::query("SELECT id FROM webhooks WHERE project_id = $1 AND id = $2")
                        .bind(project)
                        .bind(webhook)
                        .fetch_optional(&self.reader)
                        .await?;
                if exists.is_none() {
                    return Err(not_found(webhook).into());
                }
                let rows = match before {
                    None => {
                        sqlx::query(concat!(
                            "SELECT ",
                            delivery_cols!(),
                            " FROM webhook_deliveries WHERE webhook_id = $1 \
                             ORDER BY id DESC LIMIT $2"
                        ))
                        .bind(webhook)
                        .bind(i64::from(limit) + 1)
                        .fetch_all(&self.reader)
                        .await?
                    }
                    Some(b) => {
                        sqlx::query(concat!(
                            "SELECT ",
                            delivery_cols!(),
                            " FROM webhook_deliveries WHERE webhook_id = $1 AND id < $3 \
                             ORDER BY id DESC LIMIT $2"
                        ))
                        .bind(webhook)
                        .bind(i64::from(limit) + 1)
                        .bind(b)
                        .fetch_all(&self.reader)
                        .await?
                    }
                };
                rows.iter()
                    .map(Self::delivery_from_row)
                    .collect::<Result<Vec<_>, _>>()
            }
            .await,
        )?;
        Page::from_overfetch(items, limit, |d| d.id)
    }

    async fn get_delivery(&self, project: Uuid, webhook: Uuid, id: Uuid) -> Result<Delivery> {
        finish::<D, _>(
            async {
                let row = sqlx::query(concat!(
                    "SELECT d.",
                    "id, d.webhook_id, d.event_seq, d.event_id, d.event_type, d.attempt, \
                     d.manual, d.status, d.http_status, d.error, d.response_excerpt, \
                     d.latency_ms, d.at \
                     FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                     WHERE w.project_id = $1 AND d.webhook_id = $2 AND d.id = $3"
                ))
                .bind(project)
                .bind(webhook)
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .ok_or_else(|| Error::not_found(format!("delivery {id}")))?;
                Self::delivery_from_row(&row)
            }
            .await,
        )
    }

    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64> {
        write::<D, _, _, _>(|| async {
            let r = sqlx::query("DELETE FROM webhook_deliveries WHERE at < $1")
                .bind(D::time(before))
                .execute(&self.writer)
                .await?;
            Ok(D::rows_affected(&r))
        })
        .await
    }
}
