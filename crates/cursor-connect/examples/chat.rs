//! Streams one agent turn and prints it.
//!
//! ```text
//! cargo run -p cursor-connect --example chat                      # against the in-process mock
//! cargo run -p cursor-connect --example chat -- "Explain HTTP/2"   # your own prompt
//! CURSOR_ACCESS_TOKEN=... CURSOR_MODEL=composer-2.5 \
//!     cargo run -p cursor-connect --example chat -- "Hi"           # against Cursor
//! ```
//!
//! Reasoning goes to stderr (dimmed), the answer to stdout, usage at the end.

use std::io::Write as _;

use cursor_connect::{Credentials, CursorClient, Event, RunRequest, ToolResult};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let prompt = if prompt.is_empty() {
        "Say hello in one sentence.".to_owned()
    } else {
        prompt
    };
    let model = std::env::var("CURSOR_MODEL").unwrap_or_else(|_| "composer-2.5".to_owned());

    // With a token, talk to Cursor; without one, to a mock backend started right here.
    let has_token = ["CURSOR_ACCESS_TOKEN", "CURSOR_AUTH_TOKEN"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
    let mut _mock = None;
    let client = if has_token {
        let mut b = CursorClient::builder().credentials(Credentials::from_env()?);
        if let Ok(url) = std::env::var("CURSOR_BASE_URL") {
            b = b.base_url(url);
        }
        b.build()?
    } else {
        let mock = cursor_mock::MockServer::start(cursor_mock::Scenario::default()).await?;
        eprintln!(
            "(no CURSOR_ACCESS_TOKEN: using the mock backend at {})",
            mock.url()
        );
        let client = CursorClient::builder()
            .base_url(mock.url())
            .credentials(Credentials::access_token("mock-token"))
            .build()?;
        _mock = Some(mock);
        client
    };

    let mut run = client.agent().run(RunRequest::new(model, prompt)).await?;
    let mut stdout = std::io::stdout();
    let result = loop {
        match run.next_event().await {
            Ok(Some(Event::TextDelta(text))) => {
                print!("{text}");
                stdout.flush()?;
            }
            Ok(Some(Event::ThinkingDelta(text))) => eprint!("\x1b[2m{text}\x1b[0m"),
            Ok(Some(Event::ThinkingCompleted)) => eprintln!(),
            Ok(Some(Event::Notice(text))) => eprintln!("[notice] {text}"),
            Ok(Some(Event::ToolCall(call))) => {
                // This example declares no tools; say so if the model asks anyway.
                run.respond(&call.id, ToolResult::error("no tools in this example"))
                    .await?;
            }
            Ok(Some(Event::TurnEnded(u))) => {
                println!();
                eprintln!(
                    "[usage] input {} (cache read {}, write {}), output {}, reasoning {}",
                    u.input_tokens,
                    u.cache_read_tokens,
                    u.cache_write_tokens,
                    u.output_tokens,
                    u.reasoning_tokens
                );
            }
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = result {
        eprintln!("\nerror: {e}");
        if let Some(c) = e.classification() {
            eprintln!(
                "  http status {}, category {:?}, advice {:?}",
                c.status(),
                c.category(),
                c.advice()
            );
        }
        std::process::exit(1);
    }
    Ok(())
}
