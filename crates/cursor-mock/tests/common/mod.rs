//! A small raw-h2 Connect client for driving the mock in tests (no dependency on cursor-connect).
#![allow(dead_code, unreachable_pub, clippy::large_enum_variant)]

pub mod http1;

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{Decoder, Direction, Encoder, Frame};
use cursor_proto::agent::v1 as pb;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use prost::Message as _;
use sha2::{Digest, Sha256};

pub const STEP: Duration = Duration::from_secs(10);

pub async fn connect(addr: std::net::SocketAddr) -> SendRequest<Bytes> {
    connect_with(addr, h2::client::Builder::new()).await.0
}

/// Connects with `builder`; the handle yields the connection's final result.
pub async fn connect_with(
    addr: std::net::SocketAddr,
    builder: h2::client::Builder,
) -> (
    SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = builder.handshake(tcp).await.expect("h2 handshake");
    (client, tokio::spawn(connection))
}

pub fn run_request(model: &str, text: &str) -> pb::AgentRunRequest {
    pb::AgentRunRequest {
        conversation_state: Some(Bytes::new()),
        action: Some(pb::ConversationAction {
            action: Some(pb::conversation_action::Action::UserMessageAction(
                pb::UserMessageAction {
                    user_message: Some(pb::UserMessage {
                        text: text.to_owned(),
                        message_id: "m-1".to_owned(),
                        mode: 1,
                        ..Default::default()
                    }),
                    request_context: Some(pb::RequestContext::default()),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        model_details: Some(pb::ModelDetails {
            model_id: model.to_owned(),
            display_model_id: model.to_owned(),
            display_name: model.to_owned(),
            ..Default::default()
        }),
        conversation_id: Some("conv-1".to_owned()),
        ..Default::default()
    }
}

pub fn with_tools(mut run: pb::AgentRunRequest, names: &[&str]) -> pb::AgentRunRequest {
    run.mcp_tools = Some(pb::McpTools {
        mcp_tools: names
            .iter()
            .map(|n| pb::McpToolDefinition {
                name: (*n).to_owned(),
                description: format!("tool {n}"),
                provider_identifier: "test".to_owned(),
                tool_name: (*n).to_owned(),
                ..Default::default()
            })
            .collect(),
    });
    run
}

pub fn client(message: pb::agent_client_message::Message) -> Bytes {
    Bytes::from(
        pb::AgentClientMessage {
            message: Some(message),
        }
        .encode_to_vec(),
    )
}

pub fn run_msg(run: pb::AgentRunRequest) -> Bytes {
    client(pb::agent_client_message::Message::RunRequest(run))
}

pub fn heartbeat_msg() -> Bytes {
    client(pb::agent_client_message::Message::ClientHeartbeat(
        pb::ClientHeartbeat {},
    ))
}

/// One Run call: enveloped sends and decoded receives.
pub struct Call {
    pub send: SendStream<Bytes>,
    pub recv: RecvStream,
    pub status: http::StatusCode,
    buf: BytesMut,
    decoder: Decoder,
    encoder: Encoder,
    pub data_frames: usize,
    pub raw: BytesMut,
}

/// What one server envelope was.
#[derive(Debug, Clone, PartialEq)]
pub enum In {
    Msg(pb::AgentServerMessage),
    End(serde_json::Value, Bytes),
}

pub async fn open_run(client: &mut SendRequest<Bytes>, headers: &[(&str, &str)]) -> Call {
    open(client, "/agent.v1.AgentService/Run", headers).await
}

pub async fn open(client: &mut SendRequest<Bytes>, path: &str, headers: &[(&str, &str)]) -> Call {
    let mut builder = http::Request::post(format!("http://127.0.0.1{path}"))
        .header("content-type", "application/connect+proto")
        .header("connect-protocol-version", "1");
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(()).expect("request");
    let mut ready = client.clone().ready().await.expect("ready");
    let (response, send) = ready.send_request(request, false).expect("send_request");
    *client = ready;
    let response = tokio::time::timeout(STEP, response)
        .await
        .expect("response in time")
        .expect("response");
    let status = response.status();
    Call {
        send,
        recv: response.into_body(),
        status,
        buf: BytesMut::new(),
        decoder: Decoder::new(Direction::Response),
        encoder: Encoder::new(),
        data_frames: 0,
        raw: BytesMut::new(),
    }
}

impl Call {
    pub fn send_msg(&mut self, payload: &[u8]) {
        let mut buf = BytesMut::new();
        self.encoder.encode(payload, &mut buf).expect("encode");
        self.send.reserve_capacity(buf.len());
        self.send.send_data(buf.freeze(), false).expect("send_data");
    }

    /// Sends bytes under flow control (for big messages against tiny windows).
    pub async fn send_msg_flow(&mut self, payload: &[u8]) {
        let mut buf = BytesMut::new();
        self.encoder.encode(payload, &mut buf).expect("encode");
        let mut data = buf.freeze();
        while !data.is_empty() {
            self.send.reserve_capacity(data.len());
            let n =
                tokio::time::timeout(STEP, std::future::poll_fn(|cx| self.send.poll_capacity(cx)))
                    .await
                    .expect("capacity in time")
                    .expect("capacity")
                    .expect("capacity ok");
            if n == 0 {
                continue;
            }
            let chunk = data.split_to(n.min(data.len()));
            self.send.send_data(chunk, false).expect("send_data");
        }
    }

    /// The next envelope, `Ok(None)` at the end of the HTTP/2 stream, `Err` on a reset.
    pub async fn next(&mut self) -> Result<Option<In>, h2::Error> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("valid envelope") {
                return Ok(Some(to_in(frame)));
            }
            let chunk = tokio::time::timeout(STEP, self.recv.data())
                .await
                .expect("server data in time");
            match chunk {
                Some(Ok(chunk)) => {
                    self.data_frames += 1;
                    let _ = self.recv.flow_control().release_capacity(chunk.len());
                    self.raw.extend_from_slice(&chunk);
                    self.buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(e),
                None => {
                    assert!(self.buf.is_empty(), "truncated envelope at end of stream");
                    return Ok(None);
                }
            }
        }
    }

    pub async fn next_msg(&mut self) -> In {
        self.next().await.expect("no reset").expect("not at end")
    }
}

fn to_in(frame: Frame) -> In {
    if frame.flags.is_end_stream() {
        let json = serde_json::from_slice(&frame.payload).expect("end-stream JSON");
        In::End(json, frame.payload)
    } else {
        In::Msg(pb::AgentServerMessage::decode(frame.payload).expect("AgentServerMessage"))
    }
}

/// What a well-behaved client saw over one turn.
#[derive(Debug, Default)]
pub struct Transcript {
    pub order: Vec<String>,
    pub text: String,
    pub thinking: String,
    pub token_deltas: i64,
    pub turn_ended: Option<pb::TurnEndedUpdate>,
    pub checkpoints: Vec<Bytes>,
    pub end: Option<serde_json::Value>,
    pub end_raw: Bytes,
    pub tool_calls: Vec<(u32, String, String)>,
    pub max_outstanding_tools: usize,
}

/// Plays a correct client: answers KV from `store`, request context, and tools with
/// `tool_answer(name) -> text`, answering tools only once all requested ones are outstanding
/// or a checkpoint/heartbeat shows the server is waiting.
pub async fn drive(
    call: &mut Call,
    store: &mut HashMap<Bytes, Bytes>,
    tool_answer: impl Fn(&str) -> String,
) -> Transcript {
    use pb::agent_server_message::Message as S;
    use pb::interaction_update::Message as U;
    let mut t = Transcript::default();
    let mut outstanding: Vec<(u32, String, String)> = Vec::new();
    for _ in 0..10_000 {
        let item = call.next().await.expect("no reset");
        let Some(item) = item else { break };
        let msg = match item {
            In::End(json, raw) => {
                t.order.push("end".into());
                t.end = Some(json);
                t.end_raw = raw;
                continue;
            }
            In::Msg(msg) => msg,
        };
        match msg.message.expect("message case") {
            S::InteractionUpdate(u) => match u.message.expect("update case") {
                U::Heartbeat(_) => {
                    t.order.push("heartbeat".into());
                    // The server waits for tools: answer them all now, in reverse order.
                    flush_tools(call, &mut outstanding, &tool_answer, &mut t);
                }
                U::TextDelta(d) => {
                    t.order.push("text".into());
                    t.text.push_str(&d.text);
                }
                U::ThinkingDelta(d) => {
                    t.order.push("thinking".into());
                    t.thinking.push_str(&d.text);
                }
                U::ThinkingCompleted(_) => t.order.push("thinking_completed".into()),
                U::TokenDelta(d) => {
                    t.order.push("token".into());
                    t.token_deltas += i64::from(d.tokens);
                }
                U::TurnEnded(e) => {
                    t.order.push("turn_ended".into());
                    t.turn_ended = Some(e);
                }
                other => t.order.push(format!("update {other:?}")),
            },
            S::ConversationCheckpointUpdate(bytes) => {
                t.order.push("checkpoint".into());
                t.checkpoints.push(bytes);
                flush_tools(call, &mut outstanding, &tool_answer, &mut t);
            }
            S::KvServerMessage(kv) => {
                use pb::kv_client_message::Message as K;
                let reply = match kv.message.expect("kv case") {
                    pb::kv_server_message::Message::GetBlobArgs(get) => {
                        t.order.push("kv_get".into());
                        K::GetBlobResult(pb::GetBlobResult {
                            blob_data: store.get(&get.blob_id).cloned(),
                            error: None,
                        })
                    }
                    pb::kv_server_message::Message::SetBlobArgs(set) => {
                        t.order.push("kv_set".into());
                        assert_eq!(
                            set.blob_id.as_ref(),
                            Sha256::digest(&set.blob_data).as_slice(),
                            "blob id is the SHA-256 of the data"
                        );
                        store.insert(set.blob_id, set.blob_data);
                        K::SetBlobResult(pb::SetBlobResult { error: None })
                    }
                };
                let reply = pb::KvClientMessage {
                    id: kv.id,
                    message: Some(reply),
                };
                call.send_msg(&client(pb::agent_client_message::Message::KvClientMessage(
                    reply,
                )));
            }
            S::ExecServerMessage(exec) => match exec.message.expect("exec case") {
                pb::exec_server_message::Message::RequestContextArgs(_) => {
                    t.order.push("exec_request_context".into());
                    let reply = pb::ExecClientMessage {
                        id: exec.id,
                        exec_id: exec.exec_id,
                        message: Some(pb::exec_client_message::Message::RequestContextResult(
                            pb::RequestContextResult {
                                result: Some(pb::request_context_result::Result::Success(
                                    pb::RequestContextSuccess::default(),
                                )),
                            },
                        )),
                        ..Default::default()
                    };
                    call.send_msg(&client(
                        pb::agent_client_message::Message::ExecClientMessage(reply),
                    ));
                }
                pb::exec_server_message::Message::McpArgs(args) => {
                    t.order.push("exec_mcp".into());
                    t.tool_calls
                        .push((exec.id, exec.exec_id.clone(), args.name.clone()));
                    outstanding.push((exec.id, exec.exec_id, args.name));
                    t.max_outstanding_tools = t.max_outstanding_tools.max(outstanding.len());
                }
                other => {
                    // Decline what a plain client does not run, with a throw carrying the id.
                    t.order.push(format!("exec_declined {}", exec_case(&other)));
                    let throw = pb::ExecClientControlMessage {
                        message: Some(pb::exec_client_control_message::Message::Throw(
                            pb::ExecClientThrow {
                                id: exec.id,
                                error: "not supported by this client".to_owned(),
                                ..Default::default()
                            },
                        )),
                    };
                    call.send_msg(&client(
                        pb::agent_client_message::Message::ExecClientControlMessage(throw),
                    ));
                }
            },
            S::InteractionQuery(query) => {
                t.order.push("interaction_query".into());
                let response = pb::InteractionResponse {
                    id: query.id,
                    result: Some(pb::interaction_response::Result::WebSearchRequestResponse(
                        pb::WebSearchRequestResponse {
                            result: Some(pb::web_search_request_response::Result::Rejected(
                                pb::web_search_request_response::Rejected {
                                    reason: "no web search in tests".to_owned(),
                                },
                            )),
                        },
                    )),
                };
                call.send_msg(&client(
                    pb::agent_client_message::Message::InteractionResponse(response),
                ));
            }
            other => t.order.push(format!("server {other:?}")),
        }
    }
    t
}

fn exec_case(message: &pb::exec_server_message::Message) -> &'static str {
    use pb::exec_server_message::Message as E;
    match message {
        E::ShellArgs(_) => "shell",
        E::ReadArgs(_) => "read",
        E::McpStateExecArgs(_) => "mcp_state",
        _ => "other",
    }
}

fn flush_tools(
    call: &mut Call,
    outstanding: &mut Vec<(u32, String, String)>,
    tool_answer: &impl Fn(&str) -> String,
    t: &mut Transcript,
) {
    while let Some((id, exec_id, name)) = outstanding.pop() {
        t.order.push("tool_result_sent".into());
        let result = pb::McpResult {
            result: Some(pb::mcp_result::Result::Success(pb::McpSuccess {
                content: vec![pb::McpToolResultContentItem {
                    content: Some(pb::mcp_tool_result_content_item::Content::Text(
                        pb::McpTextContent {
                            text: tool_answer(&name),
                            ..Default::default()
                        },
                    )),
                }],
                ..Default::default()
            })),
        };
        let reply = pb::ExecClientMessage {
            id,
            exec_id,
            message: Some(pb::exec_client_message::Message::McpResult(result)),
            ..Default::default()
        };
        call.send_msg(&client(
            pb::agent_client_message::Message::ExecClientMessage(reply),
        ));
    }
}

/// Collapses runs of the same label, to compare frame order with the real session's.
pub fn collapse(order: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in order {
        if out.last() != Some(label) {
            out.push(label.clone());
        }
    }
    out
}

#[allow(unused_imports)] // not every test binary reads hex
pub use cursor_test_support::vectors::unhex as hex;

/// Starts a mock that plays `steps` for every run, with the builder's defaults otherwise.
pub async fn scripted(steps: Vec<cursor_mock::Step>) -> cursor_mock::MockServer {
    cursor_mock::MockServer::builder()
        .scenario(cursor_mock::Scenario::new(steps))
        .start()
        .await
        .expect("start")
}
