//! Calls over real loopback sockets: shapes, Connect headers, end-stream handling, sticky
//! errors, unary errors, deadlines and idle timeouts.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cursor_connect_frame::{Code, Origin};
use cursor_connect_h2::{CallOptions, Channel, Endpoint, ErrorKind};
use http::{HeaderMap, HeaderValue, Response};
use support::*;

const T: Duration = Duration::from_secs(10);

async fn channel(s: &Server) -> Channel {
    Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn bidi_echo_and_clean_end() {
    let s = Server::start(Opts::default(), echo()).await;
    let ch = channel(&s).await;
    let mut extra = HeaderMap::new();
    extra.insert("authorization", HeaderValue::from_static("Bearer t"));
    let opts = CallOptions::default().deadline(Duration::from_secs(5));
    let (mut tx, mut rx) = ch.bidi("/e.v1.E/Bidi", extra, opts).await.unwrap();
    tokio::time::timeout(T, async {
        for i in 0..10u8 {
            tx.send(Bytes::from(vec![i; 3])).await.unwrap();
            let m = rx.message().await.unwrap().unwrap();
            assert_eq!(m, Bytes::from(vec![i; 3]));
        }
        tx.close_send().await.unwrap();
        assert_eq!(rx.message().await.unwrap(), None);
        assert_eq!(rx.message().await.unwrap(), None);
        assert!(rx.end_metadata().unwrap().is_empty());
        assert_eq!(
            rx.response_headers().unwrap()["content-type"],
            "application/connect+proto"
        );
    })
    .await
    .unwrap();
    let seen = s.seen.lock().unwrap()[0].clone();
    assert_eq!(seen["content-type"], "application/connect+proto");
    assert_eq!(seen["connect-protocol-version"], "1");
    assert_eq!(seen["te"], "trailers");
    assert_eq!(seen["authorization"], "Bearer t");
    assert_eq!(seen["connect-accept-encoding"], "gzip");
    let ms: u64 = seen["connect-timeout-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((4000..=5000).contains(&ms), "{ms}");
}

#[tokio::test]
async fn data_then_error_is_sticky() {
    let s = Server::start(
        Opts::default(),
        handler(|req, mut respond, _| async move {
            let _ = read_body(&mut req.into_body()).await;
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"one"), false).unwrap();
            tx.send_data(env(b"two"), false).unwrap();
            tx.send_data(end_err("resource_exhausted", "quota"), true)
                .unwrap();
        }),
    )
    .await;
    let ch = channel(&s).await;
    let mut rx = ch
        .server_stream(
            "/e.v1.E/S",
            HeaderMap::new(),
            Bytes::from_static(b"q"),
            CallOptions::default(),
        )
        .await
        .unwrap();
    tokio::time::timeout(T, async {
        assert_eq!(rx.message().await.unwrap().unwrap(), "one");
        assert_eq!(rx.message().await.unwrap().unwrap(), "two");
        for _ in 0..3 {
            let e = rx.message().await.unwrap_err();
            assert_eq!(e.code(), Code::ResourceExhausted);
            assert_eq!(e.message(), "quota");
            assert_eq!(e.origin(), Origin::Remote);
        }
        assert_eq!(rx.end_metadata().unwrap().get("x-m"), Some("v"));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn missing_end_stream_is_an_error() {
    let s = Server::start(
        Opts::default(),
        handler(|_req, mut respond, _| async move {
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"one"), false).unwrap();
            tx.send_data(Bytes::new(), true).unwrap();
        }),
    )
    .await;
    let ch = channel(&s).await;
    let mut rx = open_server_stream(&ch, "/e.v1.E/S").await;
    tokio::time::timeout(T, async {
        assert_eq!(rx.message().await.unwrap().unwrap(), "one");
        let e = rx.message().await.unwrap_err();
        assert_eq!(e.code(), Code::Internal, "{e}");
        assert_eq!(rx.message().await.unwrap_err().code(), Code::Internal);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn truncated_envelope_is_an_error() {
    let s = Server::start(
        Opts::default(),
        handler(|_req, mut respond, _| async move {
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"hello")[..4].to_vec().into(), true)
                .unwrap();
        }),
    )
    .await;
    let ch = channel(&s).await;
    let mut rx = open_server_stream(&ch, "/e.v1.E/S").await;
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    // The frame crate decides the exact code; it must never be a clean end.
    assert!(
        matches!(e.code(), Code::InvalidArgument | Code::Internal),
        "{e}"
    );
    assert!(rx.message().await.is_err());
}

#[tokio::test]
async fn non_200_stream_and_wrong_content_type() {
    let s = Server::start(
        Opts::default(),
        handler(|req, mut respond, _| async move {
            let (status, ct) = if req.uri().path().ends_with("/A") {
                (429, "application/json")
            } else {
                (200, "text/html")
            };
            let resp = Response::builder()
                .status(status)
                .header("content-type", ct)
                .body(())
                .unwrap();
            let mut tx = respond.send_response(resp, false).unwrap();
            let body = if status == 429 {
                Bytes::from_static(br#"{"code":"resource_exhausted","message":"slow down"}"#)
            } else {
                Bytes::from_static(b"<html>")
            };
            tx.send_data(body, true).unwrap();
        }),
    )
    .await;
    let ch = channel(&s).await;
    let mut rx = open_server_stream(&ch, "/e.v1.E/A").await;
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert_eq!(e.http_status_seen().map(|s| s.as_u16()), Some(429));
    let mut rx = open_server_stream(&ch, "/e.v1.E/B").await;
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
}

fn unary_handler() -> Handler {
    handler(|req, mut respond, _| async move {
        let path = req.uri().path().to_owned();
        let gz = req.headers().get("content-encoding").is_some();
        let body = read_body(&mut req.into_body()).await.unwrap();
        if path.ends_with("/Fail") {
            let resp = Response::builder()
                .status(503)
                .header("content-type", "application/json")
                .body(())
                .unwrap();
            let mut tx = respond.send_response(resp, false).unwrap();
            tx.send_data(
                Bytes::from_static(br#"{"code":"unavailable","message":"boom"}"#),
                true,
            )
            .unwrap();
            return;
        }
        let resp = Response::builder()
            .header("content-type", "application/proto")
            .header("x-gz", if gz { "1" } else { "0" })
            .body(())
            .unwrap();
        let mut tx = respond.send_response(resp, false).unwrap();
        tx.send_data(body, true).unwrap();
    })
}

#[tokio::test]
async fn unary_ok_error_and_gzip() {
    let s = Server::start(Opts::default(), unary_handler()).await;
    let ch = channel(&s).await;
    let r = tokio::time::timeout(
        T,
        ch.unary(
            "/e.v1.E/U",
            HeaderMap::new(),
            Bytes::from_static(b"ping"),
            CallOptions::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.message, "ping");
    assert_eq!(r.headers["x-gz"], "0");

    // An answer wrapped in one plain Connect envelope is unwrapped by the transport.
    let r = tokio::time::timeout(
        T,
        ch.unary(
            "/e.v1.E/U",
            HeaderMap::new(),
            env(b"ping"),
            CallOptions::default(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.message, "ping");

    let e = ch
        .unary(
            "/e.v1.E/Fail",
            HeaderMap::new(),
            Bytes::new(),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.message(), "boom");
    assert_eq!(e.origin(), Origin::Remote);
    assert_eq!(e.http_status_seen().map(|s| s.as_u16()), Some(503));

    // The server echoes the gzip body bytes; without content-encoding on the response the
    // client must hand them back untouched (still compressed).
    let opts = CallOptions::default().send_compression(cursor_connect_frame::Encoding::Gzip);
    let r = ch
        .unary(
            "/e.v1.E/U",
            HeaderMap::new(),
            Bytes::from(vec![7u8; 4000]),
            opts,
        )
        .await
        .unwrap();
    assert_eq!(r.headers["x-gz"], "1");
    assert_eq!(&r.message[..2], &[0x1f, 0x8b]);
    assert!(r.message.len() < 4000);
    assert_eq!(s.seen.lock().unwrap()[3]["content-encoding"], "gzip");
}

#[tokio::test]
async fn deadline_on_a_server_that_never_answers() {
    let s = Server::start(
        Opts::default(),
        handler(|req, _respond, _| async move {
            let _keep = req;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    let ch = channel(&s).await;
    let started = Instant::now();
    let opts = CallOptions::default().deadline(Duration::from_millis(300));
    let e = tokio::time::timeout(
        T,
        ch.unary("/e.v1.E/U", HeaderMap::new(), Bytes::new(), opts),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    let cause = e.transport_cause().unwrap();
    assert!(!cause.retry_safe && !cause.response_started);
    assert!(started.elapsed() < Duration::from_secs(2));

    let opts = CallOptions::default().deadline(Duration::from_millis(300));
    let (_tx, mut rx) = ch.bidi("/e.v1.E/B", HeaderMap::new(), opts).await.unwrap();
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    assert_eq!(
        rx.message().await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
}

#[tokio::test]
async fn idle_timeout_mid_stream() {
    let s = Server::start(
        Opts::default(),
        handler(|_req, mut respond, _| async move {
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"first"), false).unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    let ch = Channel::connect(
        Endpoint::h2c(&s.authority())
            .unwrap()
            .keepalive(Duration::from_millis(50), Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let opts = CallOptions::default().idle_timeout(Duration::from_millis(400));
    let mut rx = ch
        .server_stream("/e.v1.E/S", HeaderMap::new(), Bytes::new(), opts)
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(rx.message().await.unwrap().unwrap(), "first");
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.transport_cause().unwrap().response_started);
    let src = std::error::Error::source(&e).unwrap();
    let h2e = src.downcast_ref::<cursor_connect_h2::Error>().unwrap();
    assert_eq!(h2e.kind(), ErrorKind::Idle);
}

#[tokio::test]
async fn connection_refused_is_retry_safe() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let e = Channel::connect(Endpoint::h2c(&addr.to_string()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect);
    assert!(e.is_retry_safe());
    assert!(std::error::Error::source(&e).is_some());
}

#[tokio::test]
async fn lazy_channel_connects_on_first_call_and_after_loss() {
    let s = Server::start(
        Opts::default(),
        handler(|req, mut respond, ctx| async move {
            let drop_after = req.uri().path().ends_with("/Drop");
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"x"), false).unwrap();
            tx.send_data(end_ok(), true).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            if drop_after {
                ctx.cmd(ConnCmd::Drop);
            }
        }),
    )
    .await;
    let ch = Channel::lazy(Endpoint::h2c(&s.authority()).unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.conns.load(std::sync::atomic::Ordering::SeqCst), 0);
    for path in ["/l.v1.L/Drop", "/l.v1.L/Ok"] {
        let mut rx = tokio::time::timeout(
            T,
            ch.server_stream(path, HeaderMap::new(), Bytes::new(), CallOptions::default()),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(rx.message().await.unwrap().unwrap(), "x");
        assert_eq!(rx.message().await.unwrap(), None);
        // Give the server time to drop the first connection.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.conns.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A peer-declared length above the limit fails at the header, before anything is buffered
/// for it; bytes after the end-stream are an error too.
#[tokio::test]
async fn oversized_declared_length_and_data_after_end_stream() {
    let s = Server::start(
        Opts::default(),
        handler(|req, mut respond, _| async move {
            let huge = req.uri().path().ends_with("/Huge");
            let mut tx = respond_stream(&mut respond);
            if huge {
                // Declares 4 GiB - 1 and sends a few bytes of it.
                tx.send_data(Bytes::from_static(b"\x00\xff\xff\xff\xffabc"), false)
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
            } else {
                let mut both = end_ok().to_vec();
                both.extend_from_slice(&env(b"late"));
                tx.send_data(Bytes::from(both), true).unwrap();
            }
        }),
    )
    .await;
    let ch = channel(&s).await;
    let opts = CallOptions::default().max_message_size(1 << 20);
    let mut rx = ch
        .server_stream("/e.v1.E/Huge", HeaderMap::new(), Bytes::new(), opts)
        .await
        .unwrap();
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert_eq!(
        rx.message().await.unwrap_err().code(),
        Code::ResourceExhausted
    );

    let mut rx = open_server_stream(&ch, "/e.v1.E/Late").await;
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::Internal, "{e}");
}

/// Answers 200 with the content-type the client asked for in `x-ct`: a bare body for unary
/// paths (`/U`), one message and a clean end-stream otherwise.
fn content_type_handler() -> Handler {
    handler(|req, mut respond, _| async move {
        let ct = req.headers()["x-ct"].clone();
        let unary = req.uri().path().ends_with("/U");
        let _ = read_body(&mut req.into_body()).await;
        let resp = Response::builder()
            .header("content-type", ct)
            .body(())
            .unwrap();
        let mut tx = respond.send_response(resp, false).unwrap();
        if unary {
            tx.send_data(Bytes::from_static(b"{}"), true).unwrap();
        } else {
            tx.send_data(env(b"m"), false).unwrap();
            tx.send_data(end_ok(), true).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    })
}

fn with_ct(ct: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-ct", HeaderValue::from_static(ct));
    h
}

/// REST endpoints answer `application/json; charset=utf-8`: media types compare without
/// parameters, whitespace or case, and a wrong media type is still an `internal` error.
#[tokio::test]
async fn unary_content_type_ignores_parameters_and_case() {
    let s = Server::start(Opts::default(), content_type_handler()).await;
    let ch = channel(&s).await;
    let json = || CallOptions::default().codec(cursor_connect_frame::Codec::Json);
    for ok in [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        " Application/JSON ; charset=utf-8",
    ] {
        let r = tokio::time::timeout(T, ch.unary("/e.v1.E/U", with_ct(ok), Bytes::new(), json()))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        assert_eq!(r.message, "{}", "{ok:?}");
    }
    for bad in [
        "application/proto; charset=utf-8",
        "text/html; charset=utf-8",
        "application/jsonx",
        "application/json+x; charset=utf-8",
    ] {
        let e = tokio::time::timeout(T, ch.unary("/e.v1.E/U", with_ct(bad), Bytes::new(), json()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code(), Code::Internal, "{bad:?}: {e}");
        assert_eq!(e.http_status_seen().map(|s| s.as_u16()), Some(200));
        assert!(e.message().contains("content-type"), "{e}");
    }
    // The default proto codec, with a parameter.
    let r = ch
        .unary(
            "/e.v1.E/U",
            with_ct("application/proto; x=y"),
            Bytes::new(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.message, "{}");
}

/// Streaming responses use the same media-type comparison, and must carry the codec that was
/// requested (`application/connect+<codec>`).
#[tokio::test]
async fn stream_content_type_ignores_parameters_and_case() {
    let s = Server::start(Opts::default(), content_type_handler()).await;
    let ch = channel(&s).await;
    let call = |ct: &'static str| {
        let ch = ch.clone();
        async move {
            let mut rx = ch
                .server_stream(
                    "/e.v1.E/S",
                    with_ct(ct),
                    Bytes::new(),
                    CallOptions::default(),
                )
                .await
                .unwrap();
            let first = rx.message().await?;
            assert_eq!(first.as_deref(), Some(&b"m"[..]));
            rx.message().await
        }
    };
    for ok in [
        "application/connect+proto",
        "application/connect+proto; charset=utf-8",
        "Application/Connect+Proto",
    ] {
        let end = tokio::time::timeout(T, call(ok)).await.unwrap();
        assert_eq!(end.unwrap_or_else(|e| panic!("{ok:?}: {e}")), None);
    }
    for bad in ["application/connect+json", "application/proto; x=y"] {
        let e = tokio::time::timeout(T, call(bad))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.code(), Code::Internal, "{bad:?}: {e}");
        assert!(e.message().contains("content-type"), "{e}");
    }
}
