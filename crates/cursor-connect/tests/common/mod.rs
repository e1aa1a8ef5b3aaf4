//! Helpers shared by the integration tests: a client for a mock, and a run collector.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use bytes::Bytes;
use cursor_connect::{
    Credentials, CursorClient, Error, Event, Run, RunRequest, ToolCall, ToolDefinition, ToolResult,
    Usage,
};

/// The token tests use; the log-redaction test looks for it.
pub const TOKEN: &str = "test-token-DO-NOT-LEAK-7f3a";

/// Every test run must finish within this.
pub const RUN_DEADLINE: Duration = Duration::from_secs(20);

pub fn client(url: &str) -> CursorClient {
    CursorClient::builder()
        .base_url(url)
        .credentials(Credentials::access_token(TOKEN))
        .build()
        .expect("client builds")
}

pub fn tool(name: &str) -> ToolDefinition {
    ToolDefinition::new(
        name,
        format!("the {name} tool"),
        serde_json::json!({"type": "object", "properties": {"query": {"type": "string"}}}),
    )
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub text: String,
    pub thinking: String,
    pub thinking_completed: usize,
    pub notices: Vec<String>,
    pub tool_calls: Vec<ToolCall>,
    pub tokens: u64,
    pub checkpoints: Vec<Bytes>,
    pub usage: Option<Usage>,
    pub events: usize,
    /// `Ok(())` for a clean end, else the error.
    pub end: Option<Result<(), Error>>,
}

/// Reads a run to its end. Tool calls are answered by `answer` once `batch` calls are
/// outstanding (so parallel calls are really outstanding together).
pub async fn collect_with(
    run: &mut Run,
    batch: usize,
    mut answer: impl FnMut(&ToolCall) -> ToolResult,
) -> Outcome {
    let mut out = Outcome::default();
    let mut waiting: Vec<ToolCall> = Vec::new();
    let fut = async {
        loop {
            match run.next_event().await {
                Ok(Some(ev)) => {
                    out.events += 1;
                    match ev {
                        Event::TextDelta(t) => out.text.push_str(&t),
                        Event::ThinkingDelta(t) => out.thinking.push_str(&t),
                        Event::ThinkingCompleted => out.thinking_completed += 1,
                        Event::Notice(n) => out.notices.push(n),
                        Event::TokenDelta(n) => out.tokens += n,
                        Event::Checkpoint(c) => out.checkpoints.push(c),
                        Event::TurnEnded(u) => out.usage = Some(u),
                        Event::ToolCall(call) => {
                            out.tool_calls.push(call.clone());
                            waiting.push(call);
                            if waiting.len() >= batch {
                                for call in waiting.drain(..) {
                                    run.respond(&call.id, answer(&call)).await.expect("respond");
                                }
                            }
                        }
                        other => panic!("unexpected event {other:?}"),
                    }
                }
                Ok(None) => {
                    out.end = Some(Ok(()));
                    break;
                }
                Err(e) => {
                    out.end = Some(Err(e));
                    break;
                }
            }
        }
    };
    tokio::time::timeout(RUN_DEADLINE, fut)
        .await
        .expect("run finished in time");
    out
}

pub async fn collect(run: &mut Run) -> Outcome {
    collect_with(run, 1, |c| {
        ToolResult::text(format!("result of {}", c.name))
    })
    .await
}

/// One "hi" turn that must end cleanly on `transport` after a fallback whose reported reason
/// contains `reason`; returns the outcome for the caller's own checks.
pub async fn turn_after_fallback(
    client: &CursorClient,
    transport: cursor_connect::Transport,
    reason: &str,
) -> Outcome {
    let mut run = tokio::time::timeout(
        RUN_DEADLINE,
        client.agent().run(RunRequest::new("composer-2.5", "hi")),
    )
    .await
    .expect("run opened in time")
    .expect("run opens");
    let out = collect(&mut run).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(run.transport(), transport);
    let reported = run.fallback_reason().expect("fallback reported");
    assert!(reported.contains(reason), "{reported}");
    out
}

pub async fn run_to_end(client: &CursorClient, req: RunRequest) -> Outcome {
    let mut run = tokio::time::timeout(RUN_DEADLINE, client.agent().run(req))
        .await
        .expect("run opened in time")
        .expect("run opens");
    collect(&mut run).await
}

pub fn expect_error(o: &Outcome) -> Error {
    match &o.end {
        Some(Err(e)) => e.clone(),
        other => panic!("expected an error, got {other:?} after {:?}", o.text),
    }
}
