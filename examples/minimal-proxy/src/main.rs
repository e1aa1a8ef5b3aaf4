//! The smallest OpenAI-compatible proxy on `cursor-connect`: `POST /v1/chat/completions`,
//! streamed, from one Cursor account's agent `Run`. No pool, no sessions, no dialects: the
//! library crates wired by hand, to show how they fit. `crates/cursor-proxy` is the real thing.
//!
//! ```sh
//! CURSOR_ACCESS_TOKEN=... cargo run -p minimal-proxy
//! curl -N http://127.0.0.1:8788/v1/chat/completions -H 'Content-Type: application/json' \
//!   -d '{"model":"composer-2.5","messages":[{"role":"user","content":"Hello!"}]}'
//! ```
//!
//! `CURSOR_BASE_URL` points it at another backend (such as `cursor-mock`), `MINIMAL_PROXY_LISTEN`
//! sets the address (port 0 picks one; the first line printed says which).

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use cursor_connect::{
    Credentials, CursorClient, DEFAULT_BASE_URL, Event, HistoryMessage, Run, RunRequest, ToolResult,
};
use serde::Deserialize;
use serde_json::json;

/// The part of a chat completions request this proxy reads.
#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
}

/// A message with plain text content.
#[derive(Debug, Deserialize)]
struct ChatMessage {
    role: String,
    content: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let token = std::env::var("CURSOR_ACCESS_TOKEN").map_err(|_| "set CURSOR_ACCESS_TOKEN")?;
    let base_url = std::env::var("CURSOR_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned());
    let listen =
        std::env::var("MINIMAL_PROXY_LISTEN").unwrap_or_else(|_| "127.0.0.1:8788".to_owned());

    // One client: one HTTP/2 connection to Cursor, reused by every request.
    let client = CursorClient::builder()
        .base_url(base_url)
        .credentials(Credentials::access_token(token))
        .build()?;
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(client);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("minimal-proxy on http://{}", listener.local_addr()?);
    // Small SSE events go out at once, not after the caller's delayed ACK (Nagle).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

/// `POST /v1/chat/completions`: one agent turn, streamed back as chat completion chunks.
async fn chat(State(client): State<CursorClient>, body: Bytes) -> Response {
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(400, &format!("invalid request: {e}")),
    };
    let model = req.model.clone();
    let run = match client.agent().run(run_request(req)).await {
        Ok(run) => run,
        // The classifier says what the failure means for an HTTP caller.
        Err(e) => {
            let status = e.classification().map_or(502, |c| c.status().as_u16());
            return error(status, &e.to_string());
        }
    };
    let chunks = futures_util::stream::unfold(Some((run, model)), next_chunk);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| error(500, "cannot build the response"))
}

/// The turn: system messages become the system prompt, the last message the user text, and the
/// ones before it the history (flattened into the prompt by `cursor-connect`).
fn run_request(req: ChatRequest) -> RunRequest {
    let mut system = Vec::new();
    let mut history = Vec::new();
    for m in req.messages {
        match m.role.as_str() {
            "system" | "developer" => system.push(m.content),
            "assistant" => history.push(HistoryMessage::Assistant(m.content)),
            _ => history.push(HistoryMessage::User(m.content)),
        }
    }
    let last = match history.pop() {
        Some(HistoryMessage::User(text)) => text,
        Some(other) => {
            history.push(other);
            String::new()
        }
        None => String::new(),
    };
    let mut run = RunRequest::new(req.model, last).history(history);
    if !system.is_empty() {
        run = run.system_prompt(system.join("\n\n"));
    }
    run
}

/// The next SSE bytes of the response: a chunk per text delta, then the final chunk and
/// `[DONE]`, or an error event if the turn fails (never a silent end).
async fn next_chunk(
    state: Option<(Run, String)>,
) -> Option<(Result<Bytes, Infallible>, Option<(Run, String)>)> {
    let (mut run, model) = state?;
    loop {
        let (delta, finish) = match run.next_event().await {
            Ok(Some(Event::TextDelta(text))) => (json!({"content": text}), None),
            Ok(Some(Event::ToolCall(call))) => {
                // This proxy offers the model no tools; say so and let the turn go on.
                let answer = ToolResult::error("this proxy runs no tools");
                if let Err(e) = run.respond(&call.id, answer).await {
                    return Some((Ok(error_event(&e.to_string())), None));
                }
                continue;
            }
            Ok(Some(_)) => continue,
            Ok(None) => (json!({}), Some("stop")),
            Err(e) => return Some((Ok(error_event(&e.to_string())), None)),
        };
        let chunk = json!({
            "object": "chat.completion.chunk", "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        let mut out = format!("data: {chunk}\n\n");
        if finish.is_some() {
            out.push_str("data: [DONE]\n\n");
            return Some((Ok(Bytes::from(out)), None));
        }
        return Some((Ok(Bytes::from(out)), Some((run, model))));
    }
}

fn error_event(message: &str) -> Bytes {
    let body = json!({"error": {"message": message, "type": "server_error"}});
    Bytes::from(format!("data: {body}\n\n"))
}

fn error(status: u16, message: &str) -> Response {
    let status =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    let body = json!({"error": {"message": message, "type": "invalid_request_error"}});
    (status, axum::Json(body)).into_response()
}
