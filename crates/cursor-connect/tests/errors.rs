//! Every failure the mock can script comes out of the client as a typed, classified error,
//! never as a quiet end; plus stall detection. Log redaction is in `redaction.rs`.

mod common;

use std::time::{Duration, Instant};

use common::{TOKEN, client, expect_error, run_to_end};
use cursor_connect::classify::Category;
use cursor_connect::frame::{Code, Origin};
use cursor_connect::{Credentials, CursorClient, ErrorKind, RunRequest};
use cursor_mock::{MockServer, Scenario, names};

async fn failed_run(model: &str) -> (common::Outcome, cursor_connect::Error) {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let mut run = c.agent().run(RunRequest::new(model, "x")).await.unwrap();
    let out = common::collect(&mut run).await;
    let err = expect_error(&out);
    // Sticky: the same error on every later poll.
    for _ in 0..3 {
        let again = run.next_event().await.unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
    }
    (out, err)
}

#[tokio::test]
async fn unauthenticated_before_data() {
    let (out, e) = failed_run(names::ERROR_UNAUTHENTICATED).await;
    assert!(out.text.is_empty());
    assert_eq!(e.kind(), ErrorKind::Call);
    assert!(e.is_before_output());
    let ce = e.connect_error().unwrap();
    assert_eq!(ce.code(), Code::Unauthenticated);
    assert_eq!(ce.origin(), Origin::Remote);
    let details = e.error_details().expect("decoded ErrorDetails");
    assert_eq!(details.error, 2); // ERROR_NOT_LOGGED_IN
    let c = e.classification().unwrap();
    assert_eq!(c.category(), Category::Unauthenticated);
    assert_eq!(c.status(), 401);
    assert!(c.advice().refresh_credentials());
    assert!(std::error::Error::source(&e).is_some());
}

/// The SDK bug in the seeds: an unauthenticated end-stream after one data frame must be an
/// error out of the event stream, not a quiet end.
#[tokio::test]
async fn unauthenticated_after_one_data_frame_is_an_error() {
    let (out, e) = failed_run(names::ERROR_AFTER_DATA).await;
    assert_eq!(out.text, cursor_mock::PARTIAL_TEXT);
    assert!(out.usage.is_none());
    assert_eq!(e.connect_error().unwrap().code(), Code::Unauthenticated);
    assert!(!e.is_before_output());
    assert_eq!(
        e.classification().unwrap().category(),
        Category::Unauthenticated
    );
    assert!(!e.classification().unwrap().transparent_retry_allowed());
    assert_eq!(e.error_details().unwrap().error, 2);
}

#[tokio::test]
async fn http_200_with_only_an_error_end_stream() {
    let (out, e) = failed_run(names::ERROR_ONLY_END_STREAM).await;
    assert_eq!(out.events, 0);
    assert_eq!(e.connect_error().unwrap().code(), Code::Unauthenticated);
    assert!(e.is_before_output());
}

#[tokio::test]
async fn model_retired_is_classified_from_details() {
    let (_, e) = failed_run(names::ERROR_MODEL_RETIRED).await;
    assert_eq!(e.connect_error().unwrap().code(), Code::InvalidArgument);
    let c = e.classification().unwrap();
    assert_eq!(c.category(), Category::ModelUnavailable);
    assert_eq!(c.advice().fallback_model(), Some("composer-2.5"));
    assert_eq!(e.error_details().unwrap().error, 61);
}

#[tokio::test]
async fn rate_limited() {
    let (_, e) = failed_run(names::ERROR_RATE_LIMITED).await;
    assert_eq!(e.connect_error().unwrap().code(), Code::ResourceExhausted);
    let c = e.classification().unwrap();
    assert_eq!(c.status(), 429);
    assert!(matches!(
        c.category(),
        Category::RateLimited | Category::QuotaExhausted
    ));
}

#[tokio::test]
async fn provider_error() {
    let (_, e) = failed_run(names::ERROR_PROVIDER).await;
    assert_eq!(e.kind(), ErrorKind::Call);
    assert!(e.classification().is_some());
}

/// REFUSED_STREAM after the response headers (the model-selected `mock-reset-refused`: headers,
/// then the reset once the run request arrived) is still provably unprocessed (RFC 9113 §8.7):
/// the client re-opens the stream. The mock refuses every attempt, so after the first open and
/// two re-opens the retry-safe transport error surfaces, before any output.
#[tokio::test]
async fn refused_stream_after_headers_is_retried_then_surfaces() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = client(&mock.url());
    let mut run = tokio::time::timeout(
        Duration::from_secs(20),
        c.agent().run(RunRequest::new(names::RESET_REFUSED, "x")),
    )
    .await
    .unwrap()
    .unwrap();
    let out = common::collect(&mut run).await;
    let e = expect_error(&out);
    assert_eq!(out.events, 0);
    assert!(e.is_before_output());
    let ce = e.connect_error().unwrap();
    assert_eq!(ce.origin(), Origin::Transport);
    assert_eq!(ce.code(), Code::Unavailable);
    let cause = ce.transport_cause().unwrap();
    assert_eq!(
        cause.reason,
        Some(cursor_connect::frame::Reason::REFUSED_STREAM)
    );
    assert!(
        cause.retry_safe && cause.response_started && cause.remote_initiated,
        "{cause:?}"
    );
    let calls = mock.received();
    assert_eq!(calls.len(), 3, "first open plus two re-opens");
    for call in &calls {
        assert_eq!(call.path, cursor_mock::RUN_PATH);
        // Every attempt carried the run request (the mock picks the scenario from its model).
        assert_eq!(call.model.as_deref(), Some(names::RESET_REFUSED));
        assert!(call.finished);
    }
    let ids: std::collections::HashSet<_> = calls
        .iter()
        .map(|c| c.headers["x-request-id"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        calls.len(),
        "x-request-id reused across attempts"
    );
    assert!(
        calls
            .windows(2)
            .all(|w| w[0].headers["x-original-request-id"] == w[1].headers["x-original-request-id"])
    );
}

/// REFUSED_STREAM before any response: provably unprocessed, so the client retries the open
/// itself, with a fresh x-request-id per attempt and the same x-original-request-id.
#[tokio::test]
async fn refused_stream_before_headers_is_retried_with_fresh_request_ids() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .header(
            http::HeaderName::from_static(cursor_mock::SCENARIO_HEADER),
            http::HeaderValue::from_static(names::RESET_REFUSED),
        )
        .build()
        .unwrap();
    let opened = tokio::time::timeout(
        Duration::from_secs(20),
        c.agent().run(RunRequest::new("m", "x")),
    )
    .await
    .unwrap();
    let e = match opened {
        Err(e) => e,
        Ok(mut run) => expect_error(&common::collect(&mut run).await),
    };
    let ce = e.connect_error().unwrap();
    assert_eq!(ce.origin(), Origin::Transport);
    assert_eq!(
        ce.transport_cause().unwrap().reason,
        Some(cursor_connect::frame::Reason::REFUSED_STREAM)
    );
    assert!(
        ce.transport_cause().unwrap().retry_safe,
        "{:?}",
        ce.transport_cause()
    );
    assert!(e.classification().unwrap().transparent_retry_allowed());
    let calls = mock.received();
    let original: Vec<_> = calls
        .iter()
        .map(|c| c.headers["x-original-request-id"].clone())
        .collect();
    let ids: std::collections::HashSet<_> = calls
        .iter()
        .map(|c| c.headers["x-request-id"].clone())
        .collect();
    // Three attempts (the first plus two transparent re-opens), then the error surfaces.
    assert_eq!(calls.len(), 3);
    assert!(original.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        ids.len(),
        calls.len(),
        "x-request-id reused across attempts"
    );
}

#[tokio::test]
async fn reset_after_data() {
    let (out, e) = failed_run(names::RESET_AFTER_DATA).await;
    assert_eq!(out.text, cursor_mock::PARTIAL_TEXT);
    assert_eq!(e.connect_error().unwrap().origin(), Origin::Transport);
    assert!(!e.is_before_output());
    assert_eq!(e.classification().unwrap().category(), Category::Transport);
}

#[tokio::test]
async fn goaway_after_data() {
    let (out, e) = failed_run(names::GOAWAY).await;
    assert_eq!(out.text, cursor_mock::PARTIAL_TEXT);
    assert_eq!(e.connect_error().unwrap().origin(), Origin::Transport);
}

#[tokio::test]
async fn dropped_connection() {
    let (_, e) = failed_run(names::DROP_CONNECTION).await;
    assert_eq!(e.connect_error().unwrap().origin(), Origin::Transport);
}

#[tokio::test]
async fn missing_turn_ended_is_an_error() {
    let (out, e) = failed_run(names::NO_TURN_ENDED).await;
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    assert_eq!(e.kind(), ErrorKind::MissingTurnEnded);
    assert!(e.classification().is_some());
}

#[tokio::test]
async fn missing_end_stream_is_an_error() {
    let (out, e) = failed_run(names::NO_END_STREAM).await;
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    assert_eq!(e.kind(), ErrorKind::Call);
    assert!(e.connect_error().is_some());
}

#[tokio::test]
async fn unary_error_is_typed() {
    let mock = MockServer::start(Scenario::named(names::UNARY_UNAUTHENTICATED).unwrap())
        .await
        .unwrap();
    let e = client(&mock.url()).usable_models().await.unwrap_err();
    assert_eq!(e.connect_error().unwrap().code(), Code::Unauthenticated);
    assert_eq!(e.classification().unwrap().status(), 401);
    assert_eq!(e.error_details().unwrap().error, 2);
}

#[tokio::test]
async fn stall_is_detected_within_its_timeout() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let c = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .stall_timeout(Duration::from_millis(400))
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    let out = run_to_end(&c, RunRequest::new(names::STALL, "x")).await;
    let took = started.elapsed();
    eprintln!("stall timeout 400 ms detected after {took:?}");
    let e = expect_error(&out);
    assert_eq!(out.text, cursor_mock::PARTIAL_TEXT);
    assert_eq!(e.kind(), ErrorKind::Stalled);
    assert_eq!(e.connect_error().unwrap().code(), Code::DeadlineExceeded);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Client heartbeats kept flowing during the stall.
    assert!(mock.received()[0].heartbeats() >= 2);
}

#[tokio::test]
async fn run_on_unreachable_host_is_transport_error() {
    // Port 9 on loopback: nothing listens.
    let c = client("http://127.0.0.1:9");
    let e = tokio::time::timeout(
        Duration::from_secs(20),
        c.agent().run(RunRequest::new("m", "x")),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Call);
    assert_eq!(e.connect_error().unwrap().origin(), Origin::Transport);
}

/// A server that only keeps the stream alive (heartbeats, no output) is cut off at the
/// first-output deadline, as stalled and safe to retry elsewhere; output that arrives in time
/// is not affected.
#[tokio::test]
async fn heartbeats_without_output_hit_the_first_output_deadline() {
    use cursor_mock::Step;
    let only_beats = Scenario::new(vec![
        Step::Heartbeat,
        Step::Sleep(Duration::from_secs(5)),
        Step::TextDelta("late".into()),
        Step::EndOk,
    ]);
    let mock = MockServer::builder()
        .heartbeat_interval(Duration::from_millis(50))
        .named("only-beats", only_beats)
        .start()
        .await
        .unwrap();
    let client = CursorClient::builder()
        .base_url(mock.url())
        .credentials(Credentials::access_token(TOKEN))
        .first_output_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut run = client
        .agent()
        .run(RunRequest::new("only-beats", "x"))
        .await
        .unwrap();
    let out = common::collect(&mut run).await;
    let e = expect_error(&out);
    assert_eq!(e.kind(), ErrorKind::Stalled, "{e}");
    assert!(e.is_before_output());
    assert!(e.to_string().contains("no output within"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut off at the deadline"
    );

    // The default turn produces output at once: the same deadline does not fire.
    let mut ok = client
        .agent()
        .run(RunRequest::new("composer-2.5", "x"))
        .await
        .unwrap();
    let out = common::collect(&mut ok).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
}
