//! Behaviour tests of the change feed's log, of batches and of the write
//! preconditions (parent version, `If-Match`, label compare-and-set).
//!
//! One file, just over 600 lines: one test body per behaviour of the feed's contract,
//! run unchanged on every backend; they share the log helpers at the top.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use prompt_core::domain::{actor, new_id, now};
use prompt_core::{
    ApiKeyRecord, BatchOp, BatchOutcome, Error, EventLog, EventType, KeyRole, LabelExpect,
    NewPrompt, NewVersion, PromptUpdate, Registry,
};
use serde_json::json;
use uuid::Uuid;

use super::TestBackend;

/// The backend's event log, or `None` (skipped) when it has none through its store.
fn log(b: &TestBackend) -> Option<Arc<dyn EventLog>> {
    let l = b.events.clone();
    if l.is_none() {
        eprintln!("SKIPPED on this backend: the event log (not read through its store)");
    }
    l
}

async fn reg(b: &TestBackend) -> Registry {
    b.registry(&format!("feed-{}", Uuid::new_v4())).await
}

async fn all_events(l: &dyn EventLog, project: Uuid) -> Vec<prompt_core::Event> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = l.events(project, after, 2).await.unwrap();
        assert!(page.events.len() <= 2);
        if page.events.is_empty() {
            assert_eq!(page.next, after);
            return out;
        }
        after = page.next;
        out.extend(page.events);
    }
}

/// Every write appends its events: types, prompt, version, label, actor and data,
/// numbered 1, 2, 3, … per project, paged oldest first; other projects see none.
pub async fn events_record_every_write(b: &TestBackend) {
    let Some(l) = log(b) else { return };
    let r = reg(b).await;
    let other = reg(b).await;
    let p = r.project().id;
    let s = &b.store;
    assert_eq!(l.head(p).await.unwrap(), 0);
    let mut np = NewPrompt::named("feed/a");
    np.tags = vec!["t".into()];
    s.create_prompt(p, np).await.unwrap();
    let update = PromptUpdate {
        description: Some(Some("d".into())),
        tags: None,
    };
    s.update_prompt(p, "feed/a", update, None).await.unwrap();
    let mut v = NewVersion::new("Hi {{name}}").with_labels(["staging"]);
    v.created_by = Some("user:ann".into());
    s.create_version(p, "feed/a", v).await.unwrap();
    // A version of a missing prompt creates it: two events and a label move.
    s.create_version(
        p,
        "feed/b",
        NewVersion::new("x").with_labels(["production"]),
    )
    .await
    .unwrap();
    s.set_label(
        p,
        "feed/a",
        "production",
        1,
        LabelExpect::Any,
        Some("user:bob"),
    )
    .await
    .unwrap();
    s.delete_label(p, "feed/a", "staging", LabelExpect::Any, Some("user:bob"))
        .await
        .unwrap();
    s.archive_prompt(p, "feed/b").await.unwrap();
    let types: Vec<EventType> = all_events(l.as_ref(), p)
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    use EventType::*;
    let mut expected = vec![
        PromptCreated,
        PromptUpdated,
        VersionCreated,
        LabelMoved,
        PromptCreated,
        VersionCreated,
        LabelMoved,
        LabelMoved,
        LabelRemoved,
        PromptArchived,
    ];
    if b.caps.api_keys {
        let k = ApiKeyRecord {
            id: new_id(),
            project_id: p,
            name: "ci".into(),
            role: KeyRole::Editor,
            prefix: "pr_feed".into(),
            hash: format!("h-{}", Uuid::new_v4()),
            created_at: now(),
            revoked_at: None,
        };
        s.create_api_key(k.clone()).await.unwrap();
        s.revoke_api_key(p, k.id).await.unwrap();
        // Revoking again changes nothing and records nothing.
        s.revoke_api_key(p, k.id).await.unwrap();
        expected.extend([ApiKeyCreated, ApiKeyRevoked]);
    }
    let types_now: Vec<EventType> = all_events(l.as_ref(), p)
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(&types_now[..types.len()], &types[..]);
    assert_eq!(types_now, expected);

    let events = all_events(l.as_ref(), p).await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "gapless from 1");
        assert_eq!(e.project, p);
    }
    assert_eq!(l.head(p).await.unwrap(), events.len() as u64);
    let created = &events[0];
    assert_eq!(created.prompt.as_deref(), Some("feed/a"));
    assert_eq!(created.data["tags"], json!(["t"]));
    assert_eq!(events[1].data, json!({"description": "d"}));
    let version = &events[2];
    assert_eq!(version.version, Some(1));
    assert_eq!(version.actor.as_deref(), Some("user:ann"));
    assert_eq!(version.data["labels"], json!(["staging"]));
    let moved = &events[7];
    assert_eq!(
        (
            moved.label.as_deref(),
            moved.version,
            moved.actor.as_deref()
        ),
        (Some("production"), Some(1), Some("user:bob"))
    );
    assert_eq!(moved.data, json!({"from": null}));
    let removed = &events[8];
    assert_eq!(
        (removed.label.as_deref(), removed.version),
        (Some("staging"), None)
    );
    assert_eq!(removed.data, json!({"from": 1}));
    let ids: BTreeSet<Uuid> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "unique ids");

    // A page: at most `limit`, with the next cursor and the head.
    let page = l.events(p, 3, 4).await.unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    assert_eq!((page.next, page.head), (7, events.len() as u64));
    assert!(page.has_more());
    // Past the head: an empty page, not an error.
    let past = l.events(p, 1000, 10).await.unwrap();
    assert!(past.events.is_empty());
    assert_eq!(past.next, 1000);
    // Another project's log is its own.
    assert_eq!(l.head(other.project().id).await.unwrap(), 0);
    assert!(
        l.events(other.project().id, 0, 10)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

/// The actor of a write without one of its own is the scoped one; a failed write
/// appends nothing.
pub async fn events_actor_scope_and_failed_writes(b: &TestBackend) {
    let Some(l) = log(b) else { return };
    let r = reg(b).await;
    let p = r.project().id;
    actor::scope(
        "key:ci".into(),
        b.store.create_prompt(p, NewPrompt::named("scoped")),
    )
    .await
    .unwrap();
    let e = &l.events(p, 0, 10).await.unwrap().events[0];
    assert_eq!(e.actor.as_deref(), Some("key:ci"));
    let head = l.head(p).await.unwrap();
    let dup = b.store.create_prompt(p, NewPrompt::named("scoped")).await;
    assert!(matches!(dup, Err(Error::AlreadyExists { .. })), "{dup:?}");
    let missing = b
        .store
        .set_label(p, "nope", "production", 1, LabelExpect::Any, None)
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(
        l.head(p).await.unwrap(),
        head,
        "failed writes append nothing"
    );
}

/// A batch applies all its operations or none, names the failing one, honours
/// preconditions and appends its events together.
pub async fn batch_all_or_nothing(b: &TestBackend) {
    let r = reg(b).await;
    let p = r.project().id;
    let events = b.events.clone();
    let head = match &events {
        Some(l) => l.head(p).await.unwrap(),
        None => 0,
    };
    let set =
        |name: &str, label: &str, version: u32, expected: Option<Option<u32>>| BatchOp::SetLabel {
            name: name.into(),
            label: label.into(),
            version: Some(version),
            split: None,
            expected_version: expected,
        };
    let bad = vec![
        BatchOp::CreatePrompt {
            prompt: NewPrompt::named("batch/a"),
        },
        BatchOp::CreateVersion {
            name: "batch/a".into(),
            version: NewVersion::new("one"),
        },
        set("batch/a", "production", 1, None),
        set("batch/missing", "production", 1, None),
    ];
    let f = b.store.apply_batch(p, bad).await.unwrap_err();
    assert_eq!(f.index, Some(3), "{f:?}");
    assert!(matches!(f.error, Error::NotFound { .. }), "{f:?}");
    let gone = b.store.get_prompt(p, "batch/a").await;
    assert!(
        matches!(gone, Err(Error::NotFound { .. })),
        "nothing written"
    );
    if let Some(l) = &events {
        assert_eq!(l.head(p).await.unwrap(), head, "no events");
    }

    let good = vec![
        BatchOp::CreatePrompt {
            prompt: NewPrompt::named("batch/a"),
        },
        BatchOp::CreateVersion {
            name: "batch/a".into(),
            version: NewVersion::new("one"),
        },
        BatchOp::CreateVersion {
            name: "batch/a".into(),
            version: NewVersion::new("two"),
        },
        set("batch/a", "production", 1, Some(None)),
        set("batch/a", "production", 2, Some(Some(1))),
        BatchOp::ArchivePrompt {
            name: "batch/a".into(),
        },
    ];
    let out = b.store.apply_batch(p, good).await.unwrap();
    assert_eq!(out.len(), 6);
    assert!(matches!(&out[0], BatchOutcome::Prompt(x) if x.name == "batch/a"));
    assert!(matches!(&out[2], BatchOutcome::Version(v) if v.version == 2));
    assert!(
        matches!(&out[4], BatchOutcome::LabelMove(m) if m.from_version == Some(1) && m.to_version == Some(2))
    );
    assert!(matches!(&out[5], BatchOutcome::Archived(n) if n == "batch/a"));
    if let Some(l) = &events {
        let page = l.events(p, head, 100).await.unwrap();
        let types: Vec<EventType> = page.events.iter().map(|e| e.kind).collect();
        use EventType::*;
        assert_eq!(
            types,
            vec![
                PromptCreated,
                VersionCreated,
                VersionCreated,
                LabelMoved,
                LabelMoved,
                PromptArchived
            ]
        );
        let at: BTreeSet<_> = page.events.iter().map(|e| e.at).collect();
        assert_eq!(at.len(), 1, "one commit, one time");
    }

    // A precondition that fails inside a batch fails it all.
    let stale = vec![
        BatchOp::CreateVersion {
            name: "batch/c".into(),
            version: NewVersion::new("c1"),
        },
        set("batch/c", "production", 1, Some(Some(7))),
    ];
    let f = b.store.apply_batch(p, stale).await.unwrap_err();
    assert_eq!(f.index, Some(1));
    assert!(matches!(f.error, Error::PreconditionFailed { .. }), "{f:?}");
    assert!(b.store.get_prompt(p, "batch/c").await.is_err());

    // Too many or none: a caller's batch (the registry, as every entry point) is
    // refused as a whole; the stores take any number (imports are not capped).
    let r = b.registry(&format!("batch-cap-{}", Uuid::new_v4())).await;
    let f = r.apply_batch(Vec::new()).await.unwrap_err();
    assert_eq!(f.index, None);
    assert!(matches!(f.error, Error::InvalidInput { .. }));
    let many = (0..1001)
        .map(|i| BatchOp::CreatePrompt {
            prompt: NewPrompt::named(format!("many/{i}")),
        })
        .collect();
    let f = r.apply_batch(many).await.unwrap_err();
    assert_eq!(f.index, None);
    assert!(r.get_prompt("many/0").await.is_err());
    // Invalid input names the operation.
    let f = b
        .store
        .apply_batch(
            p,
            vec![
                BatchOp::CreatePrompt {
                    prompt: NewPrompt::named("ok"),
                },
                BatchOp::ArchivePrompt {
                    name: "bad name!".into(),
                },
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(f.index, Some(1));
    match &f.error {
        Error::InvalidInput { field, .. } => assert!(field.starts_with("ops[1]"), "{field}"),
        e => panic!("{e:?}"),
    }
}

/// Version creation honours `parent_version` (`Conflict` naming the latest) and
/// `If-Match` (`PreconditionFailed`); label moves honour their expected version.
pub async fn write_preconditions(b: &TestBackend) {
    let r = reg(b).await;
    let p = r.project().id;
    let s = &b.store;
    let mut first = NewVersion::new("v1");
    first.parent_version = Some(0);
    s.create_version(p, "pre", first).await.unwrap();
    let mut again = NewVersion::new("also v1");
    again.parent_version = Some(0);
    let e = s.create_version(p, "pre", again).await.unwrap_err();
    match &e {
        Error::Conflict { message } => {
            assert!(message.contains("latest version is 1"), "{message}")
        }
        e => panic!("{e:?}"),
    }
    let mut next = NewVersion::new("v2");
    next.parent_version = Some(1);
    s.create_version(p, "pre", next).await.unwrap();

    let etag = s.get_prompt(p, "pre").await.unwrap().etag;
    let mut ok = NewVersion::new("v3");
    ok.if_match = Some(etag.clone());
    s.create_version(p, "pre", ok).await.unwrap();
    let mut stale = NewVersion::new("v4");
    stale.if_match = Some(etag);
    let e = s.create_version(p, "pre", stale).await.unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed { .. }), "{e:?}");
    let mut missing = NewVersion::new("x");
    missing.if_match = Some("*".into());
    let e = s
        .create_version(p, "pre-missing", missing)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed { .. }), "{e:?}");
    assert_eq!(
        s.get_prompt(p, "pre").await.unwrap().latest_version,
        Some(3)
    );

    // Labels: compare-and-set.
    s.set_label(p, "pre", "production", 1, LabelExpect::Unset, None)
        .await
        .unwrap();
    let e = s
        .set_label(p, "pre", "production", 2, LabelExpect::Unset, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed { .. }), "{e:?}");
    let e = s
        .set_label(p, "pre", "production", 2, LabelExpect::At(3), None)
        .await
        .unwrap_err();
    match &e {
        Error::PreconditionFailed { message } => {
            assert!(message.contains("points at version 1"), "{message}")
        }
        e => panic!("{e:?}"),
    }
    s.set_label(p, "pre", "production", 2, LabelExpect::At(1), None)
        .await
        .unwrap();
    let e = s
        .delete_label(p, "pre", "production", LabelExpect::At(1), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed { .. }), "{e:?}");
    s.delete_label(p, "pre", "production", LabelExpect::At(2), None)
        .await
        .unwrap();
    let resolved = s
        .resolve(p, "pre", &prompt_core::Selector::label("production"))
        .await;
    assert!(resolved.is_err(), "removed");
}

/// Concurrent writers: a reader following the log with `after=` sees every event
/// exactly once, in `seq` order, without gaps — `seq` follows commit order.
pub async fn events_in_commit_order_under_concurrency(b: &TestBackend) {
    let Some(l) = log(b) else { return };
    let r = reg(b).await;
    let p = r.project().id;
    const WRITERS: usize = 6;
    const EACH: usize = 15;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = b.store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("race/{w}");
            for i in 0..EACH {
                let v = NewVersion::new(format!("w{w} v{i}"));
                // Writers on the same prompt and on their own, interleaved.
                let target = if i % 3 == 0 { "race/shared" } else { &name };
                s.create_version(p, target, v).await.unwrap();
            }
        }));
    }
    let reader = {
        let l = l.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            let mut idle = 0;
            while idle < 200 {
                let page = l.events(p, after, 7).await.unwrap();
                if page.events.is_empty() {
                    idle += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                for e in &page.events {
                    assert_eq!(e.seq, after + 1, "no gap, no repeat, in order");
                    after = e.seq;
                    seen.push(e.seq);
                }
                idle = 0;
            }
            seen
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    let head = l.head(p).await.unwrap();
    let seen = reader.await.unwrap();
    // Every version is an event, plus each prompt's creation.
    let expected = WRITERS * EACH + WRITERS + 1;
    assert_eq!(head, expected as u64);
    assert_eq!(seen, (1..=head).collect::<Vec<_>>());
}

/// Pruned events answer `Gone` to older cursors; the head and numbering go on; the
/// commit wake-ups arrive.
pub async fn events_prune_gone_and_wakeups(b: &TestBackend) {
    let Some(l) = log(b) else { return };
    let r = reg(b).await;
    let p = r.project().id;
    let mut wake = l.commits();
    b.store
        .create_prompt(p, NewPrompt::named("pr/a"))
        .await
        .unwrap();
    let c = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let c = wake.recv().await.unwrap();
            if c.project == p {
                return c;
            }
        }
    })
    .await
    .expect("a wake-up after the commit");
    assert_eq!(c.seq, 1);
    b.store
        .create_prompt(p, NewPrompt::named("pr/b"))
        .await
        .unwrap();
    let pruned = l
        .prune_events(now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert!(pruned >= 2, "{pruned}");
    let e = l.events(p, 0, 10).await.unwrap_err();
    match &e {
        Error::Gone { message } => assert!(message.contains("resync"), "{message}"),
        e => panic!("{e:?}"),
    }
    assert!(matches!(l.events(p, 1, 10).await, Err(Error::Gone { .. })));
    let at_head = l.events(p, 2, 10).await.unwrap();
    assert!(at_head.events.is_empty());
    assert_eq!(l.head(p).await.unwrap(), 2);
    b.store
        .create_prompt(p, NewPrompt::named("pr/c"))
        .await
        .unwrap();
    let page = l.events(p, 2, 10).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].seq, 3);
}

/// Membership changes append `member.changed` to the logs of the projects they
/// affect: an organization role to every project of the organization, a project role
/// to its project; a deleted user's events lose their actor.
pub async fn events_member_changed(b: &TestBackend) {
    let Some(l) = log(b) else { return };
    let Some(p) = b.people.clone() else {
        eprintln!("SKIPPED on this backend: the people store");
        return;
    };
    let new_user = |email: &str| prompt_core::NewUser {
        email: email.into(),
        name: "n".into(),
        password_hash: None,
        email_verified: true,
    };
    let owner = p.create_user(new_user("own@feed.io")).await.unwrap();
    let m = p.create_user(new_user("mem@feed.io")).await.unwrap();
    let org = p.create_org("feedorg", Some(owner.id)).await.unwrap();
    let web = p.create_org_project(org.id, "web").await.unwrap();
    let api = p.create_org_project(org.id, "api").await.unwrap();
    let (h_web, h_api) = (l.head(web.id).await.unwrap(), l.head(api.id).await.unwrap());
    p.set_member(org.id, m.id, prompt_core::OrgRole::Member)
        .await
        .unwrap();
    for (proj, h) in [(web.id, h_web), (api.id, h_api)] {
        let page = l.events(proj, h, 10).await.unwrap();
        assert_eq!(page.events.len(), 1, "one event per project of the org");
        let e = &page.events[0];
        assert_eq!(e.kind, EventType::MemberChanged);
        assert_eq!(
            e.data,
            json!({"user": m.id, "org_role": "member", "project_role": null})
        );
    }
    p.set_project_role(web.id, m.id, Some(KeyRole::Viewer))
        .await
        .unwrap();
    assert_eq!(l.head(api.id).await.unwrap(), h_api + 1, "api untouched");
    let last = l.events(web.id, h_web + 1, 10).await.unwrap().events;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].data["project_role"], json!("viewer"));
    p.remove_member(org.id, m.id).await.unwrap();
    let last = l.events(web.id, h_web + 2, 10).await.unwrap().events;
    assert_eq!(
        last[0].data,
        json!({"user": m.id, "org_role": null, "project_role": null})
    );

    // A deleted user's events keep happening but no longer name them.
    p.set_member(org.id, m.id, prompt_core::OrgRole::Member)
        .await
        .unwrap();
    let who = "user:mem@feed.io";
    actor::scope(
        who.into(),
        b.store.create_prompt(web.id, NewPrompt::named("by-mem")),
    )
    .await
    .unwrap();
    let head = l.head(web.id).await.unwrap();
    assert_eq!(
        l.events(web.id, head - 1, 1).await.unwrap().events[0]
            .actor
            .as_deref(),
        Some(who)
    );
    p.delete_user(m.id, who).await.unwrap();
    let all = l.events(web.id, 0, 1000).await.unwrap().events;
    assert!(all.iter().all(|e| e.actor.as_deref() != Some(who)));
    let gone = all.last().unwrap();
    assert_eq!(gone.kind, EventType::MemberChanged);
    assert_eq!(gone.data["org_role"], json!(null));
}
