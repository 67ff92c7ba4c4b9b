//! The Postgres [`Dialect`]: `timestamptz`, `jsonb`, `text[]`, booleans, `FOR UPDATE`
//! row locks, and `NOTIFY` to other instances' caches on every change of a prompt or
//! an API key.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use prompt_core::{Error, Result};
use serde_json::Value;
use sqlx::postgres::PgQueryResult;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{PostgresState, listener};
use crate::sql::{Dialect, Failure, PromptSql};

static PROMPT_SQL: LazyLock<PromptSql> = LazyLock::new(PromptSql::new::<Postgres>);

impl Dialect for Postgres {
    type State = PostgresState;
    type Time = DateTime<Utc>;
    type Json = Value;
    type TextList = Vec<String>;

    fn live(alias: &str) -> String {
        format!("NOT {alias}archived")
    }

    const TRUE: &'static str = "true";
    const FALSE: &'static str = "false";
    const LABELS_OBJECT: &'static str = "COALESCE((SELECT jsonb_object_agg(l.label, l.version) \
                                         FROM labels l WHERE l.prompt_id = p.id), '{}'::jsonb)";
    const VERSION_LABELS: &'static str = "ARRAY(SELECT l.label FROM labels l \
                                          WHERE l.prompt_id = v.prompt_id AND l.version = v.version)";
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const BEGIN_WRITE: Option<&'static str> = None;

    fn time(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }

    fn from_time(t: DateTime<Utc>) -> Result<DateTime<Utc>> {
        Ok(t)
    }

    fn json<T: serde::Serialize>(column: &str, v: &T) -> Result<Value> {
        serde_json::to_value(v).map_err(|e| Error::internal(format!("cannot encode {column}: {e}")))
    }

    fn from_json<T: serde::de::DeserializeOwned>(column: &str, v: Value) -> Result<T> {
        serde_json::from_value(v)
            .map_err(|e| Error::internal(format!("stored {column} has an unexpected shape: {e}")))
    }

    fn text_list(_column: &str, v: &[String]) -> Result<Vec<String>> {
        Ok(v.to_vec())
    }

    fn from_text_list(_column: &str, v: Vec<String>) -> Result<Vec<String>> {
        Ok(v)
    }

    fn push_has_tag(q: &mut QueryBuilder<Postgres>, tag: &str) {
        q.push(" AND ")
            .push_bind(tag.to_owned())
            .push(" = ANY(p.tags)");
    }

    fn push_name_starts_with(q: &mut QueryBuilder<Postgres>, prefix: &str) {
        // Literal prefix, no LIKE patterns.
        q.push(" AND starts_with(p.name, ")
            .push_bind(prefix.to_owned())
            .push(")");
    }

    fn prompt_sql() -> &'static PromptSql {
        &PROMPT_SQL
    }

    fn rows_affected(r: &PgQueryResult) -> u64 {
        r.rows_affected()
    }

    fn parse_error(e: sqlx::Error) -> Error {
        super::parse_postgres_error(e)
    }

    fn rolled_back(e: &sqlx::Error) -> bool {
        super::error::rolled_back(e)
    }

    /// `NOTIFY` on the configured channel (delivered when the transaction commits, and
    /// only then), unless notifications are off.
    async fn notify_prompt(
        state: &PostgresState,
        conn: &mut PgConnection,
        project: Uuid,
        name: &str,
    ) -> Result<(), Failure> {
        notify(state, conn, listener::payload(project, name)).await
    }

    async fn notify_keys(
        state: &PostgresState,
        conn: &mut PgConnection,
        project: Uuid,
    ) -> Result<(), Failure> {
        notify(state, conn, listener::keys_payload(project)).await
    }
}

async fn notify(
    state: &PostgresState,
    conn: &mut PgConnection,
    payload: String,
) -> Result<(), Failure> {
    if state.config.notify {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&state.config.notify_channel)
            .bind(payload)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
