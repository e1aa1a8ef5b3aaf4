//! Server -> client messages (and aiserver.v1 messages), hand-assembled on the wire and
//! checked against the generated types in both directions.

mod common;

use bytes::Bytes;
use common::check;
use cursor_proto::agent::v1::*;
use cursor_proto::aiserver::v1 as ai;
use prost_types::{Value, value::Kind};

fn server(m: agent_server_message::Message) -> AgentServerMessage {
    AgentServerMessage {
        message: Some(m),
        ttft_breakdown: None,
    }
}

fn update(m: interaction_update::Message) -> AgentServerMessage {
    server(agent_server_message::Message::InteractionUpdate(
        InteractionUpdate {
            message: Some(m),
            message_started_at_ms: None,
        },
    ))
}

#[test]
fn heartbeat() {
    // 1 LEN interaction_update len 2 { 13 LEN heartbeat len 0 }  (addenda §3)
    let wire = [0x0a, 0x02, 0x6a, 0x00];
    check(
        "heartbeat",
        &wire,
        &update(interaction_update::Message::Heartbeat(HeartbeatUpdate {})),
    );
}

#[test]
fn text_delta() {
    // 1 LEN len 6 { 1 LEN text_delta len 4 { 1 LEN text len 2 "Đ" (c4 90) } }  (capture F03)
    let wire = [0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0xc4, 0x90];
    let expected = update(interaction_update::Message::TextDelta(TextDeltaUpdate {
        text: "Đ".into(),
        is_server_notice: false,
    }));
    check("text_delta", &wire, &expected);
    // A server notice: 1 LEN len 6 { 1 LEN len 4 { 1 LEN "!" , 2 VARINT true } }
    let wire = [0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, b'!', 0x10, 0x01];
    let expected = update(interaction_update::Message::TextDelta(TextDeltaUpdate {
        text: "!".into(),
        is_server_notice: true,
    }));
    check("text_delta_notice", &wire, &expected);
}

#[test]
fn thinking_delta_and_completed() {
    // 1 LEN len 6 { 4 LEN thinking_delta len 4 { 1 LEN text "hm" } }
    let wire = [0x0a, 0x06, 0x22, 0x04, 0x0a, 0x02, b'h', b'm'];
    let expected = update(interaction_update::Message::ThinkingDelta(
        ThinkingDeltaUpdate {
            text: "hm".into(),
            thinking_style: None,
        },
    ));
    check("thinking_delta", &wire, &expected);
    // 1 LEN len 5 { 5 LEN thinking_completed len 3 { 1 VARINT 1200 = b0 09 } }  (7-byte frame)
    let wire = [0x0a, 0x05, 0x2a, 0x03, 0x08, 0xb0, 0x09];
    let expected = update(interaction_update::Message::ThinkingCompleted(
        ThinkingCompletedUpdate {
            thinking_duration_ms: 1200,
        },
    ));
    check("thinking_completed", &wire, &expected);
}

#[test]
fn token_delta() {
    // 1 LEN len 4 { 8 LEN token_delta len 2 { 1 VARINT 5 } }  (token-delta frames are 6 bytes)
    let wire = [0x0a, 0x04, 0x42, 0x02, 0x08, 0x05];
    let expected = update(interaction_update::Message::TokenDelta(TokenDeltaUpdate {
        tokens: 5,
    }));
    check("token_delta", &wire, &expected);
}

#[test]
fn turn_ended_with_five_counters() {
    #[rustfmt::skip]
    let wire = [
        0x0a, 0x0e,                   // 1 LEN interaction_update, len 14
        0x72, 0x0c,                   //   14 LEN turn_ended, len 12  (inner = capture F06)
        0x08, 0xe2, 0x59,             //     1 VARINT input_tokens = 11490
        0x10, 0x16,                   //     2 VARINT output_tokens = 22
        0x18, 0x80, 0x59,             //     3 VARINT cache_read_tokens = 11392
        0x20, 0x00,                   //     4 VARINT cache_write_tokens = 0 (sent explicitly)
        0x28, 0x12,                   //     5 VARINT reasoning_tokens = 18
    ];
    let expected = update(interaction_update::Message::TurnEnded(TurnEndedUpdate {
        input_tokens: Some(11490),
        output_tokens: Some(22),
        cache_read_tokens: Some(11392),
        cache_write_tokens: Some(0),
        reasoning_tokens: Some(18),
    }));
    check("turn_ended", &wire, &expected);
    // An older server's empty turn_ended: 1 LEN len 2 { 14 LEN len 0 }
    let wire = [0x0a, 0x02, 0x72, 0x00];
    check(
        "turn_ended_empty",
        &wire,
        &update(interaction_update::Message::TurnEnded(
            TurnEndedUpdate::default(),
        )),
    );
}

#[test]
fn tool_call_started_mcp() {
    #[rustfmt::skip]
    let wire = [
        0x0a, 0x17,                   // 1 LEN interaction_update, len 23
        0x12, 0x15,                   //   2 LEN tool_call_started, len 21
        0x0a, 0x02, b'c', b'1',       //     1 LEN call_id "c1"
        0x12, 0x0b,                   //     2 LEN tool_call, len 11
        0x7a, 0x09,                   //       15 LEN mcp_tool_call, len 9
        0x0a, 0x07,                   //         1 LEN args, len 7
        0x0a, 0x01, b't',             //           1 LEN name "t"
        0x1a, 0x02, b't', b'c',       //           3 LEN tool_call_id "tc"
        0x1a, 0x02, b'm', b'c',       //     3 LEN model_call_id "mc"
    ];
    let expected = update(interaction_update::Message::ToolCallStarted(
        ToolCallStartedUpdate {
            call_id: "c1".into(),
            tool_call: Some(ToolCall {
                tool: Some(tool_call::Tool::McpToolCall(McpToolCall {
                    args: Some(McpArgs {
                        name: "t".into(),
                        tool_call_id: "tc".into(),
                        ..Default::default()
                    }),
                    result: None,
                })),
                ..Default::default()
            }),
            model_call_id: "mc".into(),
        },
    ));
    check("tool_call_started", &wire, &expected);
}

#[test]
fn tool_call_completed_mcp_with_result() {
    #[rustfmt::skip]
    let wire = [
        0x0a, 0x1f,                   // 1 LEN interaction_update, len 31
        0x1a, 0x1d,                   //   3 LEN tool_call_completed, len 29
        0x0a, 0x02, b'c', b'1',       //     1 LEN call_id "c1"
        0x12, 0x17,                   //     2 LEN tool_call, len 23
        0x7a, 0x11,                   //       15 LEN mcp_tool_call, len 17
        0x0a, 0x03,                   //         1 LEN args, len 3
        0x0a, 0x01, b't',             //           1 LEN name "t"
        0x12, 0x0a,                   //         2 LEN result, len 10
        0x0a, 0x08,                   //           1 LEN success, len 8
        0x0a, 0x06,                   //             1 LEN content[0], len 6
        0x0a, 0x04,                   //               1 LEN text, len 4
        0x0a, 0x02, b'o', b'k',       //                 1 LEN text "ok"
        0xca, 0x03, 0x01, b'd',       //       57 LEN tool_call_id "d" (two-byte tag)
    ];
    let success = McpSuccess {
        content: vec![McpToolResultContentItem {
            content: Some(mcp_tool_result_content_item::Content::Text(
                McpTextContent {
                    text: "ok".into(),
                    output_location: None,
                },
            )),
        }],
        ..Default::default()
    };
    let expected = update(interaction_update::Message::ToolCallCompleted(
        ToolCallCompletedUpdate {
            call_id: "c1".into(),
            tool_call: Some(ToolCall {
                tool: Some(tool_call::Tool::McpToolCall(McpToolCall {
                    args: Some(McpArgs {
                        name: "t".into(),
                        ..Default::default()
                    }),
                    result: Some(McpToolResult {
                        result: Some(mcp_tool_result::Result::Success(success)),
                    }),
                })),
                tool_call_id: Some("d".into()),
                ..Default::default()
            }),
            model_call_id: String::new(),
        },
    ));
    check("tool_call_completed", &wire, &expected);
}

#[test]
fn kv_get_and_set_blob_args() {
    // 4 LEN kv_server_message len 8 { 1 VARINT id=1, 2 LEN get_blob_args len 4 { 1 LEN blob_id ab cd } }
    let wire = [0x22, 0x08, 0x08, 0x01, 0x12, 0x04, 0x0a, 0x02, 0xab, 0xcd];
    let expected = server(agent_server_message::Message::KvServerMessage(
        KvServerMessage {
            id: 1,
            message: Some(kv_server_message::Message::GetBlobArgs(GetBlobArgs {
                blob_id: Bytes::from_static(&[0xab, 0xcd]),
            })),
            span_context: None,
        },
    ));
    check("kv_get_blob_args", &wire, &expected);

    #[rustfmt::skip]
    let wire = [
        0x22, 0x0b,                   // 4 LEN kv_server_message, len 11
        0x08, 0x02,                   //   1 VARINT id = 2
        0x1a, 0x07,                   //   3 LEN set_blob_args, len 7
        0x0a, 0x01, 0xab,             //     1 LEN blob_id ab
        0x12, 0x02, b'z', b'z',       //     2 LEN blob_data "zz"
    ];
    let expected = server(agent_server_message::Message::KvServerMessage(
        KvServerMessage {
            id: 2,
            message: Some(kv_server_message::Message::SetBlobArgs(SetBlobArgs {
                blob_id: Bytes::from_static(&[0xab]),
                blob_data: Bytes::from_static(b"zz"),
            })),
            span_context: None,
        },
    ));
    check("kv_set_blob_args", &wire, &expected);
}

#[test]
fn exec_mcp_args() {
    #[rustfmt::skip]
    let wire = [
        0x12, 0x20,                   // 2 LEN exec_server_message, len 32
        0x08, 0x01,                   //   1 VARINT id = 1
        0x5a, 0x18,                   //   11 LEN mcp_args, len 24
        0x0a, 0x05, b's', b'r', b'v', b'-', b't', // 1 LEN name "srv-t"
        0x12, 0x08,                   //     2 LEN args entry, len 8
        0x0a, 0x01, b'q',             //       1 LEN key "q"
        0x12, 0x03,                   //       2 LEN value (google.protobuf.Value), len 3
        0x1a, 0x01, b'x',             //         3 LEN string_value "x"
        0x1a, 0x02, b't', b'c',       //     3 LEN tool_call_id "tc"
        0x2a, 0x01, b't',             //     5 LEN tool_name "t"
        0x7a, 0x02, b'e', b'1',       //   15 LEN exec_id "e1"
    ];
    let expected = server(agent_server_message::Message::ExecServerMessage(
        ExecServerMessage {
            id: 1,
            exec_id: "e1".into(),
            message: Some(exec_server_message::Message::McpArgs(McpArgs {
                name: "srv-t".into(),
                args: [(
                    "q".to_owned(),
                    Value {
                        kind: Some(Kind::StringValue("x".into())),
                    },
                )]
                .into_iter()
                .collect(),
                tool_call_id: "tc".into(),
                tool_name: "t".into(),
                ..Default::default()
            })),
            ..Default::default()
        },
    ));
    check("exec_mcp_args", &wire, &expected);
}

#[test]
fn exec_request_context_args() {
    // 2 LEN len 2 { 10 LEN request_context_args len 0 }  (id 0 and exec_id "" omitted)
    let wire = [0x12, 0x02, 0x52, 0x00];
    let expected = server(agent_server_message::Message::ExecServerMessage(
        ExecServerMessage {
            message: Some(exec_server_message::Message::RequestContextArgs(
                RequestContextArgs::default(),
            )),
            ..Default::default()
        },
    ));
    check("exec_request_context_args", &wire, &expected);
}

#[test]
fn exec_server_abort() {
    // 5 LEN exec_server_control_message len 4 { 1 LEN abort len 2 { 1 VARINT id=3 } }
    let wire = [0x2a, 0x04, 0x0a, 0x02, 0x08, 0x03];
    let expected = server(agent_server_message::Message::ExecServerControlMessage(
        ExecServerControlMessage {
            message: Some(exec_server_control_message::Message::Abort(
                ExecServerAbort { id: 3 },
            )),
        },
    ));
    check("exec_server_abort", &wire, &expected);
}

#[test]
fn checkpoint_update_is_opaque_bytes() {
    // 3 LEN conversation_checkpoint_update len 4 { 5 LEN token_details len 2 { 1 VARINT 7 } }
    let wire = [0x1a, 0x04, 0x2a, 0x02, 0x08, 0x07];
    let expected = server(agent_server_message::Message::ConversationCheckpointUpdate(
        Bytes::from_static(&[0x2a, 0x02, 0x08, 0x07]),
    ));
    check("checkpoint_update", &wire, &expected);
}

#[test]
fn interaction_query_and_ttft() {
    #[rustfmt::skip]
    let wire = [
        0x3a, 0x04,                   // 7 LEN interaction_query, len 4
        0x08, 0x09,                   //   1 VARINT id = 9
        0x12, 0x00,                   //   2 LEN web_search_request_query, len 0
        0x42, 0x09,                   // 8 LEN ttft_breakdown (outside the oneof), len 9
        0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // 1 I64 server_first_token_ms = 1.0
    ];
    let expected = AgentServerMessage {
        message: Some(agent_server_message::Message::InteractionQuery(
            InteractionQuery {
                id: 9,
                query: Some(interaction_query::Query::WebSearchRequestQuery(
                    WebSearchRequestQuery::default(),
                )),
            },
        )),
        ttft_breakdown: Some(TtftBreakdown {
            server_first_token_ms: 1.0,
            ..Default::default()
        }),
    };
    check("interaction_query", &wire, &expected);
}

#[test]
fn error_details_with_custom_details() {
    #[rustfmt::skip]
    let wire = [
        0x08, 0x29,                   // 1 VARINT error = 41 (ERROR_RESOURCE_EXHAUSTED)
        0x12, 0x23,                   // 2 LEN details (CustomErrorDetails), len 35
        0x0a, 0x01, b'T',             //   1 LEN title "T"
        0x12, 0x01, b'D',             //   2 LEN detail "D"
        0x20, 0x01,                   //   4 VARINT is_retryable = true
        0x3a, 0x06,                   //   7 LEN additional_info entry, len 6
        0x0a, 0x01, b'k', 0x12, 0x01, b'v', // key "k", value "v"
        0x42, 0x08,                   //   8 LEN buttons[0], len 8
        0x0a, 0x01, b'L',             //     1 LEN label "L"
        0x1a, 0x03, 0x0a, 0x01, b'm', //     3 LEN switch_model { 1 LEN suggested_model "m" }
        0x52, 0x07,                   //   10 LEN analytics_metadata, len 7
        0x0a, 0x05, b'l', b'o', b'g', b'i', b'n', // 1 LEN action_required "login"
        0x18, 0x00,                   // 3 VARINT is_expected = false (explicitly present)
    ];
    let expected = ai::ErrorDetails {
        error: ai::error_details::Error::ResourceExhausted as i32,
        details: Some(ai::CustomErrorDetails {
            title: "T".into(),
            detail: "D".into(),
            is_retryable: Some(true),
            additional_info: [("k".to_owned(), "v".to_owned())].into_iter().collect(),
            buttons: vec![ai::ErrorButton {
                label: "L".into(),
                action: Some(ai::error_button::Action::SwitchModel(
                    ai::SwitchModelAction {
                        suggested_model: Some("m".into()),
                        ..Default::default()
                    },
                )),
            }],
            analytics_metadata: Some(ai::ErrorAnalyticsMetadata {
                action_required: Some("login".into()),
            }),
            ..Default::default()
        }),
        is_expected: Some(false),
    };
    check("error_details", &wire, &expected);
}

#[test]
fn bidi_append_request() {
    #[rustfmt::skip]
    let wire = [
        0x0a, 0x04, b'3', b'a', b'0', b'0', // 1 LEN data: hex of AgentClientMessage{client_heartbeat}
        0x12, 0x03, 0x0a, 0x01, b'r', // 2 LEN request_id { 1 LEN request_id "r" }
        0x18, 0x01,                   // 3 VARINT append_seqno = 1
    ];
    let expected = ai::BidiAppendRequest {
        data: "3a00".into(),
        request_id: Some(ai::BidiRequestId {
            request_id: "r".into(),
        }),
        append_seqno: 1,
        data_binary: Bytes::new(),
    };
    check("bidi_append_request", &wire, &expected);
}

#[test]
fn server_config_response() {
    #[rustfmt::skip]
    let wire = [
        0x32, 0x01, b'v',             // 6 LEN config_version "v"
        0x38, 0x02,                   // 7 VARINT http2_config = FORCE_ALL_ENABLED
        0xda, 0x01, 0x06,             // 27 LEN agent_url_config (two-byte tag), len 6
        0x0a, 0x01, b'a',             //   1 LEN agent_url "a"
        0x12, 0x01, b'b',             //   2 LEN agentn_url "b"
    ];
    let expected = ai::GetServerConfigResponse {
        config_version: "v".into(),
        http2_config: ai::Http2Config::ForceAllEnabled as i32,
        agent_url_config: Some(ai::AgentUrlConfig {
            agent_url: "a".into(),
            agentn_url: "b".into(),
        }),
        ..Default::default()
    };
    check("server_config", &wire, &expected);
}

#[test]
fn usable_models_and_legacy_chat_text() {
    // 1 LEN models[0] len 3 { 1 LEN model_id "m" }
    let wire = [0x0a, 0x03, 0x0a, 0x01, b'm'];
    let expected = GetUsableModelsResponse {
        models: vec![ModelDetails {
            model_id: "m".into(),
            ..Default::default()
        }],
    };
    check("usable_models", &wire, &expected);
    // 2 LEN stream_unified_chat_response len 4 { 1 LEN text "hi" }
    let wire = [0x12, 0x04, 0x0a, 0x02, b'h', b'i'];
    let expected = ai::StreamUnifiedChatResponseWithTools {
        response: Some(
            ai::stream_unified_chat_response_with_tools::Response::StreamUnifiedChatResponse(
                ai::StreamUnifiedChatResponse {
                    text: "hi".into(),
                    ..Default::default()
                },
            ),
        ),
        ..Default::default()
    };
    check("legacy_chat_text", &wire, &expected);
}
