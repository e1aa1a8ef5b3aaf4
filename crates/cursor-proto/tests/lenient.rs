//! A newer server adds fields and oneof cases; they must decode without error, and
//! checkpoints must survive a client round trip byte for byte.

use bytes::Bytes;
use cursor_proto::agent::v1::*;
use cursor_proto::checkpoint;
use prost::Message;

#[test]
fn unknown_server_message_case_decodes_as_none() {
    // 9 LEN len 2 { 1 VARINT 1 }: a top-level case this schema does not know.
    let msg = AgentServerMessage::decode(&[0x4a, 0x02, 0x08, 0x01][..]).expect("decodes");
    assert_eq!(msg.message, None);
}

#[test]
fn unknown_interaction_update_case_decodes_as_none() {
    // 1 LEN len 3 { 99 LEN (tag 9a 06) len 0 } (25-27 are known since @cursor/sdk 1.0.32)
    let msg = AgentServerMessage::decode(&[0x0a, 0x03, 0x9a, 0x06, 0x00][..]).expect("decodes");
    assert_eq!(
        msg.message,
        Some(agent_server_message::Message::InteractionUpdate(
            InteractionUpdate::default()
        ))
    );
}

#[test]
fn unknown_exec_kind_keeps_the_ids_needed_to_decline_it() {
    #[rustfmt::skip]
    let wire = [
        0x12, 0x0b,                   // 2 LEN exec_server_message, len 11
        0x08, 0x07,                   //   1 VARINT id = 7
        0x9a, 0x06, 0x02, 0x08, 0x01, //   99 LEN (tag 9a 06) len 2 { 1 VARINT 1 }: unknown kind
        0x7a, 0x02, b'e', b'7',       //   15 LEN exec_id "e7"
    ];
    let msg = AgentServerMessage::decode(&wire[..]).expect("decodes");
    let Some(agent_server_message::Message::ExecServerMessage(exec)) = msg.message else {
        panic!("not an exec message");
    };
    assert_eq!(
        (exec.id, exec.exec_id.as_str(), exec.message),
        (7, "e7", None)
    );
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    #[rustfmt::skip]
    let wire = [
        0x0a, 0x1b,                   // 1 LEN interaction_update, len 27
        0x72, 0x19,                   //   14 LEN turn_ended, len 25
        0x08, 0x05,                   //     1 VARINT input_tokens = 5
        0x30, 0x96, 0x01,             //     6 VARINT (unknown) 150
        0x39, 1, 2, 3, 4, 5, 6, 7, 8, //     7 I64 (unknown)
        0x42, 0x02, 0xff, 0x00,       //     8 LEN (unknown), not UTF-8
        0x4d, 1, 2, 3, 4,             //     9 I32 (unknown)
        0x10, 0x02,                   //     2 VARINT output_tokens = 2, after the unknowns
    ];
    let msg = AgentServerMessage::decode(&wire[..]).expect("decodes");
    let Some(agent_server_message::Message::InteractionUpdate(InteractionUpdate {
        message: Some(interaction_update::Message::TurnEnded(t)),
        ..
    })) = msg.message
    else {
        panic!("not turn_ended");
    };
    assert_eq!((t.input_tokens, t.output_tokens), (Some(5), Some(2)));
}

#[test]
fn undeclared_tool_call_cases_decode() {
    // A tool_call_started whose ToolCall is `inner`, built by hand so the case number can be one
    // this schema does not declare.
    fn started(inner: &[u8]) -> Vec<u8> {
        let nest = |field: u8, body: &[u8]| {
            let mut out = vec![(field << 3) | 2, u8::try_from(body.len()).expect("short")];
            out.extend_from_slice(body);
            out
        };
        nest(1, &nest(2, &nest(2, inner)))
    }
    let tool_call = |wire: &[u8]| {
        let msg = AgentServerMessage::decode(wire).expect("decodes");
        let Some(agent_server_message::Message::InteractionUpdate(InteractionUpdate {
            message: Some(interaction_update::Message::ToolCallStarted(started)),
            ..
        })) = msg.message
        else {
            panic!("not tool_call_started");
        };
        started.tool_call.expect("tool_call")
    };
    // Case 1 (shell) is declared with its content unmodelled: the case is known, the content
    // ({1: "ls"}) skipped.
    let shell = started(&[0x0a, 0x04, 0x0a, 0x02, b'l', b's']);
    assert_eq!(
        tool_call(&shell).tool,
        Some(tool_call::Tool::ShellToolCall(Default::default()))
    );
    // Case 90 is in no schema: skipped, tool is None. Tag (90 << 3) | 2 = 0xd2 0x05.
    let unknown = started(&[0xd2, 0x05, 0x04, 0x0a, 0x02, b'l', b's']);
    assert_eq!(tool_call(&unknown), ToolCall::default());
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    for wire in [
        &[0x0a][..],                   // tag without length
        &[0x0a, 0x05, 0x00][..],       // length past the end
        &[0x0a, 0x02, 0x0a, 0x02][..], // nested length past its parent
        &[
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ][..], // varint overflow
        &[0x0f][..],                   // wire type 7
        // text delta with invalid UTF-8 in a string field
        &[0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe][..],
    ] {
        assert!(AgentServerMessage::decode(wire).is_err(), "{wire:02x?}");
    }
}

/// A checkpoint as a newer server might send it: known fields plus fields 40 and 99 and an
/// unknown field inside the known token_details.
#[rustfmt::skip]
const CHECKPOINT: &[u8] = &[
    0x0a, 0x02, 0xaa, 0xbb,           // 1 LEN root_prompt_messages_json[0]
    0x2a, 0x06,                       // 5 LEN token_details, len 6
    0x08, 0x07,                       //   1 VARINT used_tokens = 7
    0x10, 0x09,                       //   2 VARINT max_tokens = 9
    0x30, 0x01,                       //   6 VARINT (unknown)
    0xc2, 0x02, 0x03, b'n', b'e', b'w', // 40 LEN (unknown) "new"
    0x98, 0x06, 0x2a,                 // 99 VARINT (unknown) 42
];

#[test]
fn checkpoint_with_unknown_fields_survives_byte_exact() {
    // Server -> client: 3 LEN conversation_checkpoint_update
    let mut wire = vec![0x1a, CHECKPOINT.len() as u8];
    wire.extend_from_slice(CHECKPOINT);
    let msg = AgentServerMessage::decode(wire.as_slice()).expect("decodes");
    let saved: Bytes = msg.checkpoint().cloned().expect("checkpoint");
    assert_eq!(saved.as_ref(), CHECKPOINT);
    assert_eq!(msg.encode_to_vec(), wire);

    // Client -> server on the next turn: the same bytes in conversation_state.
    let next = AgentClientMessage {
        message: Some(agent_client_message::Message::RunRequest(AgentRunRequest {
            conversation_state: Some(saved),
            ..Default::default()
        })),
    };
    let sent = next.encode_to_vec();
    let mut expected = vec![
        0x0a,
        CHECKPOINT.len() as u8 + 2,
        0x0a,
        CHECKPOINT.len() as u8,
    ];
    expected.extend_from_slice(CHECKPOINT);
    assert_eq!(sent, expected);
    let Some(agent_client_message::Message::RunRequest(r)) =
        AgentClientMessage::decode(sent.as_slice())
            .expect("decodes")
            .message
    else {
        panic!("not a run request");
    };
    assert_eq!(r.conversation_state_bytes(), CHECKPOINT);

    // The typed view still works; it just does not carry the unknown fields.
    let state = checkpoint::decode(CHECKPOINT).expect("typed decode");
    assert_eq!(
        state.root_prompt_messages_json,
        [Bytes::from_static(&[0xaa, 0xbb])]
    );
    let t = state.token_details.expect("token details");
    assert_eq!((t.used_tokens, t.max_tokens), (7, 9));
    assert!(
        checkpoint::encode(&state).len() < CHECKPOINT.len(),
        "typed re-encode is lossy"
    );
}

#[test]
fn repeated_checkpoints_are_independent_copies() {
    let a = AgentServerMessage::decode(&[0x1a, 0x02, 0x08, 0x01][..]).expect("decodes");
    let b = AgentServerMessage::decode(&[0x1a, 0x02, 0x08, 0x01][..]).expect("decodes");
    assert_eq!(a.checkpoint(), b.checkpoint());
}
