//! Behaviour tests of prompts as code: export → import round trips, idempotence,
//! labels, splits, imports past a batch's cap, and conflicts that write nothing (see
//! `prompt_core::export`).
//!
//! One file past 600 lines: every test here is run on every backend through the one
//! `behaviour_suite!` list, shares the seeded project and the `renumbered` comparison,
//! and tests one feature (the export/import pair); split by test they would repeat
//! those helpers or pass them around.

use prompt_core::export::NoProgress;
use prompt_core::{
    ChatMessage, Error, ExportOptions, ImportOptions, LabelDocument, LabelExpect, NewPrompt,
    NewVersion, PromptBundle, Registry, Role, SplitWeights, Template, TemplateFormat,
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
        let renumber = |n: &u32| old.iter().position(|o| o == n).unwrap() as u32 + 1;
        for l in doc.labels.values_mut() {
            *l = match l {
                LabelDocument::Version(n) => LabelDocument::Version(renumber(n)),
                LabelDocument::Split { split } => LabelDocument::Split {
                    split: split.iter().map(|(n, w)| (renumber(n), *w)).collect(),
                },
            };
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
    assert_eq!(tone.labels.get("production"), Some(&1.into()));
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
    tone.labels.insert("production".into(), 3.into());
    tone.description = None;
    let mut v = tone.versions[0].clone();
    v.version = 10;
    v.template = Template::Text("Be bold.".into());
    tone.versions.push(v);
    tone.labels.insert("canary".into(), 10.into());

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
                b.prompts[2].labels.insert("production".into(), 99.into());
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
                b.prompts[2].labels.insert("latest".into(), 1.into());
            }),
        ),
    ];
    for (expected, break_it) in cases {
        let mut bundle = good.clone();
        bundle.prompts.push(fresh.clone());
        bundle.prompts[2]
            .labels
            .insert("production".into(), 3.into());
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
    tone.labels.insert("production".into(), 3.into());
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

/// A label carrying a release split is exported as the split (`heads_only` keeps every
/// arm) and imported as one: into an empty project, its arms created by the import;
/// importing again changes nothing; a different split in the document moves the label
/// with it, and a plain version ends it. When versions past the prompt's latest were
/// deleted, the numbers a split of new versions would name cannot be foreseen: the
/// import is refused as a whole instead of pointing the split at other versions.
pub async fn export_import_keeps_splits(b: &TestBackend) {
    let a = reg(b, "exp-split-a").await;
    seed(&a).await;
    let split: SplitWeights = [(1, 90), (3, 10)].into_iter().collect();
    a.set_label_split("team/tone", "production", &split, LabelExpect::Any, None)
        .await
        .unwrap();
    for t in ["a", "b", "c"] {
        a.create_version("arms", NewVersion::new(t)).await.unwrap();
    }
    let arms: SplitWeights = [(1, 70), (2, 30)].into_iter().collect();
    a.set_label_split("arms", "production", &arms, LabelExpect::Any, None)
        .await
        .unwrap();
    let bundle = export(&a).await;
    let tone = bundle
        .prompts
        .iter()
        .find(|p| p.name == "team/tone")
        .unwrap();
    assert_eq!(
        tone.labels.get("production"),
        Some(&LabelDocument::Split {
            split: split.clone()
        })
    );
    assert_eq!(tone.labels.get("staging"), Some(&3.into()));
    let heads = a
        .export_prompts(
            &ExportOptions {
                heads_only: true,
                name_prefix: Some("arms".into()),
            },
            &NoProgress,
        )
        .await
        .unwrap();
    let kept: Vec<u32> = heads.prompts[0]
        .versions
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(kept, [1, 2, 3], "every arm, and the latest");

    let dest = reg(b, "exp-split-b").await;
    let plan = dest
        .import_prompts(&bundle, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(plan.applied, "{}", plan.render());
    assert!(
        plan.render()
            .contains("team/tone production: unset -> split {v1: 90, v3: 10}"),
        "{}",
        plan.render()
    );
    let moved = plan
        .moved_labels
        .iter()
        .find(|l| l.prompt == "team/tone" && l.label == "production")
        .unwrap();
    assert_eq!((moved.to, moved.split.as_ref()), (Some(1), Some(&split)));
    let p = dest.get_prompt("team/tone").await.unwrap();
    let expected: SplitWeights = [(1, 90), (2, 10)].into_iter().collect();
    assert_eq!(p.splits.get("production"), Some(&expected));
    assert_eq!(p.labels.get("production"), Some(&1));
    assert_eq!(
        dest.get_prompt("arms")
            .await
            .unwrap()
            .splits
            .get("production"),
        Some(&arms)
    );
    let copy = export(&dest).await;
    assert_eq!(renumbered(copy.clone()), renumbered(bundle.clone()));

    // Twice: nothing to do.
    for target in [&dest, &a] {
        let again = target
            .import_prompts(&copy, &ImportOptions::default(), &NoProgress)
            .await
            .unwrap();
        assert!(again.is_noop(), "{}", again.render());
    }

    // Another split moves the label with it; a version ends the split.
    let mut changed = copy.clone();
    let even: SplitWeights = [(1, 50), (2, 50)].into_iter().collect();
    let doc = changed
        .prompts
        .iter_mut()
        .find(|p| p.name == "team/tone")
        .unwrap();
    doc.labels.insert(
        "production".into(),
        LabelDocument::Split {
            split: even.clone(),
        },
    );
    let plan = dest
        .import_prompts(&changed, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(plan.moved_labels.len(), 1, "{}", plan.render());
    assert_eq!(plan.operations, 1);
    let p = dest.get_prompt("team/tone").await.unwrap();
    assert_eq!(p.splits.get("production"), Some(&even));
    assert_eq!(p.labels.get("production"), Some(&2), "ties to the highest");
    let doc = changed
        .prompts
        .iter_mut()
        .find(|p| p.name == "team/tone")
        .unwrap();
    doc.labels.insert("production".into(), 2.into());
    let plan = dest
        .import_prompts(&changed, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(
        plan.applied && plan.moved_labels.len() == 1,
        "{}",
        plan.render()
    );
    let p = dest.get_prompt("team/tone").await.unwrap();
    assert!(p.splits.is_empty());
    assert_eq!(p.labels.get("production"), Some(&2));

    // A split over new versions of a prompt whose newest versions were deleted.
    let c = reg(b, "exp-split-c").await;
    for t in ["one", "two"] {
        c.create_version("g", NewVersion::new(t)).await.unwrap();
    }
    c.delete_version("g", 2).await.unwrap();
    let doc = |extra: &[&str], split: &[(u32, u32)]| {
        let mut versions = vec![("one", 1)];
        versions.extend(extra.iter().zip(2..).map(|(t, n)| (*t, n)));
        let yaml = format!(
            "name: g\nversions:\n{}labels:\n  production:\n    split:\n{}",
            versions
                .iter()
                .map(|(t, n)| format!("- version: {n}\n  template: {t}\n"))
                .collect::<String>(),
            split
                .iter()
                .map(|(v, w)| format!("      {v}: {w}\n"))
                .collect::<String>()
        );
        PromptBundle {
            prompts: vec![prompt_core::export::tree::from_yaml(&yaml).unwrap()],
        }
    };
    for bundle in [
        doc(&["new"], &[(1, 50), (2, 50)]),
        doc(&["new a", "new b"], &[(1, 50), (3, 50)]),
    ] {
        let r = c
            .import_prompts(&bundle, &ImportOptions::default(), &NoProgress)
            .await;
        assert!(r.is_err(), "{r:?}");
        let p = c.get_prompt("g").await.unwrap();
        assert_eq!(p.latest_version, Some(1), "nothing was written");
        assert!(p.splits.is_empty() && !p.labels.contains_key("production"));
    }
}

/// What an import or export reported: per prompt, or that a server does it all.
#[derive(Default)]
struct Recorded {
    started: std::sync::atomic::AtomicUsize,
    advanced: std::sync::atomic::AtomicUsize,
    waited: std::sync::atomic::AtomicBool,
}

impl prompt_core::export::Progress for Recorded {
    fn start(&self, total: usize) {
        self.started
            .store(total, std::sync::atomic::Ordering::SeqCst);
    }
    fn advance(&self) {
        self.advanced
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn waiting(&self, message: &str) {
        assert!(!message.is_empty());
        self.waited.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Recorded {
    /// Progress was reported for `n` prompts, or as one wait on a server.
    fn assert_reported(&self, n: usize) {
        use std::sync::atomic::Ordering::SeqCst;
        let (started, advanced) = (self.started.load(SeqCst), self.advanced.load(SeqCst));
        assert!(
            self.waited.load(SeqCst) || (started == n && advanced == n),
            "started {started}, advanced {advanced}, waited {}",
            self.waited.load(SeqCst)
        );
    }
}

/// An import is one transaction however many operations it needs: 450 prompts × 2
/// versions and a label are 1,350 operations, past the 1,000 a caller's batch may
/// hold (which [`Registry::apply_batch`] still refuses). Importing again is a no-op.
pub async fn import_past_the_batch_cap(b: &TestBackend) {
    use prompt_core::export::{PromptDocument, VersionDocument};
    const PROMPTS: usize = 450;
    let doc = |i: usize| PromptDocument {
        name: format!("bulk/p{i:04}"),
        description: None,
        tags: Vec::new(),
        versions: (1..=2)
            .map(|v| VersionDocument {
                version: v,
                template: Template::Text(format!("Prompt {i}, version {v}: {{{{x}}}}")),
                template_format: TemplateFormat::default(),
                config: json!({}),
                commit_message: None,
            })
            .collect(),
        labels: [("production".to_owned(), LabelDocument::Version(1))]
            .into_iter()
            .collect(),
    };
    let bundle = PromptBundle {
        prompts: (0..PROMPTS).map(doc).collect(),
    };
    let r = reg(b, "exp-bulk").await;
    let progress = Recorded::default();
    let plan = r
        .import_prompts(&bundle, &ImportOptions::default(), &progress)
        .await
        .unwrap();
    progress.assert_reported(PROMPTS);
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    assert!(plan.applied);
    assert_eq!(plan.created_prompts.len(), PROMPTS);
    assert_eq!(plan.created_versions.len(), 2 * PROMPTS);
    let progress = Recorded::default();
    let copy = r
        .export_prompts(&ExportOptions::default(), &progress)
        .await
        .unwrap();
    progress.assert_reported(PROMPTS);
    assert_eq!(renumbered(copy), renumbered(bundle.clone()));
    let last = r
        .resolve(
            &format!("bulk/p{:04}", PROMPTS - 1),
            &prompt_core::Selector::Label("production".into()),
        )
        .await
        .unwrap();
    assert_eq!(
        last.template,
        Template::Text(format!("Prompt {}, version 1: {{{{x}}}}", PROMPTS - 1))
    );
    let again = r
        .import_prompts(&bundle, &ImportOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(again.is_noop(), "{}", again.render());

    // A caller's batch keeps its cap.
    let ops: Vec<prompt_core::BatchOp> = (0..=prompt_core::domain::MAX_BATCH_OPS)
        .map(|i| prompt_core::BatchOp::CreatePrompt {
            prompt: NewPrompt::named(format!("bulk/extra{i}")),
        })
        .collect();
    let refused = r.apply_batch(ops).await.unwrap_err();
    assert!(
        matches!(&refused.error, Error::InvalidInput { field, .. } if field == "ops"),
        "{refused:?}"
    );
}
