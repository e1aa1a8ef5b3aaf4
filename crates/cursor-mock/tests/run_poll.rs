//! `RunPoll` over real HTTP/1.1 connections: a turn handed out by polls numbered from 0 and
//! ended by `eof`, and the mock's strictness (a poll nobody started, a second start, two polls
//! of one id at once), each refused with its own code and recorded as a violation.

mod common;

use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use common::http1::post;
use common::{run_msg, run_request};
use cursor_connect_frame::{Code, Decoder, Direction};
use cursor_mock::{MockServer, Scenario, Step};
use cursor_proto::agent::v1 as pb;
use cursor_proto::aiserver::v1 as ai;
use prost::Message as _;

const RUN_POLL: &str = "/agent.v1.AgentService/RunPoll";
const BIDI_APPEND: &str = "/aiserver.v1.BidiService/BidiAppend";

fn request_id(id: &str) -> Option<ai::BidiRequestId> {
    Some(ai::BidiRequestId {
        request_id: id.to_owned(),
    })
}

async fn poll(mock: &MockServer, id: &str, start: bool) -> (u16, Bytes) {
    let request = ai::BidiPollRequest {
        request_id: request_id(id),
        start_request: start.then_some(true),
    }
    .encode_to_vec();
    let mut body = BytesMut::new();
    body.put_u8(0);
    body.put_u32(u32::try_from(request.len()).expect("small"));
    body.put_slice(&request);
    post(mock, RUN_POLL, "application/connect+proto", body.freeze()).await
}

async fn append(mock: &MockServer, id: &str, seqno: i64, message: &Bytes) -> u16 {
    let request = ai::BidiAppendRequest {
        data: hex::encode(message),
        request_id: request_id(id),
        append_seqno: seqno,
        ..Default::default()
    };
    let body = Bytes::from(request.encode_to_vec());
    post(mock, BIDI_APPEND, "application/proto", body).await.0
}

/// The poll messages of one poll body, and its end-stream JSON.
fn poll_messages(body: &Bytes) -> (Vec<ai::BidiPollResponse>, Bytes) {
    let mut decoder = Decoder::new(Direction::Response);
    let mut buf = BytesMut::from(body.as_ref());
    let mut messages = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).expect("envelopes") {
        if frame.is_end_stream() {
            return (messages, frame.payload);
        }
        messages.push(ai::BidiPollResponse::decode(frame.payload).expect("poll message"));
    }
    panic!("poll body without an end-stream");
}

fn code_of(body: &Bytes) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).expect("error JSON");
    json["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_turn_comes_by_polls_numbered_from_zero_and_ends_with_eof() {
    let turn = Scenario::new(vec![Step::TextDelta("hi".into()), Step::EndOk]);
    let mock = MockServer::builder()
        .scenario(turn)
        .poll_window(Duration::from_millis(200))
        .start()
        .await
        .expect("mock");
    assert_eq!(
        append(&mock, "p1", 0, &run_msg(run_request("m", "x"))).await,
        200
    );
    let mut all = Vec::new();
    let mut start = true;
    let end = loop {
        let (status, body) = poll(&mock, "p1", start).await;
        assert_eq!(status, 200);
        start = false;
        let (messages, end) = poll_messages(&body);
        let eof = messages.iter().any(|m| m.eof == Some(true));
        all.extend(messages);
        if eof {
            break end;
        }
        assert_eq!(&end[..], b"{}", "a window ends cleanly");
        assert!(all.len() < 100, "bounded");
    };
    assert_eq!(&end[..], b"{}");
    let seqnos: Vec<i64> = all.iter().map(|m| m.seqno).collect();
    assert_eq!(seqnos, (0..all.len() as i64).collect::<Vec<_>>());
    let text: String = all
        .iter()
        .filter(|m| !m.data.is_empty())
        .filter_map(|m| {
            let bytes = hex::decode(&m.data).expect("hex data");
            let msg = pb::AgentServerMessage::decode(bytes.as_slice()).expect("server message");
            match msg.message? {
                pb::agent_server_message::Message::InteractionUpdate(u) => match u.message? {
                    pb::interaction_update::Message::TextDelta(t) => Some(t.text),
                    _ => None,
                },
                _ => None,
            }
        })
        .collect();
    assert_eq!(text, "hi");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn polls_nobody_started_twice_started_or_at_once_are_refused() {
    let mock = MockServer::builder()
        .poll_window(Duration::from_millis(800))
        .start()
        .await
        .expect("mock");
    let (_, body) = poll(&mock, "nobody", false).await;
    assert_eq!(code_of(&body), Code::NotFound.as_str());
    // The first poll of "p2" stays open for its window (the turn waits for its run request),
    // while a second start and a concurrent poll come in.
    let (open, second) = tokio::join!(poll(&mock, "p2", true), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let again = poll(&mock, "p2", true).await;
        let concurrent = poll(&mock, "p2", false).await;
        (again, concurrent)
    });
    assert_eq!(open.0, 200);
    let (again, concurrent) = second;
    assert_eq!(code_of(&again.1), Code::AlreadyExists.as_str());
    assert_eq!(code_of(&concurrent.1), Code::FailedPrecondition.as_str());
    let violations: Vec<String> = mock.violations().into_iter().map(|v| v.message).collect();
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert!(violations.iter().any(|v| v.contains("no poll started")));
    assert!(
        violations
            .iter()
            .any(|v| v.contains("second start_request"))
    );
    assert!(violations.iter().any(|v| v.contains("at once")));
}
