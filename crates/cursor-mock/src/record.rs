//! What the mock saw: every call, every client message, heartbeats, protocol violations.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// What kind of client message was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// `AgentClientMessage.run_request`.
    RunRequest,
    /// `AgentClientMessage.prewarm_request`.
    PrewarmRequest,
    /// `AgentClientMessage.client_heartbeat`.
    ClientHeartbeat,
    /// `kv_client_message.get_blob_result`.
    KvGetResult,
    /// `kv_client_message.set_blob_result`.
    KvSetResult,
    /// `exec_client_message` (any result).
    ExecResult,
    /// `exec_client_control_message` (stream close, throw, heartbeat).
    ExecControl,
    /// `conversation_action` (cancel, follow-ups).
    ConversationAction,
    /// `interaction_response`.
    InteractionResponse,
    /// A message with no case set.
    Empty,
    /// Bytes that are not a valid `AgentClientMessage`.
    Undecodable,
    /// The body of a unary request.
    UnaryRequest,
}

/// One message a client sent, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedMessage {
    /// What it was.
    pub kind: MessageKind,
    /// Its protobuf bytes (decompressed, without the envelope).
    pub payload: Bytes,
    /// When it arrived, measured from the start of the call.
    pub at: Duration,
}

impl ReceivedMessage {
    /// Decodes the payload as an `agent.v1.AgentClientMessage`.
    ///
    /// # Errors
    /// Returns prost's error when the payload is not one.
    pub fn decode(
        &self,
    ) -> Result<cursor_proto::agent::v1::AgentClientMessage, prost::DecodeError> {
        prost::Message::decode(self.payload.clone())
    }
}

/// One call (one HTTP/2 stream) the mock served.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReceivedCall {
    /// The request path, e.g. `/agent.v1.AgentService/Run`.
    pub path: String,
    /// The request headers.
    pub headers: http::HeaderMap,
    /// The scenario that served it (a name from [`crate::names`], a registered name, or
    /// `"default"` for the server's own scenario).
    pub scenario: String,
    /// The model id of the run request, if any.
    pub model: Option<String>,
    /// The messages, in arrival order (heartbeats included).
    pub messages: Vec<ReceivedMessage>,
    /// Whether the mock finished its side of the call (end-stream, reset, or a unary answer).
    pub finished: bool,
}

impl ReceivedCall {
    /// The messages of one kind.
    pub fn messages_of(&self, kind: MessageKind) -> impl Iterator<Item = &ReceivedMessage> {
        self.messages.iter().filter(move |m| m.kind == kind)
    }

    /// How many client heartbeats arrived on this call.
    pub fn heartbeats(&self) -> usize {
        self.messages_of(MessageKind::ClientHeartbeat).count()
    }

    /// Arrival times of this call's client heartbeats.
    pub fn heartbeat_times(&self) -> Vec<Duration> {
        self.messages_of(MessageKind::ClientHeartbeat)
            .map(|m| m.at)
            .collect()
    }
}

/// A breach of the protocol by the client, as detected by the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// Index of the call in [`crate::MockServer::received`].
    pub call: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) calls: Vec<(Instant, ReceivedCall)>,
    pub(crate) violations: Vec<Violation>,
    pub(crate) heartbeats: u64,
    pub(crate) connections: u64,
    /// Blobs the mock stored on clients, by blob id, so a later get can be checked.
    pub(crate) blobs: HashMap<Bytes, Bytes>,
    /// Every checkpoint sent, per conversation id, oldest first.
    pub(crate) checkpoints: HashMap<String, Vec<Bytes>>,
}

/// Shared, lock-protected record. The lock is never held across an await.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    inner: Mutex<Inner>,
}

impl Recorder {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it inconsistent (plain pushes/inserts).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn start_call(&self, path: &str, headers: http::HeaderMap) -> usize {
        let mut inner = self.lock();
        inner.calls.push((
            Instant::now(),
            ReceivedCall {
                path: path.to_owned(),
                headers,
                scenario: String::new(),
                model: None,
                messages: Vec::new(),
                finished: false,
            },
        ));
        inner.calls.len() - 1
    }

    pub(crate) fn push(&self, call: usize, kind: MessageKind, payload: Bytes) {
        let mut inner = self.lock();
        if kind == MessageKind::ClientHeartbeat {
            inner.heartbeats += 1;
        }
        if let Some((start, c)) = inner.calls.get_mut(call) {
            let at = start.elapsed();
            c.messages.push(ReceivedMessage { kind, payload, at });
        }
    }

    pub(crate) fn update(&self, call: usize, f: impl FnOnce(&mut ReceivedCall)) {
        if let Some((_, c)) = self.lock().calls.get_mut(call) {
            f(c);
        }
    }

    pub(crate) fn violation(&self, call: usize, message: String) {
        self.lock().violations.push(Violation { call, message });
    }
}
