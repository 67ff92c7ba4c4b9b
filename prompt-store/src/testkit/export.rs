//! Behaviour tests of prompts as code: export → import round trips, idempotence,
//! labels, and conflicts that write nothing (see `prompt_core::export`).

use prompt_core::export::NoProgress;
use prompt_core::{
    ChatMessage, Error, ExportOptions, ImportOptions, LabelExpect, NewPrompt, NewVersion,
    PromptBundle, Registry, Role, Template, TemplateFormat,
};
use serde_json::json;
use uuid::Uuid;

use super::TestBackend;

async fn reg(b: &TestBackend, what: &str) -> Registry {
    b.registry(&format!("{what}-{}", Uuid::new_v4().simple()))
        .await
}

/// A project with a text prompt of three versions (one deleted) and two labels, a
/// chat prompt in jinja with a config, and a prompt with metadata and no version.
async fn seed(r: &Registry) {
    r.create_prompt(NewPrompt {
        name: "team/tone".into(),
        description: Some("How we sound".into()),
        tags: vec!["style".into(), "team".into()],
    })
    .await
    .unwrap();
    for t in [
        "Be kind.\nBe brief.",
        "draft",
        "Be kind, {{name}}.\nBe brief.",
    ] {
        r.create_version(
            "team/tone",
            NewVersion::new(t).with_commit_message(format!("write {t}")),
        )
        .await
        .unwrap();
    }
    r.delete_version("team/tone", 2).await.unwrap();
    r.set_label("team/tone", "production", 1, LabelExpect::Any, None)
        .await
        .unwrap();
    r.set_label("team/tone", "staging", 3, LabelExpect::Any, None)
        .await
        .unwrap();
    let chat = Template::Chat(vec![
        ChatMessage::new(Role::System, "You are {{ who }}."),
        ChatMessage::new(Role::User, "{% if q %}{{ q }}{% endif %}"),
    ]);
    r.create_version(
        "chat",
        NewVersion::new(chat)
            .with_format(TemplateFormat::Jinja)
            .with_config(json!({"model": "gpt-4o-mini", "temperature": 0.25})),
    )
    .await
    .unwrap();
    r.create_prompt(NewPrompt::named("empty")).await.unwrap();
}

/// A bundle with the version numbers renumbered 1, 2, 3 … per prompt (labels
/// following), so that exports of two databases compare.
fn renumbered(mut bundle: PromptBundle) -> PromptBundle {
    for doc in &mut bundle.prompts {
        let old: Vec<u32> = doc.versions.iter().map(|v| v.version).collect();
        for (i, v) in doc.versions.iter_mut().enumerate() {
            v.version = i as u32 + 1;
        }
        for n in doc.labels.values_mut() {
            *n = old.iter().position(|o| o == n).unwrap() as u32 + 1;
        }
    }
    bundle
}

async fn export(r: &Registry) -> PromptBundle {
    r.export_prompts(&ExportOptions::default(), &NoProgress)
        .await
        .unwrap()
}

/// Export → import into an empty project reproduces prompts, versions (content,
/// order, commit messages) and labels; importing again changes nothing and writes no
/// event; `heads_only` keeps only labelled versions and the latest.
pub async fn export_import_round_trip(b: &TestBackend) {
    let a = reg(b, "exp-a").await;
    seed(&a).await;
    let bundle = export(&a).await;
    let names: Vec<&str> = bundle.prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["chat", "empty", "team/tone"]);
    let tone = &bundle.prompts[2];
    assert_eq!(
        tone.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 3]
    );
    assert_eq!(tone.labels.get("production"), Some(&1));
    assert!(!tone.labels.contains_key("latest"));

    let dest = reg(b, "exp-b").await;
    let plan = dest
        .import_prompts(&bundle, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(plan.conflicts.is_empty(), "{plan:?}");
    assert!(plan.applied);
    assert_eq!(plan.created_prompts, ["chat", "empty", "team/tone"]);
    assert_eq!(plan.created_versions.len(), 3);
    assert!(plan.created_versions.iter().all(|v| v.version.is_some()));
    let copy = export(&dest).await;
    assert_eq!(renumbered(copy.clone()), renumbered(bundle.clone()));
    let staging = dest
        .resolve("team/tone", &prompt_core::Selector::Label("staging".into()))
        .await
        .unwrap();
    assert_eq!(
        staging.template,
        Template::Text("Be kind, {{name}}.\nBe brief.".into())
    );

    // Twice: nothing to do, nothing written.
    let events_before = match &b.events {
        Some(log) => Some(log.head(dest.project().id).await.unwrap()),
        None => None,
    };
    for target in [&dest, &a] {
        let again = target
            .import_prompts(&copy, &ImportOptions::default(), &NoProgress)
            .await
            .unwrap();
        assert!(again.is_noop(), "{}", again.render());
        assert!(!again.applied);
        assert!(again.render().contains("nothing to do"));
    }
    if let (Some(log), Some(before)) = (&b.events, events_before) {
        let after = log.head(dest.project().id).await.unwrap();
        assert_eq!(after, before);
    }

    let heads = a
        .export_prompts(
            &ExportOptions {
                heads_only: true,
                ..Default::default()
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(heads.prompts.len(), 3);
}

/// Labels move as declared (to existing versions by content, to new versions as they
/// are created); labels absent from the document are left alone unless pruned;
/// description and tags follow the document; a dry run writes nothing.
pub async fn import_moves_labels_and_prunes(b: &TestBackend) {
    let r = reg(b, "imp").await;
    seed(&r).await;
    let mut bundle = export(&r).await;
    let tone = bundle
        .prompts
        .iter_mut()
        .find(|p| p.name == "team/tone")
        .unwrap();
    tone.labels.remove("staging");
    tone.labels.insert("production".into(), 3);
    tone.description = None;
    let mut v = tone.versions[0].clone();
    v.version = 10;
    v.template = Template::Text("Be bold.".into());
    tone.versions.push(v);
    tone.labels.insert("canary".into(), 10);

    let dry = r
        .import_prompts(
            &bundle,
            &ImportOptions {
                dry_run: true,
                prune_labels: false,
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert!(!dry.applied);
    assert_eq!(dry.created_versions.len(), 1);
    assert_eq!(dry.updated_prompts, ["team/tone"]);
    assert!(
        dry.left_alone
            .iter()
            .any(|l| l.item.starts_with("label 'staging'")),
        "{dry:?}"
    );
    assert_eq!(
        r.get_prompt("team/tone")
            .await
            .unwrap()
            .labels
            .get("production"),
        Some(&1)
    );

    let plan = r
        .import_prompts(&bundle, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(plan.applied, "{}", plan.render());
    let p = r.get_prompt("team/tone").await.unwrap();
    assert_eq!(p.labels.get("production"), Some(&3));
    assert_eq!(p.labels.get("canary"), Some(&4));
    assert_eq!(p.labels.get("staging"), Some(&3), "left alone");
    assert_eq!(p.description, None);
    let canary = plan.moved_labels.iter().find(|l| l.label == "canary");
    assert_eq!(canary.and_then(|l| l.to), Some(4));

    let pruned = r
        .import_prompts(
            &bundle,
            &ImportOptions {
                dry_run: false,
                prune_labels: true,
            },
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(pruned.removed_labels.len(), 1, "{}", pruned.render());
    assert!(pruned.created_versions.is_empty());
    let p = r.get_prompt("team/tone").await.unwrap();
    assert!(!p.labels.contains_key("staging"));
    assert_eq!(p.latest_version, Some(4));
}

/// A change that breaks a bundle.
type Breaker = Box<dyn Fn(&mut PromptBundle)>;

/// Any conflict refuses the whole import before anything is written: a label at a
/// version the document does not define, a version number given twice, an invalid
/// template, a prompt given twice, `latest` declared.
pub async fn import_conflicts_write_nothing(b: &TestBackend) {
    let r = reg(b, "conf").await;
    seed(&r).await;
    let good = export(&r).await;
    let mut fresh = good.prompts[2].clone();
    fresh.name = "fresh".into();

    let cases: Vec<(&str, Breaker)> = vec![
        (
            "does not define",
            Box::new(|b: &mut PromptBundle| {
                b.prompts[2].labels.insert("production".into(), 99);
            }),
        ),
        (
            "given twice",
            Box::new(|b: &mut PromptBundle| {
                let v = b.prompts[2].versions[0].clone();
                b.prompts[2].versions.push(v);
            }),
        ),
        (
            "versions[0]",
            Box::new(|b: &mut PromptBundle| {
                b.prompts[0].versions[0].template = Template::Text("{{ unclosed".into());
            }),
        ),
        (
            "given twice in the import",
            Box::new(|b: &mut PromptBundle| {
                let d = b.prompts[1].clone();
                b.prompts.push(d);
            }),
        ),
        (
            "latest",
            Box::new(|b: &mut PromptBundle| {
                b.prompts[2].labels.insert("latest".into(), 1);
            }),
        ),
    ];
    for (expected, break_it) in cases {
        let mut bundle = good.clone();
        bundle.prompts.push(fresh.clone());
        bundle.prompts[2].labels.insert("production".into(), 3);
        break_it(&mut bundle);
        let plan = r
            .import_prompts(&bundle, &ImportOptions::default(), &NoProgress)
            .await
            .unwrap();
        assert!(!plan.applied);
        assert!(
            plan.conflicts.iter().any(|c| c.message.contains(expected)),
            "{expected}: {}",
            plan.render()
        );
        assert!(plan.conflict_error().is_some());
        assert!(matches!(
            r.get_prompt("fresh").await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            r.get_prompt("team/tone")
                .await
                .unwrap()
                .labels
                .get("production"),
            Some(&1)
        );
    }
}

/// The plan's operations carry the state it read as preconditions: a version created or
/// a label moved between planning and applying makes the whole batch fail, nothing
/// written.
pub async fn import_refuses_a_concurrent_change(b: &TestBackend) {
    let r = reg(b, "race").await;
    seed(&r).await;
    let mut bundle = export(&r).await;
    let tone = bundle
        .prompts
        .iter_mut()
        .find(|p| p.name == "team/tone")
        .unwrap();
    let mut v = tone.versions[0].clone();
    v.version = 10;
    v.template = Template::Text("Be bold.".into());
    tone.versions.push(v);
    tone.labels.insert("production".into(), 3);
    let plan = r
        .plan_import(&bundle, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(plan.ops().len(), 2, "{}", plan.render());

    // Meanwhile someone saves a version: the first creation's parent is stale.
    r.create_version("team/tone", NewVersion::new("meanwhile"))
        .await
        .unwrap();
    let failure = r.apply_batch(plan.ops().to_vec()).await.unwrap_err();
    assert!(
        matches!(failure.error, Error::Conflict { .. }),
        "{failure:?}"
    );
    let p = r.get_prompt("team/tone").await.unwrap();
    assert_eq!(p.latest_version, Some(4));
    assert_eq!(p.labels.get("production"), Some(&1));

    // Planned again, a moved label is the precondition that fails.
    let plan = r
        .plan_import(&bundle, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    r.set_label("team/tone", "production", 4, LabelExpect::Any, None)
        .await
        .unwrap();
    let failure = r.apply_batch(plan.ops().to_vec()).await.unwrap_err();
    assert!(
        matches!(failure.error, Error::PreconditionFailed { .. }),
        "{failure:?}"
    );
    assert_eq!(
        r.get_prompt("team/tone").await.unwrap().latest_version,
        Some(4)
    );
}
