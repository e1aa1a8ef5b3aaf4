//! HTTP/1.1 transport for Cursor's Connect shim, on [`hyper`](https://docs.rs/hyper)'s
//! HTTP/1.1 client.
//!
//! Where HTTP/2 cannot be had (a proxy strips it, the server config disables it), Cursor's
//! clients run a bidi call as two halves bound by one request id:
//!
//! * a **server stream** (`agent.v1.AgentService/RunSSE`): one POST whose body is an enveloped
//!   `BidiRequestId{request_id}` and whose response is an ordinary Connect stream, read here by
//!   [`ServerStream`] with the frame crate's decoder (same limits, same end-stream rules);
//! * one **`aiserver.v1.BidiService/BidiAppend`** unary call per client message, sent by
//!   [`Appender`]: `append_seqno` from 0 without gaps, hex `data` (what the SDK and CLI send)
//!   or `data_binary`, at most 16 in flight, a retry after a lost connection reuses its seqno,
//!   and each append has the CLI's deadline (60 s + 1 s per 128 KiB). A failed append fails
//!   the call: the paired stream returns its error at once, never hangs.
//!
//! * or, in poll mode, a series of **long polls** (`agent.v1.AgentService/RunPoll`), read by
//!   [`PollStream`]: `BidiPollResponse`s whose seqnos must run from 0 without gap or repeat,
//!   ended by `eof` (see the README for what is assumed of the server).
//!
//! Connections are kept alive in a small pool per [`Channel`] (TLS via rustls with ALPN
//! `http/1.1`, or cleartext). Every call returns `ConnectError`; transport failures carry a
//! `TransportCause` (kind, response started, retry safety) and this crate's [`Error`] as
//! `source()`, as the HTTP/2 crate does.
//!
//! # Example
//!
//! ```no_run
//! use bytes::Bytes;
//! use cursor_connect_http1::{Channel, Endpoint, ShimOptions};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let channel = Channel::new(Endpoint::from_url("http://127.0.0.1:4000")?);
//! let (mut appender, mut stream) = channel.shim(
//!     "/agent.v1.AgentService/RunSSE",
//!     "/aiserver.v1.BidiService/BidiAppend",
//!     http::HeaderMap::new(),
//!     "0b5c5a44-5e8c-4d43-9a59-2d0f4e8a3c11",
//!     ShimOptions::default(),
//! );
//! appender.send(Bytes::from_static(b"\x0a\x00")).await?;
//! while let Some(message) = stream.message().await? {
//!     println!("{} bytes", message.len());
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod append;
mod channel;
mod endpoint;
mod error;
mod poll;
mod stream;

pub use append::{AppendEncoding, AppendOptions, Appender, encode_append};
pub use channel::{Channel, DEFAULT_MAX_UNARY_BODY};
pub use endpoint::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_IDLE, Endpoint};
pub use error::{Error, ErrorKind};
pub use poll::{PollOptions, PollStream, encode_poll_request};
pub use stream::{ServerStream, StreamOptions};

/// Re-exported so callers can pass extra roots without depending on rustls directly.
pub use rustls::pki_types::CertificateDer;

/// Settings of one shim call: its stream and its appends.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ShimOptions {
    /// The server stream's settings.
    pub stream: StreamOptions,
    /// The appends' settings.
    pub append: AppendOptions,
    /// The polls' settings (poll mode only).
    pub poll: PollOptions,
}

impl Channel {
    /// Opens a shim call: starts the stream request to `stream_path` at once (body: the
    /// enveloped `BidiRequestId{request_id}`) and returns the appender for `append_path`.
    ///
    /// `headers` go on every request of the pair; set `x-request-id` to `request_id` there,
    /// as Cursor's clients do. Must be called inside a tokio runtime.
    pub fn shim(
        &self,
        stream_path: &str,
        append_path: &str,
        headers: http::HeaderMap,
        request_id: &str,
        opts: ShimOptions,
    ) -> (Appender, ServerStream) {
        let (fault_tx, fault_rx) = tokio::sync::watch::channel(None);
        let id = append::encode_request_id(request_id);
        let stream = ServerStream::start(
            self,
            stream_path,
            headers.clone(),
            &id,
            opts.stream,
            Some(fault_rx),
        );
        let appender = Appender::new(
            self.clone(),
            append_path,
            headers,
            request_id.to_owned(),
            opts.append,
            fault_tx,
        );
        (appender, stream)
    }

    /// Opens a shim call in poll mode: starts the first poll to `poll_path` at once (body: the
    /// enveloped `BidiPollRequest{request_id, start_request: true}`) and returns the appender
    /// for `append_path` with the [`PollStream`] of the server's messages.
    ///
    /// `headers` go on every request; set `x-request-id` to `request_id` there. Must be
    /// called inside a tokio runtime.
    pub fn poll(
        &self,
        poll_path: &str,
        append_path: &str,
        headers: http::HeaderMap,
        request_id: &str,
        opts: ShimOptions,
    ) -> (Appender, PollStream) {
        let (fault_tx, fault_rx) = tokio::sync::watch::channel(None);
        let stream = PollStream::new(
            self.clone(),
            poll_path,
            headers.clone(),
            request_id.to_owned(),
            opts.poll,
            Some(fault_rx),
        );
        let appender = Appender::new(
            self.clone(),
            append_path,
            headers,
            request_id.to_owned(),
            opts.append,
            fault_tx,
        );
        (appender, stream)
    }

    /// A plain server-streaming call: POSTs one enveloped `message` and returns the stream.
    pub fn server_stream(
        &self,
        path: &str,
        headers: http::HeaderMap,
        message: &[u8],
        opts: StreamOptions,
    ) -> ServerStream {
        ServerStream::start(self, path, headers, message, opts, None)
    }
}
