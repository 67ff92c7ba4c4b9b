//! The domain: projects, prompts, versions and their templates, labels, API keys,
//! runs, provider credentials, people (organizations, users, sessions, audit), the
//! change log (events), webhooks and batches.
//!
//! Field names follow `API.md`; they are part of the public contract. "Model" in this
//! product means an LLM, so the domain is not called that.

mod batch;
pub mod credential;
pub mod event;
mod key;
mod label;
mod message;
mod people;
mod project;
mod prompt;
pub mod run;
pub mod split;
mod version;
pub mod webhook;

pub use batch::*;
pub use event::*;
pub use key::*;
pub use label::*;
pub use message::*;
pub use people::*;
pub use project::*;
pub use prompt::*;
pub use split::{LabelSplit, SplitWeights};
pub use version::*;
pub use webhook::*;

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::error::Error;
    use crate::template::{TemplateFormat, Variables};

    #[test]
    fn message_placeholders_are_variables_filled_with_messages() {
        let t: Template = serde_json::from_value(json!([
            {"role": "system", "content": "You are {{persona}}."},
            {"role": "placeholder", "content": "history"},
            {"role": "user", "content": "{{q}}"},
        ]))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&t).unwrap()[1],
            json!({"role": "placeholder", "content": "history"}),
            "stored as it came"
        );
        assert_eq!(
            t.check(TemplateFormat::Mustache).unwrap(),
            vec!["persona", "history", "q"]
        );
        let vars = |v: Value| v.as_object().cloned().unwrap();
        let r = t
            .render(
                TemplateFormat::Mustache,
                &vars(json!({"persona": "kind", "q": "and now?", "history": [
                    {"role": "user", "content": "hi {{not a template}}"},
                    {"role": "assistant", "content": "hello"},
                ]})),
            )
            .unwrap();
        assert_eq!(
            r.into_messages(),
            vec![
                ChatMessage::new(Role::System, "You are kind."),
                ChatMessage::new(Role::User, "hi {{not a template}}"),
                ChatMessage::new(Role::Assistant, "hello"),
                ChatMessage::new(Role::User, "and now?"),
            ]
        );
        // Empty history: nothing in its place.
        let r = t
            .render(
                TemplateFormat::Jinja,
                &vars(json!({"persona": "kind", "q": "x", "history": []})),
            )
            .unwrap();
        assert_eq!(r.into_messages().len(), 2);
        // Missing: named with the other missing variables.
        let e = t
            .render(TemplateFormat::Mustache, &vars(json!({"persona": "kind"})))
            .unwrap_err();
        assert!(
            matches!(e, Error::Template(crate::error::TemplateError::MissingVariables(ref v)) if v == &["history", "q"]),
            "{e:?}"
        );
        // Not a list of messages, or placeholders inside: an error naming the variable.
        for bad in [
            json!("text"),
            json!([{"role": "user"}]),
            json!([{"role": "placeholder", "content": "x"}]),
        ] {
            let e = t
                .render(
                    TemplateFormat::Mustache,
                    &vars(json!({"persona": "p", "q": "q", "history": bad})),
                )
                .unwrap_err();
            assert!(
                matches!(e, Error::InvalidInput { ref field, .. } if field == "variables.history"),
                "{e:?}"
            );
        }
        // A placeholder's name is a variable name.
        for bad in ["", "1x", "a b", "{{x}}", "_x"] {
            let t = Template::Chat(vec![
                ChatMessage::new(Role::Placeholder, bad),
                ChatMessage::new(Role::User, "q"),
            ]);
            let e = t.check(TemplateFormat::Mustache).unwrap_err();
            assert!(
                matches!(e, Error::InvalidInput { ref field, .. } if field == "template[0].content"),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn template_json_shapes() {
        let t: Template = serde_json::from_value(json!("hi {{x}}")).unwrap();
        assert_eq!(t.kind(), TemplateKind::Text);
        let t: Template = serde_json::from_value(
            json!([{"role": "system", "content": "s"}, {"role": "user", "content": "{{q}}"}]),
        )
        .unwrap();
        assert_eq!(t.kind(), TemplateKind::Chat);
        assert_eq!(t.check(TemplateFormat::Mustache).unwrap(), vec!["q"]);
        assert!(
            serde_json::from_value::<Template>(json!([{"role": "boss", "content": "s"}])).is_err()
        );
        assert!(serde_json::from_value::<Template>(json!(3)).is_err());
    }

    #[test]
    fn chat_render_reports_all_missing() {
        let t = Template::Chat(vec![
            ChatMessage::new(Role::System, "{{ b }}"),
            ChatMessage::new(Role::User, "{{ a }} {{ b }}"),
        ]);
        let e = t
            .render(TemplateFormat::Mustache, &Variables::new())
            .unwrap_err();
        assert_eq!(
            e,
            Error::Template(crate::error::TemplateError::MissingVariables(vec![
                "a".into(),
                "b".into()
            ]))
        );
    }

    #[test]
    fn prepare_validates() {
        assert!(NewVersion::new(Template::Chat(vec![])).prepare().is_err());
        let e = NewVersion::new("x")
            .with_config(json!([1]))
            .prepare()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "config"));
        let e = NewVersion::new("x")
            .with_labels(["ok", "latest"])
            .prepare()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "labels[1]"));
        let (v, vars) = NewVersion::new("{{a}}")
            .with_labels(["b", "a", "b"])
            .prepare()
            .unwrap();
        assert_eq!(v.labels, vec!["a", "b"]);
        assert_eq!(vars, vec!["a"]);
    }

    #[test]
    fn selector_parts() {
        assert_eq!(
            Selector::from_parts(None, None).unwrap(),
            Selector::label("production")
        );
        assert!(Selector::from_parts(Some("a".into()), Some(1)).is_err());
    }

    #[test]
    fn prompt_update_double_option() {
        let u: PromptUpdate = serde_json::from_value(json!({"description": null})).unwrap();
        assert_eq!(u.description, Some(None));
        let u: PromptUpdate = serde_json::from_value(json!({})).unwrap();
        assert_eq!(u.description, None);
        assert!(serde_json::from_value::<PromptUpdate>(json!({"nme": 1})).is_err());
    }
}
