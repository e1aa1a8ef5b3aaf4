//! Writing to and reading from one HTTP/2 stream: flow-controlled writes with deadlines,
//! Connect envelopes, and a reader task that decodes, records and forwards client messages.

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

/// The response side of one stream. Headers go out lazily, before the first write, so a script
/// can still reset the stream before any header.
#[derive(Debug)]
pub(crate) struct Out {
    respond: Option<SendResponse<Bytes>>,
    stream: Option<SendStream<Bytes>>,
    encoder: Encoder,
    split: usize,
    write_timeout: Duration,
    content_type: &'static str,
}

impl Out {
    pub(crate) fn new(respond: SendResponse<Bytes>, write_timeout: Duration) -> Self {
        Self {
            respond: Some(respond),
            stream: None,
            encoder: Encoder::new(),
            split: usize::MAX,
            write_timeout,
            content_type: "application/connect+proto",
        }
    }

    /// Cuts every later write into DATA frames of at most `n` bytes.
    pub(crate) fn split_writes(&mut self, n: usize) {
        self.split = n.max(1);
    }

    pub(crate) fn headers_sent(&self) -> bool {
        self.stream.is_some()
    }

    /// Sends `200` with the streaming content type, if not done yet.
    pub(crate) fn ensure_headers(&mut self) -> Result<(), Gone> {
        if self.stream.is_some() {
            return Ok(());
        }
        let mut respond = self.respond.take().ok_or(Gone)?;
        let response = http::Response::builder()
            .status(200)
            .header("content-type", self.content_type)
            .body(())
            .map_err(|_| Gone)?;
        let stream = respond.send_response(response, false).map_err(|_| Gone)?;
        self.stream = Some(stream);
        Ok(())
    }

    /// Writes one data envelope around `payload`.
    pub(crate) async fn message(&mut self, payload: &[u8]) -> Result<(), Gone> {
        let mut buf = BytesMut::with_capacity(Encoder::encoded_len(payload.len()));
        self.encoder.encode(payload, &mut buf).map_err(|_| Gone)?;
        self.write(buf.freeze(), false).await
    }

    /// Writes the end-stream envelope with `json` and ends the HTTP/2 stream.
    pub(crate) async fn end_stream(&mut self, json: &[u8]) -> Result<(), Gone> {
        let mut buf = BytesMut::with_capacity(Encoder::encoded_len(json.len()));
        self.encoder
            .encode_with(Flags::END_STREAM, json, &mut buf)
            .map_err(|_| Gone)?;
        self.write(buf.freeze(), true).await
    }

    /// Ends the HTTP/2 stream with no further bytes.
    pub(crate) async fn finish(&mut self) -> Result<(), Gone> {
        self.write(Bytes::new(), true).await
    }

    /// RST_STREAM with `code`; before the headers if none went out yet.
    pub(crate) fn reset(&mut self, code: u32) {
        let reason = Reason::from(code);
        if let Some(stream) = self.stream.as_mut() {
            stream.send_reset(reason);
        } else if let Some(respond) = self.respond.as_mut() {
            respond.send_reset(reason);
        }
    }

    /// Writes raw bytes, honouring the peer's flow-control window, within the write deadline.
    pub(crate) async fn write(&mut self, data: Bytes, eos: bool) -> Result<(), Gone> {
        self.ensure_headers()?;
        let split = self.split;
        let limit = self.write_timeout;
        let stream = self.stream.as_mut().ok_or(Gone)?;
        tokio::time::timeout(limit, write_all(stream, data, eos, split))
            .await
            .map_err(|_| Gone)?
    }

    /// Resolves when the client resets the stream (never, if it does not).
    pub(crate) async fn reset_by_peer(&mut self) -> Reason {
        match self.stream.as_mut() {
            Some(stream) => match poll_fn(|cx| stream.poll_reset(cx)).await {
                Ok(reason) => reason,
                Err(_) => Reason::CANCEL,
            },
            None => std::future::pending().await,
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
async fn forward(
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
