//! Core benchmarks: template rendering and label resolution on the memory store.
//!
//! `cargo bench -p prompt-registry-benches --bench core`; results in `BENCHMARKS.md`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use prompt_core::{NewVersion, Registry, Selector, TemplateFormat, Variables, template};
use serde_json::json;

/// A ~1 KB prompt using 5 variables, with JSON and code in it like real prompts.
fn kb_template() -> String {
    let mut t = String::from(
        "You are {{ persona }}, a support assistant for {{ company }}.\n\
         Answer the customer's question below in {{ language }}.\n\
         Output JSON like {\"answer\": \"...\", \"confidence\": 0.0}.\n",
    );
    while t.len() < 900 {
        t.push_str("Be precise, cite the docs, never invent facts; keep answers short. ");
    }
    t.push_str("\nCustomer tier: {{ tier }}\nQuestion: {{ question }}\n");
    t
}

fn vars() -> Variables {
    match json!({
        "persona": "Ada", "company": "Acme", "language": "English",
        "tier": "gold", "question": "How do I reset my password?"
    }) {
        serde_json::Value::Object(m) => m,
        _ => Variables::new(),
    }
}

fn render(c: &mut Criterion) {
    let t = kb_template();
    let v = vars();
    let mut g = c.benchmark_group("render_1kb_5vars");
    g.bench_function("mustache_scanner", |b| {
        b.iter(|| template::render_mustache(black_box(&t), black_box(&v)))
    });
    g.bench_function("minijinja_strict_compile_and_render", |b| {
        b.iter(|| template::render(black_box(&t), TemplateFormat::Jinja, black_box(&v)))
    });
    // minijinja with the template compiled once, for a fair comparison of render alone.
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let _ = env.add_template("t", &t);
    g.bench_function("minijinja_precompiled_render", |b| {
        b.iter(|| {
            env.get_template("t")
                .and_then(|tpl| tpl.render(minijinja::value::Serde(black_box(&v))))
        })
    });
    g.finish();
}

fn resolve(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    let Ok(reg) = rt.block_on(async {
        let (store, runs) = prompt_store::memory();
        let reg = Registry::new(store, runs).await?;
        for i in 0..100 {
            reg.create_version(
                &format!("other/{i}"),
                NewVersion::new("x").with_labels(["production"]),
            )
            .await?;
        }
        reg.create_version(
            "support/triage",
            NewVersion::new(kb_template()).with_labels(["production"]),
        )
        .await?;
        Ok::<_, prompt_core::Error>(reg)
    }) else {
        return;
    };
    let sel = Selector::default();
    c.bench_function("resolve_label_memory", |b| {
        b.to_async(&rt)
            .iter(|| async { reg.resolve(black_box("support/triage"), &sel).await })
    });
}

/// A name of 1 to 4 letters for `i`.
fn short_name(mut i: u32) -> String {
    let mut name = String::new();
    loop {
        name.push(char::from(b'a' + (i % 26) as u8));
        i /= 26;
        if i == 0 {
            return name;
        }
    }
}

/// Checking and linting templates built to be slow (issue 20, defect 7): ~790 KB of
/// 100,000 distinct variables (refused above the limit), 1,000 variables (the limit),
/// and lone braces / unclosed tags on one line, which made the old scans quadratic.
fn huge_templates(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    let Ok(reg) = rt.block_on(async {
        let (store, runs) = prompt_store::memory();
        Registry::new(store, runs).await
    }) else {
        return;
    };
    let cases = [
        (
            "100k_variables",
            // Short names, so that the 100,000 fit under the 1 MB size limit (~790 KB)
            // and the refusal is the variable limit's.
            (0..100_000_u32)
                .map(|i| format!("{{{{{}}}}}", short_name(i)))
                .collect::<String>(),
        ),
        (
            "1k_variables",
            (0..1_000)
                .map(|i| format!("{{{{v{i}}}}} "))
                .collect::<String>(),
        ),
        (
            "lone_braces_700kb",
            format!("Answer. {}}}", "{ ".repeat(350_000)),
        ),
        (
            "unclosed_tags_700kb",
            format!("Answer. {}", "{{a ".repeat(175_000)),
        ),
    ];
    let mut g = c.benchmark_group("huge_templates");
    g.sample_size(10);
    for (name, t) in &cases {
        let template = prompt_core::Template::Text(t.clone());
        g.bench_function(format!("check/{name}"), |b| {
            b.iter(|| black_box(&template).check(TemplateFormat::Mustache))
        });
        g.bench_function(format!("analyze/{name}"), |b| {
            b.iter(|| {
                rt.block_on(reg.analyze(prompt_core::AnalyzeRequest {
                    template: Some(black_box(&template).clone()),
                    critique: Some(false),
                    ..Default::default()
                }))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, render, resolve, huge_templates);
criterion_main!(benches);
