//! The `agent.v1` messages the mock sends, and a classification of what clients send, in one
//! place so the rest of the crate does not depend on the shape of the generated types.

use std::collections::HashMap;

use bytes::Bytes;
use cursor_proto::agent::v1 as pb;
use prost::Message as _;

use crate::scenario::{ExecKind, Usage};

fn server(message: pb::agent_server_message::Message) -> Bytes {
    Bytes::from(
        pb::AgentServerMessage {
            message: Some(message),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

fn update(message: pb::interaction_update::Message) -> Bytes {
    server(pb::agent_server_message::Message::InteractionUpdate(
        pb::InteractionUpdate {
            message: Some(message),
            message_started_at_ms: None,
        },
    ))
}

/// `interaction_update.heartbeat`: on the wire `0a 02 6a 00`.
pub(crate) fn heartbeat() -> Bytes {
    update(pb::interaction_update::Message::Heartbeat(
        pb::HeartbeatUpdate {},
    ))
}

pub(crate) fn text_delta(text: &str, is_server_notice: bool) -> Bytes {
    update(pb::interaction_update::Message::TextDelta(
        pb::TextDeltaUpdate {
            text: text.to_owned(),
            is_server_notice,
        },
    ))
}

pub(crate) fn thinking_delta(text: &str) -> Bytes {
    update(pb::interaction_update::Message::ThinkingDelta(
        pb::ThinkingDeltaUpdate {
            text: text.to_owned(),
            ..Default::default()
        },
    ))
}

pub(crate) fn thinking_completed(duration_ms: i32) -> Bytes {
    update(pb::interaction_update::Message::ThinkingCompleted(
        pb::ThinkingCompletedUpdate {
            thinking_duration_ms: duration_ms,
        },
    ))
}

pub(crate) fn token_delta(tokens: i32) -> Bytes {
    update(pb::interaction_update::Message::TokenDelta(
        pb::TokenDeltaUpdate { tokens },
    ))
}

/// `turn_ended` with all five counters present, zeros included (addenda §9).
pub(crate) fn turn_ended(usage: Usage) -> Bytes {
    update(pb::interaction_update::Message::TurnEnded(
        pb::TurnEndedUpdate {
            input_tokens: Some(usage.input_tokens),
            output_tokens: Some(usage.output_tokens),
            cache_read_tokens: Some(usage.cache_read_tokens),
            cache_write_tokens: Some(usage.cache_write_tokens),
            reasoning_tokens: Some(usage.reasoning_tokens),
        },
    ))
}

pub(crate) fn checkpoint(bytes: Bytes) -> Bytes {
    server(pb::agent_server_message::Message::ConversationCheckpointUpdate(bytes))
}

pub(crate) fn kv_get(id: u32, blob_id: Bytes) -> Bytes {
    server(pb::agent_server_message::Message::KvServerMessage(
        pb::KvServerMessage {
            id,
            message: Some(pb::kv_server_message::Message::GetBlobArgs(
                pb::GetBlobArgs { blob_id },
            )),
            ..Default::default()
        },
    ))
}

pub(crate) fn kv_set(id: u32, blob_id: Bytes, blob_data: Bytes) -> Bytes {
    server(pb::agent_server_message::Message::KvServerMessage(
        pb::KvServerMessage {
            id,
            message: Some(pb::kv_server_message::Message::SetBlobArgs(
                pb::SetBlobArgs { blob_id, blob_data },
            )),
            ..Default::default()
        },
    ))
}

pub(crate) fn exec_request_context(id: u32, exec_id: &str) -> Bytes {
    server(pb::agent_server_message::Message::ExecServerMessage(
        pb::ExecServerMessage {
            id,
            exec_id: exec_id.to_owned(),
            message: Some(pb::exec_server_message::Message::RequestContextArgs(
                pb::RequestContextArgs::default(),
            )),
            ..Default::default()
        },
    ))
}

pub(crate) fn exec_mcp(
    id: u32,
    exec_id: &str,
    tool: &DeclaredTool,
    tool_call_id: &str,
    args: HashMap<String, prost_types::Value>,
) -> Bytes {
    server(pb::agent_server_message::Message::ExecServerMessage(
        pb::ExecServerMessage {
            id,
            exec_id: exec_id.to_owned(),
            message: Some(pb::exec_server_message::Message::McpArgs(pb::McpArgs {
                name: tool.name.clone(),
                args,
                tool_call_id: tool_call_id.to_owned(),
                provider_identifier: tool.provider.clone(),
                tool_name: tool.tool_name.clone(),
                ..Default::default()
            })),
            ..Default::default()
        },
    ))
}

/// An exec of a kind the mock expects the client to decline.
pub(crate) fn exec_unsupported(id: u32, exec_id: &str, kind: ExecKind) -> Bytes {
    use pb::exec_server_message::Message as E;
    let call = format!("mock-call-{id}");
    let message = match kind {
        ExecKind::Shell => E::ShellArgs(pb::ShellArgs {
            command: "ls -la".to_owned(),
            working_directory: "/tmp".to_owned(),
            timeout: 30_000,
            tool_call_id: call,
        }),
        ExecKind::Read => E::ReadArgs(pb::ReadArgs {
            path: "/etc/hostname".to_owned(),
            tool_call_id: call,
        }),
        ExecKind::Write => E::WriteArgs(pb::WriteArgs {
            path: "/tmp/cursor-mock.txt".to_owned(),
            file_text: "written by cursor-mock".to_owned(),
            tool_call_id: call,
            ..Default::default()
        }),
        ExecKind::Delete => E::DeleteArgs(pb::DeleteArgs {
            path: "/tmp/cursor-mock.txt".to_owned(),
            tool_call_id: call,
        }),
        ExecKind::Ls => E::LsArgs(pb::LsArgs {
            path: "/tmp".to_owned(),
            tool_call_id: call,
            ..Default::default()
        }),
        ExecKind::Grep => E::GrepArgs(pb::GrepArgs {
            pattern: "mock".to_owned(),
            tool_call_id: call,
            ..Default::default()
        }),
        ExecKind::Fetch => E::FetchArgs(pb::FetchArgs {
            url: "https://example.com/".to_owned(),
            tool_call_id: call,
        }),
        ExecKind::McpState => E::McpStateExecArgs(pb::McpStateExecArgs {
            server_identifiers: vec!["cursor-mock".to_owned()],
        }),
    };
    let span_context = matches!(kind, ExecKind::McpState).then(|| pb::SpanContext {
        trace_id: "5d9fdd529d445590b29644e408240a4f".to_owned(),
        span_id: "67ed5ec658bd8ac2".to_owned(),
        trace_flags: Some(0),
        ..Default::default()
    });
    server(pb::agent_server_message::Message::ExecServerMessage(
        pb::ExecServerMessage {
            id,
            exec_id: exec_id.to_owned(),
            message: Some(message),
            span_context,
            accept_hook_additional_contexts: matches!(kind, ExecKind::McpState).then_some(false),
            machine_id: None,
        },
    ))
}

/// An interaction query (web-search approval) with `id`.
pub(crate) fn interaction_query(id: u32) -> Bytes {
    server(pb::agent_server_message::Message::InteractionQuery(
        pb::InteractionQuery {
            id,
            query: Some(pb::interaction_query::Query::WebSearchRequestQuery(
                pb::WebSearchRequestQuery::default(),
            )),
        },
    ))
}

/// Builds the opaque checkpoint: root prompt blob ids, one turn with the user message and the
/// assistant text, and token details.
pub(crate) fn checkpoint_state(
    root_blob_ids: &[Bytes],
    previous_turns: &[Bytes],
    user_text: &str,
    assistant_text: &str,
    used_tokens: u32,
) -> Bytes {
    let user = pb::UserMessage {
        text: user_text.to_owned(),
        ..Default::default()
    }
    .encode_to_vec();
    let step = pb::ConversationStep {
        message: Some(pb::conversation_step::Message::AssistantMessage(
            pb::AssistantMessage {
                text: assistant_text.to_owned(),
                ..Default::default()
            },
        )),
    }
    .encode_to_vec();
    let turn = pb::ConversationTurnStructure {
        turn: Some(
            pb::conversation_turn_structure::Turn::AgentConversationTurn(
                pb::AgentConversationTurnStructure {
                    user_message: Bytes::from(user),
                    steps: vec![Bytes::from(step)],
                    ..Default::default()
                },
            ),
        ),
    }
    .encode_to_vec();
    let mut turns = previous_turns.to_vec();
    turns.push(Bytes::from(turn));
    Bytes::from(
        pb::ConversationStateStructure {
            root_prompt_messages_json: root_blob_ids.to_vec(),
            turns,
            token_details: Some(pb::ConversationTokenDetails {
                used_tokens,
                max_tokens: 200_000,
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    )
}

/// The parts of an echoed checkpoint the mock reuses: root blob ids and earlier turns.
pub(crate) fn parse_checkpoint(bytes: &[u8]) -> Option<(Vec<Bytes>, Vec<Bytes>)> {
    let state = pb::ConversationStateStructure::decode(bytes).ok()?;
    Some((state.root_prompt_messages_json, state.turns))
}

/// A tool the client declared in its run request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeclaredTool {
    pub(crate) name: String,
    pub(crate) provider: String,
    pub(crate) tool_name: String,
}

/// What the mock needs from a run request.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunInfo {
    pub(crate) model: String,
    pub(crate) conversation_id: String,
    pub(crate) conversation_state: Option<Bytes>,
    pub(crate) tools: Vec<DeclaredTool>,
    pub(crate) user_text: String,
}

/// The answer a client gave to an exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExecAnswer {
    RequestContext {
        ok: bool,
    },
    /// MCP result: the text content joined, and whether it reports an error.
    Mcp {
        text: String,
        is_error: bool,
    },
    Other(&'static str),
    Empty,
}

/// A client message, reduced to what the mock reacts to.
#[derive(Debug, Clone)]
pub(crate) enum ClientMsg {
    Run(Box<RunInfo>),
    Prewarm,
    Heartbeat,
    KvGetResult {
        id: u32,
        data: Option<Bytes>,
        error: bool,
    },
    KvSetResult {
        id: u32,
        error: bool,
    },
    Exec {
        id: u32,
        exec_id: String,
        answer: ExecAnswer,
    },
    ExecThrow {
        id: u32,
        error: String,
    },
    ExecStreamClose {
        id: u32,
    },
    ExecHeartbeat,
    Cancel,
    OtherAction,
    InteractionResponse {
        id: u32,
    },
    Empty,
}

impl ClientMsg {
    /// A short name, for records and messages.
    pub(crate) fn kind(&self) -> crate::record::MessageKind {
        use crate::record::MessageKind as K;
        match self {
            Self::Run(_) => K::RunRequest,
            Self::Prewarm => K::PrewarmRequest,
            Self::Heartbeat => K::ClientHeartbeat,
            Self::KvGetResult { .. } => K::KvGetResult,
            Self::KvSetResult { .. } => K::KvSetResult,
            Self::Exec { .. } => K::ExecResult,
            Self::ExecThrow { .. } | Self::ExecStreamClose { .. } | Self::ExecHeartbeat => {
                K::ExecControl
            }
            Self::Cancel | Self::OtherAction => K::ConversationAction,
            Self::InteractionResponse { .. } => K::InteractionResponse,
            Self::Empty => K::Empty,
        }
    }
}

/// Decodes and classifies one client message.
pub(crate) fn classify(payload: &[u8]) -> Result<ClientMsg, prost::DecodeError> {
    use pb::agent_client_message::Message as M;
    let msg = pb::AgentClientMessage::decode(payload)?;
    Ok(match msg.message {
        None => ClientMsg::Empty,
        Some(M::RunRequest(run)) => ClientMsg::Run(Box::new(run_info(run))),
        Some(M::PrewarmRequest(_)) => ClientMsg::Prewarm,
        Some(M::ClientHeartbeat(_)) => ClientMsg::Heartbeat,
        Some(M::KvClientMessage(kv)) => match kv.message {
            Some(pb::kv_client_message::Message::GetBlobResult(r)) => ClientMsg::KvGetResult {
                id: kv.id,
                data: r.blob_data,
                error: r.error.is_some(),
            },
            Some(pb::kv_client_message::Message::SetBlobResult(r)) => ClientMsg::KvSetResult {
                id: kv.id,
                error: r.error.is_some(),
            },
            None => ClientMsg::Empty,
        },
        Some(M::ExecClientMessage(exec)) => ClientMsg::Exec {
            id: exec.id,
            exec_id: exec.exec_id,
            answer: exec_answer(exec.message),
        },
        Some(M::ExecClientControlMessage(ctl)) => {
            use pb::exec_client_control_message::Message as C;
            match ctl.message {
                Some(C::StreamClose(c)) => ClientMsg::ExecStreamClose { id: c.id },
                Some(C::Throw(t)) => ClientMsg::ExecThrow {
                    id: t.id,
                    error: t.error,
                },
                Some(C::Heartbeat(_)) => ClientMsg::ExecHeartbeat,
                None => ClientMsg::Empty,
            }
        }
        Some(M::ConversationAction(action)) => match action.action {
            Some(pb::conversation_action::Action::CancelAction(_)) => ClientMsg::Cancel,
            _ => ClientMsg::OtherAction,
        },
        Some(M::InteractionResponse(r)) => ClientMsg::InteractionResponse { id: r.id },
    })
}

fn exec_answer(message: Option<pb::exec_client_message::Message>) -> ExecAnswer {
    use pb::exec_client_message::Message as R;
    match message {
        None => ExecAnswer::Empty,
        Some(R::RequestContextResult(r)) => ExecAnswer::RequestContext {
            ok: matches!(
                r.result,
                Some(pb::request_context_result::Result::Success(_))
            ),
        },
        Some(R::McpResult(r)) => {
            use pb::mcp_result::Result as Mr;
            match r.result {
                Some(Mr::Success(s)) => {
                    let text = s
                        .content
                        .iter()
                        .filter_map(|item| match &item.content {
                            Some(pb::mcp_tool_result_content_item::Content::Text(t)) => {
                                Some(t.text.as_str())
                            }
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                        .join("");
                    ExecAnswer::Mcp {
                        text,
                        is_error: s.is_error,
                    }
                }
                Some(Mr::Error(e)) => ExecAnswer::Mcp {
                    text: e.error,
                    is_error: true,
                },
                Some(Mr::Rejected(r)) => ExecAnswer::Mcp {
                    text: r.reason,
                    is_error: true,
                },
                Some(_) => ExecAnswer::Mcp {
                    text: String::new(),
                    is_error: true,
                },
                None => ExecAnswer::Empty,
            }
        }
        Some(R::ShellResult(_)) => ExecAnswer::Other("shell_result"),
        Some(R::WriteResult(_)) => ExecAnswer::Other("write_result"),
        Some(R::DeleteResult(_)) => ExecAnswer::Other("delete_result"),
        Some(R::GrepResult(_)) => ExecAnswer::Other("grep_result"),
        Some(R::ReadResult(_)) => ExecAnswer::Other("read_result"),
        Some(R::LsResult(_)) => ExecAnswer::Other("ls_result"),
        Some(R::FetchResult(_)) => ExecAnswer::Other("fetch_result"),
        // Kinds the mock never asks for (declared so they decode; their fields are not modelled).
        Some(_) => ExecAnswer::Other("another result kind"),
    }
}

fn run_info(run: pb::AgentRunRequest) -> RunInfo {
    let model = run
        .model_details
        .as_ref()
        .map(|m| m.model_id.clone())
        .filter(|m| !m.is_empty())
        .or_else(|| run.requested_model.as_ref().map(|m| m.model_id.clone()))
        .unwrap_or_default();
    let mut tools: Vec<DeclaredTool> = run
        .mcp_tools
        .map(|t| t.mcp_tools)
        .unwrap_or_default()
        .into_iter()
        .map(|t| DeclaredTool {
            tool_name: if t.tool_name.is_empty() {
                t.name.clone()
            } else {
                t.tool_name
            },
            name: t.name,
            provider: t.provider_identifier,
        })
        .collect();
    let mut user_text = String::new();
    if let Some(pb::conversation_action::Action::UserMessageAction(action)) =
        run.action.and_then(|a| a.action)
    {
        if let Some(user) = action.user_message {
            user_text = user.text;
        }
        // Tools may also (or only) come in the request context.
        if let Some(ctx) = action.request_context {
            for t in ctx.tools {
                if !tools.iter().any(|d| d.name == t.name) {
                    tools.push(DeclaredTool {
                        tool_name: if t.tool_name.is_empty() {
                            t.name.clone()
                        } else {
                            t.tool_name
                        },
                        name: t.name,
                        provider: t.provider_identifier,
                    });
                }
            }
        }
    }
    RunInfo {
        model,
        conversation_id: run.conversation_id.unwrap_or_default(),
        conversation_state: run.conversation_state.filter(|s| !s.is_empty()),
        tools,
        user_text,
    }
}

/// `GetUsableModelsResponse` / `GetDefaultModelForCliResponse` / `AvailableModelsResponse` /
/// `GetServerConfigResponse` bodies.
pub(crate) mod unary {
    use super::*;
    use cursor_proto::aiserver::v1 as ai;

    /// Models the mock lists: (id, display name, supports thinking); ids as in [`crate::MODEL_IDS`].
    pub(crate) const MODELS: &[(&str, &str, bool)] = &[
        ("composer-2.5", "Composer 2.5", true),
        ("claude-4.5-sonnet", "Claude 4.5 Sonnet", false),
        (
            "claude-4.5-sonnet-thinking",
            "Claude 4.5 Sonnet Thinking",
            true,
        ),
        ("gpt-5", "GPT-5", true),
        ("default", "Auto", false),
    ];

    fn details(id: &str, display: &str, thinking: bool) -> pb::ModelDetails {
        pb::ModelDetails {
            model_id: id.to_owned(),
            thinking_details: thinking.then_some(pb::ThinkingDetails {}),
            display_model_id: id.to_owned(),
            display_name: display.to_owned(),
            display_name_short: display.to_owned(),
            ..Default::default()
        }
    }

    pub(crate) fn usable_models() -> Bytes {
        Bytes::from(
            pb::GetUsableModelsResponse {
                models: MODELS
                    .iter()
                    .map(|(id, name, thinking)| details(id, name, *thinking))
                    .collect(),
            }
            .encode_to_vec(),
        )
    }

    pub(crate) fn default_model() -> Bytes {
        let (id, name, thinking) = MODELS[0];
        Bytes::from(
            pb::GetDefaultModelForCliResponse {
                model: Some(details(id, name, thinking)),
            }
            .encode_to_vec(),
        )
    }

    pub(crate) fn available_models() -> Bytes {
        Bytes::from(
            ai::AvailableModelsResponse {
                model_names: MODELS.iter().map(|(id, ..)| (*id).to_owned()).collect(),
                models: MODELS
                    .iter()
                    .map(|(id, name, thinking)| ai::AvailableModel {
                        name: (*id).to_owned(),
                        default_on: true,
                        supports_agent: Some(true),
                        supports_thinking: Some(*thinking),
                        client_display_name: Some((*name).to_owned()),
                        context_token_limit: Some(200_000),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
            .encode_to_vec(),
        )
    }

    pub(crate) fn name_agent() -> Bytes {
        Bytes::from(
            pb::NameAgentResponse {
                name: "Mock conversation".to_owned(),
            }
            .encode_to_vec(),
        )
    }

    pub(crate) fn server_config(base_url: &str, http2_config: ai::Http2Config) -> Bytes {
        Bytes::from(
            ai::GetServerConfigResponse {
                config_version: "cursor-mock-config-1".to_owned(),
                http2_config: http2_config as i32,
                agent_url_config: Some(ai::AgentUrlConfig {
                    agent_url: base_url.to_owned(),
                    agentn_url: base_url.to_owned(),
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_matches_the_captured_bytes() {
        assert_eq!(heartbeat().as_ref(), [0x0a, 0x02, 0x6a, 0x00]);
    }

    #[test]
    fn mcp_state_exec_has_the_captured_shape() {
        // Vector F04, captured from api2.cursor.sh on 2026-10-05.
        let f04 = "124c08019a01360a2035643966646435323964343435353930623239363434653430383234306134661210363765643565633635386264386163321800a2020b0a096f6d6e69726f757465b80300";
        let bytes: Vec<u8> = (0..f04.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&f04[i..i + 2], 16).unwrap_or_default())
            .collect();
        let captured = pb::AgentServerMessage::decode(bytes.as_slice()).expect("F04 decodes");
        let ours = pb::AgentServerMessage::decode(exec_unsupported(1, "", ExecKind::McpState))
            .expect("ours decodes");
        let (
            Some(pb::agent_server_message::Message::ExecServerMessage(c)),
            Some(pb::agent_server_message::Message::ExecServerMessage(o)),
        ) = (captured.message, ours.message)
        else {
            panic!("both are exec server messages");
        };
        assert_eq!((c.id, c.exec_id.as_str()), (o.id, o.exec_id.as_str()));
        assert_eq!(c.span_context, o.span_context);
        assert_eq!(
            c.accept_hook_additional_contexts,
            o.accept_hook_additional_contexts
        );
        assert!(matches!(
            (c.message, o.message),
            (
                Some(pb::exec_server_message::Message::McpStateExecArgs(_)),
                Some(pb::exec_server_message::Message::McpStateExecArgs(_))
            )
        ));
    }

    #[test]
    fn model_ids_match_the_public_list() {
        let ids: Vec<&str> = unary::MODELS.iter().map(|(id, ..)| *id).collect();
        assert_eq!(ids, crate::MODEL_IDS);
    }

    #[test]
    fn turn_ended_keeps_zero_counters() {
        let bytes = turn_ended(Usage::default());
        // 0a (update) len 12 72 (field 14) len 10, then five (tag, 0) pairs.
        assert_eq!(
            bytes.as_ref(),
            [
                0x0a, 0x0c, 0x72, 0x0a, 0x08, 0, 0x10, 0, 0x18, 0, 0x20, 0, 0x28, 0
            ]
        );
    }
}
