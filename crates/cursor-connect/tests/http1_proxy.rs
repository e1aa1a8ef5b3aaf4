//! `Transport::Auto` behind reverse proxies that speak only HTTP/1.1: the server config asks
//! for HTTP/2, the h2c handshake fails at the proxy, and the run completes over the HTTP/1.1
//! shim through it, reporting the fallback. Behind a proxy that also buffers whole responses,
//! the streamed response never trickles through, and the run moves on to polling. One real
//! proxy too: Debian's tinyproxy as a reverse proxy, started by the test.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use cursor_connect::{Credentials, CursorClient, RunRequest, Transport};
use cursor_mock::{MockServer, Scenario};
use cursor_proto::paths::{AGENT_RUN_POLL, AGENT_RUN_SSE};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Sends `req` to `upstream` on a fresh connection; with `buffer`, answers only once the
/// whole upstream response has arrived (as some corporate proxies do).
async fn forward(
    upstream: SocketAddr,
    req: http::Request<Incoming>,
    buffer: bool,
) -> Result<http::Response<ProxyBody>, std::io::Error> {
    let up = tokio::net::TcpStream::connect(upstream).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(up))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let resp = send
        .send_request(req)
        .await
        .map_err(std::io::Error::other)?;
    if !buffer {
        return Ok(resp.map(|b| b.boxed()));
    }
    let (mut parts, body) = resp.into_parts();
    let whole = body.collect().await.map_err(std::io::Error::other)?;
    parts.headers.remove(http::header::TRANSFER_ENCODING);
    let full = Full::new(whole.to_bytes()).map_err(|never| match never {});
    Ok(http::Response::from_parts(parts, full.boxed()))
}

/// Forwards each HTTP/1.1 request to `upstream`, streaming the answer unless `buffer`.
async fn http1_only_proxy(upstream: SocketAddr, buffer: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    forward(upstream, req, buffer)
                });
                // An HTTP/2 preface is not HTTP/1.1: the connection fails here.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

fn auto_client(proxy: SocketAddr) -> CursorClient {
    CursorClient::builder()
        .base_url(format!("http://{proxy}"))
        .credentials(Credentials::access_token(TOKEN))
        .transport(Transport::Auto)
        .stall_timeout(Duration::from_secs(4))
        .build()
        .unwrap()
}

#[tokio::test]
async fn auto_falls_back_behind_an_http1_only_proxy() {
    // The mock's server config forces HTTP/2 (its default).
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = http1_only_proxy(mock.addr(), false).await;
    let client = auto_client(proxy);
    let out = turn_after_fallback(&client, Transport::Http1Stream, "HTTP/2 unavailable").await;
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}

/// HTTP/2 fails at the proxy, the RunSSE response sends nothing for the first-byte window
/// (half the 4 s stall timeout), and the run completes by polling; the next run polls at once.
#[tokio::test]
async fn auto_falls_back_to_polling_behind_a_buffering_proxy() {
    let mock = MockServer::builder()
        .poll_window(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let proxy = http1_only_proxy(mock.addr(), true).await;
    let c = auto_client(proxy);
    for _ in 0..2 {
        let out = turn_after_fallback(&c, Transport::Http1Poll, "buffered").await;
        assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    }
    let calls = mock.received();
    let count = |path: &str| calls.iter().filter(|c| c.path == path).count();
    // One streamed attempt (abandoned), then polls only.
    assert_eq!(count(AGENT_RUN_SSE.path), 1);
    assert!(count(AGENT_RUN_POLL.path) >= 2);
}

/// A tinyproxy (Debian's) reverse proxy in front of `upstream`, killed on drop.
struct Tinyproxy {
    child: std::process::Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tinyproxy(upstream: SocketAddr) -> Tinyproxy {
    const BIN: &str = "/usr/bin/tinyproxy";
    assert!(
        std::path::Path::new(BIN).exists(),
        "tinyproxy is not installed: run .ci/peers (Debian package tinyproxy)"
    );
    // tinyproxy needs a fixed port: take a free one from the kernel.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("cc-tinyproxy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("tinyproxy.conf");
    let text = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\n\
         ReversePath \"/\" \"http://{upstream}/\"\nReverseOnly Yes\nLogLevel Warning\n"
    );
    std::fs::write(&conf, text).unwrap();
    let child = std::process::Command::new(BIN)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tinyproxy starts");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let proxy = Tinyproxy { child, addr, dir };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return proxy;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tinyproxy did not listen on {addr} within 5 s");
}

/// Through a real HTTP/1.1 reverse proxy (tinyproxy): HTTP/2 fails there, and the run
/// completes over HTTP/1.1 streaming, reporting the fallback; poll mode works through it too.
#[tokio::test]
async fn auto_falls_back_behind_tinyproxy() {
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = tinyproxy(mock.addr()).await;
    let client = auto_client(proxy.addr);
    let out = turn_after_fallback(&client, Transport::Http1Stream, "HTTP/2 unavailable").await;
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    // Poll mode through the same proxy.
    let poll = CursorClient::builder()
        .base_url(format!("http://{}", proxy.addr))
        .credentials(Credentials::access_token(TOKEN))
        .transport(Transport::Http1Poll)
        .build()
        .unwrap();
    let out = run_to_end(&poll, RunRequest::new("composer-2.5", "hi")).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
