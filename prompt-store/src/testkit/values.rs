//! Behaviour tests of the values a write accepts: every one reads back, the same, on
//! every backend; and what no backend can store (a NUL character) is refused by all of
//! them alike, before any backend sees it.

use prompt_core::domain::now;
use prompt_core::{
    ChatMessage, Error, NewPrompt, NewRun, NewVersion, PageRequest, PromptUpdate,
    ProviderCredential, ProviderKind, Role, RunQuery, RunStatus, Selector, Template,
};
use serde_json::{Value, json};

use super::TestBackend;

/// JSON numbers at the edges of f64 (its largest and smallest magnitudes, subnormals,
/// integers past 2^53, the u64 and i64 extremes), nesting 100 deep, and the Unicode
/// that trips encoders (non-characters, the last code point, a byte-order mark, ZWJ
/// emoji, combining marks, bidi overrides, line separators, every control character
/// but NUL, and text that looks like an escape).
pub fn edge_values() -> Value {
    let numbers = json!([
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        5e-324,
        1e-320,
        -1.5e300,
        1e300,
        1e21,
        0.1,
        1.0 / 3.0,
        -0.0,
        9_007_199_254_740_993_u64,
        u64::MAX,
        i64::MIN,
        0,
        -1,
    ]);
    let mut deep = json!("bottom");
    for i in 0..100 {
        deep = if i % 2 == 0 {
            json!([deep])
        } else {
            json!({ "d": deep })
        };
    }
    let controls: String = (1u8..0x20).map(char::from).collect();
    json!({
        "numbers": numbers,
        "deep": deep,
        "text": [
            "\u{FFFF}\u{FFFE}\u{10FFFF}",
            "\u{FEFF}bom",
            "👩‍👩‍👧 e\u{301} \u{202E}rtl\u{202C}",
            "line\u{2028}sep\u{2029}para",
            controls,
            "\\u0000 is text, not NUL",
            "\u{7F}\u{80}\u{9F}",
        ],
        "\u{1F600} key \u{301}": "emoji key",
        "": "empty key",
    })
}

/// Every JSON value a write accepts reads back as it was written — in a version's
/// config, a run's variables, input and metadata, a provider's default parameters — and
/// listings that hold such rows keep working.
pub async fn json_edge_values_read_back(b: &TestBackend) {
    let r = b
        .registry(&format!("values-{}", uuid::Uuid::new_v4().simple()))
        .await;
    let v = edge_values();

    let created = r
        .create_version(
            "edge",
            NewVersion::new("Say {{x}}").with_config(json!({"edge": v.clone()})),
        )
        .await
        .unwrap();
    assert_eq!(created.config["edge"], v);
    let got = r.resolve("edge", &Selector::Version(1)).await.unwrap();
    assert_eq!(got.config["edge"], v, "resolve");
    let listed = r
        .list_versions("edge", &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.items[0].config["edge"], v, "list_versions");

    let mut run = NewRun::with_status(RunStatus::Completed);
    run.prompt = Some("edge".into());
    run.version = Some(1);
    run.variables = json!({"x": v.clone()});
    run.input = json!([{"role": "user", "content": "Say", "extra": v.clone()}]);
    run.metadata = json!({"edge": v.clone()});
    run.output = Some("\u{10FFFF}\u{FEFF}👩‍👩‍👧".into());
    let logged = r.log_run(run).await.unwrap();
    let got = r.get_run(logged.id).await.unwrap();
    assert_eq!(got.variables["x"], v, "run variables");
    assert_eq!(got.input[0]["extra"], v, "run input");
    assert_eq!(got.metadata["edge"], v, "run metadata");
    assert_eq!(got.output, logged.output);
    let page = r.runs(&RunQuery::default()).await.unwrap();
    assert_eq!(
        page.items.len(),
        1,
        "the listing holding the row still answers"
    );
    assert_eq!(page.items[0].metadata["edge"], v);

    if b.caps.provider_credentials {
        let at = now();
        let c = ProviderCredential {
            project_id: r.project().id,
            name: "p1".into(),
            kind: ProviderKind::OpenaiCompatible,
            base_url: Some("http://127.0.0.1:9/v1".into()),
            sealed_api_key: "sealed".into(),
            key_hint: "…cd".into(),
            default_params: json!({"x": f64::MAX, "edge": v.clone()}),
            created_at: at,
            updated_at: at,
        };
        let put = b.store.put_provider_credential(c).await.unwrap();
        assert_eq!(put.default_params["x"], json!(f64::MAX));
        let listed = b
            .store
            .list_provider_credentials(r.project().id)
            .await
            .unwrap();
        assert_eq!(listed[0].default_params["edge"], v, "credentials listing");
    }
}

/// A NUL character is refused with the same `InvalidInput` naming the field on every
/// backend (Postgres cannot store one; SQLite and memory could, and used to).
pub async fn nul_characters_refused_alike(b: &TestBackend) {
    let r = b
        .registry(&format!("nul-{}", uuid::Uuid::new_v4().simple()))
        .await;
    let field_of = |e: Error| match e {
        Error::InvalidInput { field, message } => {
            assert!(message.contains("NUL"), "{message}");
            field
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let e = r
        .create_version("n", NewVersion::new("a\0b"))
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "template");
    let chat = Template::Chat(vec![
        ChatMessage {
            role: Role::System,
            content: "ok".into(),
        },
        ChatMessage {
            role: Role::User,
            content: "x\0".into(),
        },
    ]);
    let e = r
        .create_version("n", NewVersion::new(chat))
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "template[1].content");
    let e = r
        .create_version("n", NewVersion::new("ok").with_config(json!({"k\0": 1})))
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "config");
    let e = r
        .create_version(
            "n",
            NewVersion::new("ok").with_config(json!({"k": ["a", {"b": "\0"}]})),
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "config");
    let e = r
        .create_version("n", NewVersion::new("ok").with_commit_message("m\0"))
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "commit_message");
    let e = r
        .create_prompt(NewPrompt {
            description: Some("d\0".into()),
            ..NewPrompt::named("n")
        })
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "description");
    // Nothing of the refused writes was stored.
    assert!(matches!(
        r.get_prompt("n").await,
        Err(Error::NotFound { .. })
    ));
    r.create_version("n", NewVersion::new("ok")).await.unwrap();
    let e = r
        .update_prompt(
            "n",
            PromptUpdate {
                description: Some(Some("\0".into())),
                tags: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "description");
    // Text that merely spells an escape is stored as it is.
    let v = r
        .create_version("n", NewVersion::new("\\u0000 {{x}}"))
        .await
        .unwrap();
    assert_eq!(v.template, Template::Text("\\u0000 {{x}}".into()));

    if b.caps.provider_credentials {
        let at = now();
        let e = b
            .store
            .put_provider_credential(ProviderCredential {
                project_id: r.project().id,
                name: "p1".into(),
                kind: ProviderKind::Openai,
                base_url: None,
                sealed_api_key: "sealed".into(),
                key_hint: "…cd".into(),
                default_params: json!({"stop": ["\0"]}),
                created_at: at,
                updated_at: at,
            })
            .await
            .unwrap_err();
        assert_eq!(field_of(e), "default_params");
    }
}
