//! Behaviour tests of run leases: attempts counted by claims, leases renewed by
//! heartbeats, expired ones re-queued, and executors' writes fenced by their attempt.

use chrono::{DateTime, Utc};
use prompt_core::domain::now;
use prompt_core::{Error, NewRun, Registry, RunLease, RunStatus, RunUpdate};

use super::TestBackend;

async fn reg(b: &TestBackend) -> Registry {
    b.registry(&format!("lease-{}", uuid::Uuid::new_v4().simple()))
        .await
}

/// `t` rounded down to the millisecond: a cut-off that every backend compares alike
/// (they keep microseconds at most).
fn floor_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

/// A cut-off later than everything written so far: the next millisecond, once the
/// clock has reached it.
async fn next_ms() -> DateTime<Utc> {
    let start = floor_ms(now());
    loop {
        let t = floor_ms(now());
        if t > start {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

fn completed() -> RunUpdate {
    RunUpdate {
        status: Some(RunStatus::Completed),
        output: Some("answer".into()),
        ..Default::default()
    }
}

/// A claim counts an attempt and starts a lease; a heartbeat renews it; a lease not
/// renewed since the cut-off is re-queued (keeping its count) and claimed again as the
/// next attempt; the old attempt's heartbeat and final write are then refused, the new
/// one's accepted; a run re-queued but not claimed again is taken back by its
/// executor's heartbeat and may still be finished by it.
pub async fn run_leases_attempts_heartbeats_and_fences(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "the workers' queue") {
        return;
    }
    let r = reg(b).await;
    let ids: Vec<_> = r
        .log_runs(vec![NewRun::with_status(RunStatus::Pending); 2])
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.unwrap().id)
        .collect();
    let logged = r.get_run(ids[0]).await.unwrap();
    assert_eq!((logged.attempts, logged.heartbeat_at), (0, None));

    let before = floor_ms(now());
    let claimed = b.runs.claim_pending(2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for run in &claimed {
        assert_eq!(run.status, RunStatus::Running);
        assert_eq!(run.attempts, 1, "the first claim is attempt 1");
        assert!(run.heartbeat_at.is_some_and(|t| t >= before), "{run:?}");
    }
    let (a, c) = (claimed[0].clone(), claimed[1].clone());
    let (lease_a, lease_c) = (RunLease::of(&a), RunLease::of(&c));

    // Renewed: the cut-off the lease was taken before does not re-queue it.
    let cutoff = next_ms().await;
    assert_eq!(b.runs.heartbeat(&[lease_a]).await.unwrap(), 1);
    let renewed = r.get_run(a.id).await.unwrap();
    assert!(renewed.heartbeat_at >= Some(cutoff), "{renewed:?}");
    let n = b.runs.requeue_stale(cutoff).await.unwrap();
    assert_eq!(n, 1, "only the run whose lease was not renewed");
    assert_eq!(r.get_run(a.id).await.unwrap().status, RunStatus::Running);
    let requeued = r.get_run(c.id).await.unwrap();
    assert_eq!(requeued.status, RunStatus::Pending);
    assert_eq!(requeued.attempts, 1, "re-queueing keeps the count");

    // Claimed again: attempt 2; the first attempt lost it.
    let again = b.runs.claim_pending(5).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (c.id, 2));
    assert_eq!(
        b.runs.heartbeat(&[lease_c]).await.unwrap(),
        0,
        "the old attempt's lease is lost"
    );
    let stale_write = RunUpdate {
        attempt: Some(1),
        ..completed()
    };
    match b.runs.update_run(r.project().id, c.id, stale_write).await {
        Err(Error::Conflict { message }) => assert!(message.contains("attempt 2"), "{message}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let done = b
        .runs
        .update_run(
            r.project().id,
            c.id,
            RunUpdate {
                attempt: Some(2),
                ..completed()
            },
        )
        .await
        .unwrap();
    assert_eq!((done.status, done.attempts), (RunStatus::Completed, 2));
    assert_eq!(
        b.runs.heartbeat(&[RunLease::of(&done)]).await.unwrap(),
        0,
        "a finished run has no lease"
    );

    // Re-queued while its executor could not renew (an outage), not claimed again:
    // the executor's next heartbeat takes it back, and its write is accepted.
    let n = b.runs.requeue_stale(next_ms().await).await.unwrap();
    assert_eq!(n, 1);
    assert_eq!(r.get_run(a.id).await.unwrap().status, RunStatus::Pending);
    assert_eq!(b.runs.heartbeat(&[lease_a]).await.unwrap(), 1);
    let back = r.get_run(a.id).await.unwrap();
    assert_eq!((back.status, back.attempts), (RunStatus::Running, 1));
    assert!(back.started_at.is_some() && back.heartbeat_at.is_some());
    let done = b
        .runs
        .update_run(
            r.project().id,
            a.id,
            RunUpdate {
                attempt: Some(1),
                ..completed()
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(b.runs.requeue_stale(next_ms().await).await.unwrap(), 0);
}

/// A run executed by its caller (inserted `running`, never claimed) has no attempt and
/// is re-queued by its start time once that is older than the lease.
pub async fn run_leases_of_runs_never_claimed(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "the workers' queue") {
        return;
    }
    let r = reg(b).await;
    let run = r
        .log_runs(vec![NewRun::with_status(RunStatus::Running)])
        .await
        .unwrap()
        .remove(0)
        .unwrap();
    let run = r.get_run(run.id).await.unwrap();
    assert_eq!((run.attempts, run.heartbeat_at), (0, None));
    let started = run.started_at.unwrap();
    assert_eq!(
        b.runs
            .requeue_stale(started - chrono::Duration::seconds(1))
            .await
            .unwrap(),
        0,
        "started after the cut-off"
    );
    // Its executor renews it as attempt 0.
    assert_eq!(b.runs.heartbeat(&[RunLease::of(&run)]).await.unwrap(), 1);
    let renewed = r.get_run(run.id).await.unwrap();
    let beat = renewed.heartbeat_at.unwrap();
    assert_eq!(
        b.runs.requeue_stale(beat).await.unwrap(),
        0,
        "renewed at the cut-off"
    );
    assert_eq!(
        b.runs
            .requeue_stale(beat + chrono::Duration::milliseconds(1))
            .await
            .unwrap(),
        1
    );
    let claimed = b.runs.claim_pending(1).await.unwrap();
    assert_eq!((claimed[0].id, claimed[0].attempts), (run.id, 1));
}
