//! What a run produces: events, tool calls, tool results and usage.

use bytes::Bytes;

use super::activity::ToolActivity;

/// One thing that happened in a turn, in stream order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A piece of the assistant's answer.
    TextDelta(String),
    /// A piece of the model's reasoning.
    ThinkingDelta(String),
    /// The reasoning block is complete.
    ThinkingCompleted,
    /// The model wants a tool run. Answer with [`Run::respond`](crate::Run::respond); the
    /// stream stays open (heartbeats and KV served) until you do. Several calls may be
    /// outstanding at once.
    ToolCall(ToolCall),
    /// The server's live output-token counter moved by this many tokens (progress only; use
    /// [`Event::TurnEnded`] for billing totals).
    TokenDelta(u64),
    /// An out-of-band notice from the server (quota warning, model switch), not answer text.
    Notice(String),
    /// A new conversation checkpoint: opaque bytes to send back as the next turn's state.
    /// Identical repeats are reported once.
    Checkpoint(Bytes),
    /// The turn is over; the counters are the server's totals.
    TurnEnded(Usage),
    /// Cursor began compacting the conversation (long contexts are summarized).
    SummaryStarted,
    /// The summary text that replaces the compacted part of the conversation.
    Summary(String),
    /// Compaction finished.
    SummaryCompleted {
        /// The server reported that compaction failed.
        failed: bool,
    },
    /// The agent began a step (a model call and the tool calls it makes).
    StepStarted(u64),
    /// A step finished.
    StepCompleted {
        /// The step, as in [`Event::StepStarted`].
        step: u64,
        /// How long it took, by the server's clock.
        duration_ms: u64,
    },
    /// Progress of a tool call, for display (answer calls from [`Event::ToolCall`]).
    ToolActivity(ToolActivity),
}

/// A tool call the server asks the caller to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolCall {
    /// The id to pass to [`Run::respond`](crate::Run::respond).
    pub id: String,
    /// The tool's name as declared in the request's tool list.
    pub name: String,
    /// The arguments as JSON object text.
    pub arguments: String,
}

impl ToolCall {
    /// A tool call (for test doubles and transports that produce calls themselves).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub(crate) text: String,
    pub(crate) is_error: bool,
}

impl ToolResult {
    /// A successful result with text content.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: false,
        }
    }

    /// A failed call; the text is shown to the model as the error.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
        }
    }

    /// The result text.
    pub fn content(&self) -> &str {
        &self.text
    }

    /// Whether the result reports a failure.
    pub fn is_error(&self) -> bool {
        self.is_error
    }
}

/// Token counters from `turn_ended`. Missing counters (older servers) are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Prompt tokens, including cached ones.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Prompt tokens served from cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to cache.
    pub cache_write_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

impl Usage {
    pub(crate) fn from_proto(t: &cursor_proto::agent::v1::TurnEndedUpdate) -> Self {
        let n = |v: Option<i64>| v.map_or(0, |v| u64::try_from(v).unwrap_or(0));
        Self {
            input_tokens: n(t.input_tokens),
            output_tokens: n(t.output_tokens),
            cache_read_tokens: n(t.cache_read_tokens),
            cache_write_tokens: n(t.cache_write_tokens),
            reasoning_tokens: n(t.reasoning_tokens),
        }
    }
}
