//! The prompt tools (analyze, remix, create, optimize) end to end: a real registry over
//! the memory store, with the in-process `mock/echo` model and with the mock vendor
//! server (OpenAI wire format) answering good JSON, bad JSON, slowly, or with errors.
//!
//! Over 600 lines as one suite: every test uses the same registry and mock-vendor
//! set-up, and they are the behaviour of one module (`prompt_core::authoring`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::Arc;
use std::time::Duration;

use prompt_core::authoring::Severity;
use prompt_core::{
    AnalyzeRequest, CreateRequest, Error, NewVersion, OptimizeRequest, ProviderErrorKind,
    ProviderSet, Registry, RemixRequest, RemixStyle, RunQuery, Selector, Template, TemplateKind,
    ToolsConfig,
};
use prompt_providers::{MockProvider, MockServer, OpenAiConfig, OpenAiProvider};
use serde_json::json;

async fn registry(tools: ToolsConfig, server: Option<&MockServer>) -> Registry {
    let (store, runs) = prompt_store::memory();
    let mut set = ProviderSet::new().with(Arc::new(MockProvider::new()));
    if let Some(s) = server {
        let mut c = OpenAiConfig::compatible("vendor", s.openai_base_url());
        c.api_key = Some("sk-test".into());
        set.insert(Arc::new(OpenAiProvider::new(c).unwrap()));
    }
    Registry::new(store, runs)
        .await
        .unwrap()
        .with_providers(set)
        .with_tools(tools)
}

fn vendor(model: &str) -> ToolsConfig {
    ToolsConfig {
        provider: "vendor".into(),
        model: model.into(),
        timeout: None,
    }
}

fn remix_req(template: &str, style: RemixStyle) -> RemixRequest {
    RemixRequest {
        template: Template::Text(template.into()),
        style,
        template_format: Default::default(),
    }
}

async fn tool_runs(reg: &Registry, prompt: &str) -> Vec<prompt_core::Run> {
    reg.runs(&RunQuery {
        prompt: Some(prompt.into()),
        ..RunQuery::default()
    })
    .await
    .unwrap()
    .items
}

const CRITIQUE: &str = r#"Here is my review:
```json
{"clarity": {"score": 8, "reason": "The task is clear."},
 "specificity": {"score": 4, "reason": "No output format."},
 "structure": {"score": 6, "reason": "Instructions and data are mixed."},
 "suggestions": ["State the output format.", "Put the ticket after the instructions."]}
```"#;

#[tokio::test]
async fn meta_prompts_are_seeded_once_as_ordinary_prompts() {
    let reg = registry(ToolsConfig::default(), None).await;
    let seeded = reg.seed_tools().await.unwrap();
    assert_eq!(
        seeded,
        vec![
            "_tools/analyze",
            "_tools/remix",
            "_tools/create",
            "_tools/optimize"
        ]
    );
    assert!(reg.seed_tools().await.unwrap().is_empty(), "idempotent");
    let p = reg.get_prompt("_tools/remix").await.unwrap();
    assert_eq!(p.labels.get("production"), Some(&1));
    assert_eq!(p.latest_version, Some(1));
    let v = reg
        .resolve("_tools/remix", &Selector::default())
        .await
        .unwrap();
    assert_eq!(v.kind, TemplateKind::Chat);
    for var in ["style", "instruction", "kind", "template_format", "draft"] {
        assert!(v.variables.contains(&var.to_owned()), "{var}");
    }
    // An admin's new version is kept: seeding never overwrites.
    reg.create_version(
        "_tools/remix",
        NewVersion::new("{{ draft }}").with_labels(["production"]),
    )
    .await
    .unwrap();
    assert!(reg.seed_tools().await.unwrap().is_empty());
    assert_eq!(
        reg.get_prompt("_tools/remix").await.unwrap().labels["production"],
        2
    );
}

#[tokio::test]
async fn echo_model_gives_valid_answers() {
    let reg = registry(ToolsConfig::default(), None).await;

    // Analyze: the static part, and an honest "unavailable" critique after two runs.
    let a = reg
        .analyze(AnalyzeRequest {
            template: Some(Template::Text("Summarize {text} for {{ audience }}".into())),
            variables: Some(vec!["audience".into(), "tone".into()]),
            ..AnalyzeRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(a.variables, vec!["audience"]);
    assert_eq!(a.kind, TemplateKind::Text);
    let codes: Vec<&str> = a.lints.iter().map(|l| l.code.as_str()).collect();
    assert_eq!(codes, vec!["unused_variable", "single_brace_placeholder"]);
    assert!(a.lints.iter().all(|l| l.severity == Severity::Warning));
    assert_eq!(a.length.chars, 35);
    assert_eq!(a.length.tokens, 9);
    assert!(a.length.tokenizer.contains("ceil(characters / 4)"));
    assert!(!a.critique.available);
    assert!(
        a.critique
            .reason
            .as_deref()
            .unwrap()
            .contains("no valid critique in 2 attempts"),
        "{:?}",
        a.critique.reason
    );
    assert_eq!(a.critique.runs.len(), 2);
    let runs = tool_runs(&reg, "_tools/analyze").await;
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.version == Some(1)
        && r.model.as_deref() == Some("mock/echo")
        && r.metadata["tool"] == "analyze"));

    // Remix: the echo gives the draft back — the same template, saying so.
    let r = reg
        .remix(remix_req(
            "Translate {{ text }} to {{ lang }}.",
            RemixStyle::Concise,
        ))
        .await
        .unwrap();
    assert_eq!(
        r.template,
        Template::Text("Translate {{ text }} to {{ lang }}.".into())
    );
    assert_eq!(r.variables, vec!["text", "lang"]);
    assert!(r.rationale.contains("not rewritten"), "{}", r.rationale);
    assert_eq!(r.runs.len(), 1);
    assert_eq!(r.model, "mock/echo");

    // Create: the skeleton, with the requested variables; saved as a new prompt.
    let c = reg
        .create_from_goal(CreateRequest {
            goal: "Classify support tickets by urgency".into(),
            variables: Some(vec!["ticket".into()]),
            kind: Some(TemplateKind::Chat),
            save_as: Some("support/urgency".into()),
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(c.kind, TemplateKind::Chat);
    assert_eq!(c.variables, vec!["ticket"]);
    let saved = c.saved.unwrap();
    assert_eq!(
        (saved.prompt.as_str(), saved.version),
        ("support/urgency", 1)
    );
    assert!(
        saved
            .commit_message
            .unwrap()
            .starts_with("Created by _tools/create v1 (mock/echo)")
    );
    // The name is taken now: refused before any model call.
    let before = tool_runs(&reg, "_tools/create").await.len();
    let e = reg
        .create_from_goal(CreateRequest {
            goal: "x".into(),
            save_as: Some("support/urgency".into()),
            ..CreateRequest::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
    assert_eq!(tool_runs(&reg, "_tools/create").await.len(), before);

    // Optimize: a new version, production untouched, history says where it came from.
    reg.set_label(
        "support/urgency",
        "production",
        1,
        prompt_core::LabelExpect::Any,
        None,
    )
    .await
    .unwrap();
    let o = reg
        .optimize(
            "support/urgency",
            OptimizeRequest {
                goal: Some("fewer tokens".into()),
                ..OptimizeRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((o.source_version, o.version.version), (1, 2));
    assert_eq!(o.version.variables, vec!["ticket"]);
    assert_eq!(o.version.labels, vec!["latest"]);
    let msg = o.version.commit_message.unwrap();
    assert!(
        msg.starts_with(
            "Optimized from version 1 by _tools/optimize v1 (mock/echo) for: fewer tokens:"
        ),
        "{msg}"
    );
    let p = reg.get_prompt("support/urgency").await.unwrap();
    assert_eq!(p.labels["production"], 1);
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let reg = registry(ToolsConfig::default(), None).await;
    let field = |e: Error| match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("not InvalidInput: {other}"),
    };
    let e = reg.analyze(AnalyzeRequest::default()).await.unwrap_err();
    assert_eq!(field(e), "template");
    let e = reg
        .analyze(AnalyzeRequest {
            template: Some("x".into()),
            prompt: Some("p".into()),
            ..AnalyzeRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(e), "prompt");
    let e = reg
        .remix(remix_req("x", RemixStyle::Custom("  ".into())))
        .await
        .unwrap_err();
    assert_eq!(field(e), "style.custom");
    let e = reg
        .create_from_goal(CreateRequest {
            goal: " ".into(),
            ..CreateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(e), "goal");
    let e = reg
        .create_from_goal(CreateRequest {
            goal: "g".into(),
            variables: Some(vec!["ok".into(), "not ok".into()]),
            ..CreateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(e), "variables[1]");
    let e = reg
        .create_from_goal(CreateRequest {
            goal: "g".into(),
            save_as: Some("a//b".into()),
            ..CreateRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(field(e), "save_as");
    let e = reg
        .optimize("missing", OptimizeRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    // A static-only analysis calls no model.
    let a = reg
        .analyze(AnalyzeRequest {
            template: Some("Hi {{ name }}".into()),
            critique: Some(false),
            ..AnalyzeRequest::default()
        })
        .await
        .unwrap();
    assert!(!a.critique.available && a.critique.runs.is_empty());
}

#[tokio::test]
async fn mock_server_good_json() {
    let server = MockServer::start().await.unwrap();
    let reg = registry(vendor("tools-good"), Some(&server)).await;

    server.script("tools-good", [CRITIQUE]);
    let a = reg
        .analyze(AnalyzeRequest {
            template: Some("Classify {{ ticket }}".into()),
            ..AnalyzeRequest::default()
        })
        .await
        .unwrap();
    assert!(a.critique.available, "{:?}", a.critique);
    assert_eq!(a.critique.clarity.as_ref().unwrap().score, 8);
    assert_eq!(a.critique.specificity.as_ref().unwrap().score, 4);
    assert_eq!(
        a.critique.structure.as_ref().unwrap().reason,
        "Instructions and data are mixed."
    );
    assert_eq!(a.critique.suggestions.len(), 2);
    assert_eq!(a.critique.model.as_deref(), Some("vendor/tools-good"));
    assert_eq!(a.critique.runs.len(), 1);
    // The request reached the vendor as the rendered meta-prompt.
    let sent = server.requests().pop().unwrap();
    assert_eq!(sent.body["model"], "tools-good");
    let user = sent.body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("Classify {{ ticket }}"), "{user}");

    server.script(
        "tools-good",
        [r#"{"template": "Briefly classify {{ ticket }}.", "rationale": "Shorter."}"#],
    );
    let r = reg
        .remix(remix_req(
            "Please classify the following ticket: {{ ticket }}",
            RemixStyle::Concise,
        ))
        .await
        .unwrap();
    assert_eq!(
        r.template,
        Template::Text("Briefly classify {{ ticket }}.".into())
    );
    assert_eq!(r.rationale, "Shorter.");

    server.script(
        "tools-good",
        [r#"{"template": [{"role": "system", "content": "You triage tickets."}, {"role": "user", "content": "{{ ticket }}"}], "rationale": "Role first."}"#],
    );
    let c = reg
        .create_from_goal(CreateRequest {
            goal: "Triage tickets".into(),
            variables: Some(vec!["ticket".into()]),
            kind: Some(TemplateKind::Chat),
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(c.kind, TemplateKind::Chat);
    assert_eq!(c.rationale, "Role first.");
    assert!(c.saved.is_none());

    reg.create_version(
        "triage",
        NewVersion::new("classify {{ ticket }}")
            .with_config(json!({"provider": "mock", "temperature": 0.1})),
    )
    .await
    .unwrap();
    server.script(
        "tools-good",
        [r#"{"template": "Classify the ticket below as low, medium or high urgency.\n\n{{ ticket }}", "rationale": "Stated the labels."}"#],
    );
    let o = reg
        .optimize(
            "triage",
            OptimizeRequest {
                label: Some("latest".into()),
                ..OptimizeRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(o.version.version, 2);
    assert_eq!(
        o.version.config,
        json!({"provider": "mock", "temperature": 0.1})
    );
    assert!(
        o.version
            .commit_message
            .as_deref()
            .unwrap()
            .ends_with(": Stated the labels.")
    );
}

#[tokio::test]
async fn mock_server_bad_json_is_retried_once() {
    let server = MockServer::start().await.unwrap();
    let reg = registry(vendor("tools-bad"), Some(&server)).await;

    // Bad, then good: one retry, two runs, success.
    server.script(
        "tools-bad",
        [
            "I'd rather not.",
            r#"{"template": "Sum up {{ text }}", "rationale": "ok"}"#,
        ],
    );
    let r = reg
        .remix(remix_req("Summarize {{ text }}", RemixStyle::Formal))
        .await
        .unwrap();
    assert_eq!(r.runs.len(), 2);

    // Bad twice: remix refuses with malformed_response (HTTP 502).
    server.script("tools-bad", ["{not json", "{\"template\": 3}"]);
    let e = reg
        .remix(remix_req("Summarize {{ text }}", RemixStyle::Formal))
        .await
        .unwrap_err();
    let Error::Provider(p) = e else {
        panic!("not a provider error: {e}")
    };
    assert_eq!(p.kind, ProviderErrorKind::MalformedResponse);
    assert!(p.message.contains("2 attempts"), "{}", p.message);

    // A rewrite that drops a variable, twice: refused, saying which.
    let drop = r#"{"template": "Summarize", "rationale": "simpler"}"#;
    server.script("tools-bad", [drop, drop]);
    let e = reg
        .remix(remix_req("Summarize {{ text }}", RemixStyle::Concise))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("drops text"), "{e}");
    // …and one that invents one, for create with requested variables.
    let invent = r#"{"template": "Use {{ a }} and {{ b }}"}"#;
    server.script("tools-bad", [invent, invent]);
    let e = reg
        .create_from_goal(CreateRequest {
            goal: "g".into(),
            variables: Some(vec!["a".into()]),
            ..CreateRequest::default()
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invents b"), "{e}");

    // Optimize: nothing is created when the answers are unusable.
    reg.create_version("p", NewVersion::new("{{ x }}"))
        .await
        .unwrap();
    server.script("tools-bad", ["nope", "nope"]);
    assert!(
        reg.optimize(
            "p",
            OptimizeRequest {
                label: Some("latest".into()),
                ..Default::default()
            }
        )
        .await
        .is_err()
    );
    assert_eq!(reg.get_prompt("p").await.unwrap().latest_version, Some(1));

    // Analyze: the static report still comes back, with the critique unavailable.
    server.script(
        "tools-bad",
        ["{\"clarity\": {\"score\": 99, \"reason\": \"x\"}}", "[]"],
    );
    let a = reg
        .analyze(AnalyzeRequest {
            template: Some("Hi {{ name }}".into()),
            ..AnalyzeRequest::default()
        })
        .await
        .unwrap();
    assert!(!a.critique.available);
    assert_eq!(a.critique.runs.len(), 2);
    assert_eq!(a.variables, vec!["name"]);
}

#[tokio::test]
async fn mock_server_timeout_and_errors() {
    let server = MockServer::start().await.unwrap();

    // A timeout: unavailable (HTTP 503) for remix; analyze degrades.
    let reg = registry(
        vendor("slow-5000").with_timeout(Duration::from_millis(100)),
        Some(&server),
    )
    .await;
    let e = reg
        .remix(remix_req("Summarize {{ text }}", RemixStyle::Friendly))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    assert!(e.to_string().contains("timeout"), "{e}");
    let a = reg
        .analyze(AnalyzeRequest {
            template: Some("Hi {{ name }}".into()),
            ..AnalyzeRequest::default()
        })
        .await
        .unwrap();
    assert!(!a.critique.available);
    assert!(a.critique.reason.as_deref().unwrap().contains("timeout"));
    let failed = tool_runs(&reg, "_tools/remix").await;
    assert_eq!(failed.len(), 1, "a failed call is recorded as a run too");
    assert_eq!(failed[0].error.as_ref().unwrap().kind, "timeout");

    // A 503: unavailable.
    let reg = registry(vendor("error-503"), Some(&server)).await;
    let e = reg
        .create_from_goal(CreateRequest {
            goal: "g".into(),
            ..CreateRequest::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");

    // A 429 carries the vendor's retry hint.
    let reg = registry(vendor("error-429"), Some(&server)).await;
    let e = reg
        .remix(remix_req("{{ a }}", RemixStyle::Detailed))
        .await
        .unwrap_err();
    let Error::Unavailable { retry_after, .. } = e else {
        panic!("{e}")
    };
    assert_eq!(retry_after, Some(Duration::from_secs(20)));

    // A refusal that retrying cannot fix stays a provider error (HTTP 502).
    let reg = registry(vendor("error-401"), Some(&server)).await;
    let e = reg
        .remix(remix_req("{{ a }}", RemixStyle::Detailed))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Provider(ref p) if p.kind == ProviderErrorKind::Auth),
        "{e}"
    );

    // A tools provider that is not configured at all.
    let reg = registry(vendor("x"), None).await;
    let e = reg
        .remix(remix_req("{{ a }}", RemixStyle::Detailed))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Provider(ref p) if p.kind == ProviderErrorKind::NotConfigured),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_calls_seed_once() {
    let reg = registry(ToolsConfig::default(), None).await;
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let reg = reg.clone();
            tokio::spawn(async move {
                reg.remix(remix_req(
                    &format!("Say {{{{ x }}}} {i}"),
                    RemixStyle::Formal,
                ))
                .await
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let p = reg.get_prompt("_tools/remix").await.unwrap();
    assert_eq!(p.latest_version, Some(1), "seeded exactly once");
    assert_eq!(tool_runs(&reg, "_tools/remix").await.len(), 8);
}

/// `n` distinct variables, `{{a}}{{b}}…`, with names of 1 to 4 letters (under 8 bytes a
/// variable: 100,000 of them are ~790 KB, under the size limit).
fn many_variables(n: usize) -> String {
    (0..n)
        .map(|mut i| {
            let mut name = String::new();
            loop {
                name.push(char::from(b'a' + (i % 26) as u8));
                i /= 26;
                if i == 0 {
                    break;
                }
            }
            format!("{{{{{name}}}}}")
        })
        .collect()
}

/// Templates built to make checks slow are answered quickly: more than
/// `MAX_TEMPLATE_VARIABLES` distinct variables is refused (creating and analyzing
/// alike), and text of ~700 KB full of unclosed tags and lone braces — inputs that made
/// the old scans quadratic, a minute for 100,000 variables — is linted in one pass.
#[tokio::test]
async fn huge_templates_are_bounded_and_linear() {
    use prompt_core::MAX_TEMPLATE_VARIABLES;
    let reg = registry(ToolsConfig::default(), None).await;
    let many = many_variables(100_000);
    assert!((700_000..1_000_000).contains(&many.len()), "{}", many.len());
    let limit = MAX_TEMPLATE_VARIABLES.to_string();
    for e in [
        reg.create_version("huge", NewVersion::new(many.as_str()))
            .await
            .unwrap_err(),
        reg.analyze(AnalyzeRequest {
            template: Some(many.as_str().into()),
            critique: Some(false),
            ..AnalyzeRequest::default()
        })
        .await
        .unwrap_err(),
    ] {
        match e {
            Error::InvalidInput { field, message } => {
                assert_eq!(field, "template");
                assert!(
                    message.contains(&format!("more than {limit} distinct variables")),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        reg.get_prompt("huge").await,
        Err(Error::NotFound { .. })
    ));

    // At the limit: accepted, every variable kept in order of first use.
    let at_limit: String = (0..MAX_TEMPLATE_VARIABLES)
        .map(|i| format!("{{{{v{i}}}}} {{{{v0}}}} "))
        .collect();
    let v = reg
        .create_version("wide", NewVersion::new(at_limit.as_str()))
        .await
        .unwrap();
    assert_eq!(v.variables.len(), MAX_TEMPLATE_VARIABLES);
    assert_eq!(v.variables[0], "v0");
    assert_eq!(
        v.variables[MAX_TEMPLATE_VARIABLES - 1],
        format!("v{}", MAX_TEMPLATE_VARIABLES - 1)
    );

    for text in [
        format!("Answer. {}}}", "{ ".repeat(350_000)),
        format!("Answer. {}", "{{a ".repeat(175_000)),
        format!("Answer. {}}}}}", "{{x y ".repeat(120_000)),
        format!("Answer. {}", "{{".repeat(350_000)),
    ] {
        let a = reg
            .analyze(AnalyzeRequest {
                template: Some(text.as_str().into()),
                critique: Some(false),
                ..AnalyzeRequest::default()
            })
            .await
            .unwrap();
        // Each kind of finding is reported a bounded number of times.
        assert!(a.lints.len() < 20, "{:?}", a.lints);
    }
}
