//! The proxy's view of an upstream backend.
//!
//! Everything the HTTP side needs from Cursor goes through [`Upstream`] and [`UpstreamRun`], so the
//! translation, session, pool and retry logic can be unit-tested against a scripted backend; the
//! production implementation ([`cursor::CursorUpstream`]) wraps `cursor-connect`.

pub mod cursor;
pub(crate) mod embedded;
#[cfg(test)]
pub(crate) mod fake;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::StatusCode;

use crate::engine::pool::Account;

/// A tool the caller offers the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Function name.
    pub name: String,
    /// Human description.
    pub description: String,
    /// JSON schema of the arguments.
    pub input_schema: serde_json::Value,
}

/// An image attached to the user's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// MIME type, e.g. `image/png`.
    pub mime: String,
    /// Raw (decoded) image bytes.
    pub data: Bytes,
}

/// One agent turn to start upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRequest {
    /// Upstream model name.
    pub model: String,
    /// The user text for this turn (possibly a flattened transcript).
    pub user_text: String,
    /// System prompt, if any.
    pub system_prompt: Option<String>,
    /// Tools offered.
    pub tools: Vec<ToolSpec>,
    /// Stable conversation id.
    pub conversation_id: String,
    /// Saved checkpoint of this conversation on this account.
    pub checkpoint: Option<Bytes>,
    /// Images for this turn.
    pub images: Vec<Image>,
    /// Ask for visible reasoning.
    pub thinking: bool,
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// Call id, echoed back with the result.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text.
    pub arguments: String,
}

/// Token counters of one finished turn, as the upstream reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Prompt tokens, cached ones included (Cursor's `turn_ended.input_tokens`).
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write_tokens: u64,
    /// Reasoning tokens (part of `output_tokens`).
    pub reasoning_tokens: u64,
}

/// Something that happened in an upstream turn.
#[derive(Debug, Clone, PartialEq)]
pub enum UpEvent {
    /// Assistant text.
    Text(String),
    /// Reasoning text.
    Thinking(String),
    /// The reasoning block finished.
    ThinkingDone,
    /// The model called a tool and waits for its result.
    ToolCall(ToolCall),
    /// Incremental output-token count.
    TokenDelta(u64),
    /// New conversation checkpoint.
    Checkpoint(Bytes),
    /// The turn ended.
    TurnEnded(TokenUsage),
}

/// A tool result sent back upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// The call this answers.
    pub call_id: String,
    /// Result text.
    pub content: String,
    /// Whether the tool failed.
    pub is_error: bool,
}

/// A model the upstream offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// Model id used in requests.
    pub id: String,
    /// Display name.
    pub display_name: String,
}

/// What the classifier advises after a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureAdvice {
    /// Retrying on another account may succeed.
    pub retry_other_account: bool,
    /// Retrying on the same account may succeed.
    pub retry_same_account: bool,
    /// How long to keep this account out of rotation.
    pub cooldown: Option<Duration>,
    /// What to tell the caller in `retry-after`.
    pub retry_after: Option<Duration>,
    /// The account's credentials need refreshing.
    pub refresh_credentials: bool,
    /// The account should not be used again.
    pub disable_account: bool,
}

/// A classified upstream failure.
#[derive(Debug, thiserror::Error)]
#[error("upstream {category}: {message}")]
pub struct UpstreamError {
    /// HTTP status to show the caller.
    pub status: StatusCode,
    /// Classifier category, snake case (e.g. `quota_exhausted`).
    pub category: &'static str,
    /// Upstream (or local) message, never containing secrets.
    pub message: String,
    /// The Connect code behind it (`resource_exhausted`, ...), when there was one; logged so
    /// the codes real servers send can be observed.
    pub code: Option<&'static str>,
    /// Advice for the pool and the retry loop.
    pub advice: FailureAdvice,
    /// The underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl UpstreamError {
    /// A local failure with no upstream cause.
    pub fn local(status: StatusCode, category: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            category,
            message: message.into(),
            code: None,
            advice: FailureAdvice::default(),
            source: None,
        }
    }

    /// Whether a fresh attempt (other or same account) may succeed.
    pub fn retryable(&self) -> bool {
        self.advice.retry_other_account || self.advice.retry_same_account
    }
}

/// Result alias for upstream calls.
pub type UpResult<T> = Result<T, UpstreamError>;

/// One open upstream turn.
pub trait UpstreamRun: Send + fmt::Debug {
    /// Next event; `Ok(None)` after the turn ended cleanly. Errors are sticky.
    fn next_event(&mut self) -> BoxFuture<'_, UpResult<Option<UpEvent>>>;
    /// Answers a tool call; the turn then continues.
    fn respond(&mut self, output: ToolOutput) -> BoxFuture<'_, UpResult<()>>;
    /// Stops the turn early (best effort).
    fn cancel(&mut self) -> BoxFuture<'_, ()>;
}

/// A backend the proxy can run turns on.
pub trait Upstream: Send + Sync + fmt::Debug {
    /// Starts a turn on `account`.
    fn run<'a>(
        &'a self,
        account: &'a Account,
        request: TurnRequest,
    ) -> BoxFuture<'a, UpResult<Box<dyn UpstreamRun>>>;
    /// Lists the models `account` may use.
    fn models<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, UpResult<Vec<ModelEntry>>>;
    /// Re-reads the account's credentials; `Ok(true)` when they changed.
    fn refresh<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, UpResult<bool>>;
}
