//! `Transport::Auto` behind a reverse proxy that speaks only HTTP/1.1: the server config asks
//! for HTTP/2, the h2c handshake fails at the proxy, and the run completes over the HTTP/1.1
//! shim through it, reporting the fallback.

mod common;

use std::net::SocketAddr;

use common::*;
use cursor_connect::{Credentials, CursorClient, RunRequest, Transport};
use cursor_mock::{MockServer, Scenario};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

/// Forwards each HTTP/1.1 request to `upstream` on a fresh connection, streaming the answer.
async fn http1_only_proxy(upstream: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<Incoming>| async move {
                        let up = tokio::net::TcpStream::connect(upstream).await?;
                        let (mut send, conn) =
                            hyper::client::conn::http1::handshake(TokioIo::new(up))
                                .await
                                .map_err(std::io::Error::other)?;
                        tokio::spawn(conn);
                        send.send_request(req).await.map_err(std::io::Error::other)
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

#[tokio::test]
async fn auto_falls_back_behind_an_http1_only_proxy() {
    // The mock's server config forces HTTP/2 (its default).
    let mock = MockServer::start(Scenario::default()).await.unwrap();
    let proxy = http1_only_proxy(mock.addr()).await;
    let c = CursorClient::builder()
        .base_url(format!("http://{proxy}"))
        .credentials(Credentials::access_token(TOKEN))
        .transport(Transport::Auto)
        .build()
        .unwrap();
    let mut run = c
        .agent()
        .run(RunRequest::new("composer-2.5", "hi"))
        .await
        .unwrap();
    let out = collect(&mut run).await;
    assert!(matches!(out.end, Some(Ok(()))), "{:?}", out.end);
    assert_eq!(out.text, cursor_mock::DEFAULT_TEXT);
    assert_eq!(run.transport(), Transport::Http1Stream);
    let reason = run.fallback_reason().expect("fallback reported");
    assert!(reason.contains("HTTP/2 unavailable"), "{reason}");
    assert!(mock.violations().is_empty(), "{:?}", mock.violations());
}
