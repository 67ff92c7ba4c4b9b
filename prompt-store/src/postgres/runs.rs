//! [`RunLog`] on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use prompt_core::model::now;
use prompt_core::page::Page;
use prompt_core::run::{GroupBy, RunPosition};
use prompt_core::{
    Decimal, Error, Order, Result, Run, RunError, RunLog, RunQuery, RunStats, RunStatus, RunUpdate,
    StatsQuery,
};
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::error::{unique_violation, violating_key};
use super::{PostgresStore, attempt, finish};
use crate::sql::{Failure, opt_i64, opt_u64, opt_version, to_u64};

macro_rules! run_cols {
    () => {
        "id, project_id, prompt, version, label, provider, model, variables, input, output, \
         status, error_kind, error_message, latency_ms, time_to_first_token_ms, input_tokens, \
         output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, metadata, created_at, \
         started_at, completed_at"
    };
}

fn run_from_row(r: &PgRow) -> Result<Run, Failure> {
    let error = match (
        r.try_get::<Option<String>, _>("error_kind")?,
        r.try_get::<Option<String>, _>("error_message")?,
    ) {
        (Some(kind), message) => Some(RunError {
            kind,
            message: message.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(Run {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        prompt: r.try_get("prompt")?,
        version: opt_version(r.try_get("version")?)?,
        label: r.try_get("label")?,
        provider: r.try_get("provider")?,
        model: r.try_get("model")?,
        variables: r.try_get("variables")?,
        input: r.try_get("input")?,
        output: r.try_get("output")?,
        status: RunStatus::parse(&r.try_get::<String, _>("status")?)?,
        error,
        latency_ms: opt_u64("latency_ms", r.try_get("latency_ms")?)?,
        time_to_first_token_ms: opt_u64(
            "time_to_first_token_ms",
            r.try_get("time_to_first_token_ms")?,
        )?,
        input_tokens: opt_u64("input_tokens", r.try_get("input_tokens")?)?,
        output_tokens: opt_u64("output_tokens", r.try_get("output_tokens")?)?,
        cache_read_tokens: opt_u64("cache_read_tokens", r.try_get("cache_read_tokens")?)?,
        cache_write_tokens: opt_u64("cache_write_tokens", r.try_get("cache_write_tokens")?)?,
        cost_usd: r.try_get("cost_usd")?,
        metadata: r.try_get("metadata")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        completed_at: r.try_get("completed_at")?,
    })
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
        }
        Ok(c)
    }
}

const INSERT_RUNS: &str = concat!(
    "INSERT INTO runs (",
    run_cols!(),
    ") SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[], \
     $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::text[], $11::text[], $12::text[], \
     $13::text[], $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::int8[], \
     $20::numeric[], $21::jsonb[], $22::timestamptz[], $23::timestamptz[], $24::timestamptz[])"
);

#[async_trait]
impl RunLog for PostgresStore {
    async fn insert_runs(&self, runs: &[Run]) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let c = Columns::of(runs)?;
        // One statement is one transaction: all rows or none, durable on return.
        attempt(|| async {
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
                .execute(&self.writer)
                .await;
            match r {
                Ok(_) => Ok(()),
                Err(e) if unique_violation(&e).is_some() => {
                    let id = violating_key(&e).unwrap_or_else(|| "id".to_owned());
                    Err(Error::already_exists(format!("run {id}")).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn update_run(&self, project: Uuid, id: Uuid, update: RunUpdate) -> Result<Run> {
        attempt(|| async {
            let mut tx = self.writer.begin().await?;
            let row = sqlx::query(concat!(
                "SELECT ",
                run_cols!(),
                " FROM runs WHERE id = $1 AND project_id = $2 FOR UPDATE"
            ))
            .bind(id)
            .bind(project)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found(format!("run {id}")))?;
            let mut run = run_from_row(&row)?;
            // The transition is checked by the same code as every backend, against the
            // row locked above.
            update.clone().apply(&mut run)?;
            sqlx::query(
                "UPDATE runs SET input = $1, provider = $2, model = $3, output = $4, status = $5, \
                 error_kind = $6, error_message = $7, latency_ms = $8, time_to_first_token_ms = $9, \
                 input_tokens = $10, output_tokens = $11, cache_read_tokens = $12, \
                 cache_write_tokens = $13, cost_usd = $14, started_at = $15, completed_at = $16 \
                 WHERE id = $17",
            )
            .bind(&run.input)
            .bind(&run.provider)
            .bind(&run.model)
            .bind(&run.output)
            .bind(run.status.as_str())
            .bind(run.error.as_ref().map(|e| e.kind.as_str()))
            .bind(run.error.as_ref().map(|e| e.message.as_str()))
            .bind(opt_i64("latency_ms", run.latency_ms)?)
            .bind(opt_i64("time_to_first_token_ms", run.time_to_first_token_ms)?)
            .bind(opt_i64("input_tokens", run.input_tokens)?)
            .bind(opt_i64("output_tokens", run.output_tokens)?)
            .bind(opt_i64("cache_read_tokens", run.cache_read_tokens)?)
            .bind(opt_i64("cache_write_tokens", run.cache_write_tokens)?)
            .bind(run.cost_usd)
            .bind(run.started_at)
            .bind(run.completed_at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(run)
        })
        .await
    }

    async fn get_run(&self, project: Uuid, id: Uuid) -> Result<Run> {
        finish(
            async {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    run_cols!(),
                    " FROM runs WHERE id = $1 AND project_id = $2"
                ))
                .bind(id)
                .bind(project)
                .fetch_optional(&self.writer)
                .await?
                .ok_or_else(|| Error::not_found(format!("run {id}")))?;
                run_from_row(&row)
            }
            .await,
        )
    }

    async fn query_runs(&self, project: Uuid, query: &RunQuery) -> Result<Page<Run>> {
        query.validate()?;
        let limit = query.page.limit()?;
        let pos: Option<RunPosition> = query.page.position()?;
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            run_cols!(),
            " FROM runs WHERE project_id = "
        ));
        q.push_bind(project);
        if let Some(p) = &query.prompt {
            q.push(" AND prompt = ").push_bind(p.clone());
        }
        if let Some(v) = query.version {
            q.push(" AND version = ").push_bind(i64::from(v));
        }
        if let Some(l) = &query.label {
            q.push(" AND label = ").push_bind(l.clone());
        }
        if let Some(s) = query.status {
            q.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(p) = &query.provider {
            q.push(" AND provider = ").push_bind(p.clone());
        }
        if let Some(m) = &query.model {
            q.push(" AND model = ").push_bind(m.clone());
        }
        if let Some(t) = query.since {
            q.push(" AND created_at >= ").push_bind(t);
        }
        if let Some(t) = query.until {
            q.push(" AND created_at < ").push_bind(t);
        }
        let (cmp, order) = match query.order {
            Order::Desc => ("<", "DESC"),
            Order::Asc => (">", "ASC"),
        };
        if let Some((t, id)) = pos {
            // A row comparison: an index range condition on (…, created_at, id).
            q.push(format_args!(" AND (created_at, id) {cmp} ("))
                .push_bind(t)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        q.push(format_args!(
            " ORDER BY created_at {order}, id {order} LIMIT "
        ))
        .push_bind(i64::from(limit) + 1);
        finish(
            async {
                let rows = q.build().fetch_all(&self.writer).await?;
                let items = rows
                    .iter()
                    .map(run_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetch(items, limit, |r| {
                    (r.created_at, r.id)
                })?)
            }
            .await,
        )
    }

    async fn stats(&self, project: Uuid, query: &StatsQuery) -> Result<Vec<RunStats>> {
        query.validate()?;
        let group = match query.group_by {
            None => "NULL::text",
            Some(GroupBy::Version) => "version::text",
            Some(GroupBy::Label) => "label",
            Some(GroupBy::Model) => "model",
        };
        // percentile_cont interpolates between ranks exactly like
        // prompt_core::run::percentile_cont; sums are exact (numeric).
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {group} AS grp, count(*) AS n, \
             count(*) FILTER (WHERE status = 'failed') AS failed, \
             percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50, \
             percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95, \
             percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99, \
             COALESCE(sum(input_tokens), 0) AS input_tokens, \
             COALESCE(sum(output_tokens), 0) AS output_tokens, \
             COALESCE(sum(cost_usd), 0) AS cost_usd \
             FROM runs WHERE project_id = "
        ));
        q.push_bind(project)
            .push(" AND prompt = ")
            .push_bind(query.prompt.clone());
        if let Some(t) = query.since {
            q.push(" AND created_at >= ").push_bind(t);
        }
        if let Some(t) = query.until {
            q.push(" AND created_at < ").push_bind(t);
        }
        if query.group_by.is_some() {
            q.push(" GROUP BY 1");
        }
        finish(
            async {
                let rows = q.build().fetch_all(&self.writer).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let count = to_u64("count", r.try_get("n")?)?;
                    let failed = to_u64("failed", r.try_get("failed")?)?;
                    let sum = |c: &str| -> Result<u64, Failure> {
                        let d: Decimal = r.try_get(c)?;
                        Ok(d.to_u64().unwrap_or(u64::MAX))
                    };
                    out.push(RunStats {
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
                // The order of every backend: no group first, then by group key bytes.
                out.sort_by(|a, b| a.group.cmp(&b.group));
                Ok(out)
            }
            .await,
        )
    }

    async fn claim_pending(&self, limit: u32) -> Result<Vec<Run>> {
        attempt(|| async {
            // SKIP LOCKED: concurrent claimers (in any process) take disjoint sets of
            // rows instead of waiting for each other. MATERIALIZED makes the LIMIT apply
            // exactly once.
            let rows = sqlx::query(concat!(
                "WITH picked AS MATERIALIZED (\
                   SELECT id FROM runs WHERE status = 'pending' ORDER BY created_at, id \
                   LIMIT $1 FOR UPDATE SKIP LOCKED) \
                 UPDATE runs SET status = 'running', started_at = $2 \
                 WHERE id IN (SELECT id FROM picked) RETURNING ",
                run_cols!()
            ))
            .bind(i64::from(limit))
            .bind(now())
            .fetch_all(&self.writer)
            .await?;
            let mut runs = rows
                .iter()
                .map(run_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            runs.sort_by_key(|r| (r.created_at, r.id));
            Ok(runs)
        })
        .await
    }

    async fn requeue_stale(&self, started_before: DateTime<Utc>) -> Result<u64> {
        attempt(|| async {
            let r = sqlx::query(
                "UPDATE runs SET status = 'pending', started_at = NULL \
                 WHERE status = 'running' AND (started_at IS NULL OR started_at < $1)",
            )
            .bind(started_before)
            .execute(&self.writer)
            .await?;
            Ok(r.rows_affected())
        })
        .await
    }
}
