//! Behaviour tests of the run log.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use prompt_core::run::MAX_BUCKETS;
use prompt_core::{
    Bucket, Decimal, Error, GroupBy, NewRun, NewVersion, Order, PageRequest, Registry, Run,
    RunError, RunQuery, RunStats, RunStatus, RunUpdate, StatsQuery,
};
use serde_json::json;

use super::TestBackend;

async fn reg(b: &TestBackend) -> Registry {
    b.registry(&format!("r-{}", uuid::Uuid::new_v4().simple()))
        .await
}

fn completed(prompt: &str, version: u32, latency: u64) -> NewRun {
    let mut r = NewRun::with_status(RunStatus::Completed);
    r.prompt = Some(prompt.into());
    r.version = Some(version);
    r.provider = Some("openai".into());
    r.model = Some("gpt-4o-mini".into());
    r.latency_ms = Some(latency);
    r.input_tokens = Some(10);
    r.output_tokens = Some(5);
    r.cost_usd = Some("0.0001".parse().unwrap());
    r
}

fn failed(prompt: &str, version: u32) -> NewRun {
    let mut r = NewRun::with_status(RunStatus::Failed);
    r.prompt = Some(prompt.into());
    r.version = Some(version);
    r.provider = Some("anthropic".into());
    r.model = Some("claude".into());
    r.error = Some(RunError {
        kind: "rate_limited".into(),
        message: "slow down".into(),
    });
    r
}

async fn all_pages(r: &Registry, mut q: RunQuery) -> Vec<prompt_core::Run> {
    let mut out = Vec::new();
    loop {
        let p = r.runs(&q).await.unwrap();
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => q.page.cursor = Some(c),
            None => return out,
        }
    }
}

/// Every field of a run comes back as it was written.
pub async fn runs_roundtrip_all_fields(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("p", NewVersion::new("{{x}}").with_labels(["production"]))
        .await
        .unwrap();
    let mut n = completed("p", 1, 120);
    n.label = Some("production".into());
    n.variables = json!({"x": "y", "n": 3});
    n.input = json!([{"role": "user", "content": "y"}]);
    n.output = Some("answer ✓".into());
    n.time_to_first_token_ms = Some(40);
    n.cache_read_tokens = Some(2);
    n.cache_write_tokens = Some(1);
    n.cost_usd = Some("0.000123456789".parse().unwrap());
    n.metadata = json!({"user": "u1", "tags": ["a"]});
    let run = r.log_run(n).await.unwrap();
    let got = r.get_run(run.id).await.unwrap();
    assert_eq!(got, run);
    assert_eq!(
        got.cost_usd,
        Some("0.000123456789".parse::<Decimal>().unwrap())
    );
    assert_eq!(got.status, RunStatus::Completed);
    assert!(got.completed_at.is_some() && got.started_at.is_some());
    let e = r.get_run(uuid::Uuid::now_v7()).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
}

/// Filters by prompt, version, label, status, provider, model and time; both orders.
pub async fn runs_filters_and_ordering(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("a", NewVersion::new("x")).await.unwrap();
    r.create_version("a", NewVersion::new("y")).await.unwrap();
    r.create_version("b", NewVersion::new("z")).await.unwrap();
    let mut ids = Vec::new();
    for n in [
        completed("a", 1, 10),
        completed("a", 2, 20),
        failed("a", 2),
        completed("b", 1, 5),
    ] {
        ids.push(r.log_run(n).await.unwrap().id);
    }
    let mut labelled = completed("a", 1, 1);
    labelled.label = Some("staging".into());
    ids.push(r.log_run(labelled).await.unwrap().id);
    let count = |q: RunQuery| {
        let r = r.clone();
        async move { all_pages(&r, q).await.len() }
    };
    let q = |f: fn(&mut RunQuery)| {
        let mut q = RunQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(count(RunQuery::default()).await, 5);
    assert_eq!(count(q(|q| q.prompt = Some("a".into()))).await, 4);
    assert_eq!(
        count(q(|q| {
            q.prompt = Some("a".into());
            q.version = Some(2)
        }))
        .await,
        2
    );
    assert_eq!(count(q(|q| q.status = Some(RunStatus::Failed))).await, 1);
    assert_eq!(count(q(|q| q.provider = Some("anthropic".into()))).await, 1);
    assert_eq!(count(q(|q| q.model = Some("gpt-4o-mini".into()))).await, 4);
    assert_eq!(count(q(|q| q.label = Some("staging".into()))).await, 1);
    let future = prompt_core::domain::now() + chrono::Duration::hours(1);
    let past = prompt_core::domain::now() - chrono::Duration::hours(1);
    assert_eq!(
        count(q(
            |q| q.since = Some(prompt_core::domain::now() + chrono::Duration::hours(1))
        ))
        .await,
        0
    );
    let mut window = RunQuery::default();
    window.since = Some(past);
    window.until = Some(future);
    assert_eq!(count(window).await, 5);
    let desc: Vec<_> = all_pages(&r, RunQuery::default())
        .await
        .into_iter()
        .map(|x| x.id)
        .collect();
    let mut asc_q = RunQuery::default();
    asc_q.order = Order::Asc;
    let asc: Vec<_> = all_pages(&r, asc_q)
        .await
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(asc, ids, "ascending is creation order");
    let mut rev = desc.clone();
    rev.reverse();
    assert_eq!(rev, asc, "descending is the reverse");
    let mut small = RunQuery::default();
    small.page = PageRequest::first(2);
    let paged: Vec<_> = all_pages(&r, small)
        .await
        .into_iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(paged, desc, "pages of 2 give the same sequence");
}

/// Paging through runs while others are appended neither skips nor repeats.
pub async fn runs_pagination_while_inserting(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("w", NewVersion::new("x")).await.unwrap();
    let batch: Vec<NewRun> = (0..40).map(|i| completed("w", 1, i)).collect();
    let existing: BTreeSet<_> = r
        .log_runs(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.unwrap().id)
        .collect();
    for order in [Order::Desc, Order::Asc] {
        let writer = {
            let r = r.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    r.log_run(completed("w", 1, i)).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        };
        let mut q = RunQuery::default();
        q.order = order;
        q.page = PageRequest::first(6);
        let mut seen = Vec::new();
        loop {
            let p = r.runs(&q).await.unwrap();
            seen.extend(p.items.into_iter().map(|x| x.id));
            tokio::task::yield_now().await;
            match p.next_cursor {
                Some(c) => q.page.cursor = Some(c),
                None => break,
            }
        }
        writer.await.unwrap();
        let unique: BTreeSet<_> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{order:?}: no run repeated");
        assert!(
            existing.is_subset(&unique),
            "{order:?}: no existing run skipped"
        );
    }
}

/// pending → running → completed; illegal transitions are `Conflict`.
pub async fn run_status_transitions(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "run status updates") {
        return;
    }
    let r = reg(b).await;
    let run = r
        .log_run(NewRun::with_status(RunStatus::Pending))
        .await
        .unwrap();
    assert!(run.completed_at.is_none());
    let running = r
        .update_run(
            run.id,
            RunUpdate {
                status: Some(RunStatus::Running),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(running.started_at.is_some());
    let done = r
        .update_run(
            run.id,
            RunUpdate {
                status: Some(RunStatus::Completed),
                output: Some("ok".into()),
                latency_ms: Some(33),
                input_tokens: Some(3),
                output_tokens: Some(4),
                cost_usd: Some("0.5".parse().unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, RunStatus::Completed);
    let back = r.get_run(run.id).await.unwrap();
    assert_eq!(back, done);
    assert_eq!(back.output.as_deref(), Some("ok"));
    let e = r
        .update_run(
            run.id,
            RunUpdate {
                status: Some(RunStatus::Running),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    let e = r
        .update_run(uuid::Uuid::now_v7(), RunUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    let other = reg(b).await;
    let e = other
        .update_run(run.id, RunUpdate::default())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::NotFound { .. }),
        "another project's run is not found"
    );
    assert!(matches!(
        other.get_run(run.id).await,
        Err(Error::NotFound { .. })
    ));
}

/// In a batch each item succeeds or fails alone, with its own error.
pub async fn runs_batch_partial_failure(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("bp", NewVersion::new("x")).await.unwrap();
    let results = r
        .log_runs(vec![
            completed("bp", 1, 1),
            completed("bp", 7, 1),
            NewRun::with_status(RunStatus::Failed),
            completed("ghost", 1, 1),
            completed("bp", 1, 2),
        ])
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(&results[1], Err(Error::NotFound { what }) if what.contains("version 7")));
    assert!(matches!(&results[2], Err(Error::InvalidInput { field, .. }) if field == "error"));
    assert!(matches!(&results[3], Err(Error::NotFound { .. })));
    assert!(results[4].is_ok());
    let mut q = RunQuery::default();
    q.prompt = Some("bp".into());
    assert_eq!(all_pages(&r, q).await.len(), 2);
}

/// `insert_runs` stores a batch larger than any internal statement chunk with every
/// field intact, and a duplicate id anywhere in a batch refuses the whole batch
/// (`AlreadyExists` naming the run) with nothing of it stored.
pub async fn insert_runs_large_batch_and_duplicates(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "runs with caller-chosen ids") {
        return;
    }
    let r = reg(b).await;
    r.create_version("lb", NewVersion::new("x")).await.unwrap();
    let project = r.project().id;
    let runs: Vec<_> = (0..203u64)
        .map(|i| {
            let mut n = if i % 3 == 0 {
                failed("lb", 1)
            } else {
                completed("lb", 1, i)
            };
            n.variables = json!({"i": i});
            n.metadata = json!({"batch": "large", "i": i});
            n.output = (i % 3 != 0).then(|| format!("out {i}"));
            n.into_run(project).unwrap()
        })
        .collect();
    b.runs.insert_runs(&runs).await.unwrap();
    let mut q = RunQuery::default();
    q.prompt = Some("lb".into());
    let mut stored = all_pages(&r, q.clone()).await;
    stored.sort_by_key(|s| s.id);
    let mut expected = runs.clone();
    expected.sort_by_key(|s| s.id);
    assert_eq!(stored.len(), expected.len());
    for (s, e) in stored.iter().zip(&expected) {
        assert_eq!(s.id, e.id);
        assert_eq!(s.variables, e.variables);
        assert_eq!(s.metadata, e.metadata);
        assert_eq!(s.output, e.output);
        assert_eq!(s.status, e.status);
        assert_eq!(s.error, e.error);
        assert_eq!(s.latency_ms, e.latency_ms);
        assert_eq!(s.cost_usd, e.cost_usd);
    }

    // A duplicate of a stored run late in a new batch: none of the batch is stored.
    let mut again: Vec<_> = (0..70)
        .map(|i| completed("lb", 1, 1000 + i).into_run(project).unwrap())
        .collect();
    again[65].id = runs[7].id;
    let e = b.runs.insert_runs(&again).await.unwrap_err();
    assert!(
        matches!(&e, Error::AlreadyExists { what } if what.contains(&runs[7].id.to_string())),
        "{e:?}"
    );
    // A duplicate inside the batch itself.
    let mut twice: Vec<_> = (0..40)
        .map(|i| completed("lb", 1, 2000 + i).into_run(project).unwrap())
        .collect();
    twice[39].id = twice[3].id;
    let e = b.runs.insert_runs(&twice).await.unwrap_err();
    assert!(matches!(&e, Error::AlreadyExists { .. }), "{e:?}");
    // … and within a few runs of each other.
    twice[39].id = uuid::Uuid::new_v4();
    twice[9].id = twice[5].id;
    let e = b.runs.insert_runs(&twice).await.unwrap_err();
    assert!(
        matches!(&e, Error::AlreadyExists { what } if what.contains(&twice[5].id.to_string())),
        "{e:?}"
    );
    assert_eq!(all_pages(&r, q).await.len(), runs.len());
}

/// Bad run input and bad queries are refused with the field named.
pub async fn runs_bad_input(b: &TestBackend) {
    let r = reg(b).await;
    let field = |e: Error| match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let mut n = NewRun::with_status(RunStatus::Completed);
    n.metadata = json!([1]);
    assert_eq!(field(r.log_run(n).await.unwrap_err()), "metadata");
    let mut n = NewRun::with_status(RunStatus::Completed);
    n.prompt = Some("bad name".into());
    assert_eq!(field(r.log_run(n).await.unwrap_err()), "prompt");
    let mut n = NewRun::with_status(RunStatus::Completed);
    n.cost_usd = Some("-1".parse().unwrap());
    assert_eq!(field(r.log_run(n).await.unwrap_err()), "cost_usd");
    let mut n = NewRun::with_status(RunStatus::Completed);
    n.input = json!(3);
    assert_eq!(field(r.log_run(n).await.unwrap_err()), "input");
    let mut q = RunQuery::default();
    q.version = Some(1);
    assert_eq!(field(r.runs(&q).await.unwrap_err()), "version");
    let mut q = RunQuery::default();
    q.page.cursor = Some("nope".into());
    assert_eq!(field(r.runs(&q).await.unwrap_err()), "cursor");
    let mut q = RunQuery::default();
    q.page.limit = Some(1000);
    assert_eq!(field(r.runs(&q).await.unwrap_err()), "limit");
    let mut q = RunQuery::default();
    q.since = Some(prompt_core::domain::now());
    q.until = Some(prompt_core::domain::now() - chrono::Duration::hours(1));
    assert_eq!(field(r.runs(&q).await.unwrap_err()), "until");
    let e = r.stats(&StatsQuery::prompt("ghost")).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
}

/// Count, failures, error rate, latency percentiles (interpolated), token and cost sums.
pub async fn stats_counts_percentiles_and_sums(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("s", NewVersion::new("x")).await.unwrap();
    r.create_version("other", NewVersion::new("x"))
        .await
        .unwrap();
    let empty = r.stats(&StatsQuery::prompt("s")).await.unwrap();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].count, 0);
    assert_eq!(empty[0].error_rate, 0.0);
    assert_eq!(empty[0].latency_p50_ms, None);
    let mut batch: Vec<NewRun> = (1..=100).map(|i| completed("s", 1, i)).collect();
    batch.push(failed("s", 1));
    batch.push(completed("other", 1, 9999));
    for res in r.log_runs(batch).await.unwrap() {
        res.unwrap();
    }
    let s = &r.stats(&StatsQuery::prompt("s")).await.unwrap()[0];
    assert_eq!(s.count, 101);
    assert_eq!(s.failed, 1);
    assert!((s.error_rate - 1.0 / 101.0).abs() < 1e-9);
    assert_eq!(s.latency_p50_ms, Some(50.5));
    assert!(
        (s.latency_p95_ms.unwrap() - 95.05).abs() < 1e-6,
        "{:?}",
        s.latency_p95_ms
    );
    assert!(
        (s.latency_p99_ms.unwrap() - 99.01).abs() < 1e-6,
        "{:?}",
        s.latency_p99_ms
    );
    assert_eq!(s.input_tokens, 1000);
    assert_eq!(s.output_tokens, 500);
    assert_eq!(s.cost_usd, "0.01".parse::<Decimal>().unwrap());
    let mut window = StatsQuery::prompt("s");
    window.since = Some(prompt_core::domain::now() + chrono::Duration::hours(1));
    assert_eq!(r.stats(&window).await.unwrap()[0].count, 0);
}

/// Grouping by version, label and model.
pub async fn stats_grouping(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("g", NewVersion::new("x")).await.unwrap();
    r.create_version("g", NewVersion::new("y")).await.unwrap();
    let mut l = completed("g", 2, 30);
    l.label = Some("production".into());
    for res in r
        .log_runs(vec![
            completed("g", 1, 10),
            completed("g", 1, 20),
            l,
            failed("g", 2),
        ])
        .await
        .unwrap()
    {
        res.unwrap();
    }
    let mut q = StatsQuery::prompt("g");
    q.group_by = Some(GroupBy::Version);
    let by_version = r.stats(&q).await.unwrap();
    let summary: Vec<(Option<String>, u64, u64)> = by_version
        .iter()
        .map(|s| (s.group.clone(), s.count, s.failed))
        .collect();
    assert_eq!(
        summary,
        vec![(Some("1".into()), 2, 0), (Some("2".into()), 2, 1)]
    );
    assert_eq!(by_version[0].latency_p50_ms, Some(15.0));
    q.group_by = Some(GroupBy::Model);
    let by_model = r.stats(&q).await.unwrap();
    let models: Vec<_> = by_model
        .iter()
        .map(|s| (s.group.clone(), s.count))
        .collect();
    assert_eq!(
        models,
        vec![(Some("claude".into()), 1), (Some("gpt-4o-mini".into()), 3)]
    );
    q.group_by = Some(GroupBy::Label);
    let by_label = r.stats(&q).await.unwrap();
    let labels: Vec<_> = by_label
        .iter()
        .map(|s| (s.group.clone(), s.count))
        .collect();
    assert_eq!(labels, vec![(None, 3), (Some("production".into()), 1)]);
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// `n` as a run of `project` created at `t` (only `insert_runs` takes a caller's time).
fn run_at(n: NewRun, project: uuid::Uuid, t: DateTime<Utc>) -> Run {
    let mut r = n.into_run(project).unwrap();
    r.created_at = t;
    r.started_at = r.started_at.map(|_| t);
    r.completed_at = r.completed_at.map(|_| t);
    r
}

/// A stats row in short: (bucket, group, count, failed).
type Row = (Option<DateTime<Utc>>, Option<String>, u64, u64);

/// Each row in short.
fn rows(stats: &[RunStats]) -> Vec<Row> {
    stats
        .iter()
        .map(|s| (s.bucket, s.group.clone(), s.count, s.failed))
        .collect()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-6,
        (a, b) => a == b,
    }
}

/// Hourly buckets: one row per hour with runs (an hour without runs is omitted), at
/// the hour's UTC start, with each hour's counts, percentiles, tokens and cost; `since`
/// is inclusive and `until` exclusive.
pub async fn stats_hourly_buckets(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "runs at caller-chosen times") {
        return;
    }
    let r = reg(b).await;
    r.create_version("h", NewVersion::new("x")).await.unwrap();
    let project = r.project().id;
    let runs = vec![
        run_at(
            completed("h", 1, 99),
            project,
            utc("2026-01-05T09:59:59.999999Z"),
        ),
        run_at(completed("h", 1, 10), project, utc("2026-01-05T10:00:00Z")),
        run_at(completed("h", 1, 30), project, utc("2026-01-05T10:10:00Z")),
        run_at(failed("h", 1), project, utc("2026-01-05T10:30:00Z")),
        run_at(
            completed("h", 1, 20),
            project,
            utc("2026-01-05T10:59:59.999999Z"),
        ),
        run_at(completed("h", 1, 100), project, utc("2026-01-05T11:00:00Z")),
        run_at(completed("h", 1, 200), project, utc("2026-01-05T11:45:00Z")),
        run_at(completed("h", 1, 7), project, utc("2026-01-05T13:15:00Z")),
        run_at(completed("h", 1, 99), project, utc("2026-01-05T14:00:00Z")),
    ];
    b.runs.insert_runs(&runs).await.unwrap();
    let mut q = StatsQuery::prompt("h");
    q.bucket = Some(Bucket::Hour);
    q.since = Some(utc("2026-01-05T10:00:00Z"));
    q.until = Some(utc("2026-01-05T14:00:00Z"));
    let got = r.stats(&q).await.unwrap();
    assert_eq!(
        rows(&got),
        vec![
            (Some(utc("2026-01-05T10:00:00Z")), None, 4, 1),
            (Some(utc("2026-01-05T11:00:00Z")), None, 2, 0),
            (Some(utc("2026-01-05T13:00:00Z")), None, 1, 0),
        ]
    );
    let p50: Vec<_> = got.iter().map(|s| s.latency_p50_ms).collect();
    assert_eq!(p50, vec![Some(20.0), Some(150.0), Some(7.0)]);
    assert!(close(got[1].latency_p95_ms, Some(195.0)), "{:?}", got[1]);
    assert_eq!(got[0].error_rate, 0.25);
    let tokens: Vec<_> = got
        .iter()
        .map(|s| (s.input_tokens, s.output_tokens))
        .collect();
    assert_eq!(tokens, vec![(30, 15), (20, 10), (10, 5)]);
    let cost: Vec<Decimal> = got.iter().map(|s| s.cost_usd).collect();
    let want: Vec<Decimal> = ["0.0003", "0.0002", "0.0001"]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    assert_eq!(cost, want);
    // Not bucketed: one row, without a bucket.
    q.bucket = None;
    let total = r.stats(&q).await.unwrap();
    assert_eq!(rows(&total), vec![(None, None, 7, 1)]);
    // Bucketed with no runs in range: no rows at all.
    q.bucket = Some(Bucket::Hour);
    q.since = Some(utc("2025-01-01T00:00:00Z"));
    q.until = Some(utc("2025-01-02T00:00:00Z"));
    assert_eq!(r.stats(&q).await.unwrap(), vec![]);
    // Daily: the same runs in one row starting at midnight UTC.
    q.bucket = Some(Bucket::Day);
    q.since = Some(utc("2026-01-05T10:00:00Z"));
    q.until = None;
    assert_eq!(
        rows(&r.stats(&q).await.unwrap()),
        vec![(Some(utc("2026-01-05T00:00:00Z")), None, 8, 1)]
    );
}

/// Minute buckets combine with a grouping: a series per group, ordered by bucket then
/// group.
pub async fn stats_minute_buckets_by_model(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "runs at caller-chosen times") {
        return;
    }
    let r = reg(b).await;
    r.create_version("m", NewVersion::new("x")).await.unwrap();
    let project = r.project().id;
    let runs = vec![
        run_at(completed("m", 1, 10), project, utc("2026-02-01T08:00:10Z")),
        run_at(failed("m", 1), project, utc("2026-02-01T08:00:50Z")),
        run_at(completed("m", 1, 30), project, utc("2026-02-01T08:01:05Z")),
        run_at(completed("m", 1, 50), project, utc("2026-02-01T08:01:59Z")),
        run_at(failed("m", 1), project, utc("2026-02-01T08:03:00Z")),
    ];
    b.runs.insert_runs(&runs).await.unwrap();
    let mut q = StatsQuery::prompt("m");
    q.bucket = Some(Bucket::Minute);
    q.group_by = Some(GroupBy::Model);
    q.since = Some(utc("2026-02-01T08:00:00Z"));
    q.until = Some(utc("2026-02-01T09:00:00Z"));
    let got = r.stats(&q).await.unwrap();
    let (gpt, claude) = (Some("gpt-4o-mini".to_owned()), Some("claude".to_owned()));
    assert_eq!(
        rows(&got),
        vec![
            (Some(utc("2026-02-01T08:00:00Z")), claude.clone(), 1, 1),
            (Some(utc("2026-02-01T08:00:00Z")), gpt.clone(), 1, 0),
            (Some(utc("2026-02-01T08:01:00Z")), gpt, 2, 0),
            (Some(utc("2026-02-01T08:03:00Z")), claude, 1, 1),
        ]
    );
    assert_eq!(got[2].latency_p50_ms, Some(40.0));
    assert_eq!(got[0].latency_p50_ms, None);
    assert_eq!(got[2].input_tokens, 20);
}

/// Without a prompt, stats cover every run of the project (runs of any prompt and
/// runs without one), and no other project's.
pub async fn stats_project_wide(b: &TestBackend) {
    let r = reg(b).await;
    let other = reg(b).await;
    for name in ["a", "b"] {
        r.create_version(name, NewVersion::new("x")).await.unwrap();
    }
    other
        .create_version("a", NewVersion::new("x"))
        .await
        .unwrap();
    let empty = r.stats(&StatsQuery::project()).await.unwrap();
    assert_eq!(rows(&empty), vec![(None, None, 0, 0)]);
    let mut adhoc = completed("a", 1, 1);
    adhoc.prompt = None;
    adhoc.version = None;
    let batch = vec![
        completed("a", 1, 10),
        completed("a", 1, 20),
        failed("a", 1),
        completed("b", 1, 30),
        failed("b", 1),
        adhoc,
    ];
    for res in r.log_runs(batch).await.unwrap() {
        res.unwrap();
    }
    for res in other.log_runs(vec![completed("a", 1, 5000)]).await.unwrap() {
        res.unwrap();
    }
    let all = r.stats(&StatsQuery::project()).await.unwrap();
    assert_eq!(rows(&all), vec![(None, None, 6, 2)]);
    assert_eq!(all[0].latency_p50_ms, Some(15.0));
    assert_eq!(all[0].input_tokens, 40);
    assert_eq!(all[0].cost_usd, "0.0004".parse::<Decimal>().unwrap());
    assert_eq!(
        rows(&r.stats(&StatsQuery::prompt("b")).await.unwrap()),
        vec![(None, None, 2, 1)]
    );
    let mut by_model = StatsQuery::project();
    by_model.group_by = Some(GroupBy::Model);
    let models: Vec<_> = r
        .stats(&by_model)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.group.clone(), s.count))
        .collect();
    assert_eq!(
        models,
        vec![(Some("claude".into()), 2), (Some("gpt-4o-mini".into()), 4)]
    );
    // Bucketed by day from an hour ago: the runs (just logged) in aligned buckets.
    let mut daily = StatsQuery::project();
    daily.bucket = Some(Bucket::Day);
    daily.since = Some(prompt_core::domain::now() - Duration::hours(1));
    let days = r.stats(&daily).await.unwrap();
    assert!(!days.is_empty() && days.len() <= 2, "{days:?}");
    assert_eq!(days.iter().map(|s| s.count).sum::<u64>(), 6);
    for d in &days {
        let start = d.bucket.unwrap();
        assert_eq!(Bucket::Day.start_of(start), start, "{d:?}");
    }
}

/// A bucketed query needs `since` and at most `MAX_BUCKETS` buckets; the errors name
/// the field.
pub async fn stats_bucket_validation(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("v", NewVersion::new("x")).await.unwrap();
    let invalid = |e: Error| match e {
        Error::InvalidInput { field, message } => (field, message),
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let mut q = StatsQuery::prompt("v");
    q.bucket = Some(Bucket::Hour);
    let (field, message) = invalid(r.stats(&q).await.unwrap_err());
    assert_eq!(field, "since");
    assert!(
        message.contains("a bucketed query needs since"),
        "{message}"
    );
    // Project-wide too.
    let mut p = StatsQuery::project();
    p.bucket = Some(Bucket::Minute);
    assert_eq!(invalid(r.stats(&p).await.unwrap_err()).0, "since");
    // 8 days of minutes: 11520 buckets.
    q.bucket = Some(Bucket::Minute);
    q.since = Some(utc("2026-03-01T00:00:00Z"));
    q.until = Some(utc("2026-03-09T00:00:00Z"));
    let (field, message) = invalid(r.stats(&q).await.unwrap_err());
    assert_eq!(field, "bucket");
    assert!(
        message.contains("11520") && message.contains(&MAX_BUCKETS.to_string()),
        "{message}"
    );
    // Without until, the range ends now.
    let mut open = StatsQuery::prompt("v");
    open.bucket = Some(Bucket::Minute);
    open.since = Some(prompt_core::domain::now() - Duration::days(30));
    assert_eq!(invalid(r.stats(&open).await.unwrap_err()).0, "bucket");
    // Exactly the limit is fine, and so are the same 8 days in hours.
    q.until = Some(utc("2026-03-01T00:00:00Z") + Duration::minutes(MAX_BUCKETS));
    assert_eq!(r.stats(&q).await.unwrap(), vec![]);
    q.until = Some(utc("2026-03-09T00:00:00Z"));
    q.bucket = Some(Bucket::Hour);
    assert_eq!(r.stats(&q).await.unwrap(), vec![]);
    q.until = Some(utc("2026-02-01T00:00:00Z"));
    assert_eq!(invalid(r.stats(&q).await.unwrap_err()).0, "until");
    let mut bad = StatsQuery::project();
    bad.prompt = Some("bad name".into());
    assert_eq!(invalid(r.stats(&bad).await.unwrap_err()).0, "prompt");
}

/// Bucketed rows add up to the totals of the same range (counts, failures, tokens,
/// cost), per group too, in order, with aligned buckets; a bucket holding every run
/// has the totals' percentiles.
pub async fn stats_buckets_agree_with_totals(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "runs at caller-chosen times") {
        return;
    }
    let r = reg(b).await;
    r.create_version("t", NewVersion::new("x")).await.unwrap();
    r.create_version("t", NewVersion::new("y")).await.unwrap();
    let project = r.project().id;
    let start = utc("2026-04-10T00:00:00Z");
    // 150 runs over about 3 days at scattered times, of two versions and two models.
    let runs: Vec<Run> = (0..150i64)
        .map(|i| {
            let version = 1 + (i % 2) as u32;
            let n = if i % 7 == 0 {
                failed("t", version)
            } else {
                let mut n = completed("t", version, (i * 37 % 500) as u64);
                n.input_tokens = Some(i as u64);
                n.cost_usd = Some(Decimal::new(i, 6));
                n
            };
            run_at(n, project, start + Duration::seconds(i * 7919 % 259_200))
        })
        .collect();
    b.runs.insert_runs(&runs).await.unwrap();
    let since = start - Duration::minutes(30);
    let until = start + Duration::days(3);
    for group_by in [None, Some(GroupBy::Model), Some(GroupBy::Version)] {
        let mut q = StatsQuery::prompt("t");
        q.since = Some(since);
        q.until = Some(until);
        q.group_by = group_by;
        let totals = r.stats(&q).await.unwrap();
        for bucket in [Bucket::Minute, Bucket::Hour, Bucket::Day] {
            q.bucket = Some(bucket);
            let series = r.stats(&q).await.unwrap();
            let keys: Vec<_> = series.iter().map(|s| (s.bucket, s.group.clone())).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(
                keys, sorted,
                "{bucket:?} {group_by:?}: ordered, one row per key"
            );
            for s in &series {
                let t = s.bucket.unwrap();
                assert_eq!(bucket.start_of(t), t);
                assert!(t >= bucket.start_of(since) && t < until, "{t}");
                assert!(s.count > 0, "empty buckets are omitted");
            }
            for total in &totals {
                let mine: Vec<&RunStats> =
                    series.iter().filter(|s| s.group == total.group).collect();
                let sum = |f: fn(&RunStats) -> u64| mine.iter().map(|s| f(s)).sum::<u64>();
                assert_eq!(sum(|s| s.count), total.count, "{bucket:?} {group_by:?}");
                assert_eq!(sum(|s| s.failed), total.failed);
                assert_eq!(sum(|s| s.input_tokens), total.input_tokens);
                assert_eq!(sum(|s| s.output_tokens), total.output_tokens);
                let cost: Decimal = mine.iter().map(|s| s.cost_usd).sum();
                assert_eq!(cost.normalize(), total.cost_usd);
            }
        }
        // One wide bucket per group holds everything: same percentiles as the totals.
        q.bucket = Some(Bucket::Day);
        q.since = Some(start + Duration::hours(1));
        q.until = Some(start + Duration::hours(20));
        let day = r.stats(&q).await.unwrap();
        q.bucket = None;
        let whole = r.stats(&q).await.unwrap();
        assert_eq!(day.len(), whole.len());
        for (d, w) in day.iter().zip(&whole) {
            assert_eq!((d.group.clone(), d.count), (w.group.clone(), w.count));
            for (a, b) in [
                (d.latency_p50_ms, w.latency_p50_ms),
                (d.latency_p95_ms, w.latency_p95_ms),
                (d.latency_p99_ms, w.latency_p99_ms),
            ] {
                assert!(close(a, b), "{d:?} vs {w:?}");
            }
        }
    }
}

/// Pending runs are claimed once each, even by concurrent claimers.
pub async fn claim_pending_never_twice(b: &TestBackend) {
    if !b.can(b.caps.run_internals, "the workers' queue") {
        return;
    }
    let r = reg(b).await;
    let batch: Vec<NewRun> = (0..30)
        .map(|_| NewRun::with_status(RunStatus::Pending))
        .collect();
    let mine: BTreeSet<_> = r
        .log_runs(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.unwrap().id)
        .collect();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let log = b.runs.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                match log.claim_pending(3).await {
                    Ok(batch) if batch.is_empty() => return Ok(got),
                    Ok(batch) => got.extend(batch),
                    Err(e) => return Err(e),
                }
            }
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(got) => claimed.extend(got),
            Err(Error::Unsupported { .. }) => return,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(claimed.iter().all(|x| x.status == RunStatus::Running));
    let ids: Vec<_> = claimed
        .iter()
        .map(|x| x.id)
        .filter(|id| mine.contains(id))
        .collect();
    let unique: BTreeSet<_> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no run claimed twice");
    assert_eq!(unique, mine, "every pending run claimed");

    // A worker that died leaves runs `running`: re-queued once the lease is over, and
    // claimable again; runs of live workers (started after the cut-off) are left alone.
    let cutoff = prompt_core::domain::now() + chrono::Duration::seconds(1);
    let n = b.runs.requeue_stale(cutoff).await.unwrap();
    assert!(n >= 30, "requeued {n}");
    let again = r.get_run(*mine.iter().next().unwrap()).await.unwrap();
    assert_eq!(again.status, RunStatus::Pending);
    let long_ago = prompt_core::domain::now() - chrono::Duration::hours(1);
    let claimed = b.runs.claim_pending(1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        b.runs.requeue_stale(long_ago).await.unwrap(),
        0,
        "a fresh claim is not stale"
    );
}
