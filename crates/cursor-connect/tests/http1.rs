//! The `Run` feature set over both HTTP/1.1 modes (RunSSE or RunPoll, plus BidiAppend) against
//! cursor-mock, faults on that path, and `Transport::Auto`'s choice and fallback.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use cursor_connect::frame::{Code, Origin};
use cursor_connect::http1::{AppendEncoding, Channel, Endpoint, ShimOptions};
use cursor_connect::{
    Credentials, CursorClient, ErrorKind, Event, RunRequest, ToolResult, Transport,
};
use cursor_mock::{MessageKind, MockServer, Scenario, names};
use cursor_proto::agent::v1 as pb;
use cursor_proto::aiserver::v1::Http2Config;
use cursor_proto::paths::{AGENT_RUN, AGENT_RUN_POLL, AGENT_RUN_SSE, AISERVER_BIDI_APPEND};
use prost::Message as _;

/// The HTTP/1.1 transports every scenario runs over.
const MODES: [Transport; 2] = [Transport::Http1Stream, Transport::Http1Poll];

/// The server-stream method of `mode`.
fn stream_path(mode: Transport) -> &'static str {
    match mode {
        Transport::Http1Poll => AGENT_RUN_POLL.path,
        _ => AGENT_RUN_SSE.path,
    }
}

fn h1_builder(url: &str, mode: Transport) -> cursor_connect::ClientBuilder {
    CursorClient::builder()
        .base_url(url)
        .credentials(Credentials::access_token(TOKEN))
        .transport(mode)
}

fn h1_client(url: &str, mode: Transport) -> CursorClient {
    h1_builder(url, mode).build().expect("client builds")
}

/// The first call of `mode`'s stream method: the one the turn's client messages are recorded
/// under.
fn stream_call(mock: &MockServer, mode: Transport) -> cursor_mock::ReceivedCall {
    let path = stream_path(mode);
    let found = mock.received().into_iter().find(|c| c.path == path);
    found.expect("a stream call")
}

/// Every turn went over `mode`'s stream only, fed by appends numbered 0.. without gaps per
/// request id.
fn assert_shim_only(mock: &MockServer, mode: Transport) {
    let calls = mock.received();
    assert!(
        calls.iter().all(|c| c.path != AGENT_RUN.path),
        "no HTTP/2 Run"
    );
    assert!(calls.iter().any(|c| c.path == stream_path(mode)));
    let mut by_id: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for m in calls
        .iter()
        .filter(|c| c.path == AISERVER_BIDI_APPEND.path)
        .flat_map(|c| c.messages.iter())
    {
        let req = cursor_proto::aiserver::v1::BidiAppendRequest::decode(m.payload.clone())
            .expect("append body");
        let id = req.request_id.map(|r| r.request_id).unwrap_or_default();
        by_id.entry(id).or_default().push(req.append_seqno);
    }
    assert!(!by_id.is_empty());
    for (id, mut seqnos) in by_id {
        seqnos.sort_unstable();
        let in_order = seqnos.iter().enumerate().all(|(i, s)| *s == i as i64);
        assert!(in_order, "{id}: {seqnos:?}");
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

#[tokio::test]
async fn plain_turn_text_thinking_kv_and_request_context() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let c = h1_client(&mock.url(), mode);
        let mut run = c
            .agent()
            .run(RunRequest::new("composer-2.5", "hello"))
            .await
            .unwrap();
        assert_eq!(run.transport(), mode);
        let out = collect(&mut run).await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
        assert_eq!(out.thinking, cursor_mock::DEFAULT_THINKING);
        assert_eq!(out.thinking_completed, 1);
        assert!(out.usage.is_some() && out.tokens > 0);
        assert_eq!(run.checkpoint().as_ref(), out.checkpoints.last());
        assert_shim_only(&mock, mode);
        let calls = mock.received();
        let sse = stream_call(&mock, mode);
        assert_eq!(sse.messages[0].kind, MessageKind::RunRequest);
        assert_eq!(sse.messages_of(MessageKind::KvSetResult).count(), 2);
        assert_eq!(sse.messages_of(MessageKind::ExecResult).count(), 1);
        assert_eq!(sse.headers["x-cursor-streaming"], "true");
        // Every call of the pair carries the stream's request id.
        let id = sse.headers["x-request-id"].clone();
        for c in calls.iter().filter(|c| c.path == AISERVER_BIDI_APPEND.path) {
            assert_eq!(c.headers["x-request-id"], id);
        }
    }
}

#[tokio::test]
async fn data_binary_appends_complete_a_turn() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let c = h1_builder(&mock.url(), mode)
            .http1_append_encoding(AppendEncoding::Binary)
            .build()
            .unwrap();
        let out = run_to_end(&c, RunRequest::new("composer-2.5", "hello")).await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
        assert_shim_only(&mock, mode);
        let append = mock
            .received()
            .into_iter()
            .find(|c| c.path == AISERVER_BIDI_APPEND.path)
            .unwrap();
        let req = cursor_proto::aiserver::v1::BidiAppendRequest::decode(
            append.messages[0].payload.clone(),
        )
        .unwrap();
        assert!(req.data.is_empty() && !req.data_binary.is_empty());
    }
}

#[tokio::test]
async fn thinking_turn() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let req = RunRequest::new(names::THINKING, "think").thinking(true);
        let out = run_to_end(&h1_client(&mock.url(), mode), req).await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        assert_eq!(out.thinking, cursor_mock::LONG_THINKING);
        assert_shim_only(&mock, mode);
    }
}

#[tokio::test]
async fn tool_call_answered_inline() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let c = h1_client(&mock.url(), mode);
        let req = RunRequest::new(names::TOOL_CALL, "use the tool").tools(vec![tool("mock_echo")]);
        let mut run = c.agent().run(req).await.unwrap();
        let out = collect_with(&mut run, 1, |_| ToolResult::text("pong")).await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        let tail = format!("{}mock_echo: pong", cursor_mock::TOOL_ECHO_PREFIX);
        assert!(out.text.ends_with(&tail), "{}", out.text);
        assert_shim_only(&mock, mode);
    }
}

#[tokio::test]
async fn three_parallel_tool_calls() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let c = h1_client(&mock.url(), mode);
        let tools = vec![tool("alpha"), tool("beta"), tool("gamma")];
        let mut run = c
            .agent()
            .run(RunRequest::new("composer-2.5", "t").tools(tools))
            .await
            .unwrap();
        let out = collect_with(&mut run, 3, |c| ToolResult::text(format!("{}-ok", c.name))).await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        for name in ["alpha", "beta", "gamma"] {
            assert!(
                out.text.contains(&format!("{name}: {name}-ok")),
                "{}",
                out.text
            );
        }
        assert_shim_only(&mock, mode);
    }
}

#[tokio::test]
async fn checkpoint_and_second_turn() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let c = h1_client(&mock.url(), mode);
        let first = RunRequest::new("composer-2.5", "first").conversation_id("conv-h1");
        let mut run = c.agent().run(first).await.unwrap();
        assert!(matches!(collect(&mut run).await.end, Some(Ok(()))));
        let cp = run.checkpoint().expect("checkpoint");
        assert_eq!(Some(&cp), mock.checkpoint("conv-h1").as_ref());
        let second = RunRequest::new("composer-2.5", "second")
            .conversation_id("conv-h1")
            .checkpoint(cp);
        let out = run_to_end(&c, second).await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        assert_shim_only(&mock, mode);
    }
}

#[tokio::test]
async fn cancel_ends_the_turn() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let c = h1_client(&mock.url(), mode);
        let req = RunRequest::new(names::TOOL_CALL, "x").tools(vec![tool("mock_echo")]);
        let mut run = c.agent().run(req).await.unwrap();
        let fut = async {
            let mut canceled = false;
            loop {
                match run.next_event().await {
                    Ok(Some(Event::ToolCall(_))) if !canceled => {
                        run.cancel().await.unwrap();
                        canceled = true;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break Ok(canceled),
                    Err(e) => break Err(e),
                }
            }
        };
        let end = tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .unwrap();
        assert!(matches!(end, Ok(true)), "{end:?}");
        let sse = stream_call(&mock, mode);
        assert!(
            sse.messages_of(MessageKind::ConversationAction)
                .next()
                .is_some()
        );
    }
}

#[tokio::test]
async fn unsupported_execs_are_answered() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let out = run_to_end(
            &h1_client(&mock.url(), mode),
            RunRequest::new(names::UNSUPPORTED_EXECS, "x"),
        )
        .await;
        assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
        assert_shim_only(&mock, mode);
    }
}

async fn failed(name: &str, mode: Transport) -> (Outcome, cursor_connect::Error, Duration) {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = h1_builder(&mock.url(), mode)
        .stall_timeout(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let out = run_to_end(&c, RunRequest::new(name, "x")).await;
    let e = expect_error(&out);
    if name == names::STALL {
        // Client heartbeats kept flowing as appends while the server was silent.
        assert!(mock.heartbeats_seen() >= 2, "{}", mock.heartbeats_seen());
    }
    (out, e, started.elapsed())
}

#[tokio::test]
async fn errors_are_typed_after_data_and_before() {
    for mode in MODES {
        let (out, e, _) = failed(names::ERROR_AFTER_DATA, mode).await;
        assert!(!out.text.is_empty());
        assert_eq!(e.connect_error().unwrap().code(), Code::Unauthenticated);
        assert!(!e.is_before_output());
        let (_, e, _) = failed(names::ERROR_UNAUTHENTICATED, mode).await;
        assert_eq!(e.connect_error().unwrap().code(), Code::Unauthenticated);
        let (_, e, _) = failed(names::ERROR_RATE_LIMITED, mode).await;
        assert_eq!(e.connect_error().unwrap().code(), Code::ResourceExhausted);
        let (_, e, _) = failed(names::ERROR_MODEL_RETIRED, mode).await;
        assert_eq!(e.connect_error().unwrap().code(), Code::InvalidArgument);
        let (_, e, _) = failed(names::NO_TURN_ENDED, mode).await;
        assert_eq!(e.kind(), ErrorKind::MissingTurnEnded);
    }
}

#[tokio::test]
async fn stream_dropped_mid_turn_is_a_transport_error_in_time() {
    for mode in MODES {
        for name in [
            names::RESET_AFTER_DATA,
            names::DROP_CONNECTION,
            names::NO_END_STREAM,
        ] {
            let (_, e, took) = failed(name, mode).await;
            let ce = e.connect_error().expect("connect error");
            assert_eq!(ce.origin(), Origin::Transport, "{name}: {e}");
            assert!(took < Duration::from_secs(5), "{name}: {took:?}");
        }
        let (out, e, took) = failed(names::STALL, mode).await;
        assert_eq!(out.text, cursor_mock::PARTIAL_TEXT);
        assert_eq!(e.kind(), ErrorKind::Stalled);
        assert!(took < Duration::from_secs(6), "{took:?}");
    }
}

/// The transport alone: an append after the stream ended is refused by the server, and the
/// refusal comes back as a typed error from the appender (and would end the stream).
#[tokio::test]
async fn refused_append_is_a_typed_error() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let channel = Channel::new(Endpoint::from_url(&mock.url()).unwrap());
    let id = cursor_connect::uuid_v4();
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    headers.insert("x-request-id", id.parse().unwrap());
    headers.insert(
        "x-mock-scenario",
        names::ERROR_ONLY_END_STREAM.parse().unwrap(),
    );
    let (mut appender, mut stream) = channel.shim(
        AGENT_RUN_SSE.path,
        AISERVER_BIDI_APPEND.path,
        headers,
        &id,
        ShimOptions::default(),
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
    let end = tokio::time::timeout(RUN_DEADLINE, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => {}
                other => break other,
            }
        }
    })
    .await
    .unwrap();
    assert!(end.is_err(), "{end:?}");
    eprintln!("stream ended with {end:?}");
    appender.flush().await.unwrap();
    let beat = pb::AgentClientMessage {
        message: Some(pb::agent_client_message::Message::ClientHeartbeat(
            pb::ClientHeartbeat {},
        )),
    };
    // The mock forgets the stream right after its end; an append after that is refused.
    let e = tokio::time::timeout(RUN_DEADLINE, async {
        loop {
            appender.send(Bytes::from(beat.encode_to_vec())).await?;
            appender.flush().await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        #[allow(unreachable_code)]
        Ok::<(), cursor_connect::frame::ConnectError>(())
    })
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert_eq!(e.origin(), Origin::Remote);
    // Sticky: the next append reports the same failure without sending.
    let again = appender
        .send(Bytes::from_static(b"\x3a\x00"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
}

async fn auto_run(
    mock: &MockServer,
    b: cursor_connect::ClientBuilder,
) -> (Transport, Option<String>) {
    let c = b.transport(Transport::Auto).build().unwrap();
    let mut run = c
        .agent()
        .run(RunRequest::new("composer-2.5", "hi"))
        .await
        .unwrap();
    let out = collect(&mut run).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    (run.transport(), run.fallback_reason())
}

#[tokio::test]
async fn auto_follows_the_server_config() {
    for (cfg, want) in [
        (Http2Config::ForceAllDisabled, Transport::Http1Stream),
        (Http2Config::ForceBidiDisabled, Transport::Http1Stream),
        (Http2Config::ForceAllEnabled, Transport::Http2),
        (Http2Config::ForceBidiEnabled, Transport::Http2),
        // Unspecified on plain http:// is HTTP/1.1, as the SDK decides.
        (Http2Config::Unspecified, Transport::Http1Stream),
    ] {
        let mock = MockServer::builder()
            .http2_config(cfg)
            .start()
            .await
            .unwrap();
        let (got, reason) = auto_run(&mock, h1_builder(&mock.url(), Transport::Http1Stream)).await;
        assert_eq!(got, want, "{cfg:?}");
        assert_eq!(
            reason.is_some(),
            want == Transport::Http1Stream,
            "{cfg:?}: {reason:?}"
        );
        let runs_on_h2 = mock.received().iter().any(|c| c.path == AGENT_RUN.path);
        assert_eq!(runs_on_h2, want == Transport::Http2, "{cfg:?}");
    }
}

#[tokio::test]
async fn auto_falls_back_when_tls_offers_only_http1() {
    let mock = MockServer::builder()
        .tls(true)
        .tls_http1_only(true)
        .start()
        .await
        .unwrap();
    let ca = mock.ca_certificate_der().unwrap();
    let h2_ep = cursor_connect::h2::Endpoint::from_url(&mock.url())
        .unwrap()
        .tls_root_certificates(vec![ca.clone()]);
    let h1 = Channel::new(
        Endpoint::from_url(&mock.url())
            .unwrap()
            .tls_root_certificates(vec![ca]),
    );
    let b = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .api_channel(cursor_connect::h2::Channel::lazy(h2_ep))
        .http1_channel(h1);
    // The server config forces HTTP/2, but the TLS endpoint cannot give it.
    let c = b.transport(Transport::Auto).build().unwrap();
    for _ in 0..2 {
        turn_after_fallback(&c, Transport::Http1Stream, "HTTP/2 unavailable").await;
    }
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
    // Once learned, the second run did not try HTTP/2 again: no Run call ever reached it.
    assert!(mock.received().iter().all(|c| c.path != AGENT_RUN.path));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_share_the_pool() {
    for mode in MODES {
        let mock = MockServer::start(Scenario::default()).await.unwrap();
        let c = h1_client(&mock.url(), mode);
        let runs = (0..6).map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let req = RunRequest::new("composer-2.5", format!("hello {i}"));
                run_to_end(&c, req).await
            })
        });
        for r in runs {
            let out = r.await.unwrap();
            assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
            assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
        }
        assert_shim_only(&mock, mode);
    }
}

#[tokio::test]
async fn an_http1_only_mock_steers_auto_and_refuses_http2() {
    let mock = MockServer::builder()
        .http1_only(true)
        .start()
        .await
        .unwrap();
    let (got, reason) = auto_run(&mock, h1_builder(&mock.url(), Transport::Http1Stream)).await;
    assert_eq!(got, Transport::Http1Stream);
    let reason = reason.expect("reason");
    assert!(reason.contains("FORCE_ALL_DISABLED"), "{reason}");
    // A client insisting on HTTP/2 gets a transport error, in time.
    let c = h1_builder(&mock.url(), Transport::Http2)
        .stall_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = match c.agent().run(RunRequest::new("composer-2.5", "hi")).await {
        Err(e) => e,
        Ok(mut run) => expect_error(&collect(&mut run).await),
    };
    let ce = e.connect_error().expect("connect error");
    assert_eq!(ce.origin(), Origin::Transport, "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
