//! The response half of a streaming call: validates the response head, feeds DATA chunks to
//! the zero-copy envelope decoder (releasing flow-control capacity as they enter it), and ends
//! in exactly one clean end or one sticky error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::{
    ChunkDecoder, Code, ConnectError, Decoder, Direction, EndStream, Metadata, compression_for,
};
use h2::RecvStream;
use h2::client::ResponseFuture;
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;

use crate::call::Call;
use crate::error::{Error, ErrorKind};
use crate::options::CallOptions;
use crate::send::WriterGuard;

/// Most body bytes read from a non-200 streaming response to look for a Connect error.
const ERROR_BODY_LIMIT: usize = 64 << 10;

enum State {
    Waiting(ResponseFuture),
    Body(RecvStream),
    Done,
}

/// Receives response messages of a streaming call.
///
/// [`message`](RecvHalf::message) yields every message, then `Ok(None)` only after a clean
/// end-stream. An error (in the end-stream, from the transport, a timeout) is returned after
/// the messages that preceded it, and again on every later call. Dropping a `RecvHalf`
/// before the end resets the stream with CANCEL.
pub struct RecvHalf {
    call: Arc<Call>,
    state: State,
    /// Set once the response head is valid. DATA chunks are pushed in as they arrive; a
    /// message inside one chunk is sliced out of it without a copy.
    decoder: Option<ChunkDecoder>,
    idle: Option<Duration>,
    max_message_size: usize,
    content_type: &'static str,
    headers: Option<HeaderMap>,
    end_metadata: Option<Metadata>,
    sticky: Option<ConnectError>,
    eof: bool,
    clean_end: bool,
    /// Keeps the send half's writer task alive while this half lives (see `WriterGuard`).
    _writer: Option<Arc<WriterGuard>>,
}

impl std::fmt::Debug for RecvHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvHalf")
            .field(
                "buffered",
                &self.decoder.as_ref().map_or(0, ChunkDecoder::buffered),
            )
            .field("headers", &self.headers)
            .field("end_metadata", &self.end_metadata)
            .field("sticky", &self.sticky)
            .finish_non_exhaustive()
    }
}

impl RecvHalf {
    pub(crate) fn new(call: Arc<Call>, response: ResponseFuture, opts: &CallOptions) -> Self {
        Self {
            call,
            state: State::Waiting(response),
            decoder: None,
            idle: opts.idle_timeout,
            max_message_size: opts.max_message_size,
            content_type: opts.stream_content_type(),
            headers: None,
            end_metadata: None,
            sticky: None,
            eof: false,
            clean_end: false,
            _writer: None,
        }
    }

    /// Ties the send half's writer task to this half too.
    pub(crate) fn with_writer(mut self, writer: Arc<WriterGuard>) -> Self {
        self._writer = Some(writer);
        self
    }

    /// The next message; `Ok(None)` after a clean end-stream. Errors are sticky.
    pub async fn message(&mut self) -> Result<Option<Bytes>, ConnectError> {
        if let Some(e) = &self.sticky {
            return Err(e.clone());
        }
        match self.next().await {
            Ok(Some(m)) => Ok(Some(m)),
            Ok(None) => {
                self.state = State::Done;
                self.call.finish();
                Ok(None)
            }
            Err(e) => {
                // Abandon the stream so the peer stops sending and the window is returned.
                self.call.reset(h2::Reason::CANCEL);
                self.call.finish();
                self.state = State::Done;
                self.sticky = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The response headers, once they arrived.
    pub fn response_headers(&self) -> Option<&HeaderMap> {
        self.headers.as_ref()
    }

    /// The end-stream metadata (trailers), once the end-stream arrived (clean or not).
    pub fn end_metadata(&self) -> Option<&Metadata> {
        self.end_metadata.as_ref()
    }

    async fn next(&mut self) -> Result<Option<Bytes>, ConnectError> {
        if self.clean_end {
            return Ok(None);
        }
        if matches!(self.state, State::Waiting(_)) {
            self.await_head().await?;
        }
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                // Only reachable when reading an error response was abandoned midway (the
                // caller dropped a `message()` future): never report that as a clean end.
                return Err(ConnectError::new(
                    Code::Internal,
                    "response abandoned before it was read",
                ));
            };
            let frame = if self.eof {
                decoder.finish()?
            } else {
                decoder.next_frame()?
            };
            if let Some(frame) = frame {
                if !frame.flags.is_end_stream() {
                    return Ok(Some(frame.payload));
                }
                return self.end_stream(&frame.payload);
            }
            let State::Body(body) = &mut self.state else {
                // EOF with nothing decodable left and no end-stream: never a clean end.
                return Err(ConnectError::new(
                    Code::Internal,
                    "response stream ended without an end-stream message",
                ));
            };
            let chunk = wait(&self.call, self.idle, body.data()).await?;
            match chunk {
                Some(Ok(chunk)) => {
                    // An empty DATA frame carries no output of the server.
                    if !chunk.is_empty() {
                        self.call.mark_data();
                    }
                    // Release as bytes enter the decoder, not per message: a message larger
                    // than the window would otherwise deadlock. The decoder checks each
                    // declared length against the limit and holds only bytes that arrived.
                    let _ = body.flow_control().release_capacity(chunk.len());
                    decoder.push(chunk);
                }
                Some(Err(e)) => return Err(self.call.stream_error(e).await.into()),
                None => {
                    self.state = State::Done;
                    self.eof = true;
                }
            }
        }
    }

    fn end_stream(&mut self, payload: &[u8]) -> Result<Option<Bytes>, ConnectError> {
        let end = EndStream::parse(payload)?;
        self.end_metadata = Some(end.metadata.clone());
        let extra = self.decoder.as_ref().map_or(0, ChunkDecoder::buffered);
        if extra > 0 {
            return Err(ConnectError::new(
                Code::Internal,
                format!("{extra} bytes after the end-stream message"),
            ));
        }
        self.state = State::Done;
        let res = end.into_result().map(|_| None);
        self.clean_end = res.is_ok();
        res
    }

    async fn await_head(&mut self) -> Result<(), ConnectError> {
        let State::Waiting(fut) = &mut self.state else {
            return Ok(());
        };
        // The future stays in `self.state` while it is polled, so a caller that drops this
        // `message()` future (a timeout, a `select!`) can call again and keep waiting.
        let polled = wait(&self.call, self.idle, fut).await;
        self.state = State::Done;
        let resp = match polled? {
            Ok(r) => r,
            Err(e) => return Err(self.call.stream_error(e).await.into()),
        };
        self.call.mark_started();
        let (parts, body) = resp.into_parts();
        self.headers = Some(parts.headers.clone());
        if parts.status != StatusCode::OK {
            let bytes = read_limited(&self.call, self.idle, body, ERROR_BODY_LIMIT).await;
            return Err(
                ConnectError::from_unary_response(parts.status, &parts.headers, &bytes)
                    .with_http_status(parts.status),
            );
        }
        let ct = header_str(&parts.headers, "content-type");
        if !media_type(ct).eq_ignore_ascii_case(self.content_type) {
            return Err(ConnectError::new(
                Code::Internal,
                format!(
                    "unexpected response content-type {ct:?} (wanted {})",
                    self.content_type
                ),
            )
            .with_http_status(parts.status));
        }
        let encoding = header_str(&parts.headers, "connect-content-encoding");
        let compression = match encoding {
            "" | "identity" => None,
            name => Some(compression_for(name).ok_or_else(|| {
                ConnectError::new(
                    Code::Internal,
                    format!("unsupported response encoding {name:?}"),
                )
            })?),
        };
        self.decoder = Some(ChunkDecoder::new(
            Decoder::new(Direction::Response)
                .max_message_size(self.max_message_size)
                .compression(compression),
        ));
        self.state = State::Body(body);
        Ok(())
    }
}

impl Drop for RecvHalf {
    fn drop(&mut self) {
        self.call.reset(h2::Reason::CANCEL);
    }
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The media type of a content-type value: parameters after `;` (e.g. `charset=utf-8`)
/// and surrounding whitespace dropped. Media types compare case-insensitively (RFC 9110
/// §8.3.1), so callers compare the result with `eq_ignore_ascii_case`.
pub(crate) fn media_type(content_type: &str) -> &str {
    content_type
        .split_once(';')
        .map_or(content_type, |(media, _)| media)
        .trim()
}

/// Awaits `fut` bounded by the call deadline and the idle timeout.
pub(crate) async fn wait<F: Future>(
    call: &Call,
    idle: Option<Duration>,
    fut: F,
) -> Result<F::Output, Error> {
    let idle_at = idle.and_then(|d| Instant::now().checked_add(d));
    let at = match (idle_at, call.deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let Some(at) = at else {
        return Ok(fut.await);
    };
    match tokio::time::timeout_at(at, fut).await {
        Ok(v) => Ok(v),
        Err(_) => {
            call.reset(h2::Reason::CANCEL);
            if call.deadline.is_some_and(|d| d <= Instant::now()) {
                Err(call.deadline_error())
            } else {
                Err(call.progress(Error::new(ErrorKind::Idle).detail(format!(
                    "no response bytes for {:?}",
                    idle.unwrap_or_default()
                ))))
            }
        }
    }
}

/// Reads up to `limit` bytes of a body (for error details); stops quietly at the limit, at
/// a timeout or on an error, since the status code alone already decides the outcome.
pub(crate) async fn read_limited(
    call: &Call,
    idle: Option<Duration>,
    mut body: RecvStream,
    limit: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match wait(call, idle, body.data()).await {
            Ok(Some(Ok(chunk))) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                let take = chunk.len().min(limit - out.len());
                out.extend_from_slice(&chunk[..take]);
            }
            _ => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::media_type;

    #[test]
    fn media_type_drops_parameters_and_whitespace() {
        assert_eq!(media_type("application/json"), "application/json");
        assert_eq!(
            media_type(" Application/JSON ; charset=utf-8"),
            "Application/JSON"
        );
        assert_eq!(media_type("application/proto;"), "application/proto");
        assert_eq!(media_type(""), "");
        assert_eq!(media_type(";x=y"), "");
    }
}
