//! The legacy `aiserver.v1.ChatService` chat call, `StreamUnifiedChatWithTools`
//! (reference/cursor-protocol.md §1.5, §2.1, §8.3): one request message built from a
//! [`RunRequest`], text, thinking and `client_side_tool_v2_call`s out, tool results back on
//! the same call. Over HTTP/2 it is one bidi stream; over HTTP/1.1 the
//! `StreamUnifiedChatWithToolsSSE` (or `…Poll`) stream plus `BidiAppend`, as agent runs.
//!
//! Cursor is sunsetting this service: in 2026 it answers with "Update Required",
//! `ERROR_UNSUPPORTED_REGION` or `ERROR_OUTDATED_CLIENT`. Those errors classify as an
//! outdated client/service whose message tells the user to use the agent service
//! ([`CursorClient::agent`](crate::CursorClient::agent)), which is what new code should call.

mod request;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use cursor_connect_frame::{Code, ConnectError, Encoding, TransportCause, TransportKind};
use cursor_connect_h2::CallOptions;
use cursor_connect_http1::ShimOptions;
use cursor_proto::aiserver::v1 as ai;
use cursor_proto::paths;
use prost::Message as _;

use crate::client::ClientInner;
use crate::config::HeaderStyle;
use crate::error::{Error, ErrorKind};
use crate::ids::{RequestIds, uuid_v4};
use crate::run::{Event, RecvSide, RunRequest, SendSide, ToolCall, ToolResult};
use crate::transport::Transport;

use ai::stream_unified_chat_response_with_tools::Response;

/// Starts legacy ChatService calls; get one from
/// [`CursorClient::legacy_chat`](crate::CursorClient::legacy_chat).
#[derive(Clone)]
pub struct LegacyChatClient {
    pub(crate) inner: Arc<ClientInner>,
}

impl fmt::Debug for LegacyChatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyChatClient").finish_non_exhaustive()
    }
}

impl LegacyChatClient {
    /// Opens a `StreamUnifiedChatWithTools` call with the IDE header set (checksum included,
    /// whatever the client's [`HeaderStyle`]) on the client's transport (`Http2`, or the
    /// HTTP/1.1 SSE / poll forms; `Auto` as for agent runs) and sends the request.
    pub async fn chat(&self, request: &RunRequest) -> Result<LegacyChat, Error> {
        let inner = &self.inner;
        let conversation_id = request.conversation_id.clone().unwrap_or_else(uuid_v4);
        let first = request::build(request, &conversation_id, &inner.header_config.os);
        let first = Bytes::from(first.encode_to_vec());
        let transport = inner.transport_choice().await?.transport;
        let ids = RequestIds::new();
        let token = inner.credentials.current().await?;
        let mut header_config = inner.header_config.clone();
        header_config.style = HeaderStyle::Ide;
        let headers = header_config.headers(&token, &ids)?;
        let open = async {
            let (mut send, recv) = match transport {
                Transport::Http1Stream | Transport::Http1Poll => {
                    open_http1(inner, transport, headers, ids.request_id())
                }
                _ => {
                    let opts = CallOptions::default().accept_compression(&[Encoding::Gzip]);
                    let path = paths::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS.path;
                    let (send, recv) = inner.api_channel.bidi(path, headers, opts).await?;
                    (SendSide::H2(send), RecvSide::H2(recv))
                }
            };
            send.send(first).await?;
            Ok::<_, ConnectError>((send, recv))
        };
        let (send, recv) = match tokio::time::timeout(inner.stall_timeout, open).await {
            Ok(r) => r.map_err(|e| Error::legacy_call(e, true))?,
            Err(_) => return Err(stalled(inner.stall_timeout)),
        };
        Ok(LegacyChat {
            send,
            recv,
            transport,
            stall_timeout: inner.stall_timeout,
            partial: HashMap::new(),
            calls: HashMap::new(),
            terminal: None,
            output_started: false,
            conversation_id,
        })
    }
}

fn open_http1(
    inner: &ClientInner,
    transport: Transport,
    headers: http::HeaderMap,
    request_id: &str,
) -> (SendSide, RecvSide) {
    let mut opts = ShimOptions::default();
    opts.stream.head_timeout = inner.stall_timeout;
    opts.append.encoding = inner.append_encoding;
    if let Some(base) = inner.append_deadline {
        opts.append.deadline_base = base;
    }
    let append = paths::AISERVER_BIDI_APPEND.path;
    let channel = &inner.http1_api;
    if transport == Transport::Http1Poll {
        let path = paths::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_POLL.path;
        let (a, p) = channel.poll(path, append, headers, request_id, opts);
        (SendSide::H1(a), RecvSide::H1Poll(Box::new(p)))
    } else {
        let path = paths::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS_SSE.path;
        let (a, s) = channel.shim(path, append, headers, request_id, opts);
        (SendSide::H1(a), RecvSide::H1(s))
    }
}

fn stalled(limit: std::time::Duration) -> Error {
    let cause = TransportCause::new(TransportKind::Timeout);
    let msg = format!(
        "no message from the legacy chat within {:.1}s",
        limit.as_secs_f64()
    );
    let err = ConnectError::transport(Code::DeadlineExceeded, msg, cause);
    Error::call(ErrorKind::Stalled, err, true)
}

/// A tool call being streamed in pieces (`is_streaming` until `is_last_message`).
#[derive(Debug, Default)]
struct Partial {
    args: String,
}

/// What answering a call needs: the tool kind and the names it came with.
#[derive(Debug, Clone)]
struct Pending {
    tool: i32,
    name: String,
    server: String,
}

/// One legacy chat call in progress.
///
/// Read it with [`next_event`](LegacyChat::next_event) until `Ok(None)` (a clean end of the
/// stream) or an error (sticky). Events are [`Event::TextDelta`], [`Event::ThinkingDelta`] and
/// [`Event::ToolCall`] (answer with [`respond`](LegacyChat::respond)). There are no heartbeats
/// on this service: a silence of the client's stall timeout ends the call as stalled. MCP tool
/// calls reach the caller; other built-in tools are declined on their own.
pub struct LegacyChat {
    send: SendSide,
    recv: RecvSide,
    transport: Transport,
    stall_timeout: std::time::Duration,
    partial: HashMap<String, Partial>,
    calls: HashMap<String, Pending>,
    terminal: Option<Result<(), Error>>,
    output_started: bool,
    conversation_id: String,
}

impl fmt::Debug for LegacyChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyChat")
            .field("transport", &self.transport)
            .field("conversation_id", &self.conversation_id)
            .field("outstanding_calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

/// At most this many tool calls may be outstanding or being streamed at once.
const MAX_CALLS: usize = 256;
/// Largest streamed argument text accepted for one call.
const MAX_ARGS: usize = 4 << 20;

impl LegacyChat {
    /// The transport that carries the call (never `Auto`).
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The conversation id sent in the request.
    pub fn conversation_id(&self) -> &str {
        &self.conversation_id
    }

    /// The next event; `Ok(None)` only after a clean end of the stream.
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        if let Some(t) = &self.terminal {
            return t.clone().map(|()| None);
        }
        let r = self.next_inner().await;
        match &r {
            Ok(None) => self.terminal = Some(Ok(())),
            Err(e) => self.terminal = Some(Err(e.clone())),
            Ok(Some(_)) => {}
        }
        r
    }

    async fn next_inner(&mut self) -> Result<Option<Event>, Error> {
        loop {
            let got = tokio::time::timeout(self.stall_timeout, self.recv.message()).await;
            let bytes = match got {
                Err(_) => return Err(stalled(self.stall_timeout)),
                Ok(Err(e)) => return Err(Error::legacy_call(e, !self.output_started)),
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(bytes))) => bytes,
            };
            let msg = ai::StreamUnifiedChatResponseWithTools::decode(bytes).map_err(|e| {
                Error::with_source(
                    ErrorKind::Protocol,
                    "undecodable StreamUnifiedChatResponseWithTools",
                    e,
                )
            })?;
            if let Some(event) = self.on_message(msg).await? {
                self.output_started = true;
                return Ok(Some(event));
            }
        }
    }

    async fn on_message(
        &mut self,
        msg: ai::StreamUnifiedChatResponseWithTools,
    ) -> Result<Option<Event>, Error> {
        match msg.response {
            Some(Response::StreamUnifiedChatResponse(r)) => {
                if let Some(t) = r.thinking.filter(|t| !t.text.is_empty()) {
                    return Ok(Some(Event::ThinkingDelta(t.text)));
                }
                Ok((!r.text.is_empty()).then_some(Event::TextDelta(r.text)))
            }
            Some(Response::ClientSideToolV2Call(call)) => self.on_call(call).await,
            _ => Ok(None),
        }
    }

    /// Collects a (possibly streamed) tool call; a complete MCP call becomes an event, any
    /// other tool is declined at once.
    async fn on_call(&mut self, call: ai::ClientSideToolV2Call) -> Result<Option<Event>, Error> {
        let id = call.tool_call_id.clone();
        if self.partial.len() + self.calls.len() >= MAX_CALLS && !self.partial.contains_key(&id) {
            return Err(Error::new(
                ErrorKind::Protocol,
                "too many outstanding tool calls",
            ));
        }
        let partial = self.partial.entry(id.clone()).or_default();
        if partial.args.len() + call.raw_args.len() > MAX_ARGS {
            return Err(Error::new(
                ErrorKind::Protocol,
                "tool call arguments too long",
            ));
        }
        partial.args.push_str(&call.raw_args);
        if call.is_streaming && !call.is_last_message {
            return Ok(None);
        }
        let args = self.partial.remove(&id).map(|p| p.args).unwrap_or_default();
        let (name, server) = call_names(&call);
        let mcp = [ai::ClientSideToolV2::Mcp, ai::ClientSideToolV2::CallMcpTool]
            .map(|t| t as i32)
            .contains(&call.tool);
        let pending = Pending {
            tool: call.tool,
            name: name.clone(),
            server,
        };
        if !mcp {
            let declined = ToolResult::error("this tool is not supported by this client");
            self.send_result(&id, &pending, &declined).await?;
            return Ok(None);
        }
        self.calls.insert(id.clone(), pending);
        let arguments = if args.is_empty() {
            "{}".to_owned()
        } else {
            args
        };
        Ok(Some(Event::ToolCall(ToolCall::new(id, name, arguments))))
    }

    /// Sends the result of tool call `call_id`; the answer continues.
    pub async fn respond(&mut self, call_id: &str, result: ToolResult) -> Result<(), Error> {
        if let Some(Err(e)) = &self.terminal {
            return Err(e.clone());
        }
        let Some(pending) = self.calls.remove(call_id) else {
            return Err(Error::usage(format!(
                "no outstanding tool call {call_id:?}"
            )));
        };
        self.send_result(call_id, &pending, &result).await
    }

    async fn send_result(
        &mut self,
        call_id: &str,
        pending: &Pending,
        result: &ToolResult,
    ) -> Result<(), Error> {
        let message = tool_result(call_id, pending, result);
        self.send
            .send(Bytes::from(message.encode_to_vec()))
            .await
            .map_err(|e| Error::legacy_call(e, !self.output_started))
    }
}

/// The tool's name and MCP server, from the call or its parameters.
fn call_names(call: &ai::ClientSideToolV2Call) -> (String, String) {
    use ai::client_side_tool_v2_call::Params;
    match &call.params {
        Some(Params::CallMcpToolParams(p)) => (p.tool_name.clone(), p.server.clone()),
        Some(Params::McpParams(p)) if call.name.is_empty() => p
            .tools
            .first()
            .map(|t| (t.name.clone(), t.server_name.clone()))
            .unwrap_or_default(),
        _ => (call.name.clone(), String::new()),
    }
}

fn tool_result(
    call_id: &str,
    pending: &Pending,
    result: &ToolResult,
) -> ai::StreamUnifiedChatRequestWithTools {
    use ai::client_side_tool_v2_result::Result as R;
    let text = result.content().to_owned();
    let error = result.is_error().then(|| ai::ToolResultError {
        client_visible_error_message: text.clone(),
        model_visible_error_message: text.clone(),
        ..Default::default()
    });
    let body = if result.is_error() {
        None
    } else if pending.tool == ai::ClientSideToolV2::CallMcpTool as i32 {
        let mut fields = serde_json::Map::new();
        fields.insert("text".to_owned(), serde_json::Value::String(text));
        Some(R::CallMcpToolResult(ai::CallMcpToolResult {
            server: pending.server.clone(),
            tool_name: pending.name.clone(),
            result: Some(cursor_proto::json::struct_from_json(&fields)),
        }))
    } else {
        Some(R::McpResult(ai::McpResult {
            selected_tool: pending.name.clone(),
            result: text,
        }))
    };
    let result = ai::ClientSideToolV2Result {
        tool: pending.tool,
        tool_call_id: call_id.to_owned(),
        error,
        result: body,
        ..Default::default()
    };
    ai::StreamUnifiedChatRequestWithTools {
        request: Some(
            ai::stream_unified_chat_request_with_tools::Request::ClientSideToolV2Result(result),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai::client_side_tool_v2_result::Result as R;
    use ai::stream_unified_chat_request_with_tools::Request;

    fn result_of(msg: ai::StreamUnifiedChatRequestWithTools) -> ai::ClientSideToolV2Result {
        match msg.request {
            Some(Request::ClientSideToolV2Result(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn results_take_the_shape_of_their_call() {
        let mcp = Pending {
            tool: ai::ClientSideToolV2::Mcp as i32,
            name: "echo".into(),
            server: String::new(),
        };
        let r = result_of(tool_result("c1", &mcp, &ToolResult::text("pong")));
        assert_eq!(r.tool_call_id, "c1");
        assert_eq!(r.tool, ai::ClientSideToolV2::Mcp as i32);
        let Some(R::McpResult(m)) = r.result else {
            panic!("mcp result")
        };
        assert_eq!(
            (m.selected_tool.as_str(), m.result.as_str()),
            ("echo", "pong")
        );

        let call_mcp = Pending {
            tool: ai::ClientSideToolV2::CallMcpTool as i32,
            name: "echo".into(),
            server: "srv".into(),
        };
        let r = result_of(tool_result("c2", &call_mcp, &ToolResult::text("pong")));
        let Some(R::CallMcpToolResult(m)) = r.result else {
            panic!("call_mcp_tool result")
        };
        assert_eq!((m.server.as_str(), m.tool_name.as_str()), ("srv", "echo"));
        let fields = cursor_proto::json::struct_to_json(&m.result.unwrap());
        assert_eq!(fields["text"], "pong");

        let r = result_of(tool_result("c3", &mcp, &ToolResult::error("boom")));
        assert!(r.result.is_none());
        assert_eq!(r.error.unwrap().model_visible_error_message, "boom");
    }

    #[test]
    fn names_come_from_the_call_or_its_parameters() {
        use ai::client_side_tool_v2_call::Params;
        let mut call = ai::ClientSideToolV2Call {
            name: "direct".into(),
            ..Default::default()
        };
        assert_eq!(call_names(&call).0, "direct");
        call.params = Some(Params::CallMcpToolParams(ai::CallMcpToolParams {
            server: "srv".into(),
            tool_name: "named".into(),
            tool_args: None,
        }));
        assert_eq!(call_names(&call), ("named".into(), "srv".into()));
        call.name.clear();
        call.params = Some(Params::McpParams(ai::McpParams {
            tools: vec![ai::mcp_params::Tool {
                name: "listed".into(),
                server_name: "s2".into(),
                ..Default::default()
            }],
            ..Default::default()
        }));
        assert_eq!(call_names(&call), ("listed".into(), "s2".into()));
    }
}
