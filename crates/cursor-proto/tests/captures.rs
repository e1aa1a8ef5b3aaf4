//! Real bytes captured from Cursor's servers and clients by third parties (see
//! cursor-test-support's `vectors/`, the workspace's one copy of the shared capture set, with
//! their provenance in its README). Each must decode with the generated types, to the values the publishers
//! recorded, and re-encode to the same bytes.

mod common;

use base64::Engine as _;
use common::unhex;
use cursor_proto::agent::v1::*;
use cursor_proto::aiserver::v1 as ai;
use cursor_proto::error_details;
use prost::Message;

use cursor_test_support::envelope::split_frames as frames;
use cursor_test_support::vectors::text as vector;

fn assert_reencodes<M: Message + Default>(name: &str, bytes: &[u8]) -> M {
    let msg = M::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(msg.encode_to_vec(), bytes, "{name}: re-encode");
    msg
}

/// Decodes, re-encodes and decodes again: the same message. For captures whose field order
/// differs from prost's (prost writes a oneof at the position of its lowest-numbered member;
/// the server wrote strictly ascending numbers), so the bytes cannot be compared.
fn assert_round_trips<M: Message + Default + PartialEq + std::fmt::Debug>(
    name: &str,
    bytes: &[u8],
) -> M {
    let msg = M::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = msg.encode_to_vec();
    assert_eq!(again.len(), bytes.len(), "{name}: same length");
    assert_eq!(
        M::decode(again.as_slice()).expect("re-decode"),
        msg,
        "{name}: same message"
    );
    msg
}

fn is_heartbeat(msg: &AgentServerMessage) -> bool {
    matches!(
        &msg.message,
        Some(agent_server_message::Message::InteractionUpdate(
            InteractionUpdate {
                message: Some(interaction_update::Message::Heartbeat(_)),
                ..
            }
        ))
    )
}

#[test]
fn f01_heartbeat_frame() {
    let body = unhex(&vector("F01-heartbeat-frame.hex"));
    let frames = frames(&body);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, 0);
    let msg: AgentServerMessage = assert_reencodes("F01", frames[0].1);
    assert!(is_heartbeat(&msg));
}

#[test]
fn f02_heartbeat_then_end_stream_error() {
    let body = unhex(&vector("F02-run-heartbeat-then-invalid-argument.hex"));
    assert_eq!(body.len(), 118);
    let frames = frames(&body);
    assert_eq!(frames.len(), 2);
    let msg: AgentServerMessage = assert_reencodes("F02[0]", frames[0].1);
    assert!(is_heartbeat(&msg));
    let (flags, json) = frames[1];
    assert_eq!(flags, 0x02, "end-stream flag");
    assert_eq!(json.len(), 0x68);
    let text = std::str::from_utf8(json).expect("end-stream JSON is UTF-8");
    assert!(text.contains("\"code\":\"invalid_argument\""), "{text}");
    assert!(
        text.contains("First message must be a run request"),
        "{text}"
    );
}

#[test]
fn f03_text_delta() {
    let msg: AgentServerMessage =
        assert_reencodes("F03", &unhex(&vector("F03-text-delta-payload.hex")));
    let Some(agent_server_message::Message::InteractionUpdate(InteractionUpdate {
        message: Some(interaction_update::Message::TextDelta(delta)),
        ..
    })) = msg.message
    else {
        panic!("not a text delta: {msg:?}");
    };
    assert_eq!(delta.text, "Đ");
    assert!(!delta.is_server_notice);
}

#[test]
fn f04_exec_mcp_state_args_without_exec_id() {
    let bytes = unhex(&vector("F04-exec-server-mcp-state-args.hex"));
    // Server order: 1, 19 (span), 36 (oneof member), 55; prost puts the oneof after 1.
    let msg: AgentServerMessage = assert_round_trips("F04", &bytes);
    let Some(agent_server_message::Message::ExecServerMessage(exec)) = msg.message else {
        panic!("not an exec message: {msg:?}");
    };
    assert_eq!(exec.id, 1);
    assert_eq!(exec.exec_id, "", "missing exec_id reads as empty");
    let span = exec.span_context.expect("span context");
    assert_eq!(span.trace_id, "5d9fdd529d445590b29644e408240a4f");
    assert_eq!(span.span_id, "67ed5ec658bd8ac2");
    assert_eq!(span.trace_flags, Some(0));
    assert_eq!(exec.accept_hook_additional_contexts, Some(false));
    let Some(exec_server_message::Message::McpStateExecArgs(args)) = exec.message else {
        panic!("not mcp_state_exec_args");
    };
    assert_eq!(args.server_identifiers, ["omniroute"]);
}

#[test]
fn f05_kv_set_blob_result() {
    let msg: AgentClientMessage =
        assert_reencodes("F05", &unhex(&vector("F05-client-kv-set-blob-result.hex")));
    let Some(agent_client_message::Message::KvClientMessage(kv)) = msg.message else {
        panic!("not a kv message");
    };
    assert_eq!(kv.id, 1);
    assert!(matches!(
        kv.message,
        Some(kv_client_message::Message::SetBlobResult(_))
    ));
}

#[test]
fn f06_turn_ended_counters() {
    let t: TurnEndedUpdate =
        assert_reencodes("F06", &unhex(&vector("F06-turn-ended-usage-inner.hex")));
    assert_eq!(
        (
            t.input_tokens,
            t.output_tokens,
            t.cache_read_tokens,
            t.cache_write_tokens,
            t.reasoning_tokens
        ),
        (Some(11490), Some(22), Some(11392), Some(0), Some(18))
    );
}

#[test]
fn e01_error_details_not_logged_in() {
    let b64 = vector("E01-errordetails-not-logged-in.b64");
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(b64.trim())
        .expect("base64");
    let d: ai::ErrorDetails = assert_reencodes("E01", &bytes);
    assert_eq!(d.error_name(), Some("ERROR_NOT_LOGGED_IN"));
    assert_eq!(d.is_expected, Some(true));
    let c = d.details.expect("custom details");
    assert_eq!(c.title, "Authentication error");
    assert_eq!(
        c.detail,
        "If you are logged in, try logging out and back in."
    );
    assert_eq!(c.is_retryable, Some(false), "explicit false is kept");
    assert_eq!(
        c.analytics_metadata.expect("analytics").action_required,
        Some("login".to_owned())
    );
}

#[test]
fn e02_error_details_model_no_longer_supported() {
    let json = vector("E02-endstream-model-no-longer-supported.json");
    assert!(json.contains("\"type\":\"aiserver.v1.ErrorDetails\""));
    // The base64 "value" of the single detail (no JSON parser needed for one field).
    let start = json.find("\"value\":\"").expect("value key") + "\"value\":\"".len();
    let end = start + json[start..].find('"').expect("closing quote");
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(json[start..end].trim_end_matches('='))
        .expect("base64");
    let d: ai::ErrorDetails = assert_reencodes("E02", &bytes);
    assert_eq!(d.error_name(), Some("ERROR_MODEL_NO_LONGER_SUPPORTED"));
    assert_eq!(d.error, 61);
    assert_eq!(d.is_expected, Some(true));
    let name = d.error_name().unwrap_or_default();
    let c = d.details.expect("custom details");
    assert_eq!(c.title, "Composer 2 is retired");
    assert_eq!(
        (c.is_retryable, c.show_request_id),
        (Some(false), Some(false))
    );
    assert_eq!(c.buttons.len(), 1);
    assert_eq!(c.buttons[0].label, "Switch model");
    assert_eq!(
        match &c.buttons[0].action {
            Some(ai::error_button::Action::SwitchModel(s)) => s.suggested_model.as_deref(),
            None => None,
        },
        Some("composer-2.5")
    );
    // The debug JSON names the same enum value.
    assert!(json.contains(&format!("\"error\":\"{name}\"")));
    assert_eq!(
        error_details::error_from_name("ERROR_MODEL_NO_LONGER_SUPPORTED").map(|e| e as i32),
        Some(61)
    );
}

#[test]
fn m01_available_models_request() {
    let r: ai::AvailableModelsRequest =
        assert_reencodes("M01", &unhex(&vector("M01-availablemodels-request.hex")));
    assert!(r.exclude_max_named_models);
    assert!(!r.is_nightly && !r.include_long_context_models);
}

#[test]
fn r01_check_queue_position_request() {
    let r: ai::CheckQueuePositionRequest =
        assert_reencodes("R01", &unhex(&vector("R01-checkqueueposition-request.hex")));
    assert_eq!(r.orig_request_id, "a3980c8b-8f36-4718-a89d-d1b7d6539bb1");
    let m = r.model_details.expect("model details");
    assert_eq!(m.model_name.as_deref(), Some("gemini-3-pro"));
    // Field 4 is an empty azure_state message, present on the wire.
    assert_eq!(m.azure_state, Some(ai::AzureState::default()));
}

#[test]
fn r02_unmodelled_request_decodes_leniently() {
    // GetClientUsageDataRequest is not in the schema. Decoding it as a message that only knows
    // field 1 (a string) must succeed and skip field 2 (a varint unix timestamp).
    let bytes = unhex(&vector("R02-getclientusagedata-request.hex"));
    let r = ai::BidiRequestId::decode(bytes.as_slice()).expect("lenient decode");
    assert_eq!(r.request_id, "a5d7e89a-2f78-4767-a67c-ae64a98237a4");
    // The skipped field really was there: the tail is tag 0x10 and varint 1766009970.
    let tail = &bytes[bytes.len() - 6..];
    assert_eq!(tail[0], 0x10);
    let mut v = 0u64;
    for (i, b) in tail[1..].iter().enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
    }
    assert_eq!(v, 1_766_009_970);
}
