//! The HTTP/1.1 shim half of the transport bench: a minimal RunSSE + BidiAppend echo server
//! on hyper, and the cursor-connect-http1 client against it (a module of `transport.rs`).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cursor_connect_http1::{Channel as H1Channel, Endpoint as H1Endpoint, ShimOptions};
use cursor_proto::aiserver::v1::{BidiAppendRequest, BidiRequestId};
use http::{HeaderMap, Request, Response};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Messages per HTTP/1.1 echo round (each one is its own BidiAppend request).
pub(crate) const H1_ECHO_MSGS: usize = 20_000;
const STREAM_PATH: &str = "/bench.v1.B/EchoSSE";
const APPEND_PATH: &str = "/bench.v1.B/Append";

/// One echo stream: appends are delivered in seqno order into `tx`.
struct Entry {
    tx: mpsc::Sender<Bytes>,
    rx: Option<mpsc::Receiver<Bytes>>,
    next: i64,
    waiting: BTreeMap<i64, Bytes>,
}

type Table = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<Entry>>>>>;

fn entry(table: &Table, id: &str) -> Arc<tokio::sync::Mutex<Entry>> {
    let mut t = table.lock().expect("table");
    t.entry(id.to_owned())
        .or_insert_with(|| {
            let (tx, rx) = mpsc::channel(4096);
            Arc::new(tokio::sync::Mutex::new(Entry {
                tx,
                rx: Some(rx),
                next: 0,
                waiting: BTreeMap::new(),
            }))
        })
        .clone()
}

/// A response body fed by a channel of ready-made envelopes.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

async fn body_bytes(body: Incoming) -> Bytes {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(Ok(f)) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(d) = f.into_data() {
            out.extend_from_slice(&d);
        }
    }
    Bytes::from(out)
}

async fn handle(table: Table, req: Request<Incoming>) -> Result<Response<ChannelBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = body_bytes(req.into_body()).await;
    if path == STREAM_PATH {
        let id = BidiRequestId::decode(body.slice(5..))
            .expect("request id")
            .request_id;
        let e = entry(&table, &id);
        let mut rx = e.lock().await.rx.take().expect("stream once");
        let (out_tx, out_rx) = mpsc::channel(4096);
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if m.is_empty() {
                    let _ = out_tx.send(super::end_ok()).await;
                    return;
                }
                if out_tx.send(super::envelope(&m)).await.is_err() {
                    return;
                }
            }
        });
        let resp = Response::builder()
            .header("content-type", super::CT)
            .body(ChannelBody(out_rx))
            .expect("resp");
        return Ok(resp);
    }
    let append = BidiAppendRequest::decode(body).expect("append");
    let id = append.request_id.expect("id").request_id;
    let data = Bytes::from(hex::decode(&append.data).expect("hex"));
    let e = entry(&table, &id);
    let mut e = e.lock().await;
    e.waiting.insert(append.append_seqno, data);
    loop {
        let next = e.next;
        let Some(m) = e.waiting.remove(&next) else {
            break;
        };
        e.next += 1;
        let _ = e.tx.send(m).await;
    }
    let (_, empty) = mpsc::channel(1);
    Ok(Response::builder()
        .header("content-type", "application/proto")
        .body(ChannelBody(empty))
        .expect("resp"))
}

pub(crate) async fn start_h1_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let table: Table = Arc::default();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let table = table.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |r| handle(table.clone(), r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

pub(crate) fn h1_channel(addr: SocketAddr) -> H1Channel {
    H1Channel::new(H1Endpoint::from_url(&format!("http://{addr}")).expect("endpoint"))
}

/// `H1_ECHO_MSGS` 1 KiB messages up through BidiAppend (≤16 in flight), back down the stream.
pub(crate) async fn ours_h1_echo(ch: &H1Channel, round: usize) -> Duration {
    let payload = Bytes::from(vec![0x33; super::ECHO_SIZE]);
    let id = format!("bench-{round}");
    let start = Instant::now();
    let (mut app, mut stream) = ch.shim(
        STREAM_PATH,
        APPEND_PATH,
        HeaderMap::new(),
        &id,
        ShimOptions::default(),
    );
    let sender = tokio::spawn(async move {
        for _ in 0..H1_ECHO_MSGS {
            app.send(payload.clone()).await.expect("append");
        }
        app.send(Bytes::new()).await.expect("close marker");
        app.flush().await.expect("flush");
        app
    });
    let mut n = 0;
    while let Some(m) = stream.message().await.expect("message") {
        assert_eq!(m.len(), super::ECHO_SIZE);
        n += 1;
    }
    assert_eq!(n, H1_ECHO_MSGS);
    drop(sender.await.expect("sender"));
    start.elapsed()
}
