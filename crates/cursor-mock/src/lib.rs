//! An in-process mock of Cursor's agent backend, over real HTTP/2 on a loopback port.
//!
//! The mock serves `agent.v1.AgentService/Run` (bidi), `GetUsableModels`,
//! `GetDefaultModelForCli`, `NameAgent`, and the unary `aiserver.v1` calls `AvailableModels` and
//! `ServerConfigService/GetServerConfig`, over h2c or TLS (a test CA generated at start-up). It
//! speaks the Connect protocol with this workspace's frame crate and messages, and it behaves like
//! the real service as captured in 2026: its default turn sends, in order, a heartbeat, a KV get
//! of the root prompt blob, a request-context exec that must be answered first, KV sets, thinking
//! deltas each followed by a token delta, `thinking_completed`, text deltas of 1 to 4 characters,
//! MCP exec requests for the tools the client declared (all at once; the stream stays open, with
//! heartbeats, until every result is back), checkpoints (repeated), `turn_ended` with all five
//! counters and the end-stream `{}`.
//!
//! It is strict about what it receives: the first message must be a run request (otherwise it
//! answers like Cursor, with a heartbeat and an `invalid_argument` end-stream), KV and exec
//! answers must echo the ids they answer and have the right kind, a stored blob must come back
//! byte for byte, and an echoed checkpoint must be one the mock sent. A breach ends the stream
//! with `invalid_argument` and is listed by [`MockServer::violations`]. Every client message is
//! recorded ([`MockServer::received`]) and client heartbeats are counted.
//!
//! Scenarios are chosen per request, by the `x-mock-scenario` header or by using a scenario name
//! as the model id (see [`names`]), and tests can script their own from [`Step`]s: end-stream
//! errors carrying real captured `aiserver.v1.ErrorDetails`, HTTP 200 with only an error
//! end-stream, unary JSON errors, RST_STREAM, GOAWAY, stalls, floods of tiny frames, and tiny
//! flow-control windows ([`MockBuilder::stream_window`]).
//!
//! The default turn's text and counters are constants ([`DEFAULT_TEXT`], [`DEFAULT_USAGE`], ...)
//! so tests can compare exactly.
//!
//! # Example
//!
//! A unary `GetUsableModels` call with a bare `h2` client:
//!
//! ```
//! use cursor_mock::{MockServer, Scenario};
//! use cursor_proto::agent::v1::GetUsableModelsResponse;
//! use prost::Message as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockServer::start(Scenario::default()).await?;
//!
//! let tcp = tokio::net::TcpStream::connect(mock.addr()).await?;
//! let (h2, connection) = h2::client::handshake(tcp).await?;
//! tokio::spawn(connection);
//! let mut h2 = h2.ready().await?;
//! let request = http::Request::post(format!("{}/agent.v1.AgentService/GetUsableModels", mock.url()))
//!     .header("content-type", "application/proto")
//!     .body(())?;
//! let (response, mut body) = h2.send_request(request, false)?;
//! body.send_data(bytes::Bytes::new(), true)?;
//! let response = response.await?;
//! assert_eq!(response.status(), 200);
//!
//! let mut recv = response.into_body();
//! let mut bytes = Vec::new();
//! while let Some(chunk) = recv.data().await {
//!     let chunk = chunk?;
//!     recv.flow_control().release_capacity(chunk.len())?;
//!     bytes.extend_from_slice(&chunk);
//! }
//! let models = GetUsableModelsResponse::decode(bytes.as_slice())?;
//! assert!(models.models.iter().any(|m| m.model_id == "composer-2.5"));
//! assert_eq!(mock.received().len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! A scripted scenario, selected by model id:
//!
//! ```
//! use cursor_mock::{ErrorSpec, MockServer, Scenario, Step};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let mock = MockServer::builder()
//!     .named(
//!         "my-quota-test",
//!         Scenario::new(vec![
//!             Step::Heartbeat,
//!             Step::TextDelta("Hel".into()),
//!             Step::EndError(ErrorSpec::rate_limited()),
//!         ]),
//!     )
//!     .start()
//!     .await?;
//! // A run request whose model id is "my-quota-test" now gets this script.
//! # drop(mock);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod bidi;
mod error_spec;
mod http1;
mod io;
mod ledger;
mod legacy;
mod login;
mod oauth;
mod poll;
mod record;
mod rest;
mod run;
mod scenario;
#[cfg(feature = "sdk-peer")]
pub mod sdk_peer;
mod server;
mod sse;
mod tls;
mod unary;
mod wire;

pub use bidi::MAX_AHEAD as MAX_APPENDS_AHEAD;
pub use error_spec::{
    DetailSpec, ERROR_DETAILS_TYPE, ErrorSpec, FIRST_MESSAGE_END_STREAM, MODEL_RETIRED_END_STREAM,
    NOT_LOGGED_IN_DETAILS_B64,
};
pub use legacy::{
    LEGACY_OUTDATED_CLIENT, LEGACY_TEXT, LEGACY_TEXT_SCENARIO, LEGACY_THINKING,
    LEGACY_TOOL_CALL_ID, LEGACY_TOOL_PREFIX, LEGACY_TOOL_SCENARIO, LEGACY_UNSUPPORTED_REGION,
    LEGACY_UPDATE_REQUIRED,
};
pub use login::{AUTH_POLL_PATH, LOGIN_EMAIL, LOGIN_PAGE_PATH, PENDING_POLLS};
pub use oauth::OAUTH_TOKEN_PATH;
pub use poll::PollFault;
pub use record::{
    MAX_MESSAGES_PER_CALL, MAX_RECORDED_BYTES, MAX_RECORDED_CALLS, MessageKind, ReceivedCall,
    ReceivedMessage, Violation,
};
pub use rest::{EXCHANGE_API_KEY_PATH, MODELS_PATH};
pub use scenario::{
    DECLARED_TOOL_ARGUMENTS, DEFAULT_CACHE_READ_TOKENS, DEFAULT_CACHE_WRITE_TOKENS,
    DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS, DEFAULT_REASONING_TOKENS, DEFAULT_TEXT,
    DEFAULT_THINKING, DEFAULT_USAGE, ExecKind, FLOOD_REPEAT, LONG_THINKING, PARTIAL_TEXT, Scenario,
    Step, THINKING_DURATION_MS, TOKEN_DELTA, TOOL_ECHO_PREFIX, ToolCallSpec, ToolCalls, Usage,
    names,
};
pub use server::{MockBuilder, MockServer, RUN_PATH, SCENARIO_HEADER, UNARY_PATHS};
pub use unary::AMBIENT_PATHS;

/// Model ids the mock lists in `GetUsableModels` and `AvailableModels` (the first one is the
/// `GetDefaultModelForCli` answer); models with thinking support have `thinking_details` set.
pub const MODEL_IDS: &[&str] = &[
    "composer-2.5",
    "claude-4.5-sonnet",
    "claude-4.5-sonnet-thinking",
    "gpt-5",
    "default",
];
