//! The response half of a server-streaming call (`RunSSE`): validates the head, feeds body
//! chunks to the envelope decoder, and ends in one clean end or one sticky error.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{
    ChunkDecoder, Code, Codec, ConnectError, DEFAULT_MAX_MESSAGE_SIZE, Decoder, Direction,
    Encoding, EndStream,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::channel::{Channel, ERROR_BODY_LIMIT, Lease, next_data, read_to_end};
use crate::error::{Error, ErrorKind};

/// Settings of a server-streaming call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Bound on connecting plus the response head (default 30 s).
    pub head_timeout: Duration,
    /// Fail when no body byte arrives for this long (default: none; the caller's own stall
    /// timer usually decides).
    pub idle_timeout: Option<Duration>,
    /// Largest message accepted, decompressed (default 4 MiB).
    pub max_message_size: usize,
    /// Fail with [`ErrorKind::Buffered`] when no body byte has arrived this long after the
    /// request (default: none). A server that streams sends something (a heartbeat) within
    /// seconds; longer silence suggests something in between buffers whole responses, and
    /// only polling gets through.
    pub first_byte_timeout: Option<Duration>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            head_timeout: Duration::from_secs(30),
            idle_timeout: None,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            first_byte_timeout: None,
        }
    }
}

/// How long the rest of a body may take after its end-stream before the connection is dropped
/// instead of reused.
const DRAIN_GRACE: Duration = Duration::from_millis(50);

type Head = Result<(http::Response<Incoming>, Lease), Error>;

enum State {
    /// The request runs in its own task from the start, so it is on the wire before the
    /// first append (as Cursor's clients do it).
    Waiting(JoinHandle<Head>),
    Body(Incoming, Option<Lease>),
    Done,
}

/// Receives the messages of a server-streaming call.
///
/// [`message`](ServerStream::message) yields every message, then `Ok(None)` only after a
/// clean end-stream. Any error (in the end-stream, from the connection, a timeout, or a
/// failed append of the same shim) is returned after the messages before it, and again on
/// every later call. Dropping it closes the connection.
pub struct ServerStream {
    state: State,
    decoder: Option<ChunkDecoder>,
    opts: StreamOptions,
    fault: Option<watch::Receiver<Option<ConnectError>>>,
    sticky: Option<ConnectError>,
    started: bool,
    /// When the first body byte is due (`first_byte_timeout`), until it has arrived.
    first_byte_due: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for ServerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerStream")
            .field("started", &self.started)
            .field("sticky", &self.sticky)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerStream {
    fn drop(&mut self) {
        if let State::Waiting(h) = &self.state {
            h.abort();
        }
    }
}

impl ServerStream {
    pub(crate) fn start(
        channel: &Channel,
        path: &str,
        mut headers: HeaderMap,
        message: &[u8],
        opts: StreamOptions,
        fault: Option<watch::Receiver<Option<ConnectError>>>,
    ) -> Self {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(Codec::Proto.stream_content_type()),
        );
        let mut body = BytesMut::with_capacity(message.len() + 5);
        body.extend_from_slice(&[0]);
        body.extend_from_slice(
            &u32::try_from(message.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        body.extend_from_slice(message);
        let (channel, path, limit) = (channel.clone(), path.to_owned(), opts.head_timeout);
        let task = tokio::spawn(async move {
            let req = channel.request(&path, headers, body.freeze());
            match tokio::time::timeout(limit, req).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(ErrorKind::Deadline).detail(format!(
                    "no response head within {:.1}s",
                    limit.as_secs_f64()
                ))),
            }
        });
        let first_byte_due = opts
            .first_byte_timeout
            .map(|t| tokio::time::Instant::now() + t);
        Self {
            state: State::Waiting(task),
            decoder: None,
            opts,
            fault,
            sticky: None,
            started: false,
            first_byte_due,
        }
    }

    /// The next message; `Ok(None)` only after a clean end-stream.
    pub async fn message(&mut self) -> Result<Option<Bytes>, ConnectError> {
        if let Some(e) = &self.sticky {
            return Err(e.clone());
        }
        let mut fault = self.fault.clone();
        let r = match fault.as_mut() {
            Some(f) => {
                tokio::select! {
                    biased;
                    r = self.next() => r,
                    e = wait_fault(f) => Err(e),
                }
            }
            None => self.next().await,
        };
        if let Err(e) = &r {
            self.sticky = Some(e.clone());
            // A request still waiting for its head is abandoned, not left running.
            if let State::Waiting(task) = std::mem::replace(&mut self.state, State::Done) {
                task.abort();
            }
        }
        r
    }

    async fn next(&mut self) -> Result<Option<Bytes>, ConnectError> {
        loop {
            if let Some(dec) = self.decoder.as_mut()
                && let Some(frame) = dec.next_frame()?
            {
                if frame.is_end_stream() {
                    EndStream::parse(&frame.payload)?.into_result()?;
                    if let State::Body(mut body, Some(lease)) =
                        std::mem::replace(&mut self.state, State::Done)
                    {
                        // Read to the end of the body (normally at hand) so the connection
                        // can serve the next request.
                        let drain = async { while let Some(Ok(_)) = next_data(&mut body).await {} };
                        if tokio::time::timeout(DRAIN_GRACE, drain).await.is_ok() {
                            lease.release();
                        }
                    }
                    return Ok(None);
                }
                return Ok(Some(frame.payload));
            }
            match &mut self.state {
                State::Waiting(task) => {
                    let head = match first_byte(self.first_byte_due, task, &self.opts).await? {
                        Ok(h) => h?,
                        Err(_) => {
                            return Err(Error::new(ErrorKind::Closed)
                                .detail("stream request task stopped")
                                .into());
                        }
                    };
                    self.on_head(head).await?;
                }
                State::Body(body, _) => {
                    let chunk = match self.opts.idle_timeout {
                        _ if self.first_byte_due.is_some() => {
                            let chunk =
                                first_byte(self.first_byte_due, next_data(body), &self.opts)
                                    .await?;
                            self.first_byte_due = None;
                            chunk
                        }
                        Some(t) => {
                            tokio::time::timeout(t, next_data(body))
                                .await
                                .map_err(|_| {
                                    Error::new(ErrorKind::Idle)
                                        .response_started(true)
                                        .detail(format!("no data for {:.1}s", t.as_secs_f64()))
                                })?
                        }
                        None => next_data(body).await,
                    };
                    let dec = self
                        .decoder
                        .as_mut()
                        .ok_or_else(|| Error::new(ErrorKind::Closed))?;
                    match chunk {
                        Some(Ok(data)) => dec.push(data),
                        Some(Err(e)) => {
                            return Err(Error::new(ErrorKind::Io)
                                .response_started(true)
                                .detail("stream body failed")
                                .source_err(e)
                                .into());
                        }
                        None => {
                            // The body ended: the last frames, or a cut / missing end-stream.
                            // A body cut short is the connection's failure, not the peer's
                            // message: report it as a transport error.
                            let last = dec.finish().map_err(|e| {
                                Error::new(ErrorKind::Io)
                                    .response_started(true)
                                    .detail(format!("stream body ended early: {e}"))
                            })?;
                            return match last {
                                Some(f) if f.is_end_stream() => {
                                    EndStream::parse(&f.payload)?.into_result()?;
                                    self.state = State::Done;
                                    Ok(None)
                                }
                                Some(f) => Ok(Some(f.payload)),
                                None => Err(Error::new(ErrorKind::Io)
                                    .response_started(true)
                                    .detail("stream ended without an end-stream")
                                    .into()),
                            };
                        }
                    }
                }
                State::Done => {
                    return Err(Error::new(ErrorKind::Closed)
                        .detail("stream already ended")
                        .into());
                }
            }
        }
    }

    async fn on_head(
        &mut self,
        (resp, lease): (http::Response<Incoming>, Lease),
    ) -> Result<(), ConnectError> {
        self.started = true;
        let (parts, mut body) = resp.into_parts();
        if parts.status != StatusCode::OK {
            let bytes = read_to_end(&mut body, ERROR_BODY_LIMIT, &parts.headers)
                .await
                .unwrap_or_default();
            return Err(ConnectError::from_unary_response(
                parts.status,
                &parts.headers,
                &bytes,
            ));
        }
        let ct = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with(Codec::Proto.stream_content_type()) {
            return Err(ConnectError::new(
                Code::Internal,
                format!("stream response has content-type {ct:?}"),
            ));
        }
        let enc = parts
            .headers
            .get("connect-content-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity");
        let Some(encoding) = Encoding::from_name(enc) else {
            return Err(ConnectError::new(
                Code::Internal,
                format!("stream response uses unknown encoding {enc:?}"),
            ));
        };
        let dec = Decoder::new(Direction::Response)
            .max_message_size(self.opts.max_message_size)
            .compression(encoding.compression());
        self.decoder = Some(ChunkDecoder::new(dec));
        self.state = State::Body(body, Some(lease));
        Ok(())
    }
}

/// `fut`, bounded by the first-byte deadline when one is pending.
async fn first_byte<F: Future>(
    due: Option<tokio::time::Instant>,
    fut: F,
    opts: &StreamOptions,
) -> Result<F::Output, Error> {
    let Some(due) = due else {
        return Ok(fut.await);
    };
    tokio::time::timeout_at(due, fut).await.map_err(|_| {
        let secs = opts.first_byte_timeout.unwrap_or_default().as_secs_f64();
        Error::new(ErrorKind::Buffered).detail(format!(
            "no byte of the streamed response within {secs:.1}s"
        ))
    })
}

/// Waits until a fault is recorded and returns it (never returns while there is none).
pub(crate) async fn wait_fault(rx: &mut watch::Receiver<Option<ConnectError>>) -> ConnectError {
    let got = rx
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|v| v.clone());
    match got {
        Some(e) => e,
        // The appender is gone: no more faults can come.
        None => std::future::pending().await,
    }
}
