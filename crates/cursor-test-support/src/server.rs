//! In-process HTTP/2 test servers over real loopback sockets: an `h2` server whose handler
//! can inject faults (resets, GOAWAY, stalls, socket drops, tiny windows), and a raw-frame
//! peer for frames an `h2` server will not produce.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::envelope::end_ok;

/// What a handler can ask of the connection it runs on.
#[derive(Debug, Clone, Copy)]
pub enum ConnCmd {
    /// `abrupt_shutdown(reason)`: GOAWAY with the current last stream id, then close.
    GoAway(Reason),
    /// `graceful_shutdown()`: GOAWAY(max), PING, GOAWAY(last id); open streams finish.
    Graceful,
    /// Drop the socket without GOAWAY (FIN, or RST with `linger_zero`).
    Drop,
}

/// Per-request context handed to handlers.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Commands to the connection the request arrived on.
    pub conn: mpsc::UnboundedSender<ConnCmd>,
    /// The headers of every request the server has seen, in order.
    pub seen: Arc<Mutex<Vec<HeaderMap>>>,
}

impl Ctx {
    /// Sends `c` to this request's connection (ignored once the connection is gone).
    pub fn cmd(&self, c: ConnCmd) {
        let _ = self.conn.send(c);
    }
}

/// A request handler: gets the request, its responder and the [`Ctx`].
pub type Handler = Arc<
    dyn Fn(
            Request<RecvStream>,
            SendResponse<Bytes>,
            Ctx,
        ) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// Boxes an async closure as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Request<RecvStream>, SendResponse<Bytes>, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |r, s, c| Box::pin(f(r, s, c)))
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Initial stream window advertised to the client.
    pub stream_window: u32,
    /// Initial connection window.
    pub conn_window: u32,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`, unlimited when `None`.
    pub max_concurrent: Option<u32>,
    /// Close sockets with `SO_LINGER` 0, so a drop sends RST rather than FIN.
    pub linger_zero: bool,
    /// `SETTINGS_MAX_FRAME_SIZE`.
    pub max_frame_size: u32,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            stream_window: 2 << 20,
            conn_window: 8 << 20,
            max_concurrent: None,
            linger_zero: false,
            max_frame_size: 16_384,
        }
    }
}

/// A running server on a loopback port; dropping it stops accepting.
#[derive(Debug)]
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The headers of every request seen, in order.
    pub seen: Arc<Mutex<Vec<HeaderMap>>>,
    /// How many connections it has accepted.
    pub conns: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Binds `127.0.0.1:0` and serves every connection with `h`.
    ///
    /// # Panics
    /// If the loopback socket cannot be bound.
    pub async fn start(opts: Opts, h: Handler) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let (s2, c2) = (seen.clone(), conns.clone());
        let task = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                c2.fetch_add(1, Ordering::SeqCst);
                if opts.linger_zero {
                    tcp.set_zero_linger().unwrap();
                }
                tasks.spawn(serve(tcp, opts.clone(), h.clone(), s2.clone()));
            }
        });
        Self {
            addr,
            seen,
            conns,
            task,
        }
    }

    /// `host:port` for the `:authority` of requests.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }
}

/// Serves one HTTP/2 connection on `io` until it ends or a [`ConnCmd`] ends it, recording
/// request headers in `seen`.
pub async fn serve<T>(io: T, opts: Opts, h: Handler, seen: Arc<Mutex<Vec<HeaderMap>>>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut b = h2::server::Builder::new();
    b.initial_window_size(opts.stream_window)
        .initial_connection_window_size(opts.conn_window)
        .max_frame_size(opts.max_frame_size);
    if let Some(m) = opts.max_concurrent {
        b.max_concurrent_streams(m);
    }
    let Ok(mut conn) = b.handshake::<_, Bytes>(io).await else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut streams = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    seen.lock().unwrap().push(req.headers().clone());
                    let ctx = Ctx { conn: tx.clone(), seen: seen.clone() };
                    streams.spawn(h(req, respond, ctx));
                }
                _ => break,
            },
            Some(cmd) = rx.recv() => match cmd {
                ConnCmd::GoAway(r) => {
                    conn.abrupt_shutdown(r);
                }
                ConnCmd::Graceful => conn.graceful_shutdown(),
                ConnCmd::Drop => return,
            },
        }
    }
    // Keep the streams alive until the connection ends.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while streams.join_next().await.is_some() {}
    })
    .await;
}

/// A `200` response with the Connect streaming content type.
pub fn stream_response() -> Response<()> {
    Response::builder()
        .header("content-type", "application/connect+proto")
        .body(())
        .unwrap()
}

/// Sends [`stream_response`] headers and returns the body stream.
///
/// # Panics
/// If the stream was already reset.
pub fn respond_stream(respond: &mut SendResponse<Bytes>) -> SendStream<Bytes> {
    respond.send_response(stream_response(), false).unwrap()
}

/// Echoes every request DATA chunk back as it arrives, then ends with `{}`.
pub fn echo() -> Handler {
    handler(|req, mut respond, _ctx| async move {
        let mut body = req.into_body();
        let mut tx = respond_stream(&mut respond);
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
            if tx.send_data(chunk, false).is_err() {
                return;
            }
        }
        let _ = tx.send_data(end_ok(), true);
        // Keep the stream handle until the client has read everything.
        tokio::time::sleep(Duration::from_millis(50)).await;
    })
}

// ---- raw-frame peer -------------------------------------------------------------------

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One raw HTTP/2 frame: 9-byte header (length, type, flags, stream id) and payload.
pub fn frame(ty: u8, flags: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + payload.len());
    let len = payload.len() as u32;
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(ty);
    v.push(flags);
    v.extend_from_slice(&sid.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// A raw peer connection after the preface and SETTINGS exchange.
#[derive(Debug)]
pub struct Raw {
    /// The socket, for writing frames by hand.
    pub tcp: TcpStream,
}

impl Raw {
    /// Accepts one connection, reads the preface, sends `settings` (id, value pairs) and an
    /// ACK for the client's SETTINGS.
    pub async fn accept(listener: &TcpListener, settings: &[(u16, u32)]) -> Self {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut pre = [0u8; 24];
        tcp.read_exact(&mut pre).await.unwrap();
        assert_eq!(&pre, PREFACE);
        let mut p = Vec::new();
        for (id, v) in settings {
            p.extend_from_slice(&id.to_be_bytes());
            p.extend_from_slice(&v.to_be_bytes());
        }
        tcp.write_all(&frame(4, 0, 0, &p)).await.unwrap();
        tcp.write_all(&frame(4, 1, 0, &[])).await.unwrap();
        Self { tcp }
    }

    /// Reads frames until one of type `ty` arrives (returns its flags, stream id, payload).
    pub async fn until(&mut self, ty: u8) -> Option<(u8, u32, Vec<u8>)> {
        loop {
            let mut h = [0u8; 9];
            self.tcp.read_exact(&mut h).await.ok()?;
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            let mut p = vec![0u8; len];
            self.tcp.read_exact(&mut p).await.ok()?;
            let sid = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            if h[3] == ty {
                return Some((h[4], sid, p));
            }
        }
    }

    /// Writes `bytes` as they are, ignoring errors (the client may have gone).
    pub async fn send(&mut self, bytes: &[u8]) {
        let _ = self.tcp.write_all(bytes).await;
    }

    /// HEADERS `:status 200` (HPACK static index 8) plus a literal content-type.
    pub fn ok_headers(sid: u32) -> Vec<u8> {
        let ct = b"application/connect+proto";
        // Literal without indexing, indexed name "content-type" (static index 31).
        let mut block = vec![0x88, 0x0f, 0x10, ct.len() as u8];
        block.extend_from_slice(ct);
        frame(1, 4, sid, &block)
    }

    /// A GOAWAY frame with `last` stream id and error `code`.
    pub fn goaway(last: u32, code: u32) -> Vec<u8> {
        let mut p = last.to_be_bytes().to_vec();
        p.extend_from_slice(&code.to_be_bytes());
        frame(7, 0, 0, &p)
    }
}
