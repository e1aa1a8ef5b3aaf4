//! Transport throughput on loopback: cursor-connect-h2 against a minimal hand-written loop
//! over the raw `h2` crate with the same windows and frame size, in the same run.
//!
//! (a) a 256 MiB download in 1 MiB messages (server stream); the raw loop is measured both
//!     cutting the stream into contiguous messages (what ours delivers) and counting bytes;
//! (b) a bidi echo of 1 KiB messages, pipelined (one task sends, another reads), against two
//!     raw loops: one DATA frame per message (what batching buys), and one that coalesces
//!     messages into writes of 32 KiB in the sending task (the library's own overhead;
//!     cursor-connect-h2's writer writes what accumulated, up to its 64 KiB encode buffers,
//!     and this loop batching 64 KiB measured slower, so 32 KiB is the stronger baseline);
//! (c) the same 1 KiB echo over the HTTP/1.1 shim (cursor-connect-http1: each message one
//!     BidiAppend request, ≤16 in flight, echoed down a RunSSE-style stream), next to (b)'s
//!     HTTP/2 numbers from the same run, with the ratio.
//!
//! Run: `nice cargo bench -p cursor-connect-benches --bench transport`. Each case runs
//! `ROUNDS` times, alternating ours and raw; the best and median rounds are printed.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cursor_connect_benches::emit;
use cursor_connect_h2::{CallOptions, Channel, Endpoint};
use cursor_test_support::envelope::{end_ok, message as envelope};
use cursor_test_support::flow::send_all;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, Request, Response};
use tokio::net::{TcpListener, TcpStream};

#[path = "transport/http1.rs"]
mod http1;

/// The windows both clients use (cursor-connect-h2's defaults) and the frame size
/// cursor-connect-h2 advertises; the raw client is configured with the same values.
const STREAM_WINDOW: u32 = 2 << 20;
const CONN_WINDOW: u32 = 8 << 20;
const MAX_FRAME: u32 = 256 << 10;
const SEND_BUFFER: usize = 1 << 20;

const DOWNLOAD_BYTES: usize = 256 << 20;
const DOWNLOAD_MSG: usize = 1 << 20;
const ECHO_MSGS: usize = 100_000;
const ECHO_SIZE: usize = 1024;
const ROUNDS: usize = 7;
/// The batched raw echo writes whenever its batch reaches this size.
const COALESCE: usize = 32 << 10;

const CT: &str = "application/connect+proto";

// ---- server (shared by both clients) --------------------------------------------------

async fn start_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(serve(tcp));
        }
    });
    addr
}

async fn serve(tcp: TcpStream) {
    let mut b = h2::server::Builder::new();
    b.initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_send_buffer_size(SEND_BUFFER);
    let Ok(mut conn) = b.handshake::<_, Bytes>(tcp).await else {
        return;
    };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        tokio::spawn(async move {
            let resp = Response::builder()
                .header("content-type", CT)
                .body(())
                .expect("resp");
            let Ok(tx) = respond.send_response(resp, false) else {
                return;
            };
            if req.uri().path().ends_with("/Download") {
                download(tx).await;
            } else {
                echo(req.into_body(), tx).await;
            }
        });
    }
}

/// Sends data under flow control; false once the stream is gone.
async fn write(tx: &mut SendStream<Bytes>, data: Bytes, eos: bool) -> bool {
    send_all(tx, data, eos).await.is_ok()
}

async fn download(mut tx: SendStream<Bytes>) {
    let msg = envelope(&vec![0x5a; DOWNLOAD_MSG]);
    for _ in 0..DOWNLOAD_BYTES / DOWNLOAD_MSG {
        if !write(&mut tx, msg.clone(), false).await {
            return;
        }
    }
    let _ = tx.send_data(end_ok(), true);
}

async fn echo(mut body: RecvStream, mut tx: SendStream<Bytes>) {
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        if !write(&mut tx, chunk, false).await {
            return;
        }
    }
    let _ = tx.send_data(end_ok(), true);
}

// ---- clients ---------------------------------------------------------------------------

async fn ours_channel(addr: SocketAddr) -> Channel {
    let ep = Endpoint::h2c(&addr.to_string())
        .expect("endpoint")
        .windows(STREAM_WINDOW, CONN_WINDOW)
        .max_send_buffer(SEND_BUFFER);
    Channel::connect(ep).await.expect("connect")
}

async fn raw_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("tcp");
    tcp.set_nodelay(true).expect("nodelay");
    let (sr, conn) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_frame_size(MAX_FRAME)
        .max_send_buffer_size(SEND_BUFFER)
        .enable_push(false)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sr
}

fn raw_request(addr: SocketAddr, path: &str) -> Request<()> {
    Request::post(format!("http://{addr}{path}"))
        .header("content-type", CT)
        .header("connect-protocol-version", "1")
        .header("te", "trailers")
        .body(())
        .expect("request")
}

async fn ours_download(ch: &Channel) -> Duration {
    let start = Instant::now();
    let mut rx = ch
        .server_stream(
            "/bench.v1.B/Download",
            HeaderMap::new(),
            Bytes::new(),
            CallOptions::default(),
        )
        .await
        .expect("call");
    let mut n = 0;
    while let Some(m) = rx.message().await.expect("message") {
        n += m.len();
    }
    assert_eq!(n, DOWNLOAD_BYTES);
    start.elapsed()
}

/// The raw baseline for the download. With `assemble`, it also cuts the byte stream into
/// contiguous messages (the minimal work a hand-written Connect client must do to hand 1 MiB
/// messages to its caller); without, it only counts bytes.
async fn raw_download(
    sr: &h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    assemble: bool,
) -> Duration {
    let start = Instant::now();
    let mut sr = sr.clone().ready().await.expect("ready");
    let (resp, _tx) = sr
        .send_request(raw_request(addr, "/bench.v1.B/Download"), true)
        .expect("send");
    let mut body = resp.await.expect("response").into_body();
    let (mut n, mut payload) = (0, 0);
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("data");
        n += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
        if !assemble {
            continue;
        }
        buf.extend_from_slice(&chunk);
        while buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() < 5 + len {
                break;
            }
            let message = buf.split_to(5 + len).freeze();
            if message[0] & 2 == 0 {
                payload += message.len() - 5;
            }
        }
    }
    assert_eq!(n, DOWNLOAD_BYTES + DOWNLOAD_BYTES / DOWNLOAD_MSG * 5 + 7);
    assert!(!assemble || payload == DOWNLOAD_BYTES);
    start.elapsed()
}

async fn ours_echo(ch: &Channel) -> Duration {
    let payload = Bytes::from(vec![0x33; ECHO_SIZE]);
    let start = Instant::now();
    let (mut tx, mut rx) = ch
        .bidi("/bench.v1.B/Echo", HeaderMap::new(), CallOptions::default())
        .await
        .expect("call");
    let sender = tokio::spawn(async move {
        for _ in 0..ECHO_MSGS {
            tx.send(payload.clone()).await.expect("send");
        }
        tx.close_send().await.expect("close");
    });
    let mut n = 0;
    while let Some(m) = rx.message().await.expect("message") {
        assert_eq!(m.len(), ECHO_SIZE);
        n += 1;
    }
    assert_eq!(n, ECHO_MSGS);
    sender.await.expect("sender");
    start.elapsed()
}

/// The raw echo. Unbatched, one DATA frame per message (the straightforward way to drive h2);
/// batched, messages are appended to one buffer that is written whenever it reaches 32 KiB,
/// as a hand-written client that batches would do.
async fn raw_echo(
    sr: &h2::client::SendRequest<Bytes>,
    addr: SocketAddr,
    batched: bool,
) -> Duration {
    let msg = envelope(&vec![0x33; ECHO_SIZE]);
    let start = Instant::now();
    let mut sr = sr.clone().ready().await.expect("ready");
    let (resp, mut tx) = sr
        .send_request(raw_request(addr, "/bench.v1.B/Echo"), false)
        .expect("send");
    let sender = tokio::spawn(async move {
        // Each batch gets room for all its messages up front: grown from empty, every batch
        // would reallocate (and copy) several times, slowing the baseline down.
        let fresh = || BytesMut::with_capacity(COALESCE + msg.len());
        let mut batch = fresh();
        for _ in 0..ECHO_MSGS {
            if !batched {
                assert!(write(&mut tx, msg.clone(), false).await, "raw send");
                continue;
            }
            batch.extend_from_slice(&msg);
            if batch.len() >= COALESCE {
                let full = std::mem::replace(&mut batch, fresh());
                assert!(write(&mut tx, full.freeze(), false).await, "raw send");
            }
        }
        assert!(
            write(&mut tx, batch.split().freeze(), true).await,
            "raw end"
        );
        tx
    });
    let mut body = resp.await.expect("response").into_body();
    let mut n = 0;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("data");
        n += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    assert_eq!(n, ECHO_MSGS * (ECHO_SIZE + 5) + 7);
    drop(sender.await.expect("sender"));
    start.elapsed()
}

// ---- reporting -------------------------------------------------------------------------

/// CPU time used by every thread of this process (client and server alike), from
/// /proc/self/task/*/schedstat. On a shared machine CPU time per byte is far steadier than
/// wall time, so ratios are reported on both.
fn cpu_time() -> Duration {
    let mut ns = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for task in dir.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

/// Wall and CPU time of one run.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    cpu: Duration,
}

async fn measure<F: Future<Output = Duration>>(f: F) -> Sample {
    let cpu0 = cpu_time();
    let wall = f.await;
    Sample {
        wall,
        cpu: cpu_time().saturating_sub(cpu0),
    }
}

fn median_of(v: &[Sample], cpu: bool) -> Duration {
    let mut d: Vec<Duration> = v.iter().map(|s| if cpu { s.cpu } else { s.wall }).collect();
    d.sort();
    d[d.len() / 2]
}

/// One markdown row: the variant's rate by wall and CPU median, and its ratio to `ours`
/// (throughput ours / this; blank for ours itself).
fn row(out: &mut Vec<String>, who: &str, v: &[Sample], ours: &[Sample], units: f64, unit: &str) {
    let rate = |d: Duration| units / d.as_secs_f64();
    let (wall, cpu) = (median_of(v, false), median_of(v, true));
    let ratio = |cpu: bool| median_of(v, cpu).as_secs_f64() / median_of(ours, cpu).as_secs_f64();
    let ratios = if std::ptr::eq(v, ours) {
        "| – | – |".to_string()
    } else {
        format!("| {:.2}x | {:.2}x |", ratio(false), ratio(true))
    };
    out.push(format!(
        "| {who} | {:.0} {unit} | {:.0} {unit} per cpu-s {ratios}",
        rate(wall),
        rate(cpu)
    ));
}

fn table_head(out: &mut Vec<String>, title: String) {
    out.push(format!("\n### {title}\n"));
    out.push(
        "| variant | wall median | CPU median | ours / this (wall) | ours / this (CPU) |".into(),
    );
    out.push("|---|---|---|---|---|".into());
}

fn report_download(out: &mut Vec<String>, ours: &[Sample], raw: &[Sample], count: &[Sample]) {
    table_head(
        out,
        format!(
            "(a) download {} MiB in {} KiB messages (windows {} KiB / {} KiB)",
            DOWNLOAD_BYTES >> 20,
            DOWNLOAD_MSG >> 10,
            STREAM_WINDOW >> 10,
            CONN_WINDOW >> 10
        ),
    );
    let mb = DOWNLOAD_BYTES as f64 / 1e6;
    row(out, "ours (messages)", ours, ours, mb, "MB/s");
    row(out, "raw h2, cuts messages", raw, ours, mb, "MB/s");
    row(
        out,
        "raw h2, counts bytes only (target: ours >= 0.95x)",
        count,
        ours,
        mb,
        "MB/s",
    );
}

fn report_echo(out: &mut Vec<String>, ours: &[Sample], raw: &[Sample], batched: &[Sample]) {
    table_head(
        out,
        format!("(b) bidi echo of {ECHO_MSGS} x {ECHO_SIZE} B messages, pipelined"),
    );
    let n = ECHO_MSGS as f64;
    row(out, "ours", ours, ours, n, "msgs/s");
    row(
        out,
        "raw h2, batched to 32 KiB as ours (library overhead; target >= 0.95x)",
        batched,
        ours,
        n,
        "msgs/s",
    );
    row(
        out,
        "raw h2, one DATA frame per message (what batching buys)",
        raw,
        ours,
        n,
        "msgs/s",
    );
}

fn report_h1_echo(out: &mut Vec<String>, h1: &[Sample], h2: &[Sample]) {
    let n1 = http1::H1_ECHO_MSGS;
    table_head(
        out,
        format!(
            "(c) 1 KiB echo over HTTP/1.1 (BidiAppend + stream), {n1} messages, vs (b) over HTTP/2"
        ),
    );
    row(out, "ours over HTTP/1.1", h1, h1, n1 as f64, "msgs/s");
    // Different message counts: compare rates, so scale the HTTP/2 samples to n1 messages.
    let scaled: Vec<Sample> = h2
        .iter()
        .map(|s| Sample {
            wall: s.wall.mul_f64(n1 as f64 / ECHO_MSGS as f64),
            cpu: s.cpu.mul_f64(n1 as f64 / ECHO_MSGS as f64),
        })
        .collect();
    row(
        out,
        "ours over HTTP/2 (ratio: http1 / http2)",
        &scaled,
        h1,
        n1 as f64,
        "msgs/s",
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let addr = start_server().await;
        let ch = ours_channel(addr).await;
        let sr = raw_client(addr).await;
        // Warm up both connections (SETTINGS exchange, window growth, allocator).
        let _ = ours_echo(&ch).await;
        let _ = raw_echo(&sr, addr, false).await;
        let _ = raw_echo(&sr, addr, true).await;
        let h1_addr = http1::start_h1_server().await;
        let h1 = http1::h1_channel(h1_addr);
        let _ = http1::ours_h1_echo(&h1, usize::MAX).await;

        // TRANSPORT_BENCH=download|echo runs one case; TRANSPORT_ROUNDS overrides ROUNDS.
        let only = std::env::var("TRANSPORT_BENCH").unwrap_or_default();
        let rounds = std::env::var("TRANSPORT_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(ROUNDS)
            .max(1);
        let (mut ours_dl, mut raw_dl, mut raw_count) = (vec![], vec![], vec![]);
        let (mut ours_ec, mut raw_ec, mut batched_ec, mut h1_ec) =
            (vec![], vec![], vec![], vec![]);
        for round in 0..rounds {
            if only != "echo" {
                ours_dl.push(measure(ours_download(&ch)).await);
                raw_dl.push(measure(raw_download(&sr, addr, true)).await);
                raw_count.push(measure(raw_download(&sr, addr, false)).await);
            }
            if only != "download" {
                ours_ec.push(measure(ours_echo(&ch)).await);
                raw_ec.push(measure(raw_echo(&sr, addr, false)).await);
                batched_ec.push(measure(raw_echo(&sr, addr, true)).await);
            }
            if only != "download" {
                h1_ec.push(measure(http1::ours_h1_echo(&h1, round)).await);
            }
        }
        let mut out = vec![
            "\n## Transport (`benches/benches/transport.rs`)\n".to_string(),
            format!(
                "Loopback, one process (client and server share the 2 cores), {rounds} rounds, every variant once per round in turn. Wall: medians of the rounds; CPU: medians of CPU time of all threads per round (steadier on a shared machine). Ratios are throughput ours / baseline."
            ),
        ];
        if !ours_dl.is_empty() {
            report_download(&mut out, &ours_dl, &raw_dl, &raw_count);
        }
        if !ours_ec.is_empty() {
            report_echo(&mut out, &ours_ec, &raw_ec, &batched_ec);
        }
        if !h1_ec.is_empty() && !ours_ec.is_empty() {
            report_h1_echo(&mut out, &h1_ec, &ours_ec);
        }
        emit(&out);
    });
}
