//! `Channel`: one HTTP/2 connection (re-established after GOAWAY or loss) carrying many calls.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::{ConnectError, Encoding};
use h2::client::{ResponseFuture, SendRequest};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, TE};
use http::{HeaderMap, Method, Request, Uri};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::call::Call;
use crate::conn::{self, Conn, ConnState};
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind};
use crate::options::CallOptions;
use crate::recv::RecvHalf;
use crate::send::SendHalf;

/// `connect-timeout-ms` allows at most 10 digits.
const MAX_TIMEOUT_MS: u128 = 9_999_999_999;

/// A cheap-to-clone handle to one HTTP/2 connection that carries many concurrent calls.
///
/// The connection is driven by its own task, sends keepalive PINGs, and is replaced by a
/// new one when the peer sends GOAWAY or the connection is lost (the next call reconnects).
#[derive(Clone, Debug)]
pub struct Channel {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    endpoint: Endpoint,
    conn: Mutex<Option<Conn>>,
    slots: Option<Arc<Semaphore>>,
}

/// Whether a request body follows the headers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Stream,
    Unary,
}

impl Channel {
    /// Connects now; fails if the first connection cannot be established.
    pub async fn connect(endpoint: Endpoint) -> Result<Self, Error> {
        let conn = conn::connect(&endpoint).await?;
        let ch = Self::lazy(endpoint);
        *ch.inner.conn.lock().await = Some(conn);
        Ok(ch)
    }

    /// Connects on the first call (and again after GOAWAY or connection loss).
    pub fn lazy(endpoint: Endpoint) -> Self {
        let slots = endpoint
            .max_concurrent_calls
            .map(|n| Arc::new(Semaphore::new(n)));
        Self {
            inner: Arc::new(Shared {
                endpoint,
                conn: Mutex::new(None),
                slots,
            }),
        }
    }

    /// The endpoint this channel connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// Opens a full-duplex streaming call. The halves can be used from two tasks at once.
    ///
    /// Returns as soon as the request headers are queued; the response headers are awaited
    /// by the first [`RecvHalf::message`], since Connect servers may wait for a message
    /// before answering. Like every call method, it fails with a `ConnectError`.
    pub async fn bidi(
        &self,
        path: &str,
        headers: HeaderMap,
        opts: CallOptions,
    ) -> Result<(SendHalf, RecvHalf), ConnectError> {
        let (call, response) = self.start(path, headers, &opts, Shape::Stream).await?;
        let send = SendHalf::start(call.clone(), &opts, self.inner.endpoint.max_send_buffer);
        let recv = RecvHalf::new(call, response, &opts).with_writer(send.writer_guard());
        Ok((send, recv))
    }

    /// Opens a server-streaming call: sends `message` as the only request message.
    pub async fn server_stream(
        &self,
        path: &str,
        headers: HeaderMap,
        message: Bytes,
        opts: CallOptions,
    ) -> Result<RecvHalf, ConnectError> {
        let (mut send, recv) = self.bidi(path, headers, opts).await?;
        let sent = match send.send(message).await {
            Ok(()) => send.close_send().await,
            Err(e) => Err(e),
        };
        match sent {
            // The peer reset or closed the request side. A server may answer (often with an
            // error) before reading the whole request and then reset with NO_ERROR (RFC 9113
            // §8.1); the receive half has that answer, or else the same typed cause.
            Err(e) if e.transport_cause().is_some_and(|c| c.remote_initiated) => Ok(recv),
            Err(e) => Err(e),
            Ok(()) => Ok(recv),
        }
    }

    /// Starts a stream: waits for a call slot and a connection, then sends the headers.
    pub(crate) async fn start(
        &self,
        path: &str,
        extra: HeaderMap,
        opts: &CallOptions,
        shape: Shape,
    ) -> Result<(Arc<Call>, ResponseFuture), Error> {
        // A deadline beyond what `Instant` can represent (e.g. `Duration::MAX`) means none.
        let deadline = opts.deadline.and_then(|d| Instant::now().checked_add(d));
        let req = self.request(path, extra, opts, shape)?;
        let permit = self.slot(deadline).await?;
        // A request that meets a GOAWAY before reaching the wire was not processed: try once
        // more on a fresh connection.
        let mut last = None;
        for _ in 0..2 {
            let (sr, state) = self.ready_conn(deadline).await?;
            match send_request(sr, &req, deadline).await {
                Ok((resp, stream)) => {
                    let call = Call::new(stream, state, deadline, permit);
                    return Ok((call, resp));
                }
                Err(e) => {
                    state.mark_closing();
                    if !e.is_retry_safe() || e.kind() == ErrorKind::Deadline {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Closed)))
    }

    async fn slot(&self, deadline: Option<Instant>) -> Result<Option<OwnedSemaphorePermit>, Error> {
        let Some(sem) = &self.inner.slots else {
            return Ok(None);
        };
        let acquire = sem.clone().acquire_owned();
        let permit = match deadline {
            Some(at) => tokio::time::timeout_at(at, acquire)
                .await
                .map_err(|_| deadline_before_send("waiting for a call slot"))?,
            None => acquire.await,
        };
        permit
            .map(Some)
            .map_err(|_| Error::new(ErrorKind::Closed).detail("channel closed"))
    }

    async fn ready_conn(
        &self,
        deadline: Option<Instant>,
    ) -> Result<(SendRequest<Bytes>, Arc<ConnState>), Error> {
        let lock = self.inner.conn.lock();
        let mut guard = match deadline {
            Some(at) => tokio::time::timeout_at(at, lock)
                .await
                .map_err(|_| deadline_before_send("waiting for the connection"))?,
            None => lock.await,
        };
        if let Some(c) = guard.as_ref().filter(|c| c.state.is_usable()) {
            return Ok((c.send_request.clone(), c.state.clone()));
        }
        *guard = None;
        let fresh = match deadline {
            Some(at) => tokio::time::timeout_at(at, conn::connect(&self.inner.endpoint))
                .await
                .map_err(|_| deadline_before_send("connecting"))??,
            None => conn::connect(&self.inner.endpoint).await?,
        };
        let out = (fresh.send_request.clone(), fresh.state.clone());
        *guard = Some(fresh);
        Ok(out)
    }

    fn request(
        &self,
        path: &str,
        extra: HeaderMap,
        opts: &CallOptions,
        shape: Shape,
    ) -> Result<Request<()>, Error> {
        let ep = &self.inner.endpoint;
        let invalid = |what: &str| Error::new(ErrorKind::InvalidInput).detail(what.to_owned());
        if !path.starts_with('/') {
            return Err(invalid("path must start with '/'"));
        }
        let uri = Uri::builder()
            .scheme(ep.scheme())
            .authority(ep.authority())
            .path_and_query(path)
            .build()
            .map_err(|e| invalid("invalid request uri").source_err(e))?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(())
            .map_err(|e| invalid("invalid request").source_err(e))?;
        let h = req.headers_mut();
        // Connection-specific headers are illegal in HTTP/2; h2 would reject the request.
        for (name, value) in &extra {
            if !is_hop_by_hop(name) {
                h.append(name.clone(), value.clone());
            }
        }
        let (ct, enc, accept) = match shape {
            Shape::Stream => (
                opts.stream_content_type(),
                "connect-content-encoding",
                "connect-accept-encoding",
            ),
            Shape::Unary => (
                opts.unary_content_type(),
                "content-encoding",
                "accept-encoding",
            ),
        };
        let value = |s: &str| HeaderValue::from_str(s).map_err(|e| invalid("header").source_err(e));
        h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        h.insert("connect-protocol-version", HeaderValue::from_static("1"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.remove(enc);
        h.remove(accept);
        if opts.send_compression != Encoding::Identity {
            let name = HeaderValue::from_static(opts.send_compression.name());
            h.insert(HeaderName::from_static(enc), name);
        }
        if !opts.accept_compression.is_empty() {
            let names: Vec<&str> = opts.accept_compression.iter().map(|e| e.name()).collect();
            h.insert(HeaderName::from_static(accept), value(&names.join(", "))?);
        }
        if let Some(d) = opts.deadline {
            h.insert("connect-timeout-ms", timeout_header(d));
        } else {
            h.remove("connect-timeout-ms");
        }
        Ok(req)
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "transfer-encoding" | "upgrade" | "keep-alive" | "proxy-connection" | "te"
    )
}

fn timeout_header(d: Duration) -> HeaderValue {
    // Round up so a sub-millisecond deadline is not sent as 0 (which would mean "expired").
    let ms = d.as_micros().div_ceil(1000).clamp(1, MAX_TIMEOUT_MS);
    HeaderValue::from(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn deadline_before_send(what: &str) -> Error {
    // Nothing was sent, so a retry cannot duplicate anything.
    Error::new(ErrorKind::Deadline)
        .detail(format!("call deadline passed while {what}"))
        .retry_safe(true)
}

async fn send_request(
    sr: SendRequest<Bytes>,
    req: &Request<()>,
    deadline: Option<Instant>,
) -> Result<(ResponseFuture, h2::SendStream<Bytes>), Error> {
    // `ready` waits for a slot under the peer's MAX_CONCURRENT_STREAMS.
    let ready = sr.ready();
    let mut sr = match deadline {
        Some(at) => tokio::time::timeout_at(at, ready)
            .await
            .map_err(|_| deadline_before_send("waiting for a stream slot"))?,
        None => ready.await,
    }
    .map_err(unsent)?;
    let mut copy = Request::new(());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.headers_mut() = req.headers().clone();
    sr.send_request(copy, false).map_err(unsent)
}

/// An error before the request was handed to the connection: a GOAWAY there means the
/// request never left, so it is safe to retry.
fn unsent(e: h2::Error) -> Error {
    let go_away = e.is_go_away();
    let err = Error::from_h2(e);
    if go_away { err.retry_safe(true) } else { err }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_header_rounds_and_clamps() {
        assert_eq!(timeout_header(Duration::from_micros(1)), "1");
        assert_eq!(timeout_header(Duration::from_millis(1500)), "1500");
        assert_eq!(
            timeout_header(Duration::from_secs(u64::MAX / 4)),
            "9999999999"
        );
    }

    #[test]
    fn request_headers() {
        let ch = Channel::lazy(Endpoint::h2c("127.0.0.1:1").unwrap());
        let mut extra = HeaderMap::new();
        extra.insert("authorization", HeaderValue::from_static("Bearer x"));
        extra.insert("connection", HeaderValue::from_static("close"));
        extra.insert("content-type", HeaderValue::from_static("text/plain"));
        let opts = CallOptions::default()
            .deadline(Duration::from_secs(2))
            .send_compression(Encoding::Gzip);
        let req = ch.request("/a.B/C", extra, &opts, Shape::Stream).unwrap();
        let h = req.headers();
        assert_eq!(req.uri(), "http://127.0.0.1:1/a.B/C");
        assert_eq!(h["content-type"], "application/connect+proto");
        assert_eq!(h["connect-protocol-version"], "1");
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["connect-timeout-ms"], "2000");
        assert_eq!(h["connect-content-encoding"], "gzip");
        assert_eq!(h["connect-accept-encoding"], "gzip");
        assert_eq!(h["authorization"], "Bearer x");
        assert!(h.get("connection").is_none());
        let req = ch
            .request(
                "/a.B/C",
                HeaderMap::new(),
                &CallOptions::default(),
                Shape::Unary,
            )
            .unwrap();
        assert_eq!(req.headers()["content-type"], "application/proto");
        assert_eq!(req.headers()["accept-encoding"], "gzip");
        assert!(req.headers().get("content-encoding").is_none());
        assert!(
            ch.request("nope", HeaderMap::new(), &opts, Shape::Unary)
                .is_err()
        );
    }
}
