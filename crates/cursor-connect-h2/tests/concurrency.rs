//! Many calls on one connection: 100 concurrent bidi calls each echoing 1,000 messages, the
//! peer's concurrent-stream limit, dropping calls, and sharing halves across tasks.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::Code;
use cursor_connect_h2::{CallOptions, Channel, Endpoint};
use http::HeaderMap;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_bidi_calls_thousand_echoes_each() {
    let s = Server::start(Opts::default(), echo()).await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for call in 0..100u32 {
        let ch = ch.clone();
        calls.spawn(async move {
            let (mut tx, mut rx) = ch
                .bidi("/e.v1.E/Bidi", HeaderMap::new(), CallOptions::default())
                .await
                .unwrap();
            // Writer and reader run in two tasks at once.
            let writer = tokio::spawn(async move {
                for i in 0..1000u32 {
                    let m = format!("{call}:{i}");
                    tx.send(Bytes::from(m)).await.unwrap();
                }
                tx.close_send().await.unwrap();
            });
            for i in 0..1000u32 {
                let m = rx.message().await.unwrap().unwrap();
                assert_eq!(m, format!("{call}:{i}").as_bytes());
            }
            assert_eq!(rx.message().await.unwrap(), None);
            writer.await.unwrap();
        });
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(r) = calls.join_next().await {
            r.unwrap();
        }
    })
    .await
    .expect("echo calls timed out");
    assert_eq!(s.conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn respects_peer_max_concurrent_streams() {
    let opts = Opts {
        max_concurrent: Some(2),
        ..Opts::default()
    };
    let s = Server::start(
        opts,
        handler(|_req, mut respond, _| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut tx = respond_stream(&mut respond);
            tx.send_data(env(b"x"), false).unwrap();
            tx.send_data(end_ok(), true).unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }),
    )
    .await;
    let ch = Channel::connect(Endpoint::h2c(&s.authority()).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let ch = ch.clone();
        set.spawn(async move {
            let opts = CallOptions::default().deadline(Duration::from_secs(5));
            let mut rx = ch
                .server_stream("/c/x", HeaderMap::new(), Bytes::new(), opts)
                .await
                .unwrap();
            assert_eq!(rx.message().await.unwrap().unwrap(), "x");
            assert_eq!(rx.message().await.unwrap(), None);
        });
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(s.conns.load(Ordering::SeqCst), 1);
}

/// `max_concurrent_calls` bounds calls in flight; a waiting call honours its deadline.
#[tokio::test]
async fn call_slots_wait_within_deadline() {
    let s = Server::start(
        Opts::default(),
        handler(|req, _respond, _| async move {
            let _hold = req;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }),
    )
    .await;
    let ep = Endpoint::h2c(&s.authority())
        .unwrap()
        .max_concurrent_calls(1);
    let ch = Channel::connect(ep).await.unwrap();
    let _first = ch
        .bidi("/c/a", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    let opts = CallOptions::default().deadline(Duration::from_millis(200));
    let e = tokio::time::timeout(
        Duration::from_secs(2),
        ch.unary("/c/b", HeaderMap::new(), Bytes::new(), opts),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    // Nothing was sent for the second call.
    assert!(e.transport_cause().unwrap().retry_safe);
}

/// Dropping both halves mid-call resets the stream (the server sees CANCEL) and leaks no
/// window: many abandoned calls later, a new call still gets through.
#[tokio::test]
async fn dropped_calls_reset_and_release() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let s = Server::start(
        Opts {
            conn_window: 65_535,
            stream_window: 65_535,
            ..Opts::default()
        },
        handler(move |req, mut respond, _| {
            let seen_tx = seen_tx.clone();
            async move {
                let mut body = req.into_body();
                let mut tx = respond_stream(&mut respond);
                // Fill the client's stream window, then wait for the reset.
                let _ = tx.send_data(env(&[1u8; 60_000]), false);
                let r = read_body(&mut body).await;
                let reason = r.err().and_then(|e| e.reason());
                let _ = seen_tx.send(reason);
            }
        }),
    )
    .await;
    let ep = Endpoint::h2c(&s.authority())
        .unwrap()
        .windows(65_535, 65_535);
    let ch = Channel::connect(ep).await.unwrap();
    for _ in 0..20 {
        let (mut tx, rx) = ch
            .bidi("/c/drop", HeaderMap::new(), CallOptions::default())
            .await
            .unwrap();
        tx.send(Bytes::from_static(b"hi")).await.unwrap();
        tx.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(rx);
        drop(tx);
        let reason = tokio::time::timeout(Duration::from_secs(2), seen_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reason, Some(h2::Reason::CANCEL));
    }
    // 20 x 60,000 unread bytes would have exhausted a leaking 65,535 connection window.
    let (mut tx, mut rx) = ch
        .bidi("/c/drop", HeaderMap::new(), CallOptions::default())
        .await
        .unwrap();
    tx.send(Bytes::from_static(b"hi")).await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(2), rx.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.len(), 60_000);
}
