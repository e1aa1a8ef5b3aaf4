//! A keep-alive pool of HTTP/1.1 connections to one endpoint, and the unary call on it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{Codec, ConnectError};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind};

/// Most bytes read from an error body (or a whole unary answer) before giving up.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 << 10;
/// Default largest unary response body.
pub const DEFAULT_MAX_UNARY_BODY: usize = 4 << 20;
/// How long a pooled connection may take to become ready before a fresh one is made.
const READY_GRACE: Duration = Duration::from_millis(20);

/// A request body that is one buffer, sent with its exact length.
#[derive(Debug)]
pub(crate) struct OneBody(Option<Bytes>);

impl Body for OneBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

type Sender = SendRequest<OneBody>;

/// A pool of HTTP/1.1 keep-alive connections to one endpoint; cheap to clone (clones share
/// the pool).
///
/// Each request takes an idle connection (or opens one), and a connection goes back to the
/// pool once its response body has been read to the end. Connections are made lazily.
#[derive(Clone)]
pub struct Channel {
    pub(crate) inner: Arc<Pool>,
}

pub(crate) struct Pool {
    pub(crate) endpoint: Endpoint,
    idle: Mutex<Vec<Sender>>,
    tls: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.inner.idle.lock().map_or(0, |g| g.len());
        f.debug_struct("Channel")
            .field("endpoint", &self.inner.endpoint)
            .field("idle", &idle)
            .finish()
    }
}

/// A connection lent out for one request; [`Lease::release`] puts it back.
pub(crate) struct Lease {
    sender: Option<Sender>,
    pool: Arc<Pool>,
}

impl Lease {
    /// Returns the connection to the pool (call only after the whole response was read).
    pub(crate) fn release(mut self) {
        if let Some(s) = self.sender.take()
            && !s.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
            && idle.len() < self.pool.endpoint.max_idle
        {
            idle.push(s);
        }
    }
}

impl Channel {
    /// A channel to `endpoint`; nothing is connected until the first call.
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            inner: Arc::new(Pool {
                endpoint,
                idle: Mutex::new(Vec::new()),
                tls: Mutex::new(None),
            }),
        }
    }

    /// The endpoint this channel connects to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// A Connect unary call with the protobuf codec: POSTs `body` to `path` and returns the
    /// response message. Everything, connecting included, happens within `deadline`.
    pub async fn unary(
        &self,
        path: &str,
        headers: HeaderMap,
        body: Bytes,
        deadline: Duration,
    ) -> Result<Bytes, ConnectError> {
        let call = async {
            let mut headers = headers;
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(Codec::Proto.unary_content_type()),
            );
            let (response, lease) = self.request(path, headers, body).await?;
            let status = response.status();
            let (parts, mut incoming) = response.into_parts();
            let limit = if status == StatusCode::OK {
                DEFAULT_MAX_UNARY_BODY
            } else {
                ERROR_BODY_LIMIT
            };
            let bytes = read_to_end(&mut incoming, limit, &parts.headers).await?;
            lease.release();
            if status == StatusCode::OK {
                Ok(bytes)
            } else {
                Err(ConnectError::from_unary_response(
                    status,
                    &parts.headers,
                    &bytes,
                ))
            }
        };
        match tokio::time::timeout(deadline, call).await {
            Ok(r) => r,
            Err(_) => Err(Error::new(ErrorKind::Deadline)
                .detail(format!(
                    "unary {path} took over {:.1}s",
                    deadline.as_secs_f64()
                ))
                .into()),
        }
    }

    /// Sends one POST and waits for the response head. A request that a pooled connection
    /// could not even start (it closed meanwhile) is sent again on a fresh connection.
    pub(crate) async fn request(
        &self,
        path: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<(Response<Incoming>, Lease), Error> {
        let ep = &self.inner.endpoint;
        let host = HeaderValue::from_str(&ep.authority())
            .map_err(|e| Error::new(ErrorKind::InvalidInput).source_err(e))?;
        headers.insert(http::header::HOST, host);
        headers.insert(
            http::header::HeaderName::from_static("connect-protocol-version"),
            HeaderValue::from_static("1"),
        );
        // HTTP/2-only headers have no place on HTTP/1.1.
        headers.remove(http::header::TE);
        let mut req = Request::post(path)
            .body(OneBody(Some(body)))
            .map_err(|e| Error::new(ErrorKind::InvalidInput).source_err(e))?;
        *req.headers_mut() = headers;
        for _ in 0..3 {
            let (mut sender, fresh) = self.checkout().await?;
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let lease = Lease {
                        sender: Some(sender),
                        pool: self.inner.clone(),
                    };
                    return Ok((resp, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: a pooled connection that had gone away; try another.
                    Some(back) if !fresh => req = back,
                    _ => {
                        let err = e.into_error();
                        return Err(Error::new(ErrorKind::Io).source_err(err));
                    }
                },
            }
        }
        Err(Error::new(ErrorKind::Io).detail("pooled connections kept closing"))
    }

    /// An idle ready connection, or a new one (`true`).
    async fn checkout(&self) -> Result<(Sender, bool), Error> {
        loop {
            let next = self.inner.idle.lock().ok().and_then(|mut g| g.pop());
            let Some(mut s) = next else { break };
            if s.is_closed() {
                continue;
            }
            if s.is_ready() {
                return Ok((s, false));
            }
            if let Ok(Ok(())) = tokio::time::timeout(READY_GRACE, s.ready()).await {
                return Ok((s, false));
            }
        }
        let ep = &self.inner.endpoint;
        match tokio::time::timeout(ep.connect_timeout, self.connect()).await {
            Ok(r) => r.map(|s| (s, true)).map_err(|e| e.retry_safe(true)),
            Err(_) => Err(Error::new(ErrorKind::Connect)
                .detail(format!(
                    "no connection to {} within {:?}",
                    ep.authority(),
                    ep.connect_timeout
                ))
                .retry_safe(true)),
        }
    }

    async fn connect(&self) -> Result<Sender, Error> {
        let ep = &self.inner.endpoint;
        let tcp = TcpStream::connect((ep.url.host(), ep.url.port()))
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Connect)
                    .detail(ep.authority())
                    .source_err(e)
            })?;
        tcp.set_nodelay(true)
            .map_err(|e| Error::new(ErrorKind::Connect).source_err(e))?;
        if !ep.url.is_tls() {
            return handshake(tcp).await;
        }
        let cfg = {
            let mut g = self
                .inner
                .tls
                .lock()
                .map_err(|_| Error::new(ErrorKind::Tls).detail("tls config lock poisoned"))?;
            match &*g {
                Some(c) => c.clone(),
                None => {
                    let c = ep.tls_config()?;
                    *g = Some(c.clone());
                    c
                }
            }
        };
        let name = rustls::pki_types::ServerName::try_from(ep.url.host().to_owned())
            .map_err(|e| Error::new(ErrorKind::InvalidInput).source_err(e))?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| Error::new(ErrorKind::Tls).source_err(e))?;
        match tls.get_ref().1.alpn_protocol() {
            None | Some(b"http/1.1") => handshake(tls).await,
            Some(other) => Err(Error::new(ErrorKind::Tls).detail(format!(
                "server selected ALPN {:?}",
                String::from_utf8_lossy(other)
            ))),
        }
    }
}

async fn handshake<T>(io: T) -> Result<Sender, Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Error::new(ErrorKind::Connect).source_err(e))?;
    // The connection task ends when its sender is dropped and the connection is idle, or
    // when the peer closes it.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// The next body frame's data (trailers are skipped); `None` at the end.
pub(crate) async fn next_data(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    return Some(Ok(data));
                }
            }
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Reads a whole body of at most `limit` bytes (a declared larger length is refused before
/// reading).
pub(crate) async fn read_to_end(
    body: &mut Incoming,
    limit: usize,
    headers: &HeaderMap,
) -> Result<Bytes, Error> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_big = |n: u64| {
        Error::new(ErrorKind::Protocol)
            .response_started(true)
            .detail(format!(
                "response body of {n} bytes is over the {limit}-byte limit"
            ))
    };
    if let Some(n) = declared
        && n > limit as u64
    {
        return Err(too_big(n));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = next_data(body).await {
        let chunk = chunk.map_err(|e| {
            Error::new(ErrorKind::Io)
                .response_started(true)
                .source_err(e)
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_big((buf.len() + chunk.len()) as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
