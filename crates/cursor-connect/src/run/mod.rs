//! Agent runs: `agent.v1.AgentService/Run` over one HTTP/2 bidi stream, or the HTTP/1.1 shim
//! (`RunSSE` + `BidiAppend`); the driver sees one seam ([`wire`]) either way.

mod activity;
mod driver;
mod event;
mod exec;
mod request;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::{Code, ConnectError, Encoding, TransportCause, TransportKind};
use cursor_connect_h2::CallOptions;
use cursor_connect_http1::ShimOptions;
use cursor_proto::agent::v1 as pb;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use activity::{ToolActivity, ToolPhase};
pub use driver::InteractionPolicy;
pub use event::{Event, ToolCall, ToolResult, Usage};
pub(crate) use request::PROVIDER;
pub use request::{
    HistoryMessage, HistoryMode, ImageInput, RunRequest, ToolDefinition, flatten_history,
};
pub(crate) use wire::{RecvSide, SendSide};

use crate::client::ClientInner;
use crate::config::HeaderStyle;
use crate::error::{Error, ErrorKind};
use crate::ids::{RequestIds, uuid_v4};
use crate::transport::{Transport, http2_unavailable, stream_buffered};
use driver::{Command, Driver, DriverConfig, Inbound, Item};

/// How many events may wait for the caller before the client stops reading the stream
/// (HTTP/2 flow control then holds the server back; heartbeats and answers continue).
const EVENT_QUEUE: usize = 256;
/// Inbound messages buffered between the reader and the driver.
pub(crate) const INBOUND_QUEUE: usize = 16;
/// Attempts to open the stream when the failure is provably retry-safe (REFUSED_STREAM,
/// GOAWAY before our stream): the request was not processed, so a fresh attempt is invisible.
const OPEN_ATTEMPTS: u32 = 3;

/// Starts agent runs; get one from [`CursorClient::agent`](crate::CursorClient::agent).
#[derive(Clone)]
pub struct AgentClient {
    pub(crate) inner: Arc<ClientInner>,
}

impl fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentClient").finish_non_exhaustive()
    }
}

impl AgentClient {
    /// Opens a Run stream, sends the run request and starts the background work (heartbeats,
    /// KV, execs). Events come from [`Run::next_event`].
    pub async fn run(&self, request: RunRequest) -> Result<Run, Error> {
        let inner = &self.inner;
        let style = inner.header_config.style();
        let conversation_id = request
            .conversation_id
            .clone()
            .unwrap_or_else(|| match style {
                // The SDK's local agents are named `agent-<uuid>`.
                HeaderStyle::Sdk => format!("agent-{}", uuid_v4()),
                _ => uuid_v4(),
            });
        let tools: Vec<pb::McpToolDefinition> =
            request.tools.iter().map(ToolDefinition::to_proto).collect();
        let mut ctx = inner.request_context.clone();
        ctx.tools = tools;
        let ids = RequestIds::new();
        let run_id = ids.original_request_id().to_owned();
        let run_request = request.to_proto_as(style, &conversation_id, ctx.clone(), &run_id);
        let first =
            driver::client_message(pb::agent_client_message::Message::RunRequest(run_request));
        let first = Bytes::from(first.encode_to_vec());

        let mut opener = Opener {
            inner: inner.clone(),
            first,
            ids,
            attempts: 0,
            used: Transport::Http2,
            fallback: None,
            shared: Arc::default(),
        };
        let (send, recv) = opener.open().await?;
        tracing::debug!(
            request_id = opener.ids.request_id(),
            conversation_id = conversation_id.as_str(),
            model = request.model(),
            transport = opener.used.as_str(),
            "agent run opened"
        );
        let transport = opener.shared.clone();
        let request_ids = opener.ids.clone();
        let cfg = DriverConfig {
            heartbeat_interval: inner.heartbeat_interval,
            stall_timeout: inner.stall_timeout,
            first_output_timeout: inner.first_output_timeout,
            blob_store: inner.blob_store.clone(),
            interaction_policy: inner.interaction_policy,
            request_context: ctx,
            tool_names: request.tools.iter().map(|t| t.name.clone()).collect(),
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let driver = tokio::spawn(Driver::new(cfg, opener, send, recv, cmd_rx, ev_tx).run());
        Ok(Run {
            events: ev_rx,
            commands: cmd_tx,
            terminal: None,
            checkpoint: None,
            conversation_id,
            request_ids,
            ack_timeout: inner.stall_timeout + Duration::from_secs(5),
            transport,
            _driver: AbortOnDrop(driver),
        })
    }
}

/// Opens the Run stream and sends the run request; reused for transparent re-opens.
pub(crate) struct Opener {
    inner: Arc<ClientInner>,
    first: Bytes,
    pub(crate) ids: RequestIds,
    attempts: u32,
    /// The transport of the last open.
    pub(crate) used: Transport,
    /// Why that transport is HTTP/1.1 under `Auto`, if it is.
    pub(crate) fallback: Option<String>,
    /// The transport of the open that succeeded last, shared with the [`Run`].
    shared: Arc<std::sync::Mutex<(Transport, Option<String>)>>,
}

impl Opener {
    /// Whether another attempt is allowed.
    pub(crate) fn can_retry(&self) -> bool {
        self.attempts < OPEN_ATTEMPTS
    }

    /// Opens a stream (retrying refused opens) and sends the run request on it. Every
    /// attempt after the first gets a fresh `x-request-id`. Under `Transport::Auto`, an HTTP/2
    /// open that shows HTTP/2 is not available falls back to the HTTP/1.1 shim.
    pub(crate) async fn open(&mut self) -> Result<(SendSide, RecvSide), Error> {
        loop {
            if self.attempts > 0 {
                self.ids.next_attempt();
            }
            self.attempts += 1;
            let choice = self.inner.transport_choice().await?;
            self.used = choice.transport;
            self.fallback = choice.reason;
            let token = self.inner.credentials.current().await?;
            let headers = self.inner.header_config.headers(&token, &self.ids)?;
            let attempt = async {
                match self.used {
                    Transport::Http1Stream | Transport::Http1Poll => self.open_http1(headers).await,
                    _ => self.open_http2(headers).await,
                }
            };
            // The transport bounds connecting; this bounds the whole open, flow control included.
            let limit = self.inner.stall_timeout;
            let e = match tokio::time::timeout(limit, attempt).await {
                Ok(Ok(halves)) => {
                    if let Ok(mut g) = self.shared.lock() {
                        *g = (self.used, self.fallback.clone());
                    }
                    return Ok(halves);
                }
                Ok(Err(e)) => e,
                Err(_) => {
                    let cause = TransportCause::new(TransportKind::Timeout);
                    let msg = format!(
                        "opening the run stream took over {:.1}s",
                        limit.as_secs_f64()
                    );
                    let err = ConnectError::transport(Code::DeadlineExceeded, msg, cause);
                    return Err(Error::call(ErrorKind::Stalled, err, true));
                }
            };
            if self.falls_back(&e) {
                self.record_fallback(&e);
                continue;
            }
            let retry_safe = e.transport_cause().is_some_and(|c| c.retry_safe);
            if !(retry_safe && self.can_retry()) {
                return Err(Error::call(ErrorKind::Call, e, true));
            }
            tracing::debug!(attempt = self.attempts, error = %e, "run stream refused; retrying");
        }
    }

    /// Whether `e`, before any message, means `Auto` should move this run on: HTTP/2 is
    /// unavailable (to HTTP/1.1), or HTTP/1.1 streaming comes buffered (to polling).
    pub(crate) fn falls_back(&self, e: &ConnectError) -> bool {
        self.inner.transport == Transport::Auto
            && match self.used {
                Transport::Http2 => http2_unavailable(e),
                Transport::Http1Stream => stream_buffered(e),
                _ => false,
            }
    }

    /// Records the failure behind a fallback so the next open takes the next transport.
    pub(crate) fn record_fallback(&self, e: &ConnectError) {
        if self.used == Transport::Http2 {
            self.inner.http2_failed(e);
        } else {
            self.inner.stream_was_buffered(e);
        }
    }

    async fn open_http2(
        &self,
        headers: http::HeaderMap,
    ) -> Result<(SendSide, RecvSide), ConnectError> {
        let opts = CallOptions::default().accept_compression(&[Encoding::Gzip]);
        let path = cursor_proto::paths::AGENT_RUN.path;
        let (mut send, recv) = self.inner.agent_channel.bidi(path, headers, opts).await?;
        send.send(self.first.clone()).await?;
        Ok((SendSide::H2(send), RecvSide::H2(recv)))
    }

    /// Starts `RunSSE` (or the first `RunPoll`; its request goes out at once) and appends the
    /// run request as seqno 0, without waiting for the response head, as Cursor's clients do.
    async fn open_http1(
        &self,
        mut headers: http::HeaderMap,
    ) -> Result<(SendSide, RecvSide), ConnectError> {
        // The CLI marks its HTTP/1.1 runs as streaming (without it text may come as KV blobs).
        headers.insert(
            http::HeaderName::from_static("x-cursor-streaming"),
            http::HeaderValue::from_static("true"),
        );
        let mut opts = ShimOptions::default();
        opts.stream.head_timeout = self.inner.stall_timeout;
        opts.append.encoding = self.inner.append_encoding;
        if let Some(base) = self.inner.append_deadline {
            opts.append.deadline_base = base;
        }
        if self.inner.transport == Transport::Auto {
            // Room to fall back to polling before the stall timer gives up on the run.
            opts.stream.first_byte_timeout = Some(self.inner.stall_timeout / 2);
        }
        let append = cursor_proto::paths::AISERVER_BIDI_APPEND.path;
        let channel = &self.inner.http1_agent;
        let id = self.ids.request_id();
        let (mut appender, recv) = if self.used == Transport::Http1Poll {
            let path = cursor_proto::paths::AGENT_RUN_POLL.path;
            let (a, p) = channel.poll(path, append, headers, id, opts);
            (a, RecvSide::H1Poll(Box::new(p)))
        } else {
            let path = cursor_proto::paths::AGENT_RUN_SSE.path;
            let (a, s) = channel.shim(path, append, headers, id, opts);
            (a, RecvSide::H1(s))
        };
        appender.send(self.first.clone()).await?;
        Ok((SendSide::H1(appender), recv))
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

pub(crate) async fn read_loop(mut rx: RecvSide, tx: mpsc::Sender<Inbound>) {
    loop {
        let item = rx.message().await;
        let last = !matches!(item, Ok(Some(_)));
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

/// Aborts a background task when its owner goes away, so no task outlives its run.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One running agent turn.
///
/// Read events with [`Run::next_event`] until it returns `Ok(None)` (the turn ended and the
/// stream closed cleanly) or an error. Errors are sticky: every later call returns the same
/// error. Dropping a `Run` cancels the stream.
pub struct Run {
    events: mpsc::Receiver<Item>,
    commands: mpsc::Sender<Command>,
    terminal: Option<Result<(), Error>>,
    checkpoint: Option<Bytes>,
    conversation_id: String,
    request_ids: RequestIds,
    ack_timeout: Duration,
    transport: Arc<std::sync::Mutex<(Transport, Option<String>)>>,
    _driver: AbortOnDrop,
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("conversation_id", &self.conversation_id)
            .field("request_id", &self.request_ids.request_id())
            .field("finished", &self.terminal.is_some())
            .field("transport", &self.transport())
            .finish_non_exhaustive()
    }
}

impl Run {
    /// The next event; `Ok(None)` only after [`Event::TurnEnded`] and a clean end of stream.
    ///
    /// A stream that ends without `turn_ended`, ends with an error (even after data), or goes
    /// silent for the stall timeout yields an error, never `Ok(None)`.
    pub async fn next_event(&mut self) -> Result<Option<Event>, Error> {
        if let Some(t) = &self.terminal {
            return t.clone().map(|()| None);
        }
        let item = self.events.recv().await;
        match item {
            Some(Item::Event(event)) => {
                if let Event::Checkpoint(cp) = &event {
                    self.checkpoint = Some(cp.clone());
                }
                Ok(Some(event))
            }
            Some(Item::End) => {
                self.terminal = Some(Ok(()));
                Ok(None)
            }
            Some(Item::Failed(e)) => {
                self.terminal = Some(Err(e.clone()));
                Err(e)
            }
            None => {
                let e = Error::new(ErrorKind::Protocol, "run driver stopped unexpectedly");
                self.terminal = Some(Err(e.clone()));
                Err(e)
            }
        }
    }

    /// Sends the result of tool call `call_id` on the same stream; the turn continues.
    pub async fn respond(&mut self, call_id: &str, result: ToolResult) -> Result<(), Error> {
        let (ack, done) = oneshot::channel();
        self.command(
            Command::Respond {
                call_id: call_id.to_owned(),
                result,
                ack,
            },
            done,
        )
        .await
    }

    /// Asks the server to cancel the turn (`conversation_action{cancel_action}`). Keep reading
    /// events: the run ends with `TurnEnded` or a `canceled` error.
    pub async fn cancel(&mut self) -> Result<(), Error> {
        let (ack, done) = oneshot::channel();
        self.command(
            Command::Cancel {
                reason: "canceled by client".to_owned(),
                ack,
            },
            done,
        )
        .await
    }

    async fn command(
        &mut self,
        cmd: Command,
        done: oneshot::Receiver<Result<(), Error>>,
    ) -> Result<(), Error> {
        if let Some(Err(e)) = &self.terminal {
            return Err(e.clone());
        }
        if self.commands.send(cmd).await.is_err() {
            return Err(Error::usage("the run has already finished"));
        }
        match tokio::time::timeout(self.ack_timeout, done).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::usage("the run has already finished")),
            Err(_) => Err(Error::new(
                ErrorKind::Stalled,
                "the run did not take the command in time",
            )),
        }
    }

    /// The last checkpoint seen (before `turn_ended`): pass it to
    /// [`RunRequest::checkpoint`] for the next turn.
    pub fn checkpoint(&self) -> Option<Bytes> {
        self.checkpoint.clone()
    }

    /// The transport that carries this run: [`Transport::Http2`],
    /// [`Transport::Http1Stream`] or [`Transport::Http1Poll`] (never `Auto`).
    pub fn transport(&self) -> Transport {
        self.transport.lock().map_or(Transport::Http2, |g| g.0)
    }

    /// Why this run is on HTTP/1.1 although the client was built with `Transport::Auto`
    /// (the server config, or the HTTP/2 failure that caused a fallback); `None` otherwise.
    pub fn fallback_reason(&self) -> Option<String> {
        self.transport.lock().ok().and_then(|g| g.1.clone())
    }

    /// The conversation id (keep it for the next turn).
    pub fn conversation_id(&self) -> &str {
        &self.conversation_id
    }

    /// The request ids of the attempt that opened this run (a transparent re-open after a
    /// refused stream uses a fresh `x-request-id` with the same original id).
    pub fn request_ids(&self) -> &RequestIds {
        &self.request_ids
    }
}
