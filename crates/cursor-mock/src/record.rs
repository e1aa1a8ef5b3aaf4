//! What the mock saw: every call, every client message, heartbeats, protocol violations.

use std::collections::{HashMap, VecDeque};
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
    /// Legacy ChatService: `StreamUnifiedChatRequestWithTools.stream_unified_chat_request`.
    LegacyChatRequest,
    /// Legacy ChatService: `StreamUnifiedChatRequestWithTools.client_side_tool_v2_result`.
    LegacyToolResult,
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

    /// The client messages decoded as `agent.v1.AgentClientMessage` (those that decode).
    pub fn client_messages(&self) -> Vec<cursor_proto::agent::v1::AgentClientMessage> {
        self.messages
            .iter()
            .filter_map(|m| m.decode().ok())
            .collect()
    }

    /// The run request of a `Run` call, if it carried one.
    pub fn run_request(&self) -> Option<cursor_proto::agent::v1::AgentRunRequest> {
        use cursor_proto::agent::v1::agent_client_message::Message;
        self.client_messages()
            .into_iter()
            .find_map(|m| match m.message {
                Some(Message::RunRequest(r)) => Some(r),
                _ => None,
            })
    }

    /// The client's answer to exec `id`, as received: raw, because prost drops the fields this
    /// workspace's schema does not declare, and a test may look for content in them.
    pub fn exec_answer(&self, id: u32) -> Option<&ReceivedMessage> {
        use cursor_proto::agent::v1::agent_client_message::Message;
        self.messages.iter().find(|m| {
            matches!(m.decode(), Ok(decoded) if matches!(
                decoded.message,
                Some(Message::ExecClientMessage(ref e)) if e.id == id
            ))
        })
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
    /// Number of the call, counting every call the server received from 0; the same as its
    /// index in [`crate::MockServer::received`] until the oldest calls are dropped (see
    /// [`MAX_RECORDED_CALLS`]).
    pub call: usize,
    /// What was wrong.
    pub message: String,
}

/// Most calls kept; older ones are dropped so a long-running mock (the proxy's embedded
/// upstream) does not grow without bound.
pub const MAX_RECORDED_CALLS: usize = 1024;
/// Most payload bytes kept over all recorded calls; the oldest calls go first, and a message
/// that does not fit even then is counted but not kept.
pub const MAX_RECORDED_BYTES: usize = 64 << 20;
/// Most messages kept per call (later ones are counted, not kept).
pub const MAX_MESSAGES_PER_CALL: usize = 16_384;
/// Most violations kept (the first ones).
const MAX_VIOLATIONS: usize = 1024;
/// Most checkpoints remembered per conversation (the latest), and conversations remembered.
const MAX_CHECKPOINTS_PER_CONVERSATION: usize = 16;
const MAX_CONVERSATIONS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// The most recent calls; `calls[0]` is call number `dropped_calls`.
    pub(crate) calls: VecDeque<(Instant, ReceivedCall)>,
    dropped_calls: usize,
    recorded_bytes: usize,
    pub(crate) violations: Vec<Violation>,
    pub(crate) heartbeats: u64,
    pub(crate) connections: u64,
    /// Blobs the mock stored on clients, by blob id, so a later get can be checked.
    pub(crate) blobs: HashMap<Bytes, Bytes>,
    /// Every checkpoint sent, per conversation id, oldest first.
    pub(crate) checkpoints: HashMap<String, Vec<Bytes>>,
}

impl Inner {
    fn call_mut(&mut self, call: usize) -> Option<&mut (Instant, ReceivedCall)> {
        let at = call.checked_sub(self.dropped_calls)?;
        self.calls.get_mut(at)
    }

    fn drop_oldest_call(&mut self) {
        if let Some((_, c)) = self.calls.pop_front() {
            self.dropped_calls += 1;
            let bytes: usize = c.messages.iter().map(|m| m.payload.len()).sum();
            self.recorded_bytes = self.recorded_bytes.saturating_sub(bytes);
        }
    }

    /// Remembers a checkpoint sent for `conversation` (bounded: the latest few per
    /// conversation, a bounded number of conversations; a forgotten conversation is simply not
    /// checked when a client echoes its state).
    pub(crate) fn remember_checkpoint(&mut self, conversation: &str, checkpoint: Bytes) {
        if self.checkpoints.len() >= MAX_CONVERSATIONS
            && !self.checkpoints.contains_key(conversation)
            && let Some(victim) = self.checkpoints.keys().next().cloned()
        {
            self.checkpoints.remove(&victim);
        }
        let list = self.checkpoints.entry(conversation.to_owned()).or_default();
        if list.len() >= MAX_CHECKPOINTS_PER_CONVERSATION {
            list.remove(0);
        }
        list.push(checkpoint);
    }
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
        while inner.calls.len() >= MAX_RECORDED_CALLS {
            inner.drop_oldest_call();
        }
        inner.calls.push_back((
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
        inner.dropped_calls + inner.calls.len() - 1
    }

    pub(crate) fn push(&self, call: usize, kind: MessageKind, payload: Bytes) {
        let mut inner = self.lock();
        if kind == MessageKind::ClientHeartbeat {
            inner.heartbeats += 1;
        }
        // Make room by dropping older calls, never the one being recorded.
        while inner.recorded_bytes + payload.len() > MAX_RECORDED_BYTES
            && inner.calls.len() > 1
            && inner.dropped_calls < call
        {
            inner.drop_oldest_call();
        }
        if inner.recorded_bytes + payload.len() > MAX_RECORDED_BYTES {
            return;
        }
        let n = payload.len();
        if let Some((start, c)) = inner.call_mut(call)
            && c.messages.len() < MAX_MESSAGES_PER_CALL
        {
            let at = start.elapsed();
            c.messages.push(ReceivedMessage { kind, payload, at });
            inner.recorded_bytes += n;
        }
    }

    pub(crate) fn update(&self, call: usize, f: impl FnOnce(&mut ReceivedCall)) {
        if let Some((_, c)) = self.lock().call_mut(call) {
            f(c);
        }
    }

    pub(crate) fn violation(&self, call: usize, message: String) {
        let mut inner = self.lock();
        if inner.violations.len() < MAX_VIOLATIONS {
            inner.violations.push(Violation { call, message });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_bounded_and_call_numbers_stay_stable() {
        let rec = Recorder::default();
        let total = MAX_RECORDED_CALLS + 10;
        for i in 0..total {
            let call = rec.start_call(&format!("/p{i}"), http::HeaderMap::new());
            assert_eq!(call, i, "call numbers count every call");
            rec.push(call, MessageKind::ClientHeartbeat, Bytes::from_static(b"x"));
        }
        rec.update(total - 1, |c| c.finished = true);
        rec.update(0, |c| c.finished = true); // dropped: ignored
        let inner = rec.lock();
        assert_eq!(inner.calls.len(), MAX_RECORDED_CALLS);
        assert_eq!(
            inner.heartbeats, total as u64,
            "counters still count everything"
        );
        let (_, last) = inner.calls.back().expect("calls");
        assert_eq!(last.path, format!("/p{}", total - 1));
        assert!(last.finished && last.messages.len() == 1);
        assert!(inner.calls.iter().filter(|(_, c)| c.finished).count() == 1);
    }

    #[test]
    fn recorded_payload_bytes_are_bounded() {
        let rec = Recorder::default();
        let big = Bytes::from(vec![0u8; 1 << 20]);
        for i in 0..(MAX_RECORDED_BYTES >> 20) + 8 {
            let call = rec.start_call(&format!("/p{i}"), http::HeaderMap::new());
            rec.push(call, MessageKind::RunRequest, big.clone());
        }
        // One call alone cannot exceed the budget either.
        let call = rec.start_call("/last", http::HeaderMap::new());
        for _ in 0..(MAX_RECORDED_BYTES >> 20) + 8 {
            rec.push(call, MessageKind::ExecResult, big.clone());
        }
        let inner = rec.lock();
        let kept: usize = inner
            .calls
            .iter()
            .flat_map(|(_, c)| &c.messages)
            .map(|m| m.payload.len())
            .sum();
        assert!(kept <= MAX_RECORDED_BYTES, "{kept}");
        assert_eq!(kept, inner.recorded_bytes);
        assert_eq!(
            inner.calls.back().map(|(_, c)| c.path.as_str()),
            Some("/last")
        );
    }

    #[test]
    fn checkpoints_remembered_are_bounded() {
        let rec = Recorder::default();
        let mut inner = rec.lock();
        for i in 0..MAX_CHECKPOINTS_PER_CONVERSATION + 5 {
            inner.remember_checkpoint("c", Bytes::from(i.to_string()));
        }
        let list = &inner.checkpoints["c"];
        assert_eq!(list.len(), MAX_CHECKPOINTS_PER_CONVERSATION);
        let latest = (MAX_CHECKPOINTS_PER_CONVERSATION + 4).to_string();
        assert_eq!(list.last().map(|b| &b[..]), Some(latest.as_bytes()));
        for i in 0..MAX_CONVERSATIONS + 5 {
            inner.remember_checkpoint(&format!("k{i}"), Bytes::from_static(b"cp"));
        }
        assert_eq!(inner.checkpoints.len(), MAX_CONVERSATIONS);
    }
}
