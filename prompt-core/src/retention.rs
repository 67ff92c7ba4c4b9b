//! Deleting old runs in bounded batches: the one loop behind `DELETE /api/v1/runs`,
//! the server's retention task and [`Registry::delete_runs_before`](crate::Registry::delete_runs_before).
//!
//! Each batch is its own short statement ([`RunLog::delete_runs_before`]) of at most
//! [`RUN_DELETE_BATCH`] runs, and the loop yields between batches, so that writers of
//! the run log are never held up behind one long transaction. Deletion is by
//! `created_at`, whatever the run's status, and idempotent (several instances may
//! delete at once).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::RunLog;

/// Runs deleted per statement.
pub const RUN_DELETE_BATCH: u32 = 5_000;

/// Delete `project`'s runs created strictly before `before` (all of them, or at most
/// `max`, the oldest first), in batches of [`RUN_DELETE_BATCH`]; returns how many
/// were deleted. `max` of 0 is refused (`InvalidInput` on `limit`).
pub async fn delete_runs_before(
    runs: &dyn RunLog,
    project: Uuid,
    before: DateTime<Utc>,
    max: Option<u64>,
) -> Result<u64> {
    if max == Some(0) {
        return Err(Error::invalid("limit", "must be at least 1"));
    }
    let mut total = 0u64;
    loop {
        let left = max.map_or(u64::from(RUN_DELETE_BATCH), |m| m.saturating_sub(total));
        if left == 0 {
            return Ok(total);
        }
        let limit =
            u32::try_from(left.min(u64::from(RUN_DELETE_BATCH))).unwrap_or(RUN_DELETE_BATCH);
        let n = runs.delete_runs_before(project, before, limit).await?;
        total += n;
        if n < u64::from(limit) {
            return Ok(total);
        }
        // Let writers (and everything else on this runtime) in between batches.
        tokio::task::yield_now().await;
    }
}
