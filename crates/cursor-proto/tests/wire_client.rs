//! Client -> server messages, hand-assembled on the wire (tag, length, value written out) and
//! checked against the generated types in both directions. These bytes prove the field
//! numbers independently of prost's own encoder.

mod common;

use bytes::Bytes;
use common::check;
use cursor_proto::agent::v1::*;
use prost_types::{Struct, Value, value::Kind};

fn client(m: agent_client_message::Message) -> AgentClientMessage {
    AgentClientMessage { message: Some(m) }
}

#[test]
fn client_heartbeat() {
    // 7 LEN (client_heartbeat) len 0
    let wire = [0x3a, 0x00];
    check(
        "client_heartbeat",
        &wire,
        &client(agent_client_message::Message::ClientHeartbeat(
            ClientHeartbeat {},
        )),
    );
}

#[test]
fn kv_set_blob_result_capture_f05() {
    // 3 LEN kv_client_message len 4 { 1 VARINT id=1, 3 LEN set_blob_result len 0 }
    let wire = [0x1a, 0x04, 0x08, 0x01, 0x1a, 0x00];
    let expected = client(agent_client_message::Message::KvClientMessage(
        KvClientMessage {
            id: 1,
            message: Some(kv_client_message::Message::SetBlobResult(SetBlobResult {
                error: None,
            })),
        },
    ));
    check("kv_set_blob_result", &wire, &expected);
}

#[test]
fn kv_get_blob_result_hit_and_miss() {
    // 3 LEN len 8 { 1 VARINT id=2, 2 LEN get_blob_result len 4 { 1 LEN blob_data len 2 "hi" } }
    let wire = [0x1a, 0x08, 0x08, 0x02, 0x12, 0x04, 0x0a, 0x02, b'h', b'i'];
    let expected = client(agent_client_message::Message::KvClientMessage(
        KvClientMessage {
            id: 2,
            message: Some(kv_client_message::Message::GetBlobResult(GetBlobResult {
                blob_data: Some(Bytes::from_static(b"hi")),
                error: None,
            })),
        },
    ));
    check("kv_get_blob_result_hit", &wire, &expected);

    // A miss: empty GetBlobResult. 3 LEN len 4 { 1 VARINT id=3, 2 LEN len 0 }
    let wire = [0x1a, 0x04, 0x08, 0x03, 0x12, 0x00];
    let expected = client(agent_client_message::Message::KvClientMessage(
        KvClientMessage {
            id: 3,
            message: Some(kv_client_message::Message::GetBlobResult(
                GetBlobResult::default(),
            )),
        },
    ));
    check("kv_get_blob_result_miss", &wire, &expected);
}

fn ok_text_success() -> McpSuccess {
    McpSuccess {
        content: vec![McpToolResultContentItem {
            content: Some(mcp_tool_result_content_item::Content::Text(
                McpTextContent {
                    text: "ok".into(),
                    output_location: None,
                },
            )),
        }],
        is_error: false,
        structured_content: None,
    }
}

#[test]
fn exec_mcp_result() {
    #[rustfmt::skip]
    let wire = [
        0x12, 0x12,                   // 2 LEN exec_client_message, len 18
        0x08, 0x01,                   //   1 VARINT id = 1
        0x5a, 0x0a,                   //   11 LEN mcp_result, len 10
        0x0a, 0x08,                   //     1 LEN success, len 8
        0x0a, 0x06,                   //       1 LEN content[0], len 6
        0x0a, 0x04,                   //         1 LEN text, len 4
        0x0a, 0x02, b'o', b'k',       //           1 LEN text "ok"
        0x7a, 0x02, b'e', b'1',       //   15 LEN exec_id "e1"
    ];
    let expected = client(agent_client_message::Message::ExecClientMessage(
        ExecClientMessage {
            id: 1,
            exec_id: "e1".into(),
            local_execution_time_ms: None,
            hook_additional_contexts: Vec::new(),
            message: Some(exec_client_message::Message::McpResult(McpResult {
                result: Some(mcp_result::Result::Success(ok_text_success())),
            })),
        },
    ));
    check("exec_mcp_result", &wire, &expected);
}

#[test]
fn exec_request_context_result() {
    #[rustfmt::skip]
    let wire = [
        0x12, 0x17,                   // 2 LEN exec_client_message, len 23 (id 0 omitted)
        0x52, 0x12,                   //   10 LEN request_context_result, len 18
        0x0a, 0x10,                   //     1 LEN success, len 16
        0x0a, 0x0e,                   //       1 LEN request_context, len 14
        0x22, 0x07,                   //         4 LEN env, len 7
        0x0a, 0x05, b'l', b'i', b'n', b'u', b'x', // 1 LEN os_version "linux"
        0x3a, 0x03,                   //         7 LEN tools[0], len 3
        0x0a, 0x01, b't',             //           1 LEN name "t"
        0x7a, 0x01, b'x',             //   15 LEN exec_id "x"
    ];
    let expected = client(agent_client_message::Message::ExecClientMessage(
        ExecClientMessage {
            id: 0,
            exec_id: "x".into(),
            local_execution_time_ms: None,
            hook_additional_contexts: Vec::new(),
            message: Some(exec_client_message::Message::RequestContextResult(
                RequestContextResult {
                    result: Some(request_context_result::Result::Success(
                        RequestContextSuccess {
                            request_context: Some(RequestContext {
                                env: Some(RequestContextEnv {
                                    os_version: "linux".into(),
                                    ..Default::default()
                                }),
                                tools: vec![McpToolDefinition {
                                    name: "t".into(),
                                    ..Default::default()
                                }],
                                ..Default::default()
                            }),
                            served_from_disk_cache: None,
                        },
                    )),
                },
            )),
        },
    ));
    check("exec_request_context_result", &wire, &expected);
}

#[test]
fn exec_control_throw() {
    #[rustfmt::skip]
    let wire = [
        0x2a, 0x08,                   // 5 LEN exec_client_control_message, len 8
        0x12, 0x06,                   //   2 LEN throw, len 6
        0x08, 0x03,                   //     1 VARINT id = 3
        0x12, 0x02, b'n', b'o',       //     2 LEN error "no"
    ];
    let expected = client(agent_client_message::Message::ExecClientControlMessage(
        ExecClientControlMessage {
            message: Some(exec_client_control_message::Message::Throw(
                ExecClientThrow {
                    id: 3,
                    error: "no".into(),
                    stack_trace: None,
                    error_code: None,
                },
            )),
        },
    ));
    check("exec_control_throw", &wire, &expected);
}

#[test]
fn exec_shell_rejected_uses_descriptor_number_4() {
    #[rustfmt::skip]
    let wire = [
        0x12, 0x11,                   // 2 LEN exec_client_message, len 17
        0x08, 0x04,                   //   1 VARINT id = 4
        0x12, 0x0a,                   //   2 LEN shell_result, len 10
        0x22, 0x08,                   //     4 LEN rejected (not [CPA]'s 5), len 8
        0x0a, 0x02, b'l', b's',       //       1 LEN command "ls"
        0x1a, 0x02, b'n', b'o',       //       3 LEN reason "no"
        0x7a, 0x01, b's',             //   15 LEN exec_id "s"
    ];
    let expected = client(agent_client_message::Message::ExecClientMessage(
        ExecClientMessage {
            id: 4,
            exec_id: "s".into(),
            local_execution_time_ms: None,
            hook_additional_contexts: Vec::new(),
            message: Some(exec_client_message::Message::ShellResult(ShellResult {
                result: Some(shell_result::Result::Rejected(ShellRejected {
                    command: "ls".into(),
                    reason: "no".into(),
                    ..Default::default()
                })),
            })),
        },
    ));
    check("exec_shell_rejected", &wire, &expected);
}

#[test]
fn exec_write_and_delete_rejected_use_6() {
    // 2 LEN len 6 { 3 LEN write_result len 4 { 6 LEN rejected len 2 { 2 LEN reason len 0 } } }
    // reason "" is omitted, so rejected is empty: 3 LEN len 2 { 6 LEN len 0 }
    let wire = [0x12, 0x04, 0x1a, 0x02, 0x32, 0x00];
    let expected = client(agent_client_message::Message::ExecClientMessage(
        ExecClientMessage {
            message: Some(exec_client_message::Message::WriteResult(WriteResult {
                result: Some(write_result::Result::Rejected(WriteRejected::default())),
            })),
            ..Default::default()
        },
    ));
    check("exec_write_rejected", &wire, &expected);
    // 2 LEN len 4 { 4 LEN delete_result len 2 { 6 LEN rejected len 0 } }
    let wire = [0x12, 0x04, 0x22, 0x02, 0x32, 0x00];
    let expected = client(agent_client_message::Message::ExecClientMessage(
        ExecClientMessage {
            message: Some(exec_client_message::Message::DeleteResult(DeleteResult {
                result: Some(delete_result::Result::Rejected(DeleteRejected::default())),
            })),
            ..Default::default()
        },
    ));
    check("exec_delete_rejected", &wire, &expected);
}

#[test]
fn interaction_response_rejected() {
    #[rustfmt::skip]
    let wire = [
        0x32, 0x0a,                   // 6 LEN interaction_response, len 10
        0x08, 0x05,                   //   1 VARINT id = 5
        0x12, 0x06,                   //   2 LEN web_search_request_response, len 6
        0x12, 0x04,                   //     2 LEN rejected, len 4
        0x0a, 0x02, b'n', b'o',       //       1 LEN reason "no"
    ];
    let expected = client(agent_client_message::Message::InteractionResponse(
        InteractionResponse {
            id: 5,
            result: Some(interaction_response::Result::WebSearchRequestResponse(
                WebSearchRequestResponse {
                    result: Some(web_search_request_response::Result::Rejected(
                        web_search_request_response::Rejected {
                            reason: "no".into(),
                        },
                    )),
                },
            )),
        },
    ));
    check("interaction_response", &wire, &expected);
}

#[test]
fn conversation_action_cancel() {
    #[rustfmt::skip]
    let wire = [
        0x22, 0x08,                   // 4 LEN conversation_action, len 8
        0x1a, 0x06,                   //   3 LEN cancel_action, len 6
        0x0a, 0x04, b's', b't', b'o', b'p', // 1 LEN reason "stop"
    ];
    let expected = client(agent_client_message::Message::ConversationAction(
        ConversationAction {
            triggering_auth_id: None,
            action: Some(conversation_action::Action::CancelAction(CancelAction {
                reason: "stop".into(),
            })),
        },
    ));
    check("conversation_action_cancel", &wire, &expected);
}

/// McpToolDefinition{name "t", description "d", input_schema {"type": "object"},
/// provider_identifier "proxy", tool_name "t"}: 38 bytes.
#[rustfmt::skip]
const TOOL: &[u8] = &[
    0x0a, 0x01, b't',                 // 1 LEN name "t"
    0x12, 0x01, b'd',                 // 2 LEN description "d"
    0x1a, 0x14,                       // 3 LEN input_schema (google.protobuf.Value), len 20
    0x2a, 0x12,                       //   5 LEN struct_value, len 18
    0x0a, 0x10,                       //     1 LEN fields entry, len 16
    0x0a, 0x04, b't', b'y', b'p', b'e', //     1 LEN key "type"
    0x12, 0x08,                       //       2 LEN value, len 8
    0x1a, 0x06, b'o', b'b', b'j', b'e', b'c', b't', // 3 LEN string_value "object"
    0x22, 0x05, b'p', b'r', b'o', b'x', b'y', // 4 LEN provider_identifier "proxy"
    0x2a, 0x01, b't',                 // 5 LEN tool_name "t"
];

fn tool() -> McpToolDefinition {
    let schema = Struct {
        fields: [(
            "type".to_owned(),
            Value {
                kind: Some(Kind::StringValue("object".into())),
            },
        )]
        .into_iter()
        .collect(),
    };
    McpToolDefinition {
        name: "t".into(),
        description: "d".into(),
        input_schema: Some(Value {
            kind: Some(Kind::StructValue(schema)),
        }),
        provider_identifier: "proxy".into(),
        tool_name: "t".into(),
        input_schema_json: None,
    }
}

#[test]
fn run_request_with_tools_and_checkpoint() {
    assert_eq!(TOOL.len(), 0x26);
    #[rustfmt::skip]
    let head: &[u8] = &[
        0x0a, 0x78,                   // 1 LEN run_request, len 120
        0x0a, 0x04,                   //   1 LEN conversation_state (opaque), len 4
        0x2a, 0x02, 0x08, 0x07,       //     the checkpoint bytes, kept verbatim
        0x12, 0x38,                   //   2 LEN action, len 56
        0x0a, 0x36,                   //     1 LEN user_message_action, len 54
        0x0a, 0x0a,                   //       1 LEN user_message, len 10
        0x0a, 0x02, b'h', b'i',       //         1 LEN text "hi"
        0x12, 0x02, b'm', b'1',       //         2 LEN message_id "m1"
        0x20, 0x01,                   //         4 VARINT mode = AGENT
        0x12, 0x28,                   //       2 LEN request_context, len 40
        0x3a, 0x26,                   //         7 LEN tools[0], len 38
    ];
    #[rustfmt::skip]
    let middle: &[u8] = &[
        0x1a, 0x09,                   //   3 LEN model_details, len 9
        0x0a, 0x01, b'm',             //     1 LEN model_id "m"
        0x1a, 0x01, b'm',             //     3 LEN display_model_id "m"
        0x22, 0x01, b'm',             //     4 LEN display_name "m"
        0x22, 0x28,                   //   4 LEN mcp_tools, len 40
        0x0a, 0x26,                   //     1 LEN mcp_tools[0], len 38
    ];
    let tail: &[u8] = &[0x2a, 0x01, b'c']; // 5 LEN conversation_id "c"
    let wire = [head, TOOL, middle, TOOL, tail].concat();
    assert_eq!(wire.len(), 2 + 0x78);

    let expected = client(agent_client_message::Message::RunRequest(AgentRunRequest {
        conversation_state: Some(Bytes::from_static(&[0x2a, 0x02, 0x08, 0x07])),
        action: Some(ConversationAction {
            triggering_auth_id: None,
            action: Some(conversation_action::Action::UserMessageAction(
                UserMessageAction {
                    user_message: Some(UserMessage {
                        text: "hi".into(),
                        message_id: "m1".into(),
                        mode: AgentMode::Agent as i32,
                        ..Default::default()
                    }),
                    request_context: Some(RequestContext {
                        tools: vec![tool()],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
        }),
        model_details: Some(ModelDetails {
            model_id: "m".into(),
            display_model_id: "m".into(),
            display_name: "m".into(),
            ..Default::default()
        }),
        mcp_tools: Some(McpTools {
            mcp_tools: vec![tool()],
        }),
        conversation_id: Some("c".into()),
        ..Default::default()
    }));
    check("run_request", &wire, &expected);
}

#[test]
fn run_request_emits_an_empty_conversation_state() {
    // The server rejects a run request without field 1, so Some(empty) must be on the wire:
    // 1 LEN run_request len 2 { 1 LEN conversation_state len 0 }
    let wire = [0x0a, 0x02, 0x0a, 0x00];
    let expected = client(agent_client_message::Message::RunRequest(AgentRunRequest {
        conversation_state: Some(Bytes::new()),
        ..Default::default()
    }));
    check("run_request_empty_state", &wire, &expected);
}
