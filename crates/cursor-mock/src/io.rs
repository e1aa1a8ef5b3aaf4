//! Writing to and reading from one stream: flow-controlled writes with deadlines (an HTTP/2
//! stream, or an HTTP/1.1 response body for RunSSE), Connect envelopes, and a reader task that
//! decodes, records and forwards client messages.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{Decoder, Direction, Encoder, Flags};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use tokio::sync::mpsc;

use crate::record::{MessageKind, Recorder};
use crate::wire::{self, ClientMsg};

/// The peer went away or the stream cannot be written any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gone;

/// A frame of an HTTP/1.1 response body; an `Err` aborts the connection (the HTTP/1.1 stand-in
/// for a reset).
pub(crate) type BodyFrame = Result<hyper::body::Frame<Bytes>, std::io::Error>;

/// Where a stream's response goes.
#[derive(Debug)]
enum Sink {
    /// An HTTP/2 stream: headers, DATA under flow control, RST_STREAM.
    H2 {
        respond: Option<SendResponse<Bytes>>,
        stream: Option<SendStream<Bytes>>,
    },
    /// An HTTP/1.1 response (RunSSE): `head` releases the response headers to the connection,
    /// `body` carries the chunks; dropping `body` ends the response.
    H1 {
        head: Option<tokio::sync::oneshot::Sender<()>>,
        body: Option<mpsc::Sender<BodyFrame>>,
    },
}

/// The response side of one stream. Headers go out lazily, before the first write, so a script
/// can still reset the stream before any header.
#[derive(Debug)]
pub(crate) struct Out {
    sink: Sink,
    encoder: Encoder,
    split: usize,
    write_timeout: Duration,
    content_type: &'static str,
}

impl Out {
    pub(crate) fn new(respond: SendResponse<Bytes>, write_timeout: Duration) -> Self {
        Self::with_sink(
            Sink::H2 {
                respond: Some(respond),
                stream: None,
            },
            write_timeout,
        )
    }

    /// An HTTP/1.1 response: the connection sends `200` when `head` fires and streams `body`.
    pub(crate) fn http1(
        head: tokio::sync::oneshot::Sender<()>,
        body: mpsc::Sender<BodyFrame>,
        write_timeout: Duration,
    ) -> Self {
        Self::with_sink(
            Sink::H1 {
                head: Some(head),
                body: Some(body),
            },
            write_timeout,
        )
    }

    fn with_sink(sink: Sink, write_timeout: Duration) -> Self {
        Self {
            sink,
            encoder: Encoder::new(),
            split: usize::MAX,
            write_timeout,
            content_type: "application/connect+proto",
        }
    }

    /// Cuts every later write into DATA frames (HTTP/1.1: chunks) of at most `n` bytes.
    pub(crate) fn split_writes(&mut self, n: usize) {
        self.split = n.max(1);
    }

    pub(crate) fn headers_sent(&self) -> bool {
        match &self.sink {
            Sink::H2 { stream, .. } => stream.is_some(),
            Sink::H1 { head, .. } => head.is_none(),
        }
    }

    /// Sends `200` with the streaming content type, if not done yet.
    pub(crate) fn ensure_headers(&mut self) -> Result<(), Gone> {
        match &mut self.sink {
            Sink::H2 { respond, stream } => {
                if stream.is_some() {
                    return Ok(());
                }
                let mut respond = respond.take().ok_or(Gone)?;
                let response = http::Response::builder()
                    .status(200)
                    .header("content-type", self.content_type)
                    .body(())
                    .map_err(|_| Gone)?;
                *stream = Some(respond.send_response(response, false).map_err(|_| Gone)?);
                Ok(())
            }
            Sink::H1 { head, .. } => match head.take() {
                Some(head) => head.send(()).map_err(|()| Gone),
                None => Ok(()),
            },
        }
    }

    /// Writes one data envelope around `payload`.
    pub(crate) async fn message(&mut self, payload: &[u8]) -> Result<(), Gone> {
        let mut buf = BytesMut::with_capacity(Encoder::encoded_len(payload.len()));
        self.encoder.encode(payload, &mut buf).map_err(|_| Gone)?;
        self.write(buf.freeze(), false).await
    }

    /// Writes the end-stream envelope with `json` and ends the stream.
    pub(crate) async fn end_stream(&mut self, json: &[u8]) -> Result<(), Gone> {
        let mut buf = BytesMut::with_capacity(Encoder::encoded_len(json.len()));
        self.encoder
            .encode_with(Flags::END_STREAM, json, &mut buf)
            .map_err(|_| Gone)?;
        self.write(buf.freeze(), true).await
    }

    /// Ends the stream with no further bytes.
    pub(crate) async fn finish(&mut self) -> Result<(), Gone> {
        self.write(Bytes::new(), true).await
    }

    /// RST_STREAM with `code`, before the headers if none went out yet. On HTTP/1.1 the
    /// connection is aborted instead (mid-body, or before any response).
    pub(crate) fn reset(&mut self, code: u32) {
        match &mut self.sink {
            Sink::H2 { respond, stream } => {
                let reason = Reason::from(code);
                if let Some(stream) = stream.as_mut() {
                    stream.send_reset(reason);
                } else if let Some(respond) = respond.as_mut() {
                    respond.send_reset(reason);
                }
            }
            Sink::H1 { head, body } => {
                // Before the headers, dropping `head` makes the connection fail the request.
                head.take();
                if let Some(body) = body.take() {
                    let abort = std::io::Error::other(format!("cursor-mock reset ({code:#x})"));
                    let _ = body.try_send(Err(abort));
                }
            }
        }
    }

    /// Writes raw bytes, honouring the peer's flow control, within the write deadline.
    pub(crate) async fn write(&mut self, data: Bytes, eos: bool) -> Result<(), Gone> {
        self.ensure_headers()?;
        let split = self.split;
        let limit = self.write_timeout;
        match &mut self.sink {
            Sink::H2 { stream, .. } => {
                let stream = stream.as_mut().ok_or(Gone)?;
                tokio::time::timeout(limit, write_all(stream, data, eos, split))
                    .await
                    .map_err(|_| Gone)?
            }
            Sink::H1 { body, .. } => {
                let sender = body.as_ref().ok_or(Gone)?;
                let mut data = data;
                while !data.is_empty() {
                    let chunk = data.split_to(data.len().min(split));
                    let frame = Ok(hyper::body::Frame::data(chunk));
                    match tokio::time::timeout(limit, sender.send(frame)).await {
                        Ok(Ok(())) => {}
                        _ => return Err(Gone),
                    }
                }
                if eos {
                    // Dropping the sender ends the chunked body.
                    body.take();
                }
                Ok(())
            }
        }
    }

    /// Resolves when the client resets the stream or (HTTP/1.1) goes away; never, if it does not.
    pub(crate) async fn reset_by_peer(&mut self) -> Reason {
        match &mut self.sink {
            Sink::H2 {
                stream: Some(stream),
                ..
            } => match poll_fn(|cx| stream.poll_reset(cx)).await {
                Ok(reason) => reason,
                Err(_) => Reason::CANCEL,
            },
            Sink::H1 {
                body: Some(body), ..
            } => {
                body.closed().await;
                Reason::CANCEL
            }
            _ => std::future::pending().await,
        }
    }
}

async fn write_all(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    eos: bool,
    split: usize,
) -> Result<(), Gone> {
    if data.is_empty() {
        return if eos {
            stream.send_data(Bytes::new(), true).map_err(|_| Gone)
        } else {
            Ok(())
        };
    }
    while !data.is_empty() {
        let want = data.len().min(split);
        stream.reserve_capacity(want);
        let Some(Ok(granted)) = poll_fn(|cx| stream.poll_capacity(cx)).await else {
            return Err(Gone);
        };
        // Capacity can be granted in pieces smaller than requested; send what we have.
        let n = granted.min(want);
        if n == 0 {
            continue;
        }
        let chunk = data.split_to(n);
        stream
            .send_data(chunk, eos && data.is_empty())
            .map_err(|_| Gone)?;
    }
    Ok(())
}

/// What the reader task reports to the stream driver.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A decoded client message (heartbeats included: one may be a wrong first message).
    Msg(ClientMsg),
    /// A message that is not a valid `AgentClientMessage`.
    Undecodable(String),
    /// The envelope stream was malformed (bad flags, oversize, truncated).
    BadFrame(String),
    /// The client half-closed its side.
    Closed,
    /// The stream was reset or the connection failed.
    Reset,
    /// A client message of the legacy ChatService, undecoded.
    Raw(Bytes),
}

/// Settings of the reader task.
#[derive(Debug, Clone)]
pub(crate) struct ReaderConfig {
    pub(crate) max_message_size: usize,
    pub(crate) compression: Option<&'static str>,
    /// While true, the reader takes nothing from h2, so no window is released to the client.
    pub(crate) paused: tokio::sync::watch::Receiver<bool>,
}

/// Decoded client messages the reader may hold for a driver that is busy (writing under flow
/// control, say); past it the reader stops taking data, so h2 flow control holds the client
/// back. With the decoder's size limit this bounds what a client can make the mock buffer.
pub(crate) const READ_AHEAD: usize = 32;

/// Reads the request body until it ends, decoding Connect envelopes and recording every message.
pub(crate) async fn read_client(
    mut body: RecvStream,
    recorder: Arc<Recorder>,
    call: usize,
    config: ReaderConfig,
    tx: mpsc::Sender<Inbound>,
) {
    let compression = config
        .compression
        .and_then(cursor_connect_frame::compression_for);
    let mut decoder = Decoder::new(Direction::Request)
        .max_message_size(config.max_message_size)
        .compression(compression);
    let mut buf = BytesMut::new();
    let mut paused = config.paused;
    loop {
        // Pauses are bounded by the script (Step::PauseReading); a dropped sender ends them.
        while *paused.borrow() {
            if paused.changed().await.is_err() {
                break;
            }
        }
        let chunk = match body.data().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(_)) => {
                let _ = tx.send(Inbound::Reset).await;
                return;
            }
            None => {
                match decoder.decode_eof(&mut buf) {
                    Ok(Some(frame)) => {
                        if !forward(&recorder, call, frame.payload, &tx).await {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = tx.send(Inbound::BadFrame(e.to_string())).await;
                        return;
                    }
                }
                let _ = tx.send(Inbound::Closed).await;
                return;
            }
        };
        let n = chunk.len();
        buf.extend_from_slice(&chunk);
        // Released as soon as buffered: the decoder bounds what a peer can make us hold.
        let _ = body.flow_control().release_capacity(n);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if !forward(&recorder, call, frame.payload, &tx).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Inbound::BadFrame(e.to_string())).await;
                    return;
                }
            }
        }
    }
}

/// Records one message and forwards it; false when the driver is gone.
pub(crate) async fn forward(
    recorder: &Recorder,
    call: usize,
    payload: Bytes,
    tx: &mpsc::Sender<Inbound>,
) -> bool {
    match wire::classify(&payload) {
        Ok(msg) => {
            recorder.push(call, msg.kind(), payload);
            tx.send(Inbound::Msg(msg)).await.is_ok()
        }
        Err(e) => {
            recorder.push(call, MessageKind::Undecodable, payload);
            tx.send(Inbound::Undecodable(e.to_string())).await.is_ok()
        }
    }
}

/// The value of header `name` as text, or `""` when it is absent or not text.
pub(crate) fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Reads a whole unary request body, up to `limit` bytes.
pub(crate) async fn read_body(mut body: RecvStream, limit: usize) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("request body: {e}"))?;
        let n = chunk.len();
        if buf.len() + n > limit {
            return Err(format!("request body larger than {limit} bytes"));
        }
        buf.extend_from_slice(&chunk);
        let _ = body.flow_control().release_capacity(n);
    }
    Ok(buf.freeze())
}
