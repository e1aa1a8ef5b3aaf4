//! The seam between a run and its transport: one send side and one receive side, over an
//! HTTP/2 bidi stream or the HTTP/1.1 shim (RunSSE or RunPoll, plus BidiAppend).

use bytes::Bytes;
use cursor_connect_frame::ConnectError;
use cursor_connect_h2::{RecvHalf, SendHalf};
use cursor_connect_http1::{Appender, PollStream, ServerStream};

/// Where the client's messages go.
#[derive(Debug)]
pub(crate) enum SendSide {
    H2(SendHalf),
    H1(Appender),
}

impl SendSide {
    pub(crate) async fn send(&mut self, message: Bytes) -> Result<(), ConnectError> {
        match self {
            Self::H2(s) => s.send(message).await,
            Self::H1(a) => a.send(message).await,
        }
    }

    /// Nothing more to send. On HTTP/2 the request side is half-closed; on HTTP/1.1 the
    /// appends in flight finish on their own (a failure still reaches the stream).
    pub(crate) async fn close_send(&mut self) -> Result<(), ConnectError> {
        match self {
            Self::H2(s) => s.close_send().await,
            Self::H1(_) => Ok(()),
        }
    }
}

/// Where the server's messages come from.
#[derive(Debug)]
pub(crate) enum RecvSide {
    H2(RecvHalf),
    H1(ServerStream),
    // Boxed: it holds a whole stream per poll plus its own state.
    H1Poll(Box<PollStream>),
}

impl RecvSide {
    pub(crate) async fn message(&mut self) -> Result<Option<Bytes>, ConnectError> {
        match self {
            Self::H2(r) => r.message().await,
            Self::H1(s) => s.message().await,
            Self::H1Poll(p) => p.message().await,
        }
    }
}
