//! The Postgres [`Dialect`]: `timestamptz`, `jsonb`, `text[]`, `numeric`, booleans,
//! `FOR UPDATE` row locks, and `NOTIFY` to other instances' caches on every change of
//! a prompt or an API key. Runs are inserted by one `INSERT … SELECT FROM UNNEST`
//! statement, claimed with `FOR UPDATE SKIP LOCKED`, and aggregated in SQL.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use prompt_core::{Decimal, Error, Result, Run, RunStats, StatsQuery};
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::{PgConnection, Pool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::error::{unique_violation, violating_key};
use super::{PostgresState, listener};
use crate::sql::{
    Dialect, Failure, PromptSql, RunSql, opt_i64, push_stats_filter, run_cols, run_read_cols,
    split_text, stats_group, to_u64,
};

static PROMPT_SQL: LazyLock<PromptSql> = LazyLock::new(PromptSql::new::<Postgres>);
static RUN_SQL: LazyLock<RunSql> = LazyLock::new(RunSql::new::<Postgres>);

impl Dialect for Postgres {
    type State = PostgresState;
    type Time = DateTime<Utc>;
    type Json = Value;
    type TextList = Vec<String>;
    type Money = Decimal;

    fn live(alias: &str) -> String {
        format!("NOT {alias}archived")
    }

    fn limited_join(table: &str, alias: &str, on: &str, order: &str, limit: &str) -> String {
        format!(
            "LEFT JOIN LATERAL (SELECT * FROM {table} {alias} WHERE {on} \
             ORDER BY {order} LIMIT {limit}) {alias} ON true"
        )
    }

    const TRUE: &'static str = "true";
    const FALSE: &'static str = "false";
    const LABELS_OBJECT: &'static str = "COALESCE((SELECT jsonb_object_agg(l.label, l.version) \
                                         FROM labels l WHERE l.prompt_id = p.id), '{}'::jsonb)";
    const SPLITS_OBJECT: &'static str = "COALESCE((SELECT jsonb_object_agg(l.label, l.split::jsonb) \
                                         FROM labels l WHERE l.prompt_id = p.id AND l.split IS NOT NULL), \
                                         '{}'::jsonb)";
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

    fn money(d: Decimal) -> Decimal {
        d
    }

    fn from_money(_column: &str, d: Decimal) -> Result<Decimal> {
        Ok(d)
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

    fn run_sql() -> &'static RunSql {
        &RUN_SQL
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

    async fn notify_events(
        state: &PostgresState,
        conn: &mut PgConnection,
        project: Uuid,
        seq: u64,
    ) -> Result<(), Failure> {
        notify(state, conn, listener::events_payload(project, seq)).await
    }

    fn follow_commits(
        state: &PostgresState,
        local: &tokio::sync::broadcast::Sender<prompt_core::Committed>,
    ) {
        if state.config.notify {
            state.commit_listener.get_or_init(|| {
                listener::spawn(
                    state.options.clone(),
                    state.config.notify_channel.clone(),
                    std::time::Duration::from_millis(state.config.listener_ping_ms),
                    listener::CommitSink(local.clone()),
                )
            });
        }
    }

    async fn insert_runs(writer: &Pool<Postgres>, runs: &[Run]) -> Result<(), Failure> {
        // A duplicate inside the batch (the primary key, `(id, created_at)`, misses
        // one of two different times).
        let mut seen = std::collections::HashSet::with_capacity(runs.len());
        if let Some(dup) = runs.iter().find(|r| !seen.insert(r.id)) {
            return Err(Error::already_exists(format!("run {}", dup.id)).into());
        }
        let c = Columns::of(runs)?;
        // One statement is one transaction: all rows or none, durable on return.
        let r = sqlx::query(INSERT_RUNS)
            .bind(&c.id)
            .bind(&c.project_id)
            .bind(&c.prompt)
            .bind(&c.version)
            .bind(&c.label)
            .bind(&c.provider)
            .bind(&c.model)
            .bind(&c.variables)
            .bind(&c.input)
            .bind(&c.output)
            .bind(&c.status)
            .bind(&c.error_kind)
            .bind(&c.error_message)
            .bind(&c.latency_ms)
            .bind(&c.ttft_ms)
            .bind(&c.input_tokens)
            .bind(&c.output_tokens)
            .bind(&c.cache_read_tokens)
            .bind(&c.cache_write_tokens)
            .bind(&c.cost_usd)
            .bind(&c.metadata)
            .bind(&c.created_at)
            .bind(&c.started_at)
            .bind(&c.completed_at)
            .bind(&c.user)
            .bind(&c.resolution)
            .bind(&c.split)
            .fetch_one(writer)
            .await;
        match r {
            Ok(row) => match row.try_get::<Option<Uuid>, _>("dup")? {
                None => Ok(()),
                Some(id) => Err(Error::already_exists(format!("run {id}")).into()),
            },
            Err(e) if unique_violation(&e).is_some() => {
                let id = violating_key(&e).unwrap_or_else(|| "id".to_owned());
                Err(Error::already_exists(format!("run {id}")).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn claim_pending(
        writer: &Pool<Postgres>,
        _reader: &Pool<Postgres>,
        limit: u32,
        at: DateTime<Utc>,
    ) -> Result<Vec<PgRow>, Failure> {
        // SKIP LOCKED: concurrent claimers (in any process) take disjoint sets of rows
        // instead of waiting for each other. MATERIALIZED makes the LIMIT apply exactly
        // once.
        Ok(sqlx::query(concat!(
            "WITH picked AS MATERIALIZED (\
               SELECT id FROM runs WHERE status = 'pending' ORDER BY created_at, id \
               LIMIT $1 FOR UPDATE SKIP LOCKED) \
             UPDATE runs SET status = 'running', started_at = $2, heartbeat_at = $2, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM picked) RETURNING ",
            run_read_cols!()
        ))
        .bind(i64::from(limit))
        .bind(at)
        .fetch_all(writer)
        .await?)
    }

    async fn stats(
        reader: &Pool<Postgres>,
        project: Uuid,
        query: &StatsQuery,
    ) -> Result<Vec<RunStats>, Failure> {
        // percentile_cont interpolates between ranks exactly like
        // prompt_core::run::percentile_cont; sums are exact (numeric).
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} AS grp, ",
            stats_group(query.group_by)
        ));
        match query.bucket {
            // date_trunc of the UTC wall-clock time, turned back into a timestamptz:
            // the bucket does not depend on the session's TimeZone.
            Some(b) => {
                q.push("date_trunc(")
                    .push_bind(b.as_str())
                    .push(", created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'");
            }
            None => {
                q.push("CAST(NULL AS timestamptz)");
            }
        }
        q.push(
            " AS bkt, count(*) AS n, \
             count(*) FILTER (WHERE status = 'failed') AS failed, \
             percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, \
             percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95, \
             percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99, \
             COALESCE(sum(input_tokens), 0) AS input_tokens, \
             COALESCE(sum(output_tokens), 0) AS output_tokens, \
             COALESCE(sum(cost_usd), 0) AS cost_usd",
        );
        push_stats_filter(&mut q, project, query);
        if query.group_by.is_some() || query.bucket.is_some() {
            q.push(" GROUP BY 1, 2");
        }
        let rows = q.build().fetch_all(reader).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let count = to_u64("count", r.try_get("n")?)?;
            let failed = to_u64("failed", r.try_get("failed")?)?;
            let sum = |c: &str| -> Result<u64, Failure> {
                let d: Decimal = r.try_get(c)?;
                Ok(d.to_u64().unwrap_or(u64::MAX))
            };
            out.push(RunStats {
                bucket: r.try_get("bkt")?,
                group: r.try_get("grp")?,
                count,
                failed,
                error_rate: if count == 0 {
                    0.0
                } else {
                    failed as f64 / count as f64
                },
                latency_p50_ms: r.try_get("p50")?,
                latency_p95_ms: r.try_get("p95")?,
                latency_p99_ms: r.try_get("p99")?,
                input_tokens: sum("input_tokens")?,
                output_tokens: sum("output_tokens")?,
                cost_usd: r.try_get::<Decimal, _>("cost_usd")?.normalize(),
            });
        }
        // The order of every backend: by bucket, then no group first, then by group
        // key bytes (sorted here rather than by ORDER BY, whose text collation may
        // differ from byte order).
        out.sort_by(|a, b| (a.bucket, &a.group).cmp(&(b.bucket, &b.group)));
        Ok(out)
    }

    async fn maintain_runs(
        writer: &Pool<Postgres>,
        retention: &[prompt_core::Project],
        now: DateTime<Utc>,
    ) -> Result<u64, Failure> {
        super::partitions::maintain(writer, retention, now).await
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

/// The runs of a batch as one array per column, for `INSERT … SELECT FROM UNNEST`:
/// one statement (one prepared plan) whatever the batch size.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    project_id: Vec<Uuid>,
    prompt: Vec<Option<String>>,
    version: Vec<Option<i64>>,
    label: Vec<Option<String>>,
    provider: Vec<Option<String>>,
    model: Vec<Option<String>>,
    variables: Vec<Value>,
    input: Vec<Value>,
    output: Vec<Option<String>>,
    status: Vec<String>,
    error_kind: Vec<Option<String>>,
    error_message: Vec<Option<String>>,
    latency_ms: Vec<Option<i64>>,
    ttft_ms: Vec<Option<i64>>,
    input_tokens: Vec<Option<i64>>,
    output_tokens: Vec<Option<i64>>,
    cache_read_tokens: Vec<Option<i64>>,
    cache_write_tokens: Vec<Option<i64>>,
    cost_usd: Vec<Option<Decimal>>,
    metadata: Vec<Value>,
    created_at: Vec<DateTime<Utc>>,
    started_at: Vec<Option<DateTime<Utc>>>,
    completed_at: Vec<Option<DateTime<Utc>>>,
    user: Vec<Option<String>>,
    resolution: Vec<Option<Value>>,
    split: Vec<Option<String>>,
}

impl Columns {
    fn of(runs: &[Run]) -> Result<Self> {
        let mut c = Columns::default();
        for (i, r) in runs.iter().enumerate() {
            let at = |e: Error| e.in_field(&format!("runs[{i}]"));
            c.id.push(r.id);
            c.project_id.push(r.project_id);
            c.prompt.push(r.prompt.clone());
            c.version.push(r.version.map(i64::from));
            c.label.push(r.label.clone());
            c.provider.push(r.provider.clone());
            c.model.push(r.model.clone());
            c.variables.push(r.variables.clone());
            c.input.push(r.input.clone());
            c.output.push(r.output.clone());
            c.status.push(r.status.as_str().to_owned());
            c.error_kind.push(r.error.as_ref().map(|e| e.kind.clone()));
            c.error_message
                .push(r.error.as_ref().map(|e| e.message.clone()));
            c.latency_ms
                .push(opt_i64("latency_ms", r.latency_ms).map_err(at)?);
            c.ttft_ms
                .push(opt_i64("time_to_first_token_ms", r.time_to_first_token_ms).map_err(at)?);
            c.input_tokens
                .push(opt_i64("input_tokens", r.input_tokens).map_err(at)?);
            c.output_tokens
                .push(opt_i64("output_tokens", r.output_tokens).map_err(at)?);
            c.cache_read_tokens
                .push(opt_i64("cache_read_tokens", r.cache_read_tokens).map_err(at)?);
            c.cache_write_tokens
                .push(opt_i64("cache_write_tokens", r.cache_write_tokens).map_err(at)?);
            c.cost_usd.push(r.cost_usd);
            c.metadata.push(r.metadata.clone());
            c.created_at.push(r.created_at);
            c.started_at.push(r.started_at);
            c.completed_at.push(r.completed_at);
            c.user.push(r.user.clone());
            c.resolution.push(
                r.resolution
                    .as_ref()
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| at(Error::invalid("resolution", e.to_string())))?,
            );
            c.split
                .push(split_text("split", r.split.as_ref()).map_err(at)?);
        }
        Ok(c)
    }
}

/// Insert a batch unless one of its ids is stored already (then nothing is inserted
/// and `dup` names it). The run log is partitioned by `created_at`, so its primary key
/// is `(id, created_at)`: the look-up by id (an index probe per partition, in the
/// same statement) keeps an id unique whatever the time. Two concurrent inserts of
/// one id at different times could both pass; ids are fresh UUID v7s made by
/// `NewRun::into_run`, so only a replayed batch repeats one, and replays are caught.
///
/// The look-up is one `runs.id = u.id` probe per id (a lateral join), not
/// `id = ANY($1)`: on a partition without column statistics (a new month's, until
/// autovacuum analyses it) the planner takes `= ANY` of 100 ids for half the rows
/// and scans the whole partition sequentially — 132 ms at 600,000 rows, against
/// 1.5 ms for the probes (BENCHMARKS.md, "Ingestion on the partitioned table").
const INSERT_RUNS: &str = concat!(
    "WITH dup AS (SELECT r.id FROM UNNEST($1::uuid[]) AS u(id) \
     CROSS JOIN LATERAL (SELECT id FROM runs WHERE runs.id = u.id LIMIT 1) r LIMIT 1), \
     ins AS (INSERT INTO runs (",
    run_cols!(),
    ") SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[], \
     $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::text[], $11::text[], $12::text[], \
     $13::text[], $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::int8[], \
     $20::numeric[], $21::jsonb[], $22::timestamptz[], $23::timestamptz[], $24::timestamptz[], \
     $25::text[], $26::jsonb[], $27::text[]) WHERE NOT EXISTS (SELECT 1 FROM dup) RETURNING 1) \
     SELECT (SELECT id FROM dup) AS dup"
);
