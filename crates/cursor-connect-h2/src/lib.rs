//! HTTP/2 transport for Connect RPC calls, on the [`h2`](https://docs.rs/h2) crate.
//!
//! The transport moves already-serialized message payloads (`Bytes`) over Connect's
//! unary, server-streaming and full-duplex bidi calls. It knows nothing of any schema.
//!
//! * **Connections**: TLS with ALPN `h2` (rustls + ring, Mozilla roots; the OS store behind
//!   feature `native-roots`) or cleartext h2c with prior knowledge. One [`Channel`] is one
//!   connection driven by its own task, with keepalive PINGs (10 s / 20 s by default), explicit
//!   windows (2 MiB per stream, 8 MiB per connection) and push disabled. After GOAWAY or a lost
//!   connection the next call opens a new connection.
//! * **Sending** never trips the peer's flow control and never buffers without bound: each
//!   call encodes its envelopes straight into shared buffers of up to 64 KiB (no allocation
//!   or task hand-off per message); a per-call writer hands whatever accumulated to the
//!   connection as window capacity allows, and [`SendHalf::send`] waits once the send buffer
//!   is full.
//! * **Receiving** feeds each DATA chunk to the frame crate's zero-copy `ChunkDecoder` and
//!   returns window capacity as soon as it enters the decoder, so a message larger than the
//!   window cannot deadlock; the decoder bounds message size. A message inside one DATA frame
//!   is a slice of it (no copy); one that straddles frames is copied once.
//! * **Endings**: [`RecvHalf::message`] yields every message and then `Ok(None)` only after a
//!   clean end-stream. An error in the end-stream, a reset, a lost connection, a deadline or an
//!   idle timeout comes back as a `ConnectError` after the preceding messages, and again on
//!   every later call. A stream that stops without an end-stream is an error.
//! * **Errors**: every call method ([`Channel::bidi`], [`Channel::server_stream`],
//!   [`Channel::unary`], [`SendHalf`], [`RecvHalf`]) fails with one type, `ConnectError`. A
//!   transport failure is an [`Error`] underneath: what failed (reset, GOAWAY, I/O,
//!   timeout...), the HTTP/2 `Reason`, who initiated it, whether any response byte had arrived
//!   and whether the request is provably unprocessed (REFUSED_STREAM, GOAWAY before the
//!   stream): [`Error::is_retry_safe`]. The `ConnectError` keeps these as its
//!   `TransportCause` and the [`Error`] as its `source()`. [`Channel::connect`], which makes
//!   no call, returns the [`Error`] itself.
//!
//! # Example
//!
//! A bidi call against a local h2c peer (here a tiny echo server built on `h2` directly).
//!
//! ```
//! use bytes::Bytes;
//! use cursor_connect_h2::{CallOptions, Channel, Endpoint};
//! use std::time::Duration;
//!
//! # async fn echo_server(listener: tokio::net::TcpListener) {
//! #     let (tcp, _) = listener.accept().await.unwrap();
//! #     let mut conn = h2::server::handshake(tcp).await.unwrap();
//! #     while let Some(Ok((req, mut respond))) = conn.accept().await {
//! #         tokio::spawn(async move {
//! #             let mut body = req.into_body();
//! #             let resp = http::Response::builder()
//! #                 .header("content-type", "application/connect+proto")
//! #                 .body(())
//! #                 .unwrap();
//! #             let mut tx = respond.send_response(resp, false).unwrap();
//! #             while let Some(Ok(chunk)) = body.data().await {
//! #                 let _ = body.flow_control().release_capacity(chunk.len());
//! #                 tx.send_data(chunk, false).unwrap();
//! #             }
//! #             tx.send_data(Bytes::from_static(b"\x02\x00\x00\x00\x02{}"), true).unwrap();
//! #         });
//! #     }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # let addr = listener.local_addr()?;
//! # tokio::spawn(echo_server(listener));
//! let channel = Channel::connect(Endpoint::h2c(&addr.to_string())?).await?;
//! let opts = CallOptions::default().deadline(Duration::from_secs(5));
//! let (mut tx, mut rx) = channel.bidi("/echo.v1.Echo/Bidi", Default::default(), opts).await?;
//! tx.send(Bytes::from_static(b"hello")).await?;
//! tx.close_send().await?;
//! let mut got = Vec::new();
//! while let Some(message) = rx.message().await? {
//!     got.push(message);
//! }
//! assert_eq!(got, vec![Bytes::from_static(b"hello")]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod call;
mod channel;
mod conn;
mod convert;
mod endpoint;
mod error;
mod options;
mod recv;
mod send;
mod unary;

pub use channel::Channel;
pub use endpoint::{
    DEFAULT_CONN_WINDOW, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_STREAM_WINDOW, Endpoint,
};
pub use error::{Error, ErrorKind};
pub use options::{CallOptions, DEFAULT_COMPRESS_MIN_BYTES};
pub use recv::RecvHalf;
pub use send::SendHalf;
pub use unary::UnaryResponse;

/// Re-exported so callers can pass extra roots without depending on rustls directly.
pub use rustls::pki_types::CertificateDer;
