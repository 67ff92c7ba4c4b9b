//! Behaviour tests of run retention: a project's `run_retention_days`, and
//! `delete_runs_before` removing exactly the runs created before the instant, in
//! bounded batches, of one project only.

use chrono::{DateTime, Duration, Utc};
use prompt_core::domain::now;
use prompt_core::{Error, NewRun, PageRequest, Run, RunQuery, RunStatus, StatsQuery};
use uuid::Uuid;

use super::TestBackend;

/// `t` rounded down to the millisecond (every backend keeps at least that).
fn floor_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

fn run_at(project: Uuid, status: RunStatus, t: DateTime<Utc>) -> Run {
    let mut r = NewRun::with_status(status).into_run(project).unwrap();
    r.created_at = t;
    r
}

async fn ids(b: &TestBackend, project: Uuid) -> Vec<Uuid> {
    let mut q = RunQuery::default();
    q.page = PageRequest {
        limit: Some(500),
        cursor: None,
    };
    q.order = prompt_core::Order::Asc;
    b.runs
        .query_runs(project, &q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// A project's retention is set, shown, listed and cleared; 0 and more than 36500
/// days are refused naming the field; an unknown project is `NotFound`.
pub async fn retention_setting_is_validated_and_listed(b: &TestBackend) {
    if !b.can(b.caps.projects, "projects through the store") {
        return;
    }
    let p = b
        .store
        .create_project(&format!("ret-{}", Uuid::new_v4().simple()))
        .await
        .unwrap();
    assert_eq!(p.run_retention_days, None, "kept forever by default");
    let set = b.store.set_run_retention(p.id, Some(30)).await.unwrap();
    assert_eq!(set.run_retention_days, Some(30));
    assert_eq!(
        b.store
            .project_by_id(p.id)
            .await
            .unwrap()
            .run_retention_days,
        Some(30)
    );
    let listed = b.store.projects_with_retention().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|x| x.id == p.id && x.run_retention_days == Some(30)),
        "{listed:?}"
    );
    for bad in [0, 36_501, u32::MAX] {
        match b.store.set_run_retention(p.id, Some(bad)).await {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "run_retention_days"),
            other => panic!("{bad}: expected InvalidInput, got {other:?}"),
        }
    }
    assert_eq!(
        b.store
            .set_run_retention(p.id, Some(36_500))
            .await
            .unwrap()
            .run_retention_days,
        Some(36_500)
    );
    let cleared = b.store.set_run_retention(p.id, None).await.unwrap();
    assert_eq!(cleared.run_retention_days, None);
    let listed = b.store.projects_with_retention().await.unwrap();
    assert!(!listed.iter().any(|x| x.id == p.id), "{listed:?}");
    assert!(matches!(
        b.store.set_run_retention(Uuid::now_v7(), Some(1)).await,
        Err(Error::NotFound { .. })
    ));
}

/// `delete_runs_before` removes exactly the runs created before the instant (a run
/// created at it is kept), oldest first, at most `limit` a call, whatever their
/// status; other projects' runs are untouched; stats count what remains.
pub async fn retention_deletes_exactly_the_old_runs(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "runs with a caller's created_at") {
        return;
    }
    let (a, other) = (Uuid::now_v7(), Uuid::now_v7());
    let cutoff = floor_ms(now()) - Duration::days(10);
    let times = [
        cutoff - Duration::days(400),
        cutoff - Duration::days(40),
        cutoff - Duration::milliseconds(1),
        cutoff,
        cutoff + Duration::milliseconds(1),
        cutoff + Duration::days(5),
    ];
    let statuses = [
        RunStatus::Completed,
        RunStatus::Running,
        RunStatus::Pending,
        RunStatus::Completed,
        RunStatus::Running,
        RunStatus::Completed,
    ];
    let mine: Vec<Run> = times
        .iter()
        .zip(statuses)
        .map(|(t, s)| run_at(a, s, *t))
        .collect();
    let theirs: Vec<Run> = times
        .iter()
        .map(|t| run_at(other, RunStatus::Completed, *t))
        .collect();
    b.runs.insert_runs(&mine).await.unwrap();
    b.runs.insert_runs(&theirs).await.unwrap();

    // Bounded: two a call, the oldest first.
    assert_eq!(b.runs.delete_runs_before(a, cutoff, 2).await.unwrap(), 2);
    let left = ids(b, a).await;
    assert_eq!(left, mine[2..].iter().map(|r| r.id).collect::<Vec<_>>());
    assert_eq!(b.runs.delete_runs_before(a, cutoff, 2).await.unwrap(), 1);
    assert_eq!(b.runs.delete_runs_before(a, cutoff, 2).await.unwrap(), 0);
    assert_eq!(
        ids(b, a).await,
        mine[3..].iter().map(|r| r.id).collect::<Vec<_>>(),
        "the run created at the cut-off is kept"
    );
    assert_eq!(
        ids(b, other).await,
        theirs.iter().map(|r| r.id).collect::<Vec<_>>(),
        "another project's runs are untouched"
    );
    let stats = b.runs.stats(a, &StatsQuery::project()).await.unwrap();
    assert_eq!(stats[0].count, 3, "stats count the runs kept: {stats:?}");
    assert!(matches!(
        b.runs.delete_runs_before(a, cutoff, 0).await,
        Err(Error::InvalidInput { .. })
    ));

    // The backend's upkeep (Postgres: partitions) then the batches, as the retention
    // task does: with a 10-day retention for `a` only, exactly `a`'s runs created
    // before now - 10 days go (none is left of those), `other` keeps everything.
    let retention = vec![prompt_core::Project {
        id: a,
        org_id: prompt_core::domain::DEFAULT_ORG_ID,
        name: "a".into(),
        created_at: now(),
        run_retention_days: Some(10),
    }];
    b.runs.maintain_runs(&retention, now()).await.unwrap();
    assert_eq!(
        ids(b, other).await,
        theirs.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    assert_eq!(ids(b, a).await.len(), 3);
}
