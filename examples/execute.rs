//! Execute prompts end to end with no network: a mock vendor server speaking the
//! OpenAI wire format runs in-process, an OpenAI provider points at it, and every
//! execution is recorded as a run (latency, tokens, cost, status). Then the same with
//! the in-process `mock` provider, a failure, a streamed call and a background run.
//!
//! Run with `cargo run -p prompt-registry-examples --example execute`.

use std::time::Duration;

use prompt_core::{
    ChatMessage, ExecuteOptions, NewVersion, Registry, Role, Run, RunStatus, Selector, Variables,
    WorkerPoolConfig,
};
use prompt_providers::mock_server::MockServer;
use prompt_providers::{OpenAiConfig, ProvidersConfig};

fn show(what: &str, run: &Run) -> Result<(), serde_json::Error> {
    println!("--- {what}\n{}", serde_json::to_string_pretty(run)?);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The mock vendor server on 127.0.0.1 and a free port.
    let server = MockServer::start().await?;
    println!("mock vendor server at {}", server.url());

    // `openai` pointed at it (the key only travels in the Authorization header), the
    // in-process `mock`, the retry loop and the built-in price table.
    let providers = ProvidersConfig {
        openai: Some(OpenAiConfig {
            base_url: server.openai_base_url(),
            ..OpenAiConfig::openai("sk-demo-not-a-real-key")
        }),
        ..Default::default()
    }
    .build()?;

    let (store, runs) = prompt_store::memory();
    let reg = Registry::new(store, runs).await?.with_providers(providers);
    reg.create_version(
        "support/triage",
        NewVersion::new(vec![
            ChatMessage::new(
                Role::System,
                "You triage support tickets. Answer with one word.",
            ),
            ChatMessage::new(Role::User, "Ticket from {{ customer }}: {{ ticket }}"),
        ])
        .with_config(serde_json::json!({
            "provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 50
        }))
        .with_labels(["production"]),
    )
    .await?;

    let mut vars = Variables::new();
    vars.insert("customer".into(), "ACME".into());
    vars.insert("ticket".into(), "The printer is on fire".into());

    // 1. Through the OpenAI module, over HTTP, to the mock server.
    let done = reg
        .execute(
            "support/triage",
            &Selector::default(),
            &vars,
            ExecuteOptions::default(),
        )
        .await?;
    show("openai (mock server)", &done.run)?;

    // 2. The in-process mock provider, chosen per call.
    let done = reg
        .execute(
            "support/triage",
            &Selector::default(),
            &vars,
            ExecuteOptions::provider("mock", "mock/echo"),
        )
        .await?;
    show("mock (in-process)", &done.run)?;

    // 3. A vendor error is a failed run, with the typed error alongside.
    let opts = ExecuteOptions {
        model: Some("error-401".into()),
        ..Default::default()
    };
    let done = reg
        .execute("support/triage", &Selector::default(), &vars, opts)
        .await?;
    show("failed run", &done.run)?;
    if let Some(e) = &done.error {
        println!("typed error: {e}");
    }

    // 4. Streamed: deltas as they come, time to first token recorded.
    let opts = ExecuteOptions {
        stream: Some(true),
        ..Default::default()
    };
    print!("--- streamed deltas: ");
    let done = reg
        .execute_streaming("support/triage", &Selector::default(), &vars, opts, |d| {
            print!("[{d}]")
        })
        .await?;
    println!();
    println!(
        "ttft {:?} ms, latency {:?} ms, status {}",
        done.run.time_to_first_token_ms,
        done.run.latency_ms,
        done.run.status.as_str()
    );

    // 5. In the background: `submit` stores a pending run, a worker pool executes it.
    let pending = reg
        .submit(
            "support/triage",
            &Selector::default(),
            &vars,
            ExecuteOptions::default(),
        )
        .await?;
    println!("--- submitted {} ({})", pending.id, pending.status.as_str());
    let pool = reg.start_workers(WorkerPoolConfig::default()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let run = loop {
        let run = reg.get_run(pending.id).await?;
        if run.status.is_terminal() || tokio::time::Instant::now() > deadline {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    pool.shutdown().await;
    println!("background run is {}", run.status.as_str());
    if run.status != RunStatus::Completed {
        return Err("the background run did not complete".into());
    }
    println!(
        "the mock server answered {} requests",
        server.request_count()
    );
    Ok(())
}
