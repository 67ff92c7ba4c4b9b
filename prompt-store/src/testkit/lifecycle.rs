//! Behaviour tests of the prompt lifecycle: deleted versions (tombstones) and a
//! project's protected labels.

use prompt_core::domain::actor;
use prompt_core::{
    Error, EventType, LabelExpect, NewVersion, PageRequest, Registry, Selector, Template,
};
use uuid::Uuid;

use super::TestBackend;

async fn reg(b: &TestBackend) -> Registry {
    b.registry(&format!("life-{}", Uuid::new_v4().simple()))
        .await
}

fn not_found_message(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(e @ Error::NotFound { .. }) => e.to_string(),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn live_numbers(r: &Registry, name: &str) -> Vec<u32> {
    r.list_versions(name, &PageRequest::first(50))
        .await
        .unwrap()
        .items
        .iter()
        .map(|v| v.version)
        .collect()
}

/// A deleted version no longer resolves (and says it was deleted), is hidden from the
/// list, keeps its number (the next version is one past it), cannot be labelled, and
/// cannot be deleted while a label other than `latest` points at it.
pub async fn delete_version_tombstones(b: &TestBackend) {
    let r = reg(b).await;
    for t in ["one", "two", "three"] {
        r.create_version("d", NewVersion::new(t)).await.unwrap();
    }
    r.set_label("d", "staging", 2, LabelExpect::Any, None)
        .await
        .unwrap();
    r.set_label("d", "production", 2, LabelExpect::Any, None)
        .await
        .unwrap();
    // Warm any cache in front of the store with version 2.
    assert_eq!(r.get_version("d", 2).await.unwrap().version, 2);

    let e = r.delete_version("d", 2).await.unwrap_err();
    let Error::Conflict { message } = &e else {
        panic!("expected Conflict, got {e:?}");
    };
    assert!(
        message.contains("'production'") && message.contains("'staging'"),
        "{message}"
    );
    assert_eq!(
        r.get_version("d", 2).await.unwrap().version,
        2,
        "nothing deleted"
    );

    r.delete_label("d", "staging", LabelExpect::Any, None)
        .await
        .unwrap();
    r.set_label("d", "production", 3, LabelExpect::Any, None)
        .await
        .unwrap();
    r.delete_version("d", 2).await.unwrap();

    let msg = not_found_message(r.get_version("d", 2).await);
    assert!(
        msg.contains("version 2") && msg.contains("deleted"),
        "{msg}"
    );
    let msg = not_found_message(
        r.render("d", &Selector::Version(2), &Default::default())
            .await,
    );
    assert!(msg.contains("deleted"), "{msg}");
    assert_eq!(live_numbers(&r, "d").await, vec![3, 1]);
    let msg = not_found_message(r.delete_version("d", 2).await);
    assert!(msg.contains("deleted"), "deleting twice: {msg}");
    let msg = not_found_message(r.set_label("d", "staging", 2, LabelExpect::Any, None).await);
    assert!(
        msg.contains("deleted"),
        "labelling a deleted version: {msg}"
    );
    let msg = not_found_message(r.delete_version("d", 9).await);
    assert!(msg.contains("version 9"), "{msg}");
    assert!(!msg.contains("deleted"), "{msg}");
    let msg = not_found_message(r.delete_version("nope", 1).await);
    assert!(msg.contains("'nope'"), "{msg}");

    // Numbers are never reused: the next version is 4, even after deleting it and
    // creating another (5).
    let v4 = r
        .create_version("d", NewVersion::new("four"))
        .await
        .unwrap();
    assert_eq!(v4.version, 4);
    r.delete_version("d", 4).await.unwrap();
    // `latest` went back to the newest live version; no label blocked deleting 4.
    let p = r.get_prompt("d").await.unwrap();
    assert_eq!(p.latest_version, Some(3));
    assert_eq!(p.labels.get("latest"), Some(&3));
    let latest = r.resolve("d", &Selector::label("latest")).await.unwrap();
    assert_eq!(latest.version, 3);
    assert!(
        latest.labels.contains(&"latest".to_owned()),
        "{:?}",
        latest.labels
    );
    // The parent of the next version is the live latest.
    let mut next = NewVersion::new("five");
    next.parent_version = Some(3);
    let v5 = r.create_version("d", next).await.unwrap();
    assert_eq!(v5.version, 5);
    assert_eq!(live_numbers(&r, "d").await, vec![5, 3, 1]);
}

/// Deleting the last live versions is allowed: the prompt stays, with no resolvable
/// version, until a new one is created (numbered past the deleted ones).
pub async fn delete_every_version(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("e", NewVersion::new("one")).await.unwrap();
    r.create_version("e", NewVersion::new("two")).await.unwrap();
    r.delete_version("e", 1).await.unwrap();
    r.delete_version("e", 2).await.unwrap();
    let p = r.get_prompt("e").await.unwrap();
    assert_eq!(p.latest_version, None);
    assert!(p.labels.is_empty(), "{:?}", p.labels);
    assert!(live_numbers(&r, "e").await.is_empty());
    let msg = not_found_message(r.resolve("e", &Selector::label("latest")).await);
    assert!(msg.contains("latest"), "{msg}");
    let v = r
        .create_version("e", NewVersion::new("three"))
        .await
        .unwrap();
    assert_eq!(v.version, 3);
    assert_eq!(v.template, Template::Text("three".into()));
    assert_eq!(v.labels, vec!["latest"]);
}

/// Deleting checks its input, and another project's prompt is not found; the log
/// records `version.deleted` with the version, its id and the actor.
pub async fn delete_version_input_isolation_and_event(b: &TestBackend) {
    let r = reg(b).await;
    let other = reg(b).await;
    let v1 = r.create_version("i", NewVersion::new("one")).await.unwrap();
    r.create_version("i", NewVersion::new("two")).await.unwrap();
    let e = r.delete_version("i", 0).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "version"),
        "{e:?}"
    );
    let e = r.delete_version("bad//name", 1).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidInput { .. }), "{e:?}");
    let msg = not_found_message(other.delete_version("i", 1).await);
    assert!(msg.contains("'i'"), "{msg}");
    assert_eq!(r.get_version("i", 1).await.unwrap().id, v1.id);

    actor::scope("user:del".into(), r.delete_version("i", 1))
        .await
        .unwrap();
    let Some(log) = b.events.clone() else {
        eprintln!("SKIPPED on this backend: the event log (not read through its store)");
        return;
    };
    let head = log.head(r.project().id).await.unwrap();
    let page = log.events(r.project().id, head - 1, 10).await.unwrap();
    let e = &page.events[0];
    assert_eq!(e.kind, EventType::VersionDeleted);
    assert_eq!(e.prompt.as_deref(), Some("i"));
    assert_eq!(e.version, Some(1));
    assert_eq!(e.data["id"], serde_json::json!(v1.id));
    if b.caps.named_actors {
        assert_eq!(e.actor.as_deref(), Some("user:del"));
    }
}

fn labels(list: &[prompt_core::ProtectedLabel]) -> Vec<&str> {
    list.iter().map(|p| p.label.as_str()).collect()
}

/// A project's protected labels: seeded with the defaults on first use, then changed
/// only by protect/unprotect (never re-seeded, even when emptied), per project, with
/// their events.
pub async fn protected_labels_per_project(b: &TestBackend) {
    let r = reg(b).await;
    let other = reg(b).await;
    assert_eq!(labels(&r.protected_labels().await.unwrap()), ["production"]);
    let (p, created) = actor::scope("user:admin".into(), r.protect_label("staging"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(p.label, "staging");
    if b.caps.named_actors {
        assert_eq!(p.created_by.as_deref(), Some("user:admin"));
    }
    let (again, created) = r.protect_label("staging").await.unwrap();
    assert!(!created, "protecting twice changes nothing");
    assert_eq!(again, p);
    assert_eq!(
        labels(&r.protected_labels().await.unwrap()),
        ["production", "staging"]
    );
    r.unprotect_label("production").await.unwrap();
    let msg = not_found_message(r.unprotect_label("production").await);
    assert!(msg.contains("'production'"), "{msg}");
    r.unprotect_label("staging").await.unwrap();
    assert!(
        r.protected_labels().await.unwrap().is_empty(),
        "an emptied list is not seeded again"
    );
    assert_eq!(
        labels(&other.protected_labels().await.unwrap()),
        ["production"],
        "another project keeps its own list"
    );
    let e = r.protect_label("latest").await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "label"),
        "{e:?}"
    );
    let e = r.protect_label("Bad Label").await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "label"),
        "{e:?}"
    );

    let Some(log) = b.events.clone() else {
        eprintln!("SKIPPED on this backend: the event log (not read through its store)");
        return;
    };
    let events = log.events(r.project().id, 0, 100).await.unwrap().events;
    let seen: Vec<(EventType, Option<&str>)> = events
        .iter()
        .map(|e| (e.kind, e.label.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (EventType::ProtectedLabelAdded, Some("staging")),
            (EventType::ProtectedLabelDeleted, Some("production")),
            (EventType::ProtectedLabelDeleted, Some("staging")),
        ],
        "seeding appends nothing; a no-op protect appends nothing"
    );
}

/// Seeding with the caller's defaults happens once, also when callers race on a new
/// project, and a missing project is not found.
pub async fn protected_labels_seed_once(b: &TestBackend) {
    if !b.can(
        b.caps.projects,
        "seeding with chosen defaults (the server chooses)",
    ) {
        return;
    }
    let r = reg(b).await;
    let (s, p) = (b.store.clone(), r.project().id);
    let defaults = vec!["gold".to_owned(), "silver".to_owned()];
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, d) = (s.clone(), defaults.clone());
        tasks.push(tokio::spawn(async move { s.protected_labels(p, &d).await }));
    }
    for t in tasks {
        assert_eq!(labels(&t.await.unwrap().unwrap()), ["gold", "silver"]);
    }
    // Later defaults do not matter once seeded.
    let later = s.protected_labels(p, &["bronze".to_owned()]).await.unwrap();
    assert_eq!(labels(&later), ["gold", "silver"]);
    assert!(later.iter().all(|l| l.created_by.is_none()));
    // A first protect seeds too, then adds.
    let r2 = reg(b).await;
    let (_, created) = s
        .protect_label(r2.project().id, "gold", &defaults, None)
        .await
        .unwrap();
    assert!(!created, "gold was seeded by the protect itself");
    let e = s
        .protected_labels(Uuid::new_v4(), &defaults)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    let e = s
        .protected_labels(p, &["Not A Label".to_owned()])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "defaults"),
        "{e:?}"
    );
}
