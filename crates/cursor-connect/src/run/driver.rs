//! The task that drives one Run stream: it answers everything the server expects from a
//! client (heartbeats, KV, request context, declined execs, interaction queries) on its own,
//! and hands the caller events through a bounded queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::{Code, ConnectError, TransportCause, TransportKind};
use cursor_proto::agent::v1 as pb;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::event::{Event, ToolCall, ToolResult, Usage};
use super::wire::{RecvSide, SendSide};
use super::{AbortOnDrop, INBOUND_QUEUE, Opener, exec, read_loop};
use crate::blob::BlobStore;
use crate::error::{Error, ErrorKind};

/// At most this many tool calls may wait for the caller at once; more are declined.
const MAX_PENDING_CALLS: usize = 256;

/// How the client answers the server's interaction queries (web search, mode switch, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InteractionPolicy {
    /// Reject every query (the default: a library has no user to ask).
    #[default]
    RejectAll,
    /// Approve every query.
    ApproveAll,
}

/// Settings the driver needs, fixed for the run.
#[derive(Debug, Clone)]
pub(crate) struct DriverConfig {
    pub(crate) heartbeat_interval: Duration,
    pub(crate) stall_timeout: Duration,
    /// How long a turn may go without output (text, thinking, a tool call) while the server
    /// only keeps the stream alive; `None`: no limit.
    pub(crate) first_output_timeout: Option<Duration>,
    pub(crate) blob_store: Arc<dyn BlobStore>,
    pub(crate) interaction_policy: InteractionPolicy,
    pub(crate) request_context: pb::RequestContext,
    pub(crate) tool_names: Vec<String>,
}

/// What the driver hands the caller.
#[derive(Debug)]
pub(crate) enum Item {
    Event(Event),
    /// `turn_ended` was seen and the stream ended cleanly.
    End,
    Failed(Error),
}

/// What the caller asks the driver to do.
#[derive(Debug)]
pub(crate) enum Command {
    Respond {
        call_id: String,
        result: ToolResult,
        ack: oneshot::Sender<Result<(), Error>>,
    },
    Cancel {
        reason: String,
        ack: oneshot::Sender<Result<(), Error>>,
    },
}

/// What the reader task forwards: one inbound message, a clean end, or the stream's error.
pub(crate) type Inbound = Result<Option<Bytes>, ConnectError>;

/// Why the driver loop woke up.
enum Wake {
    Command(Option<Command>),
    Heartbeat,
    Delivered,
    Inbound(Option<Inbound>),
    Stalled,
    NoOutput,
}

#[derive(Debug, Clone)]
struct PendingCall {
    id: u32,
    exec_id: String,
    /// When the server asked, for `local_execution_time_ms`.
    asked: Instant,
}

pub(crate) struct Driver {
    cfg: DriverConfig,
    opener: Opener,
    send: Option<SendSide>,
    inbound: mpsc::Receiver<Inbound>,
    reader: AbortOnDrop,
    received_any: bool,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Item>,
    pending: VecDeque<Event>,
    calls: HashMap<String, PendingCall>,
    aborted: HashSet<String>,
    last_checkpoint: Option<Bytes>,
    turn_ended: bool,
    canceled: bool,
    output_started: bool,
}

impl Driver {
    pub(crate) fn new(
        cfg: DriverConfig,
        opener: Opener,
        send: SendSide,
        recv: RecvSide,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Item>,
    ) -> Self {
        let (inbound, reader) = spawn_reader(recv);
        Self {
            cfg,
            opener,
            send: Some(send),
            inbound,
            reader,
            received_any: false,
            commands,
            events,
            pending: VecDeque::new(),
            calls: HashMap::new(),
            aborted: HashSet::new(),
            last_checkpoint: None,
            turn_ended: false,
            canceled: false,
            output_started: false,
        }
    }

    /// Re-opens the stream after a failure that proves the server never processed the request
    /// (REFUSED_STREAM, GOAWAY past our stream) and before it sent anything.
    async fn reopen(&mut self) -> Result<(), Error> {
        let (send, recv) = self.opener.open().await?;
        tracing::debug!(
            request_id = self.opener.ids.request_id(),
            "run stream re-opened"
        );
        let (inbound, reader) = spawn_reader(recv);
        self.send = Some(send);
        self.inbound = inbound;
        self.reader = reader;
        Ok(())
    }

    pub(crate) async fn run(mut self) {
        let outcome = self.run_loop().await;
        // A failed stream is reset right away (dropping the send half sends RST_STREAM CANCEL)
        // instead of waiting until the caller has read the queued events.
        if outcome.is_err() {
            self.send = None;
        }
        self.commands.close();
        while let Some(event) = self.pending.pop_front() {
            if self.events.send(Item::Event(event)).await.is_err() {
                return;
            }
        }
        let last = match outcome {
            Ok(()) => Item::End,
            Err(e) => {
                tracing::debug!(error = %e, "agent run failed");
                Item::Failed(e)
            }
        };
        let _ = self.events.send(last).await;
    }

    async fn run_loop(&mut self) -> Result<(), Error> {
        let hb = self.cfg.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + hb, hb);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_inbound = Instant::now();
        let mut commands_open = true;
        // Heartbeats reset the stall timer, so a server that keeps the stream alive without ever
        // answering would hold a turn forever; this deadline bounds the wait for the first output.
        let output_due = self.cfg.first_output_timeout.map(|t| Instant::now() + t);
        loop {
            let stall_at = last_inbound + self.cfg.stall_timeout;
            let no_output_at = output_due.filter(|_| !self.output_started);
            let wake = tokio::select! {
                biased;
                cmd = self.commands.recv(), if commands_open => Wake::Command(cmd),
                _ = heartbeat.tick(), if !self.turn_ended => Wake::Heartbeat,
                permit = self.events.reserve(), if !self.pending.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.pending.pop_front() {
                            permit.send(Item::Event(event));
                        }
                        Wake::Delivered
                    }
                    // The caller dropped the run; nothing left to do.
                    Err(_) => return Err(Error::usage("run dropped")),
                },
                msg = self.inbound.recv(), if self.pending.is_empty() => Wake::Inbound(msg),
                () = tokio::time::sleep_until(stall_at), if self.pending.is_empty() => Wake::Stalled,
                () = sleep_until_some(no_output_at), if self.pending.is_empty() => Wake::NoOutput,
            };
            match wake {
                Wake::Command(Some(cmd)) => self.command(cmd).await?,
                Wake::Command(None) => commands_open = false,
                Wake::Heartbeat => {
                    let beat =
                        pb::agent_client_message::Message::ClientHeartbeat(pb::ClientHeartbeat {});
                    self.send(client_message(beat)).await?;
                }
                Wake::Delivered => {
                    if self.pending.is_empty() {
                        // Time spent waiting for the caller is not the server's silence.
                        last_inbound = Instant::now();
                    }
                }
                Wake::Inbound(msg) => {
                    last_inbound = Instant::now();
                    match msg {
                        Some(Ok(Some(bytes))) => {
                            self.received_any = true;
                            self.on_message(bytes).await?;
                        }
                        Some(Ok(None)) => return self.on_clean_end(),
                        Some(Err(e)) => {
                            // HTTP/2 failed before any answer (a proxy that speaks only
                            // HTTP/1.1 fails the handshake only once we read), or a streamed
                            // HTTP/1.1 response is held back by a buffering proxy: `Auto`
                            // moves the run to the next transport.
                            if !self.received_any && self.opener.falls_back(&e) {
                                self.opener.record_fallback(&e);
                                self.reopen().await?;
                                continue;
                            }
                            let safe = e.transport_cause().is_some_and(|c| c.retry_safe);
                            if safe && !self.received_any && self.opener.can_retry() {
                                tracing::debug!(error = %e, "run stream refused before any message");
                                self.reopen().await?;
                                continue;
                            }
                            return Err(Error::call(ErrorKind::Call, e, !self.output_started));
                        }
                        None => {
                            return Err(Error::new(ErrorKind::Protocol, "stream reader stopped"));
                        }
                    }
                }
                Wake::Stalled => return Err(self.stalled()),
                Wake::NoOutput => return Err(self.no_output()),
            }
        }
    }

    fn on_clean_end(&mut self) -> Result<(), Error> {
        if self.turn_ended {
            return Ok(());
        }
        let (code, msg) = if self.canceled {
            (Code::Canceled, "run canceled before turn_ended")
        } else {
            (Code::Internal, "stream ended cleanly without turn_ended")
        };
        let err = ConnectError::new(code, msg);
        Err(Error::call(
            ErrorKind::MissingTurnEnded,
            err,
            !self.output_started,
        ))
    }

    fn no_output(&self) -> Error {
        let secs = self
            .cfg
            .first_output_timeout
            .unwrap_or_default()
            .as_secs_f64();
        let cause = TransportCause::new(TransportKind::Timeout).response_started(true);
        let err = ConnectError::transport(
            Code::DeadlineExceeded,
            format!("no output within {secs:.1}s (the server only kept the stream alive)"),
            cause,
        );
        Error::call(ErrorKind::Stalled, err, true)
    }

    fn stalled(&self) -> Error {
        let secs = self.cfg.stall_timeout.as_secs_f64();
        let cause = TransportCause::new(TransportKind::Timeout).response_started(true);
        let err = ConnectError::transport(
            Code::DeadlineExceeded,
            format!("no inbound frame for {secs:.1}s"),
            cause,
        );
        Error::call(ErrorKind::Stalled, err, !self.output_started)
    }

    async fn send(&mut self, msg: pb::AgentClientMessage) -> Result<(), Error> {
        let Some(send) = self.send.as_mut() else {
            return Ok(());
        };
        let bytes = Bytes::from(msg.encode_to_vec());
        match tokio::time::timeout(self.cfg.stall_timeout, send.send(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::call(ErrorKind::Call, e, !self.output_started)),
            Err(_) => Err(self.stalled()),
        }
    }

    /// Sends an answer to an exec. A result carries how long it took and is followed by
    /// `stream_close` for its id, as Cursor's SDK does (reference §"exec": practice differs
    /// between clients; the SDK is the referee).
    async fn send_exec(
        &mut self,
        mut msg: pb::AgentClientMessage,
        asked: Instant,
    ) -> Result<(), Error> {
        let mut result_id = None;
        if let Some(pb::agent_client_message::Message::ExecClientMessage(e)) = msg.message.as_mut()
        {
            let ms = asked.elapsed().as_millis();
            e.local_execution_time_ms = Some(i32::try_from(ms).unwrap_or(i32::MAX));
            result_id = Some(e.id);
        }
        self.send(msg).await?;
        match result_id {
            Some(id) => self.send(exec::stream_close(id)).await,
            None => Ok(()),
        }
    }

    fn emit(&mut self, event: Event) {
        if matches!(
            event,
            Event::TextDelta(_) | Event::ThinkingDelta(_) | Event::ToolCall(_)
        ) {
            self.output_started = true;
        }
        self.pending.push_back(event);
    }

    async fn command(&mut self, cmd: Command) -> Result<(), Error> {
        match cmd {
            Command::Respond {
                call_id,
                result,
                ack,
            } => {
                let Some(call) = self.calls.remove(&call_id) else {
                    let r = if self.aborted.remove(&call_id) {
                        tracing::debug!(call_id, "result for a call the server aborted dropped");
                        Ok(())
                    } else {
                        Err(Error::usage(format!(
                            "no outstanding tool call with id {call_id:?}"
                        )))
                    };
                    let _ = ack.send(r);
                    return Ok(());
                };
                let msg = exec::mcp_result(call.id, call.exec_id, &result);
                let r = self.send_exec(msg, call.asked).await;
                let _ = ack.send(r.clone());
                r
            }
            Command::Cancel { reason, ack } => {
                self.canceled = true;
                let action = pb::ConversationAction {
                    action: Some(pb::conversation_action::Action::CancelAction(
                        pb::CancelAction { reason },
                    )),
                    ..Default::default()
                };
                let r = self
                    .send(client_message(
                        pb::agent_client_message::Message::ConversationAction(action),
                    ))
                    .await;
                let _ = ack.send(r.clone());
                r
            }
        }
    }

    async fn on_message(&mut self, bytes: Bytes) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        let msg = pb::AgentServerMessage::decode(bytes)
            .map_err(|e| Error::protocol("undecodable AgentServerMessage", e))?;
        use pb::agent_server_message::Message as M;
        match msg.message {
            Some(M::InteractionUpdate(u)) => self.on_update(u).await,
            Some(M::ExecServerMessage(e)) => self.on_exec(e).await,
            Some(M::ConversationCheckpointUpdate(cp)) => {
                self.on_checkpoint(cp);
                Ok(())
            }
            Some(M::KvServerMessage(kv)) => {
                let reply = exec::kv_reply(&*self.cfg.blob_store, kv);
                self.send(reply).await
            }
            Some(M::ExecServerControlMessage(c)) => {
                if let Some(pb::exec_server_control_message::Message::Abort(a)) = c.message {
                    let aborted: Vec<String> = self
                        .calls
                        .iter()
                        .filter(|(_, c)| c.id == a.id)
                        .map(|(k, _)| k.clone())
                        .collect();
                    // Bounded: a peer that keeps creating and aborting calls cannot grow it.
                    if self.aborted.len() >= MAX_PENDING_CALLS * 4 {
                        self.aborted.clear();
                    }
                    for k in aborted {
                        tracing::debug!(call_id = k, "server aborted a tool call");
                        self.calls.remove(&k);
                        self.aborted.insert(k);
                    }
                }
                Ok(())
            }
            Some(M::InteractionQuery(q)) => {
                let reply = exec::interaction_reply(q, self.cfg.interaction_policy);
                self.send(reply).await
            }
            None => Ok(()),
        }
    }

    async fn on_update(&mut self, u: pb::InteractionUpdate) -> Result<(), Error> {
        use pb::interaction_update::Message as U;
        match u.message {
            Some(U::TextDelta(t)) if t.is_server_notice => self.emit(Event::Notice(t.text)),
            Some(U::TextDelta(t)) if !t.text.is_empty() => self.emit(Event::TextDelta(t.text)),
            Some(U::ThinkingDelta(t)) if !t.text.is_empty() => {
                self.emit(Event::ThinkingDelta(t.text))
            }
            Some(U::ThinkingCompleted(_)) => self.emit(Event::ThinkingCompleted),
            Some(U::TokenDelta(t)) => {
                self.emit(Event::TokenDelta(u64::try_from(t.tokens).unwrap_or(0)))
            }
            Some(U::TurnEnded(t)) if !self.turn_ended => {
                self.turn_ended = true;
                self.emit(Event::TurnEnded(Usage::from_proto(&t)));
                // Nothing more to say: half-close so the server can end the stream.
                if let Some(send) = self.send.as_mut() {
                    let _ = tokio::time::timeout(self.cfg.stall_timeout, send.close_send()).await;
                }
            }
            // Heartbeats only reset the stall timer (done by the caller of this function).
            Some(other) => {
                if let Some(event) = super::activity::event(other) {
                    self.emit(event);
                }
            }
            None => {}
        }
        Ok(())
    }

    fn on_checkpoint(&mut self, cp: Bytes) {
        if self.turn_ended {
            // A checkpoint after turn_ended is not resume-eligible (reference §5 quirks).
            tracing::debug!(len = cp.len(), "checkpoint after turn_ended ignored");
            return;
        }
        if self.last_checkpoint.as_ref() == Some(&cp) {
            return;
        }
        self.last_checkpoint = Some(cp.clone());
        self.emit(Event::Checkpoint(cp));
    }

    async fn on_exec(&mut self, e: pb::ExecServerMessage) -> Result<(), Error> {
        use pb::exec_server_message::Message as X;
        let (id, exec_id) = (e.id, e.exec_id);
        let asked = Instant::now();
        match e.message {
            Some(X::RequestContextArgs(_)) => {
                let reply =
                    exec::request_context_result(id, exec_id, self.cfg.request_context.clone());
                self.send_exec(reply, asked).await
            }
            Some(X::McpArgs(args)) => {
                let Some(name) =
                    exec::resolve_tool(&self.cfg.tool_names, &args.tool_name, &args.name)
                else {
                    let shown = if args.tool_name.is_empty() {
                        &args.name
                    } else {
                        &args.tool_name
                    };
                    let reply = exec::mcp_tool_not_found(id, exec_id, shown, &self.cfg.tool_names);
                    return self.send_exec(reply, asked).await;
                };
                if self.calls.len() >= MAX_PENDING_CALLS {
                    let reply = exec::mcp_result(
                        id,
                        exec_id,
                        &ToolResult::error("too many outstanding tool calls"),
                    );
                    return self.send_exec(reply, asked).await;
                }
                let mut call_id = if args.tool_call_id.is_empty() {
                    format!("exec-{id}")
                } else {
                    args.tool_call_id.clone()
                };
                while self.calls.contains_key(&call_id) {
                    call_id.push('+');
                }
                let arguments = exec::args_json(&args.args);
                self.calls
                    .insert(call_id.clone(), PendingCall { id, exec_id, asked });
                self.emit(Event::ToolCall(ToolCall {
                    id: call_id,
                    name,
                    arguments,
                }));
                Ok(())
            }
            other => {
                let reply = exec::decline(id, exec_id, other);
                self.send_exec(reply, asked).await
            }
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn spawn_reader(recv: RecvSide) -> (mpsc::Receiver<Inbound>, AbortOnDrop) {
    let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
    (rx, AbortOnDrop(tokio::spawn(read_loop(recv, tx))))
}

pub(crate) fn client_message(m: pb::agent_client_message::Message) -> pb::AgentClientMessage {
    pb::AgentClientMessage { message: Some(m) }
}
