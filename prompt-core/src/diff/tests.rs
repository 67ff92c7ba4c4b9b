//! Tests of the diff: hunks and word segments, chat messages, config patches.
use serde_json::{Value, json};

use super::*;
use crate::domain::Selector;

fn version(n: u32, template: Template, format: TemplateFormat, config: Value) -> PromptVersion {
    let variables = template.check(format).unwrap();
    PromptVersion {
        id: uuid::Uuid::now_v7(),
        prompt: "support/triage".into(),
        prompt_id: uuid::Uuid::nil(),
        version: n,
        kind: match template {
            Template::Text(_) => TemplateKind::Text,
            Template::Chat(_) => TemplateKind::Chat,
        },
        template,
        template_format: format,
        variables,
        config,
        labels: vec![],
        commit_message: Some(format!("v{n}")),
        created_by: None,
        created_at: Utc::now(),
        split: None,
    }
}

fn text(n: u32, t: &str) -> PromptVersion {
    version(
        n,
        Template::Text(t.into()),
        TemplateFormat::Mustache,
        json!({}),
    )
}

fn chat(n: u32, messages: &[(Role, &str)]) -> PromptVersion {
    let m = messages
        .iter()
        .map(|(r, c)| ChatMessage::new(*r, *c))
        .collect();
    version(n, Template::Chat(m), TemplateFormat::Mustache, json!({}))
}

fn hunks(d: &VersionDiff) -> &[Hunk] {
    match &d.template {
        TemplateDiff::Text { hunks } => hunks,
        TemplateDiff::Chat { .. } => panic!("a chat diff: {d:?}"),
    }
}

fn messages(d: &VersionDiff) -> &[MessageDiff] {
    match &d.template {
        TemplateDiff::Chat { messages } => messages,
        TemplateDiff::Text { .. } => panic!("a text diff: {d:?}"),
    }
}

fn seg(op: SegmentOp, text: &str) -> Segment {
    Segment {
        op,
        text: text.into(),
    }
}

#[test]
fn text_hunks_have_context_and_word_segments() {
    let old = (1..=20).map(|i| format!("line {i}")).collect::<Vec<_>>();
    let mut new = old.clone();
    new[9] = "line ten, changed".into(); // line 10
    new.insert(15, "inserted".into()); // after line 15
    let d = VersionDiff::between(&text(1, &old.join("\n")), &text(2, &new.join("\n")));
    assert!(!d.identical);
    let hunks = hunks(&d);
    assert_eq!(
        hunks.len(),
        1,
        "changes 6 lines apart share a hunk: {hunks:?}"
    );
    let h = &hunks[0];
    // 3 lines of context before line 10 and after the insertion after line 15.
    assert_eq!(
        (h.old_start, h.old_lines, h.new_start, h.new_lines),
        (7, 12, 7, 13)
    );
    assert_eq!(
        h.lines[0],
        LineDiff::Equal {
            old_line: 7,
            new_line: 7,
            text: "line 7".into()
        }
    );
    assert_eq!(
        h.lines[3],
        LineDiff::Change {
            old_line: 10,
            new_line: 10,
            old_text: "line 10".into(),
            new_text: "line ten, changed".into(),
            segments: vec![
                seg(SegmentOp::Equal, "line "),
                seg(SegmentOp::Delete, "10"),
                seg(SegmentOp::Insert, "ten, changed"),
            ],
        }
    );
    assert!(h.lines.contains(&LineDiff::Insert {
        new_line: 16,
        text: "inserted".into()
    }));

    // Far-apart changes make separate hunks.
    let mut far = old.clone();
    far[0] = "first".into();
    far[19] = "last".into();
    let d = VersionDiff::between(&text(1, &old.join("\n")), &text(2, &far.join("\n")));
    let hunks = self::hunks(&d);
    assert_eq!(hunks.len(), 2);
    assert_eq!((hunks[0].old_start, hunks[0].old_lines), (1, 4));
    assert_eq!((hunks[1].old_start, hunks[1].old_lines), (17, 4));
}

#[test]
fn a_deleted_line_without_a_replacement_is_a_delete() {
    let d = VersionDiff::between(&text(1, "a\nb\nc"), &text(2, "a\nc"));
    assert_eq!(
        hunks(&d)[0].lines,
        vec![
            LineDiff::Equal {
                old_line: 1,
                new_line: 1,
                text: "a".into()
            },
            LineDiff::Delete {
                old_line: 2,
                text: "b".into()
            },
            LineDiff::Equal {
                old_line: 3,
                new_line: 2,
                text: "c".into()
            },
        ]
    );
}

#[test]
fn the_same_version_twice_is_an_empty_diff() {
    let v = text(1, "Hello {{name}}");
    let d = VersionDiff::between(&v, &v);
    assert!(d.identical);
    assert!(hunks(&d).is_empty());
    assert!(d.config.0.is_empty());
    assert_eq!(d.variables, VariablesDiff::default());
    let c = chat(1, &[(Role::System, "s"), (Role::User, "u")]);
    let d = VersionDiff::between(&c, &c);
    assert!(d.identical);
    assert!(
        messages(&d)
            .iter()
            .all(|m| m.status == MessageStatus::Unchanged)
    );
}

#[test]
fn a_message_inserted_in_the_middle_is_one_added() {
    let old = chat(
        1,
        &[
            (Role::System, "s"),
            (Role::User, "a"),
            (Role::Assistant, "b"),
            (Role::User, "c"),
        ],
    );
    let new = chat(
        2,
        &[
            (Role::System, "s"),
            (Role::User, "new"),
            (Role::User, "a"),
            (Role::Assistant, "b"),
            (Role::User, "c"),
        ],
    );
    let d = VersionDiff::between(&old, &new);
    let statuses: Vec<_> = messages(&d).iter().map(|m| m.status).collect();
    use MessageStatus::*;
    assert_eq!(
        statuses,
        [Unchanged, Added, Unchanged, Unchanged, Unchanged]
    );
    let added = &messages(&d)[1];
    assert_eq!((added.from_index, added.to_index), (None, Some(1)));
    assert_eq!(added.to, Some(ChatMessage::new(Role::User, "new")));
    assert_eq!(messages(&d)[4].from_index, Some(3));
    assert_eq!(messages(&d)[4].to_index, Some(4));

    // And removing it again is one `removed`.
    let d = VersionDiff::between(&new, &old);
    let statuses: Vec<_> = messages(&d).iter().map(|m| m.status).collect();
    assert_eq!(
        statuses,
        [Unchanged, Removed, Unchanged, Unchanged, Unchanged]
    );
}

#[test]
fn a_replaced_message_is_changed_with_its_role_and_content_diff() {
    let old = chat(
        1,
        &[(Role::System, "Be brief."), (Role::User, "Hi {{name}}")],
    );
    let new = chat(
        2,
        &[
            (Role::Developer, "Be brief."),
            (Role::User, "Hello {{name}}"),
        ],
    );
    let d = VersionDiff::between(&old, &new);
    let m = messages(&d);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].status, MessageStatus::Changed);
    assert!(m[0].role_changed);
    assert!(m[0].hunks.is_empty(), "only the role changed");
    assert_eq!(m[1].status, MessageStatus::Changed);
    assert!(!m[1].role_changed);
    assert_eq!(
        m[1].hunks[0].lines,
        vec![LineDiff::Change {
            old_line: 1,
            new_line: 1,
            old_text: "Hi {{name}}".into(),
            new_text: "Hello {{name}}".into(),
            segments: vec![
                seg(SegmentOp::Delete, "Hi"),
                seg(SegmentOp::Insert, "Hello"),
                seg(SegmentOp::Equal, " {{name}}"),
            ],
        }]
    );
}

#[test]
fn the_config_patch_turns_from_into_to() {
    let from = version(
        1,
        Template::Text("x".into()),
        TemplateFormat::Mustache,
        json!({"model": "gpt-4o", "temperature": 0.2, "stop": ["a"], "old": true}),
    );
    let to = version(
        2,
        Template::Text("x".into()),
        TemplateFormat::Mustache,
        json!({"model": "gpt-4.1", "temperature": 0.2, "stop": ["a", "b"], "max_tokens": 100}),
    );
    let d = VersionDiff::between(&from, &to);
    assert!(!d.identical);
    assert!(hunks(&d).is_empty());
    let mut config = from.config.clone();
    json_patch::patch(&mut config, &d.config).unwrap();
    assert_eq!(config, to.config);
    let wire = serde_json::to_value(&d.config).unwrap();
    assert!(
        wire.as_array()
            .unwrap()
            .contains(&json!({"op": "replace", "path": "/model", "value": "gpt-4.1"})),
        "{wire}"
    );
}

#[test]
fn variables_and_format_changes() {
    let from = text(1, "{{a}} {{b}}");
    let to = version(
        2,
        Template::Text("{{ b }} {{ c }} {{ d }}".into()),
        TemplateFormat::Jinja,
        json!({}),
    );
    let d = VersionDiff::between(&from, &to);
    assert_eq!(d.variables.added, ["c", "d"]);
    assert_eq!(d.variables.removed, ["a"]);
    assert!(d.format_changed);
    assert_eq!(d.from.template_format, TemplateFormat::Mustache);
    assert_eq!(d.to.template_format, TemplateFormat::Jinja);
    assert_eq!(d.from.commit_message.as_deref(), Some("v1"));
    assert_eq!(d.to.commit_message.as_deref(), Some("v2"));
}

#[test]
fn a_kind_change_diffs_the_text_against_the_joined_contents() {
    let from = text(1, "You are terse.\n\nHi {{name}}");
    let to = chat(
        2,
        &[
            (Role::System, "You are terse."),
            (Role::User, "Hi {{name}}!"),
        ],
    );
    let d = VersionDiff::between(&from, &to);
    assert!(d.kind_changed);
    assert_eq!(
        (d.from.kind, d.to.kind),
        (TemplateKind::Text, TemplateKind::Chat)
    );
    let h = hunks(&d);
    assert_eq!(h.len(), 1);
    assert!(h[0].lines.contains(&LineDiff::Change {
        old_line: 3,
        new_line: 3,
        old_text: "Hi {{name}}".into(),
        new_text: "Hi {{name}}!".into(),
        segments: vec![
            seg(SegmentOp::Equal, "Hi "),
            seg(SegmentOp::Delete, "{{name}}"),
            seg(SegmentOp::Insert, "{{name}}!"),
        ],
    }));
    // A text turned into one message with the same content: only the kind changed.
    let d = VersionDiff::between(&text(1, "Hi"), &chat(2, &[(Role::User, "Hi")]));
    assert!(d.kind_changed && !d.identical);
    assert!(hunks(&d).is_empty());
}

#[test]
fn the_wire_shape() {
    let d = VersionDiff::between(&text(1, "a b"), &text(2, "a c"));
    let w = serde_json::to_value(&d).unwrap();
    assert_eq!(w["template"]["kind"], "text");
    assert_eq!(w["template"]["hunks"][0]["lines"][0]["op"], "change");
    assert_eq!(
        w["template"]["hunks"][0]["lines"][0]["segments"][1],
        json!({"op": "delete", "text": "b"})
    );
    assert_eq!(w["from"]["version"], 1);
    assert_eq!(w["config"], json!([]));
    let back: VersionDiff = serde_json::from_value(w).unwrap();
    assert_eq!(back, d);
}

#[test]
fn selectors_from_text() {
    assert_eq!(Selector::parse("from", "3").unwrap(), Selector::Version(3));
    assert_eq!(
        Selector::parse("from", "production").unwrap(),
        Selector::label("production")
    );
    for bad in ["", "0", "-1", "+2", "99999999999", "Prod"] {
        let e = Selector::parse("to", bad).unwrap_err();
        assert!(
            matches!(&e, crate::Error::InvalidInput { field, .. } if field == "to"),
            "{bad:?}: {e:?}"
        );
    }
}
