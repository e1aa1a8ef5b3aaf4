//! The HTTP/1.1 shim's strictness, over real HTTP/1.1 connections: appends are delivered in
//! `append_seqno` order whatever order they arrive in, a retried seqno counts once, and an
//! append that skips too far ahead, comes after the end, or names a request id no RunSSE stream
//! claims is refused with its own code and recorded as a violation.

mod common;

use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use common::http1::post;
use common::{heartbeat_msg, run_msg, run_request};
use cursor_connect_frame::Code;
use cursor_mock::{MAX_APPENDS_AHEAD, MessageKind, MockServer, Scenario, Step};
use cursor_proto::aiserver::v1 as ai;
use prost::Message as _;

const RUN_SSE: &str = "/agent.v1.AgentService/RunSSE";
const BIDI_APPEND: &str = "/aiserver.v1.BidiService/BidiAppend";

fn append(request_id: &str, seqno: i64, message: &Bytes) -> Bytes {
    let request = ai::BidiAppendRequest {
        data: hex::encode(message),
        request_id: Some(ai::BidiRequestId {
            request_id: request_id.to_owned(),
        }),
        append_seqno: seqno,
        ..Default::default()
    };
    Bytes::from(request.encode_to_vec())
}

async fn send_append(mock: &MockServer, id: &str, seqno: i64, message: &Bytes) -> (u16, Bytes) {
    post(
        mock,
        BIDI_APPEND,
        "application/proto",
        append(id, seqno, message),
    )
    .await
}

/// Opens the RunSSE stream of `request_id` and reads it to its end.
async fn run_sse(mock: &MockServer, request_id: &str) -> Bytes {
    let id = ai::BidiRequestId {
        request_id: request_id.to_owned(),
    }
    .encode_to_vec();
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(u32::try_from(id.len()).expect("small"));
    body.put_slice(&id);
    let (status, stream) = post(mock, RUN_SSE, "application/connect+proto", body.freeze()).await;
    assert_eq!(status, 200);
    stream
}

fn code_of(body: &Bytes) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).expect("error JSON");
    json["code"].as_str().unwrap_or_default().to_owned()
}

fn short_turn() -> Scenario {
    Scenario::new(vec![Step::TextDelta("hi".into()), Step::EndOk])
}

/// A mock playing [`short_turn`], and the run request that opens it.
async fn short_mock() -> (MockServer, Bytes) {
    let mock = MockServer::start(short_turn()).await.expect("mock");
    (mock, run_msg(run_request("composer-2.5", "hi")))
}

#[tokio::test]
async fn appends_arrive_out_of_order_and_twice_but_reach_the_turn_once_in_order() {
    let (mock, run) = short_mock().await;
    let beat = heartbeat_msg();
    // Seqno 1 first: it waits for 0; then 0, and 0 again (a retry).
    assert_eq!(send_append(&mock, "r1", 1, &beat).await.0, 200);
    assert_eq!(send_append(&mock, "r1", 0, &run).await.0, 200);
    assert_eq!(send_append(&mock, "r1", 0, &run).await.0, 200);
    let stream = run_sse(&mock, "r1").await;
    assert!(
        stream.windows(2).any(|w| w == b"hi"),
        "the turn ran: {stream:?}"
    );
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    let turn = mock
        .received()
        .into_iter()
        .find(|c| c.path == RUN_SSE)
        .expect("the RunSSE call");
    let kinds: Vec<MessageKind> = turn.messages.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [MessageKind::RunRequest, MessageKind::ClientHeartbeat]
    );
}

#[tokio::test]
async fn an_append_after_the_end_is_refused() {
    let (mock, run) = short_mock().await;
    assert_eq!(send_append(&mock, "r2", 0, &run).await.0, 200);
    run_sse(&mock, "r2").await;
    // The turn has ended (its end-stream was read); give its task a moment to close the id.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = send_append(&mock, "r2", 1, &heartbeat_msg()).await;
    assert_eq!(
        code_of(&body),
        Code::FailedPrecondition.as_str(),
        "{status}"
    );
    let violations = mock.violations();
    assert!(
        violations
            .iter()
            .any(|v| v.message.contains("after the end")),
        "{violations:?}"
    );
}

#[tokio::test]
async fn an_append_far_ahead_is_refused() {
    let mock = MockServer::start(short_turn()).await.expect("mock");
    let far = MAX_APPENDS_AHEAD + 1;
    let (_, body) = send_append(&mock, "r3", far, &heartbeat_msg()).await;
    assert_eq!(code_of(&body), Code::InvalidArgument.as_str());
    assert_eq!(mock.violations().len(), 1, "{:?}", mock.violations());
}

#[tokio::test]
async fn an_append_no_stream_claims_is_refused_after_the_reply_timeout() {
    let mock = MockServer::builder()
        .reply_timeout(Duration::from_millis(100))
        .start()
        .await
        .expect("mock");
    let beat = heartbeat_msg();
    assert_eq!(send_append(&mock, "nobody", 0, &beat).await.0, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, body) = send_append(&mock, "nobody", 1, &beat).await;
    assert_eq!(code_of(&body), Code::NotFound.as_str());
    let violations = mock.violations();
    assert!(
        violations
            .iter()
            .any(|v| v.message.contains("no RunSSE stream")),
        "{violations:?}"
    );
}
