//! The shim against a hand-written HTTP/1.1 server: append deadlines, retries that reuse their
//! seqno, end-stream errors, hostile lengths and refused streams, each a typed error in time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cursor_connect_frame::{Code, Origin, TransportKind};
use cursor_connect_http1::{Channel, Endpoint, ShimOptions};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

const STREAM: &str = "/s.v1.S/RunSSE";
const APPEND: &str = "/s.v1.S/Append";

/// A body of queued chunks; it ends when the sender is dropped.
struct Chunks(mpsc::Receiver<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

fn body(chunks: Vec<Bytes>, hold: Option<mpsc::Sender<Bytes>>) -> Chunks {
    let (tx, rx) = mpsc::channel(chunks.len().max(1));
    for c in chunks {
        tx.try_send(c).expect("room");
    }
    // Keep the body open while a holder lives.
    if let Some(h) = hold {
        tokio::spawn(async move {
            let _tx = tx;
            h.closed().await;
        });
    }
    Chunks(rx)
}

fn response(status: u16, ct: &str, b: Chunks) -> http::Response<Chunks> {
    http::Response::builder()
        .status(status)
        .header("content-type", ct)
        .body(b)
        .expect("response")
}

type Handler = Arc<
    dyn Fn(
            String,
            Bytes,
        )
            -> Pin<Box<dyn Future<Output = Result<http::Response<Chunks>, std::io::Error>> + Send>>
        + Send
        + Sync,
>;

async fn serve(handler: Handler) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let mut b = req.into_body();
                        let mut all = Vec::new();
                        while let Some(Ok(f)) =
                            std::future::poll_fn(|cx| Pin::new(&mut b).poll_frame(cx)).await
                        {
                            if let Ok(d) = f.into_data() {
                                all.extend_from_slice(&d);
                            }
                        }
                        handler(path, Bytes::from(all)).await
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::new(Endpoint::from_url(&format!("http://{addr}")).unwrap())
}

fn env(flags: u8, payload: &[u8]) -> Bytes {
    let mut v = vec![flags];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

const CT: &str = "application/connect+proto";

#[tokio::test]
async fn an_append_past_its_deadline_fails_the_stream_in_time() {
    let holder = Arc::new(Mutex::new(Vec::<mpsc::Receiver<Bytes>>::new()));
    let h = holder.clone();
    let addr = serve(Arc::new(move |path, _| {
        let h = h.clone();
        Box::pin(async move {
            if path == STREAM {
                // The body stays open while the test holds the receiver.
                let (tx, rx) = mpsc::channel::<Bytes>(1);
                h.lock().unwrap().push(rx);
                return Ok(response(200, CT, body(vec![env(0, b"hi")], Some(tx))));
            }
            // Appends are never answered.
            std::future::pending().await
        })
    }))
    .await;
    let mut opts = ShimOptions::default();
    opts.append.deadline_base = Duration::from_millis(300);
    let (mut app, mut stream) = channel(addr).shim(STREAM, APPEND, Default::default(), "id", opts);
    app.send(Bytes::from_static(b"\x3a\x00")).await.unwrap();
    let started = Instant::now();
    assert_eq!(stream.message().await.unwrap().unwrap(), "hi");
    let e = stream.message().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(e.code(), Code::DeadlineExceeded);
    assert!(e.message().contains("bidi_append_deadline_exceeded"), "{e}");
    assert_eq!(e.transport_cause().unwrap().kind, TransportKind::Timeout);
    // Sticky on both halves.
    assert_eq!(
        stream.message().await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
    assert_eq!(
        app.send(Bytes::new()).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
}

#[tokio::test]
async fn a_lost_append_is_retried_with_its_seqno() {
    let seen = Arc::new(Mutex::new(Vec::<Bytes>::new()));
    let s = seen.clone();
    let addr = serve(Arc::new(move |path, req_body| {
        let s = s.clone();
        Box::pin(async move {
            if path == STREAM {
                return Ok(response(200, CT, body_end_ok()));
            }
            let first = {
                let mut g = s.lock().unwrap();
                g.push(req_body);
                g.len() == 1
            };
            if first {
                // Drop the connection without an answer.
                return Err(std::io::Error::other("drop"));
            }
            Ok(response(200, "application/proto", body(vec![], None)))
        })
    }))
    .await;
    let (mut app, _stream) = channel(addr).shim(
        STREAM,
        APPEND,
        Default::default(),
        "rid",
        ShimOptions::default(),
    );
    app.send(Bytes::from_static(b"\x01\x02")).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), app.flush())
        .await
        .unwrap()
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the retry is byte-identical (same seqno)");
    assert_eq!(app.next_seqno(), 1);
}

fn body_end_ok() -> Chunks {
    body(vec![env(0, b"m"), env(2, b"{}")], None)
}

#[tokio::test]
async fn end_stream_error_is_remote_and_sticky() {
    let addr = serve(Arc::new(|_, _| {
        Box::pin(async {
            let end = br#"{"error":{"code":"resource_exhausted","message":"slow down"}}"#;
            Ok(response(
                200,
                CT,
                body(vec![env(0, b"a"), env(2, end)], None),
            ))
        })
    }))
    .await;
    let mut s = channel(addr).server_stream(STREAM, Default::default(), b"x", Default::default());
    assert_eq!(s.message().await.unwrap().unwrap(), "a");
    let e = s.message().await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert_eq!(e.origin(), Origin::Remote);
    assert_eq!(
        s.message().await.unwrap_err().code(),
        Code::ResourceExhausted
    );
}

#[tokio::test]
async fn hostile_length_is_refused_without_buffering() {
    let addr = serve(Arc::new(|_, _| {
        Box::pin(async {
            let mut hdr = vec![0u8];
            hdr.extend_from_slice(&u32::MAX.to_be_bytes());
            Ok(response(200, CT, body(vec![Bytes::from(hdr)], None)))
        })
    }))
    .await;
    let mut s = channel(addr).server_stream(STREAM, Default::default(), b"x", Default::default());
    let e = tokio::time::timeout(Duration::from_secs(5), s.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
}

#[tokio::test]
async fn cut_body_and_refused_stream_are_typed() {
    let addr = serve(Arc::new(|path, _| {
        Box::pin(async move {
            if path == "/cut" {
                return Ok(response(200, CT, body(vec![env(0, b"a")], None)));
            }
            let json = br#"{"code":"unauthenticated","message":"who are you"}"#;
            Ok(response(
                401,
                "application/json",
                body(vec![Bytes::from_static(json)], None),
            ))
        })
    }))
    .await;
    let ch = channel(addr);
    let mut s = ch.server_stream("/cut", Default::default(), b"x", Default::default());
    assert_eq!(s.message().await.unwrap().unwrap(), "a");
    let e = s.message().await.unwrap_err();
    assert_eq!(e.origin(), Origin::Transport);
    assert!(e.transport_cause().unwrap().response_started);
    let mut s = ch.server_stream(STREAM, Default::default(), b"x", Default::default());
    let e = s.message().await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    // Unary on the same pool, then a refused connection: retry safe.
    let dead = channel("127.0.0.1:9".parse().unwrap());
    let e = dead
        .unary(
            "/x",
            Default::default(),
            Bytes::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(e.transport_cause().unwrap().retry_safe, "{e}");
}

#[tokio::test]
async fn appends_stay_within_the_in_flight_bound_and_reuse_connections() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (n, p) = (now.clone(), peak.clone());
    let addr = serve(Arc::new(move |path, _| {
        let (n, p) = (n.clone(), p.clone());
        Box::pin(async move {
            if path == STREAM {
                return Ok(response(200, CT, body_end_ok()));
            }
            let cur = n.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(cur, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            n.fetch_sub(1, Ordering::SeqCst);
            Ok(response(200, "application/proto", body(vec![], None)))
        })
    }))
    .await;
    let (mut app, _stream) = channel(addr).shim(
        STREAM,
        APPEND,
        Default::default(),
        "b",
        ShimOptions::default(),
    );
    for _ in 0..64 {
        app.send(Bytes::from_static(b"\x3a\x00")).await.unwrap();
        assert!(app.in_flight() <= 16);
    }
    tokio::time::timeout(Duration::from_secs(10), app.flush())
        .await
        .unwrap()
        .unwrap();
    let peak = peak.load(Ordering::SeqCst);
    assert!((2..=16).contains(&peak), "peak {peak}");
    assert_eq!(app.next_seqno(), 64);
}

#[tokio::test]
async fn sequential_unary_calls_share_one_keep_alive_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: http::Request<Incoming>| async {
                    Ok::<_, Infallible>(response(
                        200,
                        "application/proto",
                        body(vec![Bytes::from_static(b"ok")], None),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    let ch = channel(addr);
    for _ in 0..20 {
        let got = ch
            .unary(
                "/u",
                Default::default(),
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(got, "ok");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}
