//! Error and fault scenarios, selected by model id or header, seen by a raw h2 client.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use cursor_mock::*;
use cursor_proto::agent::v1 as pb;

async fn start() -> MockServer {
    MockServer::builder()
        .heartbeat_interval(Duration::from_millis(100))
        .start()
        .await
        .expect("start")
}

/// Opens a Run with `model` as model id, returns the call after sending the run request.
async fn run_with_model(mock: &MockServer, model: &str) -> Call {
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request(model, "hi")));
    call
}

async fn collect(call: &mut Call) -> (Vec<In>, Result<(), h2::Error>) {
    let mut items = Vec::new();
    for _ in 0..10_000 {
        match call.next().await {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, Ok(())),
            Err(e) => return (items, Err(e)),
        }
    }
    panic!("too many frames")
}

fn texts(items: &[In]) -> String {
    items
        .iter()
        .filter_map(|i| match i {
            In::Msg(pb::AgentServerMessage {
                message:
                    Some(pb::agent_server_message::Message::InteractionUpdate(pb::InteractionUpdate {
                        message: Some(pb::interaction_update::Message::TextDelta(d)),
                        ..
                    })),
                ..
            }) => Some(d.text.clone()),
            _ => None,
        })
        .collect()
}

fn end_json(items: &[In]) -> serde_json::Value {
    match items.last() {
        Some(In::End(json, _)) => json.clone(),
        other => panic!("last item is not an end-stream: {other:?}"),
    }
}

#[tokio::test]
async fn unauthenticated_end_stream_carries_the_captured_details() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::ERROR_UNAUTHENTICATED).await;
    let (items, end) = collect(&mut call).await;
    end.expect("clean HTTP/2 end");
    assert_eq!(call.status, 200);
    assert_eq!(items.len(), 2, "heartbeat then end-stream");
    let json = end_json(&items);
    assert_eq!(json["error"]["code"], "unauthenticated");
    let detail = &json["error"]["details"][0];
    assert_eq!(detail["type"], "aiserver.v1.ErrorDetails");
    assert_eq!(detail["value"], NOT_LOGGED_IN_DETAILS_B64);
    assert_eq!(detail["debug"]["error"], "ERROR_NOT_LOGGED_IN");
    let value = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(detail["value"].as_str().expect("value"))
        .expect("base64");
    let details = cursor_proto::error_details::decode(&value).expect("ErrorDetails");
    assert_eq!(details.error, 2);
    // The end-stream parses with the frame crate into a typed remote error.
    let In::End(_, raw) = items.last().expect("end") else {
        unreachable!()
    };
    let parsed = cursor_connect_frame::EndStream::parse(raw).expect("parse");
    let error = parsed.error.expect("error");
    assert_eq!(error.code(), cursor_connect_frame::Code::Unauthenticated);
    assert_eq!(error.details()[0].value().as_ref(), value.as_slice());
    assert_eq!(mock.received()[0].scenario, names::ERROR_UNAUTHENTICATED);
}

#[tokio::test]
async fn error_after_data_sends_text_first() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::ERROR_AFTER_DATA).await;
    let (items, end) = collect(&mut call).await;
    end.expect("clean HTTP/2 end");
    assert_eq!(texts(&items), PARTIAL_TEXT);
    assert_eq!(end_json(&items)["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn only_an_end_stream_on_http_200() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::ERROR_ONLY_END_STREAM).await;
    let (items, _) = collect(&mut call).await;
    assert_eq!(call.status, 200);
    assert_eq!(items.len(), 1);
    assert_eq!(end_json(&items)["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn model_retired_is_the_captured_payload_byte_for_byte() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::ERROR_MODEL_RETIRED).await;
    let (items, _) = collect(&mut call).await;
    let In::End(_, raw) = items.last().expect("end") else {
        panic!("end-stream")
    };
    assert_eq!(raw.len(), 608);
    assert_eq!(raw.as_ref(), MODEL_RETIRED_END_STREAM.as_bytes());
}

#[tokio::test]
async fn rate_limited_and_provider_errors_decode() {
    let mock = start().await;
    for (name, error, metadata) in [
        (names::ERROR_RATE_LIMITED, 50, None),
        (names::ERROR_PROVIDER, 57, Some("PROVIDER_ERROR")),
    ] {
        let mut call = run_with_model(&mock, name).await;
        let (items, _) = collect(&mut call).await;
        let json = end_json(&items);
        assert_eq!(json["error"]["code"], "resource_exhausted");
        let value = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(
                json["error"]["details"][0]["value"]
                    .as_str()
                    .expect("value"),
            )
            .expect("base64");
        let details = cursor_proto::error_details::decode(&value).expect("ErrorDetails");
        assert_eq!(details.error, error, "{name}");
        assert_eq!(details.is_expected, Some(true));
        assert_eq!(
            json["metadata"]["x-cursor-inference-request-error-type"][0].as_str(),
            metadata
        );
    }
}

#[tokio::test]
async fn header_selects_the_scenario_and_unknown_names_are_rejected() {
    let mock = start().await;
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[(SCENARIO_HEADER, names::ERROR_AFTER_DATA)]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let (items, _) = collect(&mut call).await;
    assert_eq!(texts(&items), PARTIAL_TEXT);

    let mut call = open_run(&mut h2, &[(SCENARIO_HEADER, "no-such-scenario")]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let (items, _) = collect(&mut call).await;
    let json = end_json(&items);
    assert_eq!(json["error"]["code"], "invalid_argument");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("no-such-scenario")
    );
}

#[tokio::test]
async fn registered_scenarios_take_a_script() {
    let mock = MockServer::builder()
        .named(
            "scripted",
            Scenario::new(vec![
                Step::Notice("quota warning".into()),
                Step::TextDelta("a".into()),
                Step::TurnEnded(Usage {
                    input_tokens: 1,
                    ..Usage::default()
                }),
                Step::EndOk,
            ]),
        )
        .start()
        .await
        .expect("start");
    let mut call = run_with_model(&mock, "scripted").await;
    let (items, _) = collect(&mut call).await;
    assert_eq!(items.len(), 4);
    assert_eq!(texts(&items), "quota warninga");
    assert_eq!(end_json(&items), serde_json::json!({}));
}

#[tokio::test]
async fn reset_refused_before_headers_when_chosen_by_header() {
    let mock = start().await;
    let mut h2 = connect(mock.addr()).await;
    let request = http::Request::post("http://127.0.0.1/agent.v1.AgentService/Run")
        .header("content-type", "application/connect+proto")
        .header(SCENARIO_HEADER, names::RESET_REFUSED)
        .body(())
        .expect("request");
    let mut ready = h2.clone().ready().await.expect("ready");
    let (response, _send) = ready.send_request(request, false).expect("send");
    let error = tokio::time::timeout(STEP, response)
        .await
        .expect("in time")
        .expect_err("reset");
    assert_eq!(error.reason(), Some(h2::Reason::REFUSED_STREAM));
    assert!(error.is_remote());
    h2 = ready;
    drop(h2);
}

#[tokio::test]
async fn reset_after_data() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::RESET_AFTER_DATA).await;
    let (items, end) = collect(&mut call).await;
    assert_eq!(texts(&items), PARTIAL_TEXT);
    let error = end.expect_err("reset");
    assert_eq!(error.reason(), Some(h2::Reason::INTERNAL_ERROR));
}

#[tokio::test]
async fn goaway_after_data_then_a_new_connection_works() {
    let mock = start().await;
    let (mut h2, connection) = connect_with(mock.addr(), h2::client::Builder::new()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request(names::GOAWAY, "hi")));
    let (items, end) = collect(&mut call).await;
    assert_eq!(texts(&items), PARTIAL_TEXT);
    let error = end.expect_err("in-flight stream fails");
    assert!(error.is_go_away() || error.is_io(), "{error:?}");
    // The connection ends; its GOAWAY(NO_ERROR) makes it a clean close for h2.
    let closed = tokio::time::timeout(STEP, connection)
        .await
        .expect("closes")
        .expect("join");
    assert!(closed.is_ok(), "{closed:?}");
    let mut again = connect(mock.addr()).await;
    let mut call = open_run(&mut again, &[]).await;
    call.send_msg(&run_msg(run_request(names::ERROR_ONLY_END_STREAM, "hi")));
    assert!(matches!(call.next_msg().await, In::End(..)));
    assert_eq!(mock.connections(), 2);
}

#[tokio::test]
async fn scripted_goaway_code_reaches_the_client_connection() {
    let mock = MockServer::builder()
        .scenario(Scenario::new(vec![Step::Heartbeat, Step::GoAway(0xb)]))
        .start()
        .await
        .expect("start");
    let (mut h2, connection) = connect_with(mock.addr(), h2::client::Builder::new()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let (_, end) = collect(&mut call).await;
    assert!(end.is_err());
    let closed = tokio::time::timeout(STEP, connection)
        .await
        .expect("closes")
        .expect("join");
    let error = closed.expect_err("GOAWAY with an error code");
    assert!(error.is_go_away() && error.is_remote(), "{error:?}");
    assert_eq!(error.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM));
}

#[tokio::test]
async fn dropped_connection_after_data() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::DROP_CONNECTION).await;
    let (items, end) = collect(&mut call).await;
    assert_eq!(texts(&items), PARTIAL_TEXT);
    let error = end.expect_err("connection loss");
    assert!(error.is_io() || error.reason().is_some(), "{error:?}");
}

#[tokio::test]
async fn stall_goes_silent() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::STALL).await;
    let mut items = Vec::new();
    // Heartbeat, then the text pieces each followed by a token delta; then silence.
    while texts(&items) != PARTIAL_TEXT {
        items.push(call.next_msg().await);
    }
    items.push(call.next_msg().await);
    assert!(texts(&items) == PARTIAL_TEXT);
    let started = Instant::now();
    let quiet = tokio::time::timeout(Duration::from_millis(800), call.recv.data()).await;
    assert!(quiet.is_err(), "nothing for 800 ms more");
    assert!(started.elapsed() >= Duration::from_millis(800));
    // The mock still reads: a heartbeat sent during the stall is counted.
    call.send_msg(&heartbeat_msg());
    for _ in 0..50 {
        if mock.heartbeats_seen() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(mock.heartbeats_seen(), 1);
}

#[tokio::test]
async fn flood_of_tiny_frames_with_a_big_window() {
    let mock = start().await;
    let mut builder = h2::client::Builder::new();
    builder.initial_connection_window_size(8 << 20);
    let (mut h2, _connection) = connect_with(mock.addr(), builder).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request(names::FLOOD, "hi")));
    let (items, end) = collect(&mut call).await;
    end.expect("clean end");
    assert_eq!(texts(&items), DEFAULT_TEXT.repeat(FLOOD_REPEAT));
    assert_eq!(end_json(&items), serde_json::json!({}));
    let deltas = DEFAULT_TEXT.len() * FLOOD_REPEAT;
    assert!(
        call.data_frames >= deltas,
        "{} frames for {deltas} deltas",
        call.data_frames
    );
}

#[tokio::test]
async fn split_flood_trips_the_h2_small_frame_budget_of_a_small_window() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::FLOOD_SPLIT).await;
    // Read slowly so the burst accumulates, as a busy client would.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, end) = collect(&mut call).await;
    let error = end.expect_err("h2 protects itself");
    assert_eq!(
        error.reason(),
        Some(h2::Reason::ENHANCE_YOUR_CALM),
        "{error:?}"
    );
}

#[tokio::test]
async fn split_flood_with_a_big_window_arrives_in_one_byte_frames() {
    let mock = start().await;
    let mut builder = h2::client::Builder::new();
    builder.initial_connection_window_size(8 << 20);
    let (mut h2, _connection) = connect_with(mock.addr(), builder).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request(names::FLOOD_SPLIT, "hi")));
    let (items, end) = collect(&mut call).await;
    end.expect("clean end");
    assert_eq!(texts(&items), DEFAULT_TEXT);
    assert_eq!(
        call.data_frames,
        call.raw.len(),
        "every byte in its own DATA frame"
    );
    assert!(call.data_frames > 500, "{} frames", call.data_frames);
}

#[tokio::test]
async fn missing_turn_ended_and_missing_end_stream() {
    let mock = start().await;
    let mut call = run_with_model(&mock, names::NO_END_STREAM).await;
    let (items, end) = collect(&mut call).await;
    end.expect("HTTP/2 end");
    assert_eq!(texts(&items), DEFAULT_TEXT);
    assert!(!items.iter().any(|i| matches!(i, In::End(..))));

    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[(SCENARIO_HEADER, names::NO_TURN_ENDED)]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let mut store = std::collections::HashMap::new();
    let t = drive(&mut call, &mut store, |_| String::new()).await;
    assert_eq!(t.text, DEFAULT_TEXT);
    assert!(t.turn_ended.is_none());
    assert_eq!(t.end, Some(serde_json::json!({})));
}

#[tokio::test]
async fn builtin_thinking_and_tool_call_scenarios() {
    let mock = start().await;
    let mut h2 = connect(mock.addr()).await;
    let mut store = std::collections::HashMap::new();

    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request(names::THINKING, "think")));
    let t = drive(&mut call, &mut store, |_| String::new()).await;
    assert_eq!(t.thinking, LONG_THINKING);
    assert_eq!(t.text, DEFAULT_TEXT);

    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request(names::TOOL_CALL, "tool")));
    let t = drive(&mut call, &mut store, |name| format!("{name} ok")).await;
    assert_eq!(t.tool_calls.len(), 1);
    assert_eq!(t.tool_calls[0].2, "mock_echo");
    assert!(
        t.text
            .ends_with(&format!("{TOOL_ECHO_PREFIX}mock_echo: mock_echo ok"))
    );
    assert_eq!(t.end, Some(serde_json::json!({})));
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn paused_reading_with_a_tiny_window_blocks_the_client_then_resumes() {
    let mock = MockServer::builder()
        .stream_window(16)
        .heartbeat_interval(Duration::from_millis(100))
        .scenario(Scenario::new(vec![
            Step::PauseReading(Duration::from_millis(500)),
            Step::Sleep(Duration::from_millis(300)),
            Step::TextDelta("done".into()),
            Step::EndOk,
        ]))
        .start()
        .await
        .expect("start");
    let mut h2 = connect(mock.addr()).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    // The run request is read before the script starts; now the mock stops reading.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A follow-up user message on the open stream (accepted and ignored by the mock).
    let follow_up = pb::ConversationAction {
        action: Some(pb::conversation_action::Action::UserMessageAction(
            pb::UserMessageAction {
                user_message: Some(pb::UserMessage {
                    text: "y".repeat(4096),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    let big = client(pb::agent_client_message::Message::ConversationAction(
        follow_up,
    ));
    let mut buf = bytes::BytesMut::new();
    cursor_connect_frame::Encoder::new()
        .encode(&big, &mut buf)
        .expect("encode");
    let mut data = buf.freeze();
    let started = Instant::now();
    let mut blocked_for = Duration::ZERO;
    while !data.is_empty() {
        call.send.reserve_capacity(data.len());
        let before = Instant::now();
        let n = tokio::time::timeout(STEP, std::future::poll_fn(|cx| call.send.poll_capacity(cx)))
            .await
            .expect("capacity within the step")
            .expect("capacity")
            .expect("ok");
        blocked_for = blocked_for.max(before.elapsed());
        let chunk = data.split_to(n.min(data.len()));
        call.send.send_data(chunk, false).expect("send");
    }
    assert!(
        blocked_for >= Duration::from_millis(200),
        "blocked {blocked_for:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let (items, _) = collect(&mut call).await;
    assert_eq!(texts(&items), "done");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let kinds: Vec<MessageKind> = mock.received()[0].messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [MessageKind::RunRequest, MessageKind::ConversationAction]
    );
}

#[tokio::test]
async fn the_mock_respects_a_tiny_client_receive_window() {
    let mock = start().await;
    let mut builder = h2::client::Builder::new();
    builder
        .initial_window_size(7)
        .initial_connection_window_size(8 << 20);
    let (mut h2, _connection) = connect_with(mock.addr(), builder).await;
    let mut call = open_run(&mut h2, &[]).await;
    call.send_msg(&run_msg(run_request("composer-2.5", "hi")));
    let mut store = std::collections::HashMap::new();
    let t = drive(&mut call, &mut store, |_| String::new()).await;
    assert_eq!(t.text, DEFAULT_TEXT);
    assert_eq!(t.end, Some(serde_json::json!({})));
    // A 7-byte window forces every envelope into pieces of at most 7 bytes.
    assert!(call.data_frames * 7 >= call.raw.len());
}
