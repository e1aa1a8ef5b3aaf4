//! Property tests: the main client and server messages survive encode -> decode unchanged,
//! `encoded_len` agrees with the encoder, and arbitrary bytes never panic the decoder.

use bytes::Bytes;
use cursor_proto::agent::v1::*;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use prost::Message;
use prost_types::{Value, value::Kind};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.\\-é😀]{0,12}"
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn mcp_success() -> impl Strategy<Value = McpSuccess> {
    (vec(text(), 0..3), any::<bool>()).prop_map(|(texts, is_error)| McpSuccess {
        content: texts
            .into_iter()
            .map(|t| McpToolResultContentItem {
                content: Some(mcp_tool_result_content_item::Content::Text(
                    McpTextContent {
                        text: t,
                        output_location: None,
                    },
                )),
            })
            .collect(),
        is_error,
        structured_content: None,
    })
}

fn mcp_args() -> impl Strategy<Value = McpArgs> {
    (text(), btree_map(text(), text(), 0..3), text(), text()).prop_map(
        |(name, args, tool_call_id, tool_name)| McpArgs {
            name,
            args: args
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        Value {
                            kind: Some(Kind::StringValue(v)),
                        },
                    )
                })
                .collect(),
            tool_call_id,
            tool_name,
            ..Default::default()
        },
    )
}

fn client_message() -> impl Strategy<Value = AgentClientMessage> {
    use agent_client_message::Message as M;
    let run = (
        proptest::option::of(blob()),
        text(),
        text(),
        proptest::option::of(text()),
    )
        .prop_map(|(state, user, model, conversation_id)| {
            M::RunRequest(AgentRunRequest {
                conversation_state: state,
                action: Some(ConversationAction {
                    triggering_auth_id: None,
                    action: Some(conversation_action::Action::UserMessageAction(
                        UserMessageAction {
                            user_message: Some(UserMessage {
                                text: user,
                                mode: AgentMode::Agent as i32,
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    )),
                }),
                model_details: Some(ModelDetails {
                    model_id: model,
                    ..Default::default()
                }),
                conversation_id,
                ..Default::default()
            })
        });
    let kv =
        (any::<u32>(), proptest::option::of(blob()), any::<bool>()).prop_map(|(id, data, get)| {
            M::KvClientMessage(KvClientMessage {
                id,
                message: Some(if get {
                    kv_client_message::Message::GetBlobResult(GetBlobResult {
                        blob_data: data,
                        error: None,
                    })
                } else {
                    kv_client_message::Message::SetBlobResult(SetBlobResult { error: None })
                }),
            })
        });
    let exec = (any::<u32>(), text(), mcp_success()).prop_map(|(id, exec_id, s)| {
        M::ExecClientMessage(ExecClientMessage {
            id,
            exec_id,
            local_execution_time_ms: None,
            hook_additional_contexts: Vec::new(),
            message: Some(exec_client_message::Message::McpResult(McpResult {
                result: Some(mcp_result::Result::Success(s)),
            })),
        })
    });
    let throw = (any::<u32>(), text()).prop_map(|(id, error)| {
        M::ExecClientControlMessage(ExecClientControlMessage {
            message: Some(exec_client_control_message::Message::Throw(
                ExecClientThrow {
                    id,
                    error,
                    ..Default::default()
                },
            )),
        })
    });
    prop_oneof![
        Just(M::ClientHeartbeat(ClientHeartbeat {})),
        run,
        kv,
        exec,
        throw,
    ]
    .prop_map(|m| AgentClientMessage { message: Some(m) })
}

fn server_message() -> impl Strategy<Value = AgentServerMessage> {
    use agent_server_message::Message as M;
    use interaction_update::Message as U;
    let update = prop_oneof![
        (text(), any::<bool>()).prop_map(|(text, n)| U::TextDelta(TextDeltaUpdate {
            text,
            is_server_notice: n
        })),
        text().prop_map(|text| U::ThinkingDelta(ThinkingDeltaUpdate {
            text,
            thinking_style: None
        })),
        any::<i32>().prop_map(|tokens| U::TokenDelta(TokenDeltaUpdate { tokens })),
        Just(U::Heartbeat(HeartbeatUpdate {})),
        proptest::array::uniform5(proptest::option::of(any::<i64>())).prop_map(|c| {
            U::TurnEnded(TurnEndedUpdate {
                input_tokens: c[0],
                output_tokens: c[1],
                cache_read_tokens: c[2],
                cache_write_tokens: c[3],
                reasoning_tokens: c[4],
            })
        }),
        (text(), mcp_args()).prop_map(|(call_id, args)| {
            U::ToolCallStarted(ToolCallStartedUpdate {
                call_id,
                tool_call: Some(ToolCall {
                    tool: Some(tool_call::Tool::McpToolCall(McpToolCall {
                        args: Some(args),
                        result: None,
                    })),
                    ..Default::default()
                }),
                model_call_id: String::new(),
            })
        }),
    ]
    .prop_map(|u| {
        M::InteractionUpdate(InteractionUpdate {
            message: Some(u),
            message_started_at_ms: None,
        })
    });
    let kv = (any::<u32>(), blob(), blob(), any::<bool>()).prop_map(|(id, blob_id, data, get)| {
        M::KvServerMessage(KvServerMessage {
            id,
            message: Some(if get {
                kv_server_message::Message::GetBlobArgs(GetBlobArgs { blob_id })
            } else {
                kv_server_message::Message::SetBlobArgs(SetBlobArgs {
                    blob_id,
                    blob_data: data,
                })
            }),
            span_context: None,
        })
    });
    let exec = (any::<u32>(), text(), mcp_args()).prop_map(|(id, exec_id, args)| {
        M::ExecServerMessage(ExecServerMessage {
            id,
            exec_id,
            message: Some(exec_server_message::Message::McpArgs(args)),
            ..Default::default()
        })
    });
    let checkpoint = blob().prop_map(M::ConversationCheckpointUpdate);
    prop_oneof![update, kv, exec, checkpoint].prop_map(|m| AgentServerMessage {
        message: Some(m),
        ttft_breakdown: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_messages_round_trip(msg in client_message()) {
        let wire = msg.encode_to_vec();
        prop_assert_eq!(wire.len(), msg.encoded_len());
        prop_assert_eq!(AgentClientMessage::decode(wire.as_slice()).unwrap(), msg);
    }

    #[test]
    fn server_messages_round_trip(msg in server_message()) {
        let wire = msg.encode_to_vec();
        prop_assert_eq!(wire.len(), msg.encoded_len());
        prop_assert_eq!(AgentServerMessage::decode(wire.as_slice()).unwrap(), msg);
    }

    #[test]
    fn checkpoint_bytes_are_echoed_exactly(state in blob()) {
        let server = AgentServerMessage {
            message: Some(agent_server_message::Message::ConversationCheckpointUpdate(state.clone())),
            ttft_breakdown: None,
        };
        let decoded = AgentServerMessage::decode(server.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(decoded.checkpoint(), Some(&state));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = AgentServerMessage::decode(bytes.as_slice());
        let _ = AgentClientMessage::decode(bytes.as_slice());
        let _ = cursor_proto::aiserver::v1::ErrorDetails::decode(bytes.as_slice());
    }
}
