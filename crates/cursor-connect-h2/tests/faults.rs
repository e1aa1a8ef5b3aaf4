//! Fault injection over real sockets: RST_STREAM per reason, GOAWAY variants, peer EOF, TCP
//! reset and a peer that stops answering PINGs. Each case must end in the right typed error,
//! within its bound, with the right retry-safety.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cursor_connect_frame::{Code, ConnectError, Origin, Reason as WireReason, TransportKind};
use cursor_connect_h2::{CallOptions, Channel, Endpoint, Error, ErrorKind};
use h2::Reason;
use http::HeaderMap;
use support::*;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(5);

fn transport(e: &ConnectError) -> &Error {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("not a transport error: {e:?}"))
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = c.source();
    }
    None
}

async fn h2c(s: &Server) -> Channel {
    Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap()
}

/// Expected Connect code for a peer RST_STREAM / GOAWAY reason.
fn code_for(reason: u32) -> Code {
    match reason {
        0x0 | 0x7 => Code::Unavailable,
        0x8 => Code::Canceled,
        0xb => Code::ResourceExhausted,
        0xc | 0xd => Code::PermissionDenied,
        _ => Code::Internal,
    }
}

#[tokio::test]
async fn rst_stream_each_reason_before_and_after_headers() {
    let s = Server::start(
        Opts::default(),
        handler(|req, mut respond, _| async move {
            let mut parts = req.uri().path().rsplit('/');
            let code: u32 = parts.next().unwrap().parse().unwrap();
            let when = parts.next().unwrap().to_owned();
            let _body = req.into_body();
            if when == "before" {
                respond.send_reset(Reason::from(code));
            } else if when == "headers" {
                let mut tx = respond_stream(&mut respond);
                tokio::time::sleep(Duration::from_millis(20)).await;
                tx.send_reset(Reason::from(code));
            } else {
                let mut tx = respond_stream(&mut respond);
                tx.send_data(env(b"partial"), false).unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                tx.send_reset(Reason::from(code));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }),
    )
    .await;
    let ch = h2c(&s).await;
    for code in 0u32..=0xd {
        for when in ["before", "headers", "after"] {
            let path = format!("/r/{when}/{code}");
            let (_tx, mut rx) = ch
                .bidi(&path, HeaderMap::new(), CallOptions::default())
                .await
                .unwrap();
            let e = tokio::time::timeout(T, async {
                if when == "after" {
                    assert_eq!(rx.message().await.unwrap().unwrap(), "partial");
                }
                rx.message().await.unwrap_err()
            })
            .await
            .unwrap();
            let t = transport(&e);
            let ctx = format!("{path}: {e} / {t:?}");
            assert_eq!(t.kind(), ErrorKind::Reset, "{ctx}");
            assert_eq!(t.reason(), Some(WireReason::from(code)), "{ctx}");
            assert!(t.is_remote(), "{ctx}");
            assert_eq!(t.response_started(), when != "before", "{ctx}");
            // REFUSED_STREAM is retry safe unless response data already arrived (RFC 9113
            // §8.7: the stream was closed before any processing, headers or not).
            assert_eq!(t.is_retry_safe(), when != "after" && code == 7, "{ctx}");
            assert_eq!(e.code(), code_for(code), "{ctx}");
            assert_eq!(e.origin(), Origin::Transport);
            let cause = e.transport_cause().unwrap();
            assert_eq!(cause.kind, TransportKind::Reset);
            assert_eq!(cause.reason, Some(WireReason::from(code)));
            assert_eq!(cause.retry_safe, t.is_retry_safe());
            assert_eq!(cause.response_started, t.response_started());
            // Sticky.
            assert_eq!(rx.message().await.unwrap_err().code(), e.code());
        }
    }
    // Resets never hurt the connection.
    assert_eq!(s.conns.load(Ordering::SeqCst), 1);
}

/// Unary: REFUSED_STREAM after the response headers is retry safe (the response started but
/// the server did no work); after part of the body it is not.
#[tokio::test]
async fn unary_refused_stream_after_headers_is_retry_safe() {
    let s = Server::start(
        Opts::default(),
        handler(|req, mut respond, _| async move {
            let data = req.uri().path().ends_with("/data");
            let _ = read_body(&mut req.into_body()).await;
            let resp = http::Response::builder()
                .header("content-type", "application/proto")
                .body(())
                .unwrap();
            let mut tx = respond.send_response(resp, false).unwrap();
            if data {
                tx.send_data(Bytes::from_static(b"part"), false).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send_reset(Reason::REFUSED_STREAM);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }),
    )
    .await;
    let ch = h2c(&s).await;
    for (path, safe) in [("/u/headers", true), ("/u/data", false)] {
        let e = tokio::time::timeout(
            T,
            ch.unary(path, HeaderMap::new(), Bytes::new(), CallOptions::default()),
        )
        .await
        .unwrap()
        .unwrap_err();
        let t = transport(&e);
        let ctx = format!("{path}: {e} / {t:?}");
        assert_eq!(t.kind(), ErrorKind::Reset, "{ctx}");
        assert_eq!(t.reason(), Some(WireReason::REFUSED_STREAM), "{ctx}");
        assert!(t.is_remote() && t.response_started(), "{ctx}");
        assert_eq!(t.is_retry_safe(), safe, "{ctx}");
        assert_eq!(e.code(), Code::Unavailable, "{ctx}");
        let cause = e.transport_cause().unwrap();
        assert!(cause.response_started && cause.remote_initiated, "{ctx}");
        assert_eq!(cause.retry_safe, safe, "{ctx}");
    }
}

/// Server behaviours for the GOAWAY matrix, chosen by path.
fn goaway_handler() -> Handler {
    handler(|req, mut respond, ctx| async move {
        let path = req.uri().path().to_owned();
        let _body = req.into_body();
        let reason = if path.contains("error") {
            Reason::INTERNAL_ERROR
        } else {
            Reason::NO_ERROR
        };
        if path.ends_with("/graceful") {
            ctx.cmd(ConnCmd::Graceful);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"finished"), false).unwrap();
            tx.send_data(end_ok(), true).unwrap();
        } else if path.ends_with("/after") {
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"partial"), false).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            ctx.cmd(ConnCmd::GoAway(reason));
        } else if path.ends_with("/ok") {
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"fine"), false).unwrap();
            tx.send_data(end_ok(), true).unwrap();
        } else {
            ctx.cmd(ConnCmd::GoAway(reason));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
}

async fn ok_call(ch: &Channel) {
    let mut rx = open_server_stream(ch, "/g/ok").await;
    assert_eq!(rx.message().await.unwrap().unwrap(), "fine");
    assert_eq!(rx.message().await.unwrap(), None);
}

#[tokio::test]
async fn graceful_goaway_lets_the_call_finish_and_reconnects() {
    let s = Server::start(Opts::default(), goaway_handler()).await;
    let ch = h2c(&s).await;
    let mut rx = open_server_stream(&ch, "/g/graceful").await;
    tokio::time::timeout(T, async {
        assert_eq!(rx.message().await.unwrap().unwrap(), "finished");
        assert_eq!(rx.message().await.unwrap(), None);
        ok_call(&ch).await;
    })
    .await
    .unwrap();
    assert_eq!(s.conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn abrupt_goaway_on_a_processed_stream_is_not_retry_safe() {
    let s = Server::start(Opts::default(), goaway_handler()).await;
    for (path, reason) in [
        ("/g/no/before", 0u32),
        ("/g/no/after", 0),
        ("/g/error/before", 2),
        ("/g/error/after", 2),
    ] {
        let ch = h2c(&s).await;
        let started = path.ends_with("after");
        let mut rx = ch
            .server_stream(path, HeaderMap::new(), Bytes::new(), CallOptions::default())
            .await
            .unwrap();
        let e = tokio::time::timeout(T, async {
            if started {
                assert_eq!(rx.message().await.unwrap().unwrap(), "partial");
            }
            rx.message().await.unwrap_err()
        })
        .await
        .unwrap();
        let t = transport(&e);
        let ctx = format!("{path}: {e} / {t:?}");
        // The stream was at or below GOAWAY's last-stream-id: the server may have acted on it.
        assert!(!t.is_retry_safe(), "{ctx}");
        assert_eq!(t.response_started(), started, "{ctx}");
        assert!(
            matches!(t.kind(), ErrorKind::GoAway | ErrorKind::Io),
            "{ctx}"
        );
        if reason == 0 {
            assert_eq!(e.code(), Code::Unavailable, "{ctx}");
        } else {
            assert!(
                matches!(e.code(), Code::Internal | Code::Unavailable),
                "{ctx}"
            );
        }
        eprintln!(
            "{path}: {:?} reason={:?} code={}",
            t.kind(),
            t.reason(),
            e.code()
        );
        // New calls on the same channel go to a new connection.
        tokio::time::timeout(T, ok_call(&ch)).await.unwrap();
    }
}

/// A raw peer that answers the first request with GOAWAY(last_stream_id = 0): the stream
/// was never processed, so the error is retry safe.
#[tokio::test]
async fn goaway_below_our_stream_is_retry_safe() {
    for reason in [0u32, 0xb] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let mut raw = Raw::accept(&listener, &[]).await;
            let (_, sid, _) = raw.until(1).await.unwrap();
            assert_eq!(sid, 1);
            raw.send(&Raw::goaway(0, reason)).await;
            // Keep the socket open: the error must come from the GOAWAY, not from EOF.
            tokio::time::sleep(Duration::from_secs(2)).await;
        });
        let ch = Channel::connect(Endpoint::h2c(&addr.to_string()).unwrap())
            .await
            .unwrap();
        let (_tx, mut rx) = ch
            .bidi("/g/raw", HeaderMap::new(), CallOptions::default())
            .await
            .unwrap();
        let e = tokio::time::timeout(T, rx.message())
            .await
            .unwrap()
            .unwrap_err();
        let t = transport(&e);
        let ctx = format!("reason {reason}: {e} / {t:?}");
        assert_eq!(t.kind(), ErrorKind::GoAway, "{ctx}");
        assert_eq!(t.reason(), Some(WireReason::from(reason)), "{ctx}");
        assert!(
            t.is_remote() && t.is_retry_safe() && !t.response_started(),
            "{ctx}"
        );
        assert_eq!(e.code(), code_for(reason), "{ctx}");
        assert!(e.transport_cause().unwrap().retry_safe);
        peer.abort();
    }
}

async fn drop_mid_stream(linger_zero: bool) -> ConnectError {
    let opts = Opts {
        linger_zero,
        ..Opts::default()
    };
    let s = Server::start(
        opts,
        handler(|_req, mut respond, ctx| async move {
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"partial"), false).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            ctx.cmd(ConnCmd::Drop);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }),
    )
    .await;
    let ch = h2c(&s).await;
    let mut rx = open_server_stream(&ch, "/d/x").await;
    tokio::time::timeout(T, async {
        assert_eq!(rx.message().await.unwrap().unwrap(), "partial");
        let e = rx.message().await.unwrap_err();
        assert_eq!(rx.message().await.unwrap_err().code(), e.code());
        e
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn peer_eof_mid_stream() {
    let e = drop_mid_stream(false).await;
    let t = transport(&e);
    assert_eq!(t.kind(), ErrorKind::Io, "{e} / {t:?}");
    assert!(!t.is_retry_safe() && t.response_started() && !t.is_remote());
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(e.transport_cause().unwrap().kind, TransportKind::Io);
    assert_ne!(io_kind(t), Some(std::io::ErrorKind::ConnectionReset), "{e}");
}

#[tokio::test]
async fn tcp_reset_mid_stream() {
    let e = drop_mid_stream(true).await;
    let t = transport(&e);
    assert_eq!(t.kind(), ErrorKind::Io, "{e} / {t:?}");
    assert!(!t.is_retry_safe() && t.response_started());
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(io_kind(t), Some(std::io::ErrorKind::ConnectionReset), "{e}");
}

/// A peer that keeps the TCP connection open but stops answering (no PING ACK, no data):
/// the keepalive fails every open call.
#[tokio::test]
async fn dead_peer_fails_every_open_call_via_keepalive() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let mut raw = Raw::accept(&listener, &[]).await;
        // Read (so the client's writes never block) but never answer anything.
        while raw.until(0xff).await.is_some() {}
    });
    let ep = Endpoint::h2c(&addr.to_string())
        .unwrap()
        .keepalive(Duration::from_millis(150), Duration::from_millis(250));
    let ch = Channel::connect(ep).await.unwrap();
    let started = Instant::now();
    let (_t1, mut a) = ch
        .bidi("/k/a", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    let (_t2, mut b) = ch
        .bidi("/k/b", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    let (ea, eb) = tokio::time::timeout(T, async { tokio::join!(a.message(), b.message()) })
        .await
        .unwrap();
    let elapsed = started.elapsed();
    for e in [ea.unwrap_err(), eb.unwrap_err()] {
        let t = transport(&e);
        assert_eq!(t.kind(), ErrorKind::Keepalive, "{e} / {t:?}");
        assert!(!t.is_retry_safe());
        assert_eq!(e.code(), Code::Unavailable);
        assert_eq!(e.transport_cause().unwrap().kind, TransportKind::Timeout);
    }
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    peer.abort();
}

/// A server that accepts the stream and then stops sending mid-stream: the deadline ends it.
#[tokio::test]
async fn mid_stream_stall_hits_deadline() {
    let s = Server::start(
        Opts::default(),
        handler(|_req, mut respond, _| async move {
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"one"), false).unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    let ch = h2c(&s).await;
    let opts = CallOptions::default().deadline(Duration::from_millis(400));
    let started = Instant::now();
    let mut rx = ch
        .server_stream("/s/x", HeaderMap::new(), Bytes::new(), opts)
        .await
        .unwrap();
    assert_eq!(rx.message().await.unwrap().unwrap(), "one");
    let e = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    let t = transport(&e);
    assert!(t.response_started() && !t.is_retry_safe() && !t.is_remote());
    assert!(started.elapsed() < Duration::from_secs(2));
}
