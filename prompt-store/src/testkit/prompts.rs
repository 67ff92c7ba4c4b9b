//! Behaviour tests of prompts, versions, labels, projects and API keys.
//!
//! One file over 600 lines: it is the suite's list of prompt behaviours, one function
//! per test that every backend runs; splitting it would only split the list.

use std::collections::BTreeSet;
use std::sync::Arc;

use prompt_core::domain::new_id;
use prompt_core::{
    ApiKeyRecord, ChatMessage, Error, KeyRole, NewPrompt, NewVersion, PageRequest, PromptFilter,
    PromptUpdate, Registry, Role, Selector, Template, TemplateFormat, TemplateKind, Variables,
};
use serde_json::json;

use super::{TestBackend, names, set};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

async fn reg(b: &TestBackend) -> Registry {
    b.registry(&unique("p")).await
}

fn invalid_field(e: &Error) -> Option<&str> {
    match e {
        Error::InvalidInput { field, .. } => Some(field.as_str()),
        _ => None,
    }
}

/// Create, read back, and collide.
pub async fn prompt_create_get_and_conflict(b: &TestBackend) {
    let r = reg(b).await;
    let p = r
        .create_prompt(NewPrompt {
            name: "support/triage".into(),
            description: Some("Routes tickets".into()),
            tags: vec!["b".into(), "a".into(), "b".into()],
        })
        .await
        .unwrap();
    assert_eq!(p.name, "support/triage");
    assert_eq!(p.tags, vec!["a", "b"], "tags are sorted and deduplicated");
    assert_eq!(p.latest_version, None);
    assert!(p.labels.is_empty());
    assert!(!p.archived);
    let got = r.get_prompt("support/triage").await.unwrap();
    assert_eq!(got, p);
    let e = r
        .create_prompt(NewPrompt::named("support/triage"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert!(e.to_string().contains("support/triage"));
    let e = r.get_prompt("nope").await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("'nope'"), "{e}");
}

/// Every method refuses bad input with `InvalidInput` naming the field.
pub async fn prompt_bad_input_everywhere(b: &TestBackend) {
    let r = reg(b).await;
    let s = b.store.as_ref();
    let pid = r.project().id;
    let bad_names = ["", "/x", "x/", "a//b", "sp ace", "ü", &"x".repeat(201)];
    for n in bad_names {
        let e = r.create_prompt(NewPrompt::named(n)).await.unwrap_err();
        assert_eq!(invalid_field(&e), Some("name"), "{n:?}: {e:?}");
        let e = s.create_prompt(pid, NewPrompt::named(n)).await.unwrap_err();
        assert_eq!(invalid_field(&e), Some("name"), "store, {n:?}: {e:?}");
        let e = s
            .create_version(pid, n, NewVersion::new("x"))
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&e), Some("name"), "{n:?}: {e:?}");
        let e = s.get_prompt(pid, n).await.unwrap_err();
        assert_eq!(invalid_field(&e), Some("name"));
        let e = s.resolve(pid, n, &Selector::default()).await.unwrap_err();
        assert_eq!(invalid_field(&e), Some("name"));
        let e = s.archive_prompt(pid, n).await.unwrap_err();
        assert_eq!(invalid_field(&e), Some("name"));
    }
    r.create_version("ok", NewVersion::new("x")).await.unwrap();
    for l in ["", "Prod", "a b", &"l".repeat(37)] {
        let e = s
            .set_label(pid, "ok", l, 1, prompt_core::LabelExpect::Any, None)
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&e), Some("label"), "{l:?}: {e:?}");
        let e = s.resolve(pid, "ok", &Selector::label(l)).await.unwrap_err();
        assert_eq!(invalid_field(&e), Some("label"), "{l:?}");
    }
    let e = s
        .set_label(pid, "ok", "latest", 1, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("label"));
    let e = s
        .delete_label(pid, "ok", "latest", prompt_core::LabelExpect::Any, None)
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("label"));
    let e = s
        .resolve(pid, "ok", &Selector::Version(0))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("version"));
    let e = s
        .set_label(pid, "ok", "prod", 0, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("version"));
    let e = s
        .create_version(pid, "ok", NewVersion::new("x").with_config(json!("str")))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("config"));
    let e = s
        .create_version(pid, "ok", NewVersion::new(Template::Chat(vec![])))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("template"));
    let e = s
        .create_version(
            pid,
            "ok",
            NewVersion::new("{% if %}").with_format(TemplateFormat::Jinja),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("template"));
    let e = s
        .create_version(pid, "ok", NewVersion::new("x").with_labels(["BAD"]))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("labels[0]"));
    let e = s
        .update_prompt(
            pid,
            "ok",
            PromptUpdate {
                tags: Some(vec![String::new()]),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("tags[0]"));
    let e = r
        .create_prompt(NewPrompt {
            name: "d".into(),
            description: Some("x".repeat(10_001)),
            tags: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("description"));
    let e = s
        .list_prompts(pid, &PromptFilter::default(), &PageRequest::first(501))
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("limit"));
    let e = s
        .list_prompts(
            pid,
            &PromptFilter::default(),
            &PageRequest {
                limit: None,
                cursor: Some("garbage!".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), Some("cursor"));
    let e = s.create_project("bad name").await.unwrap_err();
    assert_eq!(invalid_field(&e), Some("project"));
    // Nothing of the refused writes was stored.
    assert_eq!(r.get_prompt("ok").await.unwrap().latest_version, Some(1));
    assert!(matches!(
        r.get_prompt("d").await,
        Err(Error::NotFound { .. })
    ));
}

/// 50 concurrent creators on one existing prompt get 1..=50, no gaps, no duplicates.
pub async fn version_numbers_gapless_under_concurrency(b: &TestBackend) {
    let r = reg(b).await;
    r.create_prompt(NewPrompt::named("busy")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            r.create_version("busy", NewVersion::new(format!("v{i}")))
                .await
                .map(|v| v.version)
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap().expect("no creator may fail"));
    }
    got.sort_unstable();
    assert_eq!(got, (1..=50).collect::<Vec<u32>>());
    let p = r.get_prompt("busy").await.unwrap();
    assert_eq!(p.latest_version, Some(50));
    assert_eq!(p.labels.get("latest"), Some(&50));
}

/// Many creators racing on a prompt that does not exist yet: one prompt, gapless versions.
pub async fn version_creation_creates_prompt_once_under_race(b: &TestBackend) {
    let r = reg(b).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            r.create_version("fresh/one", NewVersion::new(format!("t{i}")))
                .await
                .map(|v| (v.prompt_id, v.version))
        }));
    }
    let mut ids = BTreeSet::new();
    let mut nums = Vec::new();
    for t in tasks {
        let (id, n) = t.await.unwrap().expect("no creator may fail");
        ids.insert(id);
        nums.push(n);
    }
    nums.sort_unstable();
    assert_eq!(ids.len(), 1, "exactly one prompt was created");
    assert_eq!(nums, (1..=20).collect::<Vec<u32>>());
}

/// `latest` always points at the newest version and cannot be set by hand.
pub async fn latest_follows_newest_version(b: &TestBackend) {
    let r = reg(b).await;
    r.create_prompt(NewPrompt::named("l")).await.unwrap();
    let e = r
        .resolve("l", &Selector::label("latest"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    let v1 = r.create_version("l", NewVersion::new("one")).await.unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.labels, vec!["latest"]);
    let v2 = r.create_version("l", NewVersion::new("two")).await.unwrap();
    assert_eq!(v2.version, 2);
    let latest = r.resolve("l", &Selector::label("latest")).await.unwrap();
    assert_eq!(latest.version, 2);
    assert_eq!(latest.template, Template::Text("two".into()));
    let old = r.get_version("l", 1).await.unwrap();
    assert!(
        old.labels.is_empty(),
        "latest moved off version 1: {:?}",
        old.labels
    );
    let e = r
        .set_label("l", "latest", 1, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidInput { .. }));
}

/// Labels given at creation point at the new version, with history rows.
pub async fn labels_at_creation_move_atomically(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version(
        "c",
        NewVersion::new("a").with_labels(["production", "staging"]),
    )
    .await
    .unwrap();
    let v2 = r
        .create_version(
            "c",
            NewVersion::new("b")
                .with_labels(["staging"])
                .with_commit_message("second"),
        )
        .await
        .unwrap();
    assert_eq!(
        set(&["latest", "staging"]),
        v2.labels.iter().cloned().collect()
    );
    assert_eq!(v2.commit_message.as_deref(), Some("second"));
    let p = r.get_prompt("c").await.unwrap();
    assert_eq!(p.labels.get("production"), Some(&1));
    assert_eq!(p.labels.get("staging"), Some(&2));
    assert_eq!(
        r.resolve("c", &Selector::default()).await.unwrap().version,
        1
    );
    let h = r
        .label_history("c", "staging", &PageRequest::default())
        .await
        .unwrap();
    let moves: Vec<(Option<u32>, Option<u32>)> = h
        .items
        .iter()
        .map(|m| (m.from_version, m.to_version))
        .collect();
    assert_eq!(moves, vec![(Some(1), Some(2)), (None, Some(1))]);
}

/// Moving labels: atomic, audited with actor, newest first, paginated.
pub async fn label_moves_and_history(b: &TestBackend) {
    let r = reg(b).await;
    for i in 0..3 {
        r.create_version("m", NewVersion::new(format!("{i}")))
            .await
            .unwrap();
    }
    let m = r
        .set_label(
            "m",
            "production",
            1,
            prompt_core::LabelExpect::Any,
            Some("alice"),
        )
        .await
        .unwrap();
    assert_eq!((m.from_version, m.to_version), (None, Some(1)));
    if b.caps.named_actors {
        assert_eq!(m.moved_by.as_deref(), Some("alice"));
    }
    r.set_label(
        "m",
        "production",
        3,
        prompt_core::LabelExpect::Any,
        Some("bob"),
    )
    .await
    .unwrap();
    r.set_label("m", "production", 2, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap();
    assert_eq!(
        r.resolve("m", &Selector::default()).await.unwrap().version,
        2
    );
    let v2 = r.get_version("m", 2).await.unwrap();
    assert_eq!(v2.labels, vec!["production"]);
    let h = r
        .label_history("m", "production", &PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(h.items.len(), 2);
    assert_eq!(
        (h.items[0].from_version, h.items[0].to_version),
        (Some(3), Some(2))
    );
    if b.caps.named_actors {
        assert_eq!(h.items[1].moved_by.as_deref(), Some("bob"));
    }
    let next = PageRequest {
        limit: Some(2),
        cursor: h.next_cursor.clone(),
    };
    let h2 = r.label_history("m", "production", &next).await.unwrap();
    assert_eq!(h2.items.len(), 1);
    if b.caps.named_actors {
        assert_eq!(h2.items[0].moved_by.as_deref(), Some("alice"));
    }
    assert!(h2.next_cursor.is_none());
    let e = r
        .set_label("m", "production", 9, prompt_core::LabelExpect::Any, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert!(e.to_string().contains("version 9"), "{e}");
    let empty = r
        .label_history("m", "never", &PageRequest::default())
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    let e = r
        .label_history("nope", "x", &PageRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
}

/// Deleting a label removes it (audited); deleting a missing one is `NotFound`.
pub async fn label_delete_and_errors(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("d", NewVersion::new("x").with_labels(["staging"]))
        .await
        .unwrap();
    let m = r
        .delete_label("d", "staging", prompt_core::LabelExpect::Any, Some("carol"))
        .await
        .unwrap();
    assert_eq!((m.from_version, m.to_version), (Some(1), None));
    let e = r
        .resolve("d", &Selector::label("staging"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    let e = r
        .delete_label("d", "staging", prompt_core::LabelExpect::Any, None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert!(
        !r.get_prompt("d")
            .await
            .unwrap()
            .labels
            .contains_key("staging")
    );
    let h = r
        .label_history("d", "staging", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(h.items.len(), 2);
}

/// Resolve errors say which of prompt, label or version is missing.
pub async fn resolve_errors_name_what_is_missing(b: &TestBackend) {
    let r = reg(b).await;
    let e = r.resolve("ghost", &Selector::default()).await.unwrap_err();
    assert!(
        matches!(e, Error::NotFound { .. }) && e.to_string().contains("prompt 'ghost'"),
        "{e}"
    );
    r.create_version("real", NewVersion::new("x"))
        .await
        .unwrap();
    let e = r.resolve("real", &Selector::default()).await.unwrap_err();
    assert!(e.to_string().contains("label 'production'"), "{e}");
    let e = r.resolve("real", &Selector::Version(2)).await.unwrap_err();
    assert!(e.to_string().contains("version 2"), "{e}");
    let v = r.resolve("real", &Selector::Version(1)).await.unwrap();
    assert_eq!(v.prompt, "real");
    assert_eq!(v.kind, TemplateKind::Text);
}

/// Archived prompts vanish from lists and lookups; versions stay readable by id; the
/// name can be reused.
pub async fn archive_hides_prompt_and_frees_name(b: &TestBackend) {
    let r = reg(b).await;
    let v = r
        .create_version("arch", NewVersion::new("old").with_labels(["production"]))
        .await
        .unwrap();
    r.archive_prompt("arch").await.unwrap();
    assert!(matches!(
        r.get_prompt("arch").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        r.resolve("arch", &Selector::default()).await,
        Err(Error::NotFound { .. })
    ));
    let list = r
        .list_prompts(&PromptFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(list.items.iter().all(|p| p.name != "arch"));
    assert!(matches!(
        r.archive_prompt("arch").await,
        Err(Error::NotFound { .. })
    ));
    if b.caps.version_by_id {
        let by_id = b.store.version_by_id(r.project().id, v.id).await.unwrap();
        assert_eq!(by_id.template, Template::Text("old".into()));
    }
    let nv = r
        .create_version("arch", NewVersion::new("new"))
        .await
        .unwrap();
    assert_eq!(nv.version, 1, "a reused name starts a new prompt");
    assert_ne!(nv.prompt_id, v.prompt_id);
}

/// A prompt by id: the live prompt with its labels, as by name; another project's id,
/// an unknown id and an archived prompt's id are `NotFound`.
pub async fn prompt_by_id_scoped_and_live(b: &TestBackend) {
    let r = reg(b).await;
    let other = reg(b).await;
    r.create_version(
        "by-id/one",
        NewVersion::new("hello {{ who }}").with_labels(["staging"]),
    )
    .await
    .unwrap();
    let p = r.get_prompt("by-id/one").await.unwrap();
    let got = r.prompt_by_id(p.id).await.unwrap();
    assert_eq!(got, p);
    assert_eq!(got.labels.get("staging"), Some(&1));
    assert_eq!(got.latest_version, Some(1));
    let e = other.prompt_by_id(p.id).await.unwrap_err();
    assert!(
        matches!(e, Error::NotFound { .. }),
        "another project's: {e:?}"
    );
    let e = r.prompt_by_id(uuid::Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "unknown: {e:?}");
    // A change shows at once (a cache in front keeps no stale copy by id).
    r.update_prompt(
        "by-id/one",
        PromptUpdate {
            description: Some(Some("now described".into())),
            tags: None,
        },
        None,
    )
    .await
    .unwrap();
    let got = r.prompt_by_id(p.id).await.unwrap();
    assert_eq!(got.description.as_deref(), Some("now described"));
    r.archive_prompt("by-id/one").await.unwrap();
    let e = r.prompt_by_id(p.id).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "archived: {e:?}");
    // The name reused is a new prompt, with a new id.
    r.create_version("by-id/one", NewVersion::new("again"))
        .await
        .unwrap();
    let again = r.get_prompt("by-id/one").await.unwrap();
    assert_ne!(again.id, p.id);
    assert_eq!(r.prompt_by_id(again.id).await.unwrap(), again);
}

/// Updates honour `If-Match`; the etag changes on every change.
pub async fn update_prompt_with_etag(b: &TestBackend) {
    let r = reg(b).await;
    let p = r.create_prompt(NewPrompt::named("e")).await.unwrap();
    let u = r
        .update_prompt(
            "e",
            PromptUpdate {
                description: Some(Some("d1".into())),
                tags: Some(vec!["t".into()]),
            },
            Some(&p.etag),
        )
        .await
        .unwrap();
    assert_eq!(u.description.as_deref(), Some("d1"));
    assert_eq!(u.tags, vec!["t"]);
    assert_ne!(u.etag, p.etag);
    let e = r
        .update_prompt("e", PromptUpdate::default(), Some(&p.etag))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PreconditionFailed { .. }), "{e:?}");
    let cleared = r
        .update_prompt(
            "e",
            PromptUpdate {
                description: Some(None),
                tags: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.tags, vec!["t"], "absent tags are left alone");
    let before = r.get_prompt("e").await.unwrap().etag;
    r.create_version("e", NewVersion::new("x")).await.unwrap();
    assert_ne!(
        r.get_prompt("e").await.unwrap().etag,
        before,
        "a new version changes the etag"
    );
    let e = r
        .update_prompt("nope", PromptUpdate::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
}

/// Tag, prefix and time filters.
pub async fn list_prompts_filters(b: &TestBackend) {
    let r = reg(b).await;
    for (n, tags) in [
        ("a/x", vec!["red"]),
        ("a/y", vec!["blue"]),
        ("b/z", vec!["red", "blue"]),
    ] {
        r.create_prompt(NewPrompt {
            name: n.into(),
            description: None,
            tags: tags.into_iter().map(String::from).collect(),
        })
        .await
        .unwrap();
    }
    let page = |f: PromptFilter| {
        let r = r.clone();
        async move {
            names(
                &r.list_prompts(&f, &PageRequest::default())
                    .await
                    .unwrap()
                    .items,
                |p| p.name.clone(),
            )
        }
    };
    assert_eq!(
        page(PromptFilter::default()).await,
        vec!["a/x", "a/y", "b/z"]
    );
    assert_eq!(
        page(PromptFilter {
            tag: Some("red".into()),
            ..Default::default()
        })
        .await,
        vec!["a/x", "b/z"]
    );
    assert_eq!(
        page(PromptFilter {
            name_prefix: Some("a/".into()),
            ..Default::default()
        })
        .await,
        vec!["a/x", "a/y"]
    );
    assert_eq!(
        page(PromptFilter {
            name_prefix: Some("a%".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new(),
        "the prefix is literal, not a pattern"
    );
    let future = prompt_core::domain::now() + chrono::Duration::hours(1);
    assert!(
        page(PromptFilter {
            created_after: Some(future),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        page(PromptFilter {
            created_before: Some(future),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
}

/// Walking pages while other tasks insert neither skips nor repeats existing prompts.
pub async fn list_prompts_pagination_while_inserting(b: &TestBackend) {
    let r = reg(b).await;
    let mut existing = BTreeSet::new();
    for i in 0..30 {
        let n = format!("p{i:03}");
        r.create_prompt(NewPrompt::named(&n)).await.unwrap();
        existing.insert(n);
    }
    let writer = {
        let r = r.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                r.create_prompt(NewPrompt::named(format!("p{i:03}x")))
                    .await
                    .unwrap();
                r.create_prompt(NewPrompt::named(format!("a{i:03}")))
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut page = PageRequest::first(7);
    loop {
        let p = r
            .list_prompts(&PromptFilter::default(), &page)
            .await
            .unwrap();
        assert!(p.items.len() <= 7);
        seen.extend(p.items.into_iter().map(|p| p.name));
        tokio::task::yield_now().await;
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    writer.await.unwrap();
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no prompt repeated");
    assert!(existing.is_subset(&unique), "no existing prompt skipped");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "pages come in name order");
}

/// Versions are listed newest first, paginated without overlap.
pub async fn list_versions_newest_first(b: &TestBackend) {
    let r = reg(b).await;
    for i in 0..5 {
        r.create_version("v", NewVersion::new(format!("{i}")))
            .await
            .unwrap();
    }
    let p1 = r.list_versions("v", &PageRequest::first(2)).await.unwrap();
    assert_eq!(names(&p1.items, |v| v.version.to_string()), vec!["5", "4"]);
    assert_eq!(p1.items[0].labels, vec!["latest"]);
    let mut all = p1.items.clone();
    let mut next = p1.next_cursor;
    while let Some(c) = next {
        let p = r
            .list_versions(
                "v",
                &PageRequest {
                    limit: Some(2),
                    cursor: Some(c),
                },
            )
            .await
            .unwrap();
        all.extend(p.items);
        next = p.next_cursor;
    }
    assert_eq!(
        names(&all, |v| v.version.to_string()),
        vec!["5", "4", "3", "2", "1"]
    );
    assert!(matches!(
        r.list_versions("nope", &PageRequest::default()).await,
        Err(Error::NotFound { .. })
    ));
}

/// Chat templates, config and formats survive the store unchanged and render.
pub async fn chat_templates_roundtrip(b: &TestBackend) {
    let r = reg(b).await;
    let t = Template::Chat(vec![
        ChatMessage::new(
            Role::System,
            "You triage {{ team }} tickets. {\"json\": true} {% raw %}",
        ),
        ChatMessage::new(Role::User, "{{ ticket }}"),
    ]);
    let config =
        json!({"provider": "mock", "model": "mock-1", "temperature": 0.2, "nested": {"a": [1, 2]}});
    let v = r
        .create_version(
            "chat",
            NewVersion::new(t.clone())
                .with_config(config.clone())
                .with_labels(["production"]),
        )
        .await
        .unwrap();
    assert_eq!(v.kind, TemplateKind::Chat);
    assert_eq!(v.variables, vec!["team", "ticket"]);
    let got = r.resolve("chat", &Selector::default()).await.unwrap();
    assert_eq!(got.template, t);
    assert_eq!(got.config, config);
    assert_eq!(got.template_format, TemplateFormat::Mustache);
    let mut vars = Variables::new();
    vars.insert("team".into(), json!("IT"));
    let e = r
        .render("chat", &Selector::default(), &vars)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "missing template variables: ticket");
    vars.insert("ticket".into(), json!("fire"));
    let (_, out) = r.render("chat", &Selector::default(), &vars).await.unwrap();
    assert_eq!(
        out,
        prompt_core::Rendered::Messages(vec![
            ChatMessage::new(
                Role::System,
                "You triage IT tickets. {\"json\": true} {% raw %}"
            ),
            ChatMessage::new(Role::User, "fire"),
        ])
    );
    let j = r
        .create_version(
            "jinja",
            NewVersion::new("{% for x in xs %}{{ x }}{% endfor %}")
                .with_format(TemplateFormat::Jinja),
        )
        .await
        .unwrap();
    assert_eq!(j.variables, vec!["xs"]);
    let back = r.get_version("jinja", 1).await.unwrap();
    assert_eq!(back.template_format, TemplateFormat::Jinja);
}

/// Nothing of project A is visible or writable from project B.
pub async fn project_isolation(b: &TestBackend) {
    if !b.can(b.caps.projects, "projects created through the store") {
        return;
    }
    let a = reg(b).await;
    let other = reg(b).await;
    let v = a
        .create_version("secret", NewVersion::new("x").with_labels(["production"]))
        .await
        .unwrap();
    assert!(matches!(
        other.get_prompt("secret").await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        other.resolve("secret", &Selector::default()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        b.store.version_by_id(other.project().id, v.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        other
            .set_label("secret", "x", 1, prompt_core::LabelExpect::Any, None)
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        other.archive_prompt("secret").await,
        Err(Error::NotFound { .. })
    ));
    let list = other
        .list_prompts(&PromptFilter::default(), &PageRequest::default())
        .await
        .unwrap();
    assert!(list.items.is_empty());
    // The same name in B is a different prompt.
    let vb = other
        .create_version("secret", NewVersion::new("mine"))
        .await
        .unwrap();
    assert_eq!(vb.version, 1);
    assert_eq!(
        a.resolve("secret", &Selector::default())
            .await
            .unwrap()
            .template,
        Template::Text("x".into())
    );
    let e = b.store.create_project(&a.project().name).await.unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }));
    let same = b.store.ensure_project(&a.project().name).await.unwrap();
    assert_eq!(same.id, a.project().id);
    // By id too (what the service uses to name a key's project); unknown ids are NotFound.
    assert_eq!(
        b.store.project_by_id(a.project().id).await.unwrap(),
        *a.project()
    );
    assert!(matches!(
        b.store.project_by_id(uuid::Uuid::new_v4()).await,
        Err(Error::NotFound { .. })
    ));
}

/// API key records: stored, found by hash, listed per project, revoked at once.
pub async fn api_keys_lifecycle(b: &TestBackend) {
    if !b.can(b.caps.api_keys, "API key records") {
        return;
    }
    let a = reg(b).await;
    let other = reg(b).await;
    let rec = |project, hash: &str| ApiKeyRecord {
        id: new_id(),
        project_id: project,
        name: "ci".into(),
        role: KeyRole::Editor,
        prefix: "pr_abcd".into(),
        hash: hash.into(),
        created_at: prompt_core::domain::now(),
        revoked_at: None,
    };
    let h = format!("h-{}", uuid::Uuid::new_v4());
    let k = b
        .store
        .create_api_key(rec(a.project().id, &h))
        .await
        .unwrap();
    let found = b.store.api_key_by_hash(&h).await.unwrap();
    assert_eq!(found.id, k.id);
    assert_eq!(found.project_id, a.project().id);
    assert_eq!(found.role, KeyRole::Editor);
    let e = b
        .store
        .create_api_key(rec(a.project().id, &h))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }));
    assert_eq!(
        b.store.list_api_keys(a.project().id).await.unwrap().len(),
        1
    );
    assert!(
        b.store
            .list_api_keys(other.project().id)
            .await
            .unwrap()
            .is_empty()
    );
    let e = b
        .store
        .revoke_api_key(other.project().id, k.id)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    b.store.revoke_api_key(a.project().id, k.id).await.unwrap();
    assert!(matches!(
        b.store.api_key_by_hash(&h).await,
        Err(Error::NotFound { .. })
    ));
    let listed = b.store.list_api_keys(a.project().id).await.unwrap();
    assert!(listed[0].revoked_at.is_some());
    let _ = Arc::clone(&b.store);
}
