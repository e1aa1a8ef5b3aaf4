//! Interop with a real third-party Connect peer: connect-node (`@connectrpc/connect-node`)
//! as an h2c server (tests/interop/server.mjs). Run tests/interop/setup.sh first; this test
//! fails, never skips, when the peer is not installed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use cursor_connect_frame::{Code, Origin};
use cursor_connect_h2::{CallOptions, Channel, Endpoint};
use http::HeaderMap;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const T: Duration = Duration::from_secs(10);
const SVC: &str = "/interop.v1.InteropService";

struct Node {
    _child: Child,
    port: u16,
}

async fn start_node() -> Node {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    assert!(
        dir.join("node_modules/@connectrpc/connect-node").is_dir(),
        "connect-node is not installed: run {}/setup.sh (npm ci) first",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run `node`");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("connect-node did not start within 20 s")
        .unwrap()
        .expect("connect-node exited before listening");
    let port = line
        .strip_prefix("PORT=")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected output from server.mjs: {line:?}"));
    Node {
        _child: child,
        port,
    }
}

/// `interop.v1.Msg { string text = 1; int32 n = 2; }`, encoded by hand.
fn msg(text: &str, n: u32) -> Bytes {
    let mut b = BytesMut::new();
    if !text.is_empty() {
        b.put_u8(0x0a);
        varint(&mut b, text.len() as u64);
        b.put_slice(text.as_bytes());
    }
    if n != 0 {
        b.put_u8(0x10);
        varint(&mut b, u64::from(n));
    }
    b.freeze()
}

fn varint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn read_varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
    }
    v
}

fn parse(b: &[u8]) -> (String, u32) {
    let (mut text, mut n, mut i) = (String::new(), 0u32, 0usize);
    while i < b.len() {
        let tag = read_varint(b, &mut i);
        match tag {
            0x0a => {
                let len = read_varint(b, &mut i) as usize;
                text = String::from_utf8(b[i..i + len].to_vec()).unwrap();
                i += len;
            }
            0x10 => n = read_varint(b, &mut i) as u32,
            other => panic!("unexpected tag {other}"),
        }
    }
    (text, n)
}

async fn channel(node: &Node) -> Channel {
    Channel::connect(Endpoint::h2c(&format!("127.0.0.1:{}", node.port)).unwrap())
        .await
        .unwrap()
}

/// One node process serves every case (starting node costs ~0.5 s on this machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_node_interop() {
    let node = start_node().await;
    let ch = channel(&node).await;
    tokio::time::timeout(T, unary(&ch)).await.unwrap();
    tokio::time::timeout(T, unary_error(&ch)).await.unwrap();
    tokio::time::timeout(T, server_stream(&ch)).await.unwrap();
    tokio::time::timeout(T, error_after_two_messages(&ch))
        .await
        .unwrap();
    tokio::time::timeout(T, bidi_full_duplex(&ch))
        .await
        .unwrap();
    tokio::time::timeout(T, gzip_both_ways(&ch)).await.unwrap();
}

async fn unary(ch: &Channel) {
    let r = ch
        .unary(
            &format!("{SVC}/Unary"),
            HeaderMap::new(),
            msg("hi", 7),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(parse(&r.message), ("unary:hi".to_owned(), 7));
    assert_eq!(r.headers["x-request-encoding"], "identity");
}

async fn unary_error(ch: &Channel) {
    let e = ch
        .unary(
            &format!("{SVC}/Unary"),
            HeaderMap::new(),
            msg("fail", 0),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert_eq!(e.message(), "boom");
    assert_eq!(e.origin(), Origin::Remote);
    assert!(e.is_wire());
    assert_eq!(e.http_status_seen().map(|s| s.as_u16()), Some(503));
}

async fn server_stream(ch: &Channel) {
    let mut rx = ch
        .server_stream(
            &format!("{SVC}/ServerStream"),
            HeaderMap::new(),
            msg("s", 5),
            CallOptions::default(),
        )
        .await
        .unwrap();
    for i in 0..5 {
        let m = rx.message().await.unwrap().unwrap();
        assert_eq!(parse(&m), (format!("s-{i}"), i));
    }
    assert_eq!(rx.message().await.unwrap(), None);
    assert!(rx.end_metadata().is_some());
}

async fn error_after_two_messages(ch: &Channel) {
    let mut rx = ch
        .server_stream(
            &format!("{SVC}/ServerStream"),
            HeaderMap::new(),
            msg("fail-after-2", 2),
            CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        parse(&rx.message().await.unwrap().unwrap()).0,
        "fail-after-2-0"
    );
    assert_eq!(
        parse(&rx.message().await.unwrap().unwrap()).0,
        "fail-after-2-1"
    );
    for _ in 0..2 {
        let e = rx.message().await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
        assert_eq!(e.message(), "quota gone");
        assert_eq!(e.origin(), Origin::Remote);
    }
}

async fn bidi_full_duplex(ch: &Channel) {
    let (mut tx, mut rx) = ch
        .bidi(
            &format!("{SVC}/Bidi"),
            HeaderMap::new(),
            CallOptions::default(),
        )
        .await
        .unwrap();
    // Each echo is read before the next message is sent: only a full-duplex stream works.
    for i in 1..=50u32 {
        tx.send(msg(&format!("m{i}"), i)).await.unwrap();
        let m = rx.message().await.unwrap().unwrap();
        assert_eq!(parse(&m), (format!("m{i}"), i));
    }
    tx.close_send().await.unwrap();
    assert_eq!(rx.message().await.unwrap(), None);
}

async fn gzip_both_ways(ch: &Channel) {
    let big = "compressible ".repeat(200);
    let opts = CallOptions::default().send_compression(cursor_connect_frame::Encoding::Gzip);
    let (mut tx, mut rx) = ch
        .bidi(&format!("{SVC}/Bidi"), HeaderMap::new(), opts.clone())
        .await
        .unwrap();
    for i in 1..=3u32 {
        tx.send(msg(&big, i)).await.unwrap();
        let m = rx.message().await.unwrap().unwrap();
        assert_eq!(parse(&m), (big.clone(), i));
    }
    tx.close_send().await.unwrap();
    assert_eq!(rx.message().await.unwrap(), None);
    let h = rx.response_headers().unwrap();
    assert_eq!(h["x-request-encoding"], "gzip");
    assert_eq!(h["connect-content-encoding"], "gzip");

    let r = ch
        .unary(
            &format!("{SVC}/Unary"),
            HeaderMap::new(),
            msg(&big, 1),
            opts,
        )
        .await
        .unwrap();
    assert_eq!(r.headers["x-request-encoding"], "gzip");
    assert_eq!(r.headers["content-encoding"], "gzip");
    assert_eq!(parse(&r.message), (format!("unary:{big}"), 1));
}
