//! A call's life at its edges: cancellation of `RecvHalf::message`, the send
//! half's writer task ending with its call.

mod support;

use std::time::Duration;

use bytes::Bytes;
use cursor_connect_h2::{CallOptions, Channel, Endpoint};
use http::HeaderMap;
use support::*;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(5);

/// A `message()` future dropped while the response head is outstanding (a caller's timeout
/// or `select!`) must not turn the call into a quiet clean end: the next call keeps waiting
/// and gets the messages.
#[tokio::test]
async fn message_cancelled_before_headers_is_resumable() {
    let s = Server::start(
        Opts::default(),
        handler(|req, mut respond, _| async move {
            let mut body = req.into_body();
            let _ = read_body(&mut body).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut tx = respond_stream(&mut respond);
            let _ = tx.send_data(env(b"late"), false);
            let _ = tx.send_data(end_ok(), true);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }),
    )
    .await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    let opts = CallOptions::default().deadline(T);
    let (mut tx, mut rx) = ch.bidi("/a.B/C", HeaderMap::new(), opts).await.unwrap();
    tx.close_send().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), rx.message())
            .await
            .is_err(),
        "headers arrive after 300 ms"
    );
    let first = tokio::time::timeout(T, rx.message()).await.unwrap();
    assert_eq!(first.unwrap(), Some(Bytes::from_static(b"late")));
    let end = tokio::time::timeout(T, rx.message()).await.unwrap();
    assert_eq!(end.unwrap(), None);
}

/// A peer that finishes its response but never grants request window and never resets
/// (an `h2` server would send RST_STREAM NO_ERROR, so this is a raw peer): once the caller
/// has dropped both halves, its `close_send` wait cut short, the writer task must not keep
/// the stream open. It is aborted, the stream's last handle goes, and h2 resets it (CANCEL).
#[tokio::test]
async fn writer_task_ends_with_both_halves() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        // SETTINGS_INITIAL_WINDOW_SIZE (0x4) = 0: no request byte may be sent.
        let mut raw = Raw::accept(&listener, &[(4, 0)]).await;
        let (_, sid, _) = raw.until(1).await.expect("request headers");
        raw.send(&Raw::ok_headers(sid)).await;
        raw.send(&frame(0, 0, sid, &env(b"hi"))).await;
        raw.send(&frame(0, 1, sid, &end_ok())).await;
        let rst = tokio::time::timeout(Duration::from_secs(3), raw.until(3)).await;
        matches!(rst, Ok(Some((_, s, p))) if s == sid && p == 8u32.to_be_bytes())
    });
    let ch = Channel::connect(Endpoint::h2c(&addr.to_string()).unwrap())
        .await
        .unwrap();
    let (mut tx, mut rx) = ch
        .bidi("/a.B/C", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    // Larger than the 65,535-byte window the client may assume before the peer's SETTINGS
    // arrive, so the writer blocks either way.
    tx.send(Bytes::from(vec![7u8; 128 << 10])).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_millis(100), tx.close_send()).await;
    assert!(
        closed.is_err(),
        "no window, so close_send cannot finish: {closed:?}"
    );
    let m = tokio::time::timeout(T, rx.message()).await.unwrap();
    assert_eq!(m.unwrap(), Some(Bytes::from_static(b"hi")));
    assert_eq!(
        tokio::time::timeout(T, rx.message())
            .await
            .unwrap()
            .unwrap(),
        None
    );
    drop((tx, rx));
    let reset = tokio::time::timeout(T, peer).await.unwrap().unwrap();
    assert!(
        reset,
        "peer saw no RST_STREAM CANCEL: the writer kept the stream"
    );
}

/// A server may answer a server-streaming call (here with an error) before reading the whole
/// request, and then reset the request side with NO_ERROR (RFC 9113 §8.1; `h2` servers do).
/// The caller must get the server's answer, not a transport reset from the unfinished upload.
#[tokio::test]
async fn server_stream_answer_before_upload_finished() {
    let s = Server::start(
        Opts {
            stream_window: 65_535,
            ..Opts::default()
        },
        handler(|req, mut respond, _| async move {
            let _body = req.into_body();
            let mut tx = respond_stream(&mut respond);
            let _ = tx.send_data(end_err("resource_exhausted", "request too large"), true);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }),
    )
    .await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    let opts = CallOptions::default().deadline(T);
    let big = Bytes::from(vec![1u8; 1 << 20]);
    let mut rx = tokio::time::timeout(T, ch.server_stream("/a.B/C", HeaderMap::new(), big, opts))
        .await
        .unwrap()
        .expect("the server's answer is in the receive half");
    let err = tokio::time::timeout(T, rx.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.code(),
        cursor_connect_frame::Code::ResourceExhausted,
        "{err:?}"
    );
    assert_eq!(err.message(), "request too large");
}

/// `Duration::MAX` is a natural way to say "no limit"; it must not panic on `Instant`
/// arithmetic (it did, in the caller's task, when the call started).
#[tokio::test]
async fn unrepresentable_deadline_and_idle_timeout_mean_none() {
    let s = Server::start(Opts::default(), echo()).await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    let opts = CallOptions::default()
        .deadline(Duration::MAX)
        .idle_timeout(Duration::MAX);
    let call = async {
        let (mut tx, mut rx) = ch.bidi("/a.B/C", HeaderMap::new(), opts).await.unwrap();
        tx.send(Bytes::from_static(b"x")).await.unwrap();
        tx.close_send().await.unwrap();
        let first = rx.message().await.unwrap();
        (first, rx.message().await.unwrap())
    };
    let (first, end) = tokio::time::timeout(T, call).await.unwrap();
    assert_eq!(first, Some(Bytes::from_static(b"x")));
    assert_eq!(end, None);
}

/// The connection task does not outlive its channel: dropping the last `Channel` (no calls
/// open) closes the connection even with keepalive PINGs on.
#[tokio::test]
async fn connection_task_ends_with_the_channel() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let mut raw = Raw::accept(&listener, &[]).await;
        // GOAWAY (type 7) or EOF both mean the client let the connection go.
        tokio::time::timeout(Duration::from_secs(3), raw.until(7))
            .await
            .is_ok()
    });
    let ep = Endpoint::h2c(&addr.to_string())
        .unwrap()
        .keepalive(Duration::from_millis(200), Duration::from_secs(5));
    let ch = Channel::connect(ep).await.unwrap();
    let clone = ch.clone();
    drop(ch);
    drop(clone);
    let closed = tokio::time::timeout(T, peer).await.unwrap().unwrap();
    assert!(
        closed,
        "the connection stayed open after the channel was dropped"
    );
}

/// HPACK integer with a 7-bit prefix (RFC 7541 §5.1), first byte's high bit clear.
fn hpack_len(mut n: usize, out: &mut Vec<u8>) {
    if n < 127 {
        out.push(n as u8);
        return;
    }
    out.push(127);
    n -= 127;
    while n >= 128 {
        out.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    out.push(n as u8);
}

/// A response header block far larger than any Connect peer sends (h2 would take up to
/// 16 MiB per stream by default) is refused, not held for the caller.
#[tokio::test]
async fn oversized_response_headers_are_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let mut raw = Raw::accept(&listener, &[]).await;
        let (_, sid, _) = raw.until(1).await.expect("request headers");
        // :status 200, the Connect content-type (as `Raw::ok_headers`), then a literal
        // header `x-big` (new name, not indexed) of 200 KiB.
        let ct = b"application/connect+proto";
        let mut block = vec![0x88, 0x0f, 0x10, ct.len() as u8];
        block.extend_from_slice(ct);
        block.extend_from_slice(&[0x00, 5]);
        block.extend_from_slice(b"x-big");
        let value = vec![b'a'; 200 << 10];
        hpack_len(value.len(), &mut block);
        block.extend_from_slice(&value);
        raw.send(&frame(1, 4, sid, &block)).await;
        raw.send(&frame(0, 1, sid, &end_ok())).await;
        // Keep the socket open while the client decides.
        let _ = tokio::time::timeout(Duration::from_secs(2), raw.until(0xff)).await;
    });
    let ch = Channel::connect(Endpoint::h2c(&addr.to_string()).unwrap())
        .await
        .unwrap();
    let opts = CallOptions::default().deadline(T);
    let (mut tx, mut rx) = ch.bidi("/a.B/C", HeaderMap::new(), opts).await.unwrap();
    tx.close_send().await.unwrap();
    let got = tokio::time::timeout(T, rx.message()).await.unwrap();
    assert!(got.is_err(), "oversized headers accepted: {got:?}");
    assert!(rx.response_headers().is_none());
    peer.abort();
}
