//! Behaviour tests of prompt composition (`{{> name@label }}`, see
//! `prompt_core::compose`): includes expanded at render, refused at creation when they
//! cannot be, and recorded on runs.

use prompt_core::{
    ChatMessage, Error, ExecuteOptions, LabelExpect, NewRun, NewVersion, Registry, Rendered,
    Resolution, Role, RunStatus, Selector, Template, TemplateFormat, Variables,
};
use serde_json::json;
use uuid::Uuid;

use super::TestBackend;

async fn reg(b: &TestBackend) -> Registry {
    b.registry(&format!("compose-{}", Uuid::new_v4().simple()))
        .await
}

fn vars(v: serde_json::Value) -> Variables {
    v.as_object().cloned().unwrap_or_default()
}

/// The message of an `InvalidInput`, with its field.
fn invalid(r: Result<impl std::fmt::Debug, Error>) -> (String, String) {
    match r {
        Err(Error::InvalidInput { field, message }) => (field, message),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn node(name: &str, selector: &str, version: u32, includes: Vec<Resolution>) -> Resolution {
    Resolution {
        name: name.into(),
        selector: selector.into(),
        version,
        includes,
    }
}

/// A text included into a text and into a chat message, by label (default
/// `production`), by version and nested; its variables become the dependent's; an
/// escaped tag stays literal; the resolution says which versions were used; a label
/// moved on a dependency is seen by the next render.
pub async fn compose_includes_text_and_chat(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version(
        "team/tone",
        NewVersion::new("Be {{ mood }}.").with_labels(["production"]),
    )
    .await
    .unwrap();
    r.create_version("team/tone", NewVersion::new("Be terse."))
        .await
        .unwrap();
    r.create_version(
        "team/sign",
        NewVersion::new("-- {{ who }} {{> team/tone#2 }}").with_labels(["production"]),
    )
    .await
    .unwrap();
    let v = r
        .create_version(
            "mail",
            NewVersion::new(r"Hi {{ name }}. {{> team/tone }} {{>team/sign@production}} \{{> x }}")
                .with_labels(["production"]),
        )
        .await
        .unwrap();
    // The raw version: its own variables, its template as written.
    assert_eq!(v.variables, vec!["name"]);
    let raw = r.resolve("mail", &Selector::default()).await.unwrap();
    assert!(matches!(&raw.template, Template::Text(t) if t.contains("{{> team/tone }}")));

    let all = vars(json!({"name": "Ann", "mood": "kind", "who": "Bob"}));
    let (c, out) = r
        .render_composed("mail", &Selector::default(), &all, Default::default())
        .await
        .unwrap();
    assert_eq!(
        out,
        Rendered::Text("Hi Ann. Be kind. -- Bob Be terse. {{> x }}".into())
    );
    assert_eq!(c.version.variables, vec!["name", "mood", "who"]);
    assert_eq!(
        c.resolution,
        vec![
            node("team/tone", "production", 1, vec![]),
            node(
                "team/sign",
                "production",
                1,
                vec![node("team/tone", "#2", 2, vec![])]
            ),
        ]
    );
    // Missing variables of included texts are named like the dependent's own.
    let e = r
        .render("mail", &Selector::default(), &vars(json!({"name": "Ann"})))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "missing template variables: mood, who");

    // A label moved on a dependency: the next render uses the new version.
    r.set_label("team/tone", "production", 2, LabelExpect::Any, None)
        .await
        .unwrap();
    let (c, out) = r
        .render_composed("mail", &Selector::default(), &all, Default::default())
        .await
        .unwrap();
    assert_eq!(
        out,
        Rendered::Text("Hi Ann. Be terse. -- Bob Be terse. {{> x }}".into())
    );
    assert_eq!(c.resolution[0].version, 2);

    // Into a chat message's content.
    let chat = r
        .create_version(
            "chat",
            NewVersion::new(Template::Chat(vec![
                ChatMessage::new(Role::System, "{{> team/tone#1 }} Answer {{ q }}"),
                ChatMessage::new(Role::Placeholder, "history"),
            ])),
        )
        .await
        .unwrap();
    assert_eq!(chat.variables, vec!["q", "history"]);
    let (c, out) = r
        .render_composed(
            "chat",
            &Selector::label("latest"),
            &vars(json!({"mood": "calm", "q": "why", "history": []})),
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        Rendered::Messages(vec![ChatMessage::new(Role::System, "Be calm. Answer why")])
    );
    assert_eq!(c.resolution, vec![node("team/tone", "#1", 1, vec![])]);

    // Jinja includes Jinja; an escaped tag is literal there too.
    r.create_version(
        "j/part",
        NewVersion::new("{% for x in xs %}{{ x }}{% endfor %}")
            .with_format(TemplateFormat::Jinja)
            .with_labels(["production"]),
    )
    .await
    .unwrap();
    r.create_version(
        "j/main",
        NewVersion::new(r"[{{> j/part }}] {{ y }} \{{> j/part }}")
            .with_format(TemplateFormat::Jinja)
            .with_labels(["production"]),
    )
    .await
    .unwrap();
    let (c, out) = r
        .render_composed(
            "j/main",
            &Selector::default(),
            &vars(json!({"xs": [1, 2], "y": "Y"})),
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(out, Rendered::Text("[12] Y {{> j/part }}".into()));
    assert_eq!(c.version.variables, vec!["xs", "y"]);
}

/// Creation refuses what cannot be expanded, naming the field and the path: a cycle,
/// a chain deeper than 5, a chat prompt, a missing prompt, label or version, another
/// template format, a malformed name.
pub async fn compose_refused_at_creation(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version("a", NewVersion::new("A").with_labels(["production"]))
        .await
        .unwrap();
    r.create_version(
        "b",
        NewVersion::new("B {{> a }}").with_labels(["production"]),
    )
    .await
    .unwrap();
    // a -> b -> a
    let (field, message) = invalid(r.create_version("a", NewVersion::new("A2 {{> b }}")).await);
    assert_eq!(field, "template");
    assert!(message.contains("include cycle: a -> b -> a"), "{message}");
    let (_, message) = invalid(r.create_version("s", NewVersion::new("{{> s }}")).await);
    assert!(message.contains("include cycle: s -> s"), "{message}");

    // A chain of five prompts is fine; a sixth is refused.
    r.create_version("d1", NewVersion::new("1").with_labels(["production"]))
        .await
        .unwrap();
    for i in 2..=5 {
        r.create_version(
            &format!("d{i}"),
            NewVersion::new(format!("{i} {{{{> d{} }}}}", i - 1)).with_labels(["production"]),
        )
        .await
        .unwrap();
    }
    let (_, message) = invalid(r.create_version("d6", NewVersion::new("6 {{> d5 }}")).await);
    assert!(
        message.contains("include depth exceeds 5: d6 -> d5 -> d4 -> d3 -> d2 -> d1"),
        "{message}"
    );
    assert!(matches!(
        r.resolve("d6", &Selector::label("latest")).await,
        Err(Error::NotFound { .. })
    ));

    // Only text prompts may be included, into text and into chat messages.
    r.create_version(
        "c",
        NewVersion::new(Template::Chat(vec![ChatMessage::new(Role::User, "hi")]))
            .with_labels(["production"]),
    )
    .await
    .unwrap();
    let (field, message) = invalid(r.create_version("x", NewVersion::new("{{> c }}")).await);
    assert_eq!(field, "template");
    assert!(message.contains("chat prompt"), "{message}");
    let (field, message) = invalid(
        r.create_version(
            "x",
            NewVersion::new(Template::Chat(vec![
                ChatMessage::new(Role::System, "ok"),
                ChatMessage::new(Role::User, "{{> c }}"),
            ])),
        )
        .await,
    );
    assert_eq!(field, "template[1].content");
    assert!(message.contains("chat prompt"), "{message}");

    // Missing prompt, label, version.
    for (tag, what) in [
        ("{{> nope }}", "prompt 'nope'"),
        ("{{> a@staging }}", "label 'staging' of prompt 'a'"),
        ("{{> a#9 }}", "version 9 of prompt 'a'"),
    ] {
        let (field, message) = invalid(r.create_version("x", NewVersion::new(tag)).await);
        assert_eq!(field, "template");
        assert!(message.contains(what), "{tag}: {message}");
    }
    // Another format; a malformed reference.
    let (_, message) = invalid(
        r.create_version(
            "x",
            NewVersion::new("{{> a }}").with_format(TemplateFormat::Jinja),
        )
        .await,
    );
    assert!(message.contains("same template format"), "{message}");
    let (_, message) = invalid(r.create_version("x", NewVersion::new("{{> a#0 }}")).await);
    assert!(message.contains("not a version number"), "{message}");
    // Nothing was created by the refusals.
    assert!(matches!(
        r.get_prompt("x").await,
        Err(Error::NotFound { .. })
    ));
}

/// A run records the resolution of its template: a submitted run (its versions
/// pinned then), a logged one, read back by id and in a query.
pub async fn compose_run_records_resolution(b: &TestBackend) {
    let r = reg(b).await;
    r.create_version(
        "part",
        NewVersion::new("P{{ x }}").with_labels(["production"]),
    )
    .await
    .unwrap();
    r.create_version(
        "whole",
        NewVersion::new("W {{> part }}")
            .with_labels(["production"])
            .with_config(json!({"provider": "mock", "model": "m"})),
    )
    .await
    .unwrap();
    let run = r
        .submit(
            "whole",
            &Selector::default(),
            &vars(json!({"x": 1})),
            ExecuteOptions::default(),
        )
        .await
        .unwrap();
    let want = vec![node("part", "production", 1, vec![])];
    assert_eq!(run.resolution.as_ref(), Some(&want));
    assert_eq!(
        r.get_run(run.id).await.unwrap().resolution,
        Some(want.clone())
    );

    let mut logged = NewRun::with_status(RunStatus::Completed);
    logged.prompt = Some("whole".into());
    logged.version = Some(1);
    logged.resolution = Some(want.clone());
    let logged = r.log_run(logged).await.unwrap();
    let plain = r
        .log_run(NewRun::with_status(RunStatus::Completed))
        .await
        .unwrap();
    assert_eq!(r.get_run(plain.id).await.unwrap().resolution, None);
    let page = r.runs(&Default::default()).await.unwrap();
    let got = page.items.iter().find(|x| x.id == logged.id).unwrap();
    assert_eq!(got.resolution, Some(want));
}

/// Moving or removing a label of an included prompt appends, in the same commit, one
/// `prompt.dependency_changed` event for each dependent, direct or through another
/// prompt; a new version does so for those that include `@latest`; a deleted dependent
/// version and a write that moves no label append none.
pub async fn compose_label_moves_notify_dependents(b: &TestBackend) {
    let Some(l) = b.events.clone() else {
        eprintln!("SKIPPED on this backend: the event log (not read through its store)");
        return;
    };
    let r = reg(b).await;
    let p = r.project().id;
    let text = |t: &str, labels: &[&str]| NewVersion::new(t).with_labels(labels.iter().copied());
    r.create_version("dep/tone", text("Be kind.", &["production"]))
        .await
        .unwrap();
    r.create_version("dep/tone", text("Be brief.", &[]))
        .await
        .unwrap();
    r.create_version("dep/sign", text("{{> dep/tone }} Bye.", &["production"]))
        .await
        .unwrap();
    r.create_version(
        "dep/mail",
        text("Hi. {{> dep/sign@production }}", &["production"]),
    )
    .await
    .unwrap();
    r.create_version("dep/pinned", text("{{> dep/tone#1 }}", &[]))
        .await
        .unwrap();
    r.create_version("dep/news", text("{{> dep/tone@latest }}", &[]))
        .await
        .unwrap();
    r.create_version("dep/old", text("{{> dep/tone }}", &[]))
        .await
        .unwrap();
    r.create_version("dep/old", text("none", &[]))
        .await
        .unwrap();
    r.delete_version("dep/old", 1).await.unwrap();

    let after = |from: u64| {
        let l = l.clone();
        async move { l.events(p, from, 100).await.unwrap().events }
    };
    let head = l.head(p).await.unwrap();
    r.set_label(
        "dep/tone",
        "production",
        2,
        LabelExpect::Any,
        Some("user:bob"),
    )
    .await
    .unwrap();
    let got = after(head).await;
    let kinds: Vec<(&str, Option<&str>)> = got
        .iter()
        .map(|e| (e.kind.as_str(), e.prompt.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("label.moved", Some("dep/tone")),
            ("prompt.dependency_changed", Some("dep/mail")),
            ("prompt.dependency_changed", Some("dep/sign")),
        ]
    );
    assert!(got.iter().all(|e| e.at == got[0].at), "one commit");
    assert_eq!(
        got[1].data,
        json!({"dependency": "dep/tone", "label": "production", "from": 1, "to": 2,
               "through": ["dep/sign"], "versions": [1]})
    );
    assert_eq!(got[2].data["through"], json!([]));
    assert_eq!(got[2].actor.as_deref(), Some("user:bob"));

    // A removal of the label a dependent names.
    r.set_label("dep/tone", "staging", 1, LabelExpect::Any, None)
        .await
        .unwrap();
    r.create_version("dep/stage", text("{{> dep/tone@staging }}", &[]))
        .await
        .unwrap();
    let head = l.head(p).await.unwrap();
    r.delete_label("dep/tone", "staging", LabelExpect::Any, None)
        .await
        .unwrap();
    let got = after(head).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].prompt.as_deref(), Some("dep/stage"));
    assert_eq!(
        (got[1].data["from"].clone(), got[1].data["to"].clone()),
        (json!(1), json!(null))
    );

    // A new version moves `latest`; a write that moves no label appends nothing more.
    let head = l.head(p).await.unwrap();
    r.create_version("dep/tone", text("Be plain.", &[]))
        .await
        .unwrap();
    let got = after(head).await;
    let dependents: Vec<&str> = got
        .iter()
        .filter(|e| e.kind.as_str() == "prompt.dependency_changed")
        .filter_map(|e| e.prompt.as_deref())
        .collect();
    assert_eq!(dependents, ["dep/news"]);
    assert_eq!(got.last().unwrap().data["to"], json!(3));
    let head = l.head(p).await.unwrap();
    r.store()
        .update_prompt(
            p,
            "dep/tone",
            prompt_core::PromptUpdate {
                description: Some(Some("tone".into())),
                tags: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(after(head).await.len(), 1);
}
