//! Embed the registry in memory: create a prompt, two versions, move `production`,
//! render, log a run, print stats.
//!
//! Run with `cargo run --example quickstart`.

use prompt_core::{
    NewPrompt, NewRun, NewVersion, Registry, RunStatus, Selector, StatsQuery, Variables,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (store, runs) = prompt_store::memory();
    let reg = Registry::new(store, runs).await?;

    reg.create_prompt(NewPrompt {
        name: "support/triage".into(),
        description: Some("Routes tickets".into()),
        tags: vec!["support".into()],
    })
    .await?;
    let v1 = reg
        .create_version(
            "support/triage",
            NewVersion::new("Classify this ticket: {{ ticket }}")
                .with_config(serde_json::json!({"provider": "mock", "model": "mock/echo"}))
                .with_labels(["production"]),
        )
        .await?;
    let v2 = reg
        .create_version(
            "support/triage",
            NewVersion::new(
                "You are a triage bot. Classify: {{ ticket }} (priority: {{ priority }})",
            )
            .with_commit_message("add priority"),
        )
        .await?;
    println!("created versions {} and {}", v1.version, v2.version);

    let moved = reg
        .set_label(
            "support/triage",
            "production",
            v2.version,
            prompt_core::LabelExpect::Any,
            Some("quickstart"),
        )
        .await?;
    println!(
        "moved production: {:?} -> {:?}",
        moved.from_version, moved.to_version
    );

    let mut vars = Variables::new();
    vars.insert("ticket".into(), "The printer is on fire".into());
    vars.insert("priority".into(), "high".into());
    let (version, rendered) = reg
        .render("support/triage", &Selector::default(), &vars)
        .await?;
    println!(
        "rendered v{}: {}",
        version.version,
        serde_json::to_string(&rendered)?
    );

    let mut run = NewRun::with_status(RunStatus::Completed);
    run.prompt = Some("support/triage".into());
    run.version = Some(version.version);
    run.label = Some("production".into());
    run.provider = Some("openai".into());
    run.model = Some("gpt-4o-mini".into());
    run.variables = serde_json::Value::Object(vars);
    run.input = rendered.to_json();
    run.output = Some("hardware/urgent".into());
    run.latency_ms = Some(120);
    run.input_tokens = Some(18);
    run.output_tokens = Some(3);
    run.cost_usd = Some("0.0000045".parse()?);
    let logged = reg.log_run(run).await?;
    println!("logged run {}", logged.id);

    let stats = reg.stats(&StatsQuery::prompt("support/triage")).await?;
    println!("stats: {}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}
