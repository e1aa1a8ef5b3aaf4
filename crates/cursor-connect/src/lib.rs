//! A client for Cursor's private Connect-RPC backend: stream an agent turn with text,
//! thinking, tool calls, usage and typed errors, while the client quietly does everything the
//! server expects (heartbeats every 5 s, KV blob round trips, request-context execs, declining
//! built-in tools, answering interaction queries, stall detection).
//!
//! # Example
//!
//! Streams one turn from the bundled mock backend ([`cursor-mock`](https://docs.rs/cursor-mock));
//! against Cursor, drop `base_url` and pass a real token.
//!
//! ```
//! use cursor_connect::{Credentials, CursorClient, Event, RunRequest, ToolResult};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let mock = cursor_mock::MockServer::start(cursor_mock::Scenario::default()).await?;
//! # let base_url = mock.url();
//! let client = CursorClient::builder()
//!     .base_url(base_url) // "https://api2.cursor.sh" by default
//!     .credentials(Credentials::access_token("a-cursor-access-token"))
//!     .build()?;
//!
//! let mut run = client.agent().run(RunRequest::new("composer-2.5", "Say hello")).await?;
//! let mut answer = String::new();
//! while let Some(event) = run.next_event().await? {
//!     match event {
//!         Event::TextDelta(text) => answer.push_str(&text),
//!         Event::ToolCall(call) => run.respond(&call.id, ToolResult::text("42")).await?,
//!         Event::TurnEnded(usage) => println!("\n{} output tokens", usage.output_tokens),
//!         _ => {}
//!     }
//! }
//! assert!(!answer.is_empty());
//! let next_turn_state = run.checkpoint(); // pass to RunRequest::checkpoint next time
//! # let _ = next_turn_state;
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! [`Run::next_event`] returns `Ok(None)` only after `turn_ended` and a clean end of stream.
//! Anything else, including an `unauthenticated` end-stream after some text, a stream that
//! ends without `turn_ended`, or a stall, is an [`Error`] that stays returned on every later
//! call. Call failures carry the [`ConnectError`](frame::ConnectError) (with the decoded
//! `ErrorDetails`, see [`Error::error_details`]) and the classifier's
//! [`Classification`](classify::Classification): HTTP status, category, retry advice.
//!
//! # Layers
//!
//! The crates underneath are re-exported: [`frame`] (envelopes, errors), [`proto`] (messages),
//! [`h2`] (HTTP/2 transport), [`http1`] (HTTP/1.1 `RunSSE` or `RunPoll` + `BidiAppend` transport,
//! chosen with [`Transport`]), [`classify`] (error classification).
#![forbid(unsafe_code)]

pub use cursor_connect_classify as classify;
pub use cursor_connect_frame as frame;
pub use cursor_connect_h2 as h2;
pub use cursor_connect_http1 as http1;
pub use cursor_proto as proto;

pub mod auth;
pub mod blob;
pub mod checksum;
mod client;
mod config;
mod credentials;
mod error;
mod ids;
mod legacy_chat;
mod run;
mod transport;

pub use blob::{BlobError, BlobStore, MemoryBlobStore, blob_id};
pub use client::{
    ClientBuilder, CursorClient, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_STALL_TIMEOUT,
    DEFAULT_UNARY_TIMEOUT, ModelInfo, ServerConfig,
};
pub use config::{
    AGENT_NON_PRIVACY_URL, AGENT_PRIVACY_URL, DEFAULT_BASE_URL, DEFAULT_CLI_VERSION,
    DEFAULT_IDE_VERSION, DEFAULT_SDK_VERSION, HeaderConfig, HeaderStyle, USER_AGENT,
};
pub use credentials::{
    AccessToken, BoxFuture, Credentials, EXPIRY_MARGIN, Refresh, RefreshFn, Secret, TokenClaims,
    TokenSet,
};
pub use error::{Error, ErrorKind};
pub use ids::{RequestIds, uuid_v4};
pub use legacy_chat::{LegacyChat, LegacyChatClient};
pub use run::{
    AgentClient, Event, HistoryMessage, HistoryMode, ImageInput, InteractionPolicy, Run,
    RunRequest, ToolActivity, ToolCall, ToolDefinition, ToolPhase, ToolResult, Usage,
    flatten_history,
};
pub use transport::Transport;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
