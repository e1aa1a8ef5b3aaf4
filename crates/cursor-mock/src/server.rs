//! The listener, the HTTP/2 connections and request routing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_proto::paths;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::record::{ReceivedCall, Recorder, Violation};
use crate::scenario::Scenario;
use crate::tls::{self, TestPki};

/// Path of the bidi Run method.
pub const RUN_PATH: &str = paths::AGENT_RUN.path;
/// Unary paths the mock serves.
pub const UNARY_PATHS: &[&str] = &[
    paths::AGENT_GET_USABLE_MODELS.path,
    paths::AGENT_GET_DEFAULT_MODEL_FOR_CLI.path,
    paths::AGENT_NAME_AGENT.path,
    "/aiserver.v1.AiService/GetUsableModels",
    "/aiserver.v1.AiService/GetDefaultModelForCli",
    paths::AISERVER_AVAILABLE_MODELS.path,
    paths::AISERVER_GET_SERVER_CONFIG.path,
];
/// The request header that selects a scenario by name.
pub const SCENARIO_HEADER: &str = "x-mock-scenario";

/// Settings shared by every connection of one server.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) reply_timeout: Duration,
    pub(crate) tool_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) http2_config: cursor_proto::aiserver::v1::Http2Config,
    /// How long a RunPoll stays open without news before it ends with `{}`.
    pub(crate) poll_window: Duration,
    pub(crate) poll_fault: Option<crate::poll::PollFault>,
    /// BidiAppends from this seqno on are never answered (the client's deadline fault).
    pub(crate) stall_appends_from: Option<i64>,
    /// Serve HTTP/1.1 only: no `h2` in ALPN, and cleartext connections are never HTTP/2.
    pub(crate) http1_only: bool,
    /// How far ahead of now the `exp` of tokens minted by `/oauth/token` lies.
    pub(crate) token_lifetime: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            stream_window: 1 << 20,
            connection_window: 4 << 20,
            max_frame_size: 16_384,
            heartbeat_interval: Duration::from_secs(2),
            reply_timeout: Duration::from_secs(10),
            tool_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
            max_message_size: cursor_connect_frame::DEFAULT_MAX_MESSAGE_SIZE,
            http2_config: cursor_proto::aiserver::v1::Http2Config::ForceAllEnabled,
            poll_window: Duration::from_secs(1),
            poll_fault: None,
            stall_appends_from: None,
            http1_only: false,
            token_lifetime: Duration::from_secs(86_400),
        }
    }
}

/// State shared by the listener, its connections and the [`MockServer`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) default: Scenario,
    pub(crate) named: HashMap<String, Scenario>,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) base_url: String,
    /// RunSSE streams by request id, for BidiAppend.
    pub(crate) bidi: crate::bidi::BidiTable,
    /// RunPoll turns by request id.
    pub(crate) polls: crate::poll::PollTable,
    /// Turns of RunSSE streams, which outlive the request handler that started them; aborted
    /// when the server is dropped.
    pub(crate) turns: Arc<std::sync::Mutex<JoinSet<()>>>,
    /// Token refreshes answered so far (each mints distinct tokens).
    pub(crate) refreshes: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// Runs a RunSSE turn in the background, owned by the server.
    pub(crate) fn spawn_turn(&self, turn: impl Future<Output = ()> + Send + 'static) {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        while turns.try_join_next().is_some() {}
        turns.spawn(turn);
    }

    /// The scenario for a request: the header first, then a scenario-named model, else default.
    /// `Err` carries an unknown header value.
    pub(crate) fn pick(
        &self,
        header: Option<&str>,
        model: Option<&str>,
    ) -> Result<(String, Scenario), String> {
        if let Some(name) = header {
            return self
                .lookup(name)
                .map(|s| (name.to_owned(), s))
                .ok_or_else(|| format!("unknown mock scenario {name:?}"));
        }
        if let Some(found) = model.and_then(|m| self.lookup(m).map(|s| (m.to_owned(), s))) {
            return Ok(found);
        }
        Ok(("default".to_owned(), self.default.clone()))
    }

    fn lookup(&self, name: &str) -> Option<Scenario> {
        self.named
            .get(name)
            .cloned()
            .or_else(|| Scenario::named(name))
    }
}

/// Configures and starts a [`MockServer`].
#[derive(Debug, Default)]
pub struct MockBuilder {
    scenario: Scenario,
    named: HashMap<String, Scenario>,
    settings: Settings,
    tls: bool,
    tls_http1_only: bool,
    listen: Option<SocketAddr>,
}

impl MockBuilder {
    /// The scenario for requests that select none (default: [`Scenario::default`]).
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = scenario;
        self
    }

    /// Registers a scenario under `name`, selectable by model id or the `x-mock-scenario` header.
    /// It takes precedence over a built-in scenario of the same name.
    pub fn named(mut self, name: impl Into<String>, scenario: Scenario) -> Self {
        self.named.insert(name.into(), scenario);
        self
    }

    /// Serves TLS (ALPN `h2` and `http/1.1`) with a freshly generated test CA instead of
    /// cleartext (h2c with prior knowledge, or HTTP/1.1).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// With [`MockBuilder::tls`]: offer only `http/1.1` in ALPN, like a server or proxy without
    /// HTTP/2 (HTTP/2 clients then fail the handshake or fall back).
    pub fn tls_http1_only(mut self, on: bool) -> Self {
        self.tls_http1_only = on;
        self
    }

    /// The address to bind (default `127.0.0.1:0`, an ephemeral loopback port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// The HTTP/2 stream window the mock advertises for client sends (default 1 MiB). Use a tiny
    /// value (e.g. 1 or 16) to exercise a client's send-side flow control.
    pub fn stream_window(mut self, bytes: u32) -> Self {
        self.settings.stream_window = bytes;
        self
    }

    /// The HTTP/2 connection window for client sends (default 4 MiB, at least 65,535).
    pub fn connection_window(mut self, bytes: u32) -> Self {
        self.settings.connection_window = bytes.max(65_535);
        self
    }

    /// The largest DATA frame the mock accepts (16,384 to 16,777,215).
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.settings.max_frame_size = bytes.clamp(16_384, 16_777_215);
        self
    }

    /// How often the mock sends heartbeats while it waits (default 2 s).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.settings.heartbeat_interval = every;
        self
    }

    /// How long the mock waits for a KV or request-context answer (default 10 s).
    pub fn reply_timeout(mut self, limit: Duration) -> Self {
        self.settings.reply_timeout = limit;
        self
    }

    /// How long the mock waits for MCP tool results (default 60 s).
    pub fn tool_timeout(mut self, limit: Duration) -> Self {
        self.settings.tool_timeout = limit;
        self
    }

    /// The `http2_config` that `GetServerConfig` answers (default `FORCE_ALL_ENABLED`, so Cursor's
    /// SDK takes HTTP/2 even on `http://`). `ForceAllDisabled` or `Unspecified` on `http://`
    /// sends the SDK down its HTTP/1.1 path (RunSSE + BidiAppend).
    pub fn http2_config(mut self, config: cursor_proto::aiserver::v1::Http2Config) -> Self {
        self.settings.http2_config = config;
        self
    }

    /// How long a `RunPoll` stays open while the turn has nothing new (default 1 s); it then
    /// ends cleanly and the client polls again.
    pub fn poll_window(mut self, window: Duration) -> Self {
        self.settings.poll_window = window;
        self
    }

    /// Access tokens minted by `POST /oauth/token` expire `lifetime` after they are issued
    /// (default a day); a short one lets a client's refresh ahead of expiry be seen.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.token_lifetime = lifetime;
        self
    }

    /// Injects `fault` into every polled turn (a seqno gap, a repeat, a dropped poll).
    pub fn poll_fault(mut self, fault: crate::poll::PollFault) -> Self {
        self.settings.poll_fault = Some(fault);
        self
    }

    /// Leaves every `BidiAppend` with `append_seqno >= seqno` unanswered (for 60 s), so a
    /// client's append deadline can be seen to fire.
    pub fn stall_appends_from(mut self, seqno: i64) -> Self {
        self.settings.stall_appends_from = Some(seqno);
        self
    }

    /// Serves HTTP/1.1 only, like a network whose proxies strip HTTP/2: TLS offers only
    /// `http/1.1` in ALPN, a cleartext HTTP/2 preface is answered as a bad HTTP/1.1 request, and
    /// `GetServerConfig` answers `FORCE_ALL_DISABLED` (call [`MockBuilder::http2_config`]
    /// afterwards to answer something else).
    pub fn http1_only(mut self, on: bool) -> Self {
        self.settings.http1_only = on;
        if on {
            self.settings.http2_config = cursor_proto::aiserver::v1::Http2Config::ForceAllDisabled;
        }
        self
    }

    /// Binds, generates the TLS material if asked, and starts serving.
    ///
    /// # Errors
    /// Bind errors, and TLS material generation errors as `io::Error`.
    pub async fn start(self) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(
            self.listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
        )
        .await?;
        let addr = listener.local_addr()?;
        let pki = if self.tls {
            Some(tls::generate(
                self.tls_http1_only || self.settings.http1_only,
            )?)
        } else {
            None
        };
        let scheme = if pki.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://{addr}");
        let recorder = Arc::new(Recorder::default());
        let turns = Arc::new(std::sync::Mutex::new(JoinSet::new()));
        let shared = Arc::new(Shared {
            settings: self.settings,
            default: self.scenario,
            named: self.named,
            recorder: recorder.clone(),
            base_url: base_url.clone(),
            bidi: crate::bidi::BidiTable::default(),
            polls: crate::poll::PollTable::default(),
            refreshes: std::sync::atomic::AtomicU64::new(0),
            turns: turns.clone(),
        });
        let acceptor = pki
            .as_ref()
            .map(|p| tokio_rustls::TlsAcceptor::from(p.server_config.clone()));
        let task = tokio::spawn(accept_loop(listener, shared, acceptor));
        Ok(MockServer {
            addr,
            base_url,
            recorder,
            pki,
            task,
            turns,
        })
    }
}

/// A running mock Cursor backend on a loopback port. Dropping it stops the listener and every
/// connection.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    base_url: String,
    recorder: Arc<Recorder>,
    pki: Option<TestPki>,
    task: JoinHandle<()>,
    turns: Arc<std::sync::Mutex<JoinSet<()>>>,
}

impl MockServer {
    /// Starts an h2c (cleartext, prior knowledge) server on `127.0.0.1` with `scenario` as default.
    ///
    /// # Errors
    /// Bind errors.
    pub async fn start(scenario: Scenario) -> std::io::Result<Self> {
        Self::builder().scenario(scenario).start().await
    }

    /// Starts a TLS server (test CA from [`MockServer::ca_certificate_der`]).
    ///
    /// # Errors
    /// Bind and certificate generation errors.
    pub async fn start_tls(scenario: Scenario) -> std::io::Result<Self> {
        Self::builder().scenario(scenario).tls(true).start().await
    }

    /// A builder for windows, timeouts, named scenarios and TLS.
    pub fn builder() -> MockBuilder {
        MockBuilder::default()
    }

    /// `http://127.0.0.1:PORT` (h2c) or `https://127.0.0.1:PORT` (TLS; the certificate is valid
    /// for `127.0.0.1`, `::1` and `localhost`).
    pub fn url(&self) -> String {
        self.base_url.clone()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The test CA certificate (DER) when serving TLS.
    pub fn ca_certificate_der(&self) -> Option<CertificateDer<'static>> {
        self.pki.as_ref().map(|p| p.ca_der.clone())
    }

    /// The test CA certificate (PEM) when serving TLS.
    pub fn ca_certificate_pem(&self) -> Option<String> {
        self.pki.as_ref().map(|p| p.ca_pem.clone())
    }

    /// The calls received so far, in arrival order, with their client messages. Bounded so a
    /// long-running mock does not grow without limit: the latest [`crate::MAX_RECORDED_CALLS`]
    /// calls, [`crate::MAX_MESSAGES_PER_CALL`] messages per call and
    /// [`crate::MAX_RECORDED_BYTES`] payload bytes in all (the oldest calls are dropped first).
    pub fn received(&self) -> Vec<ReceivedCall> {
        self.recorder
            .lock()
            .calls
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Client heartbeats received, over all calls.
    pub fn heartbeats_seen(&self) -> u64 {
        self.recorder.lock().heartbeats
    }

    /// Protocol breaches detected so far (each also ended its stream with an error).
    pub fn violations(&self) -> Vec<Violation> {
        self.recorder.lock().violations.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.recorder.lock().connections
    }

    /// The last checkpoint the mock sent for `conversation_id`.
    pub fn checkpoint(&self, conversation_id: &str) -> Option<Bytes> {
        self.recorder
            .lock()
            .checkpoints
            .get(conversation_id)
            .and_then(|all| all.last().cloned())
    }

    /// Stops serving now (same as dropping).
    pub fn shutdown(self) {}
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // The accept task owns every connection task (JoinSet), so this stops them all.
        self.task.abort();
        // RunSSE turns hold the shared state; aborting them releases it.
        self.turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                shared.recorder.lock().connections += 1;
                connections.spawn(connection(tcp, shared.clone(), acceptor.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connection(
    tcp: TcpStream,
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
) {
    match acceptor {
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
            let Ok(Ok(tls)) = handshake else { return };
            // Cursor's SDK makes its REST and some unary calls with `fetch` (ALPN http/1.1)
            // and its Connect streams over HTTP/2, on the same host.
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                serve_h2(tls, shared).await;
            } else {
                crate::http1::serve(tls, shared).await;
            }
        }
        None => {
            if !shared.settings.http1_only && starts_with_h2_preface(&tcp).await {
                serve_h2(tcp, shared).await;
            } else {
                crate::http1::serve(tcp, shared).await;
            }
        }
    }
}

/// Whether a cleartext client opens with the HTTP/2 connection preface (prior knowledge), as
/// opposed to an HTTP/1.1 request line. Waits at most 10 s for the first bytes.
async fn starts_with_h2_preface(tcp: &TcpStream) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0";
    let mut buf = [0u8; PREFACE.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // `peek` returns what has arrived so far; a request line differs from the preface within its
    // first bytes, so wait only until the bytes seen decide it.
    loop {
        let peeked = tokio::time::timeout_at(deadline, tcp.peek(&mut buf)).await;
        let Ok(Ok(n)) = peeked else { return true };
        if n == 0 || buf[..n] != PREFACE[..n] {
            return n != 0 && buf[..n] == PREFACE[..n];
        }
        if n == PREFACE.len() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Connection-level actions a stream's script can ask for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConnCommand {
    GoAway(u32),
    Drop,
}

async fn serve_h2<T>(io: T, shared: Arc<Shared>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let s = &shared.settings;
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(s.stream_window)
        .initial_connection_window_size(s.connection_window)
        .max_frame_size(s.max_frame_size)
        .max_concurrent_streams(256);
    let handshake =
        tokio::time::timeout(Duration::from_secs(10), builder.handshake::<_, Bytes>(io));
    let Ok(Ok(mut conn)) = handshake.await else {
        return;
    };
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ConnCommand>(4);
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    streams.spawn(route(shared.clone(), request, respond, ctl_tx.clone()));
                }
                Some(Err(_)) | None => break,
            },
            Some(command) = ctl_rx.recv() => match command {
                ConnCommand::GoAway(code) => conn.abrupt_shutdown(Reason::from(code)),
                ConnCommand::Drop => return,
            },
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
        }
    }
}

async fn route(
    shared: Arc<Shared>,
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    ctl: mpsc::Sender<ConnCommand>,
) {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let call = shared.recorder.start_call(&path, parts.headers.clone());
    let header = parts
        .headers
        .get(SCENARIO_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if path == RUN_PATH {
        crate::run::serve(
            shared.clone(),
            call,
            &parts.headers,
            header,
            body,
            respond,
            ctl,
        )
        .await;
    } else if path == paths::AISERVER_STREAM_UNIFIED_CHAT_WITH_TOOLS.path {
        crate::legacy::serve_h2(shared.clone(), call, header, body, respond).await;
    } else if crate::unary::serves(&path) {
        crate::unary::serve(&shared, call, &path, &parts.headers, header, body, respond).await;
    } else if crate::rest::serves(&path) {
        let reply = crate::rest::answer(&shared, &parts.method, &path, &parts.headers);
        crate::unary::respond_reply(respond, reply).await;
    } else if crate::oauth::serves(&path) {
        crate::oauth::serve_h2(&shared, call, &parts.method, body, respond).await;
    } else {
        let reply = crate::unary::unexpected(&shared, call, &parts.method, &path);
        crate::unary::respond_reply(respond, reply).await;
    }
    shared.recorder.update(call, |c| c.finished = true);
}
