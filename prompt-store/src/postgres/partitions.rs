//! The run log's monthly partitions (migration `20261212000001_retention`): created
//! ahead of time, and dropped whole when retention allows it.
//!
//! `runs` is partitioned by range of `created_at`, one partition a UTC month
//! (`runs_pYYYYMM`) and `runs_default` for anything else. A partition holds the runs
//! of every project, so it is dropped only when **every project with runs in it has a
//! retention and the month's end is at least that retention ago** — then every run in
//! it is past its project's retention, and dropping it deletes exactly what batched
//! deletes would have, in one catalog operation instead of a million row deletions
//! (see BENCHMARKS.md). Otherwise (a project keeps its runs forever, or keeps them
//! longer) the month stays and the retention task deletes each project's old runs in
//! bounded batches; `runs_default` is never dropped.
//!
//! Dropping a partition takes an `ACCESS EXCLUSIVE` lock on `runs` for the time of
//! the drop (a catalog change: milliseconds). It is asked for with a short
//! [`LOCK_TIMEOUT`], so that a long query on the run log makes the drop give up (and
//! be tried again at the next round) instead of queueing every writer behind it.

use chrono::{DateTime, Months, Utc};
use prompt_core::Project;
use sqlx::{Pool, Postgres, Row};
use uuid::Uuid;

use crate::sql::Failure;

/// How many months ahead of the current one partitions are kept ready, so that new
/// runs never land in `runs_default`.
pub(crate) const MONTHS_AHEAD: u32 = 3;

/// How long creating or dropping a partition waits for its lock on `runs`.
pub(crate) const LOCK_TIMEOUT: &str = "500ms";

/// Create the partitions of the current month and the [`MONTHS_AHEAD`] next ones
/// that are missing; returns how many were created.
pub(crate) async fn ensure(pool: &Pool<Postgres>, now: DateTime<Utc>) -> Result<u64, Failure> {
    // The months meeting [now, now + MONTHS_AHEAD months): the current one and the
    // next MONTHS_AHEAD, as the migration made them.
    let until = now
        .checked_add_months(Months::new(MONTHS_AHEAD))
        .unwrap_or(now);
    let mut tx = pool.begin().await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
    )))
    .execute(&mut *tx)
    .await?;
    let created: i32 = sqlx::query_scalar("SELECT runs_ensure_partitions($1, $2)")
        .bind(now)
        .bind(until)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(u64::try_from(created).unwrap_or(0))
}

/// A partition's name, quoted as an identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The projects with runs in partition `part`: a loose index scan of its
/// `runs_by_time` (one index probe per project), so it is cheap on any size.
async fn projects_in<'e, E>(conn: E, part: &str) -> Result<Vec<Uuid>, Failure>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let t = quoted(part);
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "WITH RECURSIVE p(id) AS (\
           (SELECT project_id FROM {t} ORDER BY project_id LIMIT 1) \
           UNION ALL \
           SELECT (SELECT project_id FROM {t} WHERE project_id > p.id \
                   ORDER BY project_id LIMIT 1) FROM p WHERE p.id IS NOT NULL) \
         SELECT id FROM p WHERE id IS NOT NULL"
    )))
    .fetch_all(conn)
    .await?)
}

/// Whether every project of `projects` keeps its runs for less than `end` ago.
fn all_expired(
    projects: &[Uuid],
    retention: &[Project],
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    projects.iter().all(|id| {
        retention
            .iter()
            .find(|p| p.id == *id)
            .and_then(|p| p.run_retention_days)
            .and_then(|d| now.checked_sub_signed(chrono::Duration::days(i64::from(d))))
            .is_some_and(|cutoff| end <= cutoff)
    })
}

/// Create the partitions ahead ([`ensure`]), then drop every monthly partition whose
/// runs are all past their project's retention (see the module documentation).
/// Returns how many runs the dropped partitions held.
pub(crate) async fn maintain(
    pool: &Pool<Postgres>,
    retention: &[Project],
    now: DateTime<Utc>,
) -> Result<u64, Failure> {
    match ensure(pool, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(created = n, "created run log partitions ahead"),
        // Not fatal: new runs go to runs_default meanwhile; tried again next round.
        Err(e) => tracing::warn!(error = ?e, "creating run log partitions failed; will retry"),
    }
    // The monthly partitions and where each ends (its bound, as the catalog prints it).
    let parts = sqlx::query(
        "SELECT c.relname::text AS name, \
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz \
             AS ends \
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'runs'::regclass AND c.relname <> 'runs_default' \
         ORDER BY ends",
    )
    .fetch_all(pool)
    .await?;
    let mut dropped = 0;
    for row in parts {
        let name: String = row.try_get("name")?;
        let Some(end) = row.try_get::<Option<DateTime<Utc>>, _>("ends")? else {
            continue;
        };
        if end > now {
            break;
        }
        // A first look without locks: most months are not droppable.
        if !all_expired(&projects_in(pool, &name).await?, retention, end, now) {
            continue;
        }
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {}",
            quoted(&name)
        )))
        .fetch_one(pool)
        .await?;
        let mut tx = pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
        )))
        .execute(&mut *tx)
        .await?;
        // The parent first, as every query locks them; then look again under the lock:
        // a run inserted since with an old created_at keeps the month.
        let locked = sqlx::query("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await;
        if let Err(e) = locked {
            tracing::info!(partition = %name, error = %e, "run log busy: partition drop postponed");
            continue;
        }
        if !all_expired(&projects_in(&mut *tx, &name).await?, retention, end, now) {
            continue;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {}", quoted(&name))))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(partition = %name, runs = rows, "dropped an expired run log partition");
        dropped += u64::try_from(rows).unwrap_or(0);
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(days: Option<u32>) -> Project {
        Project {
            id: Uuid::now_v7(),
            org_id: Uuid::nil(),
            name: "p".to_owned(),
            created_at: Utc::now(),
            run_retention_days: days,
        }
    }

    #[test]
    fn a_month_is_dropped_only_when_every_project_in_it_agrees() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z")
            .unwrap()
            .to_utc();
        let end = DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let short = project(Some(30));
        let long = project(Some(60));
        let forever = project(None);
        let all = [short.clone(), long.clone(), forever.clone()];
        assert!(all_expired(&[short.id], &all, end, now));
        assert!(!all_expired(&[short.id, long.id], &all, end, now));
        assert!(!all_expired(&[short.id, forever.id], &all, end, now));
        // A project not in the list (no retention) keeps the month.
        assert!(!all_expired(&[Uuid::now_v7()], &all, end, now));
        // 36 days ago exactly: a 36-day retention may drop it.
        assert!(all_expired(
            &[short.id],
            &[project_with(short.id, 36)],
            end,
            now
        ));
        assert!(!all_expired(
            &[short.id],
            &[project_with(short.id, 37)],
            end,
            now
        ));
    }

    fn project_with(id: Uuid, days: u32) -> Project {
        Project {
            id,
            ..project(Some(days))
        }
    }
}
