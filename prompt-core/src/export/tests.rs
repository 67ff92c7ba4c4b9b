//! The document format: YAML as a person reads and edits it.

use std::path::Path;

use serde_json::json;

use super::tree::{from_yaml, path_of, to_yaml};
use super::{LabelDocument, PromptBundle, PromptDocument, VersionDocument};
use crate::domain::{ChatMessage, Role, Template};
use crate::template::TemplateFormat;

fn doc() -> PromptDocument {
    PromptDocument {
        name: "team/tone".into(),
        description: Some("How we sound".into()),
        tags: vec!["style".into()],
        versions: vec![
            VersionDocument {
                version: 1,
                template: Template::Text("Be kind.\nBe brief.".into()),
                template_format: TemplateFormat::Mustache,
                config: json!({}),
                commit_message: None,
            },
            VersionDocument {
                version: 3,
                template: Template::Chat(vec![ChatMessage::new(
                    Role::System,
                    "You are {{ who }}.",
                )]),
                template_format: TemplateFormat::Jinja,
                config: json!({"model": "gpt-4o-mini", "temperature": 0.25}),
                commit_message: Some("chat".into()),
            },
        ],
        labels: [("production".to_owned(), 3.into())].into_iter().collect(),
    }
}

#[test]
fn yaml_is_readable_and_reads_back() {
    let text = to_yaml(&doc()).unwrap();
    let expected = "\
name: team/tone
description: How we sound
tags:
- style
versions:
- version: 1
  template: |-
    Be kind.
    Be brief.
- version: 3
  template:
  - role: system
    content: You are {{ who }}.
  template_format: jinja
  config:
    model: gpt-4o-mini
    temperature: 0.25
  commit_message: chat
labels:
  production: 3
";
    assert_eq!(text, expected);
    assert_eq!(from_yaml(&text).unwrap(), doc());
}

#[test]
fn minimal_documents_and_mistakes() {
    let d = from_yaml("name: a\n").unwrap();
    assert!(d.versions.is_empty() && d.labels.is_empty());
    let v = from_yaml("name: a\nversions:\n- version: 1\n  template: hi\n").unwrap();
    assert_eq!(v.versions[0].config, json!({}));
    let e = from_yaml("name: a\nlabel: {}\n").unwrap_err();
    assert!(e.contains("unknown field `label`"), "{e}");
    assert!(from_yaml("versions: []\n").unwrap_err().contains("name"));
}

#[test]
fn a_prompt_name_is_its_path() {
    assert_eq!(
        path_of(Path::new("out"), "team/tone"),
        Path::new("out/team/tone.yaml")
    );
    assert_eq!(
        path_of(Path::new("out"), "v1.2"),
        Path::new("out/v1.2.yaml")
    );
}

#[test]
fn a_split_label_reads_naturally_in_yaml_and_json() {
    let mut d = doc();
    d.labels.insert(
        "canary".into(),
        LabelDocument::Split {
            split: [(1, 90), (3, 10)].into_iter().collect(),
        },
    );
    let text = to_yaml(&d).unwrap();
    assert!(
        text.ends_with(
            "labels:\n  canary:\n    split:\n      1: 90\n      3: 10\n  production: 3\n"
        ),
        "{text}"
    );
    assert_eq!(from_yaml(&text).unwrap(), d);
    // JSON (the HTTP body) writes the versions as strings, as every split on the wire.
    let bundle = PromptBundle {
        prompts: vec![d.clone()],
    };
    let wire = serde_json::to_value(&bundle).unwrap();
    assert_eq!(
        wire["prompts"][0]["labels"],
        json!({"canary": {"split": {"1": 90, "3": 10}}, "production": 3})
    );
    assert_eq!(
        serde_json::from_value::<PromptBundle>(wire).unwrap(),
        bundle
    );
    assert_eq!(
        d.labels["canary"].versions(),
        [1, 3],
        "the document versions it names"
    );
}

#[test]
fn a_malformed_label_says_what_is_expected() {
    for bad in [
        "name: a\nlabels:\n  production: beta\n",
        "name: a\nlabels:\n  production:\n    split:\n      x: 1\n",
        "name: a\nlabels:\n  production:\n    versions: {1: 1}\n",
    ] {
        let e = from_yaml(bad).unwrap_err();
        assert!(e.contains("a version number, or {split:"), "{bad}: {e}");
    }
}
