//! One HTTP/1.1 POST on a fresh connection (hyper's client), for the HTTP/1.1 shim tests.

use std::time::Duration;

use bytes::Bytes;
use cursor_mock::MockServer;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

/// How long one exchange may take.
pub const LIMIT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 POST on a fresh connection: (status, whole body).
pub async fn post(mock: &MockServer, path: &str, content_type: &str, body: Bytes) -> (u16, Bytes) {
    let tcp = tokio::net::TcpStream::connect(mock.addr())
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("http/1.1 handshake");
    tokio::spawn(connection);
    let request = http::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", content_type)
        .body(Full::new(body))
        .expect("request");
    let exchange = async {
        let response = sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    };
    tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("answered in time")
}
