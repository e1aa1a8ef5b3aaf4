//! Conversation checkpoints: opaque bytes on the wire path, with an optional typed view.
//!
//! The server sends a checkpoint in `AgentServerMessage.conversation_checkpoint_update`; the
//! client stores those bytes and sends them back verbatim in
//! `AgentRunRequest.conversation_state` on the next turn. Both fields are `bytes` in this
//! schema (Cursor declares them as `ConversationStateStructure`; the wire form is the same) so
//! that nothing the server sent is lost, including fields this schema does not know. Decode
//! with [`decode`] only to inspect; never re-encode a decoded checkpoint to send it back.
//!
//! ```
//! use bytes::Bytes;
//! use cursor_proto::agent::v1::{agent_server_message, AgentServerMessage};
//! use cursor_proto::checkpoint;
//! use prost::Message;
//!
//! // token_details { used_tokens: 7 }, plus field 40 this schema does not know.
//! let raw = Bytes::from_static(&[0x2a, 0x02, 0x08, 0x07, 0xc2, 0x02, 0x01, 0x78]);
//! let msg = AgentServerMessage {
//!     message: Some(agent_server_message::Message::ConversationCheckpointUpdate(raw.clone())),
//!     ..Default::default()
//! };
//! let back = AgentServerMessage::decode(msg.encode_to_vec().as_slice())?;
//! assert_eq!(back.checkpoint(), Some(&raw)); // byte-exact, unknown field included
//! let state = checkpoint::decode(&raw)?;
//! assert_eq!(state.token_details.map(|t| t.used_tokens), Some(7));
//! # Ok::<(), prost::DecodeError>(())
//! ```

use bytes::Bytes;
use prost::Message as _;

use crate::agent::v1::{
    AgentRunRequest, AgentServerMessage, ConversationStateStructure, agent_server_message,
};

/// Decodes checkpoint bytes for inspection. Fields unknown to this schema are dropped from the
/// result (not from the bytes you hold).
pub fn decode(bytes: &[u8]) -> Result<ConversationStateStructure, prost::DecodeError> {
    ConversationStateStructure::decode(bytes)
}

/// Encodes a hand-built state (for a cold start without a server checkpoint).
pub fn encode(state: &ConversationStateStructure) -> Bytes {
    Bytes::from(state.encode_to_vec())
}

impl AgentServerMessage {
    /// The checkpoint bytes, if this message is a `conversation_checkpoint_update`.
    pub fn checkpoint(&self) -> Option<&Bytes> {
        match &self.message {
            Some(agent_server_message::Message::ConversationCheckpointUpdate(b)) => Some(b),
            _ => None,
        }
    }
}

impl AgentRunRequest {
    /// The conversation state to send, empty when none was set. The request still carries the
    /// field when it is `Some(empty)`, which the server requires.
    pub fn conversation_state_bytes(&self) -> &[u8] {
        self.conversation_state.as_deref().unwrap_or_default()
    }
}
