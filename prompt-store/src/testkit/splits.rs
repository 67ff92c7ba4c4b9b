//! Behaviour tests of release splits: a label pointing at weighted versions, picked
//! sticky by a caller's key, audited in the label's history, recorded on runs and
//! compared by `stats` grouped by version.

use prompt_core::domain::split;
use prompt_core::run::GroupBy;
use prompt_core::{
    BatchOp, BatchOutcome, Error, LabelExpect, NewRun, NewVersion, PageRequest, Registry,
    RunStatus, Selector, SplitWeights, StatsQuery,
};
use uuid::Uuid;

use super::TestBackend;

async fn reg(b: &TestBackend) -> Registry {
    b.registry(&format!("split-{}", Uuid::new_v4().simple()))
        .await
}

fn weights(pairs: &[(u32, u32)]) -> SplitWeights {
    pairs.iter().copied().collect()
}

fn invalid_field(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::InvalidInput { field, .. }) => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

/// A split is set (the label's version is its primary arm, the move carries it),
/// resolves sticky per key (the same key, the same version, 10,000 times) and in
/// proportion over many keys, each key getting what [`split::pick`] says; moving the
/// label to one version ends it; both moves are in the label's history.
pub async fn split_set_sticky_and_ended(b: &TestBackend) {
    let r = reg(b).await;
    for t in ["one", "two", "three"] {
        r.create_version("ab", NewVersion::new(t)).await.unwrap();
    }
    let split = weights(&[(2, 90), (3, 10)]);
    let m = r
        .set_label_split("ab", "production", &split, LabelExpect::Unset, None)
        .await
        .unwrap();
    assert_eq!(
        m.to_version,
        Some(2),
        "the heaviest arm is the label's version"
    );
    assert_eq!(m.split.as_ref(), Some(&split));
    let p = r.get_prompt("ab").await.unwrap();
    assert_eq!(
        p.labels.get("production"),
        Some(&2),
        "readers see the primary arm"
    );
    assert_eq!(
        p.splits.get("production"),
        Some(&split),
        "and the split beside it"
    );
    assert_eq!(p.splits.len(), 1);

    let prod = Selector::label("production");
    let first = r.resolve_with("ab", &prod, Some("user-123")).await.unwrap();
    let s = first.split.clone().expect("the split it came from");
    assert_eq!((s.label.as_str(), &s.weights), ("production", &split));
    for _ in 0..10_000 {
        let v = r.resolve_with("ab", &prod, Some("user-123")).await.unwrap();
        assert_eq!(v.version, first.version, "sticky");
    }
    // Proportions through the registry: each key gets exactly the core's pick.
    let n = 2_000;
    let mut threes = 0;
    for i in 0..n {
        let key = format!("user-{i}");
        let v = r.resolve_with("ab", &prod, Some(&key)).await.unwrap();
        assert_eq!(
            v.version,
            split::pick(&split, p.id, "production", Some(&key)),
            "{key}"
        );
        if v.version == 3 {
            threes += 1;
        }
    }
    let share = f64::from(threes) * 100.0 / f64::from(n);
    assert!((share - 10.0).abs() < 3.0, "{share}% got version 3");
    // By number: no split; without a key: one of the arms.
    assert_eq!(r.get_version("ab", 3).await.unwrap().split, None);
    let any = r.resolve("ab", &prod).await.unwrap();
    assert!([2, 3].contains(&any.version));

    // Moving the label to one version ends the split.
    let m = r
        .set_label("ab", "production", 1, LabelExpect::At(2), None)
        .await
        .unwrap();
    assert_eq!(
        (m.from_version, m.to_version, m.split),
        (Some(2), Some(1), None)
    );
    let v = r.resolve_with("ab", &prod, Some("user-123")).await.unwrap();
    assert_eq!((v.version, v.split), (1, None));
    assert!(r.get_prompt("ab").await.unwrap().splits.is_empty());

    let history = r
        .label_history("ab", "production", &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].split, None, "newest first: the end of the split");
    assert_eq!(history[1].split.as_ref(), Some(&split));
    assert_eq!(history[1].to_version, Some(2));
}

/// Bad splits are refused with the field named, nothing moves; a version in a split
/// cannot be deleted while the split stands; a run records the split it came from and
/// `stats` grouped by version compares the arms.
pub async fn split_refusals_runs_and_stats(b: &TestBackend) {
    let r = reg(b).await;
    for t in ["one", "two", "three"] {
        r.create_version("cmp", NewVersion::new(t)).await.unwrap();
    }
    r.delete_version("cmp", 1).await.unwrap();
    let set = |w: SplitWeights| {
        let r = r.clone();
        async move {
            r.set_label_split("cmp", "production", &w, LabelExpect::Any, None)
                .await
        }
    };
    assert_eq!(invalid_field(set(weights(&[(2, 100)])).await), "split");
    assert_eq!(
        invalid_field(set(weights(&[(2, 5), (3, 0)])).await),
        "split.3"
    );
    assert_eq!(
        invalid_field(set(weights(&[(2, 5), (9, 5)])).await),
        "split.9"
    );
    assert_eq!(
        invalid_field(set(weights(&[(1, 5), (2, 5)])).await),
        "split.1",
        "a deleted version"
    );
    let many: SplitWeights = (2..=12).map(|v| (v, 1)).collect();
    assert_eq!(invalid_field(set(many).await), "split");
    assert!(matches!(
        r.set_label_split(
            "cmp",
            "latest",
            &weights(&[(2, 1), (3, 1)]),
            LabelExpect::Any,
            None
        )
        .await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(
        !r.get_prompt("cmp")
            .await
            .unwrap()
            .labels
            .contains_key("production")
    );

    // Any positive sum: 3 to 1.
    let w = weights(&[(2, 3), (3, 1)]);
    set(w.clone()).await.unwrap();
    let e = r.delete_version("cmp", 3).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { message } if message.contains("'production'")),
        "{e:?}"
    );

    // Runs record the version they got and the split it came from.
    let prod = Selector::label("production");
    let mut logged = Vec::new();
    for i in 0..40 {
        let v = r
            .resolve_with("cmp", &prod, Some(&format!("k{i}")))
            .await
            .unwrap();
        let mut n = NewRun::with_status(RunStatus::Completed);
        n.prompt = Some("cmp".into());
        n.version = Some(v.version);
        n.label = Some("production".into());
        n.split = v.split.clone();
        n.latency_ms = Some(100 * u64::from(v.version));
        logged.push((r.log_run(n).await.unwrap(), v.version));
    }
    for (run, version) in &logged {
        let got = r.get_run(run.id).await.unwrap();
        assert_eq!(got.version, Some(*version));
        let s = got.split.expect("the run's split");
        assert_eq!((s.label.as_str(), &s.weights), ("production", &w));
    }
    let mut q = StatsQuery::prompt("cmp");
    q.group_by = Some(GroupBy::Version);
    let rows = r.stats(&q).await.unwrap();
    let count = |v: u32| {
        let expected = logged.iter().filter(|(_, x)| *x == v).count() as u64;
        let got = rows
            .iter()
            .find(|row| row.group.as_deref() == Some(&v.to_string()))
            .map_or(0, |row| row.count);
        (got, expected)
    };
    let (two, three) = (count(2), count(3));
    assert_eq!(two.0, two.1);
    assert_eq!(three.0, three.1);
    assert_eq!(two.0 + three.0, 40);

    // A run's split must be of its label and contain its version.
    let mut n = NewRun::with_status(RunStatus::Completed);
    n.prompt = Some("cmp".into());
    n.version = Some(2);
    n.label = Some("staging".into());
    n.split = Some(prompt_core::LabelSplit {
        label: "production".into(),
        weights: w,
    });
    assert_eq!(invalid_field(r.log_run(n).await), "split");
}

/// A batch's `set_label` with `split` sets a release split as `set_label_split` does
/// (on versions created earlier in the same batch too): the move, the prompt and the
/// label's history carry it, and `expected_version` compares with the label's version
/// (the primary arm). A bad split refuses the whole batch naming `ops[i].split`,
/// nothing written; a `set_label` with `version` ends the split.
pub async fn split_set_by_batch(b: &TestBackend) {
    let r = reg(b).await;
    let set = |version: Option<u32>, split: Option<SplitWeights>, expected: Option<u32>| {
        BatchOp::SetLabel {
            name: "bt".into(),
            label: "production".into(),
            version,
            split,
            expected_version: Some(expected),
        }
    };
    let create = |t: &str| BatchOp::CreateVersion {
        name: "bt".into(),
        version: NewVersion::new(t),
    };
    let split = weights(&[(1, 90), (2, 10)]);
    let out = r
        .apply_batch(vec![
            create("one"),
            create("two"),
            set(None, Some(split.clone()), None),
        ])
        .await
        .unwrap();
    let Some(BatchOutcome::LabelMove(m)) = out.get(2) else {
        panic!("{out:?}")
    };
    assert_eq!((m.to_version, m.split.as_ref()), (Some(1), Some(&split)));
    let p = r.get_prompt("bt").await.unwrap();
    assert_eq!(p.labels.get("production"), Some(&1));
    assert_eq!(p.splits.get("production"), Some(&split));
    let history = r
        .label_history("bt", "production", &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].split.as_ref(), Some(&split));
    let v = r
        .resolve_with("bt", &Selector::label("production"), Some("user-1"))
        .await
        .unwrap();
    assert_eq!(v.split.map(|s| s.weights), Some(split.clone()));
    assert_eq!(
        v.version,
        split::pick(&split, p.id, "production", Some("user-1"))
    );

    // Compare-and-set on the label's version, the primary arm.
    let even = weights(&[(1, 50), (2, 50)]);
    let stale = r
        .apply_batch(vec![set(None, Some(even.clone()), Some(2))])
        .await
        .unwrap_err();
    assert!(
        matches!(stale.error, Error::PreconditionFailed { .. }),
        "{stale:?}"
    );
    let out = r
        .apply_batch(vec![set(None, Some(even.clone()), Some(1))])
        .await
        .unwrap();
    assert!(
        matches!(&out[0], BatchOutcome::LabelMove(m) if m.to_version == Some(2) && m.split.as_ref() == Some(&even)),
        "ties go to the highest version: {out:?}"
    );

    // Refused, naming the field; the version created before it is not written.
    let cases = [
        (set(None, None, Some(2)), "ops[1].split"),
        (set(Some(1), Some(even.clone()), Some(2)), "ops[1].split"),
        (
            set(None, Some(weights(&[(1, 100)])), Some(2)),
            "ops[1].split",
        ),
        (
            set(None, Some(weights(&[(1, 5), (2, 0)])), Some(2)),
            "ops[1].split.2",
        ),
        (
            set(None, Some(weights(&[(1, 5), (9, 5)])), Some(2)),
            "split.9",
        ),
    ];
    for (op, field) in cases {
        let failure = r.apply_batch(vec![create("three"), op]).await.unwrap_err();
        assert_eq!(failure.index, Some(1), "{failure:?}");
        match &failure.error {
            Error::InvalidInput { field: f, .. } => assert!(f.ends_with(field), "{f} {field}"),
            other => panic!("{field}: {other:?}"),
        }
    }
    let p = r.get_prompt("bt").await.unwrap();
    assert_eq!(p.latest_version, Some(2), "nothing was written");
    assert_eq!(p.splits.get("production"), Some(&even));

    // One version ends the split.
    let out = r
        .apply_batch(vec![set(Some(1), None, Some(2))])
        .await
        .unwrap();
    assert!(
        matches!(&out[0], BatchOutcome::LabelMove(m) if m.to_version == Some(1) && m.split.is_none()),
        "{out:?}"
    );
    assert!(r.get_prompt("bt").await.unwrap().splits.is_empty());
}
