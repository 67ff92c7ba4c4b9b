//! `mock-llm-server [--port N]`: a mock OpenAI / Anthropic / Gemini server on
//! 127.0.0.1 (a free port by default). Prints its base URLs, serves until Ctrl-C.
//! See `prompt_providers::mock_server` for the behaviours model names select.

use std::net::SocketAddr;

use prompt_providers::MockServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" | "-p" => {
                port = args
                    .next()
                    .ok_or("--port needs a value")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?;
            }
            "--help" | "-h" => {
                println!("usage: mock-llm-server [--port N]");
                return Ok(());
            }
            other => return Err(format!("unknown argument '{other}'").into()),
        }
    }
    let server = MockServer::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("{}", server.url());
    eprintln!("OpenAI:    OPENAI_BASE_URL={}", server.openai_base_url());
    eprintln!(
        "Anthropic: ANTHROPIC_BASE_URL={}",
        server.anthropic_base_url()
    );
    eprintln!("Gemini:    GEMINI_BASE_URL={}", server.gemini_base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
