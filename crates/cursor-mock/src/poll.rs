//! `RunPoll` over HTTP/1.1: a turn's server messages handed out by long polls, for clients
//! whose network buffers streamed responses.
//!
//! Cursor has never been seen answering `RunPoll`, so the mock serves what `cursor-connect`
//! reads (crate `cursor-connect-http1`, module `poll`): the first poll carries
//! `start_request` and starts the turn (its client messages come by `BidiAppend`, as for
//! RunSSE); every poll is a Connect stream of `BidiPollResponse{seqno, data = hex of one
//! AgentServerMessage, eof}` open for at most the poll window, then ended with `{}`. Seqnos
//! run from 0 across polls; after the turn's last message one more carries `eof`, and the poll
//! that carries it ends with the turn's own end-stream.
//!
//! Strict: a poll for an unknown request id, a second `start_request`, and two polls of one
//! id at once are refused and recorded as violations. A turn nobody polls for the reply
//! timeout is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use cursor_connect_frame::{Code, Decoder, Direction, Encoder, Flags};
use cursor_proto::aiserver::v1 as ai;
use prost::Message as _;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::error_spec::ErrorSpec;
use crate::io::BodyFrame;
use crate::server::Shared;
use crate::sse::{SseAnswer, TurnKind, one_envelope, refuse, refuse_content_type};
use crate::unary::Reply;

/// A fault the mock injects into every polled turn, for clients' error paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollFault {
    /// The message that would get seqno `at` gets `at + 1`: the client sees a gap.
    SkipSeqno {
        /// The seqno left out.
        at: i64,
    },
    /// The message with seqno `at` is sent twice.
    RepeatSeqno {
        /// The seqno repeated.
        at: i64,
    },
    /// The poll that would carry seqno `at` drops its connection instead.
    DropConnection {
        /// The seqno never delivered.
        at: i64,
    },
}

/// Poll messages a turn may queue before the mock stops reading it (the turn then waits on
/// its write deadline, as on a full HTTP/2 window).
const MAX_QUEUED: usize = 1024;

/// One thing a poll hands out.
#[derive(Debug)]
enum Queued {
    Message(ai::BidiPollResponse),
    /// [`PollFault::DropConnection`]: the poll that reaches it aborts its connection.
    Drop,
}

/// How the turn's own response ended.
#[derive(Debug, Clone)]
enum End {
    /// With this end-stream JSON.
    Json(Bytes),
    /// Without an end-stream.
    Bare,
    /// Reset (the connection is aborted).
    Abort,
}

#[derive(Debug)]
struct SessionState {
    queue: VecDeque<Queued>,
    next_seqno: i64,
    end: Option<End>,
    polling: bool,
    last_poll: Instant,
    fault: Option<PollFault>,
}

#[derive(Debug)]
struct Session {
    state: Mutex<SessionState>,
    changed: Notify,
}

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The polled turns by request id.
#[derive(Debug, Default)]
pub(crate) struct PollTable {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl PollTable {
    fn get(&self, id: &str) -> Option<Arc<Session>> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).cloned()
    }

    fn remove(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(id);
    }

    /// Removes `id` if it is still `session` (a new turn may have reused the id since).
    fn remove_session(&self, id: &str, session: &Arc<Session>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.get(id).is_some_and(|s| Arc::ptr_eq(s, session)) {
            sessions.remove(id);
        }
    }

    /// A new session for `id`; `None` when one exists.
    fn create(&self, id: &str, fault: Option<PollFault>) -> Option<Arc<Session>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.contains_key(id) {
            return None;
        }
        let session = Arc::new(Session {
            state: Mutex::new(SessionState {
                queue: VecDeque::new(),
                next_seqno: 0,
                end: None,
                polling: false,
                last_poll: Instant::now(),
                fault,
            }),
            changed: Notify::new(),
        });
        sessions.insert(id.to_owned(), session.clone());
        Some(session)
    }
}

/// The request id and `start_request` of a RunPoll body; `Err` is the answer to give.
fn parse_poll(
    shared: &Shared,
    call: usize,
    headers: &http::HeaderMap,
    body: &Bytes,
) -> Result<(String, bool), Reply> {
    if let Some(refused) = refuse_content_type(headers, "RunPoll") {
        return Err(refused);
    }
    let request = one_envelope(body, "RunPoll")
        .and_then(|m| {
            ai::BidiPollRequest::decode(m)
                .map_err(|e| format!("RunPoll body is not a BidiPollRequest: {e}"))
        })
        .map_err(|message| refuse(shared, call, message))?;
    let id = request.request_id.map(|r| r.request_id).unwrap_or_default();
    if id.is_empty() {
        return Err(refuse(shared, call, "RunPoll without a request_id".into()));
    }
    Ok((id, request.start_request == Some(true)))
}

/// The session a poll reads: a new one (and its turn) for `start_request`, else the one the
/// first poll started. `Err` is the answer to give.
async fn session_for(
    shared: &Arc<Shared>,
    call: usize,
    headers: &http::HeaderMap,
    (id, start): (&str, bool),
    kind: TurnKind,
) -> Result<Arc<Session>, Reply> {
    if !start {
        return shared.polls.get(id).ok_or_else(|| {
            let message = format!("RunPoll for request id {id:?}, which no poll started");
            conflict(shared, call, Code::NotFound, message)
        });
    }
    let Some(session) = shared.polls.create(id, shared.settings.poll_fault) else {
        let message = format!("a second start_request for request id {id:?}");
        return Err(conflict(shared, call, Code::AlreadyExists, message));
    };
    match kind.start(shared, call, headers, id).await {
        Ok(output) => {
            let pumped = pump(shared.clone(), id.to_owned(), session.clone(), output);
            shared.spawn_turn(pumped);
            Ok(session)
        }
        Err(reply) => {
            shared.polls.remove(id);
            Err(reply)
        }
    }
}

/// Answers one RunPoll request.
pub(crate) async fn run_poll(
    shared: &Arc<Shared>,
    call: usize,
    headers: &http::HeaderMap,
    body: Bytes,
    kind: TurnKind,
) -> SseAnswer {
    let (id, start) = match parse_poll(shared, call, headers, &body) {
        Ok(parsed) => parsed,
        Err(reply) => return SseAnswer::Reply(reply),
    };
    let session = match session_for(shared, call, headers, (&id, start), kind).await {
        Ok(session) => session,
        Err(reply) => return SseAnswer::Reply(reply),
    };
    {
        let mut state = session.lock();
        if state.polling {
            drop(state);
            let message = format!("two RunPoll requests at once for request id {id:?}");
            return SseAnswer::Reply(conflict(shared, call, Code::FailedPrecondition, message));
        }
        state.polling = true;
        state.last_poll = Instant::now();
    }
    let (tx, rx) = mpsc::channel(16);
    let poll_shared = shared.clone();
    shared.spawn_turn(async move {
        answer_poll(&poll_shared, &id, &session, tx).await;
        poll_shared.recorder.update(call, |c| c.finished = true);
    });
    SseAnswer::Stream(rx)
}

fn conflict(shared: &Shared, call: usize, code: Code, message: String) -> Reply {
    shared.recorder.violation(call, message.clone());
    Reply::error(
        &ErrorSpec::new(code, format!("cursor-mock: {message}")),
        None,
    )
}

/// What the next step of a poll is.
enum Next {
    Send(ai::BidiPollResponse),
    Drop,
    End(End),
    Wait,
}

/// Streams queued messages into one poll's response for at most the poll window.
async fn answer_poll(shared: &Shared, id: &str, session: &Session, tx: mpsc::Sender<BodyFrame>) {
    let window_end = Instant::now() + shared.settings.poll_window;
    let mut encoder = Encoder::new();
    loop {
        let notified = session.changed.notified();
        let next = {
            let mut state = session.lock();
            match state.queue.pop_front() {
                Some(Queued::Message(m)) => Next::Send(m),
                Some(Queued::Drop) => Next::Drop,
                None => match state.end.clone() {
                    Some(end) => Next::End(end),
                    None => Next::Wait,
                },
            }
        };
        let frame = match next {
            Next::Send(m) => envelope(&mut encoder, Flags::NONE, &m.encode_to_vec()),
            Next::Drop | Next::End(End::Abort) => {
                let _ = tx
                    .send(Err(std::io::Error::other("cursor-mock dropped the poll")))
                    .await;
                shared.polls.remove(id);
                return;
            }
            Next::End(end) => {
                if let End::Json(json) = end {
                    let _ = tx
                        .send(Ok(envelope(&mut encoder, Flags::END_STREAM, &json)))
                        .await;
                }
                // Dropping `tx` ends the body (without an end-stream for `End::Bare`).
                shared.polls.remove(id);
                return;
            }
            Next::Wait => {
                if tokio::time::timeout_at(window_end, notified).await.is_err() {
                    {
                        let mut state = session.lock();
                        // Staleness counts from the end of the last poll.
                        state.polling = false;
                        state.last_poll = Instant::now();
                    }
                    let _ = tx
                        .send(Ok(envelope(&mut encoder, Flags::END_STREAM, b"{}")))
                        .await;
                    return;
                }
                continue;
            }
        };
        let limit = shared.settings.write_timeout;
        if !matches!(
            tokio::time::timeout(limit, tx.send(Ok(frame))).await,
            Ok(Ok(()))
        ) {
            // The client went away mid-poll: what it did not get is lost, as on a real server.
            session.lock().polling = false;
            return;
        }
    }
}

fn envelope(encoder: &mut Encoder, flags: Flags, payload: &[u8]) -> hyper::body::Frame<Bytes> {
    let mut buf = BytesMut::with_capacity(Encoder::encoded_len(payload.len()));
    // Encoding into a growable buffer only fails for payloads over 4 GiB.
    let _ = encoder.encode_with(flags, payload, &mut buf);
    hyper::body::Frame::data(buf.freeze())
}

/// Reads the turn's response (Connect envelopes) and queues each message for the polls.
async fn pump(
    shared: Arc<Shared>,
    id: String,
    session: Arc<Session>,
    // `_head` is held to the end: dropping it before the turn is done would end the turn.
    (_head, mut body): crate::sse::TurnOutput,
) {
    let mut decoder =
        Decoder::new(Direction::Response).max_message_size(shared.settings.max_message_size);
    let mut buf = BytesMut::new();
    let stale_after = shared.settings.reply_timeout;
    let end = loop {
        let (full, stale) = {
            let state = session.lock();
            let full = state.queue.len() >= MAX_QUEUED;
            (
                full,
                !state.polling && state.last_poll.elapsed() > stale_after,
            )
        };
        if stale {
            // Nobody polls any more: drop the turn (its writes fail, its deadlines end it).
            shared.polls.remove_session(&id, &session);
            return;
        }
        let chunk = if full {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        } else {
            match tokio::time::timeout(stale_after, body.recv()).await {
                Ok(chunk) => chunk,
                Err(_) => continue,
            }
        };
        match chunk {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
                if let Some(end) = queue_frames(&session, &mut decoder, &mut buf) {
                    break end;
                }
            }
            Some(Err(_)) => break End::Abort,
            None => break End::Bare,
        }
    };
    finish(&session, end);
    forget_when_stale(&shared, &id, &session).await;
}

/// Waits until the session's end was fetched (the last poll removes it) or nobody polls for
/// the reply timeout, then forgets it.
async fn forget_when_stale(shared: &Shared, id: &str, session: &Arc<Session>) {
    let stale_after = shared.settings.reply_timeout;
    loop {
        tokio::time::sleep(stale_after).await;
        let stale = {
            let state = session.lock();
            !state.polling && state.last_poll.elapsed() > stale_after
        };
        if stale {
            shared.polls.remove_session(id, session);
            return;
        }
    }
}

/// Records how the turn ended; after its last message comes one with `eof` (unless aborted).
fn finish(session: &Session, end: End) {
    let mut state = session.lock();
    if !matches!(end, End::Abort) {
        let seqno = state.next_seqno;
        state.next_seqno += 1;
        state.queue.push_back(Queued::Message(ai::BidiPollResponse {
            seqno,
            data: String::new(),
            eof: Some(true),
        }));
    }
    state.end = Some(end);
    drop(state);
    session.changed.notify_waiters();
}

/// Queues every whole envelope in `buf`; `Some` once the end-stream (or garbage) is seen.
fn queue_frames(session: &Session, decoder: &mut Decoder, buf: &mut BytesMut) -> Option<End> {
    loop {
        let frame = match decoder.decode(buf) {
            Ok(Some(frame)) => frame,
            Ok(None) => return None,
            Err(_) => return Some(End::Abort),
        };
        if frame.is_end_stream() {
            return Some(End::Json(frame.payload));
        }
        let mut state = session.lock();
        push_message(&mut state, &frame.payload);
        drop(state);
        session.changed.notify_waiters();
    }
}

/// Numbers one server message and queues it, applying the session's fault once.
fn push_message(state: &mut SessionState, payload: &[u8]) {
    let mut seqno = state.next_seqno;
    let fault = state.fault.filter(|f| match *f {
        PollFault::SkipSeqno { at }
        | PollFault::RepeatSeqno { at }
        | PollFault::DropConnection { at } => at == seqno,
    });
    if fault.is_some() {
        state.fault = None;
    }
    if let Some(PollFault::DropConnection { .. }) = fault {
        state.queue.push_back(Queued::Drop);
    }
    if let Some(PollFault::SkipSeqno { .. }) = fault {
        seqno += 1;
    }
    state.next_seqno = seqno + 1;
    let message = ai::BidiPollResponse {
        seqno,
        data: hex::encode(payload),
        eof: None,
    };
    if let Some(PollFault::RepeatSeqno { .. }) = fault {
        state.queue.push_back(Queued::Message(message.clone()));
    }
    state.queue.push_back(Queued::Message(message));
}
