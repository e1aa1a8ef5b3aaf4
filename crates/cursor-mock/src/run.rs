//! `agent.v1.AgentService/Run`: checks the first message, picks the scenario and plays it,
//! answering and checking the client's replies as a real backend would.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cursor_connect_frame::Code;
use h2::RecvStream;
use h2::server::SendResponse;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error_spec::{ErrorSpec, FIRST_MESSAGE_END_STREAM};
use crate::io::{Gone, Inbound, Out, ReaderConfig, read_client};
use crate::ledger::{Accepted, Expect, Key, Ledger};
use crate::scenario::{
    DECLARED_TOOL_ARGUMENTS, ExecKind, Step, TOKEN_DELTA, TOOL_ECHO_PREFIX, ToolCalls, Usage,
    small_pieces,
};
use crate::server::{ConnCommand, Shared};
use crate::wire::{self, ClientMsg, DeclaredTool, RunInfo};

/// How long a finished turn keeps reading the client's trailing messages.
const LINGER: Duration = Duration::from_millis(250);
/// Lets buffered DATA reach the socket before a reset or GOAWAY discards the stream's queue.
const FLUSH_PAUSE: Duration = Duration::from_millis(30);

/// Why a turn stopped early.
#[derive(Debug)]
enum Abort {
    /// The client or the connection went away; nothing more can be sent.
    Gone,
    /// The client broke the protocol: end with `invalid_argument`.
    Violation(String),
    /// The client sent a cancel action.
    Canceled,
}

impl From<Gone> for Abort {
    fn from(_: Gone) -> Self {
        Self::Gone
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    call: usize,
    headers: &http::HeaderMap,
    scenario_header: Option<String>,
    body: RecvStream,
    respond: SendResponse<Bytes>,
    ctl: mpsc::Sender<ConnCommand>,
) {
    let settings = shared.settings.clone();
    let header = |name: &str| crate::io::header_str(headers, name);
    let content_type = header("content-type");
    if !content_type.starts_with("application/connect+proto") {
        let error = ErrorSpec::new(
            Code::Unknown,
            format!("Run needs application/connect+proto, got {content_type:?}"),
        );
        let status = Some(http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
        return crate::unary::respond_error(respond, &error, status).await;
    }
    let compression = match header("connect-content-encoding") {
        "" | "identity" => None,
        "gzip" => Some("gzip"),
        other => {
            let error = ErrorSpec::new(
                Code::Unimplemented,
                format!(
                    "unsupported connect-content-encoding {other:?}; cursor-mock accepts gzip, identity"
                ),
            );
            return crate::unary::respond_error(respond, &error, None).await;
        }
    };

    let (tx, rx) = mpsc::channel(crate::io::READ_AHEAD);
    let (pause_tx, paused) = tokio::sync::watch::channel(false);
    let config = ReaderConfig {
        paused,
        max_message_size: settings.max_message_size,
        compression,
    };
    let _reader = AbortOnDrop(tokio::spawn(read_client(
        body,
        shared.recorder.clone(),
        call,
        config,
        tx,
    )));
    let out = Out::new(respond, settings.write_timeout);
    drive(shared, call, scenario_header, out, rx, pause_tx, Some(ctl)).await;
}

/// Plays a `Run` turn over `out`, with the client's messages arriving on `rx` (from the HTTP/2
/// request body, or from BidiAppend calls for RunSSE). `ctl` reaches the HTTP/2 connection for
/// GOAWAY and drops; without it (HTTP/1.1) those steps abort the response.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    call: usize,
    scenario_header: Option<String>,
    mut out: Out,
    mut rx: mpsc::Receiver<Inbound>,
    pause_tx: tokio::sync::watch::Sender<bool>,
    ctl: Option<mpsc::Sender<ConnCommand>>,
) {
    // Headers go out at once (clients may wait for them before sending), unless the scenario
    // chosen by header starts with a reset, which then comes before any header.
    let early = scenario_header
        .as_deref()
        .and_then(|name| shared.pick(Some(name), None).ok());
    if let Some((_, scenario)) = &early
        && let Some(Step::Reset(code)) = scenario.steps().first()
    {
        out.reset(*code);
        return;
    }
    if out.ensure_headers().is_err() {
        return;
    }

    let Some(info) = first_run_request(&shared, call, &mut out, &mut rx).await else {
        return;
    };

    let (name, scenario) = match shared.pick(scenario_header.as_deref(), Some(&info.model)) {
        Ok(picked) => picked,
        Err(message) => {
            let error = ErrorSpec::new(Code::InvalidArgument, message);
            let _ = out.end_stream(&error.end_stream_json()).await;
            return;
        }
    };
    let model = info.model.clone();
    shared.recorder.update(call, |c| {
        c.scenario = name;
        c.model = Some(model);
    });

    let mut turn = Turn {
        shared: shared.clone(),
        out,
        rx,
        ctl,
        run: *info,
        ledger: Ledger::default(),
        pause: pause_tx,
        next_kv_id: 1,
        next_exec_id: 1,
        next_query_id: 1,
        root_blobs: Vec::new(),
        previous_turns: Vec::new(),
        text: String::new(),
        tokens: 0,
        client_closed: false,
    };
    let outcome = match turn.adopt_checkpoint() {
        Ok(()) => turn.play(scenario.steps()).await,
        Err(abort) => Err(abort),
    };
    turn.conclude(outcome, call).await;
}

/// Waits for the turn's first client message: a run request (returned), or anything else,
/// answered here as Cursor answers it.
async fn first_run_request(
    shared: &Shared,
    call: usize,
    out: &mut Out,
    rx: &mut mpsc::Receiver<Inbound>,
) -> Option<Box<RunInfo>> {
    let first = tokio::time::timeout(shared.settings.reply_timeout, rx.recv()).await;
    match first {
        Ok(Some(Inbound::Msg(ClientMsg::Run(info)))) => Some(info),
        Ok(Some(Inbound::Msg(ClientMsg::Prewarm))) => {
            // Accepted by Cursor; the mock has nothing to warm.
            let _ = out.message(&wire::heartbeat()).await;
            let _ = out.end_stream(b"{}").await;
            None
        }
        Ok(Some(Inbound::Reset)) | Ok(None) => None,
        Ok(Some(other)) => {
            shared.recorder.violation(
                call,
                format!("first message was not a run request: {other:?}"),
            );
            // Exactly what Cursor sends (vector F02): a heartbeat, then the error.
            let _ = out.message(&wire::heartbeat()).await;
            let _ = out.end_stream(FIRST_MESSAGE_END_STREAM.as_bytes()).await;
            None
        }
        Err(_) => {
            let _ = out.message(&wire::heartbeat()).await;
            let error = ErrorSpec::new(Code::DeadlineExceeded, "no run request arrived");
            let _ = out.end_stream(&error.end_stream_json()).await;
            None
        }
    }
}

/// What a step leaves the turn: more steps to play, or the stream is over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next,
    Done,
}

struct Turn {
    shared: Arc<Shared>,
    out: Out,
    rx: mpsc::Receiver<Inbound>,
    ctl: Option<mpsc::Sender<ConnCommand>>,
    run: RunInfo,
    ledger: Ledger,
    pause: tokio::sync::watch::Sender<bool>,
    next_kv_id: u32,
    next_exec_id: u32,
    next_query_id: u32,
    root_blobs: Vec<Bytes>,
    previous_turns: Vec<Bytes>,
    text: String,
    tokens: i64,
    client_closed: bool,
}

impl Turn {
    /// Ends the stream after the script: lingers for late client messages, reports a
    /// violation as an error, or ends a canceled turn as Cursor does (usage, then `{}`).
    async fn conclude(mut self, outcome: Result<(), Abort>, call: usize) {
        match outcome {
            Ok(()) => self.linger().await,
            Err(Abort::Gone) => {}
            Err(Abort::Violation(message)) => {
                self.shared.recorder.violation(call, message.clone());
                let error =
                    ErrorSpec::new(Code::InvalidArgument, format!("cursor-mock: {message}"));
                let _ = self.out.end_stream(&error.end_stream_json()).await;
            }
            Err(Abort::Canceled) => {
                let usage = Usage {
                    output_tokens: self.tokens,
                    ..Usage::default()
                };
                let _ = self.out.message(&wire::turn_ended(usage)).await;
                let _ = self.out.end_stream(b"{}").await;
            }
        }
    }

    /// Checks an echoed checkpoint and takes its root blobs and turns.
    fn adopt_checkpoint(&mut self) -> Result<(), Abort> {
        let Some(state) = self.run.conversation_state.clone() else {
            return Ok(());
        };
        let known = self
            .shared
            .recorder
            .lock()
            .checkpoints
            .get(&self.run.conversation_id)
            .cloned();
        if let Some(sent) = known
            && !sent.contains(&state)
        {
            return Err(Abort::Violation(format!(
                "conversation_state ({} bytes) is not a checkpoint this mock sent for conversation {:?}",
                state.len(),
                self.run.conversation_id
            )));
        }
        if let Some((roots, turns)) = wire::parse_checkpoint(&state) {
            self.root_blobs = roots;
            self.previous_turns = turns;
        }
        Ok(())
    }

    async fn play(&mut self, steps: &[Step]) -> Result<(), Abort> {
        for step in steps {
            self.drain()?;
            if self.step(step).await? == Flow::Done {
                return Ok(());
            }
        }
        // A script without a terminal step ends the stream without an end-stream envelope.
        self.out.finish().await?;
        Ok(())
    }

    /// Plays one step; [`Flow::Done`] after a step that ends the stream.
    async fn step(&mut self, step: &Step) -> Result<Flow, Abort> {
        match step {
            Step::Heartbeat => self.send(wire::heartbeat()).await?,
            Step::KvGetRootPrompt => self.kv_get_root().await?,
            Step::KvSet(data) => self.kv_set(data.clone()).await?,
            Step::RequestContext => self.request_context().await?,
            Step::UnsupportedExec(kind) => self.unsupported_exec(*kind).await?,
            Step::RawExec {
                id,
                exec_id,
                payload,
            } => self.raw_exec(*id, exec_id, payload.clone()).await?,
            Step::InteractionQuery => self.interaction_query().await?,
            Step::ThinkingDelta(text) => self.send(wire::thinking_delta(text)).await?,
            Step::ThinkingCompleted(ms) => self.send(wire::thinking_completed(*ms)).await?,
            Step::TextDelta(text) => {
                self.text.push_str(text);
                self.send(wire::text_delta(text, false)).await?;
            }
            Step::Notice(text) => self.send(wire::text_delta(text, true)).await?,
            Step::TokenDelta(n) => {
                self.tokens += i64::from(*n);
                self.send(wire::token_delta(*n)).await?;
            }
            Step::Text(text) => self.text_pieces(text).await?,
            Step::CallTools(calls) => self.call_tools(calls).await?,
            Step::EchoToolResults => self.echo_tool_results().await?,
            Step::Checkpoint => self.checkpoint().await?,
            Step::CheckpointBytes(bytes) => self.send_checkpoint(bytes.clone()).await?,
            Step::TurnEnded(usage) => {
                self.settle().await?;
                self.send(wire::turn_ended(*usage)).await?;
            }
            Step::RawMessage(payload) => self.send(payload.clone()).await?,
            Step::RawBytes(bytes) => self.out.write(bytes.clone(), false).await?,
            Step::Sleep(duration) => self.pause(*duration, true).await?,
            Step::Stall(duration) => self.pause(*duration, false).await?,
            Step::PauseReading(duration) => self.pause_reading(*duration).await?,
            Step::SplitWrites(n) => self.out.split_writes(*n),
            Step::EndOk
            | Step::EndError(_)
            | Step::Reset(_)
            | Step::GoAway(_)
            | Step::DropConnection
            | Step::FinishWithoutEndStream => {
                self.end(step).await?;
                return Ok(Flow::Done);
            }
        }
        Ok(Flow::Next)
    }

    /// The steps that end the stream: cleanly, with an error, or with a fault.
    async fn end(&mut self, step: &Step) -> Result<(), Abort> {
        match step {
            Step::EndOk => {
                self.settle().await?;
                self.out.end_stream(b"{}").await?;
            }
            Step::EndError(error) => self.out.end_stream(&error.end_stream_json()).await?,
            Step::Reset(code) => {
                if self.out.headers_sent() {
                    tokio::time::sleep(FLUSH_PAUSE).await;
                }
                self.out.reset(*code);
            }
            Step::GoAway(code) => {
                self.out.ensure_headers()?;
                tokio::time::sleep(FLUSH_PAUSE).await;
                self.connection(ConnCommand::GoAway(*code)).await;
            }
            Step::DropConnection => {
                tokio::time::sleep(FLUSH_PAUSE).await;
                self.connection(ConnCommand::Drop).await;
            }
            Step::FinishWithoutEndStream => self.out.finish().await?,
            _ => {}
        }
        Ok(())
    }

    /// The next exec id (from 1: an echoed id 0 could not be told from an absent one).
    fn next_exec(&mut self) -> u32 {
        let id = self.next_exec_id;
        self.next_exec_id += 1;
        id
    }

    async fn request_context(&mut self) -> Result<(), Abort> {
        let id = self.next_exec();
        let exec_id = format!("mock-exec-{id}");
        let expect = Expect::RequestContext {
            exec_id: exec_id.clone(),
        };
        self.ledger.expect(Key::Exec(id), expect);
        self.send(wire::exec_request_context(id, &exec_id)).await?;
        let limit = self.shared.settings.reply_timeout;
        self.wait_pending(limit, "the request-context exec").await
    }

    async fn unsupported_exec(&mut self, kind: ExecKind) -> Result<(), Abort> {
        let id = self.next_exec();
        // Captured MCP-state execs carry no exec_id at all (addenda §2).
        let exec_id = match kind {
            ExecKind::McpState => String::new(),
            _ => format!("mock-exec-{id}"),
        };
        let expect = Expect::Unsupported {
            exec_id: exec_id.clone(),
            kind: kind.name(),
        };
        self.ledger.expect(Key::Exec(id), expect);
        self.send(wire::exec_unsupported(id, &exec_id, kind))
            .await?;
        let limit = self.shared.settings.reply_timeout;
        self.wait_pending(limit, "an exec the client should decline")
            .await
    }

    async fn raw_exec(&mut self, id: u32, exec_id: &str, payload: Bytes) -> Result<(), Abort> {
        let expect = Expect::Unsupported {
            exec_id: exec_id.to_owned(),
            kind: "raw",
        };
        self.ledger.expect(Key::Exec(id), expect);
        self.send(payload).await?;
        let limit = self.shared.settings.reply_timeout;
        self.wait_pending(limit, "a raw exec the client should decline")
            .await
    }

    async fn interaction_query(&mut self) -> Result<(), Abort> {
        let id = self.next_query_id;
        self.next_query_id += 1;
        self.ledger
            .expect(Key::Interaction(id), Expect::Interaction);
        self.send(wire::interaction_query(id)).await?;
        let limit = self.shared.settings.reply_timeout;
        self.wait_pending(limit, "the interaction query").await
    }

    async fn echo_tool_results(&mut self) -> Result<(), Abort> {
        let results = self.ledger.take_tool_results();
        for (_, name, result) in &results {
            self.text_pieces(&format!("{TOOL_ECHO_PREFIX}{name}: {result}"))
                .await?;
        }
        Ok(())
    }

    /// A checkpoint of the conversation so far, as Cursor's carries it (roots, turns, usage).
    async fn checkpoint(&mut self) -> Result<(), Abort> {
        let bytes = wire::checkpoint_state(
            &self.root_blobs,
            &self.previous_turns,
            &self.run.user_text,
            &self.text,
            u32::try_from(self.tokens).unwrap_or(u32::MAX),
        );
        self.send_checkpoint(bytes).await
    }

    /// Stops reading the client's messages for `duration` (flow control then pushes back).
    async fn pause_reading(&mut self, duration: Duration) -> Result<(), Abort> {
        self.pause.send_replace(true);
        let outcome = self.pause(duration, true).await;
        self.pause.send_replace(false);
        outcome
    }

    /// A connection-level fault: on HTTP/2 the connection acts; HTTP/1.1 has neither GOAWAY nor
    /// a second stream to spare, so the response is aborted.
    async fn connection(&mut self, command: ConnCommand) {
        match &self.ctl {
            Some(ctl) => {
                let _ = ctl.send(command).await;
            }
            None => self.out.reset(0),
        }
    }

    /// After the turn, reads (and so records) what the client still sends until it closes its
    /// side, for at most [`LINGER`]: a client's last `stream_close` may trail the end-stream.
    async fn linger(&mut self) {
        let deadline = Instant::now() + LINGER;
        while let Ok(Some(inbound)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            if matches!(inbound, Inbound::Closed | Inbound::Reset) {
                return;
            }
        }
    }

    async fn send(&mut self, payload: Bytes) -> Result<(), Abort> {
        self.out.message(&payload).await.map_err(Abort::from)
    }

    async fn text_pieces(&mut self, text: &str) -> Result<(), Abort> {
        for piece in small_pieces(text) {
            self.text.push_str(&piece);
            self.send(wire::text_delta(&piece, false)).await?;
            self.tokens += i64::from(TOKEN_DELTA);
            self.send(wire::token_delta(TOKEN_DELTA)).await?;
        }
        Ok(())
    }

    async fn send_checkpoint(&mut self, bytes: Bytes) -> Result<(), Abort> {
        self.shared
            .recorder
            .lock()
            .remember_checkpoint(&self.run.conversation_id, bytes.clone());
        self.send(wire::checkpoint(bytes)).await
    }

    async fn kv_get_root(&mut self) -> Result<(), Abort> {
        let id = self.take_kv_id();
        let (blob_id, expect) = match self.root_blobs.first() {
            Some(blob_id) => {
                let data = self.shared.recorder.lock().blobs.get(blob_id).cloned();
                (blob_id.clone(), data)
            }
            None => {
                let seed = format!("cursor-mock root prompt {}", self.run.conversation_id);
                (Bytes::from(Sha256::digest(seed.as_bytes()).to_vec()), None)
            }
        };
        self.ledger.expect(Key::Kv(id), Expect::KvGet(expect));
        self.send(wire::kv_get(id, blob_id)).await?;
        let limit = self.shared.settings.reply_timeout;
        self.wait_pending(limit, "the KV get").await
    }

    async fn kv_set(&mut self, data: Bytes) -> Result<(), Abort> {
        let id = self.take_kv_id();
        let blob_id = Bytes::from(Sha256::digest(&data).to_vec());
        self.shared
            .recorder
            .lock()
            .blobs
            .insert(blob_id.clone(), data.clone());
        if self.root_blobs.is_empty() {
            self.root_blobs.push(blob_id.clone());
        }
        // Cursor does not wait for set acknowledgements; they are collected before turn end.
        self.ledger.expect(Key::Kv(id), Expect::KvSet);
        self.send(wire::kv_set(id, blob_id, data)).await
    }

    fn take_kv_id(&mut self) -> u32 {
        let id = self.next_kv_id;
        self.next_kv_id += 1;
        id
    }

    async fn call_tools(&mut self, calls: &ToolCalls) -> Result<(), Abort> {
        let tools: Vec<(DeclaredTool, String)> = match calls {
            ToolCalls::Declared(max) => self
                .run
                .tools
                .iter()
                .take(*max)
                .map(|t| (t.clone(), DECLARED_TOOL_ARGUMENTS.to_owned()))
                .collect(),
            ToolCalls::Named(specs) => specs
                .iter()
                .map(|spec| {
                    let declared = self.run.tools.iter().find(|t| t.name == spec.name).cloned();
                    let tool = declared.unwrap_or_else(|| DeclaredTool {
                        name: spec.name.clone(),
                        provider: "cursor-mock".to_owned(),
                        tool_name: spec.name.clone(),
                    });
                    (tool, spec.arguments_json.clone())
                })
                .collect(),
        };
        if tools.is_empty() {
            return Ok(());
        }
        // All requests go out before any result, as Cursor does with parallel tool calls.
        for (tool, args) in tools {
            let id = self.next_exec_id;
            self.next_exec_id += 1;
            let exec_id = format!("mock-exec-{id}");
            let call_id = format!("mock-call-{id}");
            self.ledger.expect(
                Key::Exec(id),
                Expect::Mcp {
                    exec_id: exec_id.clone(),
                    name: tool.name.clone(),
                },
            );
            // Arguments that are not a JSON object travel as an empty map (the tool then sees
            // no arguments), as the scenario's own text cannot be repaired here.
            let args = cursor_proto::json::fields_from_json_str(&args).unwrap_or_default();
            let message = wire::exec_mcp(id, &exec_id, &tool, &call_id, args);
            self.send(message).await?;
        }
        let limit = self.shared.settings.tool_timeout;
        self.wait_pending(limit, "MCP tool results").await
    }

    /// Waits for every outstanding answer (KV set acknowledgements included).
    async fn settle(&mut self) -> Result<(), Abort> {
        let limit = self.shared.settings.reply_timeout;
        self.wait_pending(limit, "KV acknowledgements").await
    }

    /// Handles what has already arrived, without waiting.
    fn drain(&mut self) -> Result<(), Abort> {
        while let Ok(inbound) = self.rx.try_recv() {
            self.handle(inbound)?;
        }
        Ok(())
    }

    async fn wait_pending(&mut self, limit: Duration, what: &str) -> Result<(), Abort> {
        let deadline = Instant::now() + limit;
        let every = self.shared.settings.heartbeat_interval;
        let mut beat = tokio::time::interval_at(Instant::now() + every, every);
        while !self.ledger.is_empty() {
            if self.client_closed {
                return Err(Abort::Violation(format!(
                    "the client closed its side while the mock waited for {what}"
                )));
            }
            tokio::select! {
                inbound = self.rx.recv() => match inbound {
                    Some(inbound) => self.handle(inbound)?,
                    None => return Err(Abort::Gone),
                },
                _ = beat.tick() => self.send(wire::heartbeat()).await?,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Abort::Violation(format!(
                        "no answer to {what} within {limit:?} (waiting for {})",
                        self.ledger.describe()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits `duration`, reading client messages; with `heartbeats`, also sends heartbeats.
    async fn pause(&mut self, duration: Duration, heartbeats: bool) -> Result<(), Abort> {
        let deadline = Instant::now() + duration;
        let every = self.shared.settings.heartbeat_interval;
        let mut beat = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            tokio::select! {
                inbound = self.rx.recv() => match inbound {
                    Some(inbound) => self.handle(inbound)?,
                    // The reader finished (half-close seen): only the timer matters now.
                    None => {
                        tokio::select! {
                            () = tokio::time::sleep_until(deadline) => return Ok(()),
                            _ = self.out.reset_by_peer() => return Err(Abort::Gone),
                        }
                    }
                },
                _ = beat.tick(), if heartbeats => self.send(wire::heartbeat()).await?,
                () = tokio::time::sleep_until(deadline) => return Ok(()),
            }
        }
    }

    fn handle(&mut self, inbound: Inbound) -> Result<(), Abort> {
        match inbound {
            Inbound::Msg(msg) => self.handle_msg(msg),
            Inbound::Undecodable(e) => Err(Abort::Violation(format!(
                "undecodable AgentClientMessage: {e}"
            ))),
            Inbound::BadFrame(e) => Err(Abort::Violation(format!("bad request envelope: {e}"))),
            Inbound::Closed => {
                self.client_closed = true;
                Ok(())
            }
            Inbound::Reset => Err(Abort::Gone),
            Inbound::Raw(_) => Err(Abort::Violation(
                "a legacy ChatService message on an agent Run".to_owned(),
            )),
        }
    }

    fn handle_msg(&mut self, msg: ClientMsg) -> Result<(), Abort> {
        match self.ledger.accept(msg) {
            Ok(Accepted::Fine) => Ok(()),
            Ok(Accepted::Cancel) => Err(Abort::Canceled),
            Err(violation) => Err(Abort::Violation(violation)),
        }
    }
}
