//! Flow control over real sockets: uploads through small and pathological windows, a slow
//! reader pushing back on the sender, and many tiny frames read late.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cursor_connect_h2::{CallOptions, Channel, Endpoint};
use http::HeaderMap;
use support::*;

/// Counts the request body and answers with one message holding the count.
fn counter() -> Handler {
    handler(|req, mut respond, _| async move {
        let mut body = req.into_body();
        let Ok(all) = read_body(&mut body).await else {
            return;
        };
        let mut tx = respond_stream(&mut respond);
        let n = split_envelopes(&all).iter().map(|m| m.len()).sum::<usize>();
        let _ = tx.send_data(env(n.to_string().as_bytes()), false);
        let _ = tx.send_data(end_ok(), true);
        tokio::time::sleep(Duration::from_millis(50)).await;
    })
}

async fn upload(opts: Opts, messages: Vec<Bytes>, limit: Duration) -> Duration {
    let s = Server::start(opts, counter()).await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    // Let the server's SETTINGS arrive: before that a client may assume 65,535 windows.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let total: usize = messages.iter().map(Bytes::len).sum();
    let started = Instant::now();
    let (mut tx, mut rx) = ch
        .bidi("/u.v1.U/Up", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    let sender = tokio::spawn(async move {
        for m in messages {
            tx.send(m).await.unwrap();
        }
        tx.close_send().await.unwrap();
    });
    let got = tokio::time::timeout(limit, rx.message())
        .await
        .expect("upload timed out")
        .unwrap()
        .unwrap();
    assert_eq!(got, total.to_string().as_bytes());
    assert_eq!(rx.message().await.unwrap(), None);
    sender.await.unwrap();
    started.elapsed()
}

fn small_windows() -> Opts {
    Opts {
        stream_window: 65_535,
        conn_window: 65_535,
        ..Opts::default()
    }
}

#[tokio::test]
async fn upload_178k_through_65535_windows() {
    upload(
        small_windows(),
        vec![Bytes::from(vec![1u8; 182_272])],
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_16m_through_65535_windows() {
    let one = upload(
        small_windows(),
        vec![Bytes::from(vec![2u8; 16 << 20])],
        Duration::from_secs(20),
    )
    .await;
    let many: Vec<Bytes> = (0..256).map(|_| Bytes::from(vec![3u8; 64 << 10])).collect();
    let chunked = upload(small_windows(), many, Duration::from_secs(20)).await;
    eprintln!("16 MiB: one message {one:?}, 256 messages {chunked:?}");
}

/// 1 MiB through a stream window that starts at 1 byte; the server raises its
/// SETTINGS_INITIAL_WINDOW_SIZE mid-stream (RFC 9113 §6.9.2: open streams change by the
/// delta, which the Go proxy in the seeds got wrong and tripped FLOW_CONTROL_ERROR on).
#[tokio::test]
async fn upload_1m_through_1_byte_window_then_settings_change() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = h2::server::Builder::new()
            .initial_window_size(1)
            .handshake::<_, Bytes>(tcp)
            .await
            .unwrap();
        let (req, mut respond) = conn.accept().await.unwrap().unwrap();
        let mut body = req.into_body();
        let (total_tx, total_rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut n = 0usize;
            let mut frames = 0usize;
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                frames += 1;
                n += chunk.len();
                body.flow_control().release_capacity(chunk.len()).unwrap();
            }
            let _ = total_tx.send((n, frames));
        });
        // Let a few hundred bytes trickle through the 1-byte window first, then widen it,
        // all while driving the connection.
        let mut widen = Box::pin(tokio::time::sleep(Duration::from_millis(300)));
        let mut widened = false;
        let mut total_rx = total_rx;
        let (n, frames) = loop {
            let ev = std::future::poll_fn(|cx| {
                if !widened && widen.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ev::Widen);
                }
                if let Poll::Ready(r) = Pin::new(&mut total_rx).poll(cx) {
                    return Poll::Ready(Ev::Done(r.unwrap()));
                }
                match conn.poll_closed(cx) {
                    Poll::Ready(_) => Poll::Ready(Ev::Closed),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match ev {
                Ev::Widen => {
                    widened = true;
                    conn.set_initial_window_size(1 << 20).unwrap();
                }
                Ev::Done(t) => break t,
                Ev::Closed => panic!("connection closed early"),
            }
        };
        reader.await.unwrap();
        let mut tx = respond.send_response(stream_response(), false).unwrap();
        tx.send_data(env((n - 5).to_string().as_bytes()), false)
            .unwrap();
        tx.send_data(end_ok(), true).unwrap();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            std::future::poll_fn(|cx| conn.poll_closed(cx)),
        )
        .await;
        frames
    });
    let ch = Channel::connect(Endpoint::h2c(&addr.to_string()).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut tx, mut rx) = ch
        .bidi("/u.v1.U/Up", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    tx.send(Bytes::from(vec![9u8; 1 << 20])).await.unwrap();
    tx.close_send().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, (1usize << 20).to_string().as_bytes());
    assert_eq!(rx.message().await.unwrap(), None);
    let frames = server.await.unwrap();
    // Many 1-byte frames went out before the window was raised.
    assert!(frames > 50, "only {frames} DATA frames");
}

enum Ev {
    Widen,
    Done((usize, usize)),
    Closed,
}

/// A strictly 1-byte stream window for the whole upload: slow but correct.
#[tokio::test]
async fn upload_through_strict_1_byte_window() {
    let opts = Opts {
        stream_window: 1,
        ..Opts::default()
    };
    let elapsed = upload(
        opts,
        vec![Bytes::from(vec![4u8; 4000])],
        Duration::from_secs(10),
    )
    .await;
    eprintln!("4,000 bytes through a 1-byte window: {elapsed:?}");
}

/// A server that never reads: `send` must start waiting after roughly the send buffer plus
/// the peer's windows, instead of buffering everything.
#[tokio::test]
async fn stalled_peer_pushes_back_on_sender() {
    let s = Server::start(
        small_windows(),
        handler(|req, _respond, _| async move {
            let _hold = req;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    let ep = Endpoint::h2c(&s.authority())
        .unwrap()
        .max_send_buffer(64 << 10);
    let ch = Channel::connect(ep).await.unwrap();
    let (mut tx, _rx) = ch
        .bidi("/u.v1.U/Up", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let r = tokio::time::timeout(Duration::from_millis(800), async move {
        for _ in 0..10_000 {
            tx.send(Bytes::from(vec![0u8; 1024])).await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await;
    assert!(r.is_err(), "send never pushed back");
    let n = sent.load(Ordering::SeqCst);
    // 64 KiB queue + 64 KiB window + one 32 KiB batch in flight, in 1 KiB messages.
    assert!((60..=200).contains(&n), "{n} messages accepted");
}

/// 2,000 DATA frames of 20 bytes, read 500 ms late: h2's small-frame budget must not kill
/// the connection (our 8 MiB connection window gives it a 4 MiB budget).
#[tokio::test]
async fn many_tiny_frames_read_late() {
    let s = Server::start(
        Opts::default(),
        handler(|_req, mut respond, _| async move {
            let mut tx = respond_stream(&mut respond);
            for i in 0..2000u32 {
                let payload = format!("{i:015}");
                if tx.send_data(env(payload.as_bytes()), false).is_err() {
                    return;
                }
            }
            let _ = tx.send_data(end_ok(), true);
            tokio::time::sleep(Duration::from_secs(3)).await;
        }),
    )
    .await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    let mut rx = open_server_stream(&ch, "/t.v1.T/Tiny").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::time::timeout(Duration::from_secs(5), async {
        for i in 0..2000u32 {
            let m = rx.message().await.unwrap().unwrap();
            assert_eq!(m, format!("{i:015}").as_bytes());
        }
        assert_eq!(rx.message().await.unwrap(), None);
    })
    .await
    .unwrap();
    // The connection survived: another call works on it.
    let mut rx = open_server_stream(&ch, "/t.v1.T/Tiny").await;
    assert!(rx.message().await.unwrap().is_some());
    assert_eq!(s.conns.load(Ordering::SeqCst), 1);
}

/// A response message larger than the stream window must not deadlock: capacity is
/// released as bytes enter the decoder.
#[tokio::test]
async fn message_larger_than_window_downloads() {
    let s = Server::start(
        Opts::default(),
        handler(|_req, mut respond, _| async move {
            let mut tx = respond_stream(&mut respond);
            let _ = tx.send_data(env(&vec![5u8; 3 << 20]), false);
            let _ = tx.send_data(end_ok(), true);
            tokio::time::sleep(Duration::from_secs(3)).await;
        }),
    )
    .await;
    let ep = Endpoint::h2c(&s.authority())
        .unwrap()
        .windows(65_535, 65_535);
    let ch = Channel::connect(ep).await.unwrap();
    let mut rx = open_server_stream(&ch, "/d.v1.D/Big").await;
    let m = tokio::time::timeout(Duration::from_secs(5), rx.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.len(), 3 << 20);
    assert_eq!(rx.message().await.unwrap(), None);
}

/// Messages from 1 byte to past the sender's 64 KiB encode buffers, pipelined under a
/// 64 KiB send buffer (so `send` keeps waiting for budget): every echo comes back whole
/// and in order.
#[tokio::test]
async fn pipelined_echo_keeps_order_across_buffers() {
    let s = Server::start(Opts::default(), echo()).await;
    let ep = Endpoint::h2c(&s.authority())
        .unwrap()
        .max_send_buffer(64 << 10);
    let ch = Channel::connect(ep).await.unwrap();
    let message = |i: usize| {
        let len = if i.is_multiple_of(2) {
            1 + i % 50
        } else {
            1 + (i * 7919) % 70_000
        };
        Bytes::from((0..len).map(|k| (i + k) as u8).collect::<Vec<u8>>())
    };
    let (mut tx, mut rx) = ch
        .bidi("/e.v1.E/Bidi", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..300 {
            tx.send(message(i)).await.unwrap();
        }
        tx.close_send().await.unwrap();
    });
    tokio::time::timeout(Duration::from_secs(20), async {
        for i in 0..300 {
            let m = rx.message().await.unwrap().expect("message");
            assert!(m == message(i), "message {i} differs ({} bytes)", m.len());
        }
        assert_eq!(rx.message().await.unwrap(), None);
    })
    .await
    .expect("echo timed out");
    sender.await.unwrap();
}

/// A `close_send` whose caller stopped waiting, with the send half then dropped, is still
/// delivered after every queued message: the server reads the whole request to its end.
#[tokio::test]
async fn abandoned_close_still_ends_the_request() {
    let s = Server::start(small_windows(), counter()).await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    let (mut tx, mut rx) = ch
        .bidi("/u.v1.U/Up", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    let mut total = 0;
    for i in 0..100 {
        let m = Bytes::from(vec![i as u8; 1000 + i * 37]);
        total += m.len();
        tx.send(m).await.unwrap();
    }
    // This test's runtime has one thread, so the writer cannot finish while the close is
    // polled once: the zero timeout always cuts the wait short.
    let cut = tokio::time::timeout(Duration::ZERO, tx.close_send()).await;
    assert!(cut.is_err(), "close_send finished at once: {cut:?}");
    drop(tx);
    let got = tokio::time::timeout(Duration::from_secs(10), rx.message())
        .await
        .expect("request never ended")
        .unwrap()
        .unwrap();
    assert_eq!(got, total.to_string().as_bytes());
    assert_eq!(rx.message().await.unwrap(), None);
}
