//! Poll mode's own behaviour against cursor-mock: several polls per turn, and each fault
//! (a seqno gap, a repeated seqno, a dropped poll, a poll past its deadline, an append that
//! times out) ending the run in its own typed error within its deadline.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use cursor_connect::frame::{Code, ConnectError, Origin};
use cursor_connect::http1::{self, Channel, Endpoint, ShimOptions};
use cursor_connect::{Credentials, CursorClient, Event, RunRequest, ToolResult, Transport};
use cursor_mock::{MockServer, PollFault, names};
use cursor_proto::agent::v1 as pb;
use cursor_proto::paths::{AGENT_RUN_POLL, AISERVER_BIDI_APPEND};
use prost::Message as _;

fn client(mock: &MockServer, mode: Transport) -> CursorClient {
    CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .transport(mode)
        .stall_timeout(Duration::from_secs(5))
        .http1_append_deadline(Duration::from_millis(300))
        .build()
        .expect("client builds")
}

/// The HTTP/1.1 transport error kind behind a run's failure, if it is one.
fn http1_kind(e: &ConnectError) -> Option<http1::ErrorKind> {
    let source = std::error::Error::source(e)?;
    source
        .downcast_ref::<http1::Error>()
        .map(http1::Error::kind)
}

/// Runs the default turn on a mock with `fault`; returns the error and how long it took.
async fn faulted(fault: PollFault) -> (ConnectError, Duration) {
    let mock = MockServer::builder()
        .poll_fault(fault)
        .start()
        .await
        .unwrap();
    let started = Instant::now();
    let out = run_to_end(
        &client(&mock, Transport::Http1Poll),
        RunRequest::new("composer-2.5", "hi"),
    )
    .await;
    let e = expect_error(&out);
    let ce = e.connect_error().expect("a connect error").clone();
    (ce, started.elapsed())
}

#[tokio::test]
async fn a_turn_spans_several_polls() {
    let mock = MockServer::builder()
        .poll_window(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let c = client(&mock, Transport::Http1Poll);
    let req = RunRequest::new(names::TOOL_CALL, "use it").tools(vec![tool("mock_echo")]);
    let mut run = c.agent().run(req).await.unwrap();
    let call = tokio::time::timeout(RUN_DEADLINE, async {
        loop {
            if let Event::ToolCall(call) = run.next_event().await.unwrap().unwrap() {
                break call;
            }
        }
    })
    .await
    .unwrap();
    // Long enough for a few empty polls while the server waits for the result.
    tokio::time::sleep(Duration::from_millis(350)).await;
    run.respond(&call.id, ToolResult::text("pong"))
        .await
        .unwrap();
    let out = collect(&mut run).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert!(out.text.ends_with("mock_echo: pong"), "{}", out.text);
    let polls = mock
        .received()
        .iter()
        .filter(|c| c.path == AGENT_RUN_POLL.path)
        .count();
    assert!(polls >= 3, "{polls} polls");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn a_poll_gap_is_its_own_error() {
    let (e, took) = faulted(PollFault::SkipSeqno { at: 3 }).await;
    assert_eq!(http1_kind(&e), Some(http1::ErrorKind::PollGap), "{e}");
    assert_eq!(e.code(), Code::DataLoss);
    assert_eq!(e.origin(), Origin::Transport);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_duplicate_seqno_is_its_own_error() {
    let (e, took) = faulted(PollFault::RepeatSeqno { at: 2 }).await;
    assert_eq!(
        http1_kind(&e),
        Some(http1::ErrorKind::DuplicateSeqno),
        "{e}"
    );
    assert!(e.message().contains("seqno 2 again"), "{e}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_dropped_poll_is_a_transport_error() {
    let (e, took) = faulted(PollFault::DropConnection { at: 4 }).await;
    assert_eq!(http1_kind(&e), Some(http1::ErrorKind::Io), "{e}");
    let cause = e.transport_cause().expect("transport cause");
    assert!(cause.response_started && !cause.retry_safe);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// An append the server never answers fails the run on both HTTP/1.1 modes, at the append's
/// deadline (300 ms here), long before the stall timeout (5 s).
#[tokio::test]
async fn an_append_timing_out_fails_the_run() {
    for mode in [Transport::Http1Stream, Transport::Http1Poll] {
        let mock = MockServer::builder()
            .stall_appends_from(1)
            .start()
            .await
            .unwrap();
        let started = Instant::now();
        let out = run_to_end(&client(&mock, mode), RunRequest::new("composer-2.5", "hi")).await;
        let took = started.elapsed();
        let e = expect_error(&out);
        let ce = e.connect_error().expect("connect error");
        assert_eq!(ce.code(), Code::DeadlineExceeded, "{mode}: {e}");
        assert!(
            ce.message().contains("bidi_append_deadline_exceeded"),
            "{mode}: {e}"
        );
        assert!(took < Duration::from_secs(3), "{mode}: {took:?}");
    }
}

/// A poll that the server holds open past the client's poll deadline fails with `Deadline`.
#[tokio::test]
async fn a_poll_past_its_deadline_fails() {
    let mock = MockServer::builder()
        .poll_window(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let channel = Channel::new(Endpoint::from_url(&mock.url()).unwrap());
    let id = cursor_connect::uuid_v4();
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    headers.insert("x-request-id", id.parse().unwrap());
    headers.insert("x-mock-scenario", names::STALL.parse().unwrap());
    let mut opts = ShimOptions::default();
    opts.poll.poll_timeout = Duration::from_millis(400);
    let (mut appender, mut stream) = channel.poll(
        AGENT_RUN_POLL.path,
        AISERVER_BIDI_APPEND.path,
        headers,
        &id,
        opts,
    );
    let run = pb::AgentClientMessage {
        message: Some(pb::agent_client_message::Message::RunRequest(
            pb::AgentRunRequest::default(),
        )),
    };
    appender
        .send(Bytes::from(run.encode_to_vec()))
        .await
        .unwrap();
    let started = Instant::now();
    let end = tokio::time::timeout(RUN_DEADLINE, async {
        loop {
            if let Err(e) = stream.message().await {
                break e;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(http1_kind(&end), Some(http1::ErrorKind::Deadline), "{end}");
    assert!(end.message().contains("poll_deadline_exceeded"), "{end}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Sticky.
    assert!(stream.message().await.is_err());
}
