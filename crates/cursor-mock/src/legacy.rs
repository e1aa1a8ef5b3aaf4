//! The legacy `aiserver.v1.ChatService` (reference/cursor-protocol.md §1.5, §2.1, §8.3):
//! `StreamUnifiedChatWithTools` as an HTTP/2 bidi stream, and its HTTP/1.1 forms
//! `StreamUnifiedChatWithToolsSSE` / `…Poll` fed by `BidiAppend`, with scenarios for a text
//! answer, a tool round trip and the sunset answers Cursor gives today.
//!
//! The scenario is picked by the `x-mock-scenario` header, else by the request's
//! `model_details.model_name` (a name below), else the text answer.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{Code, Decoder, Direction};
use cursor_proto::aiserver::v1 as ai;
use h2::RecvStream;
use h2::server::SendResponse;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};

use crate::error_spec::{DetailSpec, ERROR_DETAILS_TYPE, ErrorSpec};
use crate::io::{Inbound, Out, READ_AHEAD};
use crate::record::MessageKind;
use crate::server::{SCENARIO_HEADER, Shared};
use crate::unary::Reply;

/// Scenario: thinking, then [`LEGACY_TEXT`] in pieces, then a clean end (also the default).
pub const LEGACY_TEXT_SCENARIO: &str = "legacy-text";
/// Scenario: one `client_side_tool_v2_call` (MCP, arguments streamed in two frames) for the
/// first declared MCP tool (`mock_echo` if none), then `LEGACY_TOOL_PREFIX` + the result.
pub const LEGACY_TOOL_SCENARIO: &str = "legacy-tool";
/// Scenario: the sunset answer for composer models (2026-07 probe): one end-stream,
/// `resource_exhausted` with `ERROR_GPT_4_VISION_PREVIEW_RATE_LIMIT` titled "Update Required".
pub const LEGACY_UPDATE_REQUIRED: &str = "legacy-update-required";
/// Scenario: the sunset answer for Anthropic / OpenAI models: `ERROR_UNSUPPORTED_REGION`
/// (the Connect code was not recorded; the mock uses `permission_denied`).
pub const LEGACY_UNSUPPORTED_REGION: &str = "legacy-unsupported-region";
/// Scenario: what Cursor 2.0.77 got (capture E16): `ERROR_OUTDATED_CLIENT` "Outdated Client
/// Error" (the Connect code was not recorded; the mock uses `failed_precondition`).
pub const LEGACY_OUTDATED_CLIENT: &str = "legacy-outdated-client";
/// The text answer of [`LEGACY_TEXT_SCENARIO`].
pub const LEGACY_TEXT: &str = "Hello from the legacy ChatService.";
/// The thinking of [`LEGACY_TEXT_SCENARIO`].
pub const LEGACY_THINKING: &str = "Answering the old way.";
/// What [`LEGACY_TOOL_SCENARIO`] says before the tool's result.
pub const LEGACY_TOOL_PREFIX: &str = "legacy tool said: ";
/// The tool call id of [`LEGACY_TOOL_SCENARIO`].
pub const LEGACY_TOOL_CALL_ID: &str = "legacy-call-1";

/// Serves one HTTP/2 `StreamUnifiedChatWithTools` stream.
pub(crate) async fn serve_h2(
    shared: Arc<Shared>,
    call: usize,
    scenario: Option<String>,
    body: RecvStream,
    respond: SendResponse<Bytes>,
) {
    let out = Out::new(respond, shared.settings.write_timeout);
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let limit = shared.settings.max_message_size;
    let reader = tokio::spawn(read_raw(body, limit, tx));
    drive(&shared, call, scenario, out, rx).await;
    reader.abort();
}

/// Starts a legacy turn for the HTTP/1.1 forms: binds `request_id`'s appends to it; returns
/// the turn's response ends like [`crate::sse::start_turn`].
pub(crate) async fn start_turn(
    shared: &Arc<Shared>,
    call: usize,
    headers: &http::HeaderMap,
    request_id: &str,
) -> Result<crate::sse::TurnOutput, Reply> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    if let Err(error) = shared.bidi.claim(shared, request_id, tx, call, true).await {
        shared.recorder.violation(call, error.message().to_owned());
        return Err(Reply::error(&error, None));
    }
    let scenario = scenario_header(headers);
    let (head_tx, head_rx) = oneshot::channel();
    let (body_tx, body_rx) = mpsc::channel(16);
    let out = Out::http1(head_tx, body_tx, shared.settings.write_timeout);
    let turn_shared = shared.clone();
    let request_id = request_id.to_owned();
    shared.spawn_turn(async move {
        drive(&turn_shared, call, scenario, out, rx).await;
        turn_shared.bidi.end(&request_id).await;
        turn_shared.recorder.update(call, |c| c.finished = true);
    });
    Ok((head_rx, body_rx))
}

fn scenario_header(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(SCENARIO_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The kind a legacy client message is recorded as.
fn kind_of(payload: &[u8]) -> MessageKind {
    use ai::stream_unified_chat_request_with_tools::Request;
    match ai::StreamUnifiedChatRequestWithTools::decode(payload).map(|m| m.request) {
        Ok(Some(Request::StreamUnifiedChatRequest(_))) => MessageKind::LegacyChatRequest,
        Ok(Some(Request::ClientSideToolV2Result(_))) => MessageKind::LegacyToolResult,
        Ok(None) => MessageKind::Empty,
        Err(_) => MessageKind::Undecodable,
    }
}

/// Reads the request body's envelopes and forwards each payload as [`Inbound::Raw`].
async fn read_raw(mut body: RecvStream, limit: usize, tx: mpsc::Sender<Inbound>) {
    let mut decoder = Decoder::new(Direction::Request).max_message_size(limit);
    let mut buf = BytesMut::new();
    loop {
        let Some(chunk) = body.data().await else {
            let _ = tx.send(Inbound::Closed).await;
            return;
        };
        let Ok(chunk) = chunk else {
            let _ = tx.send(Inbound::Reset).await;
            return;
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if tx.send(Inbound::Raw(frame.payload)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Inbound::BadFrame(e.to_string())).await;
                    return;
                }
            }
        }
    }
}

/// The next client message, within the reply timeout; `Err` is the end-stream to send.
async fn next_message(
    shared: &Shared,
    call: usize,
    rx: &mut mpsc::Receiver<Inbound>,
    limit: std::time::Duration,
) -> Result<ai::StreamUnifiedChatRequestWithTools, Option<ErrorSpec>> {
    loop {
        let got = tokio::time::timeout(limit, rx.recv()).await;
        let payload = match got {
            Ok(Some(Inbound::Raw(payload))) => payload,
            Ok(Some(Inbound::Closed)) => continue,
            Ok(Some(Inbound::Reset) | None) => return Err(None),
            Ok(Some(other)) => {
                let message = format!("legacy chat: bad client message: {other:?}");
                shared.recorder.violation(call, message.clone());
                return Err(Some(ErrorSpec::new(Code::InvalidArgument, message)));
            }
            Err(_) => {
                return Err(Some(ErrorSpec::new(
                    Code::DeadlineExceeded,
                    "no client message arrived",
                )));
            }
        };
        shared
            .recorder
            .push(call, kind_of(&payload), payload.clone());
        return ai::StreamUnifiedChatRequestWithTools::decode(payload).map_err(|e| {
            let message = format!("undecodable StreamUnifiedChatRequestWithTools: {e}");
            shared.recorder.violation(call, message.clone());
            Some(ErrorSpec::new(Code::InvalidArgument, message))
        });
    }
}

/// Plays one legacy turn on `out`.
async fn drive(
    shared: &Shared,
    call: usize,
    scenario: Option<String>,
    mut out: Out,
    mut rx: mpsc::Receiver<Inbound>,
) {
    use ai::stream_unified_chat_request_with_tools::Request;
    if out.ensure_headers().is_err() {
        return;
    }
    let reply = shared.settings.reply_timeout;
    let first = match next_message(shared, call, &mut rx, reply).await {
        Ok(m) => m,
        Err(error) => return end_with(&mut out, error).await,
    };
    let Some(Request::StreamUnifiedChatRequest(request)) = first.request else {
        let message = "the first message must be a stream_unified_chat_request".to_owned();
        shared.recorder.violation(call, message.clone());
        return end_with(
            &mut out,
            Some(ErrorSpec::new(Code::InvalidArgument, message)),
        )
        .await;
    };
    let model = request
        .model_details
        .as_ref()
        .and_then(|m| m.model_name.clone())
        .unwrap_or_default();
    let name = scenario.unwrap_or(model);
    let played = match name.as_str() {
        LEGACY_UPDATE_REQUIRED => return end_with(&mut out, Some(sunset(&name))).await,
        LEGACY_UNSUPPORTED_REGION => return end_with(&mut out, Some(sunset(&name))).await,
        LEGACY_OUTDATED_CLIENT => return end_with(&mut out, Some(sunset(&name))).await,
        LEGACY_TOOL_SCENARIO => tool_turn(shared, call, &request, &mut out, &mut rx).await,
        _ => text_turn(&mut out).await,
    };
    match played {
        Ok(()) => {
            let _ = out.end_stream(b"{}").await;
        }
        Err(error) => end_with(&mut out, error).await,
    }
}

async fn end_with(out: &mut Out, error: Option<ErrorSpec>) {
    match error {
        Some(error) => {
            let _ = out.end_stream(&error.end_stream_json()).await;
        }
        None => out.reset(0x8),
    }
}

fn server(response: ai::stream_unified_chat_response_with_tools::Response) -> Vec<u8> {
    ai::StreamUnifiedChatResponseWithTools {
        response: Some(response),
        ..Default::default()
    }
    .encode_to_vec()
}

fn chat(response: ai::StreamUnifiedChatResponse) -> Vec<u8> {
    server(
        ai::stream_unified_chat_response_with_tools::Response::StreamUnifiedChatResponse(response),
    )
}

fn text(t: &str) -> Vec<u8> {
    chat(ai::StreamUnifiedChatResponse {
        text: t.to_owned(),
        ..Default::default()
    })
}

type Played = Result<(), Option<ErrorSpec>>;

async fn send(out: &mut Out, message: Vec<u8>) -> Played {
    out.message(&message).await.map_err(|_| None)
}

async fn text_turn(out: &mut Out) -> Played {
    let start = ai::stream_unified_chat_response_with_tools::Response::StreamStart(
        ai::StreamStart::default(),
    );
    send(out, server(start)).await?;
    let thinking = ai::conversation_message::Thinking {
        text: LEGACY_THINKING.to_owned(),
        ..Default::default()
    };
    let thinking = chat(ai::StreamUnifiedChatResponse {
        thinking: Some(thinking),
        ..Default::default()
    });
    send(out, thinking).await?;
    let words: Vec<&str> = LEGACY_TEXT.split_inclusive(' ').collect();
    for piece in words.chunks(2) {
        send(out, text(&piece.concat())).await?;
    }
    Ok(())
}

async fn tool_turn(
    shared: &Shared,
    call: usize,
    request: &ai::StreamUnifiedChatRequest,
    out: &mut Out,
    rx: &mut mpsc::Receiver<Inbound>,
) -> Played {
    use ai::stream_unified_chat_request_with_tools::Request;
    let tool = request
        .mcp_tools
        .first()
        .cloned()
        .unwrap_or_else(|| ai::mcp_params::Tool {
            name: "mock_echo".to_owned(),
            ..Default::default()
        });
    let args = r#"{"query":"ping"}"#;
    let (head, tail) = args.split_at(args.len() / 2);
    for (part, last) in [(head, false), (tail, true)] {
        let frame = ai::ClientSideToolV2Call {
            tool: ai::ClientSideToolV2::Mcp as i32,
            tool_call_id: LEGACY_TOOL_CALL_ID.to_owned(),
            name: tool.name.clone(),
            raw_args: part.to_owned(),
            is_streaming: true,
            is_last_message: last,
            params: Some(ai::client_side_tool_v2_call::Params::McpParams(
                ai::McpParams {
                    tools: vec![tool.clone()],
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let message = server(
            ai::stream_unified_chat_response_with_tools::Response::ClientSideToolV2Call(frame),
        );
        send(out, message).await?;
    }
    let answer = next_message(shared, call, rx, shared.settings.tool_timeout).await?;
    let Some(Request::ClientSideToolV2Result(result)) = answer.request else {
        let message = "expected the client_side_tool_v2_result".to_owned();
        shared.recorder.violation(call, message.clone());
        return Err(Some(ErrorSpec::new(Code::InvalidArgument, message)));
    };
    if result.tool_call_id != LEGACY_TOOL_CALL_ID {
        let message = format!("tool result for unknown call {:?}", result.tool_call_id);
        shared.recorder.violation(call, message.clone());
        return Err(Some(ErrorSpec::new(Code::InvalidArgument, message)));
    }
    let said = match (&result.result, &result.error) {
        (Some(ai::client_side_tool_v2_result::Result::McpResult(r)), _) => r.result.clone(),
        (_, Some(e)) => format!("error: {}", e.model_visible_error_message),
        _ => "(nothing)".to_owned(),
    };
    send(out, text(&format!("{LEGACY_TOOL_PREFIX}{said}"))).await
}

/// The end-stream error of a sunset scenario.
fn sunset(name: &str) -> ErrorSpec {
    let (code, error, title, detail) = match name {
        LEGACY_UNSUPPORTED_REGION => (
            Code::PermissionDenied,
            64,
            "Unsupported region",
            "This model is not available in your region.",
        ),
        LEGACY_OUTDATED_CLIENT => (
            Code::FailedPrecondition,
            30,
            "Outdated Client Error",
            "Your version of Cursor no longer supports this action.",
        ),
        _ => (
            Code::ResourceExhausted,
            28,
            "Update Required",
            "Please update Cursor to continue.",
        ),
    };
    let details = ai::ErrorDetails {
        error,
        details: Some(ai::CustomErrorDetails {
            title: title.to_owned(),
            detail: detail.to_owned(),
            is_retryable: Some(false),
            show_request_id: Some(false),
            ..Default::default()
        }),
        is_expected: Some(true),
    };
    let detail = DetailSpec::new(ERROR_DETAILS_TYPE, details.encode_to_vec());
    ErrorSpec::new(code, "Error").with_detail(detail)
}
