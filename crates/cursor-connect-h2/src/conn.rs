//! One HTTP/2 connection: TCP (+ TLS), the h2 handshake, and the driver task that polls the
//! connection and sends keepalive PINGs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind};

/// Largest DATA frame we accept. Bigger frames than the 16 KiB default cut per-frame costs on
/// downloads; h2 buffers one frame at most, so this also bounds a single read.
const MAX_RECV_FRAME: u32 = 256 << 10;

/// Largest response header (or trailer) block we accept, decoded. h2's default is 16 MiB per
/// stream, which a peer could hold on every open call; Connect headers are a few hundred
/// bytes, and generous proxies' additions stay far below this.
const MAX_HEADER_LIST: u32 = 64 << 10;

/// How long a call that saw "connection lost" waits for the driver to record the real cause.
const FATE_GRACE: Duration = Duration::from_millis(100);

/// Shared knowledge about one connection's life, written by the driver task.
#[derive(Debug)]
pub(crate) struct ConnState {
    /// Why the connection ended; set by the driver just before it stops polling.
    fate: Mutex<Option<Error>>,
    /// Set when the peer sent GOAWAY or the connection ended: no new calls go here.
    closing: AtomicBool,
    done_tx: watch::Sender<bool>,
}

impl ConnState {
    fn new() -> Arc<Self> {
        let (done_tx, _) = watch::channel(false);
        Arc::new(Self {
            fate: Mutex::new(None),
            closing: AtomicBool::new(false),
            done_tx,
        })
    }

    pub(crate) fn is_usable(&self) -> bool {
        !self.closing.load(Ordering::Acquire) && !*self.done_tx.borrow()
    }

    pub(crate) fn mark_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    fn finish(&self, fate: Option<Error>) {
        if let Ok(mut g) = self.fate.lock() {
            *g = fate;
        }
        self.closing.store(true, Ordering::Release);
        self.done_tx.send_replace(true);
    }

    /// Replaces a generic "connection lost" stream error with the recorded reason the
    /// connection died (keepalive timeout, GOAWAY with an error, TCP reset), if the driver
    /// learns it within a short grace period.
    pub(crate) async fn refine(&self, err: Error) -> Error {
        if !matches!(err.kind(), ErrorKind::Io | ErrorKind::Closed) {
            return err;
        }
        let mut rx = self.done_tx.subscribe();
        let _ = tokio::time::timeout(FATE_GRACE, rx.wait_for(|d| *d)).await;
        let fate = self
            .fate
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(Error::shallow_clone));
        match fate {
            // The stream was open on the connection, so the server may have processed it.
            Some(f) => f
                .retry_safe(false)
                .set_response_progress(err.response_started(), false),
            None => err,
        }
    }
}

/// A live connection: the request handle plus the state the driver maintains.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) send_request: SendRequest<Bytes>,
    pub(crate) state: Arc<ConnState>,
}

/// Connects to the endpoint within its connect timeout. Every failure here is retry safe:
/// no request was sent.
pub(crate) async fn connect(ep: &Endpoint) -> Result<Conn, Error> {
    match tokio::time::timeout(ep.connect_timeout, connect_inner(ep)).await {
        Ok(r) => r.map_err(|e| e.retry_safe(true)),
        Err(_) => Err(Error::new(ErrorKind::Connect)
            .detail(format!(
                "no connection to {} within {:?}",
                ep.authority(),
                ep.connect_timeout
            ))
            .retry_safe(true)),
    }
}

async fn connect_inner(ep: &Endpoint) -> Result<Conn, Error> {
    let tcp = TcpStream::connect((ep.url.host(), ep.url.port()))
        .await
        .map_err(|e| Error::from_io(ErrorKind::Connect, e).detail(ep.authority()))?;
    // Small envelopes must not wait for Nagle; h2 already batches its writes.
    tcp.set_nodelay(true)
        .map_err(|e| Error::from_io(ErrorKind::Connect, e))?;
    if !ep.url.is_tls() {
        return handshake(tcp, ep).await;
    }
    let cfg = ep.tls_config()?;
    let name = rustls::pki_types::ServerName::try_from(ep.url.host().to_owned()).map_err(|e| {
        Error::new(ErrorKind::InvalidInput)
            .detail("invalid tls server name")
            .source_err(e)
    })?;
    let tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .map_err(|e| Error::from_io(ErrorKind::Tls, e).detail(ep.authority()))?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err(Error::new(ErrorKind::Tls).detail(format!(
            "{} did not negotiate HTTP/2 (ALPN h2)",
            ep.authority()
        )));
    }
    handshake(tls, ep).await
}

/// Builds the h2 client settings shared by the channel and the benchmarks' raw baseline.
pub(crate) fn builder(ep: &Endpoint) -> h2::client::Builder {
    let mut b = h2::client::Builder::new();
    b.initial_window_size(ep.stream_window)
        .initial_connection_window_size(ep.conn_window)
        .max_frame_size(MAX_RECV_FRAME)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(ep.max_send_buffer)
        .enable_push(false);
    b
}

async fn handshake<T>(io: T, ep: &Endpoint) -> Result<Conn, Error>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send_request, mut conn) = builder(ep).handshake::<_, Bytes>(io).await.map_err(|e| {
        let e = Error::from_h2(e);
        Error::new(ErrorKind::Connect)
            .detail("http/2 handshake failed")
            .source_err(e)
    })?;
    let ping = conn.ping_pong();
    let state = ConnState::new();
    let keepalive = ep
        .keepalive_interval
        .map(|i| (i, ep.keepalive_timeout))
        .zip(ping);
    tokio::spawn(drive(conn, keepalive, Arc::downgrade(&state)));
    Ok(Conn {
        send_request,
        state,
    })
}

/// Polls the connection until it ends (all handles dropped, peer closed, error) or a
/// keepalive PING goes unanswered. Dropping the connection fails every open stream, so a
/// dead peer reaches every call.
async fn drive<T>(
    mut conn: h2::client::Connection<T, Bytes>,
    keepalive: Option<((Duration, Duration), h2::PingPong)>,
    state: Weak<ConnState>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let fate = tokio::select! {
        r = &mut conn => r.err().map(Error::from_h2),
        e = keep_alive(keepalive) => Some(e),
    };
    if let Some(s) = state.upgrade() {
        s.finish(fate);
    }
    drop(conn);
}

async fn keep_alive(keepalive: Option<((Duration, Duration), h2::PingPong)>) -> Error {
    let Some(((interval, timeout), mut pp)) = keepalive else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(interval).await;
        match tokio::time::timeout(timeout, pp.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Error::from_h2(e),
            Err(_) => {
                return Error::new(ErrorKind::Keepalive)
                    .detail(format!("no PING acknowledgement within {timeout:?}"));
            }
        }
    }
}
